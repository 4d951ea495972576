//===- ZipReader.cpp - Stored-entry zip archives
//---------------------------===//
//
// The layout follows PKWARE's APPNOTE: local headers and data, then the
// central directory, then (zip64) the zip64 end record and its locator,
// then the classic end record. Sizes come from the central directory only:
// torch writes local headers with zero sizes and a data descriptor after
// the data.
//
//===----------------------------------------------------------------------===//

#include "wopt/Serialization/ZipReader.h"
#include "ZipFormat.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>

using namespace llvm;

namespace wopt {
namespace {

using namespace zip;

uint16_t rd16(ArrayRef<uint8_t> B, uint64_t At) {
  return support::endian::read16le(B.data() + At);
}
uint32_t rd32(ArrayRef<uint8_t> B, uint64_t At) {
  return support::endian::read32le(B.data() + At);
}
uint64_t rd64(ArrayRef<uint8_t> B, uint64_t At) {
  return support::endian::read64le(B.data() + At);
}

/// True when [Offset, Offset + Size) lies inside a buffer of Total bytes,
/// without overflowing.
bool inBounds(uint64_t Offset, uint64_t Size, uint64_t Total) {
  return Offset <= Total && Size <= Total - Offset;
}

/// Bytes of the archive the parser looked at: a slice of the mapping, or a
/// copy it owns (moving a Window keeps Bytes valid).
struct Window {
  std::vector<uint8_t> Owned;
  ArrayRef<uint8_t> Bytes;
};

/// Parses one archive; each error names the file and the place.
class Parser {
public:
  Parser(ArrayRef<uint8_t> Bytes, int FD, StringRef FileName)
      : Bytes(Bytes), FD(FD), FileName(FileName) {}

  Error fail(const Twine &Msg) {
    return createStringError(inconvertibleErrorCode(),
                             FileName + ": zip: " + Msg);
  }

  /// Where the central directory is and how many entries it has.
  struct Directory {
    uint64_t Offset = 0, Size = 0, Count = 0;
    bool Zip64 = false;
  };

