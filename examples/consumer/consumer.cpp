//===- consumer.cpp - A tool of its own on wopt's libraries ---------------===//
//
//   wopt-consumer <pipeline> <input> <output.pth>
//
// Reads any checkpoint wopt reads, runs the pipeline, writes a .pth.
//
//===----------------------------------------------------------------------===//
#include "wopt/Pass/PassManager.h"
#include "wopt/Passes/Passes.h"
#include "wopt/Serialization/Serialization.h"
#include "wopt/Serialization/Torch.h"
#include "wopt/Version.h"
#include "llvm/Support/raw_ostream.h"

static llvm::Error repair(llvm::StringRef Pipeline, llvm::StringRef In,
                          llvm::StringRef Out) {
  llvm::Expected<std::unique_ptr<wopt::Checkpoint>> C = wopt::importFile(In);
  if (!C)
    return C.takeError();

  wopt::PassRegistry Registry;
  wopt::registerAllPasses(Registry);
  wopt::registerAllPipelines(Registry);
  wopt::PassManager PM;
  if (llvm::Error E = Registry.parsePipeline(Pipeline, PM))
    return E;
  if (llvm::Error E = PM.run(**C))
    return E;

  unsigned NumTensors = 0;
  (*C)->forEachTensor([&](wopt::TensorValue &) { ++NumTensors; });
  if (llvm::Error E = wopt::exportTorch(**C, Out))
    return E;
  llvm::outs() << "wopt-consumer (wopt " WOPT_VERSION_STRING "): " << In
               << " -> " << Out << ", " << NumTensors << " tensors\n";
  return llvm::Error::success();
}

int main(int Argc, char **Argv) {
  if (Argc != 4) {
    llvm::errs() << "usage: wopt-consumer <pipeline> <input> <output.pth>\n";
    return 2;
  }
  if (llvm::Error E = repair(Argv[1], Argv[2], Argv[3])) {
    llvm::errs() << "wopt-consumer: error: " << llvm::toString(std::move(E))
                 << "\n";
    return 2;
  }
  return 0;
}
