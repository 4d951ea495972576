//===- Manifest.h - What a target model expects -----------------*- C++ -*-===//
//
// A manifest lists the entries a target model's state dict has, in order:
// name, dtype, shape, and whether the entry may be absent. It is read from and
// written to JSON (docs/Formats.md, "Manifest").
//
// Comparing a checkpoint with a manifest yields findings (missing,
// unexpected, shape and dtype mismatches) plus hints that name the pass that
// would repair a near miss. The report groups keys that differ only in
// integer components: `bbox_head.cls_branches.{0..6}.log_scale`.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_MANIFEST_MANIFEST_H
#define WOPT_MANIFEST_MANIFEST_H

#include "wopt/IR/Checkpoint.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/GlobPattern.h"
#include "llvm/Support/raw_ostream.h"
#include <optional>
#include <string>
#include <vector>

namespace wopt {

//===----------------------------------------------------------------------===//
// The manifest model and its JSON form
//===----------------------------------------------------------------------===//

struct ManifestEntry {
  std::string Name;
  DType Type = DType::Float32;
  llvm::SmallVector<int64_t, 4> Shape;
  /// The target can do without it (e.g. a buffer it initialises itself).
  bool Optional = false;
};

struct Manifest {
  /// Where it was read from, for messages ("" when built in memory).
  std::string SourceName;
  /// What it was made from (the "source" field), informational.
  std::string MadeFrom;
  std::vector<ManifestEntry> Entries;
};

/// Parses manifest JSON. Every error is one line naming SourceName, the entry
/// (index and name) or field, and what is wrong.
llvm::Expected<Manifest> parseManifest(llvm::StringRef JSONText,
                                       llvm::StringRef SourceName);
/// Reads and parses the manifest file at Path.
llvm::Expected<Manifest> readManifestFile(llvm::StringRef Path);
/// Accepts text-IR dtype names ("f32") and torch names ("float32",
/// "torch.float32", "float", "half", "long", ...).
std::optional<DType> parseManifestDType(llvm::StringRef Name);
/// Writes M as JSON, one entry per line.
void writeManifest(const Manifest &M, llvm::raw_ostream &OS);
/// The manifest of a state dict: its tensor entries in order.
Manifest manifestFromStateDict(const DictValue &SD,
                               llvm::StringRef MadeFrom = "");

/// Writes the manifest (JSON) of C's root state dict: every entry in order
/// with name, dtype and shape. Fails when the root is not a state dict.
llvm::Error emitManifest(const Checkpoint &C, llvm::raw_ostream &OS);

//===----------------------------------------------------------------------===//
// Key patterns
//===----------------------------------------------------------------------===//

/// Keys that differ only in integer components, written as one pattern.
struct KeyGroup {
  /// `bbox_head.cls_branches.{0..6}.log_scale`; the key itself for one key.
  std::string Pattern;
  /// Indices into the keys given to groupKeys, in input order.
  std::vector<unsigned> Members;
  /// The pattern's integer sets span more combinations than there are
  /// members (`blocks.{0..3}.{0..11}.x` for 12 keys): reported as "in".
  bool Sparse = false;
  /// The pattern up to its last integer set (without integers: all but the
  /// last component), and the rest. Empty Stem: the pattern cannot merge.
  std::string Stem, Tail;
  /// An llvm::GlobPattern matching every member: integer sets become `*`,
  /// glob metacharacters in names are escaped (`a[1]` -> `a\[1]`). Built
  /// from the keys, never by re-reading Pattern, whose braces may be the
  /// keys' own. groupKeysByStem leaves the first merged group's.
  std::string Glob;
};

/// Groups Keys by their non-integer components; groups appear in the order
/// of their first member. Integer sets that do not form a full grid become
/// one sparse pattern unless they split into two full ones. O(n log n).
std::vector<KeyGroup> groupKeys(llvm::ArrayRef<std::string> Keys);

/// groupKeys, then merges groups with the same Stem (and sparseness) that
/// differ only in their Tail: `blocks.{0..7}.{norm1.weight,norm1.bias}`.
/// At most MaxNames tails are spelled out, then `+N more`; Members are in
/// input order.
std::vector<KeyGroup> groupKeysByStem(llvm::ArrayRef<std::string> Keys,
                                      size_t MaxNames = 3);

/// V spelled so that the pipeline parser reads it back as one option value
/// (or one list item): as is when it has no blank, comma or quote and its
/// brackets balance, else quoted; nullopt when it holds both quote kinds.
/// Hints use it: their fixes are pasted into pipelines.
std::optional<std::string> quoteForPipeline(llvm::StringRef V);

/// S as a literal in a `rename` rule's regex (POSIX extended): its
/// metacharacters escaped. Hints and synthesis spell rules with it.
std::string escapeRegex(llvm::StringRef S);

/// `{0..6}`, `{0,2,5}`, `{0..3,7}`; the bare number for one value.
std::string formatIntegerSet(llvm::ArrayRef<uint64_t> SortedUnique);

/// A way to turn unexpected keys into missing ones, or a class of
/// unexpected keys with a known repair.
struct Hint {
  std::string Kind;     ///< "flatten-chunks", "strip-prefix", ...
  std::string Fix;      ///< pipeline text that repairs it
  std::string Message;  ///< the full `hint:` line without the prefix
  unsigned NumKeys = 0; ///< unexpected keys it explains
  /// Up to two (unexpected key, missing key it would become) pairs; the
  /// second is empty when there is no counterpart (derived buffers).
  std::vector<std::pair<std::string, std::string>> Examples;
  /// Further `note:` lines, as they are printed.
  std::vector<std::string> Notes = {};
};

/// Which keys the hints of findNearMisses account for, by input index.
struct NearMissCoverage {
  std::vector<bool> Unexpected, Missing;
  /// The index of the returned hint that names the fix, -1 for none (a key
  /// can be explained without a hint, e.g. past the rename hints shown).
  std::vector<int> UnexpectedHint, MissingHint;
};

/// Near misses between Unexpected and Missing keys (chunk index, prefix,
/// moved downsample stage, head vs head.fc, one renamed component) and
/// derived buffers among Unexpected. Ordered by keys explained. Matched are
/// the keys both sides have: no fix a hint proposes drops or renames one
/// (select= becomes strip=, a rename that would hit one is not proposed,
/// drop-dynamic-buffers gets keep=).
std::vector<Hint> findNearMisses(llvm::ArrayRef<std::string> Unexpected,
                                 llvm::ArrayRef<std::string> Missing,
                                 NearMissCoverage *Coverage = nullptr,
                                 llvm::ArrayRef<std::string> Matched = {});

/// Buffers models rebuild from their config, as key suffixes at a '.'
/// boundary (`position_ids`, `relative_position_index`, ...): what
/// drop-dynamic-buffers drops by default and the hints call derived.
llvm::ArrayRef<llvm::StringLiteral> derivedBufferNames();
/// The name of derivedBufferNames() Key ends with, if any.
std::optional<llvm::StringRef> derivedBufferOf(llvm::StringRef Key);

//===----------------------------------------------------------------------===//
// Comparison and report
//===----------------------------------------------------------------------===//

/// One entry of the checkpoint being checked (no tensor data needed).
struct CheckpointEntry {
  std::string Name;
  bool IsTensor = true;
  DType Type = DType::Float32;
  llvm::SmallVector<int64_t, 4> Shape;
  /// For non-tensors: what it is ("int", "str", ...).
  std::string ValueKind;
  Provenance Origin;
  /// numel * element size (0 for non-tensors).
  uint64_t Bytes = 0;
};

/// The entries of a state dict, in order.
std::vector<CheckpointEntry> checkpointEntries(const DictValue &SD);

struct CompareOptions {
  std::vector<llvm::GlobPattern> AllowMissing, AllowUnexpected;
  /// Unexpected keys not allowed are pruned instead of reported as errors.
  bool PruneUnexpected = false;
  /// Where the manifest came from, as the user spelled it.
  std::string ManifestName;
  /// What the verdict calls it: "manifest", or "target" for a checkpoint.
  std::string Noun = "manifest";
  /// What passes removed from the state dict (Checkpoint::Removed): a
  /// missing key among them is reported with the pass that removed it.
  std::vector<RemovedEntry> Removed;
  /// The manifest was not the run's -target: hints may say that with it,
  /// passes keep what it expects.
  bool SuggestTarget = false;
};

/// Compiles glob patterns; the error names the option and the pattern.
llvm::Expected<std::vector<llvm::GlobPattern>>
compileGlobs(llvm::ArrayRef<std::string> Patterns, llvm::StringRef OptionName);

struct Finding {
  enum class Kind { Missing, Unexpected, ShapeMismatch, DTypeMismatch };
  /// Why a finding is not an error.
  enum class Allowance { None, Optional, AllowedByGlob, Pruned };
  Kind TheKind;
  Allowance Allowed = Allowance::None;
  std::string Name;
  /// The manifest's view (Missing and mismatches).
  std::optional<ManifestEntry> Expected;
  /// The checkpoint's view (Unexpected and mismatches).
  std::optional<CheckpointEntry> Actual;
  /// Index into Comparison::Hints of the near-miss hint that explains it
  /// (Missing and Unexpected only), -1 for none.
  int HintIndex = -1;
  /// A missing key a pass removed: which, why, and how to keep it.
  std::optional<RemovedEntry> RemovedBy = std::nullopt;

