//===- ZipReader.h - Stored-entry zip archives, as torch.save writes ------===//
//
// Reads the central directory of a zip held in memory (a mapped file) and
// gives each record as a byte range of that memory: nothing is copied or
// decompressed. Only what torch.save writes is accepted: stored entries,
// no encryption, one disk. Every offset and size is checked against the
// buffer before use, so a hostile file cannot make a reader step outside it.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_SERIALIZATION_ZIPREADER_H
#define WOPT_SERIALIZATION_ZIPREADER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include <cstdint>
#include <string>
#include <vector>

namespace wopt {

/// One record of the archive.
struct ZipEntry {
  std::string Name;      ///< full name, e.g. "archive/data/0"
  uint64_t HeaderOffset; ///< local file header
  uint64_t DataOffset;   ///< first byte of the record's data
  uint64_t Size;         ///< bytes of data in the file (compressed size)
  uint32_t CRC;          ///< as the central directory says (0: not computed)
  uint16_t Method = 0;   ///< 0: stored
  uint16_t Flags = 0;    ///< general purpose flags (bit 0: encrypted)
};

class ZipArchive {
public:
  /// Parses the central directory of Bytes and checks every record's range.
  /// Errors are one line and start with FileName ("ck.pth: zip: ...").
  /// Compressed or encrypted entries are listed (a TorchScript archive can
  /// then be recognized by name); checkStored() refuses them.
  /// FD, when not -1, is an open descriptor of the file Bytes maps: the
  /// headers and the directory are then read with pread, so parsing leaves
  /// the mapping untouched (see Parser::read).
  static llvm::Expected<ZipArchive> open(llvm::ArrayRef<uint8_t> Bytes,
                                         llvm::StringRef FileName, int FD = -1);

  /// Fails on the first compressed or encrypted entry: data() of a stored
  /// entry is its content, of any other it is not.
  llvm::Error checkStored(llvm::StringRef FileName) const;

  /// Entries in central-directory order.
  llvm::ArrayRef<ZipEntry> entries() const { return Entries; }
  /// The folder of the first entry ("archive", "ck"); records are looked up
  /// relative to it.
  llvm::StringRef prefix() const { return Prefix; }
  /// The entry "<prefix>/<Record>", or null.
  const ZipEntry *find(llvm::StringRef Record) const;
  /// The data of E (a slice of the buffer given to open()).
  llvm::ArrayRef<uint8_t> data(const ZipEntry &E) const {
    return Bytes.slice(E.DataOffset, E.Size);
  }
  /// True when the end-of-central-directory came through zip64 records.
  bool isZip64() const { return Zip64; }

private:
  ZipArchive() = default;
  llvm::ArrayRef<uint8_t> Bytes;
  std::vector<ZipEntry> Entries;
  llvm::StringMap<size_t> ByRecord; ///< name without prefix -> index
  std::string Prefix;
  bool Zip64 = false;
};

/// True when Bytes start with a zip local file header ("PK\3\4").
bool looksLikeZip(llvm::ArrayRef<uint8_t> Bytes);
/// True when Bytes are a readable zip holding a `<prefix>/constants.pkl`
/// record: a TorchScript archive (torch.jit.save), not a checkpoint.
bool isTorchScriptZip(llvm::ArrayRef<uint8_t> Bytes);

} // namespace wopt

#endif
