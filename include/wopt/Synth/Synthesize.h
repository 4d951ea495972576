//===- Synthesize.h - Find the pipeline that makes a checkpoint fit -*- C++
//-*-===//
//
// With a target and no pipeline, wopt looks for one: it tries the registered
// passes, with options derived from the differences between the checkpoint
// and the target (an unwrap key, prefixes to strip/select/add, a chunk
// layout, Swin's downsample shift, head. -> head.fc., derived buffers,
// reshapes, transposes, q/k/v concatenation, casts), and the named
// pipelines whose signature keys the checkpoint has.
//
// The search is a small beam search over whole pass runs: every candidate
// step runs, through the real pass, on a copy of the state (a metadata copy:
// tensors share their storages; only passes whose job is to write data,
// concat and reshape-downsample, compute it), and is scored by how many
// target entries then match by name, shape and dtype. A step is kept only
// when it improves the score. It is deterministic (candidates and ties are
// ordered by text) and explains every step.
//
// Two pipelines that reach the same score with different results are a
// tie: synthesis reports both and chooses neither.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_SYNTH_SYNTHESIZE_H
#define WOPT_SYNTH_SYNTHESIZE_H

#include "wopt/IR/Checkpoint.h"
#include "llvm/Support/Error.h"
#include <memory>
#include <string>
#include <vector>

namespace wopt {

class PassRegistry;
class Target;

struct SynthesisOptions {
  /// States kept per step.
  unsigned BeamWidth = 4;
  /// Passes in a pipeline at most (a named pipeline counts as one).
  unsigned MaxSteps = 10;
  /// What the final verification allows (`auto{allow-missing=...}`): a
  /// target key they cover does not count as missing.
  std::vector<std::string> AllowMissing, AllowUnexpected;
  bool PruneUnexpected = false;
};

/// One element of the pipeline found.
struct SynthesisStep {
  std::string Text;  ///< pipeline text: `canonicalize-prefix{strip=module.}`
  std::string Why;   ///< what in the two key sets called for it
  std::string After; ///< the match after it: "40 of 42 target entries, ..."
};

struct SynthesisResult {
  std::vector<SynthesisStep> Steps;
  /// Every target entry is in place (up to unexpected keys, see Prune).
  bool Complete = false;
  /// How the input stood before any pass.
  std::string Before;
  /// Unexpected keys remain that no target key could become (none has
  /// their shape): the verification prunes them. PrunedKeys names them.
  bool Prune = false;
  std::vector<std::string> PrunedKeys;
  /// Pipelines exactly as good as Steps but with a different result:
  /// synthesis cannot decide. Each is pipeline text.
  std::vector<std::string> Ties;
  /// Pipelines as good, set aside by a pass's documented rule (unwrap
  /// prefers non-EMA weights): pipeline text and the rule.
  std::vector<std::pair<std::string, std::string>> SetAside;
  /// What was tried and why it was not taken, for -remarks.
  std::vector<std::string> Notes;
  /// Trial runs made.
  unsigned Trials = 0;

  /// The steps as pipeline text (`a,b{k=v}`); "" when the input fits.
  std::string pipeline() const;
  bool ambiguous() const { return !Ties.empty(); }
};

/// Searches for a pipeline that makes C match T using the passes and
/// pipelines of R. C is not changed. Fails only when a candidate cannot
/// even be parsed (a bug); a search that finds nothing complete returns
/// the best it found with Complete false.
llvm::Expected<SynthesisResult>
synthesizePipeline(const Checkpoint &C, std::shared_ptr<const Target> T,
                   const PassRegistry &R, const SynthesisOptions &Opts = {});

} // namespace wopt

#endif
