//===- Manifest.cpp - Manifest model, JSON read and write ----------------===//
//
// Reading is strict on purpose: a manifest is the contract a checkpoint is
// held to, so a typo ("optinal", "shape": "384") must fail loudly rather than
// silently weaken the check. Every error is a single line that names the
// file, the entry and the field.
//
//===----------------------------------------------------------------------===//
#include "wopt/Manifest/Manifest.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace wopt;
using namespace llvm;

namespace {

/// Builds "<file>: <entry context>: <what>" errors.
class ManifestErrors {
public:
  explicit ManifestErrors(StringRef Source)
      : Source(Source.empty() ? "<manifest>" : Source.str()) {}

  Error top(const Twine &What) const {
    return createStringError(inconvertibleErrorCode(), Source + ": " + What);
  }
  Error entry(size_t Index, StringRef Name, const Twine &What) const {
    std::string Where = "entry " + std::to_string(Index);
    if (!Name.empty())
      Where += " ('" + Name.str() + "')";
    return top(Where + ": " + What);
  }

private:
  std::string Source;
};

/// A short rendering of a JSON value for "got ..." in messages.
std::string describe(const json::Value &V) {
  std::string S;
  raw_string_ostream OS(S);
  OS << V;
  if (S.size() > 40)
    S = S.substr(0, 37) + "...";
  return S;
}

Error parseShape(const json::Value *V, size_t Index, StringRef Name,
                 const ManifestErrors &E, SmallVectorImpl<int64_t> &Shape) {
  if (!V)
    return E.entry(Index, Name, "missing field 'shape'");
  const json::Array *A = V->getAsArray();
  if (!A)
    return E.entry(Index, Name,
                   "'shape' must be an array of non-negative integers, got " +
                       describe(*V));
  for (size_t I = 0; I < A->size(); ++I) {
    std::optional<int64_t> D = (*A)[I].getAsInteger();
    if (!D || *D < 0)
      return E.entry(Index, Name,
                     "'shape' dimension " + Twine(I) +
                         " must be a non-negative integer, got " +
                         describe((*A)[I]));
    Shape.push_back(*D);
  }
  return Error::success();
}

Expected<ManifestEntry> parseEntry(const json::Value &V, size_t Index,
                                   const ManifestErrors &E) {
  const json::Object *O = V.getAsObject();
  if (!O)
    return E.entry(Index, "", "expected an object, got " + describe(V));

  ManifestEntry Entry;
  const json::Value *NameV = O->get("name");
  if (!NameV)
    return E.entry(Index, "", "missing field 'name'");
  std::optional<StringRef> Name = NameV->getAsString();
  if (!Name || Name->empty())
    return E.entry(Index, "",
                   "'name' must be a non-empty string, got " +
                       describe(*NameV));
  Entry.Name = Name->str();

  for (const auto &KV : *O) {
    StringRef Key = KV.first;
    if (Key != "name" && Key != "dtype" && Key != "shape" && Key != "optional")
      return E.entry(Index, *Name,
                     "unknown field '" + Key +
                         "' (expected name, dtype, shape, optional)");
  }

  const json::Value *DTypeV = O->get("dtype");
  if (!DTypeV)
    return E.entry(Index, *Name, "missing field 'dtype'");
  std::optional<StringRef> DTypeName = DTypeV->getAsString();
  if (!DTypeName)
    return E.entry(Index, *Name,
                   "'dtype' must be a string, got " + describe(*DTypeV));
  std::optional<DType> T = parseManifestDType(*DTypeName);
  if (!T)
    return E.entry(Index, *Name,
                   "unknown dtype '" + *DTypeName +
                       "' (expected a name such as f32, bf16, i64, float32)");
  Entry.Type = *T;

  if (Error Err = parseShape(O->get("shape"), Index, *Name, E, Entry.Shape))
    return Err;

  if (const json::Value *OptV = O->get("optional")) {
    std::optional<bool> B = OptV->getAsBoolean();
    if (!B)
      return E.entry(Index, *Name,
                     "'optional' must be true or false, got " +
                         describe(*OptV));
    Entry.Optional = *B;
  }
  return Entry;
}

Error checkHeader(const json::Object &Root, const ManifestErrors &E,
                  Manifest &M) {
  for (const auto &KV : Root) {
    StringRef Key = KV.first;
    if (Key != "format" && Key != "version" && Key != "entries" &&
        Key != "source")
      return E.top("unknown top-level field '" + Key +
                   "' (expected format, version, source, entries)");
  }
  std::optional<StringRef> Format = Root.getString("format");
  if (!Format)
    return E.top("missing \"format\": \"wopt-manifest\"");
  if (*Format != "wopt-manifest")
    return E.top("'format' is '" + *Format + "', expected 'wopt-manifest'");
  std::optional<int64_t> Version = Root.getInteger("version");
  if (!Version)
    return E.top("missing integer field 'version' (expected 1)");
  if (*Version != 1)
    return E.top("unsupported manifest version " + Twine(*Version) +
                 " (this wopt reads version 1)");
  if (const json::Value *Src = Root.get("source")) {
    std::optional<StringRef> S = Src->getAsString();
    if (!S)
      return E.top("'source' must be a string, got " + describe(*Src));
    M.MadeFrom = S->str();
  }
  return Error::success();
}

/// Reads manifests written in the plain subset of JSON that writeManifest
/// and most people use (strings of printable ASCII without escapes, integers
/// without sign or exponent, known fields once each) in one pass over the
/// text, without a JSON tree. llvm::json::parse gives every object a DenseMap
/// of at least 64 buckets and copies the whole entries array each time it
/// grows (json::Value's move constructor is not noexcept): 22 k instructions
/// per entry, a sixth of verify-only's work on ViT-L (docs/Performance.md).
/// Anything outside the subset, and every error, makes read() return nothing
/// and the general reader decides, with its messages; so this reader only
/// needs to be right about what it accepts.
class PlainReader {
public:
  explicit PlainReader(StringRef Text)
      : P(Text.bytes_begin()), End(Text.bytes_end()) {}

