//===- TextIRInternal.h - Pieces the printer shares ---------------*- C++
//-*-===//
//
// Private to lib/IR: the parser and the verifier compare dict keys by their
// printed form, and both print strings the way the printer does.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_LIB_IR_TEXTIRINTERNAL_H
#define WOPT_LIB_IR_TEXTIRINTERNAL_H

#include "wopt/IR/Value.h"
#include <string>

namespace wopt {
namespace textir {

/// The text form of V on one line, used as the identity of a dict key: two
/// keys are the same key when they print the same.
std::string keyIdentity(const Value &V);

/// Writes S as a quoted string literal with C-style escapes.
void printQuoted(llvm::raw_ostream &OS, llvm::StringRef S);

} // namespace textir
} // namespace wopt

#endif
