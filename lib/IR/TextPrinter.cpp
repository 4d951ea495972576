//===- TextPrinter.cpp - Writes the .wir text form ------------------------===//
//
// The printer is the canonical spelling: whatever the parser accepts, the
// printer writes one way only, so print -> parse -> print is the identity.
// docs/IR.md describes the grammar.
//
//===----------------------------------------------------------------------===//

#include "TextIRInternal.h"
#include "wopt/IR/FloatBits.h"
#include "wopt/IR/TextIR.h"
#include "llvm/ADT/APInt.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/JSON.h"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>

using namespace wopt;
using namespace llvm;

//===----------------------------------------------------------------------===//
// Literals
//===----------------------------------------------------------------------===//

void textir::printQuoted(raw_ostream &OS, StringRef S) {
  // Non-ASCII text stays readable when it is valid UTF-8; anything else is
  // escaped byte by byte so the file stays valid text.
  bool RawHighBytes = json::isUTF8(S);
  OS << '"';
  for (unsigned char C : S) {
    switch (C) {
    case '"':
      OS << "\\\"";
      continue;
    case '\\':
      OS << "\\\\";
      continue;
    case '\n':
      OS << "\\n";
      continue;
    case '\t':
      OS << "\\t";
      continue;
    case '\r':
      OS << "\\r";
      continue;
    default:
      break;
    }
    if ((C >= 0x20 && C < 0x7f) || (C >= 0x80 && RawHighBytes))
      OS << C;
    else
      OS << "\\x" << hexdigit(C >> 4, true) << hexdigit(C & 15, true);
  }
  OS << '"';
}

static void printBytesLiteral(raw_ostream &OS, StringRef S) {
  OS << 'b';
  // Bytes are not text: escape every byte outside printable ASCII.
  OS << '"';
  for (unsigned char C : S) {
    if (C == '"' || C == '\\')
      OS << '\\' << C;
    else if (C >= 0x20 && C < 0x7f)
      OS << C;
    else
      OS << "\\x" << hexdigit(C >> 4, true) << hexdigit(C & 15, true);
  }
  OS << '"';
}

static void printHex(raw_ostream &OS, ArrayRef<uint8_t> Bytes) {
  OS << "x\"";
  for (uint8_t B : Bytes)
    OS << hexdigit(B >> 4, true) << hexdigit(B & 15, true);
  OS << '"';
}

/// Shortest "%.Ng" spelling of D for which Reads(text) gives back Bits; the
/// caller's reader decides the target precision (f64, f32, f16, bf16).
template <typename ReadFn>
static std::string shortestFloat(double D, uint64_t Bits, ReadFn Reads) {
  char Buf[64];
  // Whole numbers of moderate size read best in full ("65504.0", "100.0");
  // %g would pick "6.55e+04" or "1e+02" as the shortest exact spelling.
  if (D == std::trunc(D) && std::fabs(D) < 1e15) {
    snprintf(Buf, sizeof(Buf), "%.0f.0", D);
    return Buf;
  }
  for (int Prec = 1; Prec <= 17; ++Prec) {
    snprintf(Buf, sizeof(Buf), "%.*g", Prec, D);
    if (Reads(Buf) == Bits)
      break;
  }
  std::string S = Buf;
  // Floats always carry a '.' or an exponent so they never read as ints.
  if (S.find_first_of(".e") == std::string::npos)
    S += ".0";
  return S;
}

/// nan/inf spellings; empty for finite values and for NaNs other than the
/// canonical quiet NaN of the format (those have no literal).
static std::string nonFiniteLiteral(double D, bool IsCanonicalNaN) {
  if (std::isinf(D))
    return D < 0 ? "-inf" : "inf";
  if (std::isnan(D) && IsCanonicalNaN)
    return std::signbit(D) ? "-nan" : "nan";
  return "";
}

static std::string formatDouble(double D) {
  if (std::isnan(D))
    return std::signbit(D) ? "-nan" : "nan";
  if (std::isinf(D))
    return D < 0 ? "-inf" : "inf";
  return shortestFloat(D, bit_cast<uint64_t>(D), [](const char *S) {
    return bit_cast<uint64_t>(strtod(S, nullptr));
  });
}

