//===- Safetensors.h - safetensors import and export ------------*- C++ -*-===//
#ifndef WOPT_SERIALIZATION_SAFETENSORS_H
#define WOPT_SERIALIZATION_SAFETENSORS_H

#include "wopt/IR/Checkpoint.h"
#include "llvm/Support/Error.h"

namespace wopt {

/// Imports a safetensors file mapped in Source: the root becomes a state
/// dict of mapped tensors; __metadata__ is kept as the dict's state.
llvm::Expected<std::unique_ptr<Checkpoint>>
importSafetensors(std::shared_ptr<SourceFile> Source);

/// Writes the root state dict as safetensors to Path, atomically.
llvm::Error exportSafetensors(const Checkpoint &C, llvm::StringRef Path);

} // namespace wopt

#endif
