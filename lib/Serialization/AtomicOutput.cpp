//===- AtomicOutput.cpp - Streaming, all-or-nothing output files ----------===//
#include "AtomicOutput.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/raw_ostream.h"
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace wopt;
using namespace wopt::detail;
using namespace llvm;

/// Large enough that syscalls are cheap next to the copying, small enough
/// that exporting never holds much more than one chunk in memory.
static constexpr size_t ChunkSize = RangeCopier::ChunkSize;

static std::error_code errnoCode() {
  return std::error_code(errno, std::generic_category());
}

Expected<std::unique_ptr<AtomicOutput>> AtomicOutput::create(StringRef Path) {
  Expected<OutputTarget> T = resolveOutput(Path);
  if (!T)
    return T.takeError();
  std::unique_ptr<AtomicOutput> Out(new AtomicOutput());
  Out->Target = std::move(*T);
  Out->Dest = Path.str();
  Out->Buffer.reserve(ChunkSize);
  switch (Out->Target.TheKind) {
  case OutputTarget::Kind::Stdout:
    // What the driver already printed goes first.
    outs().flush();
    Out->FD = STDOUT_FILENO;
    Out->Dest = "<stdout>";
    Out->Copier.emplace(Out->FD);
    return Out;
  case OutputTarget::Kind::Direct: {
    // A FIFO blocks here until it has a reader, as `cat > fifo` does.
    int Flags =
        O_WRONLY | O_CLOEXEC | O_NOCTTY | (Out->Target.Truncate ? O_TRUNC : 0);
    do
      Out->FD = ::open(Out->Target.File.c_str(), Flags);
    while (Out->FD < 0 && errno == EINTR);
    if (Out->FD < 0)
      return Out->fail("cannot open", errnoCode());
    Out->Copier.emplace(Out->FD);
    return Out;
  }
  case OutputTarget::Kind::File:
    if (Error E = Out->openTemporary())
      return E;
    if (Error E = Out->keepModeAndOwner())
      return E;
    Out->Copier.emplace(Out->FD);
    return Out;
  }
  llvm_unreachable("covered switch");
}