/// The canonical BigInt bytes of A: the fewest two's complement bytes that
/// hold it, as Python's pickler writes LONG1/LONG4.
static std::string bigIntBytes(const APInt &A) {
  unsigned NumBytes = (A.getSignificantBits() + 7) / 8;
  APInt W = A.sextOrTrunc(NumBytes * 8);
  std::string Bytes(NumBytes, '\0');
  for (unsigned I = 0; I < NumBytes; ++I)
    Bytes[I] = (char)W.extractBitsAsZExtValue(8, I * 8);
  return Bytes;
}

static void printBigInt(raw_ostream &OS, StringRef Bytes) {
  if (!Bytes.empty()) {
    SmallVector<uint64_t, 4> Words((Bytes.size() + 7) / 8, 0);
    for (size_t I = 0; I < Bytes.size(); ++I)
      Words[I / 8] |= (uint64_t)(uint8_t)Bytes[I] << (8 * (I % 8));
    APInt A((unsigned)Bytes.size() * 8, Words);
    // A decimal literal reads back as Int when it fits, and as the canonical
    // bytes otherwise; only then is the decimal spelling exact.
    if (A.getSignificantBits() > 64 && bigIntBytes(A) == Bytes) {
      OS << toString(A, 10, /*Signed=*/true);
      return;
    }
  }
  OS << "bigint ";
  printHex(OS, arrayRefFromStringRef(Bytes));
}

//===----------------------------------------------------------------------===//
// Tensor data
//===----------------------------------------------------------------------===//

namespace {
/// Reads element I of a little-endian buffer as T.
template <typename T> T elementAt(ArrayRef<uint8_t> Bytes, size_t I) {
  return support::endian::read<T, llvm::endianness::little>(Bytes.data() +
                                                            I * sizeof(T));
}
} // namespace

template <typename T>
static bool printInts(raw_ostream &OS, ArrayRef<uint8_t> Bytes) {
  size_t N = Bytes.size() / sizeof(T);
  for (size_t I = 0; I < N; ++I) {
    if (I)
      OS << ", ";
    // Widen first: raw_ostream prints int8_t/uint8_t as characters.
    if constexpr (std::is_signed_v<T>)
      OS << (int64_t)elementAt<T>(Bytes, I);
    else
      OS << (uint64_t)elementAt<T>(Bytes, I);
  }
  return true;
}

/// Prints 16-bit floats (f16 or bf16) through their double value.
template <typename Fmt>
static bool printSmallFloats(raw_ostream &OS, ArrayRef<uint8_t> Bytes,
                             uint16_t CanonicalNaN) {
  size_t N = Bytes.size() / 2;
  for (size_t I = 0; I < N; ++I) {
    uint16_t Bits = elementAt<uint16_t>(Bytes, I);
    double D = Fmt::toDouble(Bits);
    std::string S;
    if (std::isfinite(D))
      S = shortestFloat(D, Bits, [](const char *Text) -> uint64_t {
        return Fmt::fromDouble(strtod(Text, nullptr));
      });
    else
      S = nonFiniteLiteral(D, (Bits & 0x7fff) == CanonicalNaN);
    if (S.empty())
      return false;
    OS << (I ? ", " : "") << S;
  }
  return true;
}

static bool printF32s(raw_ostream &OS, ArrayRef<uint8_t> Bytes) {
  size_t N = Bytes.size() / 4;
  for (size_t I = 0; I < N; ++I) {
    uint32_t Bits = elementAt<uint32_t>(Bytes, I);
    float F = bit_cast<float>(Bits);
    std::string S;
    if (std::isfinite(F))
      S = shortestFloat(F, Bits, [](const char *Text) -> uint64_t {
        return bit_cast<uint32_t>(strtof(Text, nullptr));
      });
    else
      S = nonFiniteLiteral(F, (Bits & 0x7fffffff) == 0x7fc00000);
    if (S.empty())
      return false;
    OS << (I ? ", " : "") << S;
  }
  return true;
}

