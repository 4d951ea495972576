//===- StateDict.h - Safe edits of a state dict -----------------*- C++ -*-===//
//
// The operations every renaming pass needs, done once and checked once: no
// pass may ever silently produce two entries with the same name.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_IR_STATEDICT_H
#define WOPT_IR_STATEDICT_H

#include "wopt/IR/Value.h"
#include "llvm/Support/Error.h"

namespace wopt {

/// Renames the string keys of D. Map returns the new key, or nullopt to keep
/// the key. Tensors renamed get a provenance step (PassName, old, new).
/// Fails without changing anything when two entries would end with the same
/// key; the error names both keys as they were before the pass and, for
/// tensors, their provenance. NumRenamed (optional) counts changed keys.
llvm::Error
renameKeys(DictValue &D,
           llvm::function_ref<std::optional<std::string>(llvm::StringRef)> Map,
           llvm::StringRef PassName, unsigned *NumRenamed = nullptr);

/// The tensor of entry E (asserted to be one), made E's own: a new node with
/// the same storage and attributes replaces the value, so a change through
/// it reaches no other reference to the old node, as `sd[k] = f(sd[k])`
/// does in Python. Every pass that changes a tensor changes it through this.
TensorValue &ownTensor(DictEntry &E);

/// Removes the entries for which Pred is true, keeping the order of the
/// rest. Returns how many were removed.
unsigned eraseIf(DictValue &D,
                 llvm::function_ref<bool(const DictEntry &)> Pred);

/// Total bytes of the tensor data below V: each tensor node once, its own
/// numel * size (distinct tensors sharing a storage each count).
uint64_t tensorBytes(const Value &V);

/// Copies elements [First, First + N) of T's view, in row-major order,
/// into Out (N * dtypeSize bytes) as the file stores them (its byte
/// order). A contiguous view of a storage mapped from a file is read with
/// pread: reading through the mapping would fault the whole input into the
/// resident set of a process that only streams it (cast, diff).
llvm::Error readTensorElements(const TensorValue &T, uint64_t First, uint64_t N,
                               llvm::MutableArrayRef<uint8_t> Out);

} // namespace wopt

#endif
