//===- Shards.h - Sharded checkpoints: one IR over many files ---*- C++ -*-===//
//
// Hugging Face ships models above a few GB as a set: shards
// `model-00001-of-00003.safetensors` (or `pytorch_model-…bin`) and an index
// `model.safetensors.index.json`:
//
//   {"metadata": {"total_size": N}, "weight_map": {"key": "shard file"}}
//
// Import reads a set as one state dict whose tensors stay mapped in their
// own files; export splits a state dict with Hugging Face's rule and
// writes the set atomically, shards in parallel, or only some of them (so
// that many processes can write one set).
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_SERIALIZATION_SHARDS_H
#define WOPT_SERIALIZATION_SHARDS_H

#include "wopt/IR/Checkpoint.h"
#include "wopt/Serialization/Serialization.h"
#include "llvm/Support/Error.h"
#include <optional>
#include <string>
#include <vector>

namespace wopt {

/// A JSON object with a "weight_map" (how the format detector knows an
/// index).
bool looksLikeShardIndex(llvm::StringRef Text);

/// The set an index names, validated: every shard it names exists, every
/// key is in the shard the map names and in no other, no shard holds a key
/// the map does not list, and metadata.total_size agrees. Each violation is
/// a one-line error naming the key and the file.
llvm::Expected<std::unique_ptr<Checkpoint>>
importShardIndex(llvm::StringRef IndexPath);

/// A folder: the index it holds (model.safetensors.index.json first, then
/// pytorch_model.bin.index.json, else the only *.index.json), or else its
/// only model.safetensors / pytorch_model.bin.
llvm::Expected<std::unique_ptr<Checkpoint>>
importShardDirectory(llvm::StringRef Dir);

/// Several checkpoint files (any formats wopt reads, mixed) as one state
/// dict, in the order given; a key in two files is an error.
llvm::Expected<std::unique_ptr<Checkpoint>>
importShardFiles(llvm::ArrayRef<std::string> Paths);

/// "5GB", "500MB", "2.5GB", "10KB", "1TB" (powers of 10, as Hugging Face
/// counts), "2GiB", "512MiB" (powers of 2), or a plain number of bytes.
llvm::Expected<uint64_t> parseShardSize(llvm::StringRef Text);

/// Where a set goes and how its files are named: `<Stem><suffix><Ext>` with
/// suffix "-00001-of-00003" (none when there is one shard), index
/// `<Stem><Ext>.index.json`.
struct ShardTarget {
  std::string Dir;
  std::string Stem;      ///< "model", "pytorch_model"
  std::string Extension; ///< ".safetensors", ".bin"
  EmitKind Format = EmitKind::Safetensors;
  /// The index was named on the command line: written even for one shard.
  bool IndexNamed = false;

  std::string indexName() const { return Stem + Extension + ".index.json"; }
  std::string shardName(unsigned Index, unsigned Count) const;
};

/// The target for `-o DIR/` (an existing folder, or a path ending in '/')
/// or `-o NAME.EXT.index.json`; nullopt when Path is an ordinary file.
/// Emit (-emit=) picks the format of a folder (safetensors by default) and
/// must agree with an index name.
llvm::Expected<std::optional<ShardTarget>>
shardTargetFor(llvm::StringRef Path, std::optional<EmitKind> Emit);

/// The split of a state dict, decided from it alone.
struct ShardPlan {
  struct Shard {
    std::string File;
    std::vector<size_t> Entries; ///< indices into the root dict, file order
    uint64_t Bytes = 0;          ///< what the split counted
  };
  std::vector<Shard> Shards;
  uint64_t TotalSize = 0;
  /// key -> file for the index, sorted; names a safetensors shard records
  /// as aliases of another tensor are left out (they are in Aliases).
  std::vector<std::pair<std::string, std::string>> WeightMap;
  std::vector<std::pair<std::string, std::string>> Aliases;
};

/// Hugging Face's rule (huggingface_hub.split_torch_state_dict_into_shards,
/// which transformers uses): tensors in dict order; tensors that share a
/// storage are counted once, by the storage's size, and put in the shard
/// of the first; a tensor larger than MaxShardSize gets a shard of its own,
/// inserted where it is met; otherwise a shard is closed when the next
/// tensor would take it past MaxShardSize.
llvm::Expected<ShardPlan> planShards(const Checkpoint &C,
                                     const ShardTarget &Target,
                                     uint64_t MaxShardSize);

struct ShardExportOptions {
  uint64_t MaxShardSize = 5000000000; ///< Hugging Face's default, 5GB
  /// Shards written at once; 0: one per core.
  unsigned Jobs = 0;
  /// 1-based shard numbers to write (-write-shards); empty: all of them.
  std::vector<unsigned> OnlyShards;
  /// Write the shards / the index. -write-shards alone writes no index,
  /// -write-index alone no shards.
  bool WriteShards = true;
  bool WriteIndex = true;
  bool Progress = false;
  bool VerifyInputCRC = false; ///< torch shards: -verify-input-crc
};

/// Writes the set. Shards go to hidden temporary files and are renamed into
/// place when all are complete, the index last; on failure nothing of the
/// new set is left and an old set stays as it was. After a complete set
/// replaced an index, the old set's shards it no longer names are removed.
llvm::Error exportShards(const Checkpoint &C, const ShardTarget &Target,
                         const ShardExportOptions &Opts);

/// The number of shards the split makes (for job arrays).
llvm::Expected<unsigned> countShards(const Checkpoint &C,
                                     const ShardTarget &Target,
                                     uint64_t MaxShardSize);

} // namespace wopt

#endif
