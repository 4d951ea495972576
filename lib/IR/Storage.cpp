//===- Storage.cpp - Storages and mapped source files ---------------------===//
#include "wopt/IR/Storage.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace wopt;
using namespace llvm;

namespace {

Error stdinError(const Twine &What, int Errno) {
  return createStringError(std::error_code(Errno, std::generic_category()),
                           "<stdin>: " + What + ": " + std::strerror(Errno));
}

/// An unnamed file in $TMPDIR (else /tmp) that vanishes with its last
/// descriptor; where O_TMPFILE is missing, a named one unlinked at once.
Expected<int> createSpoolFile(std::string &Dir) {
  const char *Env = std::getenv("TMPDIR");
  Dir = Env && *Env ? Env : "/tmp";
  int FD = ::open(Dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (FD >= 0)
    return FD;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
    return stdinError("cannot create a temporary file in '" + Dir + "'", errno);
  SmallString<256> Model(Dir), Name;
  sys::path::append(Model, "wopt-stdin-%%%%%%");
  if (std::error_code EC = sys::fs::createUniqueFile(Model, FD, Name))
    return stdinError("cannot create a temporary file in '" + Dir + "'",
                      EC.value());
  ::unlink(Name.c_str());
  return FD;
}

/// Writes all of Data[0, Size) to FD.
Error writeAll(int FD, const char *Data, size_t Size, const std::string &Dir) {
  while (Size) {
    ssize_t N = ::write(FD, Data, Size);
    if (N < 0 && errno == EINTR)
      continue;
    if (N <= 0)
      return stdinError("cannot spool to a temporary file in '" + Dir + "'",
                        N < 0 ? errno : EIO);
    Data += N;
    Size -= N;
  }
  return Error::success();
}

/// Copies stdin to FD: spliced kernel-side from a pipe, else through a
/// fixed buffer, so that memory stays flat whatever the input's size.
Error spoolStdin(int FD, const std::string &Dir) {
  constexpr size_t Chunk = 1 << 20;
  bool Splice = true;
  std::vector<char> Buf;
  while (true) {
    if (Splice) {
      ssize_t N =
          ::splice(STDIN_FILENO, nullptr, FD, nullptr, Chunk, SPLICE_F_MOVE);
      if (N > 0)
        continue;
      if (N == 0)
        return Error::success();
      if (errno == EINTR)
        continue;
      if (errno != EINVAL)
        return stdinError("cannot spool to a temporary file in '" + Dir + "'",
                          errno);
      Splice = false; // not a pipe (a terminal, a socket)
      Buf.resize(Chunk);
    }
    ssize_t N = ::read(STDIN_FILENO, Buf.data(), Buf.size());
    if (N == 0)
      return Error::success();
    if (N < 0 && errno == EINTR)
      continue;
    if (N < 0)
      return stdinError("cannot read", errno);
    if (Error E = writeAll(FD, Buf.data(), N, Dir))
      return E;
  }
}

/// stdin as a file descriptor that can be mapped: stdin itself when it is
/// a regular file read from its start, else a spooled copy.
Expected<int> stdinAsFile() {
  struct stat S;
  if (::fstat(STDIN_FILENO, &S) == 0 && S_ISREG(S.st_mode) &&
      ::lseek(STDIN_FILENO, 0, SEEK_CUR) == 0) {
    int FD = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
    if (FD < 0)
      return stdinError("cannot duplicate", errno);
    return FD;
  }
  std::string Dir;
  Expected<int> FD = createSpoolFile(Dir);
  if (!FD)
    return FD.takeError();
  if (Error E = spoolStdin(*FD, Dir)) {
    ::close(*FD);
    return E;
  }
  return FD;
}

} // namespace

Expected<std::shared_ptr<SourceFile>> SourceFile::open(StringRef Path) {
  std::shared_ptr<SourceFile> F(new SourceFile());
  F->Path = Path.str();
  int FD;
  if (Path == "-") {
    Expected<int> In = stdinAsFile();
    if (!In)
      return In.takeError();
    FD = *In;
  } else if (std::error_code EC = sys::fs::openFileForRead(Path, FD)) {
    return createStringError(EC, Path + ": cannot open: " + EC.message());
  }
  StringRef Name = Path == "-" ? StringRef("<stdin>") : Path;
  sys::fs::file_status Status;
  if (std::error_code EC = sys::fs::status(FD, Status)) {
    ::close(FD);
    return createStringError(EC, Name + ": cannot stat: " + EC.message());
  }
  if (Status.type() == sys::fs::file_type::directory_file) {
    ::close(FD);
    return createStringError(inconvertibleErrorCode(),
                             Name + ": is a directory");
  }
  // Not volatile, no null terminator: large files are mapped, not read.
  auto Buf = MemoryBuffer::getOpenFile(sys::fs::convertFDToNativeFile(FD), Name,
                                       Status.getSize(),
                                       /*RequiresNullTerminator=*/false);
  if (!Buf) {
    ::close(FD);
    return createStringError(
        Buf.getError(), Name + ": cannot map: " + Buf.getError().message());
  }
  F->Buffer = std::move(*Buf);
  F->FD = FD;
  return F;
}

std::shared_ptr<SourceFile>
SourceFile::fromBuffer(std::unique_ptr<MemoryBuffer> Buffer, StringRef Name) {
  std::shared_ptr<SourceFile> F(new SourceFile());
  F->Path = Name.str();
  F->Buffer = std::move(Buffer);
  return F;
}

SourceFile::~SourceFile() {
  if (FD >= 0)
    ::close(FD);
}

std::shared_ptr<Storage> Storage::mapped(std::string Key, DType ElemType,
                                         std::shared_ptr<SourceFile> Source,
                                         uint64_t Offset, uint64_t NumBytes) {
  assert(Source && Offset <= Source->size() &&
         NumBytes <= Source->size() - Offset && "unchecked storage range");
  std::shared_ptr<Storage> S(new Storage());
  S->Key = std::move(Key);
  S->ElemType = ElemType;
  S->NumBytes = NumBytes;
  S->Kind = DataKind::Mapped;
  S->Source = std::move(Source);
  S->SourceOffset = Offset;
  return S;
}

std::shared_ptr<Storage> Storage::owned(std::string Key, DType ElemType,
                                        std::vector<uint8_t> Bytes) {
  std::shared_ptr<Storage> S(new Storage());
  S->Key = std::move(Key);
  S->ElemType = ElemType;
  S->setOwnedBytes(std::move(Bytes));
  return S;
}

std::shared_ptr<Storage> Storage::elided(std::string Key, DType ElemType,
                                         uint64_t NumBytes) {
  std::shared_ptr<Storage> S(new Storage());
  S->Key = std::move(Key);
  S->ElemType = ElemType;
  S->NumBytes = NumBytes;
  return S;
}

std::shared_ptr<Storage> Storage::computed(std::string Key, DType ElemType,
                                           uint64_t NumBytes,
                                           Producer Produce) {
  std::shared_ptr<Storage> S(new Storage());
  S->Key = std::move(Key);
  S->ElemType = ElemType;
  S->NumBytes = NumBytes;
  S->Kind = DataKind::Computed;
  S->Produce = std::move(Produce);
  return S;
}

ArrayRef<uint8_t> Storage::bytes() const {
  switch (Kind) {
  case DataKind::Elided:
    return {};
  case DataKind::Owned:
    return Owned;
  case DataKind::Mapped:
    return Source->bytes().slice(SourceOffset, NumBytes);
  case DataKind::Computed:
    std::call_once(Materialized, [this] {
      Cache.resize(NumBytes);
      // A producer fails only on a bug or an I/O error of its own source;
      // bytes() has no error channel, so that is fatal here.
      if (Error E = Produce(0, Cache))
        report_fatal_error(std::move(E));
    });
    return Cache;
  }
  llvm_unreachable("bad storage kind");
}

Error Storage::read(uint64_t Offset, MutableArrayRef<uint8_t> Out) const {
  assert(Offset <= NumBytes && Out.size() <= NumBytes - Offset &&
         "read past the end of a storage");
  if (Out.empty())
    return Error::success();
  switch (Kind) {
  case DataKind::Elided:
    return createStringError(inconvertibleErrorCode(),
                             "storage '" + Key + "' has no data (elided)");
  case DataKind::Computed:
    return Produce(Offset, Out);
  case DataKind::Owned:
  case DataKind::Mapped:
    if (!Out.empty())
      std::memcpy(Out.data(), bytes().data() + Offset, Out.size());
    return Error::success();
  }
  llvm_unreachable("bad storage kind");
}

void Storage::setOwnedBytes(std::vector<uint8_t> Bytes) {
  Owned = std::move(Bytes);
  NumBytes = Owned.size();
  Kind = DataKind::Owned;
  Produce = nullptr;
  Source.reset();
  SourceOffset = 0;
  SourceRecordName.clear();
  SourceCRC.reset();
}

void Storage::setSourceRecord(std::string Name, uint32_t CRC) {
  assert(Kind == DataKind::Mapped && "only mapped bytes come from a record");
  SourceRecordName = std::move(Name);
  SourceCRC = CRC ? std::optional<uint32_t>(CRC) : std::nullopt;
}
