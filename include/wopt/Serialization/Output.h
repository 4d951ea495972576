//===- Output.h - How wopt writes an output path ----------------*- C++ -*-===//
//
// Every exporter, the driver's text, summary and manifest outputs and the
// verification report write through one mechanism (docs/Driver.md, "Output
// files"), that of a careful Unix tool:
//
//  - "-" is stdout. A character or block device, a FIFO, or an open
//    descriptor (/dev/stdout, /proc/self/fd/N) is opened and written in
//    place, streamed: never replaced, never renamed over.
//  - A regular file, or a name that does not exist yet, is written to an
//    unnamed temporary file (O_TMPFILE) in the directory it will live in,
//    which is linked in, over the old file, only once everything was
//    written: a failure, a signal or a SIGKILL leaves the old file as it was
//    and no temporary file. Where the filesystem has no O_TMPFILE, a hidden
//    ".<name>.tmp-XXXXXX" takes its place (removed on failure and on
//    catchable signals).
//  - A symlink is followed: the file it points to is replaced, atomically,
//    in its own directory; the link stays.
//  - A file that is replaced keeps its mode (and, as root, its owner and
//    group); a new file gets 0666 & ~umask.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_SERIALIZATION_OUTPUT_H
#define WOPT_SERIALIZATION_OUTPUT_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

namespace wopt {

/// Checks, before any work is done, that Path can be written as described
/// above: not a directory or a socket, its directory exists and is
/// writable (a trial unnamed file is created there), an existing file is
/// writable, and, when Input is given ("-" for stdin), Path is not the
/// input file itself (same device and inode, whatever the spelling or
/// links). Opens nothing that could block (a FIFO is only stat'ed). The
/// error is one line that starts with Path.
llvm::Error checkOutputPath(llvm::StringRef Path, llvm::StringRef Input = "");

/// Writes what Write prints to Path with the semantics above. For a file,
/// nothing is left behind when Write or the writing fails.
llvm::Error
writeOutputFile(llvm::StringRef Path,
                llvm::function_ref<llvm::Error(llvm::raw_ostream &)> Write);

} // namespace wopt

#endif
