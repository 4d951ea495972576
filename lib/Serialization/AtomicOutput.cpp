//===- AtomicOutput.cpp - Streaming, all-or-nothing output files ----------===//
#include "AtomicOutput.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"
#include <cerrno>
#include <unistd.h>

using namespace wopt;
using namespace wopt::detail;
using namespace llvm;

/// Large enough that syscalls are cheap next to the copying, small enough
/// that exporting never holds much more than one chunk in memory.
static constexpr size_t ChunkSize = 1 << 20;

Expected<std::unique_ptr<AtomicOutput>> AtomicOutput::create(StringRef Path) {
  std::unique_ptr<AtomicOutput> Out(new AtomicOutput());
  Out->Dest = Path.str();
  Out->Buffer.reserve(ChunkSize);
  if (Path == "-") { // stdout: streamed as is, nothing to rename
    Out->FD = STDOUT_FILENO;
    Out->Dest = "<stdout>";
    return Out;
  }
  SmallString<256> Dir(sys::path::parent_path(Path));
  if (Dir.empty())
    Dir = ".";
  SmallString<256> Model(Dir);
  sys::path::append(Model, "." + sys::path::filename(Path) + ".tmp-%%%%%%");
  if (std::error_code EC =
          sys::fs::createUniqueFile(Model, Out->FD, Out->TempPath))
    return createStringError(EC, "cannot create '%s' in '%s': %s",
                             Path.str().c_str(), Dir.c_str(),
                             EC.message().c_str());
  sys::RemoveFileOnSignal(Out->TempPath);
  return Out;
}

AtomicOutput::~AtomicOutput() {
  if (FD >= 0 && FD != STDOUT_FILENO)
    ::close(FD);
  if (!Committed && !TempPath.empty()) {
    sys::fs::remove(TempPath);
    sys::DontRemoveFileOnSignal(TempPath);
  }
}

Error AtomicOutput::fail(const Twine &What, std::error_code EC) {
  return createStringError(EC, Dest + ": " + What + ": " + EC.message());
}

Error AtomicOutput::flushBuffer() {
  const uint8_t *P = Buffer.data();
  size_t Left = Buffer.size();
  while (Left) {
    ssize_t N = ::write(FD, P, Left);
    if (N < 0 && errno == EINTR)
      continue;
    if (N <= 0)
      return fail("write failed", std::error_code(N < 0 ? errno : EIO,
                                                  std::generic_category()));
    P += N;
    Left -= N;
  }
  Buffer.clear();
  return Error::success();
}

Error AtomicOutput::write(ArrayRef<uint8_t> Bytes) {
  Pos += Bytes.size();
  while (!Bytes.empty()) {
    size_t Room = ChunkSize - Buffer.size();
    size_t N = std::min(Room, Bytes.size());
    Buffer.insert(Buffer.end(), Bytes.begin(), Bytes.begin() + N);
    Bytes = Bytes.drop_front(N);
    if (Buffer.size() == ChunkSize)
      if (Error E = flushBuffer())
        return E;
  }
  return Error::success();
}

Error AtomicOutput::writeZeros(uint64_t N) {
  static const uint8_t Zeros[256] = {};
  while (N) {
    uint64_t K = std::min<uint64_t>(N, sizeof(Zeros));
    if (Error E = write(ArrayRef<uint8_t>(Zeros, K)))
      return E;
    N -= K;
  }
  return Error::success();
}

Error AtomicOutput::alignTo(uint64_t Align) {
  return writeZeros(llvm::alignTo(Pos, Align) - Pos);
}

/// Kernel-side copy. Sets Fallback (and copies nothing more) when the
/// filesystems do not support it, so the caller can write from memory.
Error AtomicOutput::copyFromFile(int SrcFD, uint64_t SrcOffset, uint64_t Size,
                                 bool &Fallback) {
  Fallback = false;
  loff_t In = SrcOffset;
  while (Size) {
    ssize_t N = ::copy_file_range(SrcFD, &In, FD, nullptr,
                                  std::min<uint64_t>(Size, 1u << 30), 0);
    if (N < 0 && errno == EINTR)
      continue;
    if (N < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                  errno == EOPNOTSUPP || errno == EBADF)) {
      Fallback = true;
      return Error::success();
    }
    if (N < 0)
      return fail("copy failed",
                  std::error_code(errno, std::generic_category()));
    if (N == 0) // The source shrank under us.
      return fail("copy failed: input file truncated while writing",
                  std::make_error_code(std::errc::io_error));
    Size -= N;
    Pos += N;
  }
  return Error::success();
}

/// Appends bytes of the file SrcFD through the write buffer with pread, so
/// that the input mapping is never touched: a fault there maps the whole
/// page-cache folio around the byte (up to 2 MiB on ext4 with large
/// folios), and the resident set grew with the checkpoint.
Error AtomicOutput::readFromFile(int SrcFD, uint64_t SrcOffset, uint64_t Size) {
  Pos += Size;
  while (Size) {
    size_t Used = Buffer.size();
    size_t N = std::min<uint64_t>(ChunkSize - Used, Size);
    Buffer.resize(Used + N);
    ssize_t Got = ::pread(SrcFD, Buffer.data() + Used, N, SrcOffset);
    if (Got < 0 && errno == EINTR)
      Got = 0;
    else if (Got < 0)
      return fail("cannot read the input",
                  std::error_code(errno, std::generic_category()));
    else if (Got == 0)
      return fail("copy failed: input file truncated while writing",
                  std::make_error_code(std::errc::io_error));
    Buffer.resize(Used + Got);
    SrcOffset += Got;
    Size -= Got;
    if (Buffer.size() == ChunkSize)
      if (Error E = flushBuffer())
        return E;
  }
  return Error::success();
}

Error AtomicOutput::writeStorageRange(const Storage &S, uint64_t Offset,
                                      uint64_t Size) {
  assert(S.hasData() && Offset <= S.numBytes() &&
         Size <= S.numBytes() - Offset && "unchecked storage range");
  if (S.kind() != Storage::DataKind::Mapped || S.source()->fd() < 0)
    return write(S.bytes().slice(Offset, Size));
  int SrcFD = S.source()->fd();
  uint64_t From = S.sourceOffset() + Offset;
  if (Size >= ChunkSize) {
    if (Error E = flushBuffer())
      return E;
    // Writes after a partial kernel copy continue at the file position,
    // so a fallback resumes exactly where the copy stopped.
    uint64_t Before = Pos;
    bool Fallback;
    if (Error E = copyFromFile(SrcFD, From, Size, Fallback))
      return E;
    if (!Fallback)
      return Error::success();
    uint64_t Done = Pos - Before;
    From += Done;
    Size -= Done;
  }
  return readFromFile(SrcFD, From, Size);
}

Error AtomicOutput::commit() {
  if (Error E = flushBuffer())
    return E;
  if (TempPath.empty()) { // stdout
    FD = -1;
    Committed = true;
    return Error::success();
  }
  int Closing = FD;
  FD = -1;
  if (::close(Closing) != 0)
    return fail("close failed",
                std::error_code(errno, std::generic_category()));
  if (std::error_code EC = sys::fs::rename(TempPath, Dest))
    return fail("cannot rename the temporary file into place", EC);
  sys::DontRemoveFileOnSignal(TempPath);
  Committed = true;
  return Error::success();
}