static bool printF64s(raw_ostream &OS, ArrayRef<uint8_t> Bytes) {
  size_t N = Bytes.size() / 8;
  for (size_t I = 0; I < N; ++I) {
    uint64_t Bits = elementAt<uint64_t>(Bytes, I);
    double D = bit_cast<double>(Bits);
    bool Canonical = (Bits & ~(1ull << 63)) == 0x7ff8000000000000ull;
    if (std::isnan(D) && !Canonical)
      return false;
    OS << (I ? ", " : "") << formatDouble(D);
  }
  return true;
}

static bool printBools(raw_ostream &OS, ArrayRef<uint8_t> Bytes) {
  for (size_t I = 0; I < Bytes.size(); ++I) {
    if (Bytes[I] > 1)
      return false;
    OS << (I ? ", " : "") << (Bytes[I] ? "true" : "false");
  }
  return true;
}

/// Writes the elements as literals; false when the type (complex, float8)
/// or some element (a NaN with a payload) has no exact literal.
static bool printElementList(raw_ostream &OS, ArrayRef<uint8_t> Bytes,
                             DType T) {
  if (isSubByte(T) || Bytes.size() % dtypeSize(T) != 0)
    return false;
  switch (T) {
  case DType::UInt8:
  case DType::QUInt8:
    return printInts<uint8_t>(OS, Bytes);
  case DType::Int8:
  case DType::QInt8:
    return printInts<int8_t>(OS, Bytes);
  case DType::Int16:
    return printInts<int16_t>(OS, Bytes);
  case DType::UInt16:
    return printInts<uint16_t>(OS, Bytes);
  case DType::Int32:
  case DType::QInt32:
    return printInts<int32_t>(OS, Bytes);
  case DType::UInt32:
    return printInts<uint32_t>(OS, Bytes);
  case DType::Int64:
    return printInts<int64_t>(OS, Bytes);
  case DType::UInt64:
    return printInts<uint64_t>(OS, Bytes);
  case DType::Bool:
    return printBools(OS, Bytes);
  case DType::Float16:
    return printSmallFloats<wopt::detail::Half>(OS, Bytes, 0x7e00);
  case DType::BFloat16:
    return printSmallFloats<wopt::detail::BFloat>(OS, Bytes, 0x7fc0);
  case DType::Float32:
    return printF32s(OS, Bytes);
  case DType::Float64:
    return printF64s(OS, Bytes);
  default:
    return false;
  }
}

/// `[e0, e1, ...]` when every element has a literal, else `x"..."`.
static void printData(raw_ostream &OS, ArrayRef<uint8_t> Bytes, DType T) {
  std::string List;
  raw_string_ostream LS(List);
  if (printElementList(LS, Bytes, T)) {
    OS << '[' << List << ']';
    return;
  }
  printHex(OS, Bytes);
}

//===----------------------------------------------------------------------===//
// The printer
//===----------------------------------------------------------------------===//

namespace {

class Printer {
public:
  Printer(raw_ostream &OS, const PrintOptions &Opts) : OS(OS), Opts(Opts) {}

  void printCheckpoint(const Checkpoint &C);
  /// Counts references so that shared nodes get @names; call before
  /// printing Root or anything below it.
  void analyze(const Value &Root);
  void printValue(const Value &V, unsigned Indent);

private:
  void nameStorages(const Value &Root);
  bool ownsImplicitStorage(const TensorValue &T) const;
  bool shouldPrintData(const Storage &S) const {
    return Opts.InlineDataLimit > 0 && S.hasData() &&
           S.numBytes() <= Opts.InlineDataLimit;
  }
  void printStorageDecl(const Storage &S, unsigned Name);
  void printHeader(const Checkpoint &C);
  void printBody(const Value &V, unsigned Indent);
  void printEntries(const std::vector<DictEntry> &Entries, unsigned Indent);
  void printDict(const DictValue &D, unsigned Indent);
  void printSequence(const SequenceValue &S, unsigned Indent);
  void printTensorBody(const TensorValue &T, unsigned Indent);
  void printStorageValue(const StorageValue &SV);
  void printOpaque(const OpaqueValue &O, unsigned Indent);
  void printProvenance(const Provenance &P);
  void printData(ArrayRef<uint8_t> Bytes, DType T);
  bool isNamed(const Value &V) const {
    auto It = Refs.find(&V);
    return It != Refs.end() && It->second > 1;
  }
  bool isFlat(const Value &V) const;
  void newline(unsigned Indent) { OS << '\n' << std::string(2 * Indent, ' '); }

