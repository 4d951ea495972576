//===- TempDir.h - A scratch folder for unit tests --------------*- C++ -*-===//
#ifndef WOPT_TEST_UNIT_TEMPDIR_H
#define WOPT_TEST_UNIT_TEMPDIR_H

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include <string>

namespace wopt {
namespace test {

/// A fresh folder, removed with everything in it at the end of the test.
class TempDir {
public:
  explicit TempDir(llvm::StringRef Prefix = "wopt-test") {
    llvm::sys::fs::createUniqueDirectory(Prefix, Path);
  }
  ~TempDir() { llvm::sys::fs::remove_directories(Path); }
  std::string file(llvm::StringRef Name) const {
    llvm::SmallString<128> P(Path);
    llvm::sys::path::append(P, Name);
    return std::string(P);
  }
  /// Number of entries in the folder (no leftovers after a failed export).
  unsigned count() const {
    std::error_code EC;
    unsigned N = 0;
    for (llvm::sys::fs::directory_iterator I(Path, EC), E; I != E && !EC;
         I.increment(EC))
      ++N;
    return N;
  }

private:
  llvm::SmallString<128> Path;
};

} // namespace test
} // namespace wopt

#endif
