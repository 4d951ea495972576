//===- Value.cpp - The value tree -----------------------------------------===//
#include "wopt/IR/Value.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/MathExtras.h"

using namespace wopt;
using namespace llvm;

//===----------------------------------------------------------------------===//
// Provenance
//===----------------------------------------------------------------------===//

std::string Provenance::originalPath() const { return join(KeyPath, "/"); }

StringRef Provenance::originalName() const {
  return KeyPath.empty() ? StringRef() : StringRef(KeyPath.back());
}

void Provenance::addRename(StringRef Pass, StringRef From, StringRef To) {
  History.push_back({Pass.str(), From.str(), To.str(), ""});
}

void Provenance::addRewrite(StringRef Pass, StringRef Note) {
  History.push_back({Pass.str(), "", "", Note.str()});
}

void Provenance::print(raw_ostream &OS) const {
  OS << (KeyPath.empty() ? "<unnamed>" : originalPath());
  if (!File.empty()) {
    OS << " (" << File;
    if (!StorageKey.empty())
      OS << ", storage " << StorageKey;
    if (ByteOffset)
      OS << ", byte " << *ByteOffset;
    OS << ")";
  }
  for (const Step &S : History) {
    if (S.Note.empty())
      OS << "; renamed by " << S.Pass << " from " << S.From;
    else
      OS << "; " << S.Note << " by " << S.Pass;
  }
}

//===----------------------------------------------------------------------===//
// Value
//===----------------------------------------------------------------------===//

Value::~Value() = default;

void wopt::forEachChild(const Value &V, function_ref<void(const Value &)> F) {
  auto Visit = [&](const ValuePtr &P) {
    if (P)
      F(*P);
  };
  auto VisitEntries = [&](const std::vector<DictEntry> &Entries) {
    for (const DictEntry &E : Entries) {
      Visit(E.Key);
      Visit(E.Val);
    }
  };
  if (auto *S = dyn_cast<SequenceValue>(&V)) {
    for (const ValuePtr &E : S->elements())
      Visit(E);
  } else if (auto *D = dyn_cast<DictValue>(&V)) {
    VisitEntries(D->entries());
    Visit(D->state());
  } else if (auto *T = dyn_cast<TensorValue>(&V)) {
    Visit(T->BackwardHooks);
    Visit(T->Metadata);
    Visit(T->ParamState);
  } else if (auto *O = dyn_cast<OpaqueValue>(&V)) {
    Visit(O->Args);
    Visit(O->Kwargs);
    Visit(O->State);
    for (const ValuePtr &E : O->ListItems)
      Visit(E);
    VisitEntries(O->DictItems);
  }
}

uint64_t Value::countNodes() const {
  uint64_t N = 1;
  forEachChild(*this, [&](const Value &C) { N += C.countNodes(); });
  return N;
}

static ValuePtr cloneOrNull(const ValuePtr &V) {
  return V ? V->clone() : nullptr;
}

static std::vector<DictEntry> cloneEntries(const std::vector<DictEntry> &In) {
  std::vector<DictEntry> Out;
  Out.reserve(In.size());
  for (const DictEntry &E : In)
    Out.push_back({E.Key->clone(), E.Val->clone()});
  return Out;
}

ValuePtr NoneValue::clone() const { return std::make_shared<NoneValue>(); }
ValuePtr BoolValue::clone() const { return std::make_shared<BoolValue>(B); }
ValuePtr IntValue::clone() const { return std::make_shared<IntValue>(I); }
ValuePtr BigIntValue::clone() const {
  return std::make_shared<BigIntValue>(Bytes);
}
ValuePtr FloatValue::clone() const { return std::make_shared<FloatValue>(D); }
ValuePtr StringValue::clone() const {
  return std::make_shared<StringValue>(kind(), S);
}

ValuePtr SequenceValue::clone() const {
  std::vector<ValuePtr> Elts;
  Elts.reserve(Elements.size());
  for (const ValuePtr &E : Elements)
    Elts.push_back(E->clone());
  return std::make_shared<SequenceValue>(kind(), std::move(Elts));
}