  raw_ostream &OS;
  const PrintOptions &Opts;
  bool BigEndian = false;
  DenseMap<const Storage *, unsigned> Uses;
  DenseMap<const Storage *, unsigned> Names;
  /// References to each node with an identity; more than one gets @N.
  DenseMap<const Value *, unsigned> Refs;
  /// @N of the shared nodes printed so far.
  DenseMap<const Value *, unsigned> ValueNames;
};

} // namespace

void Printer::analyze(const Value &Root) {
  ++Refs[&Root];
  forEachNode(Root, [&](const Value &V) {
    forEachChild(V, [&](const Value &C) {
      if (C.hasIdentity())
        ++Refs[&C];
    });
    return true;
  });
}

/// A tensor owns an implicit storage when nothing else uses it and it is
/// exactly what the tensor spans, in the tensor's own element type: the
/// parser rebuilds such a storage from the tensor alone.
bool Printer::ownsImplicitStorage(const TensorValue &T) const {
  const StorageRef &S = T.storage();
  if (!S)
    return false;
  auto It = Uses.find(S.get());
  if (It != Uses.end() && It->second > 1)
    return false;
  return S->elementType() == T.dtype() &&
         T.requiredStorageBytes() == S->numBytes();
}

void Printer::nameStorages(const Value &Root) {
  // A storage value always refers to a declared storage.
  forEachNode(Root, [&](const Value &V) {
    if (auto *T = dyn_cast<TensorValue>(&V); T && T->storage())
      ++Uses[T->storage().get()];
    else if (auto *SV = dyn_cast<StorageValue>(&V); SV && SV->storage())
      Uses[SV->storage().get()] += 2;
    return true;
  });
  forEachNode(Root, [&](const Value &V) {
    const StorageRef *S = nullptr;
    if (auto *T = dyn_cast<TensorValue>(&V))
      S = T->storage() && !ownsImplicitStorage(*T) ? &T->storage() : nullptr;
    else if (auto *SV = dyn_cast<StorageValue>(&V))
      S = SV->storage() ? &SV->storage() : nullptr;
    if (!S || Names.count(S->get()))
      return true;
    unsigned Name = Names.size();
    Names[S->get()] = Name;
    printStorageDecl(**S, Name);
    return true;
  });
}

void Printer::printStorageDecl(const Storage &S, unsigned Name) {
  OS << "storage %" << Name << " : " << dtypeName(S.elementType());
  if (std::optional<uint64_t> N = dtypeElements(S.elementType(), S.numBytes()))
    OS << " x " << *N;
  else
    OS << " bytes " << S.numBytes();
  if (S.location() != "cpu") {
    OS << " device ";
    textir::printQuoted(OS, S.location());
  }
  if (shouldPrintData(S)) {
    OS << " = ";
    printData(S.bytes(), S.elementType());
  }
  OS << '\n';
}

/// Literals read as little-endian; a big-endian checkpoint's bytes are
/// printed as they are, in hex.
void Printer::printData(ArrayRef<uint8_t> Bytes, DType T) {
  if (BigEndian && dtypeBits(T) > 8) {
    printHex(OS, Bytes);
    return;
  }
  ::printData(OS, Bytes, T);
}

