//===- Safetensors.cpp - safetensors import and export --------------------===//
//
// Import validates the whole header before anything is built (the rules of
// the reference reader, each with its own error), then maps every tensor as
// a zero-copy slice of the file.
//
// Tensor order: llvm::json::Object does not keep key order, so the state
// dict lists tensors by data offset, the order writers lay the data out in
// (and the header order of files written by the reference library). Empty
// tensors, which share offsets, keep their order in the header text.
//
// Export writes the root state dict, one contiguous blob per tensor, in dict
// order. Names that alias another tensor exactly (same storage, offset,
// shape, strides, dtype) are dropped and recorded in __metadata__ as
// "removed name" -> "kept name", as safetensors.torch.save_model does.
//
//===----------------------------------------------------------------------===//
#include "wopt/Serialization/Safetensors.h"
#include "AtomicOutput.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/WithColor.h"
#include <map>

using namespace wopt;
using namespace llvm;
using wopt::detail::AtomicOutput;

/// The reference reader refuses larger headers; so do we, before parsing.
static constexpr uint64_t MaxHeaderSize = 100000000;
static constexpr StringLiteral MetadataKey = "__metadata__";

namespace {
struct HeaderTensor {
  std::string Name;
  DType Type;
  SmallVector<int64_t, 4> Shape;
  uint64_t Begin = 0, End = 0;
  unsigned HeaderIndex = 0; ///< position in the header text
};

struct Header {
  std::vector<HeaderTensor> Tensors; ///< sorted by data offset
  std::vector<std::pair<std::string, std::string>> Metadata;
  bool HasMetadata = false;
  uint64_t DataStart = 0; ///< 8 + header length
};
} // namespace

static Error fileError(StringRef File, const Twine &Msg) {
  return createStringError(inconvertibleErrorCode(), File + ": " + Msg);
}

static Error tensorError(StringRef File, StringRef Name, const Twine &Msg) {
  return fileError(File, "tensor '" + Name + "': " + Msg);
}

//===----------------------------------------------------------------------===//
// Header scanning
//===----------------------------------------------------------------------===//

static size_t skipString(StringRef T, size_t I) {
  assert(T[I] == '"');
  for (++I; I < T.size() && T[I] != '"'; ++I)
    if (T[I] == '\\')
      ++I;
  return I + 1;
}

/// The top-level keys of the JSON object Text, in text order, decoded.
/// json::parse keeps the last of duplicate keys without a word and forgets
/// the order, so the reader walks the (already validated) text itself.
static std::vector<std::string> topLevelKeys(StringRef T) {
  std::vector<std::string> Keys;
  size_t I = T.find('{') + 1;
  while (I < T.size()) {
    I = T.find_first_not_of(" \t\r\n,", I);
    if (I == StringRef::npos || T[I] != '"')
      break;
    size_t KeyEnd = skipString(T, I);
    Expected<json::Value> K = json::parse(T.slice(I, KeyEnd));
    assert(K && K->getAsString() && "validated header");
    Keys.push_back(K->getAsString()->str());
    // Skip ':' and the value, up to the ',' or '}' that closes it.
    unsigned Depth = 0;
    for (I = T.find(':', KeyEnd) + 1; I < T.size(); ++I) {
      char C = T[I];
      if (C == '"') {
        I = skipString(T, I) - 1;
      } else if (C == '{' || C == '[') {
        ++Depth;
      } else if (C == '}' || C == ']') {
        if (Depth == 0)
          break;
        --Depth;
      } else if (C == ',' && Depth == 0) {
        break;
      }
    }
  }
  return Keys;
}

//===----------------------------------------------------------------------===//
// Header validation
//===----------------------------------------------------------------------===//

static std::optional<uint64_t> asCount(const json::Value *V) {
  return V ? V->getAsUINT64() : std::nullopt;
}

