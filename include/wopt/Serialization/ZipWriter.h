//===- ZipWriter.h - Stored-entry zip archives as torch writes them -*- C++
//-*-===//
//
// Writes the zip layout of torch.save (PyTorch's miniz-based
// PyTorchStreamWriter): stored entries, every record's data 64-byte aligned
// by an `FB` extra field filled with 'Z', flags 0x808 with a data descriptor
// after each non-empty record, zip64 extra fields for records or offsets past
// 4 GiB, and the zip64 end records always. Data is streamed: a record's bytes
// never need to be in memory at once. Bytes that live in a file are copied
// kernel-side (copy_file_range) when the record's CRC is known already (the
// input's directory gave it), else through one reused buffer that feeds the
// CRC.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_SERIALIZATION_ZIPWRITER_H
#define WOPT_SERIALIZATION_ZIPWRITER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/FunctionExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wopt {
namespace detail {
class RangeCopier;
}

class ZipWriter {
public:
  /// Data offsets are aligned to this, as torch does (kFieldAlignment).
  static constexpr uint64_t Alignment = 64;

  /// Writes to FD, which the caller owns and keeps open. Writes are
  /// buffered; nothing is guaranteed on disk before finish().
  explicit ZipWriter(int FD);
  ~ZipWriter();
  ZipWriter(const ZipWriter &) = delete;
  ZipWriter &operator=(const ZipWriter &) = delete;

  /// Writes a whole record from memory.
  llvm::Error addRecord(llvm::StringRef Name, llvm::ArrayRef<uint8_t> Data);

  /// Streams a record of exactly Size bytes: beginRecord, any number of
  /// writeData/copyFromFile calls, endRecord. KnownCRC is the CRC-32 of the
  /// bytes that will be written, when the caller knows it (a record copied
  /// unchanged from a zip input): it is written as is and nothing is
  /// computed. Without it the CRC is computed from the data.
  llvm::Error beginRecord(llvm::StringRef Name, uint64_t Size,
                          std::optional<uint32_t> KnownCRC = std::nullopt);
  llvm::Error writeData(llvm::ArrayRef<uint8_t> Data);
  /// Appends Size bytes of the file SrcFD starting at Offset. With a known
  /// CRC the kernel copies them (copy_file_range);
  /// otherwise they are pread in 1 MiB chunks into one buffer, CRCed and
  /// written from it, so the resident set stays small whatever the size.
  llvm::Error copyFromFile(int SrcFD, uint64_t Offset, uint64_t Size);
  /// The CRC of the current record's data so far (the known one if given).
  uint32_t currentCRC() const;
  llvm::Error endRecord();

  /// Writes the central directory and the end records, and flushes.
  llvm::Error finish();

  /// Bytes written so far (the current archive offset).
  uint64_t offset() const { return Offset; }
  /// Called with the running number of record data bytes written.
  void setProgress(llvm::unique_function<void(uint64_t)> F) {
    Progress = std::move(F);
  }
  /// Bytes that went through copy_file_range (statistics, tests).
  uint64_t kernelCopiedBytes() const;

  /// The extra field torch puts in a local header: the zip64 field when the
  /// record or its offset needs one, then `FB` padding so the data starts at
  /// a multiple of Alignment. Exposed for tests.
  static std::string localExtraField(uint64_t HeaderOffset, size_t NameLen,
                                     uint64_t Size);

private:
  struct Entry {
    std::string Name;
    uint64_t HeaderOffset = 0;
    uint64_t Size = 0;
    uint32_t CRC = 0;
    /// CRC came from the caller: the data is not CRCed.
    bool CRCKnown = false;
  };

  llvm::Error put(llvm::ArrayRef<uint8_t> Bytes);
  llvm::Error put(llvm::StringRef Bytes);
  llvm::Error flushBuffer();
  /// True when the current record's data must be CRCed.
  bool needsCRC() const;
  /// Accounts for Size bytes of record data written.
  void noteData(uint64_t Size);
  std::string centralDirectoryEntry(const Entry &E) const;

  int FD;
  uint64_t Offset = 0;
  std::vector<uint8_t> Buffer;
  std::vector<Entry> Entries;
  bool InRecord = false;
  uint64_t Remaining = 0;
  uint64_t DataWritten = 0;
  std::unique_ptr<detail::RangeCopier> Copier;
  llvm::unique_function<void(uint64_t)> Progress;
};

/// CRC-32 (zip's polynomial), fed incrementally: Crc = crc32Update(Crc, ...).
/// libdeflate's folding (carry-less multiply) implementation.
uint32_t crc32Update(uint32_t CRC, llvm::ArrayRef<uint8_t> Data);

} // namespace wopt

#endif
