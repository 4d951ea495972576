//===- FlatBuffers.h - The .wopt FlatBuffers format -------------*- C++ -*-===//
#ifndef WOPT_SERIALIZATION_FLATBUFFERS_H
#define WOPT_SERIALIZATION_FLATBUFFERS_H

#include "wopt/IR/Checkpoint.h"
#include "llvm/Support/Error.h"

namespace wopt {

/// Imports a .wopt file mapped in Source (value tree, storages, provenance).
llvm::Expected<std::unique_ptr<Checkpoint>>
importFlatBuffers(std::shared_ptr<SourceFile> Source);

struct FlatBuffersExportOptions {
  /// Show a progress bar on stderr (the driver sets it for terminals).
  bool Progress = false;
};

/// Writes C as .wopt to Path, atomically: a flatbuffer followed by a data
/// section with every storage 64-byte aligned.
llvm::Error exportFlatBuffers(const Checkpoint &C, llvm::StringRef Path,
                              const FlatBuffersExportOptions &Opts = {});

} // namespace wopt

#endif
