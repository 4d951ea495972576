//===- PassRegistry.h - Passes, named pipelines, pipeline text --*- C++ -*-===//
#ifndef WOPT_PASS_PASSREGISTRY_H
#define WOPT_PASS_PASSREGISTRY_H

#include "wopt/Pass/Pass.h"
#include "llvm/ADT/StringMap.h"
#include <deque>
#include <string>
#include <vector>

namespace wopt {

class PassManager;

/// A named pipeline: pipeline text plus a summary. Options given to it
/// (`dinov2-eval{manifest=m.json}`) are forwarded: `manifest=` and the
/// verify-against-manifest options append that pass.
struct PipelineInfo {
  std::string Name;
  /// Command-line pipeline text, or with FileName set the contents of a
  /// .wpipe file (one pass per line, `//` comments).
  std::string Text;
  std::string Summary;
  /// "dinov2-eval.wpipe" for a pipeline from a file, for messages.
  std::string FileName;
};

/// One registry, filled explicitly (no static constructors).
class PassRegistry {
public:
  void registerPass(PassInfo Info);
  void registerPipeline(PipelineInfo Info);
  /// Registers the .wpipe Contents as pipeline Name; its summary is the
  /// first paragraph of comments.
  void registerPipelineFile(llvm::StringRef Name, llvm::StringRef Contents,
                            llvm::StringRef FileName);
  const PassInfo *lookupPass(llvm::StringRef Arg) const;
  const PipelineInfo *lookupPipeline(llvm::StringRef Name) const;
  /// "did you mean 'rename'?" for a name within two edits of a pass or
  /// pipeline (pipelines too unless PassesOnly), "" otherwise.
  std::string suggest(llvm::StringRef Name, bool PassesOnly = false) const;
  /// In registration order.
  const std::deque<PassInfo> &passes() const { return Passes; }
  const std::vector<PipelineInfo> &pipelines() const { return Pipelines; }

  /// Parses pipeline text (`a{k=v k2=v2},b,named`) and appends the passes to
  /// PM. Names resolve to named pipelines first, then passes. Errors are
  /// "<what is wrong>" followed by the text and a caret line under the
  /// offending character.
  llvm::Error parsePipeline(llvm::StringRef Text, PassManager &PM) const;
  /// The same for the contents of a .wpipe file: elements are separated by
  /// new lines (or commas), an option list may span lines, and `//` starts
  /// a comment (at the start of a line or after a blank, outside quotes).
  /// Errors are "FILE:LINE:COL: <what>" with the line and a caret.
  llvm::Error parsePipelineFile(llvm::StringRef Contents,
                                llvm::StringRef FileName,
                                PassManager &PM) const;

private:
  // A deque: passes keep a reference to their PassInfo.
  std::deque<PassInfo> Passes;
  std::vector<PipelineInfo> Pipelines;
};

/// The summary of a .wpipe file: its first paragraph of `//` comments,
/// joined into one line ("" when it starts with a pass).
std::string pipelineFileSummary(llvm::StringRef Contents);

/// The process-wide registry tools use. Libraries never fill it themselves.
PassRegistry &getGlobalPassRegistry();

} // namespace wopt

#endif
