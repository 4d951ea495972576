//===- Passes.h - Every pass and pipeline wopt ships ------------*- C++ -*-===//
#ifndef WOPT_PASSES_PASSES_H
#define WOPT_PASSES_PASSES_H

#include "wopt/Pass/PassRegistry.h"

namespace wopt {

#define WOPT_PASS(ARG, NAME, SUMMARY)                                          \
  std::unique_ptr<Pass> create##NAME##Pass(const PassInfo &Info);
#include "wopt/Passes/Passes.def"

/// Adds every pass of wopt/Passes/Passes.def to R.
void registerAllPasses(PassRegistry &R);
/// Adds every named pipeline (passes/pipelines/*.wpipe) to R.
void registerAllPipelines(PassRegistry &R);

} // namespace wopt

#endif
