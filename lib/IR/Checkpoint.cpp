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

static void walk(Value *V, function_ref<void(TensorValue &)> F);

static void walkEntries(const std::vector<DictEntry> &Entries,
                        function_ref<void(TensorValue &)> F) {
  for (const DictEntry &E : Entries) {
    walk(E.Key.get(), F);
    walk(E.Val.get(), F);
  }
}

/// Depth-first in file order; tensors hidden in opaque objects count too,
/// because exporters must write their storages.
static void walk(Value *V, function_ref<void(TensorValue &)> F) {
  if (!V)
    return;
  if (auto *T = dyn_cast<TensorValue>(V)) {
    F(*T);
  } else if (auto *S = dyn_cast<SequenceValue>(V)) {
    for (const ValuePtr &E : S->elements())
      walk(E.get(), F);
  } else if (auto *D = dyn_cast<DictValue>(V)) {
    walkEntries(D->entries(), F);
    walk(D->state().get(), F);
  } else if (auto *O = dyn_cast<OpaqueValue>(V)) {
    walk(O->Args.get(), F);
    walk(O->Kwargs.get(), F);
    walk(O->State.get(), F);
    for (const ValuePtr &E : O->ListItems)
      walk(E.get(), F);
    walkEntries(O->DictItems, F);
  }
}

void Checkpoint::forEachTensor(function_ref<void(TensorValue &)> F) const {
  walk(Root.get(), F);
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
