//===- PassUtils.h - Helpers the key-repair passes share --------*- C++ -*-===//
//
// Small, pass-private helpers: reading state-dict keys as dotted module
// paths, rewriting the module paths of a state dict's `_metadata`, and
// formatting byte counts and key groups for messages.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_PASSES_PASSUTILS_H
#define WOPT_PASSES_PASSUTILS_H

#include "wopt/IR/Value.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/GlobPattern.h"
#include <optional>
#include <string>
#include <vector>

namespace wopt {
namespace passutil {

/// The globs of a keys= option; the error is "keys='G': why".
llvm::Expected<std::vector<llvm::GlobPattern>>
compileKeyGlobs(llvm::ArrayRef<std::string> Keys);

/// Whether Key matches one of Globs; Hits[I] counts the keys glob I matched
/// (for the "matched nothing" warnings).
bool matchCounting(llvm::ArrayRef<llvm::GlobPattern> Globs, llvm::StringRef Key,
                   llvm::MutableArrayRef<unsigned> Hits);

/// True when D looks like a state dict: every key is a string and at least
/// one value is a tensor (the rule Checkpoint::stateDict() applies to the
/// root).
bool isStateDict(const DictValue &D);

/// Number of tensors below V.
uint64_t countTensors(const Value &V);

/// "1.5 KiB (1536 bytes)" style, short: "1536 B", "1.5 KiB", "3.2 MiB".
std::string formatBytes(uint64_t N);

/// Parses a non-negative decimal index without sign or leading zeros
/// ("0", "12"); nullopt otherwise. Module-list indices look like this.
std::optional<uint64_t> parseIndex(llvm::StringRef S);

/// Splits a dotted key into its components.
llvm::SmallVector<llvm::StringRef, 8> splitKey(llvm::StringRef Key);

/// Makes a prefix option end with '.', so `backbone` and `backbone.` mean
/// the same module prefix. Empty stays empty.
std::string normalizePrefix(llvm::StringRef P);

/// The `_metadata` dict of a state dict (module path -> {'version': n}),
/// or null when the dict has none.
DictValue *moduleMetadata(DictValue &SD);

/// Rewrites the module paths of SD's `_metadata` (keys like
/// "backbone.blocks.0", "" for the root). Map gets a path and returns the
/// new path, or nullopt to drop the entry. When two entries map to one path
/// the first one wins: metadata only carries versions, and the entry that
/// moved is the one of the module that now owns the path. Returns the number
/// of entries changed or dropped.
unsigned rewriteModuleMetadata(
    DictValue &SD,
    llvm::function_ref<std::optional<std::string>(llvm::StringRef)> Map);

/// Applies a key-prefix mapping to a module path: the path "a.b" is the
/// key prefix "a.b." ("" stays ""), KeyMap rewrites that prefix, and the
/// result loses its trailing dot again. Lets passes reuse their key
/// transformation for `_metadata`.
std::optional<std::string> mapModulePath(
    llvm::StringRef Path,
    llvm::function_ref<std::optional<std::string>(llvm::StringRef)> KeyMap);

/// Joins at most Max items with ", " and adds "and N more".
std::string joinLimited(llvm::ArrayRef<std::string> Items, size_t Max = 8);

/// "'backbone.' (96 keys), 'head.' (2 keys)": the first components of
/// Keys with counts, in first-seen order, at most Max of them. What a
/// "no key matches" error shows so the user sees what the keys look like.
std::string describeKeyHeads(llvm::ArrayRef<std::string> Keys, size_t Max = 10);

} // namespace passutil
} // namespace wopt

#endif