static Error parseShape(StringRef File, HeaderTensor &T,
                        const json::Object &O) {
  const json::Array *Shape = O.getArray("shape");
  if (!Shape)
    return tensorError(File, T.Name,
                       O.get("shape") ? "'shape' is not a list"
                                      : "missing 'shape'");
  for (const json::Value &D : *Shape) {
    std::optional<uint64_t> N = D.getAsUINT64();
    if (!N || *N > uint64_t(std::numeric_limits<int64_t>::max()))
      return tensorError(File, T.Name,
                         "'shape' holds something other than a "
                         "non-negative integer");
    T.Shape.push_back(int64_t(*N));
  }
  return Error::success();
}

static Error parseOffsets(StringRef File, HeaderTensor &T,
                          const json::Object &O) {
  const json::Array *Offsets = O.getArray("data_offsets");
  if (!Offsets)
    return tensorError(File, T.Name,
                       O.get("data_offsets") ? "'data_offsets' is not a list"
                                             : "missing 'data_offsets'");
  std::optional<uint64_t> B, E;
  if (Offsets->size() == 2) {
    B = asCount(&(*Offsets)[0]);
    E = asCount(&(*Offsets)[1]);
  }
  if (!B || !E)
    return tensorError(File, T.Name,
                       "'data_offsets' is not a pair of non-negative "
                       "integers");
  if (*E < *B)
    return tensorError(File, T.Name,
                       "data_offsets [" + Twine(*B) + ", " + Twine(*E) +
                           "] end before they begin");
  T.Begin = *B;
  T.End = *E;
  return Error::success();
}

/// end - begin must be exactly prod(shape) * element size.
static Error checkByteSize(StringRef File, const HeaderTensor &T) {
  uint64_t Bytes = dtypeSize(T.Type);
  bool Overflow = false;
  for (int64_t D : T.Shape)
    Overflow |= __builtin_mul_overflow(Bytes, uint64_t(D), &Bytes);
  if (Overflow)
    return tensorError(File, T.Name,
                       "the byte size of " + formatTensorType(T.Type, T.Shape) +
                           " overflows 64 bits");
  if (T.End - T.Begin != Bytes)
    return tensorError(File, T.Name,
                       "data_offsets [" + Twine(T.Begin) + ", " + Twine(T.End) +
                           "] hold " + Twine(T.End - T.Begin) + " bytes but " +
                           formatTensorType(T.Type, T.Shape) + " needs " +
                           Twine(Bytes));
  return Error::success();
}

static Expected<HeaderTensor> parseTensor(StringRef File, StringRef Name,
                                          const json::Value &V) {
  HeaderTensor T;
  T.Name = Name.str();
  const json::Object *O = V.getAsObject();
  if (!O)
    return tensorError(File, Name, "header entry is not a JSON object");
  const json::Value *DT = O->get("dtype");
  if (!DT)
    return tensorError(File, Name, "missing 'dtype'");
  std::optional<StringRef> DTName = DT->getAsString();
  if (!DTName)
    return tensorError(File, Name, "'dtype' is not a string");
  std::optional<DType> Type = dtypeFromSafetensorsName(*DTName);
  if (!Type)
    return tensorError(File, Name, "unknown dtype '" + *DTName + "'");
  T.Type = *Type;
  if (Error E = parseShape(File, T, *O))
    return E;
  if (Error E = parseOffsets(File, T, *O))
    return E;
  if (Error E = checkByteSize(File, T))
    return E;
  return T;
}

static Error parseMetadata(StringRef File, Header &H, const json::Value &V) {
  const json::Object *O = V.getAsObject();
  if (!O)
    return fileError(File, "__metadata__ is not a JSON object");
  H.HasMetadata = true;
  for (const auto &KV : *O) {
    std::optional<StringRef> S = KV.second.getAsString();
    if (!S)
      return fileError(File, "__metadata__ entry '" + KV.first.str() +
                                 "' is not a string (only string -> string "
                                 "is allowed)");
    H.Metadata.emplace_back(KV.first.str(), S->str());
  }
  // Deterministic output for the unordered JSON object.
  llvm::sort(H.Metadata);
  return Error::success();
}

