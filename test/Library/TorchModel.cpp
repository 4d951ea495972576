//===- TorchModel.cpp - The bridge on a model trained in Python ---------===//
//
// The model of Inputs/torch_model.py, defined the same way in C++:
// conv + BatchNorm + a linear head tied to an embedding. Commands:
//
//   wopt-torch-model load DIR [copy|view] [params]
//       loads DIR/train.pth (a DDP training checkpoint written by Python)
//       through unwrap + canonicalize-prefix, runs forward on DIR/io.pth's
//       input, compares with Python's output, writes DIR/saved-<mode>.pth;
//       with "params": DIR/params.pth, no pipeline (the tied Parameter is
//       one object under two keys), writes DIR/saved-params-<mode>.pth
//   wopt-torch-model load-with DIR PIPELINE
//       only the load, with another pipeline: prints the error
//   wopt-torch-model write-view DIR
//       loads with views, writes to a parameter, checks the file unchanged
//   wopt-torch-model docs DIR
//       runs the bridge's snippets of docs/Library.md (torch.inc, extracted
//       when CMake configures) on the same files
//
//===----------------------------------------------------------------------===//
#include "wopt/Torch/Bridge.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"
// The modules it uses, not <torch/torch.h>: that costs ~7 s more to compile.
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include "torch.inc"

namespace {

constexpr int64_t Vocab = 16, Dim = 8;
constexpr const char *Repair =
    "unwrap{key=model},canonicalize-prefix{strip=module.}";

/// Registers a tensor another module owns: the head's weight is the
/// embedding's, as `head.weight = embed.weight` in Python.
struct TiedLinearImpl : torch::nn::Module {
  explicit TiedLinearImpl(torch::Tensor W) {
    weight = register_parameter("weight", std::move(W));
  }
  torch::Tensor forward(const torch::Tensor &X) {
    return torch::linear(X, weight);
  }
  torch::Tensor weight;
};
TORCH_MODULE(TiedLinear);

struct NetImpl : torch::nn::Module {
  NetImpl()
      : conv(register_module(
            "conv",
            torch::nn::Conv2d(torch::nn::Conv2dOptions(3, Dim, 3).padding(1)))),
        bn(register_module("bn", torch::nn::BatchNorm2d(Dim))),
        embed(register_module("embed", torch::nn::Embedding(Vocab, Dim))),
        head(register_module("head", TiedLinear(embed->weight))) {}

  torch::Tensor forward(const torch::Tensor &X, const torch::Tensor &Tokens) {
    torch::Tensor H = torch::relu(bn(conv(X)));
    H = H.mean({2, 3});
    H = H + embed(Tokens).mean(1);
    return head(H);
  }

