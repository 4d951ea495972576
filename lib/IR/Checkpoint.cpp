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

void Checkpoint::forEachTensor(function_ref<void(TensorValue &)> F) const {
  if (!Root)
    return;
  // Tensors hidden in opaque objects count too: exporters must write their
  // storages. The IR's nodes are never const objects; the walk only hands
  // them out.
  forEachNode(*Root, [&](const Value &V) {
    if (auto *T = dyn_cast<TensorValue>(&V))
      F(const_cast<TensorValue &>(*T));
    return true;
  });
}

std::vector<StorageRef> Checkpoint::storages() const {
  std::vector<StorageRef> Result;
  if (!Root)
    return Result;
  SmallPtrSet<Storage *, 16> Seen;
  forEachNode(*Root, [&](const Value &V) {
    const StorageRef *S = nullptr;
    if (auto *T = dyn_cast<TensorValue>(&V))
      S = &T->storage();
    else if (auto *SV = dyn_cast<StorageValue>(&V))
      S = &SV->storage();
    if (S && *S && Seen.insert(S->get()).second)
      Result.push_back(*S);
    return true;
  });
  return Result;
}
