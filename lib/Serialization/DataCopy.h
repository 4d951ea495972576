//===- DataCopy.h - Copying tensor bytes from an input to an output -*- C++
//-*-===//
//
// The one way every exporter moves bytes that pass through unchanged from an
// input file to the output: copy_file_range(2) when nothing needs to see
// them (the kernel copies page cache to page cache, as cp does), else pread
// into one fixed buffer, CRC there, write from it. Never through the input
// mapping: a fault there maps the whole page-cache folio around the byte
// (up to 2 MiB with ext4 large folios), so the resident set grew with the
// checkpoint (docs/Performance.md).
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_LIB_SERIALIZATION_DATACOPY_H
#define WOPT_LIB_SERIALIZATION_DATACOPY_H

#include "wopt/IR/Storage.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"
#include <cstdint>
#include <vector>

namespace wopt {
namespace detail {

/// Reads exactly Out.size() bytes of FD at Offset. Errors: "cannot read the
/// input: <why>", "input ended before byte N" (the file shrank).
llvm::Error preadAll(int FD, uint64_t Offset,
                     llvm::MutableArrayRef<uint8_t> Out);
/// Writes all of Bytes to FD at its file position ("write failed: <why>").
llvm::Error writeAll(int FD, llvm::ArrayRef<uint8_t> Bytes);

/// Copies byte ranges of input files to one output descriptor.
class RangeCopier {
public:
  /// Bytes read, CRCed and written at once: the resident set grows by at
  /// most this much while a storage streams. 1 MiB stays in L2 between the
  /// pread, the CRC and the write.
  static constexpr uint64_t ChunkSize = 1 << 20;

  explicit RangeCopier(int DstFD) : DstFD(DstFD) {}

  /// Appends bytes [Offset, Offset + Size) of SrcFD at DstFD's file
  /// position. CRC null: kernel-side with copy_file_range; when the output
  /// refuses it (a pipe, O_APPEND, a file system without support) the rest
  /// of this output goes through pread + write. CRC non-null: the bytes are
  /// pread into the chunk buffer, *CRC is continued over them
  /// (crc32Update), and they are written from there: each byte crosses the
  /// page cache once in and once out. (Reading them for the CRC and then
  /// handing the range to copy_file_range read every byte twice: 2.6x cp.)
  llvm::Error copy(int SrcFD, uint64_t Offset, uint64_t Size, uint32_t *CRC);

  /// Bytes that went through copy_file_range (statistics, tests).
  uint64_t kernelCopiedBytes() const { return KernelCopied; }

private:
  llvm::Error kernelCopy(int SrcFD, uint64_t &Offset, uint64_t &Size);
  llvm::Error bufferedCopy(int SrcFD, uint64_t Offset, uint64_t Size,
                           uint32_t *CRC);

  int DstFD;
  bool TryKernelCopy = true;
  uint64_t KernelCopied = 0;
  std::vector<uint8_t> Buffer;
};

/// The CRC-32 of bytes [Offset, Offset + Size) of FD, read in chunks with
/// pread (-verify-input-crc when nothing is being copied).
llvm::Expected<uint32_t> crcOfFileRange(int FD, uint64_t Offset, uint64_t Size);

/// -verify-input-crc: success when Actual, the CRC-32 of S's bytes, is the
/// one its source record's directory entry gives (or S has none); else
/// "in.pth: record 'archive/data/3' is corrupt: ...".
llvm::Error checkSourceCRC(const Storage &S, uint32_t Actual);
/// -verify-input-crc found no storage with a source CRC to check.
llvm::Error nothingToVerify();

} // namespace detail
} // namespace wopt

#endif
