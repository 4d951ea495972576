//===- Safetensors.cpp - safetensors import and export --------------------===//
//
// Import validates the whole header before anything is built (the rules of
// the reference reader, huggingface/safetensors' SafeTensors::deserialize,
// each with its own error), then maps every tensor as a zero-copy slice of
// the file.
//
// Tensor order: the state dict lists tensors in header text order.
// llvm::json::Object forgets key order, so the reader walks the header text
// itself. The reference writer lays out data in header order, so for its
// files this is also data order; wopt's writer keeps the state dict's order
// in the header and lays out data by element size (below).
//
// Export writes the root state dict: the header lists tensors in dict order,
// the data buffer holds them by decreasing element width (stable), so that
// with the 8-byte aligned header every tensor starts at a multiple of its
// element size, as the reference writer guarantees by sorting. Names that
// alias another tensor exactly (same storage, offset, shape, strides,
// dtype) are dropped and recorded in __metadata__ as "dropped" -> "kept",
// as safetensors.torch.save_model does; import turns such records back into
// tied entries.
//
//===----------------------------------------------------------------------===//
#include "wopt/Serialization/Safetensors.h"
#include "AtomicOutput.h"
#include "Progress.h"
#include "wopt/IR/Verifier.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"
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
};

struct Header {
  std::vector<HeaderTensor> Tensors; ///< in header text order
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
    if (!N)
      return tensorError(File, T.Name,
                         "'shape' holds something other than a "
                         "non-negative integer");
    // Valid safetensors (the reference reads sizes as u64), but torch, and
    // with it wopt's IR, sizes dimensions in int64.
    if (*N > uint64_t(std::numeric_limits<int64_t>::max()))
      return tensorError(File, T.Name,
                         "dimension " + Twine(*N) +
                             " exceeds 2^63 - 1, the largest size torch (and "
                             "wopt) can give a dimension");
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

/// end - begin must be exactly prod(shape) * element width, computed as the
/// reference does: the product dimension by dimension, checked, then the
/// bits, which must end on a byte boundary.
static Error checkByteSize(StringRef File, const HeaderTensor &T) {
  uint64_t N = 1, Bits;
  bool Overflow = false;
  for (int64_t D : T.Shape)
    Overflow = Overflow || __builtin_mul_overflow(N, uint64_t(D), &N);
  if (Overflow || __builtin_mul_overflow(N, uint64_t(dtypeBits(T.Type)), &Bits))
    return tensorError(File, T.Name,
                       "the size in bits of " +
                           formatTensorType(T.Type, T.Shape) +
                           " overflows 64 bits");
  if (Bits % 8)
    return tensorError(File, T.Name,
                       formatTensorType(T.Type, T.Shape) + " holds " +
                           Twine(Bits) +
                           " bits, which do not end on a byte boundary");
  uint64_t Bytes = Bits / 8;
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

/// The reference reads __metadata__ as an optional string -> string map:
/// null is the same as absent.
static Error parseMetadata(StringRef File, Header &H, const json::Value &V) {
  if (V.kind() == json::Value::Null)
    return Error::success();
  const json::Object *O = V.getAsObject();
  if (!O)
    return fileError(File, "__metadata__ is not a JSON object (nor null)");
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
static Error checkLayout(StringRef File, std::vector<const HeaderTensor *> Ts,
                         uint64_t BufferSize) {
  // Empty tensors share offsets; among equals, header order.
  llvm::stable_sort(Ts, [](const HeaderTensor *A, const HeaderTensor *B) {
    return std::tie(A->Begin, A->End) < std::tie(B->Begin, B->End);
  });
  uint64_t Expected = 0;
  const HeaderTensor *Prev = nullptr;
  for (const HeaderTensor *T : Ts) {
    if (T->Begin < Expected)
      return tensorError(File, T->Name,
                         "data_offsets [" + Twine(T->Begin) + ", " +
                             Twine(T->End) + "] overlap tensor '" + Prev->Name +
                             "', which ends at " + Twine(Expected));
    if (T->Begin > Expected)
      return tensorError(File, T->Name,
                         "data_offsets [" + Twine(T->Begin) + ", " +
                             Twine(T->End) + "] leave a gap of " +
                             Twine(T->Begin - Expected) + " bytes after " +
                             (Prev ? "tensor '" + Prev->Name + "'"
                                   : std::string("the header")));
    if (T->End > BufferSize)
      return tensorError(File, T->Name,
                         "data_offsets [" + Twine(T->Begin) + ", " +
                             Twine(T->End) +
                             "] run past the end of the file "
                             "(the data buffer holds " +
                             Twine(BufferSize) + " bytes)");
    Expected = T->End;
    Prev = T;
  }
  if (Expected != BufferSize)
    return fileError(File, Twine(BufferSize - Expected) +
                               " trailing bytes after the last tensor's data "
                               "(the data buffer must end with it)");
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

static Error checkDuplicates(StringRef File, ArrayRef<std::string> Keys) {
  StringSet<> Seen;
  for (const std::string &K : Keys)
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
  // JSON whitespace may pad the header on either side (the reference reader
  // allows it, so that writers can align the data buffer).
  Expected<json::Value> Root = json::parse(*Text);
  if (!Root)
    return fileError(File,
                     "header is not valid JSON: " + toString(Root.takeError()));
  const json::Object *O = Root->getAsObject();
  if (!O)
    return fileError(File, "header is not a JSON object");
  std::vector<std::string> Keys = topLevelKeys(*Text);
  if (Error E = checkDuplicates(File, Keys))
    return E;

  Header H;
  H.DataStart = 8 + Text->size();
  for (const std::string &Name : Keys) {
    const json::Value &V = *O->get(Name);
    if (Name == MetadataKey) {
      if (Error E = parseMetadata(File, H, V))
        return E;
      continue;
    }
    Expected<HeaderTensor> T = parseTensor(File, Name, V);
    if (!T)
      return T.takeError();
    H.Tensors.push_back(std::move(*T));
  }
  std::vector<const HeaderTensor *> ByOffset;
  for (const HeaderTensor &T : H.Tensors)
    ByOffset.push_back(&T);
  if (Error E =
          checkLayout(File, std::move(ByOffset), Bytes.size() - H.DataStart))
    return E;
  return H;
}

//===----------------------------------------------------------------------===//
// Import
//===----------------------------------------------------------------------===//

/// Row-major strides that saturate instead of wrapping: an empty tensor may
/// have dimensions whose product overflows (the reference accepts
/// [0, 2^62, 4]); its strides never address anything.
static SmallVector<int64_t, 4> saturatedStrides(ArrayRef<int64_t> Shape) {
  SmallVector<int64_t, 4> Strides(Shape.size());
  uint64_t Acc = 1;
  for (size_t I = Shape.size(); I-- > 0;) {
    Strides[I] = int64_t(
        std::min<uint64_t>(Acc, uint64_t(std::numeric_limits<int64_t>::max())));
    if (Shape[I] > 1 && __builtin_mul_overflow(Acc, uint64_t(Shape[I]), &Acc))
      Acc = std::numeric_limits<uint64_t>::max();
  }
  return Strides;
}

static ValuePtr buildTensor(const std::shared_ptr<SourceFile> &Source,
                            const Header &H, const HeaderTensor &HT) {
  auto T = std::make_shared<TensorValue>();
  T->setDType(HT.Type);
  T->setShapeAndStrides(HT.Shape, saturatedStrides(HT.Shape));
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

unsigned wopt::restoreSafetensorsAliases(DictValue &SD) {
  auto *State = dyn_cast_or_null<DictValue>(SD.state().get());
  if (!State)
    return 0;
  StringMap<ValuePtr> Tensors;
  for (const DictEntry &E : SD.entries())
    if (std::optional<StringRef> K = E.keyString())
      if (isa<TensorValue>(E.Val.get()))
        Tensors.try_emplace(*K, E.Val);
  // Metadata keys are unique (a JSON object), so each name is restored once.
  std::vector<DictEntry> Kept, Restored;
  for (DictEntry &E : State->entries()) {
    auto *K = dyn_cast<StringValue>(E.Key.get());
    auto *V = dyn_cast<StringValue>(E.Val.get());
    // An alias record: a name no entry has, pointing at a tensor entry.
    ValuePtr Target;
    if (K && V && K->kind() == Value::Kind::Str &&
        V->kind() == Value::Kind::Str && !SD.find(K->value()))
      Target = Tensors.lookup(V->value());
    if (!Target) {
      Kept.push_back(std::move(E));
      continue;
    }
    // The same tensor under a second name, as a tied state_dict() holds it
    // (and as torch.load gives it back from a .pth).
    Restored.push_back({E.Key, std::move(Target)});
  }
  unsigned N = Restored.size();
  State->entries() = std::move(Kept);
  if (State->entries().empty())
    SD.setState(nullptr);
  for (DictEntry &E : Restored)
    SD.entries().push_back(std::move(E));
  return N;
}

Expected<std::unique_ptr<Checkpoint>>
wopt::importSafetensors(std::shared_ptr<SourceFile> Source,
                        const SafetensorsImportOptions &Opts) {
  Expected<Header> H = parseHeader(Source->path(), Source->bytes());
  if (!H)
    return H.takeError();
  // A state dict is an OrderedDict; export to .pth writes it as one.
  auto Root = std::make_shared<DictValue>(/*Ordered=*/true);
  for (const HeaderTensor &HT : H->Tensors)
    Root->entries().push_back({makeStr(HT.Name), buildTensor(Source, *H, HT)});
  if (H->HasMetadata && !H->Metadata.empty()) {
    auto Meta = std::make_shared<DictValue>();
    for (auto &KV : H->Metadata)
      Meta->entries().push_back({makeStr(KV.first), makeStr(KV.second)});
    Root->setState(std::move(Meta));
  }
  if (Opts.RestoreAliases)
    restoreSafetensorsAliases(*Root);
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
struct PlannedTensor {
  std::string Name;
  const TensorValue *T;
  uint64_t Bytes = 0;  ///< in the file
  uint64_t Offset = 0; ///< in the data buffer
};

struct ExportPlan {
  std::vector<PlannedTensor> Tensors; ///< header order: the state dict's
  std::vector<size_t> DataOrder;      ///< indices into Tensors
  std::vector<std::pair<std::string, std::string>> Metadata;
  std::vector<std::pair<std::string, std::string>> Aliases; ///< dropped, kept
  uint64_t DataBytes = 0;
};

/// Identity of a view: tensors equal in all of these hold the same values
/// because they read the same bytes.
using ViewKey = std::tuple<const Storage *, int64_t, std::vector<int64_t>,
                           std::vector<int64_t>, DType>;

void defaultWarning(const std::string &Msg) {
  WithColor::warning(errs(), "wopt") << Msg << "\n";
}
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

/// Bytes the tensor takes in the file; sub-byte kinds must start and end on
/// a byte boundary of a contiguous view (they cannot be gathered).
static Expected<uint64_t> checkTensor(StringRef Path, StringRef Name,
                                      const TensorValue &T) {
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
  std::optional<uint64_t> OutBytes =
      Numel ? dtypeBytes(T.dtype(), *Numel) : std::nullopt;
  if (!Need || !OutBytes || *Need > S->numBytes() || T.storageOffset() < 0)
    return tensorError(Path, Name,
                       "view " + T.typeString() +
                           " reaches past its storage of " +
                           Twine(S->numBytes()) + " bytes");
  if (isSubByte(T.dtype())) {
    uint64_t Bits = dtypeBits(T.dtype());
    if (!T.isContiguous() || *Numel * Bits % 8 ||
        uint64_t(T.storageOffset()) * Bits % 8)
      return tensorError(Path, Name,
                         "a " + T.typeString() +
                             " view must be contiguous and start and end on "
                             "a byte boundary: its elements are narrower "
                             "than a byte");
  }
  // safetensors has no strides: a broadcast (stride-0) view is written
  // element by element. Bound what that costs by what the file holds.
  if (*OutBytes > S->numBytes() && *OutBytes > MaxExpandedViewBytes)
    return tensorError(Path, Name,
                       "view " + T.typeString() + " expands a storage of " +
                           Twine(S->numBytes()) + " bytes to " +
                           Twine(*OutBytes) +
                           " bytes; wopt writes broadcast views up to 1 GiB "
                           "(write a .pth, which keeps the view, or make it "
                           "contiguous in torch)");
  return *OutBytes;
}

static Error checkUniqueNames(StringRef Path, const DictValue &SD) {
  StringSet<> Seen;
  for (const DictEntry &E : SD.entries())
    if (!Seen.insert(*E.keyString()).second)
      return tensorError(Path, *E.keyString(),
                         "name appears twice in the state dict; safetensors "
                         "names are unique (readers refuse a duplicate)");
  return Error::success();
}

/// The root, when it is a dict of string keys (tensors or not: the caller
/// says what is wrong with an entry); an empty dict is an empty state dict.
static const DictValue *rootDict(const Checkpoint &C) {
  if (DictValue *SD = C.stateDict())
    return SD;
  auto *D = dyn_cast_or_null<DictValue>(C.root().get());
  return D && D->entries().empty() ? D : nullptr;
}

static Expected<ExportPlan> planExport(const Checkpoint &C, StringRef Path) {
  // safetensors is little-endian by definition; the bytes of a big-endian
  // checkpoint would be read as other values.
  if (C.ByteOrder != "little")
    return fileError(Path, "the checkpoint's tensor bytes are " + C.ByteOrder +
                               "-endian and safetensors holds little-endian "
                               "data only (write a .pth, which keeps the "
                               "byte order)");
  const DictValue *SD = rootDict(C);
  if (!SD)
    return fileError(Path, "safetensors holds a flat dict of named tensors, "
                           "but the root is not a state dict; run unwrap "
                           "first (e.g. -pass-pipeline=unwrap{key=model})");
  if (Error E = checkUniqueNames(Path, *SD))
    return E;
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
    Expected<uint64_t> Bytes = checkTensor(Path, Name, *T);
    if (!Bytes)
      return Bytes.takeError();
    ViewKey K{T->storage().get(), T->storageOffset(),
              std::vector<int64_t>(T->shape().begin(), T->shape().end()),
              std::vector<int64_t>(T->strides().begin(), T->strides().end()),
              T->dtype()};
    auto [It, New] = Kept.try_emplace(std::move(K), Name.str());
    if (New) {
      Plan.Tensors.push_back({Name.str(), T, *Bytes, 0});
    } else if (MetaKeys.insert(Name).second) {
      // Like save_model: never override metadata the user already had.
      Plan.Aliases.emplace_back(Name.str(), It->second);
    }
  }
  // What every loader of torch checkpoints checks for ("pt"; transformers
  // refuses others). An empty state dict is written as `{}`.
  if (!Plan.Tensors.empty() && !MetaKeys.count("format"))
    Plan.Metadata.insert(Plan.Metadata.begin(), {"format", "pt"});
  // Data by decreasing element width, stable: with the 8-aligned header,
  // every tensor then starts at a multiple of its element size.
  for (size_t I = 0; I < Plan.Tensors.size(); ++I)
    Plan.DataOrder.push_back(I);
  llvm::stable_sort(Plan.DataOrder, [&](size_t A, size_t B) {
    return dtypeBits(Plan.Tensors[A].T->dtype()) >
           dtypeBits(Plan.Tensors[B].T->dtype());
  });
  for (size_t I : Plan.DataOrder) {
    Plan.Tensors[I].Offset = Plan.DataBytes;
    Plan.DataBytes += Plan.Tensors[I].Bytes;
  }
  // Anything else the readers would refuse is never written either (the
  // checks above name safetensors' own rules first).
  if (Error E = verifyCheckpoint(C))
    return fileError(Path,
                     "cannot write an invalid IR: " + toString(std::move(E)));
  return Plan;
}

/// Sharing safetensors cannot express, said once per file: exact aliases
/// are recorded (and only wopt reads the record back), different views of
/// one storage become copies.
static void warnSharing(StringRef Path, const ExportPlan &Plan,
                        const SafetensorsExportOptions &Opts) {
  auto Warn = Opts.OnWarning ? Opts.OnWarning : defaultWarning;
  if (!Plan.Aliases.empty()) {
    std::string Msg;
    raw_string_ostream OS(Msg);
    OS << Path << ": '" << Plan.Aliases[0].first << "' is the same tensor as '"
       << Plan.Aliases[0].second << "'";
    if (Plan.Aliases.size() > 1)
      OS << " (and " << Plan.Aliases.size() - 1 << " more tied names)";
    OS << "; written once, the tie recorded in __metadata__: wopt restores "
          "it on import, safetensors.torch.load_file does not (load_model "
          "into the tied model does)";
    Warn(OS.str());
  }
  std::map<const Storage *, std::vector<StringRef>> Users;
  std::vector<const Storage *> Order;
  for (const PlannedTensor &P : Plan.Tensors) {
    auto &U = Users[P.T->storage().get()];
    if (U.empty())
      Order.push_back(P.T->storage().get());
    U.push_back(P.Name);
  }
  for (const Storage *S : Order) {
    const std::vector<StringRef> &U = Users[S];
    if (U.size() < 2)
      continue;
    std::string Msg;
    raw_string_ostream OS(Msg);
    OS << Path << ": tensors '" << U[0] << "' and '" << U[1] << "'";
    if (U.size() > 2)
      OS << " (and " << (U.size() - 2) << " more)";
    OS << " are different views of one storage; safetensors stores each "
          "as its own copy";
    Warn(OS.str());
  }
}

static std::string renderHeader(const ExportPlan &Plan) {
  std::string Text;
  raw_string_ostream OS(Text);
  json::OStream J(OS);
  J.object([&] {
    if (!Plan.Metadata.empty() || !Plan.Aliases.empty())
      J.attributeObject(MetadataKey, [&] {
        for (auto &[K, V] : Plan.Metadata)
          J.attribute(K, V);
        for (auto &[K, V] : Plan.Aliases)
          J.attribute(K, V);
      });
    for (const PlannedTensor &P : Plan.Tensors) {
      J.attributeObject(P.Name, [&] {
        J.attribute("dtype", dtypeSafetensorsName(P.T->dtype()));
        J.attributeArray("shape", [&] {
          for (int64_t D : P.T->shape())
            J.value(D);
        });
        J.attributeArray("data_offsets", [&] {
          J.value(P.Offset);
          J.value(P.Offset + P.Bytes);
        });
      });
    }
  });
  OS.flush();
  // Padding keeps the data buffer 8-byte aligned in the file.
  Text.append(alignTo(Text.size(), 8) - Text.size(), ' ');
  return Text;
}

/// Writes a strided view row-major, one run along the last dimension at a
/// time, read through Storage::read (no mapping walk, no materialising).
static Error writeStrided(AtomicOutput &Out, const TensorValue &T) {
  ArrayRef<int64_t> Shape = T.shape(), Strides = T.strides();
  const unsigned Rank = Shape.size();
  const uint64_t Elt = dtypeSize(T.dtype());
  const uint64_t RunLen = Shape.back();
  const Storage &S = *T.storage();
  uint64_t Runs = *T.numel() / RunLen;
  SmallVector<int64_t, 4> Idx(Rank, 0);
  std::vector<uint8_t> Chunk, Span;
  for (uint64_t R = 0; R < Runs; ++R) {
    uint64_t Base = T.storageOffset();
    for (unsigned D = 0; D + 1 < Rank; ++D)
      Base += Idx[D] * Strides[D];
    size_t At = Chunk.size();
    Chunk.resize(At + RunLen * Elt);
    if (Strides.back() == 1) {
      if (Error E = S.read(Base * Elt, MutableArrayRef<uint8_t>(
                                           Chunk.data() + At, RunLen * Elt)))
        return E;
    } else {
      // The elements of one run, read as the span that holds them.
      uint64_t Step = Strides.back() * Elt;
      Span.resize((RunLen - 1) * Step + Elt);
      if (Error E = S.read(Base * Elt, Span))
        return E;
      for (uint64_t I = 0; I < RunLen; ++I)
        std::memcpy(Chunk.data() + At + I * Elt, Span.data() + I * Step, Elt);
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

static Error writeTensor(AtomicOutput &Out, const PlannedTensor &P,
                         const wopt::detail::ProgressFn &Report) {
  const TensorValue &T = *P.T;
  if (P.Bytes == 0)
    return Error::success();
  // Contiguous (every sub-byte tensor is, checked in the plan): copied
  // straight from its storage.
  if (T.isContiguous()) {
    uint64_t From = *dtypeBytes(T.dtype(), uint64_t(T.storageOffset()));
    return wopt::detail::writeStorageRangeReporting(Out, *T.storage(), From,
                                                    P.Bytes, Report);
  }
  if (Error E = writeStrided(Out, T))
    return E;
  if (Report)
    Report(Out.position());
  return Error::success();
}

Error wopt::exportSafetensors(const Checkpoint &C, StringRef Path,
                              const SafetensorsExportOptions &Opts) {
  Expected<ExportPlan> Plan = planExport(C, Path);
  if (!Plan)
    return Plan.takeError();
  warnSharing(Path, *Plan, Opts);
  std::string HeaderText = renderHeader(*Plan);
  if (HeaderText.size() > MaxHeaderSize)
    return fileError(Path, "the header needs " + Twine(HeaderText.size()) +
                               " bytes, more than readers accept (" +
                               Twine(MaxHeaderSize) + ")");
  auto Out = AtomicOutput::create(Path);
  if (!Out)
    return Out.takeError();
  uint64_t DataStart = 8 + HeaderText.size();
  std::optional<wopt::detail::ProgressBar> Bar;
  wopt::detail::ProgressFn Report;
  if (Opts.OnProgress) {
    Report = [&](uint64_t Pos) { Opts.OnProgress(Pos - DataStart); };
  } else if (Opts.Progress) {
    Bar.emplace(Path == "-" ? "<stdout>" : sys::path::filename(Path),
                Plan->DataBytes);
    Report = [&](uint64_t Pos) { Bar->update(Pos - DataStart); };
  }
  uint8_t Len[8];
  support::endian::write64le(Len, HeaderText.size());
  if (Error E = (*Out)->write(ArrayRef<uint8_t>(Len)))
    return E;
  if (Error E = (*Out)->write(StringRef(HeaderText)))
    return E;
  for (size_t I : Plan->DataOrder)
    if (Error E = writeTensor(**Out, Plan->Tensors[I], Report))
      return E;
  if (Bar)
    Bar->done();
  return (*Out)->commit();
}
