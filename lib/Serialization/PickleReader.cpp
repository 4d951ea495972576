//===- PickleReader.cpp - A symbolic unpickler ----------------------------===//
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

/// Python's raw-unicode-escape codec, as protocol 0 writes a str: \\uXXXX
/// and \\UXXXXXXXX are code points, every other byte is the code point of
/// its value. The result is UTF-8.
std::optional<std::string> rawUnicodeEscape(StringRef In) {
  std::string Out;
  auto Put = [&](uint32_t CP) {
    if (CP < 0x80) {
      Out.push_back(char(CP));
    } else if (CP < 0x800) {
      Out.push_back(char(0xC0 | (CP >> 6)));
      Out.push_back(char(0x80 | (CP & 0x3F)));
    } else if (CP < 0x10000) {
      Out.push_back(char(0xE0 | (CP >> 12)));
      Out.push_back(char(0x80 | ((CP >> 6) & 0x3F)));
      Out.push_back(char(0x80 | (CP & 0x3F)));
    } else {
      Out.push_back(char(0xF0 | (CP >> 18)));
      Out.push_back(char(0x80 | ((CP >> 12) & 0x3F)));
      Out.push_back(char(0x80 | ((CP >> 6) & 0x3F)));
      Out.push_back(char(0x80 | (CP & 0x3F)));
    }
  };
  for (size_t I = 0; I < In.size(); ++I) {
    unsigned Digits = 0;
    if (In[I] == '\\' && I + 1 < In.size())
      Digits = In[I + 1] == 'u' ? 4 : In[I + 1] == 'U' ? 8 : 0;
    if (!Digits) {
      Put(uint8_t(In[I]));
      continue;
    }
    uint32_t CP;
    if (I + 2 + Digits > In.size() ||
        In.substr(I + 2, Digits).getAsInteger(16, CP) || CP > 0x10FFFF)
      return std::nullopt;
    Put(CP);
    I += 1 + Digits;
  }
  return Out;
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

Error PickleReader::pushExisting(ValuePtr V, uint64_t At) {
  if (Stack.size() + Marks.size() >= Limits.MaxStackDepth)
    return error(
        At,
        formatv("stack deeper than {0} (limit)", Limits.MaxStackDepth).str());
  Stack.push_back(std::move(V));
  return Error::success();
}

Error PickleReader::pushNew(ValuePtr V, uint64_t At) {
  if (Error Err = countNodes(1, At))
    return Err;
  Graph->adopt(V);
  return pushExisting(std::move(V), At);
}

Expected<ValuePtr> PickleReader::pop(uint64_t At) {
  size_t Floor = Marks.empty() ? 0 : Marks.back();
  if (Stack.size() <= Floor)
    return error(At, Stack.empty() ? "stack underflow"
                                   : "stack underflow (below a MARK)");
  ValuePtr V = std::move(Stack.back());
  Stack.pop_back();
  return V;
}

Expected<ValuePtr *> PickleReader::top(uint64_t At) {
  size_t Floor = Marks.empty() ? 0 : Marks.back();
  if (Stack.size() <= Floor)
    return error(At, Stack.empty() ? "stack underflow"
                                   : "stack underflow (below a MARK)");
  return &Stack.back();
}

Expected<std::vector<ValuePtr>> PickleReader::popMark(uint64_t At) {
  if (Marks.empty())
    return error(At, "no MARK on the stack");
  size_t M = Marks.back();
  Marks.pop_back();
  std::vector<ValuePtr> Items(std::make_move_iterator(Stack.begin() + M),
                              std::make_move_iterator(Stack.end()));
  Stack.resize(M);
  return Items;
}

/// Python refuses what it cannot hash as a dict key or set element; a file
/// torch cannot load must not become one that wopt writes.
Error PickleReader::checkHashable(const Value &V, StringRef What, uint64_t At) {
  if (isHashable(V))
    return Error::success();
  return error(At, formatv("{0} is {1}, which Python cannot hash "
                           "(unhashable type: '{2}')",
                           What, describeKind(V), pythonTypeName(V))
                       .str());
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
  ValuePtr Result = std::move(Stack.back());
  Stack.clear();
  Memo.clear();
  // Building the graph never recursed; every walk over it afterwards does
  // (printer, writers), so its depth is bounded here.
  if (graphDepth(*Result, Limits.MaxNesting + 1) > Limits.MaxNesting)
    return error(Pos - 1, formatv("values nested deeper than {0} (limit)",
                                  Limits.MaxNesting)
                              .str());
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
    Expected<ValuePtr *> T = top(At);
    if (!T)
      return T.takeError();
    return pushExisting(**T, At);
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
    return pushNew(Text ? makeStr(*S) : makeBytes(*S), At);
  };
  switch (static_cast<PickleOp>(Op)) {
  case PickleOp::NONE:
    return pushNew(makeNone(), At);
  case PickleOp::NEWTRUE:
    return pushNew(makeBool(true), At);
  case PickleOp::NEWFALSE:
    return pushNew(makeBool(false), At);
  case PickleOp::BININT:
    if (Error Err = need(4, At, "BININT"))
      return Err;
    return pushNew(makeInt(int32_t(uint32_t(readLE(4)))), At);
  case PickleOp::BININT1:
    if (Error Err = need(1, At, "BININT1"))
      return Err;
    return pushNew(makeInt(readLE(1)), At);
  case PickleOp::BININT2:
    if (Error Err = need(2, At, "BININT2"))
      return Err;
    return pushNew(makeInt(readLE(2)), At);
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
      return pushNew(std::make_shared<BigIntValue>(B->str()), At);
    uint64_t V = 0;
    for (size_t I = 0; I < B->size(); ++I)
      V |= uint64_t(uint8_t((*B)[I])) << (8 * I);
    if (!B->empty() && B->size() < 8 && (uint8_t(B->back()) & 0x80))
      V |= ~uint64_t(0) << (8 * B->size()); // sign-extend
    return pushNew(makeInt(int64_t(V)), At);
  }
  case PickleOp::BINFLOAT: {
    if (Error Err = need(8, At, "BINFLOAT"))
      return Err;
    uint64_t Bits = support::endian::read64be(Data.data() + Pos);
    Pos += 8;
    double D;
    std::memcpy(&D, &Bits, 8);
    return pushNew(makeFloat(D), At);
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
    if (Op != uint8_t(PickleOp::BYTEARRAY8))
      return pushNew(makeBytes(*B), At);
    // A bytearray is a mutable object, not bytes: bytearray(b'...') as the
    // protocols before 5 spell it.
    auto O = std::make_shared<OpaqueValue>("builtins", "bytearray",
                                           OpaqueValue::Construct::Reduce);
    O->Args = makeTuple(B->empty() ? std::vector<ValuePtr>{}
                                   : std::vector<ValuePtr>{makeBytes(*B)});
    return pushNew(std::move(O), At);
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
      return pushNew(makeBool(*L == "01"), At);
    int64_t V;
    if (L->trim().getAsInteger(10, V))
      return error(At, "INT argument '" + *L + "' is not an integer");
    return pushNew(makeInt(V), At);
  }
  case PickleOp::LONG: {
    Expected<StringRef> L = Line();
    if (!L)
      return L.takeError();
    StringRef Digits = L->trim().rtrim('L');
    int64_t V;
    if (!Digits.getAsInteger(10, V))
      return pushNew(makeInt(V), At);
    // Protocol 0 and 1 write every long as decimal text, the legacy torch
    // magic number among them.
    std::optional<std::string> Big = longBytesFromDecimal(Digits);
    if (!Big)
      return error(At, "LONG argument " + quoteForMessage(*L) +
                           " is not an integer");
    return pushNew(std::make_shared<BigIntValue>(std::move(*Big)), At);
  }
  case PickleOp::FLOAT: {
    Expected<StringRef> L = Line();
    if (!L)
      return L.takeError();
    double D;
    if (L->trim().getAsDouble(D))
      return error(At, "FLOAT argument '" + *L + "' is not a number");
    return pushNew(makeFloat(D), At);
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
    return pushNew(json::isUTF8(S) ? makeStr(S) : makeBytes(S), At);
  }
  case PickleOp::UNICODE: {
    Expected<StringRef> L = Line();
    if (!L)
      return L.takeError();
    std::optional<std::string> S = rawUnicodeEscape(*L);
    if (!S)
      return error(At, "UNICODE argument has a bad \\u or \\U escape");
    return pushNew(makeStr(*S), At);
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
    return pushNew(*V, At);
  }
  default:
    Handled = false;
    return Error::success();
  }
}

