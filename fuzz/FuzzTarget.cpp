//===- FuzzTarget.cpp - What the fuzz targets share -----------------------===//
#include "FuzzTarget.h"
#include "wopt/IR/TextIR.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"
#include <cstdlib>
#include <unistd.h>

using namespace llvm;

namespace wopt {
namespace fuzz {

std::shared_ptr<SourceFile> memFile(const uint8_t *Data, size_t Size,
                                    StringRef Name) {
  return SourceFile::fromBuffer(
      MemoryBuffer::getMemBufferCopy(asText(Data, Size), Name), Name);
}

std::string printWithData(const Checkpoint &C) {
  std::string Text;
  raw_string_ostream OS(Text);
  PrintOptions Opts;
  Opts.InlineDataLimit = UINT64_MAX;
  printCheckpoint(Checkpoint(C.root()), OS, Opts);
  return Text;
}

bool smallEnoughToWrite(const Checkpoint &C, uint64_t Limit) {
  uint64_t Total = 0;
  bool Small = true;
  C.forEachTensor([&](TensorValue &T) {
    // dtypeBytes: sub-byte kinds (F4, F6) and overflow included.
    std::optional<uint64_t> N = T.numel();
    std::optional<uint64_t> Bytes = N ? dtypeBytes(T.dtype(), *N) : N;
    if (!Bytes || *Bytes > Limit || (Total += *Bytes) > Limit)
      Small = false;
  });
  for (const StorageRef &S : C.storages())
    if ((Total += S->numBytes()) > Limit)
      Small = false;
  return Small;
}

std::string scratchPath(StringRef Ext) {
  std::string Dir;
  if (const char *D = std::getenv("WOPT_FUZZ_SCRATCH"))
    Dir = D;
  else if (sys::fs::is_directory("/dev/shm"))
    Dir = "/dev/shm";
  else if (const char *T = std::getenv("TMPDIR"))
    Dir = T;
  else
    Dir = "/tmp";
  return Dir + "/wopt-fuzz-" + std::to_string(::getpid()) + Ext.str();
}

void removeScratch(const std::string &Path) { sys::fs::remove(Path); }

void expectCleanError(Error E) {
  std::string Msg = toString(std::move(E));
  if (Msg.empty())
    propertyFailed("reader", "an error with an empty message");
}

void propertyFailed(StringRef Target, StringRef What, StringRef Before,
                    StringRef After) {
  errs() << "wopt-fuzz-" << Target << ": property broken: " << What << '\n';
  if (!Before.empty() || !After.empty())
    errs() << "--- before\n" << Before << "\n--- after\n" << After << '\n';
  errs().flush();
  std::abort();
}

void mustSucceed(StringRef Target, StringRef Step, Error E) {
  if (E)
    propertyFailed(Target, (Step + " failed: " + toString(std::move(E))).str());
}

} // namespace fuzz
} // namespace wopt
