//===- Progress.cpp - The export progress bar -----------------------------===//
#include "Progress.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"
#include <algorithm>

using namespace llvm;
using namespace wopt::detail;

void ProgressBar::draw(uint64_t Done) {
  Done = std::min(Done, Total);
  unsigned Pct = Total ? unsigned(Done * 100 / Total) : 100;
  if (Pct == LastPct || Finished)
    return;
  LastPct = Pct;
  constexpr unsigned Width = 30;
  unsigned Fill = Pct * Width / 100;
  errs() << "\rwopt: writing " << Name << " [" << std::string(Fill, '#')
         << std::string(Width - Fill, ' ') << "] " << format("%3u%%", Pct)
         << format(" %.1f/%.1f GiB", Done / double(1ull << 30),
                   Total / double(1ull << 30));
  errs().flush();
}

void ProgressBar::update(uint64_t Done) {
  std::lock_guard<std::mutex> L(M);
  draw(Done);
}

ProgressFn ProgressBar::part(unsigned Index, unsigned Parts) {
  {
    std::lock_guard<std::mutex> L(M);
    if (PartDone.size() < Parts)
      PartDone.resize(Parts, 0);
  }
  return [this, Index](uint64_t Done) {
    std::lock_guard<std::mutex> L(M);
    // A file's count only grows; a retry from zero is not double counted.
    uint64_t &Mine = PartDone[Index];
    Sum = Sum - Mine + Done;
    Mine = Done;
    draw(Sum);
  };
}

void ProgressBar::done() {
  std::lock_guard<std::mutex> L(M);
  if (LastPct != ~0u && !Finished)
    errs() << "\n";
  Finished = true;
}

Error wopt::detail::writeStorageRangeReporting(AtomicOutput &Out,
                                               const Storage &S,
                                               uint64_t Offset, uint64_t Size,
                                               const ProgressFn &Report) {
  // A computed storage is produced piece by piece, never materialised.
  bool Computed = S.kind() == Storage::DataKind::Computed;
  if (!Report && !Computed)
    return Out.writeStorageRange(S, Offset, Size);
  std::vector<uint8_t> Buf;
  while (Size) {
    uint64_t N = std::min(Size, Computed ? ComputedPiece : ProgressPiece);
    if (Computed) {
      Buf.resize(N);
      if (Error E = S.read(Offset, Buf))
        return E;
      if (Error E = Out.write(Buf))
        return E;
    } else if (Error E = Out.writeStorageRange(S, Offset, N)) {
      return E;
    }
    Offset += N;
    Size -= N;
    if (Report)
      Report(Out.position());
  }
  return Error::success();
}