/// Data offsets, sorted, must tile [0, BufferSize) exactly.
static Error checkLayout(StringRef File, const std::vector<HeaderTensor> &Ts,
                         uint64_t BufferSize) {
  uint64_t Expected = 0;
  const HeaderTensor *Prev = nullptr;
  for (const HeaderTensor &T : Ts) {
    if (T.Begin < Expected)
      return tensorError(File, T.Name,
                         "data_offsets [" + Twine(T.Begin) + ", " +
                             Twine(T.End) + "] overlap tensor '" + Prev->Name +
                             "', which ends at " + Twine(Expected));
    if (T.Begin > Expected)
      return tensorError(File, T.Name,
                         "data_offsets [" + Twine(T.Begin) + ", " +
                             Twine(T.End) + "] leave a gap of " +
                             Twine(T.Begin - Expected) + " bytes after " +
                             (Prev ? "tensor '" + Prev->Name + "'"
                                   : std::string("the header")));
    if (T.End > BufferSize)
      return tensorError(File, T.Name,
                         "data_offsets [" + Twine(T.Begin) + ", " +
                             Twine(T.End) +
                             "] run past the end of the file "
                             "(the data buffer holds " +
                             Twine(BufferSize) + " bytes)");
    Expected = T.End;
    Prev = &T;
  }
  if (Expected != BufferSize)
    return fileError(File, Twine(BufferSize - Expected) +
                               " trailing bytes after the last tensor's data");
  return Error::success();
}

static Expected<StringRef> readHeaderText(StringRef File,
                                          ArrayRef<uint8_t> Bytes) {
  if (Bytes.size() < 8)
    return fileError(File, "file too small for a safetensors header length (" +
                               Twine(Bytes.size()) + " bytes)");
  uint64_t N = support::endian::read64le(Bytes.data());
  if (N > MaxHeaderSize)
    return fileError(File, "header length " + Twine(N) +
                               " exceeds the limit of " + Twine(MaxHeaderSize) +
                               " bytes");
  if (N > Bytes.size() - 8)
    return fileError(File, "header length " + Twine(N) +
                               " runs past the end of the file (" +
                               Twine(Bytes.size()) + " bytes)");
  return StringRef(reinterpret_cast<const char *>(Bytes.data()) + 8, N);
}

static Error checkDuplicates(StringRef File, StringRef Text) {
  StringSet<> Seen;
  for (const std::string &K : topLevelKeys(Text))
    if (!Seen.insert(K).second)
      return K == MetadataKey ? fileError(File, "__metadata__ appears twice")
                              : tensorError(File, K,
                                            "name appears twice in "
                                            "the header");
  return Error::success();
}

static Expected<Header> parseHeader(StringRef File, ArrayRef<uint8_t> Bytes) {
  Expected<StringRef> Text = readHeaderText(File, Bytes);
  if (!Text)
    return Text.takeError();
  size_t BadByte = 0;
  if (!json::isUTF8(*Text, &BadByte))
    return fileError(File, "header is not valid UTF-8 (byte " +
                               Twine(8 + BadByte) + ")");
  Expected<json::Value> Root = json::parse(*Text);
  if (!Root)
    return fileError(File,
                     "header is not valid JSON: " + toString(Root.takeError()));
  const json::Object *O = Root->getAsObject();
  if (!O)
    return fileError(File, "header is not a JSON object");
  if (Error E = checkDuplicates(File, *Text))
    return E;

  Header H;
  H.DataStart = 8 + Text->size();
  StringMap<unsigned> TextOrder;
  for (const std::string &K : topLevelKeys(*Text))
    TextOrder.try_emplace(K, TextOrder.size());
  for (const auto &KV : *O) {
    StringRef Name = KV.first;
    if (Name == MetadataKey) {
      if (Error E = parseMetadata(File, H, KV.second))
        return E;
      continue;
    }
    Expected<HeaderTensor> T = parseTensor(File, Name, KV.second);
    if (!T)
      return T.takeError();
    T->HeaderIndex = TextOrder.lookup(Name);
    H.Tensors.push_back(std::move(*T));
  }
  llvm::sort(H.Tensors, [](const HeaderTensor &A, const HeaderTensor &B) {
    return std::tie(A.Begin, A.End, A.HeaderIndex) <
           std::tie(B.Begin, B.End, B.HeaderIndex);
  });
  if (Error E = checkLayout(File, H.Tensors, Bytes.size() - H.DataStart))
    return E;
  return H;
}

