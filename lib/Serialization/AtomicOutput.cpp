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
static constexpr size_t ChunkSize = RangeCopier::ChunkSize;

Expected<std::unique_ptr<AtomicOutput>> AtomicOutput::create(StringRef Path) {
  std::unique_ptr<AtomicOutput> Out(new AtomicOutput());
  Out->Dest = Path.str();
  Out->Buffer.reserve(ChunkSize);
  if (Path == "-") { // stdout: streamed as is, nothing to rename
    Out->FD = STDOUT_FILENO;
    Out->Dest = "<stdout>";
    Out->Copier.emplace(Out->FD);
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
  Out->Copier.emplace(Out->FD);
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

Error AtomicOutput::fail(Error E) {
  return createStringError(inconvertibleErrorCode(),
                           Dest + ": " + toString(std::move(E)));
}

Error AtomicOutput::flushBuffer() {
  Error E = writeAll(FD, Buffer);
  Buffer.clear();
  return E ? fail(std::move(E)) : Error::success();
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

/// Appends bytes of the file SrcFD through the write buffer with pread:
/// small ranges are gathered into one write instead of a syscall each.
Error AtomicOutput::readFromFile(int SrcFD, uint64_t SrcOffset, uint64_t Size) {
  Pos += Size;
  while (Size) {
    size_t Used = Buffer.size();
    size_t N = std::min<uint64_t>(ChunkSize - Used, Size);
    Buffer.resize(Used + N);
    if (Error E = preadAll(SrcFD, SrcOffset,
                           MutableArrayRef<uint8_t>(Buffer.data() + Used, N)))
      return fail(std::move(E));
    SrcOffset += N;
    Size -= N;
    if (Buffer.size() == ChunkSize)
      if (Error E = flushBuffer())
        return E;
  }
  return Error::success();
}

/// Appends bytes of a computed storage, produced a buffer at a time: the
/// result is never whole in memory.
Error AtomicOutput::produce(const Storage &S, uint64_t Offset, uint64_t Size) {
  Pos += Size;
  while (Size) {
    size_t Used = Buffer.size();
    size_t N = std::min<uint64_t>(ChunkSize - Used, Size);
    Buffer.resize(Used + N);
    if (Error E =
            S.read(Offset, MutableArrayRef<uint8_t>(Buffer.data() + Used, N)))
      return E;
    Offset += N;
    Size -= N;
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
  if (S.kind() == Storage::DataKind::Computed)
    return produce(S, Offset, Size);
  if (S.kind() != Storage::DataKind::Mapped || S.source()->fd() < 0)
    return write(S.bytes().slice(Offset, Size));
  int SrcFD = S.source()->fd();
  uint64_t From = S.sourceOffset() + Offset;
  if (Size < ChunkSize)
    return readFromFile(SrcFD, From, Size);
  // The bytes pass unchanged and no CRC is needed: the kernel copies them.
  if (Error E = flushBuffer())
    return E;
  if (Error E = Copier->copy(SrcFD, From, Size, /*CRC=*/nullptr))
    return fail(std::move(E));
  Pos += Size;
  return Error::success();
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
