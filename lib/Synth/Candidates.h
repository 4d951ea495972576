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
#include <string>
#include <vector>

namespace wopt {

class PassRegistry;

namespace synth {

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
std::vector<Candidate> stateDictCandidates(const Comparison &Cmp,
                                           const PassRegistry &R);

/// S spelled as an anchored POSIX regex literal (rename rules).
std::string regexLiteral(llvm::StringRef S);

} // namespace synth
} // namespace wopt

#endif
