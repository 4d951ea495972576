//===- TorchBridgeTest.cpp - The LibTorch bridge (Wopt::Torch) -----------===//
#include "wopt/IR/StateDict.h"
#include "wopt/Serialization/Serialization.h"
#include "wopt/Torch/Bridge.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "gtest/gtest.h"
// The modules it uses, not <torch/torch.h>: that costs ~7 s more to compile.
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>

using namespace wopt;
using namespace llvm;

namespace {

class TempDir {
public:
  TempDir() { sys::fs::createUniqueDirectory("wopt-torch", Path); }
  ~TempDir() { sys::fs::remove_directories(Path); }
  std::string file(StringRef Name) const {
    SmallString<128> P(Path);
    sys::path::append(P, Name);
    return std::string(P);
  }

private:
  SmallString<128> Path;
};

std::string fileBytes(StringRef Path) {
  auto B = MemoryBuffer::getFile(Path);
  return B ? (*B)->getBuffer().str() : std::string();
}

void writeFile(StringRef Path, StringRef Bytes) {
  std::error_code EC;
  raw_fd_ostream OS(Path, EC);
  ASSERT_FALSE(EC);
  OS << Bytes;
}

std::string errorText(Error E) { return toString(std::move(E)); }

template <typename T> std::string errorText(Expected<T> &E) {
  return E ? std::string() : toString(E.takeError());
}

/// Saves Tensors with the bridge and reads the file back through wopt.
torch::OrderedDict<std::string, torch::Tensor>
roundTrip(const torch::OrderedDict<std::string, torch::Tensor> &Tensors,
          const TempDir &Dir, TensorData Data = TensorData::Copy) {
  auto C = checkpointFromTensors(Tensors);
  EXPECT_TRUE(bool(C)) << errorText(C);
  std::string Path = Dir.file("t.pth");
  EXPECT_FALSE(bool(exportTorch(**C, Path)));
  TorchLoadOptions Opts;
  Opts.Data = Data;
  auto Back = readStateDict(Path, Opts);
  EXPECT_TRUE(bool(Back)) << errorText(Back);
  return Back ? std::move(*Back)
              : torch::OrderedDict<std::string, torch::Tensor>();
}

/// A checkpoint {Name: tensor} over Stor.
std::unique_ptr<Checkpoint>
oneTensor(StringRef Name, DType T, ArrayRef<int64_t> Shape, StorageRef Stor) {
  auto TV = std::make_shared<TensorValue>();
  TV->setDType(T);
  TV->setShape(Shape);
  TV->setStorage(std::move(Stor));
  auto Root = std::make_shared<DictValue>(true);
  Root->set(Name, TV);
  return std::make_unique<Checkpoint>(Root);
}

struct Block : torch::nn::Module {
  Block() {
    fc = register_module(
        "fc", torch::nn::Linear(torch::nn::LinearOptions(4, 3).bias(false)));
    norm = register_module("norm", torch::nn::BatchNorm1d(3));
    scale = register_parameter("scale", torch::ones({3}));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
  torch::Tensor scale;
};

struct Model : torch::nn::Module {
  Model() {
    stem = register_parameter("stem", torch::randn({2, 4}));
    block = register_module("block", std::make_shared<Block>());
    ids = register_buffer("ids", torch::arange(5));
  }
  torch::Tensor stem, ids;
  std::shared_ptr<Block> block;
};

std::vector<std::string> names(const Manifest &M) {
  std::vector<std::string> Out;
  for (const ManifestEntry &E : M.Entries)
    Out.push_back(E.Name + ":" + std::string(dtypeName(E.Type)));
  return Out;
}

TEST(TorchManifest, StateDictOrderAndNames) {
  Model M;
  auto Man = moduleManifest(M);
  ASSERT_TRUE(bool(Man)) << errorText(Man);
  // Own parameters, own buffers, then children; the absent bias is None.
  std::vector<std::string> Want = {"stem:f32",
                                   "ids:i64",
                                   "block.scale:f32",
                                   "block.fc.weight:f32",
                                   "block.norm.weight:f32",
                                   "block.norm.bias:f32",
                                   "block.norm.running_mean:f32",
                                   "block.norm.running_var:f32",
                                   "block.norm.num_batches_tracked:i64"};
  EXPECT_EQ(names(*Man), Want);
  EXPECT_EQ(Man->Entries[3].Shape, (SmallVector<int64_t, 4>{3, 4}));
}

TEST(TorchSave, KeepsSharingViewsAndStrides) {
  TempDir Dir;
  torch::Tensor Base = torch::arange(12, torch::kFloat32);
  torch::OrderedDict<std::string, torch::Tensor> In;
  In.insert("base", Base);
  In.insert("slice", Base.narrow(0, 2, 3));
  In.insert("same", Base);
  In.insert("t", Base.view({3, 4}).t());
  In.insert("other", torch::tensor({7, 8}, torch::kInt64));
  auto C = checkpointFromTensors(In);
  ASSERT_TRUE(bool(C)) << errorText(C);
  EXPECT_EQ((*C)->storages().size(), 2u);
  EXPECT_TRUE((*C)->stateDict()->isOrdered());
  // "base" and "same" are one tensor object: one node, pickled once.
  const DictValue &SD = *(*C)->stateDict();
  EXPECT_EQ(SD.lookup("base"), SD.lookup("same"));
  EXPECT_NE(SD.lookup("base"), SD.lookup("slice"));

  auto Out = roundTrip(In, Dir);
  ASSERT_EQ(Out.size(), 5u);
  for (const auto &Item : In)
    EXPECT_TRUE(torch::equal(Out[Item.key()], Item.value())) << Item.key();
  // One storage behind base, slice, same and t, as in the input.
  const void *Data = Out["base"].storage().data();
  EXPECT_EQ(Out["slice"].storage().data(), Data);
  EXPECT_EQ(Out["t"].storage().data(), Data);
  EXPECT_EQ(Out["slice"].storage_offset(), 2);
  EXPECT_EQ(Out["t"].strides(), Base.view({3, 4}).t().strides());
  EXPECT_NE(Out["other"].storage().data(), Data);
  // The file has one object under "base" and "same": one torch::Tensor.
  EXPECT_TRUE(Out["same"].is_same(Out["base"]));
  EXPECT_FALSE(Out["slice"].is_same(Out["base"]));
}

TEST(TorchSave, EveryLibTorchDType) {
  TempDir Dir;
  torch::OrderedDict<std::string, torch::Tensor> In;
  torch::Tensor F = torch::linspace(-3, 3, 6);
  for (auto T : {torch::kUInt8, torch::kInt8, torch::kInt16, torch::kInt32,
                 torch::kInt64, torch::kFloat16, torch::kFloat32,
                 torch::kFloat64, torch::kBFloat16, torch::kBool,
                 torch::kComplexFloat, torch::kComplexDouble})
    In.insert(std::string(c10::toString(T)), F.to(T));
  auto Out = roundTrip(In, Dir);
  ASSERT_EQ(Out.size(), In.size());
  for (const auto &Item : In) {
    EXPECT_EQ(Out[Item.key()].scalar_type(), Item.value().scalar_type());
    EXPECT_TRUE(torch::equal(Out[Item.key()], Item.value())) << Item.key();
  }
}

TEST(TorchSave, RefusesWhatATorchFileCannotHold) {
  torch::OrderedDict<std::string, torch::Tensor> Sparse;
  Sparse.insert("s", torch::eye(3).to_sparse());
  auto C = checkpointFromTensors(Sparse);
  EXPECT_NE(errorText(C).find("'s': only dense CPU tensors can be saved"),
            std::string::npos);
  torch::OrderedDict<std::string, torch::Tensor> Undefined;
  Undefined.insert("u", torch::Tensor());
  auto D = checkpointFromTensors(Undefined);
  EXPECT_NE(errorText(D).find("'u': undefined tensor"), std::string::npos);
}

TEST(TorchTensors, Errors) {
  auto U16 = oneTensor("w", DType::UInt16, {2},
                       Storage::owned("0", DType::UInt16, {1, 2, 3, 4}));
  auto E = stateDictTensors(*U16);
  EXPECT_NE(errorText(E).find("'w': dtype u16 has no LibTorch 1.13 equivalent"),
            std::string::npos);

  auto Elided = oneTensor("w", DType::Float32, {2},
                          Storage::elided("0", DType::Float32, 8));
  auto F = stateDictTensors(*Elided);
  EXPECT_NE(errorText(F).find("'w': storage '0' has no data (elided)"),
            std::string::npos);

  Checkpoint List(makeList({makeInt(1)}));
  auto G = stateDictTensors(List);
  EXPECT_NE(errorText(G).find("the root is a list, not a state dict: add "
                              "unwrap to the pipeline"),
            std::string::npos);
}

TEST(TorchTensors, LibTorchExceptionsBecomeErrors) {
  // A storage far larger than memory: LibTorch's allocator throws, the
  // bridge returns the message.
  uint64_t Huge = uint64_t(1) << 50;
  auto C = oneTensor("big", DType::Float32, {int64_t(Huge / 4)},
                     Storage::computed("0", DType::Float32, Huge,
                                       [](uint64_t, MutableArrayRef<uint8_t>) {
                                         return Error::success();
                                       }));
  auto T = stateDictTensors(*C);
  std::string Msg = errorText(T);
  EXPECT_NE(Msg.find("state dict as tensors: LibTorch: "), std::string::npos)
      << Msg;
}

TEST(TorchTensors, ViewsOutliveTheCheckpointAndNeverWriteTheFile) {
  TempDir Dir;
  torch::OrderedDict<std::string, torch::Tensor> In;
  In.insert("w", torch::arange(16, torch::kFloat32));
  auto C = checkpointFromTensors(In);
  ASSERT_TRUE(bool(C));
  std::string Path = Dir.file("v.pth");
  ASSERT_FALSE(bool(exportTorch(**C, Path)));
  std::string Before = fileBytes(Path);

  torch::Tensor W;
  {
    auto Imported = importFile(Path);
    ASSERT_TRUE(bool(Imported));
    auto T = stateDictTensors(**Imported, TensorData::View);
    ASSERT_TRUE(bool(T)) << errorText(T);
    W = (*T)["w"];
  } // the Checkpoint and its mapping are gone; the view keeps its own
  EXPECT_TRUE(torch::equal(W, torch::arange(16, torch::kFloat32)));
  W.mul_(2);
  EXPECT_EQ(W[3].item<float>(), 6.0f);
  EXPECT_EQ(fileBytes(Path), Before);
  auto Again = readStateDict(Path);
  ASSERT_TRUE(bool(Again));
  EXPECT_TRUE(torch::equal((*Again)["w"], torch::arange(16, torch::kFloat32)));
}

/// {a: u8[1] at data offset 0, b: f32[2] at data offset 1}: b's bytes are
/// not 4-byte aligned in the file.
std::string misalignedSafetensors() {
  std::string Header =
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  while ((8 + Header.size()) % 8)
    Header += ' ';
  std::string S(8, '\0');
  support::endian::write64le(&S[0], Header.size());
  float B[2] = {1.5f, -2.0f};
  std::string Data(1, '\x07');
  Data.append(reinterpret_cast<const char *>(B), sizeof(B));
  return S + Header + Data;
}

struct TwoBuffers : torch::nn::Module {
  TwoBuffers() {
    a = register_buffer("a", torch::zeros({1}, torch::kUInt8));
    b = register_buffer("b", torch::zeros({2}));
  }
  torch::Tensor a, b;
};

TEST(TorchLoad, MisalignedStoragesAreCopied) {
  TempDir Dir;
  std::string Path = Dir.file("m.safetensors");
  writeFile(Path, misalignedSafetensors());
  TwoBuffers M;
  TorchLoadOptions Opts;
  Opts.Data = TensorData::View;
  auto R = loadStateDict(M, Path, Opts);
  ASSERT_TRUE(bool(R)) << errorText(R);
  EXPECT_EQ(R->NumLoaded, 2u);
  EXPECT_EQ(R->NumViewed, 1u); // a: one byte, any address will do
  EXPECT_EQ(R->NumCopied, 1u); // b: copied to aligned memory
  EXPECT_EQ(M.a.item<uint8_t>(), 7);
  EXPECT_TRUE(torch::equal(M.b, torch::tensor({1.5f, -2.0f})));
}

/// A file holding Model's state dict, with Edit applied first.
std::string savedModel(const TempDir &Dir, Model &Src,
                       function_ref<void(DictValue &)> Edit = nullptr) {
  auto C = moduleCheckpoint(Src);
  EXPECT_TRUE(bool(C)) << errorText(C);
  if (Edit)
    Edit(*(*C)->stateDict());
  std::string Path = Dir.file("model.pth");
  EXPECT_FALSE(bool(exportTorch(**C, Path)));
  return Path;
}

TEST(TorchLoad, CopiesIntoTheModulesOwnTensors) {
  TempDir Dir;
  Model Src;
  Src.block->norm->running_mean.fill_(0.25);
  std::string Path = savedModel(Dir, Src);
  Model Dst;
  torch::Tensor Stem = Dst.stem; // the same TensorImpl the module holds
  auto R = loadStateDict(Dst, Path);
  ASSERT_TRUE(bool(R)) << errorText(R);
  EXPECT_TRUE(R->Report.ok());
  EXPECT_EQ(R->NumLoaded, 9u);
  EXPECT_EQ(R->NumCopied, 9u);
  EXPECT_TRUE(torch::equal(Stem, Src.stem));
  EXPECT_TRUE(
      torch::equal(Dst.block->norm->running_mean, torch::full({3}, 0.25)));
  EXPECT_TRUE(Dst.stem.requires_grad());
}

TEST(TorchLoad, StrictByDefaultAndLeavesTheModuleAlone) {
  TempDir Dir;
  Model Src;
  std::string Path = savedModel(Dir, Src, [](DictValue &SD) {
    eraseIf(SD, [](const DictEntry &E) { return *E.keyString() == "stem"; });
    SD.set("extra", SD.lookup("ids")->copyNode());
  });
  Model Dst;
  torch::Tensor Before = Dst.block->fc->weight.clone();
  auto R = loadStateDict(Dst, Path);
  ASSERT_FALSE(bool(R));
  Error E = R.takeError();
  EXPECT_TRUE(E.isA<VerificationFailure>());
  std::string Msg = toString(std::move(E));
  EXPECT_NE(
      Msg.find("model.pth: checkpoint does not match manifest of module "),
      std::string::npos)
      << Msg;
  EXPECT_NE(Msg.find("1 missing, 1 unexpected"), std::string::npos) << Msg;
  EXPECT_TRUE(torch::equal(Before, Dst.block->fc->weight));

  // Not strict: what matches loads, the rest stays.
  TorchLoadOptions Loose;
  Loose.Strict = false;
  auto L = loadStateDict(Dst, Path, Loose);
  ASSERT_TRUE(bool(L)) << errorText(L);
  EXPECT_EQ(L->NumLoaded, 8u);
  EXPECT_TRUE(torch::equal(Dst.block->fc->weight, Src.block->fc->weight));
  EXPECT_FALSE(torch::equal(Dst.stem, Src.stem));

  // Or allow exactly those keys.
  TorchLoadOptions Globs;
  Globs.AllowMissing = {"st*"};
  Globs.AllowUnexpected = {"extra"};
  auto G = loadStateDict(Dst, Path, Globs);
  EXPECT_TRUE(bool(G)) << errorText(G);
}

TEST(TorchLoad, ShapeMismatchIsAnErrorEvenWhenNotStrict) {
  TempDir Dir;
  Model Src;
  std::string Path = savedModel(Dir, Src, [](DictValue &SD) {
    cast<TensorValue>(SD.lookup("stem"))->setShape({8});
  });
  Model Dst;
  TorchLoadOptions Loose;
  Loose.Strict = false;
  auto R = loadStateDict(Dst, Path, Loose);
  std::string Msg = errorText(R);
  EXPECT_NE(Msg.find("1 shape mismatch"), std::string::npos) << Msg;
}

struct Tied : torch::nn::Module {
  Tied() {
    w = register_parameter("w", torch::zeros({3}));
    auto Other = std::make_shared<torch::nn::Module>();
    Other->register_parameter("w", w);
    register_module("other", Other);
  }
  torch::Tensor w;
};

TEST(TorchLoad, TiedEntriesMustAgree) {
  TempDir Dir;
  torch::OrderedDict<std::string, torch::Tensor> Same, Different;
  torch::Tensor V = torch::tensor({1.f, 2.f, 3.f});
  Same.insert("w", V);
  Same.insert("other.w", V.clone()); // equal values, separate storages
  Different.insert("w", V);
  Different.insert("other.w", V + 1);
  for (auto *Case : {&Same, &Different}) {
    auto C = checkpointFromTensors(*Case);
    ASSERT_TRUE(bool(C));
    Tied M;
    auto R = loadStateDict(M, **C);
    if (Case == &Same) {
      ASSERT_TRUE(bool(R)) << errorText(R);
      EXPECT_TRUE(torch::equal(M.w, V));
    } else {
      EXPECT_NE(errorText(R).find("module ties 'w' and 'other.w' (one "
                                  "tensor) but the checkpoint holds "
                                  "different values for them"),
                std::string::npos);
      EXPECT_TRUE(torch::equal(M.w, torch::zeros({3})));
    }
  }
}

TEST(TorchLoad, ViewsNeverTieWhatTheModuleKeepsApart) {
  TempDir Dir;
  torch::OrderedDict<std::string, torch::Tensor> In;
  torch::Tensor Base = torch::arange(8, torch::kFloat32);
  In.insert("a", Base.narrow(0, 0, 4));
  In.insert("b", Base.narrow(0, 4, 4)); // the same storage in the file
  auto C = checkpointFromTensors(In);
  ASSERT_TRUE(bool(C));
  std::string Path = Dir.file("shared.pth");
  ASSERT_FALSE(bool(exportTorch(**C, Path)));
  torch::nn::Module M;
  torch::Tensor A = M.register_parameter("a", torch::zeros({4}));
  torch::Tensor B = M.register_parameter("b", torch::zeros({4}));
  TorchLoadOptions Opts;
  Opts.Data = TensorData::View;
  auto R = loadStateDict(M, Path, Opts);
  ASSERT_TRUE(bool(R)) << errorText(R);
  EXPECT_EQ(R->NumViewed, 1u);
  EXPECT_EQ(R->NumCopied, 1u);
  EXPECT_TRUE(torch::equal(B, torch::arange(4, 8, torch::kFloat32)));
  {
    torch::NoGradGuard NoGrad;
    A.fill_(-1);
  }
  EXPECT_TRUE(torch::equal(B, torch::arange(4, 8, torch::kFloat32)));
}

TEST(TorchLoad, OnlyDenseModuleEntries) {
  torch::OrderedDict<std::string, torch::Tensor> Dense;
  Dense.insert("s", torch::eye(2));
  auto C = checkpointFromTensors(Dense);
  ASSERT_TRUE(bool(C));
  torch::nn::Module M;
  M.register_buffer("s", torch::eye(2).to_sparse());
  auto R = loadStateDict(M, **C);
  EXPECT_NE(errorText(R).find("module entry 's' is not a dense tensor"),
            std::string::npos)
      << errorText(R);
}

TEST(TorchLoad, PipelineErrorsNameTheFile) {
  TempDir Dir;
  Model Src;
  std::string Path = savedModel(Dir, Src);
  Model Dst;
  TorchLoadOptions Opts;
  Opts.Pipeline = "canonicalize-prefix{strip=module.},nope";
  EXPECT_NE(errorText(loadStateDict(Dst, Path, Opts).takeError())
                .find("unknown pass or pipeline 'nope'"),
            std::string::npos);

  // The pipeline's remarks reach the handler: here verify-against-manifest
  // with the module's own manifest, written by the bridge.
  auto Man = moduleManifest(Dst);
  ASSERT_TRUE(bool(Man));
  std::string ManPath = Dir.file("model.json");
  {
    std::error_code EC;
    raw_fd_ostream OS(ManPath, EC);
    writeManifest(*Man, OS);
  }
  std::vector<std::string> Remarks;
  Opts.Pipeline = "verify-against-manifest{manifest=" + ManPath + "}";
  Opts.Diagnostics = [&](const Diagnostic &D) {
    Remarks.push_back(D.PassArgument + ": " + D.Message);
  };
  auto R = loadStateDict(Dst, Path, Opts);
  ASSERT_TRUE(bool(R)) << errorText(R);
  ASSERT_EQ(Remarks.size(), 1u);
  EXPECT_NE(Remarks[0].find("verify-against-manifest: checkpoint matches "
                            "manifest"),
            std::string::npos)
      << Remarks[0];
}

} // namespace
