//===- AtomicOutput.h - Streaming, all-or-nothing output files --*- C++ -*-===//
//
// Exporters write into a temporary file next to the destination and rename
// it over the destination only when everything was written: on any error
// (or if commit() is never reached) the temporary is removed, so no partial
// output is ever left behind and an input given as output stays intact
// until the rename.
//
// Tensor bytes are streamed: large ranges of a mapped input file are copied
// kernel-side (RangeCopier, DataCopy.h), everything else goes through a
// fixed-size buffer.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_LIB_SERIALIZATION_ATOMICOUTPUT_H
#define WOPT_LIB_SERIALIZATION_ATOMICOUTPUT_H

#include "DataCopy.h"
#include "wopt/IR/Storage.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include <optional>
#include <string>
#include <vector>

namespace wopt {
namespace detail {

class AtomicOutput {
public:
  /// Creates ".<name>.tmp-XXXXXX" in the destination folder, removed on any
  /// failure and on a signal. "-" writes to stdout directly (nothing to
  /// rename, so not atomic).
  static llvm::Expected<std::unique_ptr<AtomicOutput>>
  create(llvm::StringRef Path);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput &) = delete;
  AtomicOutput &operator=(const AtomicOutput &) = delete;

  /// The descriptor, for writers that stream on their own (the torch zip
  /// writer); they must not mix that with this class's buffered writes.
  int fd() const { return FD; }
  /// Bytes written so far.
  uint64_t position() const { return Pos; }
  llvm::Error write(llvm::ArrayRef<uint8_t> Bytes);
  llvm::Error write(llvm::StringRef Bytes) {
    return write(llvm::ArrayRef<uint8_t>(
        reinterpret_cast<const uint8_t *>(Bytes.data()), Bytes.size()));
  }
  llvm::Error writeZeros(uint64_t N);
  /// Pads with zero bytes up to the next multiple of Align.
  llvm::Error alignTo(uint64_t Align);
  /// Bytes [Offset, Offset + Size) of S. Mapped storages are read from the
  /// source descriptor (copy_file_range for ranges of 1 MiB and more, pread
  /// into the write buffer for smaller ones), never through the mapping;
  /// computed ones are produced into the write buffer a chunk at a time;
  /// owned ones are buffered writes.
  llvm::Error writeStorageRange(const Storage &S, uint64_t Offset,
                                uint64_t Size);
  /// Flushes, closes and renames over the destination.
  llvm::Error commit();

private:
  AtomicOutput() = default;
  llvm::Error flushBuffer();
  llvm::Error fail(const llvm::Twine &What, std::error_code EC);
  /// E (from DataCopy.h) with the destination's name in front.
  llvm::Error fail(llvm::Error E);
  llvm::Error readFromFile(int SrcFD, uint64_t SrcOffset, uint64_t Size);
  llvm::Error produce(const Storage &S, uint64_t Offset, uint64_t Size);

  std::string Dest;
  llvm::SmallString<128> TempPath;
  int FD = -1;
  bool Committed = false;
  uint64_t Pos = 0;
  std::vector<uint8_t> Buffer;
  std::optional<RangeCopier> Copier;
};

} // namespace detail
} // namespace wopt

#endif