//===----------------------------------------------------------------------===//
// Import
//===----------------------------------------------------------------------===//

static ValuePtr buildTensor(const std::shared_ptr<SourceFile> &Source,
                            const Header &H, const HeaderTensor &HT) {
  auto T = std::make_shared<TensorValue>();
  T->setDType(HT.Type);
  T->setShape(HT.Shape);
  uint64_t At = H.DataStart + HT.Begin;
  // Zero copy: the storage is the tensor's slice of the mapped file.
  T->setStorage(
      Storage::mapped(HT.Name, HT.Type, Source, At, HT.End - HT.Begin));
  Provenance &P = T->provenance();
  P.File = Source->path().str();
  P.KeyPath = {HT.Name};
  P.StorageKey = HT.Name;
  P.ByteOffset = At;
  return T;
}

Expected<std::unique_ptr<Checkpoint>>
wopt::importSafetensors(std::shared_ptr<SourceFile> Source) {
  Expected<Header> H = parseHeader(Source->path(), Source->bytes());
  if (!H)
    return H.takeError();
  // A state dict is an OrderedDict; export to .pth writes it as one.
  auto Root = std::make_shared<DictValue>(/*Ordered=*/true);
  for (const HeaderTensor &HT : H->Tensors)
    Root->entries().push_back({makeStr(HT.Name), buildTensor(Source, *H, HT)});
  if (H->HasMetadata) {
    auto Meta = std::make_shared<DictValue>();
    for (auto &KV : H->Metadata)
      Meta->entries().push_back({makeStr(KV.first), makeStr(KV.second)});
    Root->setState(std::move(Meta));
  }
  auto C = std::make_unique<Checkpoint>(std::move(Root));
  C->SourcePath = Source->path().str();
  C->Format = "safetensors";
  C->Source = std::move(Source);
  return C;
}

//===----------------------------------------------------------------------===//
// Export
//===----------------------------------------------------------------------===//

namespace {
struct ExportPlan {
  std::vector<std::pair<std::string, const TensorValue *>> Tensors;
  std::vector<std::pair<std::string, std::string>> Metadata;
};

/// Identity of a view: tensors equal in all of these hold the same values
/// because they read the same bytes.
using ViewKey = std::tuple<const Storage *, int64_t, std::vector<int64_t>,
                           std::vector<int64_t>, DType>;
} // namespace

/// The root state's string -> string entries (what import kept from
/// __metadata__). Other states, such as a torch state dict's
/// {'_metadata': ...} module versions, have no place in safetensors.
static void collectMetadata(const DictValue &Root, ExportPlan &Plan) {
  auto *State = dyn_cast_or_null<DictValue>(Root.state().get());
  if (!State)
    return;
  for (const DictEntry &E : State->entries()) {
    auto *K = dyn_cast<StringValue>(E.Key.get());
    auto *V = dyn_cast<StringValue>(E.Val.get());
    if (!K || !V || K->kind() != Value::Kind::Str ||
        V->kind() != Value::Kind::Str)
      return;
  }
  for (const DictEntry &E : State->entries())
    Plan.Metadata.emplace_back(cast<StringValue>(*E.Key).value(),
                               cast<StringValue>(*E.Val).value());
}

/// Largest broadcast view (one whose elements repeat storage bytes) that a
/// safetensors export materialises.
constexpr uint64_t MaxExpandedViewBytes = 1ull << 30;

