//===- PickleReader.cpp - A symbolic unpickler
//-----------------------------===//
//
// One stack machine, one switch per opcode family. Nothing read from the
// file is ever executed: globals become names and reductions become
// OpaqueValues unless a known, side-effect-free meaning exists.
//
//===----------------------------------------------------------------------===//

#include "wopt/Serialization/PickleReader.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include <cstring>

using namespace llvm;

namespace wopt {

StringRef pickleOpName(uint8_t Byte) {
  switch (Byte) {
#define WOPT_PICKLE_OP(Name, B)                                                \
  case static_cast<uint8_t>(B):                                                \
    return #Name;
#include "wopt/Serialization/PickleOpcodes.def"
  }
  return "";
}

StringRef PickleReader::mapModuleName(StringRef Module) {
  return StringSwitch<StringRef>(Module)
      .Case("__builtin__", "builtins")
      .Case("copy_reg", "copyreg")
      .Case("Queue", "queue")
      .Case("cPickle", "pickle")
      .Case("UserDict", "collections")
      .Default(Module);
}

namespace {

/// Counts the nodes of V's tree and its height; stops early past Budget so
/// a hostile memo cannot make measuring itself expensive.
void measure(const Value &V, uint64_t &Nodes, uint64_t Budget, uint32_t Depth,
             uint32_t &Height) {
  if (++Nodes > Budget)
    return;
  Height = std::max(Height, Depth);
  forEachChild(
      V, [&](const Value &C) { measure(C, Nodes, Budget, Depth + 1, Height); });
}

/// A reference to a global that nothing was done to.
bool isBareGlobal(const OpaqueValue &O) {
  return O.construct() == OpaqueValue::Construct::Global && !O.State &&
         O.ListItems.empty() && O.DictItems.empty();
}

bool isGlobal(const Value &V, StringRef Module, StringRef Name) {
  auto *O = dyn_cast<OpaqueValue>(&V);
  return O && O->construct() == OpaqueValue::Construct::Global &&
         O->module() == Module && O->name() == Name;
}

/// Python's latin-1 codec: code points below 256 become single bytes.
std::optional<std::string> latin1FromUTF8(StringRef S) {
  std::string Out;
  for (size_t I = 0; I < S.size(); ++I) {
    uint8_t C = S[I];
    if (C < 0x80) {
      Out.push_back(C);
      continue;
    }
    if ((C & 0xE0) != 0xC0 || I + 1 >= S.size())
      return std::nullopt;
    uint32_t CP = ((C & 0x1F) << 6) | (uint8_t(S[I + 1]) & 0x3F);
    if (CP > 0xFF)
      return std::nullopt;
    Out.push_back(char(CP));
    ++I;
  }
  return Out;
}

} // namespace

PickleReader::PickleReader(ArrayRef<uint8_t> Data, std::string Where,
                           const ReaderLimits &Limits)
    : Data(Data), Where(std::move(Where)), Limits(Limits) {}

Error PickleReader::error(uint64_t At, const Twine &Msg) const {
  return createStringError(inconvertibleErrorCode(),
                           Where + ": " + Msg + " at byte " + Twine(At));
}

//===----------------------------------------------------------------------===//
// Bytes
//===----------------------------------------------------------------------===//

Error PickleReader::need(uint64_t N, uint64_t At, StringRef What) {
  if (N > Data.size() - Pos)
    return error(At, formatv("{0} needs {1} bytes but only {2} remain", What, N,
                             Data.size() - Pos)
                         .str());
  return Error::success();
}

uint64_t PickleReader::readLE(unsigned N) {
  uint64_t V = 0;
  for (unsigned I = 0; I < N; ++I)
    V |= uint64_t(Data[Pos + I]) << (8 * I);
  Pos += N;
  return V;
}

Expected<StringRef> PickleReader::readBytes(uint64_t N, uint64_t At,
                                            StringRef What) {
  if (Error Err = need(N, At, What))
    return Err;
  StringRef S(reinterpret_cast<const char *>(Data.data() + Pos), N);
  Pos += N;
  return S;
}

Expected<StringRef> PickleReader::readLine(uint64_t At) {
  const uint8_t *Begin = Data.data() + Pos, *End = Data.data() + Data.size();
  const void *NL = std::memchr(Begin, '\n', End - Begin);
  if (!NL)
    return error(At, "text argument has no end of line");
  StringRef S(reinterpret_cast<const char *>(Begin),
              static_cast<const uint8_t *>(NL) - Begin);
  Pos += S.size() + 1;
  return S;
}

//===----------------------------------------------------------------------===//
// Stack
//===----------------------------------------------------------------------===//

Error PickleReader::countNodes(uint64_t N, uint64_t At) {
  Nodes += N;
  if (Nodes > Limits.MaxValueNodes)
    return error(
        At,
        formatv("more than {0} values (limit)", Limits.MaxValueNodes).str());
  return Error::success();
}

Error PickleReader::push(ValuePtr V, uint32_t Height, uint64_t At) {
  if (Stack.size() + Marks.size() >= Limits.MaxStackDepth)
    return error(
        At,
        formatv("stack deeper than {0} (limit)", Limits.MaxStackDepth).str());
  if (Height > Limits.MaxNesting)
    return error(
        At, formatv("values nested deeper than {0} (limit)", Limits.MaxNesting)
                .str());
  if (Error Err = countNodes(1, At))
    return Err;
  Stack.push_back({std::move(V), Height});
  return Error::success();
}

Expected<PickleReader::Item> PickleReader::pop(uint64_t At) {
  size_t Floor = Marks.empty() ? 0 : Marks.back();
  if (Stack.size() <= Floor)
    return error(At, Stack.empty() ? "stack underflow"
                                   : "stack underflow (below a MARK)");
  Item I = std::move(Stack.back());
  Stack.pop_back();
  return I;
}

Expected<PickleReader::Item *> PickleReader::top(uint64_t At) {
  size_t Floor = Marks.empty() ? 0 : Marks.back();
  if (Stack.size() <= Floor)
    return error(At, Stack.empty() ? "stack underflow"
                                   : "stack underflow (below a MARK)");
  return &Stack.back();
}

Expected<std::vector<PickleReader::Item>> PickleReader::popMark(uint64_t At) {
  if (Marks.empty())
    return error(At, "no MARK on the stack");
  size_t M = Marks.back();
  Marks.pop_back();
  std::vector<Item> Items(std::make_move_iterator(Stack.begin() + M),
                          std::make_move_iterator(Stack.end()));
  Stack.resize(M);
  return Items;
}

Error PickleReader::grow(Item &Parent, uint32_t ChildHeight, uint64_t At) {
  uint32_t H = std::max(Parent.Height, ChildHeight + 1);
  if (H > Limits.MaxNesting)
    return error(
        At, formatv("values nested deeper than {0} (limit)", Limits.MaxNesting)
                .str());
  Parent.Height = H;
  return Error::success();
}

Expected<PickleReader::Item> PickleReader::cloneItem(const Item &I,
                                                     uint64_t At) {
  uint64_t N = 0;
  uint32_t H = 0;
  uint64_t Budget =
      Limits.MaxValueNodes - std::min(Nodes, Limits.MaxValueNodes);
  measure(*I.V, N, Budget, 0, H);
  if (N > Budget)
    return error(
        At,
        formatv("more than {0} values (limit)", Limits.MaxValueNodes).str());
  if (Error Err = countNodes(N, At))
    return Err;
  return Item{I.V->clone(), H};
}

//===----------------------------------------------------------------------===//
// The machine
//===----------------------------------------------------------------------===//

Expected<ValuePtr> PickleReader::read() {
  Stack.clear();
  Marks.clear();
  Memo.clear();
  uint64_t Start = Pos;
  bool Done = false;
  while (!Done) {
    if (Pos >= Data.size())
      return error(Pos,
                   Pos == Start ? "empty pickle" : "pickle ends without STOP");
    if (++Opcodes > Limits.MaxOpcodes)
      return error(
          Pos,
          formatv("more than {0} opcodes (limit)", Limits.MaxOpcodes).str());
    uint64_t At = Pos;
    uint8_t Op = Data[Pos++];
    if (Error Err = step(Op, At, Done))
      return Err;
  }
  ValuePtr Result = std::move(Stack.back().V);
  Stack.clear();
  Memo.clear();
  return Result;
}

Error PickleReader::step(uint8_t Op, uint64_t At, bool &Done) {
  switch (static_cast<PickleOp>(Op)) {
  case PickleOp::STOP:
    if (Stack.empty())
      return error(At, "STOP with an empty stack");
    Done = true;
    return Error::success();
  case PickleOp::PROTO: {
    if (Error Err = need(1, At, "PROTO"))
      return Err;
    uint64_t V = readLE(1);
    if (V > 5)
      return error(At, formatv("unsupported pickle protocol {0}", V).str());
    return Error::success();
  }
  case PickleOp::FRAME: {
    // Frames only help buffered readers; their content is ordinary opcodes.
    if (Error Err = need(8, At, "FRAME"))
      return Err;
    uint64_t Len = readLE(8);
    if (Len > Data.size() - Pos)
      return error(At, formatv("FRAME of {0} bytes runs past the end ({1} "
                               "bytes remain)",
                               Len, Data.size() - Pos)
                           .str());
    return Error::success();
  }
  case PickleOp::MARK:
    if (Stack.size() + Marks.size() >= Limits.MaxStackDepth)
      return error(
          At,
          formatv("stack deeper than {0} (limit)", Limits.MaxStackDepth).str());
    Marks.push_back(Stack.size());
    return Error::success();
  case PickleOp::POP:
    if (!Stack.empty() && (Marks.empty() || Marks.back() < Stack.size())) {
      Stack.pop_back();
      return Error::success();
    }
    return popMark(At).takeError();
  case PickleOp::POP_MARK:
    return popMark(At).takeError();
  case PickleOp::DUP: {
    Expected<Item *> T = top(At);
    if (!T)
      return T.takeError();
    Expected<Item> C = cloneItem(**T, At);
    if (!C)
      return C.takeError();
    return push(std::move(C->V), C->Height, At);
  }
  default:
    break;
  }
  bool Handled = false;
  for (auto Fn : {&PickleReader::stepData, &PickleReader::stepText,
                  &PickleReader::stepContainer, &PickleReader::stepObject,
                  &PickleReader::stepMemo}) {
    if (Error Err = (this->*Fn)(Op, At, Handled))
      return Err;
    if (Handled)
      return Error::success();
  }
  StringRef Name = pickleOpName(Op);
  if (!Name.empty())
    return error(At, formatv("opcode {0} (0x{1:x-2}) is not supported", Name,
                             unsigned(Op))
                         .str());
  // The place goes before the verdict here, as in every wopt example.
  return createStringError(inconvertibleErrorCode(),
                           formatv("{0}: opcode 0x{1:x-2} at byte {2} is not a "
                                   "pickle opcode",
                                   Where, unsigned(Op), At)
                               .str());
}

/// Scalars, strings and bytes of the binary protocols.
Error PickleReader::stepData(uint8_t Op, uint64_t At, bool &Handled) {
  Handled = true;
  auto Str = [&](uint64_t LenBytes, bool Unicode, StringRef What) -> Error {
    if (Error Err = need(LenBytes, At, What))
      return Err;
    uint64_t Len = readLE(LenBytes);
    if (LenBytes == 4 && !Unicode && (Len & 0x80000000))
      return error(At, What + " has a negative length");
    Expected<StringRef> S = readBytes(Len, At, What);
    if (!S)
      return S.takeError();
    bool Text = Unicode || json::isUTF8(*S);
    if (Unicode && !isPythonText(*S))
      return error(At, What + " is not valid UTF-8");
    return pushLeaf(Text ? makeStr(*S) : makeBytes(*S), At);
  };
  switch (static_cast<PickleOp>(Op)) {
  case PickleOp::NONE:
    return pushLeaf(makeNone(), At);
  case PickleOp::NEWTRUE:
    return pushLeaf(makeBool(true), At);
  case PickleOp::NEWFALSE:
    return pushLeaf(makeBool(false), At);
  case PickleOp::BININT:
    if (Error Err = need(4, At, "BININT"))
      return Err;
    return pushLeaf(makeInt(int32_t(uint32_t(readLE(4)))), At);
  case PickleOp::BININT1:
    if (Error Err = need(1, At, "BININT1"))
      return Err;
    return pushLeaf(makeInt(readLE(1)), At);
  case PickleOp::BININT2:
    if (Error Err = need(2, At, "BININT2"))
      return Err;
    return pushLeaf(makeInt(readLE(2)), At);
  case PickleOp::LONG1:
  case PickleOp::LONG4: {
    unsigned LenBytes = Op == uint8_t(PickleOp::LONG1) ? 1 : 4;
    if (Error Err = need(LenBytes, At, pickleOpName(Op)))
      return Err;
    uint64_t Len = readLE(LenBytes);
    Expected<StringRef> B = readBytes(Len, At, pickleOpName(Op));
    if (!B)
      return B.takeError();
    if (B->size() > 8)
      return pushLeaf(std::make_shared<BigIntValue>(B->str()), At);
    uint64_t V = 0;
    for (size_t I = 0; I < B->size(); ++I)
      V |= uint64_t(uint8_t((*B)[I])) << (8 * I);
    if (!B->empty() && B->size() < 8 && (uint8_t(B->back()) & 0x80))
      V |= ~uint64_t(0) << (8 * B->size()); // sign-extend
    return pushLeaf(makeInt(int64_t(V)), At);
  }
  case PickleOp::BINFLOAT: {
    if (Error Err = need(8, At, "BINFLOAT"))
      return Err;
    uint64_t Bits = support::endian::read64be(Data.data() + Pos);
    Pos += 8;
    double D;
    std::memcpy(&D, &Bits, 8);
    return pushLeaf(makeFloat(D), At);
  }
  case PickleOp::SHORT_BINUNICODE:
    return Str(1, true, "SHORT_BINUNICODE");
  case PickleOp::BINUNICODE:
    return Str(4, true, "BINUNICODE");
  case PickleOp::BINUNICODE8:
    return Str(8, true, "BINUNICODE8");
  case PickleOp::SHORT_BINSTRING:
    return Str(1, false, "SHORT_BINSTRING");
  case PickleOp::BINSTRING:
    return Str(4, false, "BINSTRING");
  case PickleOp::SHORT_BINBYTES:
  case PickleOp::BINBYTES:
  case PickleOp::BINBYTES8:
  case PickleOp::BYTEARRAY8: {
    unsigned LenBytes = Op == uint8_t(PickleOp::SHORT_BINBYTES) ? 1
                        : Op == uint8_t(PickleOp::BINBYTES)     ? 4
                                                                : 8;
    if (Error Err = need(LenBytes, At, pickleOpName(Op)))
      return Err;
    Expected<StringRef> B = readBytes(readLE(LenBytes), At, pickleOpName(Op));
    if (!B)
      return B.takeError();
    return pushLeaf(makeBytes(*B), At);
  }
  default:
    Handled = false;
    return Error::success();
  }
}

/// Protocol 0 text opcodes that old or hand-written pickles use.
Error PickleReader::stepText(uint8_t Op, uint64_t At, bool &Handled) {
  Handled = true;
  auto Line = [&]() { return readLine(At); };
  switch (static_cast<PickleOp>(Op)) {
  case PickleOp::INT: {
    Expected<StringRef> L = Line();
    if (!L)
      return L.takeError();
    if (*L == "01" || *L == "00")
      return pushLeaf(makeBool(*L == "01"), At);
    int64_t V;
    if (L->trim().getAsInteger(10, V))
      return error(At, "INT argument '" + *L + "' is not an integer");
    return pushLeaf(makeInt(V), At);
  }
  case PickleOp::LONG: {
    Expected<StringRef> L = Line();
    if (!L)
      return L.takeError();
    int64_t V;
    if (L->trim().rtrim('L').getAsInteger(10, V))
      return error(At, "LONG argument '" + *L +
                           "' is not an integer that fits 64 bits");
    return pushLeaf(makeInt(V), At);
  }
  case PickleOp::FLOAT: {
    Expected<StringRef> L = Line();
    if (!L)
      return L.takeError();
    double D;
    if (L->trim().getAsDouble(D))
      return error(At, "FLOAT argument '" + *L + "' is not a number");
    return pushLeaf(makeFloat(D), At);
  }
  case PickleOp::STRING: {
    Expected<StringRef> L = Line();
    if (!L)
      return L.takeError();
    StringRef S = L->trim();
    if (S.size() < 2 || S.front() != S.back() ||
        (S.front() != '\'' && S.front() != '"'))
      return error(At, "STRING argument is not quoted");
    S = S.drop_front().drop_back();
    if (S.contains('\\'))
      return error(At, "STRING with escapes is not supported");
    return pushLeaf(json::isUTF8(S) ? makeStr(S) : makeBytes(S), At);
  }
  case PickleOp::UNICODE: {
    Expected<StringRef> L = Line();
    if (!L)
      return L.takeError();
    if (L->contains('\\') || !json::isUTF8(*L))
      return error(At, "UNICODE with escapes is not supported");
    return pushLeaf(makeStr(*L), At);
  }
  case PickleOp::PERSID: {
    Expected<StringRef> L = Line();
    if (!L)
      return L.takeError();
    if (!PersistentLoad)
      return error(At, "persistent id without a persistent loader");
    Expected<ValuePtr> V = PersistentLoad(makeStr(*L), At);
    if (!V)
      return V.takeError();
    return pushLeaf(*V, At);
  }
  default:
    Handled = false;
    return Error::success();
  }
}

/// Lists, tuples, dicts and sets.
Error PickleReader::stepContainer(uint8_t Op, uint64_t At, bool &Handled) {
  Handled = true;
  auto MakeSeq = [&](Value::Kind K, std::vector<Item> Items) -> Error {
    uint32_t H = 0;
    std::vector<ValuePtr> Elts;
    Elts.reserve(Items.size());
    for (Item &I : Items) {
      H = std::max(H, I.Height + 1);
      Elts.push_back(std::move(I.V));
    }
    return push(std::make_shared<SequenceValue>(K, std::move(Elts)), H, At);
  };
  auto PopN = [&](size_t N) -> Expected<std::vector<Item>> {
    std::vector<Item> Items(N);
    for (size_t I = N; I-- > 0;) {
      Expected<Item> E = pop(At);
      if (!E)
        return E.takeError();
      Items[I] = std::move(*E);
    }
    return Items;
  };
  switch (static_cast<PickleOp>(Op)) {
  case PickleOp::EMPTY_LIST:
    return pushLeaf(std::make_shared<SequenceValue>(Value::Kind::List), At);
  case PickleOp::EMPTY_TUPLE:
    return pushLeaf(std::make_shared<SequenceValue>(Value::Kind::Tuple), At);
  case PickleOp::EMPTY_SET:
    return pushLeaf(std::make_shared<SequenceValue>(Value::Kind::Set), At);
  case PickleOp::EMPTY_DICT:
    return pushLeaf(std::make_shared<DictValue>(), At);
  case PickleOp::TUPLE1:
  case PickleOp::TUPLE2:
  case PickleOp::TUPLE3: {
    Expected<std::vector<Item>> Items =
        PopN(Op - uint8_t(PickleOp::TUPLE1) + 1);
    if (!Items)
      return Items.takeError();
    return MakeSeq(Value::Kind::Tuple, std::move(*Items));
  }
  case PickleOp::TUPLE:
  case PickleOp::LIST:
  case PickleOp::FROZENSET: {
    Expected<std::vector<Item>> Items = popMark(At);
    if (!Items)
      return Items.takeError();
    Value::Kind K = Op == uint8_t(PickleOp::TUPLE)  ? Value::Kind::Tuple
                    : Op == uint8_t(PickleOp::LIST) ? Value::Kind::List
                                                    : Value::Kind::FrozenSet;
    return MakeSeq(K, std::move(*Items));
  }
  case PickleOp::DICT: {
    Expected<std::vector<Item>> Items = popMark(At);
    if (!Items)
      return Items.takeError();
    if (Error Err = pushLeaf(std::make_shared<DictValue>(), At))
      return Err;
    return setItems(Stack.back(), std::move(*Items), At);
  }
  case PickleOp::APPEND:
  case PickleOp::SETITEM: {
    Expected<std::vector<Item>> Items =
        PopN(Op == uint8_t(PickleOp::APPEND) ? 1 : 2);
    if (!Items)
      return Items.takeError();
    Expected<Item *> T = top(At);
    if (!T)
      return T.takeError();
    if (Op == uint8_t(PickleOp::APPEND))
      return appendItems(**T, std::move(*Items), At);
    return setItems(**T, std::move(*Items), At);
  }
  case PickleOp::APPENDS:
  case PickleOp::SETITEMS:
  case PickleOp::ADDITEMS: {
    Expected<std::vector<Item>> Items = popMark(At);
    if (!Items)
      return Items.takeError();
    Expected<Item *> T = top(At);
    if (!T)
      return T.takeError();
    if (Op == uint8_t(PickleOp::SETITEMS))
      return setItems(**T, std::move(*Items), At);
    return appendItems(**T, std::move(*Items), At);
  }
  default:
    Handled = false;
    return Error::success();
  }
}

Error PickleReader::appendItems(Item &Target, std::vector<Item> Items,
                                uint64_t At) {
  std::vector<ValuePtr> *Out = nullptr;
  if (auto *S = dyn_cast<SequenceValue>(Target.V.get());
      S && S->kind() != Value::Kind::Tuple)
    Out = &S->elements();
  else if (auto *O = dyn_cast<OpaqueValue>(Target.V.get()))
    Out = &O->ListItems;
  if (!Out)
    return error(At, "APPEND to a value that is not a list, set or object");
  for (Item &I : Items) {
    if (Error Err = grow(Target, I.Height, At))
      return Err;
    Out->push_back(std::move(I.V));
  }
  return Error::success();
}

Error PickleReader::setItems(Item &Target, std::vector<Item> Items,
                             uint64_t At) {
  if (Items.size() % 2)
    return error(
        At, formatv("SETITEMS with an odd number of items ({0})", Items.size())
                .str());
  std::vector<DictEntry> *Out = nullptr;
  if (auto *D = dyn_cast<DictValue>(Target.V.get()))
    Out = &D->entries();
  else if (auto *O = dyn_cast<OpaqueValue>(Target.V.get()))
    Out = &O->DictItems;
  if (!Out)
    return error(At, "SETITEM on a value that is not a dict or object");
  for (size_t I = 0; I < Items.size(); I += 2) {
    if (Error Err = grow(Target, Items[I].Height, At))
      return Err;
    if (Error Err = grow(Target, Items[I + 1].Height, At))
      return Err;
    Out->push_back({std::move(Items[I].V), std::move(Items[I + 1].V)});
  }
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Objects
//===----------------------------------------------------------------------===//

Error PickleReader::pushGlobal(StringRef Module, StringRef Name, uint64_t At) {
  // What find_class could resolve, and nothing else: a name holding a
  // newline or a blank would change meaning when written back as GLOBAL.
  if (!isPythonDottedName(Module))
    return error(At, "global module name " + quoteForMessage(Module) +
                         " is not a dotted Python identifier");
  if (!isPythonDottedName(Name))
    return error(At, "global name " + quoteForMessage(Name) + " (module " +
                         quoteForMessage(Module) +
                         ") is not a dotted Python identifier");
  return pushLeaf(std::make_shared<OpaqueValue>(mapModuleName(Module).str(),
                                                Name.str(),
                                                OpaqueValue::Construct::Global),
                  At);
}

/// The meanings the reader knows without running anything; everything
/// else is an inert OpaqueValue.
Expected<ValuePtr> PickleReader::reduce(const OpaqueValue &Callable,
                                        ValuePtr ArgsV, uint64_t At) {
  const auto &Args = cast<SequenceValue>(*ArgsV);
  if (Reduce) {
    Expected<ValuePtr> V = Reduce(Callable, Args, At);
    if (!V || *V)
      return V;
  }
  StringRef M = Callable.module(), N = Callable.name();
  const auto &A = Args.elements();
  if (M == "collections" && N == "OrderedDict" && A.empty())
    return std::make_shared<DictValue>(/*Ordered=*/true);
  if (M == "builtins" && (N == "set" || N == "frozenset") &&
      (A.empty() || (A.size() == 1 && A[0]->kind() == Value::Kind::List))) {
    auto S = std::make_shared<SequenceValue>(
        N == "set" ? Value::Kind::Set : Value::Kind::FrozenSet);
    if (!A.empty())
      S->elements() = cast<SequenceValue>(*A[0]).elements();
    return S;
  }
  if (M == "builtins" && N == "bytes" && A.empty())
    return makeBytes("");
  // getattr(Outer, 'Inner'): how protocol 2 names a nested class.
  if (M == "builtins" && N == "getattr" && A.size() == 2)
    if (auto *G = dyn_cast<OpaqueValue>(A[0].get()); G && isBareGlobal(*G))
      if (auto *Attr = dyn_cast<StringValue>(A[1].get());
          Attr && Attr->kind() == Value::Kind::Str &&
          isPythonDottedName(Attr->value()) &&
          !StringRef(Attr->value()).contains('.'))
        return std::make_shared<OpaqueValue>(G->module(),
                                             G->name() + "." + Attr->value(),
                                             OpaqueValue::Construct::Global);
  // Python 3 pickles bytes for protocol 2 as _codecs.encode(text, 'latin1').
  if (M == "_codecs" && N == "encode" && A.size() == 2 &&
      A[0]->kind() == Value::Kind::Str && A[1]->kind() == Value::Kind::Str) {
    StringRef Enc = cast<StringValue>(*A[1]).value();
    if (Enc == "latin1" || Enc == "latin-1")
      if (std::optional<std::string> B =
              latin1FromUTF8(cast<StringValue>(*A[0]).value()))
        return makeBytes(*B);
  }
  auto O = std::make_shared<OpaqueValue>(M.str(), N.str(),
                                         OpaqueValue::Construct::Reduce);
  O->Args = std::move(ArgsV);
  return O;
}

Error PickleReader::stepObject(uint8_t Op, uint64_t At, bool &Handled) {
  Handled = true;
  switch (static_cast<PickleOp>(Op)) {
  case PickleOp::GLOBAL: {
    Expected<StringRef> M = readLine(At);
    if (!M)
      return M.takeError();
    Expected<StringRef> N = readLine(At);
    if (!N)
      return N.takeError();
    return pushGlobal(*M, *N, At);
  }
  case PickleOp::STACK_GLOBAL: {
    Expected<Item> N = pop(At);
    if (!N)
      return N.takeError();
    Expected<Item> M = pop(At);
    if (!M)
      return M.takeError();
    if (M->V->kind() != Value::Kind::Str || N->V->kind() != Value::Kind::Str)
      return error(At, "STACK_GLOBAL needs two strings");
    return pushGlobal(cast<StringValue>(*M->V).value(),
                      cast<StringValue>(*N->V).value(), At);
  }
  case PickleOp::REDUCE:
  case PickleOp::NEWOBJ:
  case PickleOp::NEWOBJ_EX: {
    Item Kwargs;
    if (Op == uint8_t(PickleOp::NEWOBJ_EX)) {
      Expected<Item> K = pop(At);
      if (!K)
        return K.takeError();
      if (K->V->kind() != Value::Kind::Dict)
        return error(At, "NEWOBJ_EX keyword arguments are not a dict");
      Kwargs = std::move(*K);
    }
    Expected<Item> Args = pop(At);
    if (!Args)
      return Args.takeError();
    Expected<Item> Fn = pop(At);
    if (!Fn)
      return Fn.takeError();
    auto *Callable = dyn_cast<OpaqueValue>(Fn->V.get());
    if (!Callable || Callable->construct() != OpaqueValue::Construct::Global)
      return error(
          At, formatv("{0} of a value that is not a global", pickleOpName(Op))
                  .str());
    if (Args->V->kind() != Value::Kind::Tuple)
      return error(
          At, formatv("{0} arguments are not a tuple", pickleOpName(Op)).str());
    uint32_t H = std::max(Args->Height, Kwargs.Height) + 1;
    const auto &ArgSeq = cast<SequenceValue>(*Args->V);
    if (Op == uint8_t(PickleOp::REDUCE)) {
      Expected<ValuePtr> V = reduce(*Callable, std::move(Args->V), At);
      if (!V)
        return V.takeError();
      return push(std::move(*V), H, At);
    }
    if (isGlobal(*Callable, "collections", "OrderedDict") &&
        ArgSeq.elements().empty() && !Kwargs.V)
      return pushLeaf(std::make_shared<DictValue>(/*Ordered=*/true), At);
    auto O = std::make_shared<OpaqueValue>(
        Callable->module(), Callable->name(),
        Kwargs.V ? OpaqueValue::Construct::NewObjEx
                 : OpaqueValue::Construct::NewObj);
    O->Args = std::move(Args->V);
    O->Kwargs = std::move(Kwargs.V);
    return push(std::move(O), H, At);
  }
  case PickleOp::BUILD:
    return build(At);
  case PickleOp::BINPERSID: {
    Expected<Item> Pid = pop(At);
    if (!Pid)
      return Pid.takeError();
    if (!PersistentLoad)
      return error(At, "persistent id without a persistent loader");
    Expected<ValuePtr> V = PersistentLoad(Pid->V, At);
    if (!V)
      return V.takeError();
    return push(std::move(*V), Pid->Height + 1, At);
  }
  default:
    Handled = false;
    return Error::success();
  }
}

/// BUILD sets an object's state: OrderedDict (a state_dict's _metadata) and
/// opaque objects keep it for export.
Error PickleReader::build(uint64_t At) {
  Expected<Item> State = pop(At);
  if (!State)
    return State.takeError();
  Expected<Item *> T = top(At);
  if (!T)
    return T.takeError();
  Item &Target = **T;
  if (Error Err = grow(Target, State->Height, At))
    return Err;
  if (auto *D = dyn_cast<DictValue>(Target.V.get())) {
    if (!isa<NoneValue>(State->V.get()))
      D->setState(std::move(State->V));
    return Error::success();
  }
  if (auto *O = dyn_cast<OpaqueValue>(Target.V.get())) {
    if (O->State)
      return error(At, "BUILD on an object that already has a state");
    O->State = std::move(State->V);
    return Error::success();
  }
  return error(At, "BUILD on a value that is not an object or OrderedDict");
}

Error PickleReader::memoPut(uint64_t Index, uint64_t At) {
  Expected<Item *> T = top(At);
  if (!T)
    return T.takeError();
  if (Index > 0xFFFFFFFFu)
    return error(At, formatv("memo index {0} is too large", Index).str());
  auto [It, New] = Memo.try_emplace(Index, (*T)->V);
  if (!New)
    It->second = (*T)->V;
  else if (Memo.size() > Limits.MaxMemoSize)
    return error(
        At, formatv("memo larger than {0} entries (limit)", Limits.MaxMemoSize)
                .str());
  return Error::success();
}

Error PickleReader::memoGet(uint64_t Index, uint64_t At) {
  auto It = Memo.find(Index);
  if (It == Memo.end())
    return error(At, formatv("memo key {0} is not defined", Index).str());
  Expected<Item> C = cloneItem(Item{It->second, 0}, At);
  if (!C)
    return C.takeError();
  Nodes -= 1; // push() counts the root again
  return push(std::move(C->V), C->Height, At);
}

Error PickleReader::stepMemo(uint8_t Op, uint64_t At, bool &Handled) {
  Handled = true;
  auto Fixed = [&](unsigned Bytes, bool Put) -> Error {
    if (Error Err = need(Bytes, At, pickleOpName(Op)))
      return Err;
    uint64_t Index = readLE(Bytes);
    return Put ? memoPut(Index, At) : memoGet(Index, At);
  };
  auto Text = [&](bool Put) -> Error {
    Expected<StringRef> L = readLine(At);
    if (!L)
      return L.takeError();
    uint64_t Index;
    if (L->trim().getAsInteger(10, Index))
      return error(At, "memo index '" + *L + "' is not a number");
    return Put ? memoPut(Index, At) : memoGet(Index, At);
  };
  switch (static_cast<PickleOp>(Op)) {
  case PickleOp::BINPUT:
    return Fixed(1, true);
  case PickleOp::LONG_BINPUT:
    return Fixed(4, true);
  case PickleOp::BINGET:
    return Fixed(1, false);
  case PickleOp::LONG_BINGET:
    return Fixed(4, false);
  case PickleOp::PUT:
    return Text(true);
  case PickleOp::GET:
    return Text(false);
  case PickleOp::MEMOIZE:
    return memoPut(Memo.size(), At);
  default:
    Handled = false;
    return Error::success();
  }
}

} // namespace wopt
