//===- Value.cpp - The value graph ----------------------------------------===//
#include "wopt/IR/Value.h"
#include "llvm/ADT/APInt.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallPtrSet.h"
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

void wopt::forEachChildSlot(Value &V, function_ref<void(ValuePtr &)> F) {
  auto VisitEntries = [&](std::vector<DictEntry> &Entries) {
    for (DictEntry &E : Entries) {
      F(E.Key);
      F(E.Val);
    }
  };
  if (auto *S = dyn_cast<SequenceValue>(&V)) {
    for (ValuePtr &E : S->elements())
      F(E);
  } else if (auto *D = dyn_cast<DictValue>(&V)) {
    VisitEntries(D->entries());
    F(D->stateSlot());
  } else if (auto *T = dyn_cast<TensorValue>(&V)) {
    F(T->BackwardHooks);
    F(T->Metadata);
    F(T->ParamState);
    F(T->SubclassType);
    F(T->SubclassState);
  } else if (auto *O = dyn_cast<OpaqueValue>(&V)) {
    F(O->Callee);
    F(O->Args);
    F(O->Kwargs);
    F(O->State);
    for (ValuePtr &E : O->ListItems)
      F(E);
    VisitEntries(O->DictItems);
  }
}

void wopt::forEachChild(const Value &V, function_ref<void(const Value &)> F) {
  // The slots are only read here.
  forEachChildSlot(const_cast<Value &>(V), [&](ValuePtr &P) {
    if (P)
      F(*P);
  });
}

void wopt::forEachNode(const Value &Root, function_ref<bool(const Value &)> F) {
  SmallPtrSet<const Value *, 32> Seen;
  SmallVector<const Value *, 64> Stack = {&Root};
  SmallVector<const Value *, 16> Children;
  while (!Stack.empty()) {
    const Value *V = Stack.pop_back_val();
    // A node pushed twice before its first visit is visited once.
    if (!Seen.insert(V).second || !F(*V))
      continue;
    Children.clear();
    forEachChild(*V, [&](const Value &C) {
      if (!Seen.count(&C))
        Children.push_back(&C);
    });
    Stack.append(Children.rbegin(), Children.rend());
  }
}

uint64_t wopt::graphDepth(const Value &Root, uint64_t Limit) {
  // An explicit DFS whose stack holds the current chain: its height is the
  // recursion depth a walk in forEachNode's order reaches.
  struct Frame {
    const Value *V;
    SmallVector<const Value *, 4> Children;
    size_t Next = 0;
  };
  SmallPtrSet<const Value *, 32> Seen;
  std::vector<Frame> Stack;
  auto Enter = [&](const Value *V) {
    Seen.insert(V);
    Frame Fr{V, {}, 0};
    forEachChild(*V, [&](const Value &C) { Fr.Children.push_back(&C); });
    Stack.push_back(std::move(Fr));
  };
  Enter(&Root);
  uint64_t Max = 0;
  while (!Stack.empty()) {
    Max = std::max<uint64_t>(Max, Stack.size() - 1);
    if (Max >= Limit)
      return Max;
    Frame &Top = Stack.back();
    if (Top.Next == Top.Children.size()) {
      Stack.pop_back();
      continue;
    }
    const Value *C = Top.Children[Top.Next++];
    if (!Seen.count(C))
      Enter(C);
  }
  return Max;
}

bool wopt::isHashable(const Value &V) {
  // Tuples nest without limit: walk them without recursion. A tuple cannot
  // hold itself except through a list, dict or object, so this ends.
  SmallVector<const Value *, 16> Work = {&V};
  while (!Work.empty()) {
    const Value *X = Work.pop_back_val();
    switch (X->kind()) {
    case Value::Kind::List:
    case Value::Kind::Dict:
    case Value::Kind::Set:
      return false;
    case Value::Kind::Tuple:
    case Value::Kind::FrozenSet:
      for (const ValuePtr &E : cast<SequenceValue>(X)->elements())
        if (E)
          Work.push_back(E.get());
      break;
    default:
      break;
    }
  }
  return true;
}

uint64_t Value::countNodes() const {
  uint64_t N = 0;
  forEachNode(*this, [&](const Value &) {
    ++N;
    return true;
  });
  return N;
}

