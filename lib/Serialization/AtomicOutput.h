//===- AtomicOutput.h - Streaming, all-or-nothing output files --*- C++ -*-===//
//
// The mechanism behind wopt/Serialization/Output.h. A file output is
// written to an unnamed temporary file (O_TMPFILE) in the directory of the
// file it replaces (symlinks followed) and linked over it only when
// everything was written: on any error, a signal, SIGKILL, or if commit()
// is never reached, nothing is left behind and the old file is untouched.
// Devices, FIFOs and "-" are written in place.
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

/// Where an output path leads (the rules of Output.h).
struct OutputTarget {
  enum class Kind {
    Stdout,
    Direct, ///< a device, a FIFO or a descriptor link: written in place
    File,   ///< a regular file, new or replaced, written atomically
  };
  Kind TheKind = Kind::File;
  std::string Path; ///< as given: what messages name
  /// Direct: what to open. File: the file to create or replace, symlinks
  /// followed.
  std::string File;
  bool Exists = false;   ///< File: there is a file to replace
  bool Truncate = false; ///< Direct: a regular file behind a descriptor link
  /// Of what Path leads to, when it exists: the mode and owner a replaced
  /// file keeps, the identity that tells it is the input.
  unsigned Mode = 0, UID = 0, GID = 0;
  uint64_t Dev = 0, Ino = 0;
  bool Regular = false; ///< what exists there is a regular file
};

/// Follows Path's symlinks and classifies it. Errors (a directory, a
/// socket, a missing directory, a link loop) are one line starting with
/// Path. Checks nothing about permissions (checkOutputPath does).
llvm::Expected<OutputTarget> resolveOutput(llvm::StringRef Path);

class AtomicOutput {
public:
  /// Opens the output Path leads to (Output.h): an unnamed temporary file
  /// beside a file output (a hidden named one where the filesystem has no
  /// O_TMPFILE), or the device, FIFO or stdout itself.
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
  /// An error of a writer that streamed to fd() on its own: an I/O error
  /// (an errno) gets the output's name in front, as this class's own do.
  llvm::Error nameOutput(llvm::Error E) const;
  /// Flushes; a file output is then linked in place of the destination,
  /// a direct one closed.
  llvm::Error commit();

private:
  AtomicOutput() = default;
  llvm::Error flushBuffer();
  llvm::Error fail(const llvm::Twine &What, std::error_code EC);
  /// E (from DataCopy.h) with the destination's name in front.
  llvm::Error fail(llvm::Error E);
  llvm::Error readFromFile(int SrcFD, uint64_t SrcOffset, uint64_t Size);
  llvm::Error produce(const Storage &S, uint64_t Offset, uint64_t Size);

  llvm::Error openTemporary();
  llvm::Error keepModeAndOwner();
  llvm::Error linkIntoPlace();

  OutputTarget Target;
  std::string Dest; ///< the path as given, for messages
  /// The named temporary file (fallback), or empty.
  llvm::SmallString<128> TempPath;
  /// FD is an O_TMPFILE: commit() links it, closing it drops it.
  bool Unnamed = false;
  int FD = -1;
  bool Committed = false;
  uint64_t Pos = 0;
  std::vector<uint8_t> Buffer;
  std::optional<RangeCopier> Copier;
};

} // namespace detail
} // namespace wopt

#endif
