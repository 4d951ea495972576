//===- pth.cpp - Fuzz the torch.save zip import, and its round trip -------===//
#include "RoundTrip.h"
#include "wopt/Serialization/Torch.h"
#include "wopt/Serialization/ZipReader.h"

using namespace wopt;
using namespace llvm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  // The legacy format has a target of its own.
  if (!looksLikeZip(ArrayRef<uint8_t>(Data, Size)))
    return 0;
  return fuzz::roundTrip(
      "pth", Data, Size, "fuzz.pth",
      [](std::shared_ptr<SourceFile> S) { return importTorch(std::move(S)); },
      EmitKind::Torch);
}
