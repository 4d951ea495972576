//===- ShardsTest.cpp - shard sets, the split rule, export guarantees -----===//
#include "wopt/Serialization/Shards.h"
#include "TempDir.h"
#include "wopt/IR/Verifier.h"
#include "wopt/Serialization/FlatBuffers.h"
#include "wopt/Serialization/Safetensors.h"
#include "wopt/Serialization/Serialization.h"
#include "wopt/Serialization/Torch.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "gtest/gtest.h"

using namespace wopt;
using namespace llvm;

namespace {

using test::TempDir;

std::string input(StringRef Rel) {
  SmallString<256> P(WOPT_TEST_INPUTS);
  sys::path::append(P, Rel);
  return std::string(P);
}

/// What the driver reads: import, then the verifier.
Error readBack(StringRef Path) {
  auto C = importFile(Path);
  if (!C)
    return C.takeError();
  return verifyCheckpoint(**C);
}

//===----------------------------------------------------------------------===//
// Exporters never write what the readers reject
//===----------------------------------------------------------------------===//

// findings/wopt-to-safetensors: .wopt files whose IR the verifier rejects
// (a key twice in the root, a tensor viewing a storage of another type).
// Called directly, each exporter must either refuse the IR, leaving no
// file, or write a file wopt reads back.
TEST(ExportGuarantees, FindingsWoptToSafetensors) {
  for (int Case = 1; Case <= 6; ++Case) {
    SmallString<64> Name;
    raw_svector_ostream(Name)
        << "findings/wopt-to-safetensors/case-0" << Case << ".wopt";
    auto Source = SourceFile::open(input(Name));
    ASSERT_TRUE(bool(Source)) << toString(Source.takeError());
    auto C = importFlatBuffers(*Source);
    if (!C) { // the reader refuses it: nothing to export
      consumeError(C.takeError());
      continue;
    }
    TempDir Dir;
    struct Exporter {
      const char *Ext;
      std::function<Error(const Checkpoint &, StringRef)> Run;
    } Exporters[] = {
        {".safetensors", [](const Checkpoint &C,
                            StringRef P) { return exportSafetensors(C, P); }},
        {".pth",
         [](const Checkpoint &C, StringRef P) { return exportTorch(C, P); }},
        {".wopt", [](const Checkpoint &C,
                     StringRef P) { return exportFlatBuffers(C, P); }},
    };
    for (const Exporter &X : Exporters) {
      std::string Out = Dir.file(std::string("out") + X.Ext);
      if (Error E = X.Run(**C, Out)) {
        consumeError(std::move(E));
        EXPECT_FALSE(sys::fs::exists(Out)) << std::string(Name) << X.Ext;
        continue;
      }
      Error Back = readBack(Out);
      EXPECT_FALSE(bool(Back)) << std::string(Name) << " -> " << X.Ext << ": "
                               << toString(std::move(Back));
    }
  }
}

TEST(ExportGuarantees, SafetensorsRefusesDuplicateNames) {
  auto Root = std::make_shared<DictValue>(true);
  auto T = std::make_shared<TensorValue>();
  T->setDType(DType::Float32);
  T->setShape({1});
  T->setStorage(Storage::owned("0", DType::Float32, {0, 0, 128, 63}));
  Root->entries().push_back({makeStr("w"), T});
  Root->entries().push_back({makeStr("w"), T});
  Checkpoint C(Root);
  TempDir Dir;
  Error E = exportSafetensors(C, Dir.file("o.safetensors"));
  ASSERT_TRUE(bool(E));
  EXPECT_NE(toString(std::move(E))
                .find("tensor 'w': name appears twice in "
                      "the state dict"),
            std::string::npos);
  EXPECT_EQ(Dir.count(), 0u);
}

//===----------------------------------------------------------------------===//
// The split
//===----------------------------------------------------------------------===//

/// A state dict of f32 tensors of these element counts; Same[i] = j makes
/// tensor i share tensor j's storage (the same view).
std::unique_ptr<Checkpoint> sizes(ArrayRef<int64_t> Elems,
                                  ArrayRef<int> Same = {}) {
  auto Root = std::make_shared<DictValue>(true);
  std::vector<StorageRef> Stors;
  for (size_t I = 0; I < Elems.size(); ++I) {
    auto T = std::make_shared<TensorValue>();
    T->setDType(DType::Float32);
    T->setShape({Elems[I]});
    int J = I < Same.size() ? Same[I] : -1;
    StorageRef S = J >= 0 ? Stors[J]
                          : Storage::elided(std::to_string(I), DType::Float32,
                                            Elems[I] * 4);
    Stors.push_back(S);
    T->setStorage(S);
    Root->entries().push_back({makeStr("t" + std::to_string(I)), T});
  }
  return std::make_unique<Checkpoint>(Root);
}

ShardTarget target(EmitKind K = EmitKind::Safetensors) {
  ShardTarget T;
  T.Dir = ".";
  T.Stem = K == EmitKind::Torch ? "pytorch_model" : "model";
  T.Extension = K == EmitKind::Torch ? ".bin" : ".safetensors";
  T.Format = K;
  return T;
}

/// "t0 t1 | t2 | ..." (entry names per shard).
std::string layout(const ShardPlan &P, const Checkpoint &C) {
  std::string S;
  auto *SD = C.stateDict();
  for (const ShardPlan::Shard &Sh : P.Shards) {
    if (!S.empty())
      S += " | ";
    for (size_t I = 0; I < Sh.Entries.size(); ++I)
      S += (I ? " " : "") + SD->entries()[Sh.Entries[I]].keyString()->str();
  }
  return S;
}

TEST(ShardSplit, HuggingFaceRule) {
  // The docstring's example: limit 10, sizes [6, 6, 2, 6, 2, 2] (GB) give
  // [6], [6+2], [6+2+2].
  auto C = sizes({6, 6, 2, 6, 2, 2});
  auto P = planShards(*C, target(), 40);
  ASSERT_TRUE(bool(P)) << toString(P.takeError());
  EXPECT_EQ(layout(*P, *C), "t0 | t1 t2 | t3 t4 t5");
  EXPECT_EQ(P->TotalSize, 96u);
  EXPECT_EQ(P->Shards[0].File, "model-00001-of-00003.safetensors");
  EXPECT_EQ(P->Shards[2].File, "model-00003-of-00003.safetensors");
  EXPECT_EQ(P->Shards[1].Bytes, 32u);
}

TEST(ShardSplit, BigTensorGetsAShardWhereItIsMet) {
  // The big one closes nothing: it is inserted before the open shard.
  auto C = sizes({1, 100, 1});
  auto P = planShards(*C, target(), 40);
  ASSERT_TRUE(bool(P));
  EXPECT_EQ(layout(*P, *C), "t1 | t0 t2");
}

TEST(ShardSplit, SharedStoragesStayTogether) {
  // t3 shares t0's storage: counted once, placed after t0's shard's others.
  auto C = sizes({4, 4, 4, 4}, {-1, -1, -1, 0});
  auto P = planShards(*C, target(EmitKind::Torch), 32);
  ASSERT_TRUE(bool(P));
  EXPECT_EQ(layout(*P, *C), "t0 t1 t3 | t2");
  EXPECT_EQ(P->TotalSize, 48u);
  EXPECT_EQ(P->WeightMap.size(), 4u);
  // In safetensors the alias is recorded, not listed.
  P = planShards(*C, target(), 32);
  ASSERT_TRUE(bool(P));
  EXPECT_EQ(P->WeightMap.size(), 3u);
  ASSERT_EQ(P->Aliases.size(), 1u);
  EXPECT_EQ(P->Aliases[0].first, "t3");
  EXPECT_EQ(P->Aliases[0].second, "t0");
}

TEST(ShardSplit, OneShardHasNoSuffix) {
  auto C = sizes({1, 2});
  auto P = planShards(*C, target(EmitKind::Torch), 1000);
  ASSERT_TRUE(bool(P));
  ASSERT_EQ(P->Shards.size(), 1u);
  EXPECT_EQ(P->Shards[0].File, "pytorch_model.bin");
}

TEST(ShardSplit, Sizes) {
  auto Size = [](StringRef S) -> uint64_t {
    auto N = parseShardSize(S);
    if (!N) {
      consumeError(N.takeError());
      return 0;
    }
    return *N;
  };
  EXPECT_EQ(Size("5GB"), 5000000000u);
  EXPECT_EQ(Size("5gb"), 5000000000u);
  EXPECT_EQ(Size("2.5 GB"), 2500000000u);
  EXPECT_EQ(Size("500MB"), 500000000u);
  EXPECT_EQ(Size("10KB"), 10000u);
  EXPECT_EQ(Size("1TB"), 1000000000000u);
  EXPECT_EQ(Size("2GiB"), 2147483648u);
  EXPECT_EQ(Size("512MiB"), 536870912u);
  EXPECT_EQ(Size("4096"), 4096u);
  EXPECT_EQ(Size("12B"), 12u);
  EXPECT_EQ(Size(""), 0u);
  EXPECT_EQ(Size("GB"), 0u);
  EXPECT_EQ(Size("-1GB"), 0u);
  EXPECT_EQ(Size("5XB"), 0u);
  EXPECT_EQ(Size("0"), 0u);
}

TEST(ShardSplit, Targets) {
  auto T = shardTargetFor("out/model.safetensors.index.json", std::nullopt);
  ASSERT_TRUE(bool(T) && bool(*T));
  EXPECT_EQ((*T)->Dir, "out");
  EXPECT_EQ((*T)->Stem, "model");
  EXPECT_EQ((*T)->Extension, ".safetensors");
  EXPECT_EQ((*T)->indexName(), "model.safetensors.index.json");
  EXPECT_TRUE((*T)->IndexNamed);
  T = shardTargetFor("pytorch_model.bin.index.json", std::nullopt);
  ASSERT_TRUE(bool(T) && bool(*T));
  EXPECT_EQ((*T)->Dir, ".");
  EXPECT_EQ((*T)->Format, EmitKind::Torch);
  EXPECT_EQ((*T)->shardName(2, 3), "pytorch_model-00002-of-00003.bin");
  T = shardTargetFor("some/dir/", EmitKind::Torch);
  ASSERT_TRUE(bool(T) && bool(*T));
  EXPECT_EQ((*T)->Dir, "some/dir");
  EXPECT_EQ((*T)->Stem, "pytorch_model");
  EXPECT_FALSE((*T)->IndexNamed);
  T = shardTargetFor("model.safetensors", std::nullopt);
  ASSERT_TRUE(bool(T));
  EXPECT_FALSE(bool(*T));
  T = shardTargetFor("m.json.index.json", std::nullopt);
  EXPECT_FALSE(bool(T));
  consumeError(T.takeError());
  T = shardTargetFor("m.bin.index.json", EmitKind::Safetensors);
  EXPECT_FALSE(bool(T));
  consumeError(T.takeError());
}

TEST(DTypeWidths, SubByteKinds) {
  EXPECT_EQ(dtypeBits(DType::Float4E2M1FN), 4u);
  EXPECT_EQ(dtypeBits(DType::Float6E3M2FN), 6u);
  EXPECT_EQ(dtypeBits(DType::Float8E8M0FNU), 8u);
  EXPECT_TRUE(isSubByte(DType::Float6E2M3FN));
  EXPECT_FALSE(isSubByte(DType::UInt8));
  EXPECT_EQ(dtypeBytes(DType::Float4E2M1FN, 3), 2u); // 12 bits
  EXPECT_EQ(dtypeBytes(DType::Float6E2M3FN, 4), 3u);
  EXPECT_EQ(dtypeBytes(DType::Float32, 3), 12u);
  EXPECT_FALSE(dtypeBytes(DType::Float64, 1ull << 62));
  EXPECT_EQ(dtypeBytes(DType::Float32, 1ull << 60), 1ull << 62);
  EXPECT_EQ(dtypeBytes(DType::Float4E2M1FN, ~0ull), 1ull << 63);
  EXPECT_EQ(dtypeElements(DType::Float6E2M3FN, 3), 4u);
  EXPECT_FALSE(dtypeElements(DType::Float6E2M3FN, 4));
  EXPECT_EQ(dtypeElements(DType::Float4E2M1FN, 5), 10u);
  EXPECT_FALSE(dtypeElements(DType::Float32, 6));
  EXPECT_EQ(dtypeElements(DType::Float6E3M2FN, 3ull << 61), 1ull << 63);
  EXPECT_FALSE(dtypeElements(DType::Float4E2M1FN, 1ull << 63)); // 2^64
  EXPECT_EQ(dtypeFromSafetensorsName("F8_E8M0"), DType::Float8E8M0FNU);
  EXPECT_EQ(dtypeFromSafetensorsName("F8_E4M3FNUZ"), DType::Float8E4M3FNUZ);
  EXPECT_EQ(dtypeFromSafetensorsName("F4"), DType::Float4E2M1FN);
  EXPECT_EQ(dtypeFromTorchName("float8_e8m0fnu"), DType::Float8E8M0FNU);
  EXPECT_EQ(dtypeTorchName(DType::Float4E2M1FN), "");
}

} // namespace