std::optional<StringRef> DictEntry::keyString() const {
  if (Key && Key->kind() == Value::Kind::Str)
    return StringRef(cast<StringValue>(Key.get())->value());
  return std::nullopt;
}

DictEntry *DictValue::find(StringRef K) {
  for (DictEntry &E : Entries)
    if (E.keyString() == K)
      return &E;
  return nullptr;
}

const DictEntry *DictValue::find(StringRef K) const {
  return const_cast<DictValue *>(this)->find(K);
}

Value *DictValue::lookup(StringRef K) const {
  const DictEntry *E = find(K);
  return E ? E->Val.get() : nullptr;
}

void DictValue::set(StringRef K, ValuePtr V) {
  if (DictEntry *E = find(K)) {
    E->Val = std::move(V);
    return;
  }
  Entries.push_back({makeStr(K), std::move(V)});
}

ValuePtr DictValue::clone() const {
  auto D = std::make_shared<DictValue>(Ordered);
  D->Entries = cloneEntries(Entries);
  D->State = cloneOrNull(State);
  return D;
}

//===----------------------------------------------------------------------===//
// TensorValue
//===----------------------------------------------------------------------===//

SmallVector<int64_t, 4> wopt::contiguousStrides(ArrayRef<int64_t> Shape) {
  SmallVector<int64_t, 4> Strides(Shape.size());
  int64_t Acc = 1;
  for (size_t I = Shape.size(); I-- > 0;) {
    Strides[I] = Acc;
    // Overflow here only affects absurd shapes, which the verifier rejects
    // through numel(); keep the product well defined.
    Acc = Shape[I] > 0 ? (int64_t)((uint64_t)Acc * (uint64_t)Shape[I]) : Acc;
  }
  return Strides;
}

void TensorValue::setShape(ArrayRef<int64_t> S) {
  Shape.assign(S.begin(), S.end());
  Strides = contiguousStrides(S);
}

void TensorValue::setShapeAndStrides(ArrayRef<int64_t> S,
                                     ArrayRef<int64_t> St) {
  assert(S.size() == St.size() && "shape and strides differ in rank");
  Shape.assign(S.begin(), S.end());
  Strides.assign(St.begin(), St.end());
}

std::optional<uint64_t> TensorValue::numel() const {
  uint64_t N = 1;
  for (int64_t D : Shape) {
    if (D < 0)
      return std::nullopt;
    bool Overflow = false;
    N = SaturatingMultiply(N, (uint64_t)D, &Overflow);
    if (Overflow)
      return std::nullopt;
  }
  return N;
}

bool TensorValue::isContiguous() const {
  int64_t Expected = 1;
  for (size_t I = Shape.size(); I-- > 0;) {
    if (Shape[I] == 1)
      continue; // any stride is fine for a dimension of size 1
    if (Strides[I] != Expected)
      return false;
    Expected *= Shape[I];
  }
  return true;
}

std::optional<uint64_t> TensorValue::requiredStorageBytes() const {
  std::optional<uint64_t> N = numel();
  if (!N || Offset < 0)
    return std::nullopt;
  if (*N == 0)
    return 0;
  // Highest element index reached: offset + sum((size - 1) * stride).
  uint64_t Last = (uint64_t)Offset;
  bool Overflow = false;
  for (size_t I = 0; I < Shape.size(); ++I) {
    if (Strides[I] < 0)
      return std::nullopt;
    uint64_t Step = SaturatingMultiply((uint64_t)(Shape[I] - 1),
                                       (uint64_t)Strides[I], &Overflow);
    Last = SaturatingAdd(Last, Step, &Overflow);
    if (Overflow)
      return std::nullopt;
  }
  uint64_t Elems = SaturatingAdd(Last, (uint64_t)1, &Overflow);
  uint64_t Bytes =
      SaturatingMultiply(Elems, (uint64_t)dtypeSize(Dtype), &Overflow);
  if (Overflow)
    return std::nullopt;
  return Bytes;
}

