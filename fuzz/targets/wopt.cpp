//===- wopt.cpp - Fuzz the .wopt (FlatBuffers) import, and its round trip -===//
#include "RoundTrip.h"
#include "wopt/Serialization/FlatBuffers.h"

using namespace wopt;
using namespace llvm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  return fuzz::roundTrip(
      "wopt", Data, Size, "fuzz.wopt",
      [](std::shared_ptr<SourceFile> S) {
        return importFlatBuffers(std::move(S));
      },
      EmitKind::FlatBuffers);
}
