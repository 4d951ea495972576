//===- FuzzTarget.cpp - What the fuzz targets share -----------------------===//
#include "FuzzTarget.h"
#include "wopt/IR/TextIR.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
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
    std::optional<uint64_t> N = T.numel();
    uint64_t Bytes = N ? *N * dtypeSize(T.dtype()) : UINT64_MAX;
    if (!N || Bytes / dtypeSize(T.dtype()) != *N || Bytes > Limit ||
        (Total += Bytes) > Limit)
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

bool skipKnownIssues() {
  static const bool Skip = [] {
    const char *E = std::getenv("WOPT_FUZZ_SKIP_KNOWN");
    return E && StringRef(E) == "1";
  }();
  return Skip;
}

/// True when Pred holds for V or anything below it (depth bounded by the
/// readers' nesting limit).
static bool anyValue(const Value &V, function_ref<bool(const Value &)> Pred) {
  if (Pred(V))
    return true;
  bool Found = false;
  forEachChild(V, [&](const Value &C) { Found = Found || anyValue(C, Pred); });
  return Found;
}

bool hasUnpicklableText(const Value &V) {
  return anyValue(V, [](const Value &X) {
    if (const auto *S = dyn_cast<StringValue>(&X))
      return S->kind() == Value::Kind::Str && !json::isUTF8(S->value());
    if (const auto *O = dyn_cast<OpaqueValue>(&X))
      return StringRef(O->module()).find_first_of("\n\r ") != StringRef::npos ||
             StringRef(O->name()).find_first_of("\n\r ") != StringRef::npos ||
             !json::isUTF8(O->module()) || !json::isUTF8(O->name());
    return false;
  });
}

/// The identity of a dict key of a scalar kind, for finding repeats; ""
/// for kinds that are not compared (containers, tensors, objects).
static std::string keyIdentity(const Value &K) {
  if (const auto *S = dyn_cast<StringValue>(&K))
    return (S->kind() == Value::Kind::Str ? "s:" : "b:") + S->value();
  if (const auto *I = dyn_cast<IntValue>(&K))
    return "i:" + std::to_string(I->value());
  if (const auto *B = dyn_cast<BoolValue>(&K))
    return B->value() ? "true" : "false";
  if (const auto *F = dyn_cast<FloatValue>(&K))
    return "f:" + std::to_string(F->value());
  return isa<NoneValue>(K) ? "none" : "";
}

bool hasDuplicateKeys(const Value &V) {
  return anyValue(V, [](const Value &X) {
    const auto *D = dyn_cast<DictValue>(&X);
    if (!D)
      return false;
    StringSet<> Seen;
    for (const DictEntry &E : D->entries()) {
      std::string K = E.Key ? keyIdentity(*E.Key) : "";
      if (!K.empty() && !Seen.insert(K).second)
        return true;
    }
    return false;
  });
}

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
