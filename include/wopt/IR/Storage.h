//===- Storage.h - Tensor storages and the files they live in --*- C++ -*-===//
//
// A Storage is the byte buffer behind one or more tensors. Imported storages
// are slices of a read-only mapping of the input file (zero copy); a pass that
// changes data gives the storage bytes it owns; a computed storage produces
// its bytes on demand from other storages (a cast), so an exporter can
// stream them without holding the whole result; a storage parsed from text
// with its data elided has no bytes at all.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_IR_STORAGE_H
#define WOPT_IR_STORAGE_H

#include "wopt/IR/DType.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace wopt {

/// An input file mapped read-only. Storages keep it alive; the open
/// descriptor lets exporters copy ranges kernel-side (copy_file_range).
class SourceFile {
public:
  /// Maps Path. "-" is stdin: mapped itself when it is a regular file,
  /// else first copied to an unnamed temporary file in $TMPDIR (or /tmp),
  /// so memory stays flat for any size. The error names the file.
  static llvm::Expected<std::shared_ptr<SourceFile>> open(llvm::StringRef Path);
  /// Wraps bytes already in memory (tests, stdin). FD is -1.
  static std::shared_ptr<SourceFile>
  fromBuffer(std::unique_ptr<llvm::MemoryBuffer> Buffer, llvm::StringRef Name);
  ~SourceFile();

  llvm::StringRef path() const { return Path; }
  llvm::ArrayRef<uint8_t> bytes() const {
    return {reinterpret_cast<const uint8_t *>(Buffer->getBufferStart()),
            Buffer->getBufferSize()};
  }
  uint64_t size() const { return Buffer->getBufferSize(); }
  /// Open read-only descriptor, or -1 when the bytes did not come from a file.
  int fd() const { return FD; }

private:
  SourceFile() = default;
  std::string Path;
  std::unique_ptr<llvm::MemoryBuffer> Buffer;
  int FD = -1;
};

class Storage {
public:
  enum class DataKind { Elided, Mapped, Owned, Computed };

  /// Fills Out with the storage's bytes [Offset, Offset + Out.size()).
  using Producer = std::function<llvm::Error(
      uint64_t Offset, llvm::MutableArrayRef<uint8_t> Out)>;

  /// Bytes [Offset, Offset + NumBytes) of Source. The caller has checked the
  /// range (asserted here).
  static std::shared_ptr<Storage> mapped(std::string Key, DType ElemType,
                                         std::shared_ptr<SourceFile> Source,
                                         uint64_t Offset, uint64_t NumBytes);
  static std::shared_ptr<Storage> owned(std::string Key, DType ElemType,
                                        std::vector<uint8_t> Bytes);
  static std::shared_ptr<Storage> elided(std::string Key, DType ElemType,
                                         uint64_t NumBytes);
  /// NumBytes produced on demand by Produce (which keeps alive whatever it
  /// reads from).
  static std::shared_ptr<Storage> computed(std::string Key, DType ElemType,
                                           uint64_t NumBytes, Producer Produce);

  /// The key the file gave it ("0", "1", ...); exporters may renumber.
  const std::string &key() const { return Key; }
  void setKey(std::string K) { Key = std::move(K); }
  /// The element type of the storage as recorded in the file (the class of a
  /// typed storage; UInt8 for an UntypedStorage).
  DType elementType() const { return ElemType; }
  void setElementType(DType T) { ElemType = T; }
  uint64_t numBytes() const { return NumBytes; }
  /// The device torch saved it from ("cpu", "cuda:0", ...), written back as
  /// it was; torch.load maps it with map_location.
  const std::string &location() const { return Location; }
  void setLocation(std::string L) { Location = std::move(L); }
  DataKind kind() const { return Kind; }
  /// An empty storage has all of its (no) bytes, whatever its kind.
  bool hasData() const { return Kind != DataKind::Elided || NumBytes == 0; }
  /// The bytes (empty when elided). Touching them faults mapped pages in; a
  /// computed storage is materialised (once) into memory: exporters should
  /// stream it with read() instead.
  llvm::ArrayRef<uint8_t> bytes() const;
  /// Copies bytes [Offset, Offset + Out.size()) into Out, for every kind but
  /// Elided (an error). The range must lie inside the storage (asserted).
  llvm::Error read(uint64_t Offset, llvm::MutableArrayRef<uint8_t> Out) const;
  /// For mapped storages: the file and the byte offset in it.
  const std::shared_ptr<SourceFile> &source() const { return Source; }
  uint64_t sourceOffset() const { return SourceOffset; }
  /// Replaces the data with bytes the IR owns (a data-changing pass).
  void setOwnedBytes(std::vector<uint8_t> Bytes);

  /// A mapped storage that is a whole zip record: the record's name and the
  /// CRC-32 the input's central directory gives for it. An exporter copying
  /// the bytes unchanged into a record of its own reuses the CRC instead of
  /// computing it. Not set for CRC 0 (torch >= 2.6 may write 0: unknown).
  void setSourceRecord(std::string Name, uint32_t CRC);
  /// The CRC of the source record, if the bytes are still exactly its data.
  std::optional<uint32_t> sourceCRC() const { return SourceCRC; }
  /// The source record's name ("archive/data/3"), empty when not from one.
  const std::string &sourceRecord() const { return SourceRecordName; }

private:
  Storage() = default;
  std::string Key;
  std::string Location = "cpu";
  DType ElemType = DType::UInt8;
  uint64_t NumBytes = 0;
  DataKind Kind = DataKind::Elided;
  std::shared_ptr<SourceFile> Source;
  uint64_t SourceOffset = 0;
  std::string SourceRecordName;
  std::optional<uint32_t> SourceCRC;
  std::vector<uint8_t> Owned;
  Producer Produce;
  /// bytes() of a computed storage: filled on first use.
  mutable std::once_flag Materialized;
  mutable std::vector<uint8_t> Cache;
};

using StorageRef = std::shared_ptr<Storage>;

} // namespace wopt

#endif
