//===- Safetensors.h - safetensors import and export ------------*- C++ -*-===//
#ifndef WOPT_SERIALIZATION_SAFETENSORS_H
#define WOPT_SERIALIZATION_SAFETENSORS_H

#include "wopt/IR/Checkpoint.h"
#include "llvm/Support/Error.h"
#include <functional>
#include <string>

namespace wopt {

struct SafetensorsImportOptions {
  /// Turn __metadata__ alias records ("dropped": "kept", written by wopt's
  /// exporter and by safetensors.torch.save_model) back into entries that
  /// share the kept tensor. The shard importer restores them once for the
  /// whole set instead.
  bool RestoreAliases = true;
};

/// Imports a safetensors file mapped in Source: the root becomes a state
/// dict of mapped tensors in header order; __metadata__ is kept as the
/// dict's state (less the alias records restored).
llvm::Expected<std::unique_ptr<Checkpoint>>
importSafetensors(std::shared_ptr<SourceFile> Source,
                  const SafetensorsImportOptions &Opts = {});

/// Moves the alias records of SD's string -> string state into entries: a
/// record K -> V whose K names no entry and whose V names a tensor entry
/// becomes entry K, the same view of V's storage. Returns how many.
unsigned restoreSafetensorsAliases(DictValue &SD);

struct SafetensorsExportOptions {
  /// Show a progress bar on stderr (the driver sets it for terminals).
  bool Progress = false;
  /// Called with the bytes of tensor data written so far, instead of the bar.
  std::function<void(uint64_t)> OnProgress;
  /// Receives each warning (tied names, views copied); default: stderr.
  std::function<void(const std::string &)> OnWarning;
};

/// Writes the root state dict as safetensors to Path, atomically ("-" is
/// stdout): __metadata__ {"format": "pt"} unless the dict carries its own,
/// tensors in dict order in the header, data ordered by element width so
/// each tensor is aligned to its element size.
llvm::Error exportSafetensors(const Checkpoint &C, llvm::StringRef Path,
                              const SafetensorsExportOptions &Opts = {});

} // namespace wopt

#endif
