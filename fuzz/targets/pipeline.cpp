//===- pipeline.cpp - Fuzz the pipeline text parser -----------------------===//
//
// Against every pass and named pipeline wopt ships: a pipeline that parses
// is printed (as -dump-pass-pipeline does), and the printed text must parse
// to a pipeline that prints the same.
//
//===----------------------------------------------------------------------===//
#include "FuzzTarget.h"
#include "wopt/Pass/PassManager.h"
#include "wopt/Passes/Passes.h"
#include "llvm/Support/raw_ostream.h"

using namespace wopt;
using namespace llvm;

namespace {

const PassRegistry &registry() {
  static PassRegistry *R = [] {
    auto *R = new PassRegistry();
    registerAllPasses(*R);
    registerAllPipelines(*R);
    return R;
  }();
  return *R;
}

/// The printed pipeline, or nullopt (and the error consumed) when it does
/// not parse.
std::optional<std::string> parseAndPrint(StringRef Text, std::string *Err) {
  PassManager PM;
  if (Error E = registry().parsePipeline(Text, PM)) {
    std::string Msg = toString(std::move(E));
    if (Err)
      *Err = Msg;
    return std::nullopt;
  }
  std::string S;
  raw_string_ostream OS(S);
  PM.printAsTextualPipeline(OS);
  return S;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  std::string Err;
  std::optional<std::string> Once =
      parseAndPrint(fuzz::asText(Data, Size), &Err);
  if (!Once) {
    if (Err.empty())
      fuzz::propertyFailed("pipeline", "an error with an empty message");
    return 0;
  }
  std::optional<std::string> Twice = parseAndPrint(*Once, &Err);
  if (!Twice)
    fuzz::propertyFailed("pipeline",
                         "the printed pipeline does not parse: " + Err, *Once);
  if (*Once != *Twice)
    fuzz::propertyFailed("pipeline", "parse -> print -> parse changed it",
                         *Once, *Twice);
  return 0;
}
