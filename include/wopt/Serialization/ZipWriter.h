//===- ZipWriter.h - Stored-entry zip archives as torch writes them -*- C++
//-*-===//
//
// Writes the zip layout of torch.save (PyTorch's miniz-based
// PyTorchStreamWriter): stored entries, every record's data 64-byte aligned
// by an `FB` extra field filled with 'Z', flags 0x808 with a data descriptor
// after each non-empty record, zip64 extra fields for records or offsets past
// 4 GiB, and the zip64 end records always. Data is streamed: a record's bytes
// never need to be in memory at once: bytes that live in a file go through
// one reused buffer (or, without CRCs, kernel-side copy_file_range).
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_SERIALIZATION_ZIPWRITER_H
#define WOPT_SERIALIZATION_ZIPWRITER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/FunctionExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include <cstdint>
#include <string>
#include <vector>

namespace wopt {

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
  /// writeData/copyFromFile calls, endRecord.
  llvm::Error beginRecord(llvm::StringRef Name, uint64_t Size);
  llvm::Error writeData(llvm::ArrayRef<uint8_t> Data);
  /// Appends Size bytes of the file SrcFD starting at Offset. With a CRC,
  /// the bytes are pread in fixed-size chunks into one buffer, CRCed and
  /// written from it, so the resident set stays small whatever the size;
  /// without, they are copied with copy_file_range when the output allows.
  llvm::Error copyFromFile(int SrcFD, uint64_t Offset, uint64_t Size);
  llvm::Error endRecord();

  /// Writes the central directory and the end records, and flushes.
  llvm::Error finish();

  /// Bytes written so far (the current archive offset).
  uint64_t offset() const { return Offset; }
  /// Called with the running number of record data bytes written.
  void setProgress(llvm::unique_function<void(uint64_t)> F) {
    Progress = std::move(F);
  }
  /// False: every CRC field is written as 0, as torch >= 2.6 does with
  /// torch.serialization.config.save.compute_crc32 = False. torch loads
  /// such files (it does not check CRCs); Python's zipfile and unzip -t
  /// reject them. Set before the first record.
  void setComputeCRC(bool On) { ComputeCRC = On; }
  /// Bytes that went through copy_file_range (statistics, tests).
  uint64_t kernelCopiedBytes() const { return KernelCopied; }

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
  };

  llvm::Error put(llvm::ArrayRef<uint8_t> Bytes);
  llvm::Error put(llvm::StringRef Bytes);
  llvm::Error flushBuffer();
  llvm::Error writeAll(const uint8_t *Data, size_t Size);
  llvm::Error readChunk(int SrcFD, uint64_t Offset, uint64_t Size);
  llvm::Error copyChunk(int SrcFD, uint64_t Offset, uint64_t Size);
  llvm::Error kernelCopy(int SrcFD, uint64_t Offset, uint64_t Size);
  llvm::Error copyWithParallelCRC(int SrcFD, uint64_t Offset, uint64_t Size);
  /// Accounts for Size bytes of record data; Data (Size bytes, or empty
  /// when no CRC is computed) feeds the CRC.
  void noteData(llvm::ArrayRef<uint8_t> Data, uint64_t Size);
  std::string centralDirectoryEntry(const Entry &E) const;

  int FD;
  uint64_t Offset = 0;
  std::vector<uint8_t> Buffer;
  std::vector<Entry> Entries;
  bool InRecord = false;
  uint64_t Remaining = 0;
  uint64_t DataWritten = 0;
  uint64_t KernelCopied = 0;
  /// Cleared after the first copy_file_range failure: the output (a pipe, a
  /// file system without support) takes write() from then on.
  bool TryKernelCopy = true;
  bool ComputeCRC = true;
  std::vector<uint8_t> ChunkBuffer;
  llvm::unique_function<void(uint64_t)> Progress;
};

/// CRC-32 (zip's polynomial), fed incrementally: Crc = crc32Update(Crc, ...).
uint32_t crc32Update(uint32_t CRC, llvm::ArrayRef<uint8_t> Data);

} // namespace wopt

#endif