void ValueGraph::adoptReachable(const ValuePtr &Root) {
  if (!Root)
    return;
  SmallPtrSet<const Value *, 32> Adopted;
  auto Adopt = [&](const ValuePtr &V) {
    if (V && V->hasIdentity() && Adopted.insert(V.get()).second)
      Nodes.push_back(V);
  };
  Adopt(Root);
  forEachNode(*Root, [&](const Value &V) {
    forEachChildSlot(const_cast<Value &>(V), Adopt);
    return true;
  });
}

/// A cycle collector in the manner of CPython's: over the nodes the graph
/// owns and everything they reach, a node held from outside (more owners
/// than edges to it) is live, and so is everything it reaches; the edges of
/// the rest are cut, so nodes that only hold each other are freed. Values a
/// caller still holds keep their whole structure.
ValueGraph::~ValueGraph() {
  DenseMap<const Value *, uint64_t> Internal;
  std::vector<const ValuePtr *> All;
  auto Add = [&](const ValuePtr &P, unsigned Refs) {
    auto [It, New] = Internal.try_emplace(P.get(), 0);
    It->second += Refs;
    if (New)
      All.push_back(&P);
  };
  for (const ValuePtr &V : Nodes)
    Add(V, 1);
  for (size_t I = 0; I < All.size(); ++I)
    forEachChildSlot(const_cast<Value &>(**All[I]), [&](ValuePtr &C) {
      if (C && C->hasIdentity())
        Add(C, 1);
    });
  SmallVector<const Value *, 64> Work;
  SmallPtrSet<const Value *, 32> Live;
  for (const ValuePtr *P : All)
    if (uint64_t(P->use_count()) > Internal[P->get()] &&
        Live.insert(P->get()).second)
      Work.push_back(P->get());
  while (!Work.empty())
    forEachChild(*Work.pop_back_val(), [&](const Value &C) {
      if (Live.insert(&C).second)
        Work.push_back(&C);
    });
  // Hold the garbage while its edges are cut: cutting one may free another
  // whose slots All points into.
  std::vector<ValuePtr> Garbage;
  for (const ValuePtr *P : All)
    if (!Live.count(P->get()))
      Garbage.push_back(*P);
  for (const ValuePtr &V : Garbage)
    forEachChildSlot(*V, [](ValuePtr &C) { C.reset(); });
}

ValuePtr NoneValue::copyNode() const { return std::make_shared<NoneValue>(); }
ValuePtr BoolValue::copyNode() const { return std::make_shared<BoolValue>(B); }
ValuePtr IntValue::copyNode() const { return std::make_shared<IntValue>(I); }
ValuePtr BigIntValue::copyNode() const {
  return std::make_shared<BigIntValue>(Bytes);
}
ValuePtr FloatValue::copyNode() const {
  return std::make_shared<FloatValue>(D);
}
ValuePtr StringValue::copyNode() const {
  return std::make_shared<StringValue>(kind(), S);
}
ValuePtr SequenceValue::copyNode() const {
  return std::make_shared<SequenceValue>(kind(), Elements);
}
ValuePtr StorageValue::copyNode() const {
  return std::make_shared<StorageValue>(Stor, TypedAs, Untyped);
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

ValuePtr DictValue::copyNode() const {
  auto D = std::make_shared<DictValue>(Ordered);
  D->Entries = Entries;
  D->State = State;
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
  if (Overflow)
    return std::nullopt;
  return dtypeBytes(Dtype, Elems);
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
  case Value::Kind::Storage:
    return "storage";
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

ValuePtr TensorValue::copyNode() const {
  return std::make_shared<TensorValue>(*this);
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

ValuePtr OpaqueValue::copyNode() const {
  return std::make_shared<OpaqueValue>(*this);
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

std::optional<std::string> wopt::longBytesFromDecimal(StringRef Text) {
  StringRef Digits = Text;
  Digits.consume_front("-");
  if (Digits.empty() || Digits.size() > 10000 ||
      !all_of(Digits, [](char C) { return isDigit(C); }))
    return std::nullopt;
  // About 3.33 bits per digit, plus the sign.
  APInt A(unsigned(Text.size()) * 4 + 8, Text, 10);
  unsigned NumBytes = (A.getSignificantBits() + 7) / 8;
  APInt W = A.trunc(NumBytes * 8);
  std::string Bytes(NumBytes, '\0');
  for (unsigned I = 0; I < NumBytes; ++I)
    Bytes[I] = char(W.extractBitsAsZExtValue(8, I * 8));
  return Bytes;
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
