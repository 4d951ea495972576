//===- Target.cpp - The state dict a model expects ------------------------===//
//
// A target file is told apart by content, as inputs are: a manifest is
// JSON, anything else goes to importFile. So `manifest=model.pth` no longer
// fails with "invalid JSON: Invalid UTF-8 sequence": a checkpoint of the
// model is as good a description of it as a manifest.
//
//===----------------------------------------------------------------------===//
#include "wopt/Manifest/Target.h"
#include "wopt/Serialization/Serialization.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace wopt;
using namespace llvm;

std::shared_ptr<Target> Target::fromManifest(Manifest M, StringRef Name) {
  std::shared_ptr<Target> T(new Target());
  T->Name = Name.str();
  T->M = std::move(M);
  if (T->M.SourceName.empty())
    T->M.SourceName = T->Name;
  T->index();
  return T;
}

Expected<std::shared_ptr<Target>>
Target::fromCheckpoint(std::unique_ptr<Checkpoint> C, StringRef Name) {
  const DictValue *SD = C->stateDict();
  if (!SD)
    return createStringError(inconvertibleErrorCode(),
                             Name + ": cannot use as a target: the root is "
                                    "not a state dict");
  std::shared_ptr<Target> T(new Target());
  T->Name = Name.str();
  T->From = Source::Checkpoint;
  T->M = manifestFromStateDict(*SD, Name);
  T->M.SourceName = Name.str();
  for (const DictEntry &E : SD->entries())
    if (std::optional<StringRef> K = E.keyString())
      if (const auto *TV = dyn_cast_or_null<TensorValue>(E.Val.get()))
        T->Tensors.try_emplace(*K, TV);
  T->Ckpt = std::move(C);
  T->index();
  return T;
}

void Target::index() {
  IndexOf.clear();
  for (unsigned I = 0; I < M.Entries.size(); ++I)
    IndexOf.try_emplace(M.Entries[I].Name, I);
}

const ManifestEntry *Target::find(StringRef Key) const {
  auto It = IndexOf.find(Key);
  return It == IndexOf.end() ? nullptr : &M.Entries[It->second];
}

const TensorValue *Target::tensor(StringRef Key) const {
  return Tensors.lookup(Key);
}

Expected<bool> wopt::isManifestFile(StringRef Path) {
  if (Path == "-")
    return true;
  auto CannotRead = [&](Error E) {
    std::error_code EC = errorToErrorCode(std::move(E));
    return createStringError(EC,
                             Path + ": cannot read the target: " + EC.message());
  };
  Expected<sys::fs::file_t> F = sys::fs::openNativeFileForRead(Path);
  if (!F)
    return CannotRead(F.takeError());
  char Buf[256];
  Expected<size_t> N = sys::fs::readNativeFile(*F, MutableArrayRef(Buf));
  sys::fs::closeFile(*F);
  if (!N)
    return CannotRead(N.takeError());
  StringRef Head(Buf, *N);
  Head.consume_front("\xEF\xBB\xBF"); // a UTF-8 byte order mark
  Head = Head.ltrim(" \t\r\n");
  // A JSON object (or, wrongly, an array): the manifest reader explains.
  return Head.starts_with("{") || Head.starts_with("[");
}

Expected<std::shared_ptr<const Target>>
wopt::loadTarget(StringRef Path, const Unwrapper &Unwrap) {
  Expected<bool> IsManifest = isManifestFile(Path);
  if (!IsManifest)
    return IsManifest.takeError();
  if (*IsManifest) {
    Expected<Manifest> M = readManifestFile(Path);
    if (!M)
      return M.takeError();
    return Target::fromManifest(std::move(*M), Path);
  }
  Expected<std::unique_ptr<Checkpoint>> C = importFile(Path);
  if (!C)
    return createStringError(inconvertibleErrorCode(),
                             "target " + toString(C.takeError()) +
                                 "\nnote: a target is a manifest (JSON) or "
                                 "a checkpoint wopt reads");
  if (!(*C)->stateDict() && Unwrap)
    if (Error E = Unwrap(**C))
      return createStringError(
          inconvertibleErrorCode(),
          "target " + Path + ": " + toString(std::move(E)) +
              "\nnote: to use one of them, write its manifest: wopt " + Path +
              " -pass-pipeline='unwrap{key=...}' -emit=manifest -o "
              "target.json");
  Expected<std::shared_ptr<Target>> T =
      Target::fromCheckpoint(std::move(*C), Path);
  if (!T)
    return T.takeError();
  return std::shared_ptr<const Target>(std::move(*T));
}
