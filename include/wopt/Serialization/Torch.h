//===- Torch.h - PyTorch .pth import and export -----------------*- C++ -*-===//
#ifndef WOPT_SERIALIZATION_TORCH_H
#define WOPT_SERIALIZATION_TORCH_H

#include "wopt/IR/Checkpoint.h"
#include "wopt/Serialization/Serialization.h"
#include <functional>

namespace wopt {

/// Imports a torch.save zip or legacy file already mapped in Source.
llvm::Expected<std::unique_ptr<Checkpoint>>
importTorch(std::shared_ptr<SourceFile> Source,
            const ReaderLimits &Limits = {});

/// Reads Pickle as the data.pkl of a torch zip whose storage records are
/// not at hand: every storage is elided, with the size its persistent id
/// gives. Name prefixes messages. What importTorch makes of a file's pickle,
/// for tests and fuzzing of the pickle layer.
llvm::Expected<std::unique_ptr<Checkpoint>>
importTorchPickle(llvm::ArrayRef<uint8_t> Pickle, llvm::StringRef Name,
                  const ReaderLimits &Limits = {});

/// The data.pkl exportTorch writes for C; storages need no data here.
llvm::Expected<std::string> pickleTorch(const Checkpoint &C);

struct TorchExportOptions {
  /// Record folder; empty: the output file's base name without extension,
  /// as torch.save does ("archive" when writing to stdout).
  std::string RecordPrefix;
  /// Show a progress bar on stderr (the driver sets it for terminals).
  bool Progress = false;
  /// Called with the bytes of tensor data written so far, instead of the
  /// bar (the shard exporter draws one bar for a whole set).
  std::function<void(uint64_t)> OnProgress;
  /// Records copied unchanged from a zip input normally keep the CRC the
  /// input's directory gives (no CRC is computed, the kernel copies the
  /// bytes; a corrupt input record stays detectable in the output). True:
  /// compute their CRC while copying and fail, naming the input record,
  /// when it differs; fail too when no record has a CRC to check.
  bool VerifyInputCRC = false;
};

/// Writes C as a torch zip checkpoint to Path, atomically ("-" is stdout).
/// Storage bytes are streamed from the input mapping. Fails, leaving no
/// file, when a reachable storage has elided data.
llvm::Error exportTorch(const Checkpoint &C, llvm::StringRef Path,
                        const TorchExportOptions &Opts = {});

} // namespace wopt

#endif
