//===- zip.cpp - Fuzz the zip reader (.pth container) ---------------------===//
//
// Any archive the reader opens must give record ranges inside the buffer,
// a prefix every record lives under, and lookups that find each record.
//
//===----------------------------------------------------------------------===//
#include "FuzzTarget.h"
#include "wopt/Serialization/ZipReader.h"

using namespace wopt;
using namespace llvm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  ArrayRef<uint8_t> Bytes(Data, Size);
  (void)looksLikeZip(Bytes);
  (void)isTorchScriptZip(Bytes);
  Expected<ZipArchive> Z = ZipArchive::open(Bytes, "fuzz.pth");
  if (!Z) {
    fuzz::expectCleanError(Z.takeError());
    return 0;
  }
  for (const ZipEntry &E : Z->entries()) {
    if (E.DataOffset > Size || E.Size > Size - E.DataOffset)
      fuzz::propertyFailed("zip", "record '" + E.Name +
                                      "' lies outside the "
                                      "file");
    StringRef Name = E.Name;
    if (!Name.consume_front(Z->prefix()) || !Name.consume_front("/"))
      continue; // open() only promises that the first entry is under it
    const ZipEntry *Found = Z->find(Name);
    if (!Found)
      fuzz::propertyFailed("zip", "record '" + E.Name +
                                      "' is listed but "
                                      "find() misses it");
    ArrayRef<uint8_t> D = Z->data(*Found);
    if (!D.empty() && (D.data() < Data || D.end() > Data + Size))
      fuzz::propertyFailed("zip", "data() of '" + E.Name + "' is outside");
  }
  if (Error E = Z->checkStored("fuzz.pth"))
    fuzz::expectCleanError(std::move(E));
  return 0;
}
