//===- FuzzTarget.h - What the fuzz targets share ---------------*- C++ -*-===//
//
// Every target is a libFuzzer entry point (LLVMFuzzerTestOneInput) that
// feeds one reader. A reader may refuse an input with an llvm::Error: that
// is the expected outcome for almost every input and is not a finding. A
// finding is a crash, a sanitizer report, a hang or memory blow-up (the
// fuzzer's -timeout and -rss_limit_mb), or a broken property: where it is
// cheap, a target writes what it read and reads it back, and the two must
// print the same text IR (every byte of data inline).
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_FUZZ_FUZZTARGET_H
#define WOPT_FUZZ_FUZZTARGET_H

#include "wopt/IR/Checkpoint.h"
#include "wopt/IR/Storage.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace wopt {
namespace fuzz {

/// The input as a SourceFile named Name (no descriptor: bytes in memory).
std::shared_ptr<SourceFile> memFile(const uint8_t *Data, size_t Size,
                                    llvm::StringRef Name);

/// The input as text (it need not be valid UTF-8 or NUL-free).
inline llvm::StringRef asText(const uint8_t *Data, size_t Size) {
  return llvm::StringRef(reinterpret_cast<const char *>(Data), Size);
}

/// C's value as text IR with every storage's bytes inline, without the
/// file's attributes (format, record prefix) or provenance, which name the
/// file and so differ between an original and its copy.
std::string printWithData(const Checkpoint &C);

/// Total bytes of the storages reachable from C: round trips are skipped
/// above Limit so that one input cannot make the fuzzer write gigabytes
/// (a stride-0 view of 4 bytes may stand for 2^40 elements).
bool smallEnoughToWrite(const Checkpoint &C, uint64_t Limit = 64 << 10);

/// A path for a scratch output with extension Ext, unique to this process,
/// in $WOPT_FUZZ_SCRATCH, else /dev/shm when it exists, else $TMPDIR or
/// /tmp. Removed by the caller (removeScratch).
std::string scratchPath(llvm::StringRef Ext);
void removeScratch(const std::string &Path);

/// Consumes E. Readers refuse most fuzz inputs; only their messages' form
/// is checked: one line (notes excepted), not empty.
void expectCleanError(llvm::Error E);

/// A broken property: prints What and both sides, then aborts, so the
/// fuzzer records the input as a crash.
[[noreturn]] void propertyFailed(llvm::StringRef Target, llvm::StringRef What,
                                 llvm::StringRef Before = "",
                                 llvm::StringRef After = "");

/// Writing what a reader accepted must succeed, and so must reading it back.
void mustSucceed(llvm::StringRef Target, llvm::StringRef Step, llvm::Error E);

} // namespace fuzz
} // namespace wopt

#endif
