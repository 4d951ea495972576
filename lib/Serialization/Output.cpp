//===- Output.cpp - Where an output path leads, and whether it can be written //
//
// The classification of an output path (Output.h has the rules) and the
// checks the driver runs before any work; AtomicOutput does the writing.
//
//===----------------------------------------------------------------------===//
#include "wopt/Serialization/Output.h"
#include "AtomicOutput.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

using namespace wopt;
using namespace wopt::detail;
using namespace llvm;

namespace {

/// Symlinks followed before giving up, as the kernel does (ELOOP).
constexpr unsigned MaxSymlinkHops = 40;

Error outputError(StringRef Path, const Twine &Msg) {
  return createStringError(inconvertibleErrorCode(), Path + ": " + Msg);
}

Error outputError(StringRef Path, const Twine &What, int Errno) {
  return createStringError(std::error_code(Errno, std::generic_category()),
                           Path + ": " + What + ": " + std::strerror(Errno));
}

std::string parentOf(StringRef File) {
  StringRef Dir = sys::path::parent_path(File);
  return Dir.empty() ? std::string(".") : Dir.str();
}

/// Is the link File one of procfs's descriptor links (/proc/self/fd/N,
/// which /dev/stdout and /dev/fd/N lead to)? Its target names an open
/// file, maybe not by a path ("pipe:[123]"): it is opened, not resolved.
bool isDescriptorLink(StringRef File) {
  struct statfs FS;
  return ::statfs(parentOf(File).c_str(), &FS) == 0 &&
         FS.f_type == PROC_SUPER_MAGIC;
}

void recordIdentity(OutputTarget &T, const struct stat &S) {
  T.Mode = S.st_mode & 07777;
  T.UID = S.st_uid;
  T.GID = S.st_gid;
  T.Dev = S.st_dev;
  T.Ino = S.st_ino;
  T.Regular = S_ISREG(S.st_mode);
}

/// What exists at File (not a symlink): a file to replace, a device or FIFO
/// to write in place, or an error.
Error classify(OutputTarget &T, const struct stat &S) {
  recordIdentity(T, S);
  if (S_ISDIR(S.st_mode))
    return outputError(T.Path, "is a directory (the output must be a file; '" +
                                   T.Path + "/' writes a shard set into it)");
  if (S_ISSOCK(S.st_mode))
    return outputError(T.Path, "is a socket (the output must be a file, a "
                               "device or a FIFO)");
  T.TheKind = S_ISREG(S.st_mode) ? OutputTarget::Kind::File
                                 : OutputTarget::Kind::Direct;
  T.Exists = S_ISREG(S.st_mode);
  return Error::success();
}

/// A name that does not exist (yet): a new file, if its directory exists.
Error newFile(OutputTarget &T, const std::string &File) {
  T.TheKind = OutputTarget::Kind::File;
  T.File = File;
  std::string Dir = parentOf(File);
  struct stat S;
  if (::stat(Dir.c_str(), &S) != 0)
    return outputError(T.Path, "cannot create a file in '" + Dir + "'", errno);
  if (!S_ISDIR(S.st_mode))
    return outputError(T.Path, "cannot create a file in '" + Dir + "'",
                       ENOTDIR);
  return Error::success();
}

/// The link's target, relative to the link's own directory.
Expected<std::string> readLink(StringRef Path, const std::string &Link) {
  SmallString<256> Target;
  Target.resize(4096);
  ssize_t N = ::readlink(Link.c_str(), Target.data(), Target.size());
  if (N < 0)
    return outputError(Path, "cannot read the link '" + Link + "'", errno);
  Target.resize(N);
  if (sys::path::is_absolute(Target))
    return std::string(Target);
  SmallString<256> Joined(parentOf(Link));
  sys::path::append(Joined, Target);
  return std::string(Joined);
}

/// Can this process write into Dir? A trial unnamed file answers for every
/// reason at once (permissions, read-only mounts, quotas, a full inode
/// table); access() stands in where the filesystem has no O_TMPFILE.
Error checkDirectoryWritable(StringRef Path, const std::string &Dir) {
  int FD = ::open(Dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (FD >= 0) {
    ::close(FD);
    return Error::success();
  }
  if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
    if (::access(Dir.c_str(), W_OK | X_OK) == 0)
      return Error::success();
  return outputError(Path, "cannot create a file in '" + Dir + "'", errno);
}

/// The device and inode of Input, if it is a regular file.
std::optional<std::pair<uint64_t, uint64_t>> inputIdentity(StringRef Input) {
  struct stat S;
  int R = Input == "-" ? ::fstat(STDIN_FILENO, &S)
                       : ::stat(std::string(Input).c_str(), &S);
  if (R != 0 || !S_ISREG(S.st_mode))
    return std::nullopt;
  return std::make_pair(uint64_t(S.st_dev), uint64_t(S.st_ino));
}

} // namespace

Expected<OutputTarget> wopt::detail::resolveOutput(StringRef Path) {
  OutputTarget T;
  T.Path = Path.str();
  if (Path == "-") {
    T.TheKind = OutputTarget::Kind::Stdout;
    struct stat S;
    if (::fstat(STDOUT_FILENO, &S) == 0)
      recordIdentity(T, S);
    return T;
  }
  if (Path.empty())
    return outputError("''", "the output path is empty");
  std::string Cur = Path.str();
  for (unsigned Hops = 0;; ++Hops) {
    if (StringRef(Cur).ends_with("/"))
      return outputError(Path, "names a directory (the output must be a "
                               "file)");
    struct stat L;
    if (::lstat(Cur.c_str(), &L) != 0) {
      // ENOTDIR: a parent is a file, which newFile says.
      if (errno != ENOENT && errno != ENOTDIR)
        return outputError(Path, "cannot stat '" + Cur + "'", errno);
      // New, possibly at the end of a dangling link: created there.
      if (Error E = newFile(T, Cur))
        return E;
      return T;
    }
    if (!S_ISLNK(L.st_mode)) {
      T.File = Cur;
      if (Error E = classify(T, L))
        return E;
      return T;
    }
    if (Hops == MaxSymlinkHops)
      return outputError(Path, "cannot follow the symbolic links", ELOOP);
    if (isDescriptorLink(Cur)) {
      struct stat S;
      if (::stat(Cur.c_str(), &S) != 0)
        return outputError(Path, "cannot stat '" + Cur + "'", errno);
      T.File = Cur;
      if (Error E = classify(T, S))
        return E;
      // An open file: reopened and truncated, as a shell's '>' would.
      T.Truncate = T.Exists;
      T.Exists = false;
      T.TheKind = OutputTarget::Kind::Direct;
      return T;
    }
    Expected<std::string> Next = readLink(Path, Cur);
    if (!Next)
      return Next.takeError();
    Cur = std::move(*Next);
  }
}

Error wopt::checkOutputPath(StringRef Path, StringRef Input) {
  Expected<OutputTarget> T = resolveOutput(Path);
  if (!T)
    return T.takeError();
  if (!Input.empty()) {
    // Only a regular file can be "the same file": a terminal or a pipe is
    // often both stdin and stdout.
    auto In = inputIdentity(Input);
    if (In && T->Regular && In->first == T->Dev && In->second == T->Ino)
      return outputError(Path == "-" ? StringRef("<stdout>") : Path,
                         "is the input file (same device and inode as '" +
                             Input + "'): the output must be another file");
  }
  switch (T->TheKind) {
  case OutputTarget::Kind::Stdout:
    return Error::success();
  case OutputTarget::Kind::Direct:
    if (::access(T->File.c_str(), W_OK) != 0)
      return outputError(Path, "cannot write", errno);
    return Error::success();
  case OutputTarget::Kind::File:
    if (T->Exists && ::access(T->File.c_str(), W_OK) != 0)
      return outputError(Path, "cannot write", errno);
    return checkDirectoryWritable(Path, parentOf(T->File));
  }
  llvm_unreachable("covered switch");
}

namespace {

/// A raw_ostream over an AtomicOutput; the first write error is kept.
class OutputStream : public raw_ostream {
public:
  explicit OutputStream(AtomicOutput &Out)
      : raw_ostream(/*unbuffered=*/true), Out(Out) {}
  Error takeError() { return std::move(Err); }

private:
  void write_impl(const char *Ptr, size_t Size) override {
    if (!Err)
      Err = Out.write(StringRef(Ptr, Size));
  }
  uint64_t current_pos() const override { return Out.position(); }

  AtomicOutput &Out;
  Error Err = Error::success();
};

} // namespace

Error wopt::writeOutputFile(StringRef Path,
                            function_ref<Error(raw_ostream &)> Write) {
  auto Out = AtomicOutput::create(Path);
  if (!Out)
    return Out.takeError();
  OutputStream OS(**Out);
  Error E = Write(OS);
  OS.flush();
  Error WriteErr = OS.takeError();
  if (E) {
    consumeError(std::move(WriteErr));
    return E; // the destructor drops the temporary file
  }
  if (WriteErr)
    return WriteErr;
  return (*Out)->commit();
}