/// Lists, tuples, dicts and sets.
Error PickleReader::stepContainer(uint8_t Op, uint64_t At, bool &Handled) {
  Handled = true;
  auto MakeSeq = [&](Value::Kind K, std::vector<ValuePtr> Elts) -> Error {
    if (K == Value::Kind::FrozenSet)
      for (const ValuePtr &E : Elts)
        if (Error Err = checkHashable(*E, "a frozenset element", At))
          return Err;
    return pushNew(std::make_shared<SequenceValue>(K, std::move(Elts)), At);
  };
  auto PopN = [&](size_t N) -> Expected<std::vector<ValuePtr>> {
    std::vector<ValuePtr> Items(N);
    for (size_t I = N; I-- > 0;) {
      Expected<ValuePtr> E = pop(At);
      if (!E)
        return E.takeError();
      Items[I] = std::move(*E);
    }
    return Items;
  };
  // APPEND(S), SETITEM(S) and ADDITEMS change the object below the items.
  auto Update = [&](Expected<std::vector<ValuePtr>> Items, bool Set) -> Error {
    if (!Items)
      return Items.takeError();
    Expected<ValuePtr *> T = top(At);
    if (!T)
      return T.takeError();
    return Set ? setItems(***T, std::move(*Items), At)
               : appendItems(***T, std::move(*Items), At);
  };
  switch (static_cast<PickleOp>(Op)) {
  case PickleOp::EMPTY_LIST:
    return pushNew(std::make_shared<SequenceValue>(Value::Kind::List), At);
  case PickleOp::EMPTY_TUPLE:
    return pushNew(std::make_shared<SequenceValue>(Value::Kind::Tuple), At);
  case PickleOp::EMPTY_SET:
    return pushNew(std::make_shared<SequenceValue>(Value::Kind::Set), At);
  case PickleOp::EMPTY_DICT:
    return pushNew(std::make_shared<DictValue>(), At);
  case PickleOp::TUPLE1:
  case PickleOp::TUPLE2:
  case PickleOp::TUPLE3: {
    Expected<std::vector<ValuePtr>> Items =
        PopN(Op - uint8_t(PickleOp::TUPLE1) + 1);
    if (!Items)
      return Items.takeError();
    return MakeSeq(Value::Kind::Tuple, std::move(*Items));
  }
  case PickleOp::TUPLE:
  case PickleOp::LIST:
  case PickleOp::FROZENSET: {
    Expected<std::vector<ValuePtr>> Items = popMark(At);
    if (!Items)
      return Items.takeError();
    Value::Kind K = Op == uint8_t(PickleOp::TUPLE)  ? Value::Kind::Tuple
                    : Op == uint8_t(PickleOp::LIST) ? Value::Kind::List
                                                    : Value::Kind::FrozenSet;
    return MakeSeq(K, std::move(*Items));
  }
  case PickleOp::DICT: {
    Expected<std::vector<ValuePtr>> Items = popMark(At);
    if (!Items)
      return Items.takeError();
    if (Error Err = pushNew(std::make_shared<DictValue>(), At))
      return Err;
    return setItems(*Stack.back(), std::move(*Items), At);
  }
  case PickleOp::APPEND:
    return Update(PopN(1), /*Set=*/false);
  case PickleOp::SETITEM:
    return Update(PopN(2), /*Set=*/true);
  case PickleOp::APPENDS:
  case PickleOp::ADDITEMS:
    return Update(popMark(At), /*Set=*/false);
  case PickleOp::SETITEMS:
    return Update(popMark(At), /*Set=*/true);
  default:
    Handled = false;
    return Error::success();
  }
}

