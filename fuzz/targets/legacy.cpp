//===- legacy.cpp - Fuzz the legacy torch.save import, and its round trip -===//
//
// Inputs that do not start with the legacy magic number are skipped (the
// zip import has its own target); what imports is exported as a zip.
//
//===----------------------------------------------------------------------===//
#include "RoundTrip.h"
#include "wopt/Serialization/PickleReader.h"
#include "wopt/Serialization/Torch.h"

using namespace wopt;
using namespace llvm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  if (!looksLikeLegacyTorch(ArrayRef<uint8_t>(Data, Size)))
    return 0;
  return fuzz::roundTrip(
      "legacy", Data, Size, "fuzz.pt",
      [](std::shared_ptr<SourceFile> S) { return importTorch(std::move(S)); },
      EmitKind::Torch);
}
