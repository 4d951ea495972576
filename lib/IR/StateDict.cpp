//===- StateDict.cpp - Safe edits of a state dict -------------------------===//
#include "wopt/IR/StateDict.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/StringMap.h"
#include <cerrno>
#include <cstring>
#include <unistd.h>

using namespace wopt;
using namespace llvm;

/// "'old' (origin...)" for one side of a collision.
static std::string describe(const DictEntry &E, StringRef OldKey) {
  std::string S;
  raw_string_ostream OS(S);
  OS << "'" << OldKey << "'";
  if (auto *T = dyn_cast<TensorValue>(E.Val.get())) {
    if (!T->provenance().empty()) {
      OS << " from ";
      T->provenance().print(OS);
    }
  }
  return S;
}

Error wopt::renameKeys(DictValue &D,
                       function_ref<std::optional<std::string>(StringRef)> Map,
                       StringRef PassName, unsigned *NumRenamed) {
  std::vector<DictEntry> &Entries = D.entries();
  // Compute every new key first so that a collision changes nothing.
  std::vector<std::optional<std::string>> NewKeys(Entries.size());
  StringMap<size_t> Owner;
  std::string Collisions;
  unsigned NumCollisions = 0;
  for (size_t I = 0; I < Entries.size(); ++I) {
    std::optional<StringRef> Old = Entries[I].keyString();
    if (!Old)
      continue;
    if (std::optional<std::string> New = Map(*Old); New && *New != *Old)
      NewKeys[I] = std::move(New);
    StringRef Final = NewKeys[I] ? StringRef(*NewKeys[I]) : *Old;
    auto [It, Inserted] = Owner.try_emplace(Final, I);
    if (Inserted)
      continue;
    if (++NumCollisions > 8)
      continue;
    size_t J = It->second;
    Collisions += "\nnote: '" + Final.str() + "' would be the name of both " +
                  describe(Entries[J], *Entries[J].keyString()) + " and " +
                  describe(Entries[I], *Old);
  }
  if (NumCollisions) {
    std::string Msg = "renaming would give " + std::to_string(NumCollisions) +
                      " entr" + (NumCollisions == 1 ? "y" : "ies") +
                      " a name another entry already has" + Collisions;
    if (NumCollisions > 8)
      Msg += "\nnote: and " + std::to_string(NumCollisions - 8) + " more";
    return createStringError(inconvertibleErrorCode(), Msg);
  }
  unsigned Count = 0;
  // A tensor several keys name (a tie) is one node: its history records
  // the rename of the first of those keys only, so that N names of one
  // object do not give it N steps per pass (N^2 work in what copies it).
  SmallPtrSet<const TensorValue *, 16> Recorded;
  for (size_t I = 0; I < Entries.size(); ++I) {
    if (!NewKeys[I])
      continue;
    std::string Old = Entries[I].keyString()->str();
    if (auto *T = dyn_cast<TensorValue>(Entries[I].Val.get()))
      if (Recorded.insert(T).second)
        T->provenance().addRename(PassName, Old, *NewKeys[I]);
    Entries[I].Key = makeStr(*NewKeys[I]);
    ++Count;
  }
  if (NumRenamed)
    *NumRenamed = Count;
  return Error::success();
}

TensorValue &wopt::ownTensor(DictEntry &E) {
  assert(isa<TensorValue>(E.Val.get()) && "entry does not hold a tensor");
  E.Val = E.Val->copyNode();
  return cast<TensorValue>(*E.Val);
}

unsigned wopt::eraseIf(DictValue &D,
                       function_ref<bool(const DictEntry &)> Pred) {
  std::vector<DictEntry> &Entries = D.entries();
  size_t Before = Entries.size();
  Entries.erase(std::remove_if(Entries.begin(), Entries.end(),
                               [&](const DictEntry &E) { return Pred(E); }),
                Entries.end());
  return Before - Entries.size();
}

uint64_t wopt::tensorBytes(const Value &V) {
  uint64_t N = 0;
  forEachNode(V, [&](const Value &X) {
    if (auto *T = dyn_cast<TensorValue>(&X))
      N += dtypeBytes(T->dtype(), T->numel().value_or(0)).value_or(0);
    return true;
  });
  return N;
}

namespace {

/// Storage bytes [Off, Off + Out.size()), from the file when mapped.
Error readStorageRange(const Storage &S, uint64_t Off,
                       MutableArrayRef<uint8_t> Out) {
  if (S.kind() != Storage::DataKind::Mapped || S.source()->fd() < 0)
    return S.read(Off, Out);
  int FD = S.source()->fd();
  uint64_t At = S.sourceOffset() + Off;
  for (size_t Done = 0; Done < Out.size();) {
    ssize_t R = ::pread(FD, Out.data() + Done, Out.size() - Done, At + Done);
    if (R < 0 && errno == EINTR)
      continue;
    if (R <= 0)
      return createStringError(
          R < 0 ? std::error_code(errno, std::generic_category())
                : std::make_error_code(std::errc::io_error),
          S.source()->path() + ": cannot read tensor data" +
              (R < 0 ? "" : " (the file got shorter)"));
    Done += R;
  }
  return Error::success();
}

} // namespace

Error wopt::readTensorElements(const TensorValue &T, uint64_t First, uint64_t N,
                               MutableArrayRef<uint8_t> Out) {
  const unsigned Size = dtypeSize(T.dtype());
  assert(Out.size() == N * Size && "output size mismatch");
  const Storage &S = *T.storage();
  if (T.isContiguous())
    return readStorageRange(S, (T.storageOffset() + First) * Size, Out);
  ArrayRef<int64_t> Shape = T.shape(), Strides = T.strides();
  for (uint64_t I = 0; I < N; ++I) {
    uint64_t Index = T.storageOffset(), Rest = First + I;
    for (int D = int(Shape.size()) - 1; D >= 0; --D) {
      Index += (Rest % Shape[D]) * Strides[D];
      Rest /= Shape[D];
    }
    if (Error E = S.read(Index * Size, Out.slice(I * Size, Size)))
      return E;
  }
  return Error::success();
}
