//===- Checkpoint.cpp - The checkpoint module -----------------------------===//
#include "wopt/IR/Checkpoint.h"
#include "llvm/ADT/SmallPtrSet.h"

using namespace wopt;
using namespace llvm;

DictValue *Checkpoint::stateDict() const {
  auto *D = dyn_cast_or_null<DictValue>(Root.get());
  if (!D)
    return nullptr;
  bool HasTensor = false;
  for (const DictEntry &E : D->entries()) {
    if (!E.keyString())
      return nullptr;
    HasTensor |= isa<TensorValue>(E.Val.get());
  }
  return HasTensor ? D : nullptr;
}

/// Depth-first in file order; tensors hidden in opaque objects count too,
/// because exporters must write their storages.
static void walk(const Value &V, function_ref<void(TensorValue &)> F) {
  // The IR's nodes are never const objects; the walk only hands them out.
  if (auto *T = dyn_cast<TensorValue>(&V))
    F(const_cast<TensorValue &>(*T));
  forEachChild(V, [&](const Value &C) { walk(C, F); });
}

void Checkpoint::forEachTensor(function_ref<void(TensorValue &)> F) const {
  if (Root)
    walk(*Root, F);
}

std::vector<StorageRef> Checkpoint::storages() const {
  std::vector<StorageRef> Result;
  SmallPtrSet<Storage *, 16> Seen;
  forEachTensor([&](TensorValue &T) {
    if (T.storage() && Seen.insert(T.storage().get()).second)
      Result.push_back(T.storage());
  });
  return Result;
}