static Error checkTensor(StringRef Path, StringRef Name, const TensorValue &T) {
  if (Name == MetadataKey)
    return fileError(Path, "tensor name '__metadata__' is reserved by "
                           "safetensors");
  if (dtypeSafetensorsName(T.dtype()).empty())
    return tensorError(Path, Name,
                       "safetensors has no dtype for " + dtypeName(T.dtype()));
  const StorageRef &S = T.storage();
  if (!S || !S->hasData())
    return tensorError(Path, Name,
                       "tensor data is elided; import a file that holds the "
                       "data (or print with inline data)");
  std::optional<uint64_t> Need = T.requiredStorageBytes();
  std::optional<uint64_t> Numel = T.numel();
  uint64_t OutBytes;
  if (!Need || !Numel || *Need > S->numBytes() || T.storageOffset() < 0 ||
      __builtin_mul_overflow(*Numel, uint64_t(dtypeSize(T.dtype())), &OutBytes))
    return tensorError(Path, Name,
                       "view " + T.typeString() +
                           " reaches past its storage of " +
                           Twine(S->numBytes()) + " bytes");
  // safetensors has no strides: a broadcast (stride-0) view is written
  // element by element. Bound what that costs by what the file holds.
  if (OutBytes > S->numBytes() && OutBytes > MaxExpandedViewBytes)
    return tensorError(Path, Name,
                       "view " + T.typeString() + " expands a storage of " +
                           Twine(S->numBytes()) + " bytes to " +
                           Twine(OutBytes) +
                           " bytes; wopt writes broadcast views up to 1 GiB "
                           "(write a .pth, which keeps the view, or make it "
                           "contiguous in torch)");
  return Error::success();
}

static Expected<ExportPlan> planExport(const Checkpoint &C, StringRef Path) {
  // safetensors is little-endian by definition; the bytes of a big-endian
  // checkpoint would be read as other values.
  if (C.ByteOrder != "little")
    return fileError(Path, "the checkpoint's tensor bytes are " +
                               C.ByteOrder +
                               "-endian and safetensors holds little-endian "
                               "data only (write a .pth, which keeps the "
                               "byte order)");
  DictValue *SD = C.stateDict();
  if (!SD)
    return fileError(Path, "safetensors holds a flat dict of named tensors, "
                           "but the root is not a state dict; run unwrap "
                           "first (e.g. -pass-pipeline=unwrap{key=model})");
  ExportPlan Plan;
  collectMetadata(*SD, Plan);
  StringSet<> MetaKeys;
  for (auto &KV : Plan.Metadata)
    MetaKeys.insert(KV.first);
  std::map<ViewKey, std::string> Kept;
  for (const DictEntry &E : SD->entries()) {
    StringRef Name = *E.keyString();
    auto *T = dyn_cast<TensorValue>(E.Val.get());
    if (!T)
      return fileError(Path, "state dict entry '" + Name + "' is " +
                                 describeKind(*E.Val) +
                                 ", not a tensor; safetensors holds tensors "
                                 "only (hint: drop it or unwrap a sub-dict)");
    if (Error Err = checkTensor(Path, Name, *T))
      return Err;
    ViewKey K{T->storage().get(), T->storageOffset(),
              std::vector<int64_t>(T->shape().begin(), T->shape().end()),
              std::vector<int64_t>(T->strides().begin(), T->strides().end()),
              T->dtype()};
    auto [It, New] = Kept.try_emplace(std::move(K), Name.str());
    if (New) {
      Plan.Tensors.emplace_back(Name.str(), T);
    } else if (MetaKeys.insert(Name).second) {
      // Like save_model: never override metadata the user already had.
      Plan.Metadata.emplace_back(Name.str(), It->second);
    }
  }
  return Plan;
}

/// Different views of one storage cannot stay shared in safetensors: one
/// warning per storage, naming its first two users.
static void warnPartialSharing(StringRef Path, const ExportPlan &Plan) {
  std::map<const Storage *, std::vector<StringRef>> Users;
  std::vector<const Storage *> Order;
  for (auto &[Name, T] : Plan.Tensors) {
    auto &U = Users[T->storage().get()];
    if (U.empty())
      Order.push_back(T->storage().get());
    U.push_back(Name);
  }
  for (const Storage *S : Order) {
    const std::vector<StringRef> &U = Users[S];
    if (U.size() < 2)
      continue;
    raw_ostream &W = WithColor::warning(errs(), "wopt");
    W << Path << ": tensors '" << U[0] << "' and '" << U[1] << "'";
    if (U.size() > 2)
      W << " (and " << (U.size() - 2) << " more)";
    W << " are different views of one storage; safetensors stores each "
         "as its own copy\n";
  }
}

