//===- DataCopy.cpp - Copying tensor bytes from an input to an output -----===//
#include "DataCopy.h"
#include "wopt/Serialization/ZipWriter.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Errno.h"
#include "llvm/Support/FormatVariadic.h"
#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

using namespace llvm;

namespace wopt {
namespace detail {

static Error errnoError(const Twine &What) {
  int Err = errno;
  return createStringError(std::error_code(Err, std::generic_category()),
                           What + ": " + sys::StrError(Err));
}

static Error truncatedAt(uint64_t Byte) {
  return createStringError(std::make_error_code(std::errc::io_error),
                           "input ended before byte %llu (the file shrank "
                           "while being copied)",
                           (unsigned long long)Byte);
}

Error preadAll(int FD, uint64_t Offset, MutableArrayRef<uint8_t> Out) {
  for (uint64_t Got = 0; Got < Out.size();) {
    ssize_t N = ::pread(FD, Out.data() + Got, Out.size() - Got,
                        static_cast<off_t>(Offset + Got));
    if (N < 0 && errno == EINTR)
      continue;
    if (N < 0)
      return errnoError("cannot read the input");
    if (N == 0)
      return truncatedAt(Offset + Got);
    Got += N;
  }
  return Error::success();
}

Error writeAll(int FD, ArrayRef<uint8_t> Bytes) {
  while (!Bytes.empty()) {
    ssize_t N =
        ::write(FD, Bytes.data(), std::min<size_t>(Bytes.size(), 1u << 30));
    if (N < 0 && errno == EINTR)
      continue;
    if (N < 0)
      return errnoError("write failed");
    if (N == 0)
      return createStringError(std::make_error_code(std::errc::io_error),
                               "write failed: no progress");
    Bytes = Bytes.drop_front(N);
  }
  return Error::success();
}

/// Copies as much as the kernel agrees to, advancing Offset and Size; on a
/// refusal it clears TryKernelCopy and leaves the rest to the caller.
Error RangeCopier::kernelCopy(int SrcFD, uint64_t &Offset, uint64_t &Size) {
  while (TryKernelCopy && Size) {
    loff_t In = static_cast<loff_t>(Offset);
    ssize_t N = ::copy_file_range(SrcFD, &In, DstFD, nullptr,
                                  std::min<uint64_t>(Size, 1u << 30), 0);
    if (N > 0) {
      Offset += N;
      Size -= N;
      KernelCopied += N;
      continue;
    }
    if (N < 0 && errno == EINTR)
      continue;
    if (N == 0)
      return truncatedAt(Offset);
    // Pipes, O_APPEND, old kernels or file systems without support: what
    // was copied stays (the output's file position moved past it), write()
    // does the rest of this output.
    if (errno != EINVAL && errno != EXDEV && errno != ENOSYS &&
        errno != EOPNOTSUPP && errno != EBADF && errno != ETXTBSY)
      return errnoError("copy_file_range failed");
    TryKernelCopy = false;
  }
  return Error::success();
}

/// Calls Each on bytes [Offset, Offset + Size) of FD, read with pread
/// into Buffer a chunk at a time.
static Error forEachChunk(int FD, uint64_t Offset, uint64_t Size,
                          std::vector<uint8_t> &Buffer,
                          function_ref<Error(ArrayRef<uint8_t>)> Each) {
  uint64_t Chunk = RangeCopier::ChunkSize;
  if (Buffer.size() < std::min(Size, Chunk))
    Buffer.resize(std::min(Size, Chunk));
  while (Size) {
    MutableArrayRef<uint8_t> Part(Buffer.data(), std::min(Size, Chunk));
    if (Error E = preadAll(FD, Offset, Part))
      return E;
    if (Error E = Each(Part))
      return E;
    Offset += Part.size();
    Size -= Part.size();
  }
  return Error::success();
}

Error RangeCopier::bufferedCopy(int SrcFD, uint64_t Offset, uint64_t Size,
                                uint32_t *CRC) {
  return forEachChunk(SrcFD, Offset, Size, Buffer, [&](ArrayRef<uint8_t> Part) {
    if (CRC)
      *CRC = crc32Update(*CRC, Part);
    return writeAll(DstFD, Part);
  });
}

Error RangeCopier::copy(int SrcFD, uint64_t Offset, uint64_t Size,
                        uint32_t *CRC) {
  if (!CRC)
    if (Error E = kernelCopy(SrcFD, Offset, Size))
      return E;
  return bufferedCopy(SrcFD, Offset, Size, CRC);
}

Expected<uint32_t> crcOfFileRange(int FD, uint64_t Offset, uint64_t Size) {
  std::vector<uint8_t> Buffer;
  uint32_t CRC = 0;
  if (Error E =
          forEachChunk(FD, Offset, Size, Buffer, [&](ArrayRef<uint8_t> Part) {
            CRC = crc32Update(CRC, Part);
            return Error::success();
          }))
    return E;
  return CRC;
}

Error checkSourceCRC(const Storage &S, uint32_t Actual) {
  std::optional<uint32_t> Want = S.sourceCRC();
  if (!Want || *Want == Actual)
    return Error::success();
  return createStringError(
      inconvertibleErrorCode(),
      formatv("{0}: record '{1}' is corrupt: its data has CRC-32 {2:x8}, the "
              "central directory says {3:x8}",
              S.source()->path(), S.sourceRecord(), Actual, *Want)
          .str());
}

Error nothingToVerify() {
  return createStringError(
      inconvertibleErrorCode(),
      "-verify-input-crc: nothing to check: no tensor data of the output is "
      "copied unchanged from a zip record that has a CRC-32 (safetensors, "
      ".wopt and legacy inputs have none; torch >= 2.6 may write 0)");
}

} // namespace detail
} // namespace wopt
