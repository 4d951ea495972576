//===- RoundTrip.h - read -> write -> read for the checkpoint readers -----===//
#ifndef WOPT_FUZZ_ROUNDTRIP_H
#define WOPT_FUZZ_ROUNDTRIP_H

#include "FuzzTarget.h"
#include "wopt/Serialization/Serialization.h"
#include "llvm/ADT/STLFunctionalExtras.h"

namespace wopt {
namespace fuzz {

using ImportFn = llvm::function_ref<llvm::Expected<std::unique_ptr<Checkpoint>>(
    std::shared_ptr<SourceFile>)>;

/// Reads the input with Import. When it is accepted (and small), exports it
/// in every format wopt writes (torch, safetensors, .wopt, text with data):
/// each exporter either refuses cleanly, leaving no file, or writes a file
/// that importFile reads back. The export in Native (the input's own
/// format) must give back the same text IR. Returns 0.
int roundTrip(llvm::StringRef Target, const uint8_t *Data, size_t Size,
              llvm::StringRef Name, ImportFn Import, EmitKind Native);

/// The exports of roundTrip for a checkpoint already read (skipped when it
/// is not small); Before is printWithData(C).
void checkExports(llvm::StringRef Target, const Checkpoint &C, EmitKind Native,
                  const std::string &Before);

} // namespace fuzz
} // namespace wopt

#endif
