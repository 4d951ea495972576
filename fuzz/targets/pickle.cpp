//===- pickle.cpp - Fuzz the symbolic unpickler, and its round trips ------===//
//
// The input is a pickle stream. Without persistent ids it is a plain value:
// written back with the pickle writer and read again, both reads must
// print the same. With persistent ids (tensors' storages) it becomes the
// data.pkl of a torch archive whose records are made to the sizes the ids
// claim (zeros), so that it goes through the torch import and every export
// as a real checkpoint would (RoundTrip.h).
//
//===----------------------------------------------------------------------===//
#include "RoundTrip.h"
#include "wopt/IR/TextIR.h"
#include "wopt/Serialization/PickleReader.h"
#include "wopt/Serialization/PickleWriter.h"
#include "wopt/Serialization/ZipWriter.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include <fcntl.h>
#include <unistd.h>

using namespace wopt;
using namespace llvm;

namespace {

/// Limits well below the defaults, so that one input cannot spend the
/// fuzzer's time or memory on work the defaults allow a real checkpoint.
ReaderLimits fuzzLimits() {
  ReaderLimits L;
  L.MaxOpcodes = 1 << 16;
  L.MaxValueNodes = 1 << 16;
  L.MaxMemoSize = 1 << 12;
  return L;
}

/// Reads the pickle; Storages gets, for each storage a persistent id names
/// ('storage', torch.<T>Storage, key, location, numel), its size in bytes
/// (nullopt when it is no such tuple or too large to make).
/// A Checkpoint holds the value with the reader's graph, so that cycles in
/// it are freed with it (a bare ValuePtr of a cycle would leak).
Expected<std::unique_ptr<Checkpoint>>
readPickle(ArrayRef<uint8_t> Bytes,
           StringMap<std::optional<uint64_t>> *Storages) {
  PickleReader R(Bytes, "fuzz.pkl", fuzzLimits());
  if (Storages)
    R.setPersistentLoad(
        [Storages](const ValuePtr &Pid, uint64_t) -> Expected<ValuePtr> {
          std::optional<uint64_t> Size;
          std::string Key = "?";
          auto *T = dyn_cast<SequenceValue>(Pid.get());
          if (T && T->elements().size() >= 5) {
            const auto &E = T->elements();
            auto *Type = dyn_cast<OpaqueValue>(E[1].get());
            auto *K = dyn_cast<StringValue>(E[2].get());
            auto *N = dyn_cast<IntValue>(E[4].get());
            std::optional<DType> DT =
                Type ? (Type->name() == "UntypedStorage"
                            ? std::optional<DType>(DType::UInt8)
                            : dtypeFromStorageName(Type->name()))
                     : std::nullopt;
            if (K)
              Key = K->value();
            if (DT && N && N->value() >= 0 && N->value() <= (1 << 16))
              Size = uint64_t(N->value()) * dtypeSize(*DT);
          }
          Storages->try_emplace(Key, Size);
          return Pid;
        });
  Expected<ValuePtr> V = R.read();
  if (!V)
    return V.takeError();
  auto C = std::make_unique<Checkpoint>(std::move(*V));
  C->setGraph(R.graph());
  return C;
}

/// A value without storages: pickle writer, pickle reader, same value.
void plainRoundTrip(const Checkpoint &C) {
  PickleWriter W;
  fuzz::mustSucceed("pickle", "writing the value back",
                    W.writeValue(*C.root()));
  std::string Out = W.finish();
  Expected<std::unique_ptr<Checkpoint>> Again =
      readPickle(ArrayRef<uint8_t>(
                     reinterpret_cast<const uint8_t *>(Out.data()), Out.size()),
                 nullptr);
  if (!Again)
    fuzz::propertyFailed("pickle", "the writer's pickle does not read back: " +
                                       toString(Again.takeError()));
  std::string Before = fuzz::printWithData(C),
              After = fuzz::printWithData(**Again);
  if (Before != After)
    fuzz::propertyFailed("pickle", "read -> write -> read changed the value",
                         Before, After);
}

/// Writes the pickle as archive/data.pkl with a zero-filled record for
/// every storage; false when that cannot be done (it is then not tried).
bool writeArchive(const std::string &Path, ArrayRef<uint8_t> Pickle,
                  const StringMap<std::optional<uint64_t>> &Storages) {
  int FD = ::open(Path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (FD < 0)
    return false;
  ZipWriter Z(FD);
  Error E = Z.addRecord("archive/data.pkl", Pickle);
  std::vector<uint8_t> Zeros;
  for (const auto &S : Storages) {
    Zeros.assign(S.second.value_or(0), 0);
    if (!E)
      E = Z.addRecord(("archive/data/" + S.first()).str(), Zeros);
  }
  if (!E)
    E = Z.addRecord("archive/version", arrayRefFromStringRef("3\n"));
  if (!E)
    E = Z.finish();
  ::close(FD);
  bool OK = !E;
  consumeError(std::move(E));
  return OK;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  ArrayRef<uint8_t> Bytes(Data, Size);
  StringMap<std::optional<uint64_t>> Storages;
  Expected<std::unique_ptr<Checkpoint>> V = readPickle(Bytes, &Storages);
  if (!V) {
    fuzz::expectCleanError(V.takeError());
    return 0;
  }
  if (Storages.empty()) {
    plainRoundTrip(**V);
    return 0;
  }
  // Names the torch importer could not find records for are refused there
  // anyway; sizes it would refuse are left to the pth target.
  for (const auto &S : Storages)
    if (!S.second || S.first().empty() || S.first().contains('/'))
      return 0;
  std::string Path = fuzz::scratchPath("-in.pth");
  if (!writeArchive(Path, Bytes, Storages)) {
    fuzz::removeScratch(Path);
    return 0;
  }
  Expected<std::unique_ptr<Checkpoint>> C = importFile(Path);
  if (C)
    fuzz::checkExports("pickle", **C, EmitKind::Torch,
                       fuzz::printWithData(**C));
  else
    fuzz::expectCleanError(C.takeError());
  // The checkpoint maps the file: drop it before the name.
  C = nullptr;
  fuzz::removeScratch(Path);
  return 0;
}
