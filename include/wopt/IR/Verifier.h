//===- Verifier.h - IR invariants -------------------------------*- C++ -*-===//
#ifndef WOPT_IR_VERIFIER_H
#define WOPT_IR_VERIFIER_H

#include "wopt/IR/Checkpoint.h"
#include "llvm/Support/Error.h"

namespace wopt {

/// Checks the invariants every pass may rely on: keys unique within each
/// dict, every tensor has a storage, its extent lies inside the storage
/// (overflow-safe), dtype and storage agree, no negative dims or strides.
/// The error names the offending key path.
llvm::Error verifyCheckpoint(const Checkpoint &C);

} // namespace wopt

#endif
