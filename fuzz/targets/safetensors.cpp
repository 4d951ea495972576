//===- safetensors.cpp - Fuzz the safetensors import, and its round trip --===//
#include "wopt/Serialization/Safetensors.h"
#include "RoundTrip.h"

using namespace wopt;
using namespace llvm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  return fuzz::roundTrip(
      "safetensors", Data, Size, "fuzz.safetensors",
      [](std::shared_ptr<SourceFile> S) {
        return importSafetensors(std::move(S));
      },
      EmitKind::Safetensors);
}
