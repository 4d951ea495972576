//===- PickleWriter.cpp - Protocol 2 pickles as CPython writes them -------===//

#include "wopt/Serialization/PickleWriter.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Endian.h"
#include <cstring>

using namespace llvm;

namespace wopt {

namespace {
/// Deeper trees than this cannot come from a reader with sane limits; stop
/// before the recursion can exhaust the stack.
constexpr unsigned MaxDepth = 10000;

/// Python 3 modules that protocol 2 writes under their Python 2 names, as
/// pickle's fix_imports does, so both Pythons find them.
StringRef python2Module(StringRef Module) {
  if (Module == "builtins")
    return "__builtin__";
  if (Module == "copyreg")
    return "copy_reg";
  return Module;
}

/// Bytes as the latin-1 text CPython hands to _codecs.encode: each byte is
/// the code point of the same value, written here as UTF-8.
std::string latin1ToUTF8(StringRef Bytes) {
  std::string S;
  S.reserve(Bytes.size());
  for (unsigned char C : Bytes) {
    if (C < 0x80) {
      S.push_back(static_cast<char>(C));
      continue;
    }
    S.push_back(static_cast<char>(0xC0 | (C >> 6)));
    S.push_back(static_cast<char>(0x80 | (C & 0x3F)));
  }
  return S;
}

/// Minimal two's complement little-endian bytes of I (pickle.encode_long).
std::string encodeLong(int64_t I) {
  std::string B;
  uint64_t U = static_cast<uint64_t>(I);
  for (int N = 0; N < 8; ++N)
    B.push_back(static_cast<char>((U >> (8 * N)) & 0xFF));
  // Drop bytes that only repeat the sign.
  while (B.size() > 1) {
    unsigned char Last = B.back(), Prev = B[B.size() - 2];
    bool Redundant =
        (Last == 0x00 && !(Prev & 0x80)) || (Last == 0xFF && (Prev & 0x80));
    if (!Redundant)
      break;
    B.pop_back();
  }
  return B;
}
} // namespace

PickleWriter::PickleWriter(uint8_t Protocol) {
  op(Op::PROTO);
  Out.push_back(static_cast<char>(Protocol));
}

void PickleWriter::writeU32(uint32_t V) {
  char Buf[4];
  support::endian::write32le(Buf, V);
  Out.append(Buf, 4);
}

void PickleWriter::memoize() {
  if (NextMemo < 256) {
    op(Op::BINPUT);
    Out.push_back(static_cast<char>(NextMemo));
  } else {
    op(Op::LONG_BINPUT);
    writeU32(NextMemo);
  }
  ++NextMemo;
}

void PickleWriter::memoizeNode(const Value &V) {
  NodeMemo[&V] = NextMemo;
  memoize();
}

void PickleWriter::endObject(const Value &V) {
  auto It = NodeMemo.find(&V);
  if (It == NodeMemo.end()) {
    memoizeNode(V);
    return;
  }
  op(Op::POP);
  writeGet(It->second);
}

void PickleWriter::writeGet(uint32_t Index) {
  if (Index < 256) {
    op(Op::BINGET);
    Out.push_back(static_cast<char>(Index));
    return;
  }
  op(Op::LONG_BINGET);
  writeU32(Index);
}

void PickleWriter::writeInt(int64_t I) {
  if (I >= 0 && I <= 0xFF) {
    op(Op::BININT1);
    Out.push_back(static_cast<char>(I));
  } else if (I >= 0 && I <= 0xFFFF) {
    op(Op::BININT2);
    char Buf[2];
    support::endian::write16le(Buf, static_cast<uint16_t>(I));
    Out.append(Buf, 2);
  } else if (I >= INT32_MIN && I <= INT32_MAX) {
    op(Op::BININT);
    writeU32(static_cast<uint32_t>(static_cast<int32_t>(I)));
  } else {
    writeLong(encodeLong(I));
  }
}

void PickleWriter::writeLong(StringRef Bytes) {
  if (Bytes.size() < 256) {
    op(Op::LONG1);
    Out.push_back(static_cast<char>(Bytes.size()));
  } else {
    op(Op::LONG4);
    writeU32(static_cast<uint32_t>(Bytes.size()));
  }
  Out.append(Bytes.data(), Bytes.size());
}

void PickleWriter::writeFloat(double D) {
  op(Op::BINFLOAT);
  uint64_t Bits;
  std::memcpy(&Bits, &D, sizeof(Bits));
  char Buf[8];
  support::endian::write64be(Buf, Bits);
  Out.append(Buf, 8);
}

void PickleWriter::writeStr(StringRef S) {
  assert(isPythonText(S) && "str that pickle cannot carry");
  auto [It, New] = StrMemo.try_emplace(S, NextMemo);
  if (!New) {
    writeGet(It->second);
    return;
  }
  op(Op::BINUNICODE);
  writeU32(static_cast<uint32_t>(S.size()));
  Out.append(S.data(), S.size());
  memoize();
}

Error PickleWriter::writeGlobal(StringRef Module, StringRef Name) {
  if (!isPythonDottedName(Module) || !isPythonDottedName(Name))
    return createStringError(inconvertibleErrorCode(),
                             "cannot write global %s %s at '%s': not a "
                             "dotted Python identifier",
                             quoteForMessage(Module).c_str(),
                             quoteForMessage(Name).c_str(),
                             currentPath().c_str());
  Module = python2Module(Module);
  auto Key = std::make_pair(Module.str(), Name.str());
  if (auto It = GlobalMemo.find(Key); It != GlobalMemo.end()) {
    writeGet(It->second);
    return Error::success();
  }
  auto [Parent, Last] = Name.rsplit('.');
  if (Last.empty()) {
    op(Op::GLOBAL);
    Out.append(Module.data(), Module.size());
    Out.push_back('\n');
    Out.append(Name.data(), Name.size());
    Out.push_back('\n');
  } else {
    // Protocol 2 resolves one name per GLOBAL: getattr(Parent, 'Last'),
    // as CPython's save_global writes a nested class.
    cantFail(writeGlobal("builtins", "getattr"));
    if (Error E = writeGlobal(Module, Parent))
      return E;
    writeStr(Last);
    op(Op::TUPLE2);
    memoize();
    op(Op::REDUCE);
  }
  GlobalMemo[Key] = NextMemo;
  memoize();
  return Error::success();
}

void PickleWriter::writeBytes(StringRef B) {
  // CPython: save_reduce(bytes, ()) when empty, else
  // save_reduce(codecs.encode, (str(obj, 'latin1'), 'latin1')).
  if (B.empty()) {
    cantFail(writeGlobal("builtins", "bytes"));
    op(Op::EMPTY_TUPLE);
  } else {
    cantFail(writeGlobal("_codecs", "encode"));
    writeStr(latin1ToUTF8(B));
    writeStr("latin1");
    op(Op::TUPLE2);
    memoize();
  }
  op(Op::REDUCE);
  memoize();
}

void PickleWriter::writeEmptyOrderedDict() {
  cantFail(writeGlobal("collections", "OrderedDict"));
  op(Op::EMPTY_TUPLE);
  op(Op::REDUCE);
  memoize();
}

Error PickleWriter::writeTuple(size_t N, function_ref<Error(size_t)> Elt) {
  if (N == 0) {
    op(Op::EMPTY_TUPLE); // CPython does not memoize the empty tuple
    return Error::success();
  }
  if (N > 3)
    op(Op::MARK);
  for (size_t I = 0; I < N; ++I)
    if (Error E = Elt(I))
      return E;
  static const Op Short[] = {Op::TUPLE1, Op::TUPLE2, Op::TUPLE3};
  op(N <= 3 ? Short[N - 1] : Op::TUPLE);
  memoize();
  return Error::success();
}

std::string PickleWriter::currentPath() const { return join(Path, "/"); }

Error PickleWriter::writeItem(const ValuePtr &V) {
  if (!V)
    return createStringError(inconvertibleErrorCode(), "null value at '%s'",
                             currentPath().c_str());
  return writeValue(*V);
}

Error PickleWriter::writeAppends(ArrayRef<ValuePtr> Items) {
  for (size_t Begin = 0; Begin < Items.size(); Begin += BatchSize) {
    size_t N = std::min(BatchSize, Items.size() - Begin);
    if (N > 1)
      op(Op::MARK);
    for (size_t I = Begin; I < Begin + N; ++I) {
      Path.push_back(std::to_string(I));
      Error E = writeItem(Items[I]);
      Path.pop_back();
      if (E)
        return E;
    }
    op(N > 1 ? Op::APPENDS : Op::APPEND);
  }
  return Error::success();
}

/// A dict key as it appears in a diagnostic path.
static std::string keyLabel(const ValuePtr &Key) {
  if (auto *S = dyn_cast_or_null<StringValue>(Key.get()))
    return S->value();
  if (auto *I = dyn_cast_or_null<IntValue>(Key.get()))
    return std::to_string(I->value());
  return "<key>";
}

Error PickleWriter::writeSetItems(ArrayRef<DictEntry> Items) {
  for (size_t Begin = 0; Begin < Items.size(); Begin += BatchSize) {
    size_t N = std::min(BatchSize, Items.size() - Begin);
    if (N > 1)
      op(Op::MARK);
    for (size_t I = Begin; I < Begin + N; ++I) {
      if (Error E = writeItem(Items[I].Key))
        return E;
      Path.push_back(keyLabel(Items[I].Key));
      Error E = writeItem(Items[I].Val);
      Path.pop_back();
      if (E)
        return E;
    }
    op(N > 1 ? Op::SETITEMS : Op::SETITEM);
  }
  return Error::success();
}

Error PickleWriter::writeSequence(const SequenceValue &S) {
  const auto &Elts = S.elements();
  switch (S.kind()) {
  case Value::Kind::List:
    op(Op::EMPTY_LIST);
    memoizeNode(S);
    return writeAppends(Elts);
  case Value::Kind::Tuple: {
    if (Elts.empty()) {
      op(Op::EMPTY_TUPLE); // CPython does not memoize the empty tuple
      return Error::success();
    }
    bool Marked = Elts.size() > 3;
    if (Marked)
      op(Op::MARK);
    for (size_t I = 0; I < Elts.size(); ++I) {
      Path.push_back(std::to_string(I));
      Error E = writeItem(Elts[I]);
      Path.pop_back();
      if (E)
        return E;
    }
    // An element held the tuple itself (through a list, say): that inner
    // write made it; drop what this one pushed and fetch that one.
    if (auto It = NodeMemo.find(&S); It != NodeMemo.end()) {
      if (Marked)
        op(Op::POP_MARK);
      else
        for (size_t I = 0; I < Elts.size(); ++I)
          op(Op::POP);
      writeGet(It->second);
      return Error::success();
    }
    static const Op Short[] = {Op::TUPLE1, Op::TUPLE2, Op::TUPLE3};
    op(Marked ? Op::TUPLE : Short[Elts.size() - 1]);
    memoizeNode(S);
    return Error::success();
  }
  default: {
    // Protocol 2 has no set opcodes: set(list) / frozenset(list) reduces.
    bool Frozen = S.kind() == Value::Kind::FrozenSet;
    cantFail(writeGlobal("builtins", Frozen ? "frozenset" : "set"));
    op(Op::EMPTY_LIST);
    memoize();
    if (Error E = writeAppends(Elts))
      return E;
    op(Op::TUPLE1);
    memoize();
    op(Op::REDUCE);
    endObject(S);
    return Error::success();
  }
  }
}

Error PickleWriter::writeDict(const DictValue &D) {
  if (D.isOrdered()) {
    cantFail(writeGlobal("collections", "OrderedDict"));
    op(Op::EMPTY_TUPLE);
    op(Op::REDUCE);
  } else {
    op(Op::EMPTY_DICT);
  }
  memoizeNode(D);
  if (Error E = writeSetItems(D.entries()))
    return E;
  if (!D.state())
    return Error::success();
  // OrderedDict.__reduce__ carries the instance __dict__ (a state_dict()'s
  // _metadata) as state: BUILD after the items, as CPython orders it.
  if (Error E = writeValue(*D.state()))
    return E;
  op(Op::BUILD);
  return Error::success();
}

Error PickleWriter::writeCallable(const OpaqueValue &O) {
  if (!O.Callee)
    return writeGlobal(O.module(), O.name());
  Path.push_back("<callee>");
  Error E = writeValue(*O.Callee);
  Path.pop_back();
  return E;
}

Error PickleWriter::writeOpaque(const OpaqueValue &O) {
  // A bare global is the same object wherever it appears: writeGlobal
  // memoizes it by name.
  if (Error E = writeCallable(O))
    return E;
  if (O.construct() != OpaqueValue::Construct::Global) {
    if (Error E = writeConstruction(O))
      return E;
    endObject(O);
  }
  // Whatever was done to the object after it was made, a bare global
  // included: APPENDS, SETITEMS, then BUILD, as the reader saw them.
  if (!O.ListItems.empty())
    if (Error E = writeAppends(O.ListItems))
      return E;
  if (!O.DictItems.empty())
    if (Error E = writeSetItems(O.DictItems))
      return E;
  if (!O.State)
    return Error::success();
  if (Error E = writeValue(*O.State))
    return E;
  op(Op::BUILD);
  return Error::success();
}

/// The arguments and the REDUCE/NEWOBJ/NEWOBJ_EX that call the global.
Error PickleWriter::writeConstruction(const OpaqueValue &O) {
  if (O.Args) {
    if (Error E = writeValue(*O.Args))
      return E;
  } else {
    op(Op::EMPTY_TUPLE);
  }
  switch (O.construct()) {
  case OpaqueValue::Construct::Reduce:
    op(Op::REDUCE);
    return Error::success();
  case OpaqueValue::Construct::NewObj:
    op(Op::NEWOBJ);
    return Error::success();
  case OpaqueValue::Construct::NewObjEx:
    if (O.Kwargs) {
      if (Error E = writeValue(*O.Kwargs))
        return E;
    } else {
      op(Op::EMPTY_DICT);
      memoize();
    }
    op(Op::NEWOBJ_EX);
    return Error::success();
  case OpaqueValue::Construct::Global:
    break;
  }
  llvm_unreachable("a bare global has no construction");
}

Error PickleWriter::writeValue(const Value &V) {
  if (Depth >= MaxDepth)
    return createStringError(inconvertibleErrorCode(),
                             "value nested deeper than %u levels at '%s' (a "
                             "cycle through tuples or arguments only?)",
                             MaxDepth, currentPath().c_str());
  // The same object again: fetch it.
  if (auto It = NodeMemo.find(&V); It != NodeMemo.end()) {
    writeGet(It->second);
    return Error::success();
  }
  ++Depth;
  auto Restore = make_scope_exit([&] { --Depth; });
  switch (V.kind()) {
  case Value::Kind::None:
    writeNone();
    return Error::success();
  case Value::Kind::Bool:
    writeBool(cast<BoolValue>(V).value());
    return Error::success();
  case Value::Kind::Int:
    writeInt(cast<IntValue>(V).value());
    return Error::success();
  case Value::Kind::BigInt:
    writeLong(cast<BigIntValue>(V).bytes());
    return Error::success();
  case Value::Kind::Float:
    writeFloat(cast<FloatValue>(V).value());
    return Error::success();
  case Value::Kind::Str: {
    const std::string &S = cast<StringValue>(V).value();
    if (!isPythonText(S))
      return createStringError(inconvertibleErrorCode(),
                               "cannot write str %s at '%s': not valid UTF-8 "
                               "(bytes must be a bytes value)",
                               quoteForMessage(S).c_str(),
                               currentPath().c_str());
    writeStr(S);
    return Error::success();
  }
  case Value::Kind::Bytes:
    writeBytes(cast<StringValue>(V).value());
    return Error::success();
  case Value::Kind::List:
  case Value::Kind::Tuple:
  case Value::Kind::Set:
  case Value::Kind::FrozenSet:
    return writeSequence(cast<SequenceValue>(V));
  case Value::Kind::Dict:
    return writeDict(cast<DictValue>(V));
  case Value::Kind::Opaque:
    return writeOpaque(cast<OpaqueValue>(V));
  case Value::Kind::Tensor:
    if (!OnTensor)
      return createStringError(inconvertibleErrorCode(),
                               "cannot pickle tensor '%s' here",
                               currentPath().c_str());
    return OnTensor(cast<TensorValue>(V), *this);
  case Value::Kind::Storage:
    if (!OnStorage)
      return createStringError(inconvertibleErrorCode(),
                               "cannot pickle storage '%s' here",
                               currentPath().c_str());
    return OnStorage(cast<StorageValue>(V), *this);
  }
  llvm_unreachable("unknown value kind");
}

std::string PickleWriter::finish() {
  op(Op::STOP);
  return std::move(Out);
}

} // namespace wopt
