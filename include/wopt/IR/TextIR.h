//===- TextIR.h - The .wir text form: printer and parser --------*- C++ -*-===//
//
// print -> parse -> print is the identity. See docs/IR.md for the grammar.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_IR_TEXTIR_H
#define WOPT_IR_TEXTIR_H

#include "wopt/IR/Checkpoint.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"
#include <memory>

namespace llvm {
class SourceMgr;
}

namespace wopt {

struct PrintOptions {
  /// Write tensor data inline for storages of at most this many bytes that
  /// have data; 0 elides all data.
  uint64_t InlineDataLimit = 0;
  /// Print each tensor's provenance (origin and history) as an attribute.
  bool PrintProvenance = false;
};

void printCheckpoint(const Checkpoint &C, llvm::raw_ostream &OS,
                     const PrintOptions &Opts = {});

/// Parses one checkpoint from Buffer. Errors carry "file:line:col: error:
/// ..." followed by the source line and a caret, as SourceMgr prints them.
llvm::Expected<std::unique_ptr<Checkpoint>>
parseCheckpoint(llvm::MemoryBufferRef Buffer);

/// True when Bytes look like text IR (first token after blanks and comments
/// is `checkpoint` or `storage`).
bool looksLikeTextIR(llvm::StringRef Bytes);

} // namespace wopt

#endif