static std::string renderHeader(const ExportPlan &Plan) {
  std::string Text;
  raw_string_ostream OS(Text);
  json::OStream J(OS);
  uint64_t Offset = 0;
  J.object([&] {
    if (!Plan.Metadata.empty())
      J.attributeObject(MetadataKey, [&] {
        for (auto &[K, V] : Plan.Metadata)
          J.attribute(K, V);
      });
    for (auto &[Name, T] : Plan.Tensors) {
      uint64_t Size = *T->numel() * dtypeSize(T->dtype());
      J.attributeObject(Name, [&, T = T] {
        J.attribute("dtype", dtypeSafetensorsName(T->dtype()));
        J.attributeArray("shape", [&] {
          for (int64_t D : T->shape())
            J.value(D);
        });
        J.attributeArray("data_offsets", [&] {
          J.value(Offset);
          J.value(Offset + Size);
        });
      });
      Offset += Size;
    }
  });
  OS.flush();
  // Padding keeps the data buffer 8-byte aligned in the file.
  Text.append(alignTo(Text.size(), 8) - Text.size(), ' ');
  return Text;
}

/// Writes a strided view row-major: runs along the last dimension are
/// copied whole when that dimension is contiguous.
static Error writeStrided(AtomicOutput &Out, const TensorValue &T) {
  ArrayRef<int64_t> Shape = T.shape(), Strides = T.strides();
  const unsigned Rank = Shape.size();
  const uint64_t Elt = dtypeSize(T.dtype());
  const uint64_t RunLen = Shape.back();
  ArrayRef<uint8_t> Src = T.storage()->bytes();
  uint64_t Runs = *T.numel() / RunLen;
  SmallVector<int64_t, 4> Idx(Rank, 0);
  std::vector<uint8_t> Chunk;
  for (uint64_t R = 0; R < Runs; ++R) {
    uint64_t Base = T.storageOffset();
    for (unsigned D = 0; D + 1 < Rank; ++D)
      Base += Idx[D] * Strides[D];
    if (Strides.back() == 1) {
      auto Run = Src.slice(Base * Elt, RunLen * Elt);
      Chunk.insert(Chunk.end(), Run.begin(), Run.end());
    } else {
      for (uint64_t I = 0; I < RunLen; ++I) {
        auto E = Src.slice((Base + I * Strides.back()) * Elt, Elt);
        Chunk.insert(Chunk.end(), E.begin(), E.end());
      }
    }
    for (int D = int(Rank) - 2; D >= 0; --D) {
      if (++Idx[D] < Shape[D])
        break;
      Idx[D] = 0;
    }
    if (Chunk.size() >= (1u << 20)) {
      if (Error E = Out.write(Chunk))
        return E;
      Chunk.clear();
    }
  }
  return Out.write(Chunk);
}

static Error writeTensor(AtomicOutput &Out, const TensorValue &T) {
  uint64_t Numel = *T.numel();
  if (Numel == 0)
    return Error::success();
  uint64_t Elt = dtypeSize(T.dtype());
  if (T.isContiguous())
    return Out.writeStorageRange(*T.storage(), T.storageOffset() * Elt,
                                 Numel * Elt);
  return writeStrided(Out, T);
}

Error wopt::exportSafetensors(const Checkpoint &C, StringRef Path) {
  Expected<ExportPlan> Plan = planExport(C, Path);
  if (!Plan)
    return Plan.takeError();
  warnPartialSharing(Path, *Plan);
  std::string HeaderText = renderHeader(*Plan);
  auto Out = AtomicOutput::create(Path);
  if (!Out)
    return Out.takeError();
  uint8_t Len[8];
  support::endian::write64le(Len, HeaderText.size());
  if (Error E = (*Out)->write(ArrayRef<uint8_t>(Len)))
    return E;
  if (Error E = (*Out)->write(StringRef(HeaderText)))
    return E;
  for (auto &[Name, T] : Plan->Tensors)
    if (Error E = writeTensor(**Out, *T))
      return E;
  return (*Out)->commit();
}
