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