void Printer::printHeader(const Checkpoint &C) {
  SmallVector<std::pair<StringRef, StringRef>, 4> Attrs;
  if (!C.Format.empty() && C.Format != "wir")
    Attrs.push_back({"format", C.Format});
  if (!C.FormatVersion.empty())
    Attrs.push_back({"version", C.FormatVersion});
  if (C.ByteOrder != "little")
    Attrs.push_back({"byteorder", C.ByteOrder});
  if (!C.RecordPrefix.empty())
    Attrs.push_back({"prefix", C.RecordPrefix});
  OS << "checkpoint ";
  if (Attrs.empty())
    return;
  OS << "attributes {";
  interleaveComma(Attrs, OS, [&](const std::pair<StringRef, StringRef> &A) {
    OS << A.first << " = ";
    textir::printQuoted(OS, A.second);
  });
  OS << "} ";
}

void Printer::printCheckpoint(const Checkpoint &C) {
  BigEndian = C.ByteOrder == "big";
  if (C.root()) {
    analyze(*C.root());
    nameStorages(*C.root());
  }
  printHeader(C);
  if (C.root())
    printValue(*C.root(), 0);
  else
    OS << "none";
  OS << '\n';
}

/// Flat values print on one line; containers of flat values stay inline.
/// A shared node printed already is a flat @N.
bool Printer::isFlat(const Value &V) const {
  SmallPtrSet<const Value *, 16> Seen;
  std::function<bool(const Value &)> Flat = [&](const Value &X) {
    if (isNamed(X) && (ValueNames.count(&X) || !Seen.insert(&X).second))
      return true;
    if (auto *D = dyn_cast<DictValue>(&X))
      return D->entries().empty() && !D->state();
    if (auto *O = dyn_cast<OpaqueValue>(&X))
      if (!O->DictItems.empty())
        return false;
    bool F = true;
    forEachChild(X, [&](const Value &C) { F = F && Flat(C); });
    return F;
  };
  bool F = true;
  forEachChild(V, [&](const Value &C) { F = F && Flat(C); });
  if (auto *D = dyn_cast<DictValue>(&V))
    return D->entries().empty() && !D->state();
  if (auto *O = dyn_cast<OpaqueValue>(&V))
    return F && O->DictItems.empty();
  return F;
}

/// `@N = value` the first time a shared node is printed, `@N` after.
void Printer::printValue(const Value &V, unsigned Indent) {
  if (isNamed(V)) {
    if (auto It = ValueNames.find(&V); It != ValueNames.end()) {
      OS << '@' << It->second;
      return;
    }
    unsigned Name = ValueNames.size();
    ValueNames[&V] = Name;
    OS << '@' << Name << " = ";
  }
  printBody(V, Indent);
}

void Printer::printBody(const Value &V, unsigned Indent) {
  switch (V.kind()) {
  case Value::Kind::None:
    OS << "none";
    return;
  case Value::Kind::Bool:
    OS << (cast<BoolValue>(V).value() ? "true" : "false");
    return;
  case Value::Kind::Int:
    OS << cast<IntValue>(V).value();
    return;
  case Value::Kind::BigInt:
    printBigInt(OS, cast<BigIntValue>(V).bytes());
    return;
  case Value::Kind::Float:
    OS << formatDouble(cast<FloatValue>(V).value());
    return;
  case Value::Kind::Str:
    textir::printQuoted(OS, cast<StringValue>(V).value());
    return;
  case Value::Kind::Bytes:
    printBytesLiteral(OS, cast<StringValue>(V).value());
    return;
  case Value::Kind::List:
  case Value::Kind::Tuple:
  case Value::Kind::Set:
  case Value::Kind::FrozenSet:
    printSequence(cast<SequenceValue>(V), Indent);
    return;
  case Value::Kind::Dict:
    printDict(cast<DictValue>(V), Indent);
    return;
  case Value::Kind::Tensor:
    OS << "tensor ";
    printTensorBody(cast<TensorValue>(V), Indent);
    return;
  case Value::Kind::Opaque:
    printOpaque(cast<OpaqueValue>(V), Indent);
    return;
  case Value::Kind::Storage:
    printStorageValue(cast<StorageValue>(V));
    return;
  }
  llvm_unreachable("unknown value kind");
}

