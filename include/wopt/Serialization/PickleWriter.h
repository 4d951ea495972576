//===- PickleWriter.h - Protocol 2 pickles as CPython writes them -*- C++
//-*-===//
//
// Emits the opcodes CPython's pickle.Pickler(protocol=2) emits for the same
// values (BININT1/2, BININT, LONG1/4, BINUNICODE, TUPLE1-3, EMPTY_* plus
// batched APPENDS/SETITEMS of 1000, BINPUT after every memoizable object),
// so a torch.save file written by wopt reads like one written by torch.
// Strings and globals are memoized by value and fetched with BINGET.
//
// The writer never emits more than its input said: a global whose module
// or name is not a dotted Python identifier, or a str that is not UTF-8,
// is refused with an error naming where it sits, whatever built the IR.
//
// writeValue() walks a value graph and keeps its identity: every list,
// dict, set, tuple, object and tensor is memoized once and fetched again
// with BINGET wherever the graph references it again, and cycles are
// written as CPython writes them (a mutable container is memoized before
// its items; a tuple or reduction that turns out to contain itself is
// thrown away and fetched from the memo). Tensors and storages are
// delegated to callbacks because how they are pickled (persistent ids,
// rebuild functions) is the torch exporter's business.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_SERIALIZATION_PICKLEWRITER_H
#define WOPT_SERIALIZATION_PICKLEWRITER_H

#include "wopt/IR/Value.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/FunctionExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include <map>
#include <string>
#include <vector>

namespace wopt {

class PickleWriter {
public:
  enum class Op : uint8_t {
#define WOPT_PICKLE_OP(NAME, BYTE) NAME = static_cast<uint8_t>(BYTE),
#include "wopt/Serialization/PickleOpcodes.def"
  };
  /// CPython batches APPENDS/SETITEMS in groups of this many.
  static constexpr size_t BatchSize = 1000;

  /// Writes a tensor and ends with endObject(T).
  using TensorCallback =
      llvm::unique_function<llvm::Error(const TensorValue &, PickleWriter &)>;
  /// Writes a storage (a persistent id: torch does not memoize those).
  using StorageCallback =
      llvm::unique_function<llvm::Error(const StorageValue &, PickleWriter &)>;

  /// Starts the pickle with PROTO Protocol.
  explicit PickleWriter(uint8_t Protocol = 2);

  /// Writes V. Tensors go to the tensor callback (an error without one).
  llvm::Error writeValue(const Value &V);
  void setTensorCallback(TensorCallback CB) { OnTensor = std::move(CB); }
  void setStorageCallback(StorageCallback CB) { OnStorage = std::move(CB); }
  /// Dict keys and list indices from the root to the value being written,
  /// joined with '/': names a tensor in a diagnostic.
  std::string currentPath() const;

  // Primitive emitters, usable by callbacks.
  void op(Op O) { Out.push_back(static_cast<char>(O)); }
  void writeNone() { op(Op::NONE); }
  void writeBool(bool B) { op(B ? Op::NEWTRUE : Op::NEWFALSE); }
  void writeInt(int64_t I);
  /// Two's complement little-endian bytes, as LONG1/LONG4 carry them.
  void writeLong(llvm::StringRef Bytes);
  void writeFloat(double D);
  /// BINUNICODE; memoized by value. S must be Python text (asserted):
  /// writeValue checks the strs it takes from the IR.
  void writeStr(llvm::StringRef S);
  /// Protocol 2 has no bytes opcode: _codecs.encode(latin1 text, 'latin1').
  void writeBytes(llvm::StringRef B);
  /// GLOBAL module name; memoized by value. Python 3 module names are
  /// written under their Python 2 spelling (builtins -> __builtin__). A
  /// nested name ("Outer.Inner") is getattr(Outer, 'Inner'), as protocol 2
  /// has it. Fails when either is not a dotted Python identifier.
  llvm::Error writeGlobal(llvm::StringRef Module, llvm::StringRef Name);
  /// An empty collections.OrderedDict(): GLOBAL, EMPTY_TUPLE, REDUCE, memo.
  void writeEmptyOrderedDict();
  /// Writes the N values already produced by Elt as a tuple (TUPLE1-3 or
  /// MARK..TUPLE), memoized like CPython does.
  llvm::Error writeTuple(size_t N, llvm::function_ref<llvm::Error(size_t)> Elt);
  /// BINPUT/LONG_BINPUT of the next memo index.
  void memoize();
  /// For an object just built on the stack (after its REDUCE): memoizes it
  /// as V, or, when writing its arguments already wrote V (a reference to
  /// itself), pops it and fetches that one, as CPython's save_reduce does.
  void endObject(const Value &V);
  /// Appends STOP; returns the pickle.
  std::string finish();

private:
  llvm::Error writeSequence(const SequenceValue &S);
  llvm::Error writeDict(const DictValue &D);
  llvm::Error writeOpaque(const OpaqueValue &O);
  llvm::Error writeConstruction(const OpaqueValue &O);
  llvm::Error writeAppends(llvm::ArrayRef<ValuePtr> Items);
  llvm::Error writeSetItems(llvm::ArrayRef<DictEntry> Items);
  llvm::Error writeItem(const ValuePtr &V);
  llvm::Error writeCallable(const OpaqueValue &O);
  void writeGet(uint32_t Index);
  void memoizeNode(const Value &V);
  void writeU32(uint32_t V);

  std::string Out;
  uint32_t NextMemo = 0;
  /// Memo indices of strs by text, and of globals by (module, name): two
  /// maps, so no key of one kind can ever equal a key of the other.
  llvm::StringMap<uint32_t> StrMemo;
  std::map<std::pair<std::string, std::string>, uint32_t> GlobalMemo;
  /// Memo indices of the nodes written so far, by identity.
  llvm::DenseMap<const Value *, uint32_t> NodeMemo;
  std::vector<std::string> Path;
  unsigned Depth = 0;
  TensorCallback OnTensor;
  StorageCallback OnStorage;
};

} // namespace wopt

#endif
