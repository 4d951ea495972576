//===- Registration.cpp - Fill a registry from the .def lists ------------===//
#include "wopt/Passes/Passes.h"

using namespace wopt;

void wopt::registerAllPasses(PassRegistry &R) {
#define WOPT_PASS(ARG, NAME, SUMMARY)                                          \
  R.registerPass({ARG, SUMMARY, &create##NAME##Pass});
#include "wopt/Passes/Passes.def"
}

void wopt::registerAllPipelines(PassRegistry &R) {
#define WOPT_PIPELINE(NAME, TEXT, SUMMARY)                                     \
  R.registerPipeline({NAME, TEXT, SUMMARY});
#include "Pipelines.def"
}
