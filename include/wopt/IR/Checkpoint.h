//===- Checkpoint.h - The module of wopt: one checkpoint --------*- C++ -*-===//
#ifndef WOPT_IR_CHECKPOINT_H
#define WOPT_IR_CHECKPOINT_H

#include "wopt/IR/Value.h"
#include <string>
#include <vector>

namespace wopt {

/// An entry a pass removed from the state dict. Kept so that a later
/// verification can say which pass removed a key the target wants (and how
/// to keep it) instead of only "missing"; the value stays reachable (its
/// storage mapped, nothing copied) for whoever wants it back.
struct RemovedEntry {
  std::string Key;    ///< its name when it was removed
  std::string Pass;   ///< the pass that removed it
  std::string Reason; ///< "a derived buffer (matches 'attn_mask')"
  std::string Keep;   ///< the option that keeps it, "" when none
  ValuePtr Val;
};

class Checkpoint {
public:
  Checkpoint() = default;
  explicit Checkpoint(ValuePtr Root) : Root(std::move(Root)) {}

  const ValuePtr &root() const { return Root; }
  void setRoot(ValuePtr R) { Root = std::move(R); }

  /// The root dict when it is a state dict: a dict whose keys are all
  /// strings and at least one of whose values is a tensor. Null otherwise
  /// (a wrapper such as {'teacher': ..., 'iteration': ...}: run unwrap).
  DictValue *stateDict() const;

  /// Distinct storages reachable from the root (through tensors and
  /// storage values), in first-use order (forEachNode's order).
  std::vector<StorageRef> storages() const;
  /// Calls F once on every tensor node reachable from the root, in
  /// forEachNode's order.
  void forEachTensor(llvm::function_ref<void(TensorValue &)> F) const;

  /// The nodes the importer made; see ValueGraph.
  ValueGraph &graph() { return *Graph; }
  void setGraph(std::shared_ptr<ValueGraph> G) { Graph = std::move(G); }

  /// Where it came from.
  std::string SourcePath;    ///< input file name as given
  std::string Format;        ///< "torch-zip", "torch-legacy", "wir", ...
  std::string FormatVersion; ///< e.g. the zip's `version` record ("3")
  std::string ByteOrder = "little";
  std::string RecordPrefix; ///< zip record folder ("archive", "ck")
  /// Keeps the input mapped as long as the IR lives.
  std::shared_ptr<SourceFile> Source;
  /// What passes removed from the state dict, in order.
  std::vector<RemovedEntry> Removed;

private:
  // Destroyed after Root: the graph cuts the edges its nodes still hold.
  std::shared_ptr<ValueGraph> Graph = std::make_shared<ValueGraph>();
  ValuePtr Root;
};

} // namespace wopt

#endif
