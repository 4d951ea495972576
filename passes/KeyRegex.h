//===- KeyRegex.h - Whole-key regexes with group replacements ---*- C++ -*-===//
//
// The rule language of `rename` (REGEX=>REPLACEMENT, anchored, POSIX
// extended plus \d \w \s, $N / ${N} / \N references), shared with the
// passes that build one key from others (`concat`).
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_PASSES_KEYREGEX_H
#define WOPT_PASSES_KEYREGEX_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/Regex.h"
#include <memory>
#include <optional>
#include <string>

namespace wopt {
namespace passutil {

/// One compiled REGEX=>REPLACEMENT rule.
struct KeyRegex {
  std::string Text;        ///< as the user wrote it, for messages
  std::string Replacement; ///< with $N, ${N} and \N references
  std::unique_ptr<llvm::Regex> Re;
  unsigned NumGroups = 0;

  /// The expanded replacement when Key matches whole, else nullopt.
  std::optional<std::string> apply(llvm::StringRef Key) const;
  /// Expands the replacement for a match. Groups is what Re->match filled:
  /// [0] the key, [1] the wrapper group, [N + 1] the user's group N.
  std::string expand(llvm::ArrayRef<llvm::StringRef> Groups) const;
};

/// Rewrites the Perl shorthands users reach for (\d, \w, \s and their
/// negations) into POSIX classes, which llvm::Regex understands.
std::string translateShorthands(llvm::StringRef Re);

/// Compiles Pattern (matched whole) with Replacement; Text names the rule in
/// errors (bad regex, reference to a group the regex lacks).
llvm::Expected<KeyRegex> compileKeyRegex(llvm::StringRef Pattern,
                                         llvm::StringRef Replacement,
                                         llvm::StringRef Text);

/// Splits "REGEX=>REPLACEMENT" and compiles it.
llvm::Expected<KeyRegex> compileKeyRule(llvm::StringRef Text);

} // namespace passutil
} // namespace wopt

#endif