StringRef wopt::pythonTypeName(const Value &V) {
  switch (V.kind()) {
  case Value::Kind::None:
    return "None";
  case Value::Kind::Bool:
    return "bool";
  case Value::Kind::Int:
  case Value::Kind::BigInt:
    return "int";
  case Value::Kind::Float:
    return "float";
  case Value::Kind::Str:
    return "str";
  case Value::Kind::Bytes:
    return "bytes";
  case Value::Kind::List:
    return "list";
  case Value::Kind::Tuple:
    return "tuple";
  case Value::Kind::Set:
    return "set";
  case Value::Kind::FrozenSet:
    return "frozenset";
  case Value::Kind::Dict:
    return cast<DictValue>(V).isOrdered() ? "OrderedDict" : "dict";
  case Value::Kind::Tensor:
    return "tensor";
  case Value::Kind::Opaque:
    return "object";
  }
  llvm_unreachable("covered switch");
}

std::string wopt::describeKind(const Value &V) {
  StringRef Name = pythonTypeName(V);
  if (V.kind() == Value::Kind::None || V.kind() == Value::Kind::Bytes)
    return Name.str();
  bool Vowel = StringRef("aeiouAEIOU").contains(Name.front());
  return (Vowel ? "an " : "a ") + Name.str();
}

std::string wopt::formatTensorType(DType T, ArrayRef<int64_t> Shape) {
  std::string S;
  raw_string_ostream OS(S);
  OS << dtypeName(T) << "[";
  interleaveComma(Shape, OS);
  OS << "]";
  return S;
}

std::string TensorValue::typeString() const {
  return formatTensorType(Dtype, Shape);
}

ValuePtr TensorValue::clone() const {
  auto T = std::make_shared<TensorValue>(*this);
  T->BackwardHooks = cloneOrNull(BackwardHooks);
  T->Metadata = cloneOrNull(Metadata);
  T->ParamState = cloneOrNull(ParamState);
  return T;
}

//===----------------------------------------------------------------------===//
// OpaqueValue
//===----------------------------------------------------------------------===//

bool OpaqueValue::isWeightsOnlySafe() const {
  if (Module == "torch") {
    if (Name == "Size" || Name == "device")
      return true;
    // Bare dtype references: torch.float32, torch.bfloat16, ...
    return How == Construct::Global && dtypeFromTorchName(Name).has_value();
  }
  return Module == "collections" && Name == "OrderedDict";
}

ValuePtr OpaqueValue::clone() const {
  auto O = std::make_shared<OpaqueValue>(Module, Name, How);
  O->Args = cloneOrNull(Args);
  O->Kwargs = cloneOrNull(Kwargs);
  O->State = cloneOrNull(State);
  for (const ValuePtr &E : ListItems)
    O->ListItems.push_back(E->clone());
  O->DictItems = cloneEntries(DictItems);
  return O;
}

//===----------------------------------------------------------------------===//
// Python names and text
//===----------------------------------------------------------------------===//

/// Decodes one UTF-8 sequence at S[I] (advancing I); nullopt when it is
/// malformed, overlong or beyond U+10FFFF. Surrogates are returned as is.
static std::optional<uint32_t> decodeUTF8(StringRef S, size_t &I) {
  uint8_t C = S[I];
  unsigned Len = C < 0x80         ? 1
                 : (C >> 5) == 6  ? 2
                 : (C >> 4) == 14 ? 3
                 : (C >> 3) == 30 ? 4
                                  : 0;
  if (!Len || I + Len > S.size())
    return std::nullopt;
  uint32_t CP = Len == 1 ? C : C & (0x7F >> Len);
  for (unsigned K = 1; K < Len; ++K) {
    uint8_t B = S[I + K];
    if ((B & 0xC0) != 0x80)
      return std::nullopt;
    CP = (CP << 6) | (B & 0x3F);
  }
  static const uint32_t MinForLen[] = {0, 0, 0x80, 0x800, 0x10000};
  if (CP < MinForLen[Len] || CP > 0x10FFFF)
    return std::nullopt;
  I += Len;
  return CP;
}

