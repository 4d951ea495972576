//===- OptionText.h - How option values are spelled in pipelines -*- C++
//-*-===//
//
// Shared by the pipeline parser (which finds where a value ends) and the
// option types (which unquote and split it). Private to lib/Pass.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_LIB_PASS_OPTIONTEXT_H
#define WOPT_LIB_PASS_OPTIONTEXT_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include <vector>

namespace wopt {

/// The index just past the value starting at Pos: the first blank (or, with
/// StopAtComma, comma) outside quotes and (), [], {}, or the first closing
/// bracket that was not opened inside the value. An unterminated quote runs
/// to the end of S.
size_t findValueEnd(llvm::StringRef S, size_t Pos, bool StopAtComma);

/// 'v' -> v, "v" -> v, {v} -> v (one outer level); anything else unchanged.
llvm::StringRef unquoteOptionValue(llvm::StringRef S);

/// Splits at commas outside quotes and brackets; unquotes each item.
std::vector<llvm::StringRef> splitOptionList(llvm::StringRef S);

/// Spells V so that the pipeline parser reads it back as one value.
std::string quoteOptionValue(llvm::StringRef V);

/// The candidate nearest to Name within two edits (a typo), "" for none.
llvm::StringRef closestMatch(llvm::StringRef Name,
                             llvm::ArrayRef<llvm::StringRef> Candidates);

} // namespace wopt

#endif
