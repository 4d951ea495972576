//===- DocSnippets.cpp - Runs the C++ snippets of docs/Library.md --------===//
//
//   wopt-doc-snippets DIR TEACHER.pth
//
// core.inc is every ```cpp block of docs/Library.md that needs neither
// LibTorch nor a main(), extracted at configure time (each block keeps its
// line numbers in the document). This driver calls the functions the blocks
// define, on files it makes in DIR and on the bundled DINOv2 teacher; a
// block renamed or changed in the document breaks this build or
// doc-snippets.test.
//
//===----------------------------------------------------------------------===//
#include "core.inc"

#include "wopt/IR/StateDict.h"
#include "wopt/Manifest/Manifest.h"
#include "wopt/Serialization/Torch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

namespace {

void check(llvm::Error E) {
  if (E) {
    llvm::errs() << "error: " << llvm::toString(std::move(E)) << "\n";
    std::exit(1);
  }
}

std::unique_ptr<wopt::Checkpoint> import(llvm::StringRef Path) {
  auto C = wopt::importFile(Path);
  check(C.takeError());
  return std::move(*C);
}

void section(llvm::StringRef Name) { llvm::outs() << "== " << Name << "\n"; }

} // namespace

int main(int Argc, char **Argv) {
  if (Argc != 3) {
    llvm::errs() << "usage: wopt-doc-snippets DIR TEACHER.pth\n";
    return 2;
  }
  std::string Dir = Argv[1], Teacher = Argv[2];
  llvm::raw_ostream &OS = llvm::outs();

  section("printTinyCheckpoint");
  check(printTinyCheckpoint(OS));

  // A DDP-style file for stripModulePrefix: the tiny checkpoint, module.*.
  std::unique_ptr<wopt::Checkpoint> Tiny = makeTinyCheckpoint();
  check(wopt::renameKeys(
      *Tiny->stateDict(),
      [](llvm::StringRef K) -> std::optional<std::string> {
        return "module." + K.str();
      },
      "test"));
  check(wopt::exportTorch(*Tiny, Dir + "/ddp.pth"));
  section("stripModulePrefix");
  check(stripModulePrefix(Dir + "/ddp.pth", Dir + "/plain.pth"));
  section("listStateDict");
  listStateDict(*import(Dir + "/plain.pth"), OS);
  listStateDict(*import(Teacher), OS);

  section("convertFile");
  check(convertFile(Dir + "/plain.pth", Dir + "/plain.safetensors", OS));
  check(convertFile(Dir + "/plain.safetensors", Dir + "/plain.wopt",
                    llvm::nulls()));
  llvm::Error Bad =
      convertFile(Dir + "/plain.wopt", Dir + "/plain.txt", llvm::nulls());
  OS << "to .txt: " << llvm::toString(std::move(Bad)) << "\n";
  listStateDict(*import(Dir + "/plain.wopt"), OS);

  section("runPipeline");
  std::unique_ptr<wopt::Checkpoint> Eval = import(Teacher);
  check(runPipeline(*Eval, "dinov2-eval", OS));
  llvm::Error BadPipeline = runPipeline(*Eval, "dinov2-eval{bogus=1}", OS);
  OS << llvm::toString(std::move(BadPipeline)) << "\n";

  section("matchesManifest");
  {
    std::error_code EC;
    llvm::raw_fd_ostream M(Dir + "/eval.json", EC, llvm::sys::fs::OF_Text);
    check(llvm::errorCodeToError(EC));
    check(wopt::emitManifest(*Eval, M));
  }
  llvm::Expected<bool> Same = matchesManifest(*Eval, Dir + "/eval.json", OS);
  check(Same.takeError());
  OS << "eval matches: " << (*Same ? "true" : "false") << "\n";
  std::unique_ptr<wopt::Checkpoint> Raw = import(Teacher);
  check(runPipeline(*Raw, "unwrap{key=teacher}", llvm::nulls()));
  llvm::Expected<bool> Diff = matchesManifest(*Raw, Dir + "/eval.json", OS);
  check(Diff.takeError());
  OS << "teacher matches: " << (*Diff ? "true" : "false") << "\n";
  return 0;
}
