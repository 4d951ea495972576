//===- wir.cpp - Fuzz the text IR parser: print -> parse -> print ---------===//
//
// The text form builds any IR, so it also feeds the exporters: IR that the
// verifier accepts (as the driver requires before a pipeline) is exported
// in every format and read back.
//
//===----------------------------------------------------------------------===//
#include "RoundTrip.h"
#include "wopt/IR/TextIR.h"
#include "wopt/IR/Verifier.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace wopt;
using namespace llvm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  Expected<std::unique_ptr<Checkpoint>> C =
      parseCheckpoint(MemoryBufferRef(fuzz::asText(Data, Size), "fuzz.wir"));
  if (!C) {
    fuzz::expectCleanError(C.takeError());
    return 0;
  }
  std::string Printed = fuzz::printWithData(**C);
  Expected<std::unique_ptr<Checkpoint>> Again =
      parseCheckpoint(MemoryBufferRef(Printed, "printed.wir"));
  if (!Again)
    fuzz::propertyFailed(
        "wir", "the printed IR does not parse: " + toString(Again.takeError()),
        Printed);
  std::string Reprinted = fuzz::printWithData(**Again);
  if (Printed != Reprinted)
    fuzz::propertyFailed("wir", "print -> parse -> print is not the identity",
                         Printed, Reprinted);
  if (Error E = verifyCheckpoint(**C)) {
    consumeError(std::move(E));
    return 0;
  }
  fuzz::checkExports("wir", **C, EmitKind::Text, Printed);
  return 0;
}