  torch::nn::Conv2d conv;
  torch::nn::BatchNorm2d bn;
  torch::nn::Embedding embed;
  TiedLinear head;
};
TORCH_MODULE(Net);

int fail(llvm::Error E) {
  llvm::errs() << "error: " << llvm::toString(std::move(E)) << "\n";
  return 1;
}

int load(const std::string &Dir, wopt::TensorData Data, bool Params) {
  Net Model;
  wopt::TorchLoadOptions Opts;
  Opts.Pipeline = Params ? "" : Repair;
  Opts.Data = Data;
  llvm::Expected<wopt::TorchLoadResult> R = wopt::loadStateDict(
      *Model, Dir + (Params ? "/params.pth" : "/train.pth"), Opts);
  if (!R)
    return fail(R.takeError());
  llvm::outs() << "loaded " << R->NumLoaded << " entries (" << R->NumViewed
               << " viewed, " << R->NumCopied << " copied): ";
  wopt::printReport(R->Report, llvm::outs());
  llvm::outs() << "tie kept: "
               << (Model->head->weight.data_ptr() ==
                           Model->embed->weight.data_ptr()
                       ? "true"
                       : "false")
               << "\n";

  // The input and Python's output, read through the bridge too.
  auto IO = wopt::readStateDict(Dir + "/io.pth");
  if (!IO)
    return fail(IO.takeError());
  Model->eval();
  torch::NoGradGuard NoGrad;
  torch::Tensor Y = Model->forward((*IO)["x"], (*IO)["tokens"]);
  const torch::Tensor &Want = (*IO)["y"];
  double Diff = (Y - Want).abs().max().item<double>();
  bool Exact = torch::equal(Y, Want);
  llvm::outs() << "c++ forward: max abs diff " << Diff << ", bit-exact "
               << (Exact ? "true" : "false") << "\n";

  std::string Mode = std::string(Params ? "params-" : "") +
                     (Data == wopt::TensorData::View ? "view" : "copy");
  if (llvm::Error E =
          wopt::saveStateDict(*Model, Dir + "/saved-" + Mode + ".pth"))
    return fail(std::move(E));
  llvm::outs() << "saved " << Dir << "/saved-" << Mode << ".pth\n";
  return Exact ? 0 : 1;
}

int loadWith(const std::string &Dir, const std::string &Pipeline) {
  Net Model;
  torch::Tensor Before = Model->conv->weight.clone();
  wopt::TorchLoadOptions Opts;
  Opts.Pipeline = Pipeline;
  llvm::Expected<wopt::TorchLoadResult> R =
      wopt::loadStateDict(*Model, Dir + "/train.pth", Opts);
  if (R) {
    llvm::outs() << "loaded " << R->NumLoaded << " entries\n";
    return 0;
  }
  int Code = fail(R.takeError());
  llvm::outs() << "module unchanged: "
               << (torch::equal(Before, Model->conv->weight) ? "true" : "false")
               << "\n";
  return Code;
}

/// Views are copy-on-write: training on them never writes the file.
int writeView(const std::string &Dir) {
  std::string Path = Dir + "/train.pth";
  auto Original = llvm::MemoryBuffer::getFile(Path);
  if (!Original)
    return fail(llvm::errorCodeToError(Original.getError()));
  std::string Before = (*Original)->getBuffer().str();
  Net Model;
  wopt::TorchLoadOptions Opts;
  Opts.Pipeline = Repair;
  Opts.Data = wopt::TensorData::View;
  llvm::Expected<wopt::TorchLoadResult> R =
      wopt::loadStateDict(*Model, Path, Opts);
  if (!R)
    return fail(R.takeError());
  {
    torch::NoGradGuard NoGrad;
    for (torch::Tensor &P : Model->parameters())
      P.add_(1.0);
  }
  auto After = llvm::MemoryBuffer::getFile(Path);
  if (!After)
    return fail(llvm::errorCodeToError(After.getError()));
  llvm::outs() << "wrote to " << R->NumViewed << " viewed entries; file "
               << (Before == (*After)->getBuffer() ? "unchanged" : "CHANGED")
               << "\n";
  return 0;
}

int check(llvm::Error E) {
  if (!E)
    return 0;
  llvm::outs() << "error: " << llvm::toString(std::move(E)) << "\n";
  return 1;
}

int docs(const std::string &Dir) {
  std::string Train = Dir + "/train.pth", IO = Dir + "/io.pth";
  Net Copied, Viewed;
  torch::nn::Linear Other(3, 3);
  llvm::outs() << "loadTrainingCheckpoint: ";
  if (check(loadTrainingCheckpoint(*Copied, Train)))
    return 1;
  llvm::outs() << "wrong module: ";
  check(loadTrainingCheckpoint(*Other, Train));
  llvm::outs() << "loadForInference: ";
  if (check(loadForInference(*Viewed, Train, Repair)))
    return 1;

  llvm::Expected<torch::Tensor> X = tensorNamed(IO, "x"),
                                Tokens = tensorNamed(IO, "tokens"),
                                Y = tensorNamed(IO, "y"),
                                Nope = tensorNamed(IO, "nope");
  if (check(X.takeError()) || check(Tokens.takeError()) || check(Y.takeError()))
    return 1;
  llvm::outs() << "tensorNamed nope: ";
  check(Nope.takeError());
  torch::NoGradGuard NoGrad;
  llvm::outs() << "viewed forward bit-exact: "
               << (torch::equal(Viewed->forward(*X, *Tokens), *Y) ? "true"
                                                                  : "false")
               << "\n";
  if (check(saveForPython(*Copied, Dir + "/doc-saved.pth")) ||
      check(writeModuleManifest(*Copied, Dir + "/net.json")))
    return 1;
  llvm::outs() << "saved doc-saved.pth and net.json\n";
  return 0;
}

} // namespace

int main(int Argc, char **Argv) {
  torch::set_num_threads(1);
  std::vector<std::string> Args(Argv + 1, Argv + Argc);
  if (Args.size() >= 2 && Args[0] == "load")
    return load(Args[1],
                Args.size() > 2 && Args[2] == "view" ? wopt::TensorData::View
                                                     : wopt::TensorData::Copy,
                Args.size() > 3 && Args[3] == "params");
  if (Args.size() == 3 && Args[0] == "load-with")
    return loadWith(Args[1], Args[2]);
  if (Args.size() == 2 && Args[0] == "write-view")
    return writeView(Args[1]);
  if (Args.size() == 2 && Args[0] == "docs")
    return docs(Args[1]);
  llvm::errs() << "usage: wopt-torch-model load DIR [copy|view] [params] | "
                  "load-with "
                  "DIR PIPELINE | write-view DIR | docs DIR\n";
  return 2;
}
