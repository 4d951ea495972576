//===- Target.h - The state dict a model expects -----------------*- C++ -*-===//
//
// A target is the other side of every repair: the keys, dtypes and shapes
// the model that must load the checkpoint has. It is read from a manifest
// (JSON, docs/Formats.md) or from any checkpoint wopt imports, whose state
// dict is the target (unwrapped the way the `unwrap` pass does it); a target
// made from a checkpoint also has that checkpoint's tensor data, which
// -emit=diff compares values against.
//
// Passes see it through Pass::target() (PassManager::setTarget): they keep
// keys the target expects, cast to its dtypes, and the verification at the
// end of a pipeline compares against it. Synthesis asks it which keys,
// dtypes and shapes are wanted. Lookups by key are hash probes.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_MANIFEST_TARGET_H
#define WOPT_MANIFEST_TARGET_H

#include "wopt/IR/Checkpoint.h"
#include "wopt/Manifest/Manifest.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include <functional>
#include <memory>

namespace wopt {

class Target {
public:
  enum class Source {
    Manifest,   ///< a manifest file (or one built in memory): no data
    Checkpoint, ///< a checkpoint's state dict: entries and tensor data
  };

  /// A target with M's entries; Name is how messages call it ("m.json").
  static std::shared_ptr<Target> fromManifest(Manifest M, llvm::StringRef Name);
  /// The target of C, whose root must be a state dict: its tensor entries,
  /// in order. C is kept for its tensor data. Fails naming Name when the
  /// root is not a state dict.
  static llvm::Expected<std::shared_ptr<Target>>
  fromCheckpoint(std::unique_ptr<Checkpoint> C, llvm::StringRef Name);

  /// As the user named it: "m.json", "model.pth".
  llvm::StringRef name() const { return Name; }
  Source source() const { return From; }
  /// Every entry, in the target's order (names, dtypes, shapes, optional).
  const Manifest &manifest() const { return M; }
  llvm::ArrayRef<ManifestEntry> entries() const { return M.Entries; }
  size_t size() const { return M.Entries.size(); }

  /// The entry for Key, or null.
  const ManifestEntry *find(llvm::StringRef Key) const;
  /// The target has Key, required or optional: a pass must not drop or
  /// rename it away.
  bool expects(llvm::StringRef Key) const { return find(Key) != nullptr; }
  /// The target has Key and cannot do without it.
  bool needs(llvm::StringRef Key) const {
    const ManifestEntry *E = find(Key);
    return E && !E->Optional;
  }

  /// A target read from a checkpoint has tensor data.
  bool hasData() const { return Ckpt != nullptr; }
  /// The checkpoint it was read from (null for a manifest).
  const Checkpoint *checkpoint() const { return Ckpt.get(); }
  /// The target's tensor for Key (null for a manifest or a missing key).
  const TensorValue *tensor(llvm::StringRef Key) const;

private:
  Target() = default;
  void index();

  std::string Name;
  Source From = Source::Manifest;
  Manifest M;
  llvm::StringMap<unsigned> IndexOf;
  std::unique_ptr<Checkpoint> Ckpt;
  llvm::StringMap<const TensorValue *> Tensors;
};

/// Makes the root of a checkpoint a state dict (the `unwrap` pass with no
/// options); the loader calls it when a target file is a training
/// checkpoint. wopt's passes provide one: unwrapToStateDict() in
/// wopt/Passes/Passes.h.
using Unwrapper = std::function<llvm::Error(Checkpoint &)>;

/// Reads the target at Path: a manifest when the file is JSON (its first
/// non-blank byte is '{' or '['), otherwise any checkpoint importFile reads, made
/// a state dict by Unwrap when its root is not one. "-" reads a manifest
/// from stdin. Every error names Path.
llvm::Expected<std::shared_ptr<const Target>>
loadTarget(llvm::StringRef Path, const Unwrapper &Unwrap);

/// Whether Path holds a manifest rather than a checkpoint (by content).
llvm::Expected<bool> isManifestFile(llvm::StringRef Path);

} // namespace wopt

#endif
