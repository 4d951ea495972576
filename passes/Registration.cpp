//===- Registration.cpp - Fill a registry from the .def lists ------------===//
#include "wopt/Passes/Passes.h"

using namespace wopt;

void wopt::registerAllPasses(PassRegistry &R) {
#define WOPT_PASS(ARG, NAME, SUMMARY)                                          \
  R.registerPass({ARG, SUMMARY, &create##NAME##Pass});
#include "wopt/Passes/Passes.def"
}

void wopt::registerAllPipelines(PassRegistry &R) {
  // Pipelines.inc is generated from passes/pipelines/*.wpipe at build time.
#define WOPT_PIPELINE_FILE(NAME, FILE, CONTENTS)                               \
  R.registerPipelineFile(NAME, CONTENTS, FILE);
#include "Pipelines.inc"
#undef WOPT_PIPELINE_FILE
}
