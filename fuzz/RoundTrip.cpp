//===- RoundTrip.cpp - read -> write -> read for the checkpoint readers ---===//
#include "RoundTrip.h"
#include "wopt/IR/TextIR.h"
#include "wopt/IR/Verifier.h"
#include "wopt/Serialization/FlatBuffers.h"
#include "wopt/Serialization/Safetensors.h"
#include "wopt/Serialization/Torch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace wopt {
namespace fuzz {

namespace {

struct Exporter {
  EmitKind Kind;
  const char *Ext;
  Error (*Write)(const Checkpoint &, StringRef);
};

// With default options: the function pointers of the table take two
// arguments.
Error writeTorch(const Checkpoint &C, StringRef Path) {
  return exportTorch(C, Path);
}

Error writeSafetensors(const Checkpoint &C, StringRef Path) {
  return exportSafetensors(C, Path, {});
}

Error writeFlatBuffers(const Checkpoint &C, StringRef Path) {
  return exportFlatBuffers(C, Path, {});
}

/// The text IR with every byte of data inline: the text exporter of a
/// lossless round trip.
Error writeText(const Checkpoint &C, StringRef Path) {
  // As every exporter and the driver: invalid IR is refused, not printed.
  if (Error E = verifyCheckpoint(C))
    return E;
  std::error_code EC;
  raw_fd_ostream OS(Path, EC);
  if (EC)
    return errorCodeToError(EC);
  PrintOptions Opts;
  Opts.InlineDataLimit = UINT64_MAX;
  printCheckpoint(C, OS, Opts);
  return Error::success();
}

const Exporter Exporters[] = {
    {EmitKind::Torch, ".pth", writeTorch},
    {EmitKind::Safetensors, ".safetensors", writeSafetensors},
    {EmitKind::FlatBuffers, ".wopt", writeFlatBuffers},
    {EmitKind::Text, ".wir", writeText},
};

/// The safetensors writer gives a state dict whose metadata has no
/// "format" the `"format": "pt"` that loaders expect: that, and only that,
/// may be new in the root's attributes.
std::string withoutAddedFormat(const std::string &Before, std::string After) {
  if (Before.find("\"format\"") != std::string::npos)
    return After;
  size_t Attrs = After.rfind("} attrs {\n");
  if (Attrs == std::string::npos)
    return After;
  static const std::string Line = "  \"format\": \"pt\"\n";
  size_t At = After.find(Line, Attrs);
  if (At == std::string::npos)
    return After;
  After.erase(At, Line.size());
  static const std::string Empty = "} attrs {\n}";
  if (After.compare(Attrs, Empty.size(), Empty) == 0)
    After.replace(Attrs, Empty.size(), "}");
  return After;
}

/// One export and its reading back; compares with Before when Same.
void exportAndRead(StringRef Target, const Checkpoint &C, const Exporter &X,
                   bool Same, const std::string &Before) {
  std::string Path = scratchPath(X.Ext);
  if (Error E = X.Write(C, Path)) {
    // An exporter may refuse a value its format cannot hold; it must say
    // why and leave nothing behind.
    expectCleanError(std::move(E));
    if (sys::fs::exists(Path))
      propertyFailed(Target, std::string("a failed ") + X.Ext +
                                 " export left a file behind");
    return;
  }
  Expected<std::unique_ptr<Checkpoint>> Again = importFile(Path);
  removeScratch(Path);
  if (!Again)
    propertyFailed(
        Target,
        std::string("the ") + X.Ext +
            " export does not read back: " + toString(Again.takeError()),
        Before);
  if (!Same)
    return;
  std::string After = printWithData(**Again);
  if (X.Kind == EmitKind::Safetensors)
    After = withoutAddedFormat(Before, std::move(After));
  if (Before != After)
    propertyFailed(Target,
                   std::string("read -> write ") + X.Ext +
                       " -> read changed the checkpoint",
                   Before, After);
}

} // namespace

int roundTrip(StringRef Target, const uint8_t *Data, size_t Size,
              StringRef Name, ImportFn Import, EmitKind Native) {
  Expected<std::unique_ptr<Checkpoint>> C = Import(memFile(Data, Size, Name));
  if (!C) {
    expectCleanError(C.takeError());
    return 0;
  }
  checkExports(Target, **C, Native, printWithData(**C));
  return 0;
}

void checkExports(StringRef Target, const Checkpoint &C, EmitKind Native,
                  const std::string &Before) {
  if (!smallEnoughToWrite(C))
    return;
  for (const Exporter &X : Exporters)
    exportAndRead(Target, C, X, X.Kind == Native, Before);
}

} // namespace fuzz
} // namespace wopt
