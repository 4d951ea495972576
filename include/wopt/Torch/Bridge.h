//===- Bridge.h - Checkpoints into and out of LibTorch modules --*- C++ -*-===//
//
// The LibTorch bridge (Wopt::Torch): load any file wopt reads into a
// torch::nn::Module, optionally through a pass pipeline, checked against the
// module's own parameters and buffers; get a checkpoint's state dict as
// torch::Tensors; save a module's state dict as a .pth that Python's
// torch.load(weights_only=True) reads and load_state_dict(strict=True)
// accepts.
//
// LibTorch 1.13's own torch::pickle_load cannot read the state_dict files
// Python writes (OrderedDict becomes None; _rebuild_parameter, numpy and
// argparse globals are refused), and what torch::pickle_save writes is
// refused by torch.load(weights_only=True). The bridge uses wopt's reader
// and writer instead.
//
// Every function returns llvm::Error / llvm::Expected: whatever LibTorch
// throws is caught here and becomes an llvm::Error naming what was being
// done. Nothing is thrown to the caller.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_TORCH_BRIDGE_H
#define WOPT_TORCH_BRIDGE_H

#include "wopt/IR/Checkpoint.h"
#include "wopt/Manifest/Manifest.h"
#include "wopt/Pass/PassRegistry.h"
#include "wopt/Serialization/Torch.h"
#include "llvm/Support/Error.h"
#include <memory>
#include <string>
#include <torch/nn/module.h>
#include <torch/ordered_dict.h>
#include <vector>

namespace wopt {

/// How a checkpoint's tensor bytes become torch tensors.
enum class TensorData {
  /// Copy the bytes into memory LibTorch owns (one copy, no temporary).
  Copy,
  /// Zero-copy where possible: a storage that is a slice of the input file,
  /// aligned for its dtype, becomes a view over a private (copy-on-write)
  /// mapping of that file. Lifetime: each view keeps the mapping alive, so
  /// the tensors may outlive the Checkpoint; writing to a view changes only
  /// this process's copy of the page, never the file. The file must not be
  /// truncated or rewritten in place while views of it live (as with any
  /// mapping). Storages that are not mapped (built or changed by a pass,
  /// read from stdin) or not aligned are copied; so is, in loadStateDict, a
  /// storage shared by module entries that are separate tensors (loading
  /// never ties what the module does not tie).
  View,
};

/// Options of loadStateDict / readStateDict.
struct TorchLoadOptions {
  /// Pass pipeline run on the checkpoint before loading, e.g.
  /// "unwrap{key=model},canonicalize-prefix{strip=module.}"; "" for none.
  std::string Pipeline;
  /// Resolves Pipeline; null: every pass and pipeline wopt ships.
  const PassRegistry *Registry = nullptr;
  /// Receives the pipeline's remarks and warnings; none: dropped.
  DiagnosticHandler Diagnostics;
  /// As load_state_dict(strict=True): a key the module has and the
  /// checkpoint lacks, or the reverse, is an error. False allows both (the
  /// module keeps what it had); a shape or dtype mismatch is always an
  /// error.
  bool Strict = true;
  /// Globs of module keys that may be missing, and of checkpoint keys the
  /// module may lack (ignored), as verify-against-manifest's options.
  std::vector<std::string> AllowMissing, AllowUnexpected;
  TensorData Data = TensorData::Copy;
};

/// What loadStateDict did.
struct TorchLoadResult {
  /// The comparison of the checkpoint with the module (the module is the
  /// target manifest): printReport(Report, OS) prints it.
  Comparison Report;
  /// Module entries set from the checkpoint.
  unsigned NumLoaded = 0;
  /// Of those, how many now view the file (TensorData::View) and how many
  /// were copied.
  unsigned NumViewed = 0, NumCopied = 0;
};

/// The manifest of M: its parameters and buffers in state_dict() order
/// (each module's parameters, then its buffers, then its children's),
/// dotted names as Python spells them. Undefined (None) entries are left
/// out. Fails on a dtype wopt has no name for.
llvm::Expected<Manifest> moduleManifest(const torch::nn::Module &M);

/// Imports Path (any format wopt reads, detected from content) and runs
/// Opts.Pipeline on it.
llvm::Expected<std::unique_ptr<Checkpoint>>
importForTorch(llvm::StringRef Path, const TorchLoadOptions &Opts = {});

/// Loads C's root state dict into M's parameters and buffers, after
/// checking it against moduleManifest(M) with wopt's manifest comparison.
/// On a mismatch returns a VerificationFailure whose message is the grouped
/// report (with hints such as "add canonicalize-prefix{strip=module.}") and
/// leaves M unchanged. Opts.Pipeline is not run here (see the overload
/// below). Two module entries that are one tensor (tied weights) must get
/// the same values from the checkpoint.
llvm::Expected<TorchLoadResult>
loadStateDict(torch::nn::Module &M, const Checkpoint &C,
              const TorchLoadOptions &Opts = {});
/// importForTorch(Path, Opts), then the above.
llvm::Expected<TorchLoadResult>
loadStateDict(torch::nn::Module &M, llvm::StringRef Path,
              const TorchLoadOptions &Opts = {});

/// The tensors of C's root state dict by name, in order. Tensors that
/// share a storage in the checkpoint share one torch storage (tied weights
/// stay tied). Entries that are not tensors are left out (C.stateDict()
/// has them). Fails when the root is not a state dict (run unwrap), or on
/// a dtype LibTorch 1.13 cannot hold (uint16/32/64, float8, quantized).
llvm::Expected<torch::OrderedDict<std::string, torch::Tensor>>
stateDictTensors(const Checkpoint &C, TensorData Data = TensorData::Copy);
/// importForTorch(Path, Opts), then stateDictTensors(.., Opts.Data).
llvm::Expected<torch::OrderedDict<std::string, torch::Tensor>>
readStateDict(llvm::StringRef Path, const TorchLoadOptions &Opts = {});

/// A wopt Checkpoint whose root is an OrderedDict of the given tensors,
/// as Python's state_dict() returns: detached (not Parameters, no
/// requires_grad), each storage copied once into bytes the checkpoint owns,
/// views and sharing kept. Tensors must be dense, CPU and of a dtype wopt
/// knows.
llvm::Expected<std::unique_ptr<Checkpoint>>
checkpointFromTensors(const torch::OrderedDict<std::string, torch::Tensor> &T);
/// The state dict of M (moduleManifest's order) as a Checkpoint.
llvm::Expected<std::unique_ptr<Checkpoint>>
moduleCheckpoint(const torch::nn::Module &M);

/// Writes M's state dict to Path as a torch zip checkpoint with wopt's
/// exporter (atomic: nothing is left at Path on failure). Python reads it
/// with torch.load(path, weights_only=True) and model.load_state_dict(sd,
/// strict=True) accepts it when the Python model has the same structure.
/// The OrderedDict carries no _metadata (LibTorch modules have no
/// versions); load_state_dict does not need it.
llvm::Error saveStateDict(const torch::nn::Module &M, llvm::StringRef Path,
                          const TorchExportOptions &Opts = {});

} // namespace wopt

#endif