  std::optional<Manifest> read(StringRef SourceName) {
    Manifest M;
    M.SourceName = SourceName.str();
    bool HasFormat = false, HasVersion = false, HasSource = false,
         HasEntries = false;
    bool OK = object([&](StringRef Key) {
      StringRef Str;
      int64_t N;
      if (Key == "format" && !HasFormat)
        return HasFormat = string(Str) && Str == "wopt-manifest";
      if (Key == "version" && !HasVersion)
        return HasVersion = integer(N) && N == 1;
      if (Key == "source" && !HasSource) {
        HasSource = string(Str);
        M.MadeFrom = Str.str();
        return HasSource;
      }
      if (Key == "entries" && !HasEntries)
        return HasEntries = array([&] {
                 M.Entries.emplace_back();
                 return entry(M.Entries.back());
               });
      return false;
    });
    ws();
    if (!OK || P != End || !HasFormat || !HasVersion || !HasEntries ||
        hasDuplicateName(M))
      return std::nullopt;
    return M;
  }

private:
  void ws() {
    while (P != End && (*P == ' ' || *P == '\n' || *P == '\t' || *P == '\r'))
      ++P;
  }
  bool eat(char C) {
    ws();
    if (P == End || *P != C)
      return false;
    ++P;
    return true;
  }
  bool string(StringRef &S) {
    if (!eat('"'))
      return false;
    const uint8_t *Start = P;
    while (P != End && *P != '"') {
      if (*P < 0x20 || *P >= 0x7f || *P == '\\')
        return false;
      ++P;
    }
    if (P == End)
      return false;
    S = StringRef(reinterpret_cast<const char *>(Start), P++ - Start);
    return true;
  }
  /// 0 or [1-9][0-9]*, at most 18 digits (always fits an int64_t).
  bool integer(int64_t &V) {
    ws();
    const uint8_t *Start = P;
    for (V = 0; P != End && *P >= '0' && *P <= '9'; ++P)
      V = V * 10 + (*P - '0');
    size_t Digits = P - Start;
    if (Digits == 0 || Digits > 18 || (Digits > 1 && *Start == '0'))
      return false;
    // A fraction or exponent follows: a JSON number, but not this subset.
    return P == End || (*P != '.' && *P != 'e' && *P != 'E');
  }
  bool literal(StringRef Word) {
    ws();
    if (size_t(End - P) < Word.size() ||
        StringRef(reinterpret_cast<const char *>(P), Word.size()) != Word)
      return false;
    P += Word.size();
    return true;
  }
  /// '{' (key ':' value (',' key ':' value)*)? '}'; Field reads a value.
  template <typename F> bool object(F Field) {
    if (!eat('{'))
      return false;
    if (eat('}'))
      return true;
    do {
      StringRef Key;
      if (!string(Key) || !eat(':') || !Field(Key))
        return false;
    } while (eat(','));
    return eat('}');
  }
  template <typename F> bool array(F Element) {
    if (!eat('['))
      return false;
    if (eat(']'))
      return true;
    do {
      if (!Element())
        return false;
    } while (eat(','));
    return eat(']');
  }
  bool entry(ManifestEntry &E) {
    bool HasName = false, HasDType = false, HasShape = false, HasOpt = false;
    bool OK = object([&](StringRef Key) {
      StringRef Str;
      if (Key == "name" && !HasName) {
        HasName = string(Str) && !Str.empty();
        E.Name = Str.str();
        return HasName;
      }
      if (Key == "dtype" && !HasDType) {
        std::optional<DType> T;
        if (string(Str))
          T = parseManifestDType(Str);
        E.Type = T.value_or(DType::Float32);
        return HasDType = T.has_value();
      }
      if (Key == "shape" && !HasShape)
        return HasShape = array([&] {
                 int64_t D;
                 if (!integer(D))
                   return false;
                 E.Shape.push_back(D);
                 return true;
               });
      if (Key == "optional" && !HasOpt)
        return HasOpt = (E.Optional = literal("true")) || literal("false");
      return false;
    });
    return OK && HasName && HasDType && HasShape;
  }
  static bool hasDuplicateName(const Manifest &M) {
    DenseSet<StringRef> Seen;
    Seen.reserve(M.Entries.size());
    for (const ManifestEntry &E : M.Entries)
      if (!Seen.insert(E.Name).second)
        return true;
    return false;
  }

