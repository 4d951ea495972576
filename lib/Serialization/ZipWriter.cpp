//===- ZipWriter.cpp - Stored-entry zip archives as torch writes them -----===//
//
// Byte layout checked against files written by torch 1.13 (miniz): version
// fields 0, DOS time/date 0, flags 0x808 (0x800 for an empty record, which
// gets no data descriptor), local headers with zero CRC and sizes, a zip64
// extra field in the local header (uncompressed size, then 0 for the
// compressed size, then the header offset, each only when >= 0xFFFFFFFF),
// 24-byte data descriptors whenever that field is present, and the zip64 end
// of central directory record plus locator in every archive.
//
//===----------------------------------------------------------------------===//

#include "wopt/Serialization/ZipWriter.h"
#include "ZipFormat.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CRC.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/Errno.h"
#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <thread>
#include <unistd.h>

using namespace llvm;

namespace wopt {

namespace {
using namespace zip;
constexpr uint64_t Max32 = 0xFFFFFFFFu;
constexpr uint16_t FlagDescriptorUTF8 = 0x0808;
constexpr uint16_t FlagUTF8 = 0x0800;
constexpr size_t BufferCapacity = 1 << 20;
/// Bytes of the input read, CRCed and written at once: the resident set
/// grows by at most this much while a storage streams. 1 MiB stays in L2
/// between the pread, the CRC and the write (docs/Performance.md).
constexpr uint64_t ChunkSize = 1 << 20;
/// Bytes per copy_file_range call when no CRC is computed.
constexpr uint64_t KernelChunkSize = 64 << 20;
/// From this size on, a record's CRC is computed on a second thread while
/// the kernel copies the bytes; below it a thread costs more than it saves.
constexpr uint64_t ParallelCRCThreshold = 8 << 20;

void put16(std::string &S, uint16_t V) {
  char B[2];
  support::endian::write16le(B, V);
  S.append(B, 2);
}
void put32(std::string &S, uint32_t V) {
  char B[4];
  support::endian::write32le(B, V);
  S.append(B, 4);
}
void put64(std::string &S, uint64_t V) {
  char B[8];
  support::endian::write64le(B, V);
  S.append(B, 8);
}
uint32_t clamp32(uint64_t V) { return V >= Max32 ? Max32 : uint32_t(V); }

Error errnoError(const Twine &What) {
  return createStringError(std::error_code(errno, std::generic_category()),
                           What + ": " + sys::StrError(errno));
}
} // namespace

uint32_t crc32Update(uint32_t CRC, ArrayRef<uint8_t> Data) {
  // LLVM built with zlib (Debian's is) forwards to zlib's braided CRC:
  // measured 2 GB/s on one core, the same as calling zlib directly.
  return llvm::crc32(CRC, Data);
}

ZipWriter::ZipWriter(int FD) : FD(FD) { Buffer.reserve(BufferCapacity); }
ZipWriter::~ZipWriter() = default;

std::string ZipWriter::localExtraField(uint64_t HeaderOffset, size_t NameLen,
                                       uint64_t Size) {
  std::string Extra;
  bool BigSize = Size >= Max32, BigOffset = HeaderOffset >= Max32;
  if (BigSize || BigOffset) {
    put16(Extra, 0x0001);
    put16(Extra, (BigSize ? 16 : 0) + (BigOffset ? 8 : 0));
    if (BigSize) {
      put64(Extra, Size);
      put64(Extra, 0); // miniz writes the compressed size before it knows it
    }
    if (BigOffset)
      put64(Extra, HeaderOffset);
  }
  uint64_t Start = HeaderOffset + LocalHeaderSize + NameLen + Extra.size() + 4;
  uint64_t Pad = (Alignment - Start % Alignment) % Alignment;
  Extra += "FB";
  put16(Extra, static_cast<uint16_t>(Pad));
  Extra.append(Pad, 'Z');
  return Extra;
}

Error ZipWriter::writeAll(const uint8_t *Data, size_t Size) {
  while (Size) {
    ssize_t N = ::write(FD, Data, std::min<size_t>(Size, 1u << 30));
    if (N < 0) {
      if (errno == EINTR)
        continue;
      return errnoError("write failed");
    }
    Data += N;
    Size -= N;
  }
  return Error::success();
}

Error ZipWriter::flushBuffer() {
  Error E = writeAll(Buffer.data(), Buffer.size());
  Buffer.clear();
  return E;
}

Error ZipWriter::put(ArrayRef<uint8_t> Bytes) {
  Offset += Bytes.size();
  if (Buffer.size() + Bytes.size() > BufferCapacity) {
    if (Error E = flushBuffer())
      return E;
    if (Bytes.size() >= BufferCapacity)
      return writeAll(Bytes.data(), Bytes.size());
  }
  Buffer.insert(Buffer.end(), Bytes.begin(), Bytes.end());
  return Error::success();
}

Error ZipWriter::put(StringRef Bytes) {
  return put(arrayRefFromStringRef(Bytes));
}

Error ZipWriter::beginRecord(StringRef Name, uint64_t Size) {
  assert(!InRecord && "beginRecord inside a record");
  if (Name.size() > 0xFFFF)
    return createStringError(inconvertibleErrorCode(),
                             "record name too long: %s", Name.str().c_str());
  Entry E;
  E.Name = Name.str();
  E.HeaderOffset = Offset;
  E.Size = Size;
  std::string Extra = localExtraField(Offset, Name.size(), Size);
  std::string H;
  put32(H, LocalHeaderSig);
  put16(H, 0); // version needed
  put16(H, Size ? FlagDescriptorUTF8 : FlagUTF8);
  put16(H, 0); // stored
  put16(H, 0); // time
  put16(H, 0); // date
  put32(H, 0); // CRC: descriptor
  put32(H, 0); // sizes: descriptor
  put32(H, 0);
  put16(H, static_cast<uint16_t>(Name.size()));
  put16(H, static_cast<uint16_t>(Extra.size()));
  H += Name;
  H += Extra;
  Entries.push_back(std::move(E));
  InRecord = true;
  Remaining = Size;
  return put(H);
}

void ZipWriter::noteData(ArrayRef<uint8_t> Data, uint64_t Size) {
  if (ComputeCRC)
    Entries.back().CRC = crc32Update(Entries.back().CRC, Data);
  Remaining -= Size;
  DataWritten += Size;
  if (Progress)
    Progress(DataWritten);
}

Error ZipWriter::writeData(ArrayRef<uint8_t> Data) {
  assert(InRecord && Data.size() <= Remaining && "record overrun");
  noteData(Data, Data.size());
  return put(Data);
}

Error ZipWriter::readChunk(int SrcFD, uint64_t Off, uint64_t Size) {
  if (ChunkBuffer.size() < Size)
    ChunkBuffer.resize(Size);
  uint8_t *Buf = ChunkBuffer.data();
  for (uint64_t Got = 0; Got < Size;) {
    ssize_t N =
        ::pread(SrcFD, Buf + Got, Size - Got, static_cast<off_t>(Off + Got));
    if (N < 0 && errno == EINTR)
      continue;
    if (N < 0)
      return errnoError("cannot read input");
    if (N == 0)
      return createStringError(inconvertibleErrorCode(),
                               "input ended before byte %llu",
                               (unsigned long long)(Off + Got));
    Got += N;
  }
  return Error::success();
}

Error ZipWriter::copyChunk(int SrcFD, uint64_t Off, uint64_t Size) {
  // The CRC needs the bytes in user space, so they are pread into one
  // reused buffer and written from it: each byte crosses the page cache
  // once each way. (Handing the same range to copy_file_range after the
  // pread read every byte twice; measured 2.6x cp on vitl.)
  if (Error E = readChunk(SrcFD, Off, Size))
    return E;
  ArrayRef<uint8_t> Data(ChunkBuffer.data(), Size);
  noteData(Data, Size);
  Offset += Size;
  return writeAll(Data.data(), Size);
}

Error ZipWriter::kernelCopy(int SrcFD, uint64_t Off, uint64_t Size) {
  // Without a CRC the bytes need not enter user space at all.
  noteData({}, Size);
  Offset += Size;
  uint64_t Done = 0;
  while (TryKernelCopy && Done < Size) {
    loff_t In = static_cast<loff_t>(Off + Done);
    ssize_t N = ::copy_file_range(SrcFD, &In, FD, nullptr, Size - Done, 0);
    if (N > 0) {
      Done += N;
      KernelCopied += N;
      continue;
    }
    if (N < 0 && errno == EINTR)
      continue;
    if (N == 0)
      return createStringError(inconvertibleErrorCode(),
                               "input ended before byte %llu",
                               (unsigned long long)(Off + Done));
    // Pipes, O_APPEND, old kernels or file systems without support: write()
    // does the rest of this archive.
    if (errno != EINVAL && errno != EXDEV && errno != ENOSYS &&
        errno != EOPNOTSUPP && errno != EBADF && errno != ETXTBSY)
      return errnoError("copy_file_range failed");
    TryKernelCopy = false;
  }
  for (; Done < Size;) {
    uint64_t N = std::min(Size - Done, ChunkSize);
    if (Error E = readChunk(SrcFD, Off + Done, N))
      return E;
    if (Error E = writeAll(ChunkBuffer.data(), N))
      return E;
    Done += N;
  }
  return Error::success();
}

/// The CRC of [Off, Off + Size) of FD continued from CRC, read through a
/// buffer of its own; Failure says why it stopped early.
static uint32_t crcOfRange(int FD, uint64_t Off, uint64_t Size, uint32_t CRC,
                           std::string &Failure) {
  std::vector<uint8_t> Buf(ChunkSize);
  while (Size) {
    ssize_t N = ::pread(FD, Buf.data(), std::min<uint64_t>(Size, ChunkSize),
                        static_cast<off_t>(Off));
    if (N < 0 && errno == EINTR)
      continue;
    if (N <= 0) {
      Failure = N < 0 ? sys::StrError(errno) : "input ended early";
      return CRC;
    }
    CRC = crc32Update(CRC, ArrayRef<uint8_t>(Buf.data(), N));
    Off += N;
    Size -= N;
  }
  return CRC;
}

Error ZipWriter::copyWithParallelCRC(int SrcFD, uint64_t Off, uint64_t Size) {
  // The CRC runs at ~6 GB/s on one core and the copy is bound by the page
  // cache: on two cores the CRC hides behind the kernel copy, so export
  // costs about what cp costs (docs/Performance.md). Both read the same
  // cached pages; neither maps them.
  std::string Failure;
  uint32_t Start = Entries.back().CRC, CRC = Start;
  std::thread Worker(
      [&] { CRC = crcOfRange(SrcFD, Off, Size, Start, Failure); });
  Error Copied = Error::success();
  for (uint64_t Done = 0; Done < Size && !Copied;) {
    uint64_t N = std::min(Size - Done, KernelChunkSize);
    Copied = kernelCopy(SrcFD, Off + Done, N);
    Done += N;
  }
  Worker.join();
  if (Copied)
    return Copied;
  if (!Failure.empty())
    return createStringError(inconvertibleErrorCode(),
                             "cannot read input: " + Failure);
  Entries.back().CRC = CRC;
  return Error::success();
}

Error ZipWriter::copyFromFile(int SrcFD, uint64_t Off, uint64_t Size) {
  assert(InRecord && Size <= Remaining && "record overrun");
  if (Error E = flushBuffer())
    return E;
  if (ComputeCRC && Size >= ParallelCRCThreshold)
    return copyWithParallelCRC(SrcFD, Off, Size);
  while (Size) {
    uint64_t N = std::min(Size, ComputeCRC ? ChunkSize : KernelChunkSize);
    if (Error E =
            ComputeCRC ? copyChunk(SrcFD, Off, N) : kernelCopy(SrcFD, Off, N))
      return E;
    Off += N;
    Size -= N;
  }
  return Error::success();
}

Error ZipWriter::endRecord() {
  assert(InRecord && Remaining == 0 && "record size mismatch");
  InRecord = false;
  const Entry &E = Entries.back();
  if (E.Size == 0)
    return Error::success();
  std::string D;
  put32(D, DataDescriptorSig);
  put32(D, E.CRC);
  if (E.Size >= Max32 || E.HeaderOffset >= Max32) {
    put64(D, E.Size);
    put64(D, E.Size);
  } else {
    put32(D, static_cast<uint32_t>(E.Size));
    put32(D, static_cast<uint32_t>(E.Size));
  }
  return put(D);
}

Error ZipWriter::addRecord(StringRef Name, ArrayRef<uint8_t> Data) {
  if (Error E = beginRecord(Name, Data.size()))
    return E;
  if (Error E = writeData(Data))
    return E;
  return endRecord();
}

std::string ZipWriter::centralDirectoryEntry(const Entry &E) const {
  bool BigSize = E.Size >= Max32, BigOffset = E.HeaderOffset >= Max32;
  std::string Extra;
  if (BigSize || BigOffset) {
    put16(Extra, 0x0001);
    put16(Extra, (BigSize ? 16 : 0) + (BigOffset ? 8 : 0));
    if (BigSize) {
      put64(Extra, E.Size);
      put64(Extra, E.Size);
    }
    if (BigOffset)
      put64(Extra, E.HeaderOffset);
  }
  std::string H;
  put32(H, CentralHeaderSig);
  put16(H, 0); // version made by
  put16(H, 0); // version needed
  put16(H, E.Size ? FlagDescriptorUTF8 : FlagUTF8);
  put16(H, 0); // stored
  put16(H, 0); // time
  put16(H, 0); // date
  put32(H, E.CRC);
  put32(H, clamp32(E.Size));
  put32(H, clamp32(E.Size));
  put16(H, static_cast<uint16_t>(E.Name.size()));
  put16(H, static_cast<uint16_t>(Extra.size()));
  put16(H, 0); // comment
  put16(H, 0); // disk
  put16(H, 0); // internal attributes
  put32(H, 0); // external attributes
  put32(H, clamp32(E.HeaderOffset));
  H += E.Name;
  H += Extra;
  return H;
}

Error ZipWriter::finish() {
  assert(!InRecord && "finish inside a record");
  uint64_t CDOffset = Offset;
  for (const Entry &E : Entries)
    if (Error Err = put(centralDirectoryEntry(E)))
      return Err;
  uint64_t CDSize = Offset - CDOffset;
  uint64_t Zip64EndOffset = Offset;
  uint64_t N = Entries.size();
  std::string T;
  put32(T, Zip64EndSig);
  put64(T, 44);     // size of the rest of this record
  put16(T, 0x031e); // made by: Unix, 3.0 (what miniz writes)
  put16(T, 0x002d); // needed: 4.5 (zip64)
  put32(T, 0);
  put32(T, 0);
  put64(T, N);
  put64(T, N);
  put64(T, CDSize);
  put64(T, CDOffset);
  put32(T, Zip64LocatorSig);
  put32(T, 0);
  put64(T, Zip64EndOffset);
  put32(T, 1);
  put32(T, EndSig);
  put16(T, 0);
  put16(T, 0);
  put16(T, static_cast<uint16_t>(std::min<uint64_t>(N, 0xFFFF)));
  put16(T, static_cast<uint16_t>(std::min<uint64_t>(N, 0xFFFF)));
  put32(T, clamp32(CDSize));
  put32(T, clamp32(CDOffset));
  put16(T, 0); // comment
  if (Error E = put(T))
    return E;
  return flushBuffer();
}

} // namespace wopt
