//===- Manifest.h - What a target model expects -----------------*- C++ -*-===//
#ifndef WOPT_MANIFEST_MANIFEST_H
#define WOPT_MANIFEST_MANIFEST_H

#include "wopt/IR/Checkpoint.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

namespace wopt {

/// Writes the manifest (JSON) of C's root state dict: every entry in order
/// with name, dtype and shape. Fails when the root is not a state dict.
llvm::Error emitManifest(const Checkpoint &C, llvm::raw_ostream &OS);

} // namespace wopt

#endif
