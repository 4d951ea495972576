//===- pickle.cpp - Fuzz the symbolic unpickler ---------------------------===//
//
// Reads the input as a pickle stream with tensors' persistent ids turned
// into plain values. A value without tensors is written back with the
// pickle writer and read again: both reads must print the same.
//
//===----------------------------------------------------------------------===//
#include "FuzzTarget.h"
#include "wopt/IR/TextIR.h"
#include "wopt/Serialization/PickleReader.h"
#include "wopt/Serialization/PickleWriter.h"

using namespace wopt;
using namespace llvm;

namespace {

/// Limits well below the defaults, so that one input cannot spend the
/// fuzzer's time or memory on work the defaults allow a real checkpoint.
ReaderLimits fuzzLimits() {
  ReaderLimits L;
  L.MaxOpcodes = 1 << 20;
  L.MaxValueNodes = 1 << 20;
  L.MaxMemoSize = 1 << 16;
  return L;
}

Expected<ValuePtr> readPickle(ArrayRef<uint8_t> Bytes) {
  PickleReader R(Bytes, "fuzz.pkl", fuzzLimits());
  return R.read();
}

std::string printValue(const ValuePtr &V) {
  Checkpoint C(V);
  return fuzz::printWithData(C);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  Expected<ValuePtr> V = readPickle(ArrayRef<uint8_t>(Data, Size));
  if (!V) {
    fuzz::expectCleanError(V.takeError());
    return 0;
  }
  Checkpoint C(*V);
  bool HasTensor = false;
  C.forEachTensor([&](TensorValue &) { HasTensor = true; });
  if (HasTensor)
    return 0;
  PickleWriter W;
  fuzz::mustSucceed("pickle", "writing the value back", W.writeValue(**V));
  std::string Out = W.finish();
  Expected<ValuePtr> Again = readPickle(
      ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(Out.data()),
                        Out.size()));
  if (!Again)
    fuzz::propertyFailed("pickle",
                         "the writer's pickle does not read back: " +
                             toString(Again.takeError()));
  std::string Before = printValue(*V), After = printValue(*Again);
  if (Before != After)
    fuzz::propertyFailed("pickle", "read -> write -> read changed the value",
                         Before, After);
  return 0;
}