void Printer::printStorageValue(const StorageValue &SV) {
  OS << "storage ";
  auto It = Names.find(SV.storage().get());
  if (It != Names.end())
    OS << '%' << It->second;
  else
    OS << "%?"; // outside the checkpoint walk (keyIdentity)
  if (SV.isUntyped())
    OS << " untyped";
  else
    OS << ' ' << dtypeName(SV.typedAs());
}

void Printer::printSequence(const SequenceValue &S, unsigned Indent) {
  StringRef Open, Close;
  switch (S.kind()) {
  case Value::Kind::List:
    Open = "[", Close = "]";
    break;
  case Value::Kind::Tuple:
    Open = "(", Close = ")";
    break;
  case Value::Kind::Set:
    Open = "set{", Close = "}";
    break;
  default:
    Open = "frozenset{", Close = "}";
    break;
  }
  const std::vector<ValuePtr> &Elts = S.elements();
  OS << Open;
  if (isFlat(S)) {
    for (size_t I = 0; I < Elts.size(); ++I) {
      if (I)
        OS << ", ";
      printValue(*Elts[I], Indent);
    }
    // (x,) is a tuple; (x) would be a parse error, not a silent change.
    if (S.kind() == Value::Kind::Tuple && Elts.size() == 1)
      OS << ',';
  } else {
    for (const ValuePtr &E : Elts) {
      newline(Indent + 1);
      printValue(*E, Indent + 1);
      OS << ',';
    }
    newline(Indent);
  }
  OS << Close;
}

void Printer::printDict(const DictValue &D, unsigned Indent) {
  if (D.isOrdered())
    OS << "odict ";
  OS << '{';
  if (!D.entries().empty()) {
    printEntries(D.entries(), Indent + 1);
    newline(Indent);
  }
  OS << '}';
  if (D.state()) {
    OS << " attrs ";
    printValue(*D.state(), Indent);
  }
}

void Printer::printEntries(const std::vector<DictEntry> &Entries,
                           unsigned Indent) {
  for (const DictEntry &E : Entries) {
    newline(Indent);
    assert(E.Key && E.Val && "dict entry without key or value");
    // A tensor-valued entry reads `tensor "key" : f32[2]`; a tensor used as
    // a key (never seen in practice) falls back to the general form.
    auto *T = dyn_cast<TensorValue>(E.Val.get());
    if (T && !isa<TensorValue>(E.Key.get()) && !isNamed(*T)) {
      OS << "tensor ";
      printValue(*E.Key, Indent);
      OS << " : ";
      printTensorBody(*T, Indent);
      continue;
    }
    printValue(*E.Key, Indent);
    OS << ": ";
    printValue(*E.Val, Indent);
  }
}

void Printer::printTensorBody(const TensorValue &T, unsigned Indent) {
  OS << T.typeString();
  if (ArrayRef<int64_t>(contiguousStrides(T.shape())) != T.strides()) {
    OS << " strides [";
    interleaveComma(T.strides(), OS);
    OS << ']';
  }
  if (T.storageOffset() != 0)
    OS << " offset " << T.storageOffset();
  const StorageRef &S = T.storage();
  bool Implicit = ownsImplicitStorage(T);
  if (!S) {
    OS << " no_storage";
  } else if (!Implicit) {
    auto It = Names.find(S.get());
    // Tensors outside the checkpoint walk (keyIdentity) have no names.
    if (It != Names.end())
      OS << " in %" << It->second;
  }
  if (T.requiresGrad())
    OS << " requires_grad";
  if (T.isParameter())
    OS << " param";
  if (T.rebuildKind() == TensorValue::RebuildKind::V1)
    OS << " rebuild v1";
  auto PrintAttr = [&](StringRef Name, const ValuePtr &V) {
    if (!V)
      return;
    OS << ' ' << Name << ' ';
    printValue(*V, Indent);
  };
  PrintAttr("hooks", T.BackwardHooks);
  PrintAttr("metadata", T.Metadata);
  PrintAttr("param_state", T.ParamState);
  PrintAttr("subclass", T.SubclassType);
  PrintAttr("subclass_state", T.SubclassState);
  if (Opts.PrintProvenance)
    printProvenance(T.provenance());
  if (Implicit && shouldPrintData(*S)) {
    OS << " = ";
    printData(S->bytes(), T.dtype());
  }
}

