//===- wopt.cpp - The wopt driver ----------------------------------------===//
//
// Registers what wopt ships and hands over to the library driver.
//
//===----------------------------------------------------------------------===//
#include "wopt/Passes/Passes.h"
#include "wopt/Tools/WoptMain.h"

int main(int Argc, char **Argv) {
  wopt::PassRegistry &Registry = wopt::getGlobalPassRegistry();
  wopt::registerAllPasses(Registry);
  wopt::registerAllPipelines(Registry);
  return wopt::woptMain(Argc, Argv, Registry);
}