/// A hidden name `.<name>.tmp-XXXXXX` exists only while a writer holds the
/// file under an exclusive flock (taken when the file is opened). SIGKILL
/// can still strike between linking such a name and renaming it (or during
/// a write through the named fallback); the lock then dies with the process,
/// and the next output to the same name removes what it left. A name whose
/// lock is held belongs to a running export and is kept.
static void removeStaleTemporaries(StringRef Dir, StringRef Name) {
  std::string Prefix = ("." + Name + ".tmp-").str();
  DIR *D = ::opendir(Dir.str().c_str());
  if (!D)
    return;
  while (const dirent *E = ::readdir(D)) {
    StringRef Entry(E->d_name);
    if (!Entry.starts_with(Prefix) || Entry.size() != Prefix.size() + 6)
      continue;
    SmallString<256> Path(Dir);
    sys::path::append(Path, Entry);
    int FD =
        ::open(Path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (FD < 0)
      continue;
    struct stat Open, Named;
    // The lock is taken, the name checked to be the same file, then it is
    // removed: a writer that locked it first is never robbed of its name.
    if (::flock(FD, LOCK_EX | LOCK_NB) == 0 && ::fstat(FD, &Open) == 0 &&
        ::lstat(Path.c_str(), &Named) == 0 && S_ISREG(Named.st_mode) &&
        Open.st_dev == Named.st_dev && Open.st_ino == Named.st_ino)
      ::unlink(Path.c_str());
    ::close(FD);
  }
  ::closedir(D);
}

/// O_TMPFILE gives a file with no name, which the kernel frees when the
/// descriptor closes, however the process ends. Linking it later needs
/// /proc/self/fd (linkat with AT_EMPTY_PATH would need a capability).
Error AtomicOutput::openTemporary() {
  std::string Dir = sys::path::parent_path(Target.File).str();
  if (Dir.empty())
    Dir = ".";
  removeStaleTemporaries(Dir, sys::path::filename(Target.File));
  // WOPT_NO_TMPFILE=1 takes the fallback everywhere: the tests of the
  // named temporary file run on filesystems that all have O_TMPFILE.
  static const bool CanLinkUnnamed =
      ::access("/proc/self/fd", X_OK) == 0 && !std::getenv("WOPT_NO_TMPFILE");
  if (CanLinkUnnamed) {
    FD = ::open(Dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    if (FD >= 0) {
      Unnamed = true;
      ::flock(FD, LOCK_EX); // kept by the name linkIntoPlace gives it
      return Error::success();
    }
    // Anything but "this filesystem has no O_TMPFILE" is the answer.
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
      return fail("cannot create a file in '" + Dir + "'", errnoCode());
  }
  SmallString<256> Model(Dir);
  sys::path::append(Model,
                    "." + sys::path::filename(Target.File) + ".tmp-%%%%%%");
  if (std::error_code EC = sys::fs::createUniqueFile(Model, FD, TempPath))
    return fail("cannot create a file in '" + Dir + "'", EC);
  ::flock(FD, LOCK_EX);
  sys::RemoveFileOnSignal(TempPath);
  return Error::success();
}

/// Before any byte is written, so that a private file's replacement is
/// never readable by others, not even while it is being written.
Error AtomicOutput::keepModeAndOwner() {
  if (!Target.Exists)
    return Error::success(); // 0666 & ~umask, from open()
  struct stat S;
  if (::fstat(FD, &S) != 0)
    return fail("cannot stat the temporary file", errnoCode());
  // Only root can give a file away; others keep the group if they may.
  if ((S.st_uid != Target.UID || S.st_gid != Target.GID) &&
      ::fchown(FD, ::geteuid() == 0 ? Target.UID : uid_t(-1), Target.GID) !=
          0 &&
      ::geteuid() == 0)
    return fail("cannot give the new file the old one's owner", errnoCode());
  // After fchown, which clears set-user-ID and set-group-ID bits.
  if (::fchmod(FD, Target.Mode) != 0)
    return fail("cannot give the new file the old one's mode", errnoCode());
  return Error::success();
}

Error AtomicOutput::nameOutput(Error E) const {
  return handleErrors(
      std::move(E), [&](std::unique_ptr<ErrorInfoBase> Info) -> Error {
        std::error_code EC = Info->convertToErrorCode();
        if (EC.category() != std::generic_category())
          return Error(std::move(Info));
        return createStringError(EC, Dest + ": " + Info->message());
      });
}

AtomicOutput::~AtomicOutput() {
  // Closing an unlinked O_TMPFILE is all it takes to drop it.
  if (FD >= 0 && Target.TheKind != OutputTarget::Kind::Stdout)
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

namespace {

/// Blocks every signal that can be blocked while alive: between linking the
/// file under a hidden name and renaming it, an interrupt would leave that
/// name behind.
class SignalBlocker {
public:
  SignalBlocker() {
    sigset_t All;
    sigfillset(&All);
    ::pthread_sigmask(SIG_BLOCK, &All, &Old);
  }
  ~SignalBlocker() { ::pthread_sigmask(SIG_SETMASK, &Old, nullptr); }

private:
  sigset_t Old;
};

} // namespace

/// linkat cannot replace a file: a new name is linked directly, an existing
/// file is replaced by linking a hidden unique name and renaming it over
/// the file (only SIGKILL between the two calls leaves that name).
Error AtomicOutput::linkIntoPlace() {
  std::string Proc = "/proc/self/fd/" + std::to_string(FD);
  const std::string &File = Target.File;
  if (!Target.Exists) {
    if (::linkat(AT_FDCWD, Proc.c_str(), AT_FDCWD, File.c_str(),
                 AT_SYMLINK_FOLLOW) == 0)
      return Error::success();
    if (errno != EEXIST)
      return fail("cannot link the output into place", errnoCode());
    // Created since create(): replaced like any existing file.
  }
  SmallString<256> Model(sys::path::parent_path(File));
  sys::path::append(Model, "." + sys::path::filename(File) + ".tmp-%%%%%%");
  SignalBlocker Block;
  for (unsigned Try = 0; Try < 128; ++Try) {
    SmallString<256> Hidden;
    sys::fs::createUniquePath(Model, Hidden, /*MakeAbsolute=*/false);
    if (::linkat(AT_FDCWD, Proc.c_str(), AT_FDCWD, Hidden.c_str(),
                 AT_SYMLINK_FOLLOW) != 0) {
      if (errno == EEXIST)
        continue;
      return fail("cannot link the output into place", errnoCode());
    }
    if (::rename(Hidden.c_str(), File.c_str()) != 0) {
      std::error_code EC = errnoCode();
      ::unlink(Hidden.c_str());
      return fail("cannot rename the new file into place", EC);
    }
    return Error::success();
  }
  return fail("cannot link the output into place",
              std::make_error_code(std::errc::file_exists));
}

Error AtomicOutput::commit() {
  if (Error E = flushBuffer())
    return E;
  if (Target.TheKind == OutputTarget::Kind::Stdout) {
    FD = -1;
    Committed = true;
    return Error::success();
  }
  if (Unnamed)
    if (Error E = linkIntoPlace())
      return E;
  int Closing = FD;
  FD = -1;
  if (::close(Closing) != 0)
    return fail("close failed", errnoCode());
  if (!TempPath.empty()) {
    if (std::error_code EC = sys::fs::rename(TempPath, Target.File))
      return fail("cannot rename the temporary file into place", EC);
    sys::DontRemoveFileOnSignal(TempPath);
  }
  Committed = true;
  return Error::success();
}