  const uint8_t *P, *End;
};

} // namespace

std::optional<DType> wopt::parseManifestDType(StringRef Name) {
  Name.consume_front("torch.");
  if (std::optional<DType> T = parseDTypeName(Name))
    return T;
  if (std::optional<DType> T = dtypeFromTorchName(Name))
    return T;
  // torch's aliases, as str(torch.float) would never print but users write.
  return StringSwitch<std::optional<DType>>(Name)
      .Case("float", DType::Float32)
      .Case("double", DType::Float64)
      .Case("half", DType::Float16)
      .Case("long", DType::Int64)
      .Case("int", DType::Int32)
      .Case("short", DType::Int16)
      .Case("cfloat", DType::Complex64)
      .Case("cdouble", DType::Complex128)
      .Case("chalf", DType::Complex32)
      .Default(std::nullopt);
}

Expected<Manifest> wopt::parseManifest(StringRef JSONText,
                                       StringRef SourceName) {
  if (std::optional<Manifest> M = PlainReader(JSONText).read(SourceName))
    return std::move(*M);
  ManifestErrors E(SourceName);
  Expected<json::Value> Root = json::parse(JSONText);
  if (!Root) {
    // json::ParseError prints "[line:col, byte=N]: message"; reshape it
    // into the usual "file:line:col: message".
    std::string Msg = toString(Root.takeError());
    StringRef Where, What;
    std::tie(Where, What) = StringRef(Msg).split("]: ");
    Where = Where.ltrim('[').split(',').first;
    std::string Name = SourceName.empty() ? "<manifest>" : SourceName.str();
    return createStringError(inconvertibleErrorCode(),
                             Name + ":" + Where + ": invalid JSON: " + What);
  }
  const json::Object *Obj = Root->getAsObject();
  if (!Obj)
    return E.top("expected a JSON object at the top level, got " +
                 describe(*Root));

  Manifest M;
  M.SourceName = SourceName.str();
  if (Error Err = checkHeader(*Obj, E, M))
    return Err;

  const json::Value *EntriesV = Obj->get("entries");
  if (!EntriesV)
    return E.top("missing field 'entries'");
  const json::Array *Entries = EntriesV->getAsArray();
  if (!Entries)
    return E.top("'entries' must be an array, got " + describe(*EntriesV));

  StringMap<size_t> FirstIndex;
  M.Entries.reserve(Entries->size());
  for (size_t I = 0; I < Entries->size(); ++I) {
    Expected<ManifestEntry> Entry = parseEntry((*Entries)[I], I, E);
    if (!Entry)
      return Entry.takeError();
    auto [It, Inserted] = FirstIndex.try_emplace(Entry->Name, I);
    if (!Inserted)
      return E.entry(I, Entry->Name,
                     "duplicate name; first listed as entry " +
                         Twine(It->second));
    M.Entries.push_back(std::move(*Entry));
  }
  return M;
}