  Expected<Window> read(uint64_t Offset, uint64_t Len);
  Expected<uint64_t> findEnd();
  Expected<Directory> readDirectory();
  Error readEntries(const Directory &Dir, std::vector<ZipEntry> &Out);
  Error readZip64Extra(ArrayRef<uint8_t> CD, uint64_t ExtraAt,
                       uint16_t ExtraLen, StringRef Name, uint64_t &Size,
                       uint64_t &CSize, uint64_t &Offset);
  Error locateData(ZipEntry &E);
  Error checkOverlaps(std::vector<ZipEntry> &Entries, const Directory &Dir);

private:
  ArrayRef<uint8_t> Bytes;
  int FD;
  StringRef FileName;
};

/// Bytes [Offset, Offset + Len), which the caller has checked lie in the
/// file. With a descriptor they are read with pread, not through the
/// mapping: a fault on the mapping maps the whole page-cache folio around
/// the byte (up to 2 MiB with ext4 large folios), so reading the ~600 local
/// headers of a big checkpoint that way made resident memory grow with the
/// file (docs/Performance.md).
Expected<Window> Parser::read(uint64_t Offset, uint64_t Len) {
  Window W;
  if (FD < 0) {
    W.Bytes = Bytes.slice(Offset, Len);
    return W;
  }
  W.Owned.resize(Len);
  for (uint64_t Done = 0; Done < Len;) {
    ssize_t N = ::pread(FD, W.Owned.data() + Done, Len - Done, Offset + Done);
    if (N < 0 && errno == EINTR)
      continue;
    if (N <= 0)
      return fail(formatv("cannot read {0} bytes at byte {1}: {2}", Len, Offset,
                          N < 0 ? std::strerror(errno) : "file shrank")
                      .str());
    Done += N;
  }
  W.Bytes = W.Owned;
  return W;
}

/// Scans backwards for the classic end record: it is the last 22 bytes
/// unless a comment (at most 65535 bytes) follows it.
Expected<uint64_t> Parser::findEnd() {
  uint64_t N = Bytes.size();
  if (N < EndSize)
    return fail(
        formatv("file of {0} bytes is too small to be a zip archive", N).str());
  uint64_t Lowest = N > EndSize + 0xFFFF ? N - EndSize - 0xFFFF : 0;
  Expected<Window> Tail = read(Lowest, N - Lowest);
  if (!Tail)
    return Tail.takeError();
  ArrayRef<uint8_t> T = Tail->Bytes;
  for (uint64_t At = N - EndSize + 1; At-- > Lowest;) {
    if (rd32(T, At - Lowest) != EndSig)
      continue;
    // The comment must reach exactly to the end of the file.
    if (At + EndSize + rd16(T, At - Lowest + 20) == N)
      return At;
  }
  return fail("no end-of-central-directory record (truncated or not a zip)");
}

Expected<Parser::Directory> Parser::readDirectory() {
  Expected<uint64_t> EndOr = findEnd();
  if (!EndOr)
    return EndOr.takeError();
  uint64_t End = *EndOr;
  Expected<Window> EndRec = read(End, EndSize);
  if (!EndRec)
    return EndRec.takeError();
  ArrayRef<uint8_t> E = EndRec->Bytes;
  if (rd16(E, 4) != 0 || rd16(E, 6) != 0)
    return fail("multi-disk archives are not supported");
  Directory Dir;
  Dir.Count = rd16(E, 10);
  Dir.Size = rd32(E, 12);
  Dir.Offset = rd32(E, 16);

  // torch always writes zip64 records; other writers use them only when a
  // field overflows. A locator right before the end record says they exist.
  Expected<Window> LocRec =
      read(End >= Zip64LocatorSize ? End - Zip64LocatorSize : End,
           End >= Zip64LocatorSize ? Zip64LocatorSize : 0);
  if (!LocRec)
    return LocRec.takeError();
  ArrayRef<uint8_t> L = LocRec->Bytes;
  bool HasLocator = !L.empty() && rd32(L, 0) == Zip64LocatorSig;
  bool Saturated =
      Dir.Count == 0xFFFF || Dir.Size == 0xFFFFFFFF || Dir.Offset == 0xFFFFFFFF;
  if (!HasLocator) {
    if (Saturated)
      return fail("end record needs zip64 values but there is no zip64 "
                  "locator");
    if (!inBounds(Dir.Offset, Dir.Size, End))
      return fail(formatv("central directory (byte {0}, {1} bytes) is outside "
                          "the file",
                          Dir.Offset, Dir.Size)
                      .str());
    return Dir;
  }
  uint64_t Loc = End - Zip64LocatorSize;
  if (rd32(L, 4) != 0 || rd32(L, 16) > 1)
    return fail("multi-disk archives are not supported");
  uint64_t Rec = rd64(L, 8);
  if (!inBounds(Rec, Zip64EndSize, Loc))
    return fail(formatv("zip64 locator points at byte {0}, outside the file "
                        "before the locator (byte {1})",
                        Rec, Loc)
                    .str());
  Expected<Window> Z64 = read(Rec, Zip64EndSize);
  if (!Z64)
    return Z64.takeError();
  ArrayRef<uint8_t> Z = Z64->Bytes;
  if (rd32(Z, 0) != Zip64EndSig)
    return fail(formatv("no zip64 end-of-central-directory record at byte "
                        "{0} where the locator points",
                        Rec)
                    .str());
  Dir.Count = rd64(Z, 32);
  Dir.Size = rd64(Z, 40);
  Dir.Offset = rd64(Z, 48);
  Dir.Zip64 = true;
  if (!inBounds(Dir.Offset, Dir.Size, Rec))
    return fail(formatv("central directory (byte {0}, {1} bytes) is outside "
                        "the file",
                        Dir.Offset, Dir.Size)
                    .str());
  return Dir;
}

/// Applies the zip64 extended-information extra field (id 1): it holds,
/// in this order, only the values whose classic field is saturated.
Error Parser::readZip64Extra(ArrayRef<uint8_t> CD, uint64_t ExtraAt,
                             uint16_t ExtraLen, StringRef Name, uint64_t &Size,
                             uint64_t &CSize, uint64_t &Offset) {
  bool NeedSize = Size == 0xFFFFFFFF, NeedCSize = CSize == 0xFFFFFFFF,
       NeedOffset = Offset == 0xFFFFFFFF;
  uint64_t At = ExtraAt, End = ExtraAt + ExtraLen;
  while (At + 4 <= End) {
    uint16_t Id = rd16(CD, At), Len = rd16(CD, At + 2);
    if (At + 4 + Len > End)
      return fail("entry '" + Name + "' has an extra field past its end");
    if (Id == 1) {
      uint64_t P = At + 4, PEnd = P + Len;
      for (auto [Need, Field] : {std::pair<bool, uint64_t *>{NeedSize, &Size},
                                 {NeedCSize, &CSize},
                                 {NeedOffset, &Offset}}) {
        if (!Need)
          continue;
        if (P + 8 > PEnd)
          return fail("entry '" + Name + "' has a short zip64 extra field");
        *Field = rd64(CD, P);
        P += 8;
      }
      return Error::success();
    }
    At += 4 + Len;
  }
  if (NeedSize || NeedCSize || NeedOffset)
    return fail("entry '" + Name +
                "' needs zip64 values but has no zip64 "
                "extra field");
  return Error::success();
}

Error Parser::readEntries(const Directory &Dir, std::vector<ZipEntry> &Out) {
  // Each entry takes at least 46 bytes: a hostile count cannot make us
  // reserve more than the directory could hold.
  if (Dir.Count > Dir.Size / CentralHeaderSize)
    return fail(formatv("central directory claims {0} entries in {1} bytes",
                        Dir.Count, Dir.Size)
                    .str());
  Out.reserve(Dir.Count);
  Expected<Window> Whole = read(Dir.Offset, Dir.Size);
  if (!Whole)
    return Whole.takeError();
  // Offsets into CD are relative to the directory; errors report the
  // position in the file.
  ArrayRef<uint8_t> CD = Whole->Bytes;
  uint64_t At = 0, End = Dir.Size;
  for (uint64_t I = 0; I < Dir.Count; ++I) {
    if (!inBounds(At, CentralHeaderSize, End) ||
        rd32(CD, At) != CentralHeaderSig)
      return fail(formatv("bad central directory entry {0} at byte {1}", I,
                          Dir.Offset + At)
                      .str());
    uint16_t Flags = rd16(CD, At + 8), Method = rd16(CD, At + 10);
    uint64_t CSize = rd32(CD, At + 20), Size = rd32(CD, At + 24);
    uint16_t NameLen = rd16(CD, At + 28), ExtraLen = rd16(CD, At + 30),
             CommentLen = rd16(CD, At + 32);
    uint64_t Offset = rd32(CD, At + 42);
    uint64_t Var = uint64_t(NameLen) + ExtraLen + CommentLen;
    if (!inBounds(At + CentralHeaderSize, Var, End))
      return fail(formatv("central directory entry {0} at byte {1} runs past "
                          "the directory",
                          I, Dir.Offset + At)
                      .str());
    ZipEntry E;
    E.Name = std::string(
        reinterpret_cast<const char *>(CD.data() + At + CentralHeaderSize),
        NameLen);
    E.CRC = rd32(CD, At + 16);
    E.Method = Method;
    E.Flags = Flags;
    if (Error Err = readZip64Extra(CD, At + CentralHeaderSize + NameLen,
                                   ExtraLen, E.Name, Size, CSize, Offset))
      return Err;
    if (Method == 0 && CSize != Size)
      return fail(formatv("stored entry '{0}' has compressed size {1} != "
                          "size {2}",
                          E.Name, CSize, Size)
                      .str());
    E.HeaderOffset = Offset;
    E.Size = CSize; // the bytes the file holds, whatever the method
    if (Error Err = locateData(E))
      return Err;
    Out.push_back(std::move(E));
    At += CentralHeaderSize + Var;
  }
  return Error::success();
}

/// The data starts after the local header, its name and its extra field
/// (torch pads there to align data to 64 bytes).
Error Parser::locateData(ZipEntry &E) {
  uint64_t H = E.HeaderOffset;
  if (!inBounds(H, LocalHeaderSize, Bytes.size()))
    return fail(
        formatv("entry '{0}': no local header at byte {1}", E.Name, H).str());
  // One read for the fixed part and, usually, the name (the central
  // directory's name length is the expected one).
  uint64_t Want =
      std::min<uint64_t>(LocalHeaderSize + E.Name.size(), Bytes.size() - H);
  Expected<Window> Head = read(H, Want);
  if (!Head)
    return Head.takeError();
  ArrayRef<uint8_t> L = Head->Bytes;
  if (rd32(L, 0) != LocalHeaderSig)
    return fail(
        formatv("entry '{0}': no local header at byte {1}", E.Name, H).str());
  uint64_t NameLen = rd16(L, 26), ExtraLen = rd16(L, 28);
  uint64_t Data = H + LocalHeaderSize + NameLen + ExtraLen;
  if (!inBounds(H + LocalHeaderSize, NameLen + ExtraLen, Bytes.size()))
    return fail(formatv("entry '{0}': local header at byte {1} runs past the "
                        "end of the file",
                        E.Name, H)
                    .str());
  if (LocalHeaderSize + NameLen > L.size()) {
    Head = read(H, LocalHeaderSize + NameLen);
    if (!Head)
      return Head.takeError();
    L = Head->Bytes;
  }
  StringRef LocalName(
      reinterpret_cast<const char *>(L.data() + LocalHeaderSize), NameLen);
  if (LocalName != E.Name)
    return fail(formatv("entry '{0}': local header at byte {1} names '{2}'",
                        E.Name, H, LocalName)
                    .str());
  if (!inBounds(Data, E.Size, Bytes.size()))
    return fail(formatv("entry '{0}' ({1} bytes at byte {2}) runs past the "
                        "end of the file ({3} bytes)",
                        E.Name, E.Size, Data, Bytes.size())
                    .str());
  E.DataOffset = Data;
  return Error::success();
}

/// Two records sharing bytes would let one tensor alias another's data (or
/// a "zip bomb" reuse one range many times): refuse. Records must also end
/// before the central directory.
Error Parser::checkOverlaps(std::vector<ZipEntry> &Entries,
                            const Directory &Dir) {
  std::vector<const ZipEntry *> Sorted;
  for (const ZipEntry &E : Entries)
    Sorted.push_back(&E);
  llvm::sort(Sorted, [](const ZipEntry *A, const ZipEntry *B) {
    return A->HeaderOffset < B->HeaderOffset;
  });
  for (size_t I = 0; I < Sorted.size(); ++I) {
    const ZipEntry &E = *Sorted[I];
    uint64_t End = E.DataOffset + E.Size;
    if (End > Dir.Offset)
      return fail(
          formatv("entry '{0}' overlaps the central directory", E.Name).str());
    if (I + 1 < Sorted.size() && End > Sorted[I + 1]->HeaderOffset)
      return fail(formatv("entries '{0}' and '{1}' overlap", E.Name,
                          Sorted[I + 1]->Name)
                      .str());
  }
  return Error::success();
}

} // namespace

Expected<ZipArchive> ZipArchive::open(ArrayRef<uint8_t> Bytes,
                                      StringRef FileName, int FD) {
  Parser P(Bytes, FD, FileName);
  Expected<Parser::Directory> Dir = P.readDirectory();
  if (!Dir)
    return Dir.takeError();
  ZipArchive A;
  A.Bytes = Bytes;
  A.Zip64 = Dir->Zip64;
  if (Error Err = P.readEntries(*Dir, A.Entries))
    return Err;
  if (A.Entries.empty())
    return P.fail("archive has no entries");
  if (Error Err = P.checkOverlaps(A.Entries, *Dir))
    return Err;

  // The folder of the first record names them all; records outside it are
  // not torch's and are ignored, as torch ignores them.
  StringRef First = A.Entries.front().Name;
  size_t Slash = First.find('/');
  if (Slash == StringRef::npos || Slash == 0)
    return P.fail("first entry '" + First + "' is not inside a folder");
  A.Prefix = First.substr(0, Slash).str();
  for (size_t I = 0; I < A.Entries.size(); ++I) {
    StringRef Name = A.Entries[I].Name;
    if (!Name.consume_front(A.Prefix + "/"))
      continue;
    if (!A.ByRecord.try_emplace(Name, I).second)
      return P.fail("duplicate entry '" + A.Entries[I].Name + "'");
  }
  return A;
}

Error ZipArchive::checkStored(StringRef FileName) const {
  for (const ZipEntry &E : Entries) {
    if (E.Flags & 0x1)
      return createStringError(inconvertibleErrorCode(),
                               FileName + ": zip: entry '" + E.Name +
                                   "' is encrypted");
    if (E.Method != 0)
      return createStringError(
          inconvertibleErrorCode(),
          formatv("{0}: zip: entry '{1}' is compressed (method {2}); only "
                  "stored entries are supported",
                  FileName, E.Name, E.Method)
              .str());
  }
  return Error::success();
}

const ZipEntry *ZipArchive::find(StringRef Record) const {
  auto It = ByRecord.find(Record);
  return It == ByRecord.end() ? nullptr : &Entries[It->second];
}

bool looksLikeZip(ArrayRef<uint8_t> Bytes) {
  return Bytes.size() >= 4 && rd32(Bytes, 0) == LocalHeaderSig;
}

bool isTorchScriptZip(ArrayRef<uint8_t> Bytes) {
  if (!looksLikeZip(Bytes))
    return false;
  Expected<ZipArchive> A = ZipArchive::open(Bytes, "");
  if (!A) {
    consumeError(A.takeError());
    return false;
  }
  return A->find("constants.pkl") != nullptr;
}

} // namespace wopt