Error PickleReader::appendItems(Value &Target, std::vector<ValuePtr> Items,
                                uint64_t At) {
  std::vector<ValuePtr> *Out = nullptr;
  if (auto *S = dyn_cast<SequenceValue>(&Target);
      S && (S->kind() == Value::Kind::List || S->kind() == Value::Kind::Set))
    Out = &S->elements();
  else if (auto *O = dyn_cast<OpaqueValue>(&Target))
    Out = &O->ListItems;
  if (!Out)
    return error(At, "APPEND to a value that is not a list, set or object");
  if (Target.kind() == Value::Kind::Set)
    for (const ValuePtr &I : Items)
      if (Error Err = checkHashable(*I, "a set element", At))
        return Err;
  Out->insert(Out->end(), std::make_move_iterator(Items.begin()),
              std::make_move_iterator(Items.end()));
  return Error::success();
}

Error PickleReader::setItems(Value &Target, std::vector<ValuePtr> Items,
                             uint64_t At) {
  if (Items.size() % 2)
    return error(
        At, formatv("SETITEMS with an odd number of items ({0})", Items.size())
                .str());
  std::vector<DictEntry> *Out = nullptr;
  if (auto *D = dyn_cast<DictValue>(&Target))
    Out = &D->entries();
  else if (auto *O = dyn_cast<OpaqueValue>(&Target))
    Out = &O->DictItems;
  if (!Out)
    return error(At, "SETITEM on a value that is not a dict or object");
  for (size_t I = 0; I < Items.size(); I += 2) {
    // A dict key must hash; what an object's __setitem__ takes is its own
    // business.
    if (isa<DictValue>(Target))
      if (Error Err = checkHashable(*Items[I], "a dict key", At))
        return Err;
    Out->push_back({std::move(Items[I]), std::move(Items[I + 1])});
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
  return pushNew(std::make_shared<OpaqueValue>(mapModuleName(Module).str(),
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
    for (const ValuePtr &E : S->elements())
      if (Error Err = checkHashable(*E, "a set element", At))
        return Err;
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
    Expected<ValuePtr> N = pop(At);
    if (!N)
      return N.takeError();
    Expected<ValuePtr> M = pop(At);
    if (!M)
      return M.takeError();
    if ((*M)->kind() != Value::Kind::Str || (*N)->kind() != Value::Kind::Str)
      return error(At, "STACK_GLOBAL needs two strings");
    return pushGlobal(cast<StringValue>(**M).value(),
                      cast<StringValue>(**N).value(), At);
  }
  case PickleOp::REDUCE:
  case PickleOp::NEWOBJ:
  case PickleOp::NEWOBJ_EX:
    return callObject(Op, At);
  case PickleOp::BUILD:
    return build(At);
  case PickleOp::BINPERSID: {
    Expected<ValuePtr> Pid = pop(At);
    if (!Pid)
      return Pid.takeError();
    if (!PersistentLoad)
      return error(At, "persistent id without a persistent loader");
    Expected<ValuePtr> V = PersistentLoad(*Pid, At);
    if (!V)
      return V.takeError();
    return pushNew(std::move(*V), At);
  }
  default:
    Handled = false;
    return Error::success();
  }
}

/// REDUCE, NEWOBJ, NEWOBJ_EX: callable (or class), arguments, keywords.
Error PickleReader::callObject(uint8_t Op, uint64_t At) {
  ValuePtr Kwargs;
  if (Op == uint8_t(PickleOp::NEWOBJ_EX)) {
    Expected<ValuePtr> K = pop(At);
    if (!K)
      return K.takeError();
    if ((*K)->kind() != Value::Kind::Dict)
      return error(At, "NEWOBJ_EX keyword arguments are not a dict");
    Kwargs = std::move(*K);
  }
  Expected<ValuePtr> Args = pop(At);
  if (!Args)
    return Args.takeError();
  Expected<ValuePtr> Fn = pop(At);
  if (!Fn)
    return Fn.takeError();
  if ((*Args)->kind() != Value::Kind::Tuple)
    return error(
        At, formatv("{0} arguments are not a tuple", pickleOpName(Op)).str());
  auto *Callable = dyn_cast<OpaqueValue>(Fn->get());
  bool IsGlobal = Callable && isBareGlobal(*Callable);
  if (!IsGlobal && !isa<OpaqueValue>(Fn->get()))
    return error(At, formatv("{0} of {1}, which is not a global or an "
                             "object",
                             pickleOpName(Op), describeKind(**Fn))
                         .str());
  auto Make = [&](OpaqueValue::Construct How) {
    // The callable is not a global (a method fetched with getattr from an
    // object, say): keep it as a value of its own.
    auto O = IsGlobal ? std::make_shared<OpaqueValue>(Callable->module(),
                                                      Callable->name(), How)
                      : std::make_shared<OpaqueValue>("", "", How);
    if (!IsGlobal)
      O->Callee = *Fn;
    O->Args = std::move(*Args);
    O->Kwargs = std::move(Kwargs);
    return O;
  };
  if (Op == uint8_t(PickleOp::REDUCE)) {
    if (!IsGlobal)
      return pushNew(Make(OpaqueValue::Construct::Reduce), At);
    Expected<ValuePtr> V = reduce(*Callable, std::move(*Args), At);
    if (!V)
      return V.takeError();
    return pushNew(std::move(*V), At);
  }
  if (IsGlobal && isGlobal(*Callable, "collections", "OrderedDict") &&
      cast<SequenceValue>(**Args).elements().empty() && !Kwargs)
    return pushNew(std::make_shared<DictValue>(/*Ordered=*/true), At);
  return pushNew(Make(Kwargs ? OpaqueValue::Construct::NewObjEx
                             : OpaqueValue::Construct::NewObj),
                 At);
}

/// BUILD sets an object's state: OrderedDict (a state_dict's _metadata) and
/// opaque objects keep it for export.
Error PickleReader::build(uint64_t At) {
  Expected<ValuePtr> State = pop(At);
  if (!State)
    return State.takeError();
  Expected<ValuePtr *> T = top(At);
  if (!T)
    return T.takeError();
  Value &Target = ***T;
  if (auto *D = dyn_cast<DictValue>(&Target)) {
    if (!isa<NoneValue>(State->get()))
      D->setState(std::move(*State));
    return Error::success();
  }
  if (auto *O = dyn_cast<OpaqueValue>(&Target)) {
    if (O->State)
      return error(At, "BUILD on an object that already has a state");
    O->State = std::move(*State);
    return Error::success();
  }
  return error(At, "BUILD on a value that is not an object or OrderedDict");
}

Error PickleReader::memoPut(uint64_t Index, uint64_t At) {
  Expected<ValuePtr *> T = top(At);
  if (!T)
    return T.takeError();
  if (Index > 0xFFFFFFFFu)
    return error(At, formatv("memo index {0} is too large", Index).str());
  auto [It, New] = Memo.try_emplace(Index, **T);
  if (!New)
    It->second = **T;
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
  // The same object again: sharing and cycles stay what the file said.
  return pushExisting(It->second, At);
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
