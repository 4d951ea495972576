//===- Candidates.h - Steps worth trying from one state ----------*- C++
//-*-===//
//
// Private to lib/Synth. Each generator reads the comparison of a state with
// the target and proposes pipeline elements (with why); the search runs
// them and keeps what improves the match.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_LIB_SYNTH_CANDIDATES_H
#define WOPT_LIB_SYNTH_CANDIDATES_H

#include "wopt/IR/Checkpoint.h"
#include "wopt/Manifest/Manifest.h"
#include "llvm/ADT/StringMap.h"
#include <string>
#include <vector>

namespace wopt {

class PassRegistry;

namespace synth {

/// How a state dict differs from the target: what the score and the
/// generators read. Built with hash probes and findNearMisses only (no
/// per-key report records), since every trial run makes one.
struct Distance {
  struct Entry {
    std::string Name;
    bool IsTensor = true;
    DType Type = DType::Float32;
    llvm::SmallVector<int64_t, 4> Shape;
  };
  struct Mismatch {
    Entry Actual;
    const ManifestEntry *Expected = nullptr;
  };
  size_t NumTarget = 0;
  /// Target entries present with the name, shape and dtype.
  unsigned Good = 0;
  /// Missing target entries the verification would reject, in target
  /// order; AllMissing counts the allowed and optional ones too.
  std::vector<const ManifestEntry *> Missing;
  unsigned AllMissing = 0;
  /// Entries the target lacks (in checkpoint order), and how many of them
  /// a near-miss hint explains.
  std::vector<Entry> Unexpected;
  unsigned Explained = 0;
  /// Present by name with another shape or dtype (a key can be in both).
  std::vector<Mismatch> Shapes, DTypes;
  /// Target keys present (by name).
  std::vector<std::string> Matched;
  /// The near-miss hints, most keys explained first.
  std::vector<Hint> Hints;
};

/// What the final verification will allow.
struct DistanceOptions {
  std::vector<llvm::GlobPattern> AllowMissing, AllowUnexpected;
};

/// SD against the target entries Target (with an index by name); keys in
/// Removed that are missing are not offered to the hints (a pass removed
/// them; running it again brings nothing back).
Distance distanceToTarget(const DictValue &SD, llvm::ArrayRef<ManifestEntry> Target,
                    const llvm::StringMap<unsigned> &TargetIndex,
                    const DistanceOptions &Opts,
                    llvm::ArrayRef<RemovedEntry> Removed);

struct Candidate {
  std::string Text; ///< one pipeline element
  std::string Why;
};

/// `unwrap{key=P}` for every state dict below the root (through dicts
/// only, as unwrap looks), nearest first.
std::vector<Candidate> unwrapCandidates(const Checkpoint &C);

/// Steps for a state whose root is a state dict, from its comparison with
/// the target: the hints' fixes, head renames, reshapes, transposes, q/k/v
/// concatenation, the inverse chunk layout and (when R has `cast`) a cast.
std::vector<Candidate> stateDictCandidates(const Distance &D,
                                           const PassRegistry &R);

} // namespace synth
} // namespace wopt

#endif