bool wopt::isPythonText(StringRef S) {
  for (size_t I = 0; I < S.size();)
    if (!decodeUTF8(S, I))
      return false;
  return true;
}

/// Non-ASCII code points that can be part of an identifier. Python's rule
/// is XID_Continue; wopt keeps out what is certainly not a letter (controls,
/// Latin-1 symbols, blanks and punctuation blocks, surrogates, private use,
/// non-characters), so no name can hide a separator.
static bool isIdentifierCodePoint(uint32_t CP) {
  if (CP < 0xC0)
    return CP == 0xAA || CP == 0xB5 || CP == 0xBA;
  if (CP == 0xD7 || CP == 0xF7)
    return false;
  if ((CP >= 0x2000 && CP <= 0x206F) || (CP >= 0x3000 && CP <= 0x3004) ||
      (CP >= 0xD800 && CP <= 0xF8FF) || CP == 0xFEFF ||
      (CP >= 0xFFF0 && CP <= 0xFFFF) || (CP & 0xFFFE) == 0xFFFE ||
      CP >= 0xF0000)
    return false;
  return true;
}

bool wopt::isPythonDottedName(StringRef S) {
  bool AtStart = true;
  for (size_t I = 0; I < S.size();) {
    uint8_t C = S[I];
    if (C == '.') {
      if (AtStart)
        return false; // empty component
      AtStart = true;
      ++I;
      continue;
    }
    if (C < 0x80) {
      bool Ok = isAlpha(C) || C == '_' || (!AtStart && isDigit(C));
      if (!Ok)
        return false;
      ++I;
    } else {
      std::optional<uint32_t> CP = decodeUTF8(S, I);
      if (!CP || !isIdentifierCodePoint(*CP))
        return false;
    }
    AtStart = false;
  }
  return !AtStart;
}

std::string wopt::quoteForMessage(StringRef S) {
  constexpr size_t Max = 60;
  std::string Out = "'";
  auto Hex = [&](uint8_t C) {
    Out += {'\\', 'x', hexdigit(C >> 4, true), hexdigit(C & 15, true)};
  };
  size_t I = 0;
  while (I < S.size() && I < Max) {
    uint8_t C = S[I];
    if (C >= 0x80) {
      // Letters stay readable; anything else (a line or paragraph
      // separator above all) is escaped so the message stays one line.
      size_t Start = I;
      std::optional<uint32_t> CP = decodeUTF8(S, I);
      if (CP && isIdentifierCodePoint(*CP)) {
        Out += S.slice(Start, I);
      } else {
        I = CP ? I : Start + 1;
        for (size_t K = Start; K < I; ++K)
          Hex(S[K]);
      }
      continue;
    }
    if (C == '\n')
      Out += "\\n";
    else if (C == '\\' || C == '\'')
      Out += {'\\', char(C)};
    else if (C < 0x20 || C == 0x7F)
      Hex(C);
    else
      Out += char(C);
    ++I;
  }
  if (I < S.size())
    Out += "...";
  return Out + "'";
}

//===----------------------------------------------------------------------===//
// Constructors
//===----------------------------------------------------------------------===//

ValuePtr wopt::makeNone() { return std::make_shared<NoneValue>(); }
ValuePtr wopt::makeBool(bool B) { return std::make_shared<BoolValue>(B); }
ValuePtr wopt::makeInt(int64_t I) { return std::make_shared<IntValue>(I); }
ValuePtr wopt::makeFloat(double D) { return std::make_shared<FloatValue>(D); }
ValuePtr wopt::makeStr(StringRef S) {
  return std::make_shared<StringValue>(Value::Kind::Str, S.str());
}
ValuePtr wopt::makeBytes(StringRef S) {
  return std::make_shared<StringValue>(Value::Kind::Bytes, S.str());
}
ValuePtr wopt::makeTuple(std::vector<ValuePtr> Elts) {
  return std::make_shared<SequenceValue>(Value::Kind::Tuple, std::move(Elts));
}
ValuePtr wopt::makeList(std::vector<ValuePtr> Elts) {
  return std::make_shared<SequenceValue>(Value::Kind::List, std::move(Elts));
}
