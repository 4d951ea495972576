//===- PassManager.h - Runs a pipeline with instrumentation -----*- C++ -*-===//
#ifndef WOPT_PASS_PASSMANAGER_H
#define WOPT_PASS_PASSMANAGER_H

#include "wopt/IR/TextIR.h"
#include "wopt/Pass/Pass.h"
#include "llvm/ADT/StringSet.h"
#include <memory>
#include <vector>

namespace wopt {

/// What the driver switches on; all off by default.
struct InstrumentationOptions {
  llvm::StringSet<> PrintBefore, PrintAfter; ///< pass arguments
  bool PrintAfterAll = false;
  bool PrintAfterChange = false; ///< only when the printed IR changed
  bool TimePasses = false;
  bool PassStatistics = false;
  bool VerifyEach = false;
  bool PrintRenameTable = false; ///< old -> new for every renamed tensor
  PrintOptions IRPrinting;       ///< how the IR dumps look
};

class PassManager {
public:
  void addPass(std::unique_ptr<Pass> P);
  const std::vector<std::unique_ptr<Pass>> &passes() const { return Passes; }
  bool empty() const { return Passes.empty(); }

  void setInstrumentation(InstrumentationOptions O) { Instr = std::move(O); }
  /// Where IR dumps, timings, statistics and the rename table go.
  void setOutputStream(llvm::raw_ostream &OS) { Out = &OS; }
  /// Receives every pass's remarks and warnings.
  void setDiagnosticHandler(DiagnosticHandler H) { Handler = std::move(H); }
  /// What the result must match; every pass sees it (Pass::target()).
  void setTarget(std::shared_ptr<const Target> T) { TheTarget = std::move(T); }
  const Target *target() const { return TheTarget.get(); }

  /// Runs every pass in order; stops at the first error, which names the
  /// pass. With VerifyEach the IR is verified after every pass.
  llvm::Error run(Checkpoint &C);

  /// `a{k=v},b` — what -dump-pass-pipeline prints.
  void printAsTextualPipeline(llvm::raw_ostream &OS) const;
  /// The pipeline as a .wpipe file (PassRegistry::parsePipelineFile reads
  /// it back into the same passes): Header as `//` comment lines (its first
  /// paragraph is the summary), then one pass per line; the passes of a
  /// named pipeline as its name, with the passes it ran as comments.
  void printAsPipelineFile(llvm::raw_ostream &OS, llvm::StringRef Header) const;

private:
  std::vector<std::unique_ptr<Pass>> Passes;
  InstrumentationOptions Instr;
  llvm::raw_ostream *Out = nullptr;
  DiagnosticHandler Handler;
  std::shared_ptr<const Target> TheTarget;
};

} // namespace wopt

#endif
