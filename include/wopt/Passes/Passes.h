//===- Passes.h - Every pass and pipeline wopt ships ------------*- C++ -*-===//
#ifndef WOPT_PASSES_PASSES_H
#define WOPT_PASSES_PASSES_H

#include "wopt/Manifest/Target.h"
#include "wopt/Pass/PassRegistry.h"

namespace wopt {

#define WOPT_PASS(ARG, NAME, SUMMARY)                                          \
  std::unique_ptr<Pass> create##NAME##Pass(const PassInfo &Info);
#include "wopt/Passes/Passes.def"

/// Makes C's root a state dict the way `unwrap` with no options does (the
/// unique state dict below well-known wrapper keys); nothing when it is one.
llvm::Error unwrapToStateDict(Checkpoint &C);

/// loadTarget (wopt/Manifest/Target.h) unwrapping training checkpoints
/// with unwrapToStateDict: what -target= and manifest= read.
inline llvm::Expected<std::shared_ptr<const Target>>
loadTarget(llvm::StringRef Path) {
  return loadTarget(Path, unwrapToStateDict);
}

/// Adds every pass of wopt/Passes/Passes.def to R.
void registerAllPasses(PassRegistry &R);
/// Adds every named pipeline (passes/pipelines/*.wpipe) to R.
void registerAllPipelines(PassRegistry &R);

} // namespace wopt

#endif