void Printer::printProvenance(const Provenance &P) {
  if (P.File.empty() && P.KeyPath.empty() && P.StorageKey.empty() &&
      !P.ByteOffset && P.History.empty())
    return;
  OS << " loc(";
  textir::printQuoted(OS, P.File);
  if (!P.KeyPath.empty()) {
    OS << " [";
    interleaveComma(P.KeyPath, OS,
                    [&](const std::string &K) { textir::printQuoted(OS, K); });
    OS << ']';
  }
  if (!P.StorageKey.empty()) {
    OS << " storage ";
    textir::printQuoted(OS, P.StorageKey);
  }
  if (P.ByteOffset)
    OS << " offset " << *P.ByteOffset;
  if (!P.History.empty()) {
    OS << " history [";
    interleaveComma(P.History, OS, [&](const Provenance::Step &S) {
      OS << "step ";
      textir::printQuoted(OS, S.Pass);
      auto Field = [&](StringRef Name, StringRef Text) {
        if (Text.empty())
          return;
        OS << ' ' << Name << ' ';
        textir::printQuoted(OS, Text);
      };
      Field("from", S.From);
      Field("to", S.To);
      Field("note", S.Note);
    });
    OS << ']';
  }
  OS << ')';
}

static StringRef constructKeyword(OpaqueValue::Construct C) {
  switch (C) {
  case OpaqueValue::Construct::Global:
    return "";
  case OpaqueValue::Construct::Reduce:
    return "reduce";
  case OpaqueValue::Construct::NewObj:
    return "newobj";
  case OpaqueValue::Construct::NewObjEx:
    return "newobj_ex";
  }
  llvm_unreachable("unknown construct kind");
}

void Printer::printOpaque(const OpaqueValue &O, unsigned Indent) {
  OS << "opaque ";
  if (O.Callee) {
    OS << "call ";
    printValue(*O.Callee, Indent);
  } else {
    textir::printQuoted(OS, O.module());
    OS << ' ';
    textir::printQuoted(OS, O.name());
  }
  StringRef How = constructKeyword(O.construct());
  if (!How.empty())
    OS << ' ' << How;
  auto PrintAttr = [&](StringRef Name, const ValuePtr &V) {
    if (!V)
      return;
    OS << ' ' << Name << ' ';
    printValue(*V, Indent);
  };
  PrintAttr("args", O.Args);
  PrintAttr("kwargs", O.Kwargs);
  PrintAttr("state", O.State);
  if (!O.ListItems.empty()) {
    // Printed as a list so the layout rules of sequences apply.
    SequenceValue Items(Value::Kind::List, O.ListItems);
    OS << " items ";
    printSequence(Items, Indent);
  }
  if (!O.DictItems.empty()) {
    OS << " dictitems {";
    printEntries(O.DictItems, Indent + 1);
    newline(Indent);
    OS << '}';
  }
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

void wopt::printCheckpoint(const Checkpoint &C, raw_ostream &OS,
                           const PrintOptions &Opts) {
  Printer(OS, Opts).printCheckpoint(C);
}

std::string textir::keyIdentity(const Value &V) {
  std::string S;
  raw_string_ostream OS(S);
  PrintOptions Opts;
  Printer P(OS, Opts);
  P.analyze(V);
  P.printValue(V, 0);
  return S;
}

bool wopt::looksLikeTextIR(StringRef Bytes) {
  for (;;) {
    Bytes = Bytes.ltrim(" \t\r\n");
    if (!Bytes.starts_with("//"))
      break;
    Bytes = Bytes.drop_until([](char C) { return C == '\n'; });
  }
  auto StartsWithWord = [&](StringRef W) {
    if (!Bytes.starts_with(W))
      return false;
    StringRef Rest = Bytes.drop_front(W.size());
    return Rest.empty() || !(isAlnum(Rest.front()) || Rest.front() == '_');
  };
  return StartsWithWord("checkpoint") || StartsWithWord("storage");
}
