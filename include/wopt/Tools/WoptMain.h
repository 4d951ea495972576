//===- WoptMain.h - The driver's logic as a library -------------*- C++ -*-===//
#ifndef WOPT_TOOLS_WOPTMAIN_H
#define WOPT_TOOLS_WOPTMAIN_H

#include "wopt/Pass/PassRegistry.h"

namespace wopt {

/// Parses the command line, imports, runs the pipeline, exports. Returns
/// the process exit code: 0 success, 1 verification mismatches, 2 usage
/// error or unreadable input. Options are local to this call (no global
/// cl::opt), so linking the library adds none.
int woptMain(int Argc, char **Argv, const PassRegistry &Registry);

} // namespace wopt

#endif