  bool isError() const { return Allowed == Allowance::None; }
};

struct Comparison {
  std::string ManifestName;
  std::string Noun = "manifest";
  /// Missing in manifest order, then unexpected in checkpoint order, then
  /// mismatches in manifest order.
  std::vector<Finding> Findings;
  std::vector<Hint> Hints;
  size_t NumManifestEntries = 0, NumCheckpointEntries = 0;

  unsigned count(Finding::Kind K, bool ErrorsOnly = true) const;
  unsigned countAllowed(Finding::Allowance A) const;
  uint64_t prunedBytes() const;
  bool ok() const;
};

Comparison compareWithManifest(const Manifest &M,
                               llvm::ArrayRef<CheckpointEntry> Entries,
                               const CompareOptions &Opts);

/// The human report: the verdict line first, then each hint with example
/// notes, then the findings no hint explains, grouped (`error:` lines with
/// `note:` lines). Prints only the summary when ok().
void printReport(const Comparison &C, llvm::raw_ostream &OS);
/// The same findings as JSON (docs/Formats.md, "Verification report").
void writeJSONReport(const Comparison &C, llvm::raw_ostream &OS);
/// "8 missing, 3 unexpected, 1 shape mismatch".
std::string summarizeCounts(const Comparison &C);

} // namespace wopt

#endif
