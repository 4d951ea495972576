//===- ReplayMain.cpp - Run a fuzz target over files, without libFuzzer ---===//
//
// Linked into each target by the normal build (any compiler), so that
// `make check` replays every input that ever failed (fuzz/regressions/)
// without clang: `wopt-fuzz-<target> FILE|DIR...`. A broken property aborts
// as it would under the fuzzer; a clean pass prints how many ran.
//
//===----------------------------------------------------------------------===//
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"
#include <string>
#include <vector>

using namespace llvm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size);

namespace {

/// Path itself, or the regular files under it, sorted.
std::vector<std::string> inputsOf(StringRef Path) {
  if (!sys::fs::is_directory(Path))
    return {Path.str()};
  std::vector<std::string> Files;
  std::error_code EC;
  for (sys::fs::recursive_directory_iterator I(Path, EC), E; I != E && !EC;
       I.increment(EC))
    if (sys::fs::is_regular_file(I->path()))
      Files.push_back(I->path());
  llvm::sort(Files);
  return Files;
}

} // namespace

int main(int Argc, char **Argv) {
  if (Argc < 2) {
    errs() << "usage: " << Argv[0] << " FILE|DIR...\n";
    return 2;
  }
  unsigned N = 0;
  for (int I = 1; I < Argc; ++I) {
    for (const std::string &File : inputsOf(Argv[I])) {
      auto Buf = MemoryBuffer::getFile(File, /*IsText=*/false,
                                       /*RequiresNullTerminator=*/false);
      if (!Buf) {
        errs() << File << ": cannot read: " << Buf.getError().message() << '\n';
        return 2;
      }
      // A copy of exactly Size bytes, as libFuzzer passes: reading past the
      // end is then a heap overflow under ASan, not a silent read.
      StringRef B = (*Buf)->getBuffer();
      std::vector<uint8_t> Copy(B.begin(), B.end());
      outs() << "replaying " << File << '\n';
      outs().flush();
      LLVMFuzzerTestOneInput(Copy.data(), Copy.size());
      ++N;
    }
  }
  outs() << "replayed " << N << " inputs\n";
  return 0;
}
