//===- PickleReader.h - A symbolic unpickler --------------------*- C++ -*-===//
//
// Reads Python pickles (protocols 0-5, minus out-of-band buffers and the
// extension registry) into wopt's value graph without importing or calling
// anything: a global is a name, a reduction of a global the reader does not
// know is kept as an inert OpaqueValue. The client interprets persistent
// ids and may claim reductions (torch's tensor rebuild functions) through
// callbacks.
//
// Memo fetches and DUP give the same node again, so the result is the
// object graph the pickle describes, shared objects and cycles included.
// Each opcode makes at most one node, so work and memory are linear in the
// size of the pickle. Every length is checked against the bytes that
// remain, and ReaderLimits bounds stack, memo, nesting, opcodes and nodes.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_SERIALIZATION_PICKLEREADER_H
#define WOPT_SERIALIZATION_PICKLEREADER_H

#include "wopt/IR/Value.h"
#include "wopt/Serialization/Serialization.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/Error.h"
#include <functional>
#include <string>
#include <vector>

namespace wopt {

enum class PickleOp : uint8_t {
#define WOPT_PICKLE_OP(Name, Byte) Name = static_cast<uint8_t>(Byte),
#include "wopt/Serialization/PickleOpcodes.def"
};

/// True when Bytes start like torch's legacy (pre-1.6) format: a pickle of
/// the magic number 0x1950a86a20f9469cfc6c, as any pickle protocol writes
/// it (LONG1 after PROTO and FRAME, or LONG text for protocols 0 and 1).
bool looksLikeLegacyTorch(llvm::ArrayRef<uint8_t> Bytes);

/// "BINPUT", or "" for a byte that is not an opcode.
llvm::StringRef pickleOpName(uint8_t Byte);

class PickleReader {
public:
  /// Builds the value a persistent id (BINPERSID/PERSID) stands for. At is
  /// the byte offset of the opcode, for messages.
  using PersistentLoadFn =
      std::function<llvm::Expected<ValuePtr>(const ValuePtr &Pid, uint64_t At)>;
  /// Offered every REDUCE of a global (and the reader's own nested
  /// rebuilds): return a value to claim it, null to let the reader handle it
  /// (OrderedDict, set, _codecs.encode, else an OpaqueValue).
  using ReduceFn = std::function<llvm::Expected<ValuePtr>(
      const OpaqueValue &Callable, const SequenceValue &Args, uint64_t At)>;

  /// Where prefixes every message: "ck.pth: data.pkl".
  PickleReader(llvm::ArrayRef<uint8_t> Data, std::string Where,
               const ReaderLimits &Limits = {});

  void setPersistentLoad(PersistentLoadFn F) { PersistentLoad = std::move(F); }
  void setReduce(ReduceFn F) { Reduce = std::move(F); }

  /// Reads one pickle, up to and including its STOP. Call again to read the
  /// next pickle of a stream (the legacy torch format has five in a row);
  /// the memo is per pickle.
  llvm::Expected<ValuePtr> read();
  /// Offset of the next unread byte.
  uint64_t position() const { return Pos; }

  /// "<Where>: <Msg> at byte <At>" as an Error.
  llvm::Error error(uint64_t At, const llvm::Twine &Msg) const;

  /// Python 2 module names as Python 3 knows them (pickle's
  /// _compat_pickle mapping for the names checkpoints use).
  static llvm::StringRef mapModuleName(llvm::StringRef Module);

  /// The nodes made so far (every pickle read by this reader); the caller
  /// keeps them with the values (Checkpoint::setGraph).
  const std::shared_ptr<ValueGraph> &graph() const { return Graph; }

private:
  llvm::Error step(uint8_t Op, uint64_t At, bool &Done);
  llvm::Error stepData(uint8_t Op, uint64_t At, bool &Handled);
  llvm::Error stepText(uint8_t Op, uint64_t At, bool &Handled);
  llvm::Error stepContainer(uint8_t Op, uint64_t At, bool &Handled);
  llvm::Error stepObject(uint8_t Op, uint64_t At, bool &Handled);
  llvm::Error stepMemo(uint8_t Op, uint64_t At, bool &Handled);

  // Reading raw bytes; each checks what remains.
  llvm::Error need(uint64_t N, uint64_t At, llvm::StringRef What);
  uint64_t readLE(unsigned N);
  llvm::Expected<llvm::StringRef> readBytes(uint64_t N, uint64_t At,
                                            llvm::StringRef What);
  llvm::Expected<llvm::StringRef> readLine(uint64_t At);

  // The stack.
  /// Pushes a node the reader just made (counted, owned by the graph).
  llvm::Error pushNew(ValuePtr V, uint64_t At);
  /// Pushes a node again (DUP, memo fetch).
  llvm::Error pushExisting(ValuePtr V, uint64_t At);
  llvm::Expected<ValuePtr> pop(uint64_t At);
  llvm::Expected<ValuePtr *> top(uint64_t At);
  llvm::Expected<std::vector<ValuePtr>> popMark(uint64_t At);
  llvm::Error checkHashable(const Value &V, llvm::StringRef What, uint64_t At);
  llvm::Error countNodes(uint64_t N, uint64_t At);

  // Objects.
  llvm::Error pushGlobal(llvm::StringRef Module, llvm::StringRef Name,
                         uint64_t At);
  llvm::Expected<ValuePtr> reduce(const OpaqueValue &Callable, ValuePtr Args,
                                  uint64_t At);
  llvm::Error build(uint64_t At);
  llvm::Error appendItems(Value &Target, std::vector<ValuePtr> Items,
                          uint64_t At);
  llvm::Error setItems(Value &Target, std::vector<ValuePtr> Items, uint64_t At);
  llvm::Error callObject(uint8_t Op, uint64_t At);
  llvm::Error memoPut(uint64_t Index, uint64_t At);
  llvm::Error memoGet(uint64_t Index, uint64_t At);

  llvm::ArrayRef<uint8_t> Data;
  std::string Where;
  ReaderLimits Limits;
  PersistentLoadFn PersistentLoad;
  ReduceFn Reduce;

  uint64_t Pos = 0;
  uint64_t Opcodes = 0;
  uint64_t Nodes = 0;
  // Graph before Stack and Memo: members die in reverse order, and the
  // graph frees a cycle only once nothing else holds its nodes (a pickle
  // refused half-way would otherwise leak its cycles).
  std::shared_ptr<ValueGraph> Graph = std::make_shared<ValueGraph>();
  std::vector<ValuePtr> Stack;
  std::vector<size_t> Marks;
  llvm::DenseMap<uint64_t, ValuePtr> Memo;
};

} // namespace wopt

#endif
