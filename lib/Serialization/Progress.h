//===- Progress.h - The export progress bar ---------------------*- C++ -*-===//
//
// One bar on stderr for one export, or for a whole shard set written by
// several threads at once (each reports its own file's bytes; the bar shows
// the sum). The driver asks for it only when stderr is a terminal.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_LIB_SERIALIZATION_PROGRESS_H
#define WOPT_LIB_SERIALIZATION_PROGRESS_H

#include "AtomicOutput.h"
#include "llvm/ADT/StringRef.h"
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace wopt {
namespace detail {

/// Called with the bytes of one output file written so far.
using ProgressFn = std::function<void(uint64_t Done)>;

/// "wopt: writing NAME [#####     ]  45% 1.2/2.6 GiB", redrawn when the
/// percentage changes. Thread-safe.
class ProgressBar {
public:
  ProgressBar(llvm::StringRef Name, uint64_t Total)
      : Name(Name.str()), Total(Total) {}
  ~ProgressBar() { done(); }
  /// Sets the bytes done (clamped to the total).
  void update(uint64_t Done);
  /// A reporter for one of Parts files written concurrently: each reports
  /// its own bytes, the bar shows their sum.
  ProgressFn part(unsigned Index, unsigned Parts);
  /// Ends the line (once), if anything was drawn.
  void done();

private:
  void draw(uint64_t Done);
  std::mutex M;
  std::string Name;
  uint64_t Total;
  unsigned LastPct = ~0u;
  bool Finished = false;
  std::vector<uint64_t> PartDone;
  uint64_t Sum = 0;
};

/// Above this, storage ranges are written in pieces so that the bar moves
/// during a multi-GB tensor; each piece is still one kernel-side copy.
constexpr uint64_t ProgressPiece = 64ull << 20;

/// Computed storages are produced and written this much at a time.
constexpr uint64_t ComputedPiece = 1ull << 20;

/// Out.writeStorageRange in pieces, calling Report(Out.position()) after
/// each (when set). A computed storage is streamed through Storage::read,
/// never materialised.
llvm::Error writeStorageRangeReporting(AtomicOutput &Out, const Storage &S,
                                       uint64_t Offset, uint64_t Size,
                                       const ProgressFn &Report);

} // namespace detail
} // namespace wopt

#endif