Expected<Manifest> wopt::readManifestFile(StringRef Path) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> Buf =
      MemoryBuffer::getFileOrSTDIN(Path, /*IsText=*/true);
  if (!Buf)
    return createStringError(Buf.getError(), Path + ": cannot read manifest: " +
                                                 Buf.getError().message());
  return parseManifest((*Buf)->getBuffer(), Path);
}

void wopt::writeManifest(const Manifest &M, raw_ostream &OS) {
  OS << "{\n  \"format\": \"wopt-manifest\",\n  \"version\": 1,\n";
  if (!M.MadeFrom.empty())
    OS << "  \"source\": " << json::Value(M.MadeFrom) << ",\n";
  OS << "  \"entries\": [";
  bool First = true;
  for (const ManifestEntry &E : M.Entries) {
    OS << (First ? "\n" : ",\n");
    First = false;
    OS << "    {\"name\": " << json::Value(E.Name) << ", \"dtype\": \""
       << dtypeName(E.Type) << "\", \"shape\": [";
    for (size_t I = 0; I < E.Shape.size(); ++I)
      OS << (I ? ", " : "") << E.Shape[I];
    OS << "]";
    if (E.Optional)
      OS << ", \"optional\": true";
    OS << "}";
  }
  OS << (First ? "]\n}\n" : "\n  ]\n}\n");
}

Manifest wopt::manifestFromStateDict(const DictValue &SD, StringRef MadeFrom) {
  Manifest M;
  M.MadeFrom = MadeFrom.str();
  for (const DictEntry &DE : SD.entries()) {
    std::optional<StringRef> Key = DE.keyString();
    const auto *T = dyn_cast_or_null<TensorValue>(DE.Val.get());
    // Non-tensor entries (`_extra_state` objects) have no dtype or shape
    // to check; the target's load_state_dict handles them.
    if (!Key || !T)
      continue;
    ManifestEntry E;
    E.Name = Key->str();
    E.Type = T->dtype();
    E.Shape.assign(T->shape().begin(), T->shape().end());
    M.Entries.push_back(std::move(E));
  }
  return M;
}

Error wopt::emitManifest(const Checkpoint &C, raw_ostream &OS) {
  const DictValue *SD = C.stateDict();
  if (!SD)
    return createStringError(
        inconvertibleErrorCode(),
        (C.SourcePath.empty() ? std::string("input") : C.SourcePath) +
            ": cannot write a manifest: the root is not a state dict; run "
            "unwrap first");
  writeManifest(manifestFromStateDict(*SD, C.SourcePath), OS);
  return Error::success();
}
