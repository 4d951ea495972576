//===- Diff.h - Compare a state dict's values with a target's ---*- C++ -*-===//
//
// `-emit=diff` with a -target that has data (a checkpoint): per key, are the
// values equal, how far apart are they (max abs difference), or did the
// dtype or shape change; keys only one side has. What a user runs to check
// that a conversion kept the values. Tensors are streamed a block at a
// time from both files, never loaded whole.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_MANIFEST_DIFF_H
#define WOPT_MANIFEST_DIFF_H

#include "wopt/IR/Checkpoint.h"
#include "wopt/Manifest/Target.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"
#include <string>
#include <vector>

namespace wopt {

struct TensorDiff {
  enum class Kind {
    Equal,      ///< same dtype, shape and bits (NaN where NaN)
    Values,     ///< same dtype and shape, values differ
    DType,      ///< same shape, another dtype (values compared as numbers)
    Shape,      ///< another shape: values not compared
    Missing,    ///< only the target has it
    Unexpected, ///< only the checkpoint has it
  };
  Kind TheKind = Kind::Equal;
  std::string Name;
  /// Types as the report prints them ("f32[4, 8]"); empty for the side
  /// that lacks the key.
  std::string Here, There;
  /// Values and DType: the largest |here - there| over elements both have
  /// as numbers, how many elements differ, and how many are NaN on one
  /// side only. Comparable is false for dtypes with no numeric reading
  /// (complex, f8): then only whether the bytes differ is known.
  double MaxAbs = 0;
  uint64_t NumDiffering = 0, NumNaNMismatch = 0, NumElements = 0;
  bool Comparable = true;
};

struct DiffResult {
  std::string InputName, TargetName;
  std::vector<TensorDiff> Entries; ///< target order, then unexpected keys
  unsigned count(TensorDiff::Kind K) const;
  /// Everything equal, nothing missing or unexpected.
  bool identical() const;
};

/// Compares the state dict of C with the target's tensors. Fails when C's
/// root is not a state dict or the target has no data (a manifest), or a
/// tensor cannot be read (elided data, I/O): the error names it.
llvm::Expected<DiffResult> diffWithTarget(const Checkpoint &C, const Target &T,
                                          llvm::StringRef InputName);

/// The report: a summary line, then one line per group of keys with the
/// same outcome (grouped by key pattern like the verify report); equal
/// keys are counted, not listed.
void printDiff(const DiffResult &R, llvm::raw_ostream &OS);

} // namespace wopt

#endif
