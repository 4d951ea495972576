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
#include "DataCopy.h"
#include "ZipFormat.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Endian.h"
#include <algorithm>
#include <libdeflate.h>

using namespace llvm;

namespace wopt {

namespace {
using namespace zip;
constexpr uint64_t Max32 = 0xFFFFFFFFu;
constexpr uint16_t FlagDescriptorUTF8 = 0x0808;
constexpr uint16_t FlagUTF8 = 0x0800;
constexpr size_t BufferCapacity = 1 << 20;
/// Large copies are split so that the progress bar moves.
constexpr uint64_t ProgressStep = 64 << 20;

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
} // namespace

uint32_t crc32Update(uint32_t CRC, ArrayRef<uint8_t> Data) {
  // Carry-less-multiply folding (the variant for this CPU is picked at run
  // time): 17-19 GB/s on one core here over a cached 1 MiB buffer, against
  // 3.0-3.3 GB/s for zlib's braided CRC behind llvm::crc32
  // (docs/Performance.md).
  return libdeflate_crc32(CRC, Data.data(), Data.size());
}

ZipWriter::ZipWriter(int FD)
    : FD(FD), Copier(std::make_unique<detail::RangeCopier>(FD)) {
  Buffer.reserve(BufferCapacity);
}
ZipWriter::~ZipWriter() = default;

uint64_t ZipWriter::kernelCopiedBytes() const {
  return Copier->kernelCopiedBytes();
}

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

Error ZipWriter::flushBuffer() {
  Error E = detail::writeAll(FD, Buffer);
  Buffer.clear();
  return E;
}

Error ZipWriter::put(ArrayRef<uint8_t> Bytes) {
  Offset += Bytes.size();
  if (Buffer.size() + Bytes.size() > BufferCapacity) {
    if (Error E = flushBuffer())
      return E;
    if (Bytes.size() >= BufferCapacity)
      return detail::writeAll(FD, Bytes);
  }
  Buffer.insert(Buffer.end(), Bytes.begin(), Bytes.end());
  return Error::success();
}

Error ZipWriter::put(StringRef Bytes) {
  return put(arrayRefFromStringRef(Bytes));
}

Error ZipWriter::beginRecord(StringRef Name, uint64_t Size,
                             std::optional<uint32_t> KnownCRC) {
  assert(!InRecord && "beginRecord inside a record");
  if (Name.size() > 0xFFFF)
    return createStringError(inconvertibleErrorCode(),
                             "record name too long: %s", Name.str().c_str());
  Entry E;
  E.Name = Name.str();
  E.HeaderOffset = Offset;
  E.Size = Size;
  E.CRC = KnownCRC.value_or(0);
  E.CRCKnown = KnownCRC.has_value();
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

bool ZipWriter::needsCRC() const { return !Entries.back().CRCKnown; }

uint32_t ZipWriter::currentCRC() const {
  assert(InRecord && "no current record");
  return Entries.back().CRC;
}

void ZipWriter::noteData(uint64_t Size) {
  Remaining -= Size;
  DataWritten += Size;
  if (Progress)
    Progress(DataWritten);
}

Error ZipWriter::writeData(ArrayRef<uint8_t> Data) {
  assert(InRecord && Data.size() <= Remaining && "record overrun");
  if (needsCRC())
    Entries.back().CRC = crc32Update(Entries.back().CRC, Data);
  noteData(Data.size());
  return put(Data);
}

Error ZipWriter::copyFromFile(int SrcFD, uint64_t Off, uint64_t Size) {
  assert(InRecord && Size <= Remaining && "record overrun");
  if (Error E = flushBuffer())
    return E;
  // A known CRC (the input's) lets the bytes stay in the kernel: the copy
  // then costs what cp costs. Otherwise they are read once into user space
  // for the CRC and written from there. (A second thread computing the CRC
  // beside a kernel copy read every byte twice and bought nothing: the
  // process gets about one core here; docs/Performance.md.)
  uint32_t *CRC = needsCRC() ? &Entries.back().CRC : nullptr;
  while (Size) {
    uint64_t N = std::min(Size, ProgressStep);
    if (Error E = Copier->copy(SrcFD, Off, N, CRC))
      return E;
    Offset += N;
    noteData(N);
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
