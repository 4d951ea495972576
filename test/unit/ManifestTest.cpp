//===- ManifestTest.cpp - Manifest parsing, key grouping, near misses ----===//
#include "wopt/Manifest/Manifest.h"
#include "wopt/Manifest/Target.h"
#include "llvm/Support/raw_ostream.h"
#include "gtest/gtest.h"

using namespace wopt;
using namespace llvm;

namespace {

std::string errorOf(StringRef JSON) {
  Expected<Manifest> M = parseManifest(JSON, "m.json");
  if (M)
    return "";
  return toString(M.takeError());
}

std::string wrap(StringRef Entries) {
  return (R"({"format": "wopt-manifest", "version": 1, "entries": [)" +
          Entries + "]}")
      .str();
}

TEST(ManifestParse, Good) {
  Expected<Manifest> M = parseManifest(
      wrap(R"({"name": "a.weight", "dtype": "f32", "shape": [384]},
              {"name": "b", "dtype": "torch.int64", "shape": [], "optional": true},
              {"name": "c", "dtype": "bfloat16", "shape": [2, 3]})"),
      "m.json");
  ASSERT_TRUE(bool(M)) << toString(M.takeError());
  ASSERT_EQ(M->Entries.size(), 3u);
  EXPECT_EQ(M->Entries[0].Name, "a.weight");
  EXPECT_EQ(M->Entries[0].Type, DType::Float32);
  EXPECT_EQ(M->Entries[0].Shape, SmallVector<int64_t>({384}));
  EXPECT_FALSE(M->Entries[0].Optional);
  EXPECT_EQ(M->Entries[1].Type, DType::Int64);
  EXPECT_TRUE(M->Entries[1].Shape.empty());
  EXPECT_TRUE(M->Entries[1].Optional);
  EXPECT_EQ(M->Entries[2].Type, DType::BFloat16);
}

TEST(ManifestParse, PlainAndGeneralJSONAgree) {
  // Plain JSON (what writeManifest writes) is read without a JSON tree; the
  // same manifest spelled with escapes, a float dimension, a duplicate-free
  // reordering and odd whitespace goes through llvm::json: the results must
  // be the same.
  auto Same = [](StringRef A, StringRef B) {
    Expected<Manifest> MA = parseManifest(A, "a.json");
    Expected<Manifest> MB = parseManifest(B, "b.json");
    ASSERT_TRUE(bool(MA)) << toString(MA.takeError());
    ASSERT_TRUE(bool(MB)) << toString(MB.takeError());
    EXPECT_EQ(MA->MadeFrom, MB->MadeFrom);
    ASSERT_EQ(MA->Entries.size(), MB->Entries.size());
    for (size_t I = 0; I < MA->Entries.size(); ++I) {
      const ManifestEntry &X = MA->Entries[I], &Y = MB->Entries[I];
      EXPECT_EQ(X.Name, Y.Name);
      EXPECT_EQ(X.Type, Y.Type);
      EXPECT_EQ(X.Shape, Y.Shape);
      EXPECT_EQ(X.Optional, Y.Optional);
    }
  };
  Same(R"({"format": "wopt-manifest", "version": 1, "source": "s",
           "entries": [{"name": "a.b", "dtype": "f32", "shape": [0, 10]},
                       {"name": "c", "dtype": "long", "shape": [],
                        "optional": false},
                       {"name": "d", "dtype": "bf16", "shape": [7],
                        "optional": true}]})",
       "\t{\"format\":\"wopt-manifest\",\"entries\" :[ {\"shape\":[0 , "
       "1e1],\"dtype\":\"f32\",\"name\":"
       "\"a\\u002eb\"} ,{\"name\":\"c\",\"shape\":[],\"dtype\":\"torch.int64\","
       "\"optional\":false},{\"optional\":true,\"name\":\"\\u0064\",\"dtype\":"
       "\"bfloat16\",\"shape\":[7.0]}],\"version\":1.0,\"source\":\"\\u0073\"}"
       "\r\n");
  Same(wrap(""),
       "{\"entries\":[],\"version\":1,\"format\":\"wopt\\u002dmanifest\"}");
  // What the plain reader does not take is still read, or refused, by the
  // general one: a name with an escaped quote, a dimension too large for
  // the plain reader's 18 digits, a repeated name (refused).
  Expected<Manifest> M = parseManifest(
      wrap(R"({"name": "q\"", "dtype": "u8", "shape": [1000000000000000000]})"),
      "m.json");
  ASSERT_TRUE(bool(M)) << toString(M.takeError());
  EXPECT_EQ(M->Entries[0].Name, "q\"");
  EXPECT_EQ(M->Entries[0].Shape[0], 1000000000000000000);
  EXPECT_EQ(errorOf(wrap(R"({"name": "a", "dtype": "f32", "shape": [1]},
                            {"name": "a", "dtype": "f32", "shape": [2]})")),
            "m.json: entry 1 ('a'): duplicate name; first listed as entry 0");
  EXPECT_EQ(errorOf(wrap(R"({"name": "a", "dtype": "f32", "shape": [-1]})")),
            "m.json: entry 0 ('a'): 'shape' dimension 0 must be a "
            "non-negative integer, got -1");
  EXPECT_EQ(errorOf(wrap(R"({"name": "a", "dtype": "f32", "shape": [1]},)")),
            "m.json:1:99: invalid JSON: Invalid JSON value");
}

TEST(ManifestParse, DTypeAliases) {
  EXPECT_EQ(parseManifestDType("float"), DType::Float32);
  EXPECT_EQ(parseManifestDType("half"), DType::Float16);
  EXPECT_EQ(parseManifestDType("long"), DType::Int64);
  EXPECT_EQ(parseManifestDType("torch.bool"), DType::Bool);
  EXPECT_EQ(parseManifestDType("f8e4m3fn"), DType::Float8E4M3FN);
  EXPECT_FALSE(parseManifestDType("float31"));
}

TEST(ManifestParse, Bad) {
  EXPECT_EQ(errorOf("{"), "m.json:1:1: invalid JSON: Expected object key");
  EXPECT_EQ(errorOf("{\n  \"format\": wopt}"),
            "m.json:2:13: invalid JSON: Invalid JSON value");
  EXPECT_EQ(errorOf("[]"),
            "m.json: expected a JSON object at the top level, got []");
  EXPECT_EQ(errorOf(R"({"version": 1, "entries": []})"),
            R"(m.json: missing "format": "wopt-manifest")");
  EXPECT_EQ(
      errorOf(R"({"format": "wopt-manifest", "version": 2, "entries": []})"),
      "m.json: unsupported manifest version 2 (this wopt reads version 1)");
  EXPECT_EQ(errorOf(R"({"format": "wopt-manifest", "version": 1})"),
            "m.json: missing field 'entries'");
  EXPECT_EQ(errorOf(wrap(R"({"name": "a", "dtype": "f32"})")),
            "m.json: entry 0 ('a'): missing field 'shape'");
  EXPECT_EQ(errorOf(wrap(R"({"name": "a", "dtype": "f32", "shape": [1]},
                            {"name": "b", "dtype": "f33", "shape": [1]})")),
            "m.json: entry 1 ('b'): unknown dtype 'f33' (expected a name such "
            "as f32, bf16, i64, float32)");
  EXPECT_EQ(errorOf(wrap(R"({"name": "a", "dtype": "f32", "shape": [1, -2]})")),
            "m.json: entry 0 ('a'): 'shape' dimension 1 must be a non-negative "
            "integer, got -2");
  EXPECT_EQ(errorOf(wrap(R"({"name": "a", "dtype": "f32", "shape": "384"})")),
            "m.json: entry 0 ('a'): 'shape' must be an array of non-negative "
            "integers, got \"384\"");
  EXPECT_EQ(
      errorOf(wrap(
          R"({"name": "a", "dtype": "f32", "shape": [], "optinal": true})")),
      "m.json: entry 0 ('a'): unknown field 'optinal' (expected name, "
      "dtype, shape, optional)");
  EXPECT_EQ(errorOf(wrap(R"({"dtype": "f32", "shape": []})")),
            "m.json: entry 0: missing field 'name'");
  EXPECT_EQ(errorOf(wrap(R"({"name": "a", "dtype": "f32", "shape": []},
                            {"name": "a", "dtype": "f32", "shape": []})")),
            "m.json: entry 1 ('a'): duplicate name; first listed as entry 0");
  EXPECT_EQ(errorOf(wrap(R"(3)")),
            "m.json: entry 0: expected an object, got 3");
}

TEST(ManifestWrite, RoundTrips) {
  Manifest M;
  M.Entries.push_back({"a.\"quoted\"", DType::BFloat16, {2, 3}, false});
  M.Entries.push_back({"b", DType::Int64, {}, true});
  std::string S;
  raw_string_ostream OS(S);
  writeManifest(M, OS);
  Expected<Manifest> Back = parseManifest(S, "x");
  ASSERT_TRUE(bool(Back)) << toString(Back.takeError());
  ASSERT_EQ(Back->Entries.size(), 2u);
  EXPECT_EQ(Back->Entries[0].Name, "a.\"quoted\"");
  EXPECT_EQ(Back->Entries[0].Type, DType::BFloat16);
  EXPECT_TRUE(Back->Entries[1].Optional);
}

std::vector<std::string> patterns(ArrayRef<std::string> Keys) {
  std::vector<std::string> P;
  for (const KeyGroup &G : groupKeys(Keys))
    P.push_back(G.Pattern + (G.Sparse ? " (sparse)" : ""));
  return P;
}

TEST(KeyGrouping, IntegerSets) {
  EXPECT_EQ(formatIntegerSet({0, 1, 2, 3, 4, 5, 6}), "{0..6}");
  EXPECT_EQ(formatIntegerSet({0, 2, 5}), "{0,2,5}");
  EXPECT_EQ(formatIntegerSet({0, 1}), "{0,1}");
  EXPECT_EQ(formatIntegerSet({0, 1, 2, 3, 7, 9, 10, 11}), "{0..3,7,9..11}");
  EXPECT_EQ(formatIntegerSet({4}), "4");
}

TEST(KeyGrouping, Groups) {
  std::vector<std::string> Keys;
  for (int K = 0; K < 7; ++K)
    Keys.push_back("bbox_head.cls_branches." + std::to_string(K) +
                   ".log_scale");
  Keys.push_back("dn_query_generator.label_embedding.weight");
  Keys.push_back("layers.0.w");
  Keys.push_back("layers.2.w");
  Keys.push_back("layers.5.w");
  EXPECT_EQ(patterns(Keys), (std::vector<std::string>{
                                "bbox_head.cls_branches.{0..6}.log_scale",
                                "dn_query_generator.label_embedding.weight",
                                "layers.{0,2,5}.w"}));
}

TEST(KeyGrouping, CartesianAndSparse) {
  std::vector<std::string> Full, Chunked;
  for (int S = 0; S < 2; ++S)
    for (int B = 0; B < 3; ++B)
      Full.push_back("stages." + std::to_string(S) + "." + std::to_string(B) +
                     ".gamma");
  EXPECT_EQ(patterns(Full),
            (std::vector<std::string>{"stages.{0,1}.{0..2}.gamma"}));
  // DINOv2 chunks: 12 blocks in 4 chunks of 3, global inner index. Four
  // lines per name would bury the report: one sparse pattern.
  for (int G = 0; G < 12; ++G)
    Chunked.push_back("blocks." + std::to_string(G / 3) + "." +
                      std::to_string(G) + ".norm1.weight");
  EXPECT_EQ(patterns(Chunked),
            (std::vector<std::string>{
                "blocks.{0..3}.{0..11}.norm1.weight (sparse)"}));
  // Two full grids (stages of two depths) stay precise.
  std::vector<std::string> Stages;
  for (int B = 0; B < 2; ++B)
    Stages.push_back("layers.0.blocks." + std::to_string(B) + ".x");
  for (int B = 0; B < 6; ++B)
    Stages.push_back("layers.1.blocks." + std::to_string(B) + ".x");
  EXPECT_EQ(patterns(Stages),
            (std::vector<std::string>{"layers.0.blocks.{0,1}.x",
                                      "layers.1.blocks.{0..5}.x"}));
}

std::vector<std::string> stemPatterns(ArrayRef<std::string> Keys,
                                      size_t MaxNames) {
  std::vector<std::string> P;
  for (const KeyGroup &G : groupKeysByStem(Keys, MaxNames))
    P.push_back(std::to_string(G.Members.size()) + " " + G.Pattern +
                (G.Sparse ? " (sparse)" : ""));
  return P;
}

TEST(KeyGrouping, MergesNamesAfterTheLastIndex) {
  std::vector<std::string> Keys;
  const char *Names[] = {"norm1.weight", "norm1.bias", "attn.qkv.weight",
                         "attn.qkv.bias", "mlp.fc1.weight"};
  for (int B = 0; B < 8; ++B)
    for (const char *N : Names)
      Keys.push_back("blocks." + std::to_string(B) + "." + N);
  Keys.push_back("pooler.dense.weight");
  Keys.push_back("pooler.dense.bias");
  Keys.push_back("cls_token");
  Keys.push_back("pos_embed");
  EXPECT_EQ(stemPatterns(Keys, 3),
            (std::vector<std::string>{
                "40 blocks.{0..7}.{norm1.weight,norm1.bias,attn.qkv.weight,"
                "+2 more}",
                "2 pooler.dense.{weight,bias}", "1 cls_token", "1 pos_embed"}));
  // Members stay in input order, so types line up with the keys.
  std::vector<KeyGroup> G = groupKeysByStem(Keys, 3);
  EXPECT_TRUE(is_sorted(G[0].Members));
  EXPECT_EQ(G[0].Members.size(), 40u);

  // Chunked blocks: every name of a sparse pattern merges too.
  Keys.clear();
  for (int G = 0; G < 8; ++G)
    for (const char *N : Names)
      Keys.push_back("blocks." + std::to_string(G / 2) + "." +
                     std::to_string(G) + "." + N);
  EXPECT_EQ(stemPatterns(Keys, 10),
            (std::vector<std::string>{
                "40 blocks.{0..3}.{0..7}.{norm1.weight,norm1.bias,"
                "attn.qkv.weight,attn.qkv.bias,mlp.fc1.weight} (sparse)"}));
}

TEST(KeyGrouping, LeadingZerosAreNames) {
  EXPECT_EQ(patterns({"a.01.w", "a.1.w"}),
            (std::vector<std::string>{"a.01.w", "a.1.w"}));
}

std::vector<std::string> fixes(ArrayRef<std::string> U,
                               ArrayRef<std::string> M) {
  std::vector<std::string> F;
  for (const Hint &H : findNearMisses(U, M))
    F.push_back(H.Fix);
  return F;
}

// The glob is built from the keys: braces and brackets that are the keys'
// own are literal (an unclosed '{' once made the glob loop forever).
TEST(KeyGrouping, GlobsEscapeTheKeysOwnBrackets) {
  std::vector<std::string> Keys = {"a.{x.0.w", "a.{x.1.w", "b[1].*.c", "d.3.e"};
  std::vector<KeyGroup> G = groupKeys(Keys);
  ASSERT_EQ(G.size(), 3u);
  EXPECT_EQ(G[0].Pattern, "a.{x.{0,1}.w");
  EXPECT_EQ(G[0].Glob, "a.{x.*.w");
  EXPECT_EQ(G[1].Glob, "b\\[1\\].\\*.c");
  EXPECT_EQ(G[2].Glob, "d.3.e");
  Expected<std::vector<GlobPattern>> Compiled =
      compileGlobs({G[0].Glob, G[1].Glob}, "allow-missing");
  ASSERT_TRUE(bool(Compiled)) << toString(Compiled.takeError());
  EXPECT_TRUE((*Compiled)[0].match("a.{x.7.w"));
  EXPECT_TRUE((*Compiled)[1].match("b[1].*.c"));
  EXPECT_FALSE((*Compiled)[1].match("b1.x.c"));
}

TEST(KeyGrouping, QuoteForPipeline) {
  EXPECT_EQ(*quoteForPipeline("a.*.b"), "a.*.b");
  EXPECT_EQ(*quoteForPipeline("(.*)\\.x\\.(.*)=>$1.y.$2"),
            "(.*)\\.x\\.(.*)=>$1.y.$2");
  EXPECT_EQ(*quoteForPipeline("a.{b"), "'a.{b'");
  EXPECT_EQ(*quoteForPipeline("x y"), "'x y'");
  EXPECT_EQ(*quoteForPipeline("it's"), "\"it's\"");
  EXPECT_EQ(*quoteForPipeline("a,b"), "'a,b'");
  EXPECT_FALSE(quoteForPipeline("'\""));
}

TEST(NearMiss, Chunks) {
  std::vector<std::string> U, M;
  for (int G = 0; G < 12; ++G) {
    U.push_back("blocks." + std::to_string(G / 3) + "." + std::to_string(G) +
                ".norm1.weight");
    M.push_back("blocks." + std::to_string(G) + ".norm1.weight");
  }
  std::vector<Hint> H = findNearMisses(U, M);
  ASSERT_EQ(H.size(), 1u);
  EXPECT_EQ(H[0].Fix, "flatten-chunks");
  EXPECT_EQ(H[0].NumKeys, 12u);
  EXPECT_EQ(H[0].Message,
            "12 unexpected keys look like chunked blocks (blocks.<c>.<g>.* "
            "where the manifest has blocks.<g>.*); add flatten-chunks");
  // The second example shows the chunk index going away, not chunk 0 again.
  using Pair = std::pair<std::string, std::string>;
  EXPECT_EQ(H[0].Examples,
            (std::vector<Pair>{
                {"blocks.0.0.norm1.weight", "blocks.0.norm1.weight"},
                {"blocks.3.11.norm1.weight", "blocks.11.norm1.weight"}}));
}

TEST(NearMiss, CoverageNamesTheHint) {
  NearMissCoverage Cov;
  std::vector<Hint> H =
      findNearMisses({"module.a.w", "module.b.w", "x.position_ids", "lost.x.y"},
                     {"a.w", "b.w", "gone"}, &Cov);
  ASSERT_EQ(H.size(), 2u);
  EXPECT_EQ(H[0].Kind, "strip-prefix");
  EXPECT_EQ(H[1].Kind, "drop-dynamic-buffers");
  EXPECT_EQ(Cov.UnexpectedHint, (std::vector<int>{0, 0, 1, -1}));
  EXPECT_EQ(Cov.MissingHint, (std::vector<int>{0, 0, -1}));
  using Pair = std::pair<std::string, std::string>;
  EXPECT_EQ(H[1].Examples, (std::vector<Pair>{{"x.position_ids", ""}}));
}

TEST(NearMiss, Prefixes) {
  EXPECT_EQ(fixes({"module.a.w", "module.b.w"}, {"a.w", "b.w"}),
            std::vector<std::string>{"canonicalize-prefix{strip=module.}"});
  EXPECT_EQ(fixes({"backbone.a.w", "head.fc.w"}, {"a.w"}),
            std::vector<std::string>{"canonicalize-prefix{select=backbone.}"});
  EXPECT_EQ(fixes({"backbone.a.w"}, {"a.w"}),
            std::vector<std::string>{"canonicalize-prefix{strip=backbone.}"});
  EXPECT_EQ(fixes({"module.backbone.a.w", "module.head.w"}, {"a.w"}),
            std::vector<std::string>{
                "canonicalize-prefix{strip=module. select=backbone.}"});
  EXPECT_EQ(fixes({"encoder._orig_mod.layer.w"}, {"encoder.layer.w"}),
            std::vector<std::string>{"canonicalize-prefix{strip=_orig_mod.}"});
  EXPECT_EQ(fixes({"a.w"}, {"backbone.a.w"}),
            std::vector<std::string>{"canonicalize-prefix{add=backbone.}"});
}

TEST(NearMiss, SwinDownsampleAndHead) {
  EXPECT_EQ(fixes({"layers.0.downsample.norm.weight", "head.weight"},
                  {"layers.1.downsample.norm.weight", "head.fc.weight"}),
            std::vector<std::string>{"reshape-downsample{to=timm}"});
  EXPECT_EQ(fixes({"layers.1.downsample.norm.weight"},
                  {"layers.0.downsample.norm.weight"}),
            std::vector<std::string>{"reshape-downsample{to=original}"});
  std::vector<Hint> H = findNearMisses({"head.weight"}, {"head.fc.weight"});
  ASSERT_EQ(H.size(), 1u);
  EXPECT_EQ(
      H[0].Message,
      "1 unexpected key head.* match missing head.fc.*; add "
      "reshape-downsample{to=timm} or rename{rule=head\\.(.*)=>head.fc.$1}");
}

TEST(NearMiss, DerivedBuffers) {
  std::vector<Hint> H = findNearMisses(
      {"text.embeddings.position_ids", "layers.0.blocks.1.attn_mask", "x"}, {});
  ASSERT_EQ(H.size(), 1u);
  EXPECT_EQ(H[0].Fix, "drop-dynamic-buffers");
  EXPECT_EQ(H[0].Message,
            "2 unexpected keys are buffers the model recomputes "
            "(position_ids, attn_mask); add drop-dynamic-buffers");
}

TEST(NearMiss, RenamedComponent) {
  std::vector<Hint> H = findNearMisses(
      {"stages.0.0.dwconv.weight", "stages.0.1.dwconv.weight"},
      {"stages.0.0.depthwise_conv.weight", "stages.0.1.depthwise_conv.weight"});
  ASSERT_EQ(H.size(), 1u);
  EXPECT_EQ(H[0].Fix,
            "rename{rule=(.*)\\.dwconv\\.(.*)=>$1.depthwise_conv.$2}");
  EXPECT_EQ(H[0].NumKeys, 2u);
}

TEST(NearMiss, FixesSpareKeysBothSidesHave) {
  // The manifest has a relative_position_index the checkpoint also has:
  // dropping derived buffers must keep it.
  std::vector<Hint> H = findNearMisses(
      {"bert.position_ids"}, {}, nullptr,
      {"stages.0.attn.relative_position_index", "stages.0.attn.qkv.weight"});
  ASSERT_EQ(H.size(), 1u);
  EXPECT_EQ(H[0].Fix, "drop-dynamic-buffers{keep=relative_position_index}");
  // A matched key under the prefix: strip= would rename it away.
  EXPECT_TRUE(
      findNearMisses({"module.a.w"}, {"a.w"}, nullptr, {"module.b.w"}).empty());
  // Keys outside the prefix that the manifest has: strip=, not select=.
  H = findNearMisses({"backbone.a.w", "head.fc.w"}, {"a.w"}, nullptr,
                     {"other.w"});
  ASSERT_EQ(H.size(), 1u);
  EXPECT_EQ(H[0].Fix, "canonicalize-prefix{strip=backbone.}");
  // A rename that would also rename a matched key is not proposed.
  EXPECT_TRUE(findNearMisses({"stages.0.dwconv.weight"},
                             {"stages.0.depthwise_conv.weight"}, nullptr,
                             {"stages.1.dwconv.weight"})
                  .empty());
  // A persistent buffer under a wrapper prefix is a prefix to strip, not a
  // buffer to drop.
  H = findNearMisses({"module.emb.position_ids", "module.proj.weight"},
                     {"emb.position_ids", "proj.weight"});
  ASSERT_EQ(H.size(), 1u);
  EXPECT_EQ(H[0].Fix, "canonicalize-prefix{strip=module.}");
}

TEST(NearMiss, NothingForUnrelatedKeys) {
  EXPECT_TRUE(findNearMisses({"pooler.dense.weight"},
                             {"bbox_head.cls_branches.0.log_scale"})
                  .empty());
}

CheckpointEntry entry(StringRef Name, DType T, ArrayRef<int64_t> Shape) {
  CheckpointEntry E;
  E.Name = Name.str();
  E.Type = T;
  E.Shape.assign(Shape.begin(), Shape.end());
  return E;
}

TEST(Compare, AllKinds) {
  Manifest M;
  M.SourceName = "m.json";
  M.Entries.push_back({"a", DType::Float32, {4}, false});
  M.Entries.push_back({"b", DType::Float32, {2, 3}, false});
  M.Entries.push_back({"c", DType::Float16, {1}, false});
  M.Entries.push_back({"opt", DType::Float32, {1}, true});
  M.Entries.push_back({"gone.0.x", DType::Float32, {1}, false});
  std::vector<CheckpointEntry> E = {
      entry("a", DType::Float32, {4}), entry("b", DType::Float32, {3, 2}),
      entry("c", DType::Float32, {1}), entry("extra", DType::Int64, {7})};
  E.back().Bytes = 56;
  CompareOptions Opts;
  Comparison C = compareWithManifest(M, E, Opts);
  EXPECT_FALSE(C.ok());
  EXPECT_EQ(C.count(Finding::Kind::Missing), 1u);
  EXPECT_EQ(C.count(Finding::Kind::Missing, false), 2u);
  EXPECT_EQ(C.count(Finding::Kind::Unexpected), 1u);
  EXPECT_EQ(C.count(Finding::Kind::ShapeMismatch), 1u);
  EXPECT_EQ(C.count(Finding::Kind::DTypeMismatch), 1u);
  EXPECT_EQ(summarizeCounts(C),
            "1 missing, 1 unexpected, 1 shape mismatch, 1 dtype mismatch");

  Opts.AllowMissing = cantFail(compileGlobs({"gone.*"}, "allow-missing"));
  Opts.PruneUnexpected = true;
  C = compareWithManifest(M, E, Opts);
  EXPECT_EQ(C.count(Finding::Kind::Missing), 0u);
  EXPECT_EQ(C.countAllowed(Finding::Allowance::Pruned), 1u);
  EXPECT_EQ(C.prunedBytes(), 56u);
}

TEST(Compare, ReportGroupsAndEndsWithSummary) {
  Manifest M;
  M.SourceName = "m.json";
  for (int K = 0; K < 7; ++K)
    M.Entries.push_back({"cls." + std::to_string(K) + ".log_scale",
                         DType::Float32,
                         {1},
                         false});
  M.Entries.push_back({"gamma", DType::Float32, {96}, false});
  std::vector<CheckpointEntry> E = {
      entry("gamma", DType::Float32, {1, 1, 1, 96})};
  CompareOptions Opts;
  Opts.ManifestName = "m.json";
  Comparison C = compareWithManifest(M, E, Opts);
  std::string S;
  raw_string_ostream OS(S);
  printReport(C, OS);
  EXPECT_EQ(S, "error: checkpoint does not match manifest m.json: 7 missing, "
               "1 shape mismatch\n"
               "hint: 7 missing keys match nothing in the checkpoint; if the "
               "model initialises them itself, add "
               "allow-missing=cls.*.log_scale\n"
               "error: missing 7 keys cls.{0..6}.log_scale (7 \u00d7 f32[1])\n"
               "error: shape mismatch for key gamma: manifest has f32[96], "
               "checkpoint has f32[1, 1, 1, 96]\n"
               "note: both have 96 elements; a reshape would fit\n");
}

TEST(Compare, KeysAHintExplainsAreNotListed) {
  Manifest M;
  std::vector<CheckpointEntry> E;
  for (int G = 0; G < 4; ++G) {
    M.Entries.push_back(
        {"blocks." + std::to_string(G) + ".w", DType::Float32, {4}, false});
    E.push_back(entry("blocks." + std::to_string(G / 2) + "." +
                          std::to_string(G) + ".w",
                      DType::Float32, {4}));
  }
  CompareOptions Opts;
  Opts.ManifestName = "m.json";
  Comparison C = compareWithManifest(M, E, Opts);
  for (const Finding &F : C.Findings)
    EXPECT_EQ(F.HintIndex, 0) << F.Name;
  std::string S;
  raw_string_ostream OS(S);
  printReport(C, OS);
  EXPECT_EQ(S, "error: checkpoint does not match manifest m.json: 4 missing, "
               "4 unexpected\n"
               "hint: 4 unexpected keys look like chunked blocks "
               "(blocks.<c>.<g>.* where the manifest has blocks.<g>.*); add "
               "flatten-chunks\n"
               "note: blocks.0.0.w would be blocks.0.w\n"
               "note: blocks.1.3.w would be blocks.3.w\n");
}

} // namespace

namespace {

ValuePtr tensorOf(DType T, ArrayRef<int64_t> Shape) {
  auto TV = std::make_shared<TensorValue>();
  TV->setDType(T);
  TV->setShape(Shape);
  return TV;
}

TEST(Target, FromManifestLooksUpKeys) {
  Expected<Manifest> M =
      parseManifest(wrap(R"({"name": "a", "dtype": "f16", "shape": [2]},
              {"name": "b", "dtype": "f32", "shape": [], "optional": true})"),
                    "m.json");
  ASSERT_TRUE(bool(M)) << toString(M.takeError());
  std::shared_ptr<Target> T = Target::fromManifest(std::move(*M), "m.json");
  EXPECT_EQ(T->name(), "m.json");
  EXPECT_EQ(T->source(), Target::Source::Manifest);
  EXPECT_EQ(T->size(), 2u);
  ASSERT_TRUE(T->find("a"));
  EXPECT_EQ(T->find("a")->Type, DType::Float16);
  EXPECT_TRUE(T->expects("b"));
  EXPECT_TRUE(T->needs("a"));
  EXPECT_FALSE(T->needs("b"));
  EXPECT_FALSE(T->expects("c"));
  EXPECT_FALSE(T->hasData());
  EXPECT_EQ(T->tensor("a"), nullptr);
}

TEST(Target, FromCheckpointKeepsItsTensors) {
  auto SD = std::make_shared<DictValue>(/*Ordered=*/true);
  SD->set("w", tensorOf(DType::BFloat16, {3, 4}));
  SD->set("n", makeInt(3)); // not a tensor: not part of the target
  auto C = std::make_unique<Checkpoint>(SD);
  Expected<std::shared_ptr<Target>> T =
      Target::fromCheckpoint(std::move(C), "model.pth");
  ASSERT_TRUE(bool(T)) << toString(T.takeError());
  EXPECT_EQ((*T)->source(), Target::Source::Checkpoint);
  EXPECT_EQ((*T)->size(), 1u);
  EXPECT_EQ((*T)->entries()[0].Shape, SmallVector<int64_t>({3, 4}));
  EXPECT_TRUE((*T)->hasData());
  ASSERT_TRUE((*T)->tensor("w"));
  EXPECT_EQ((*T)->tensor("w")->dtype(), DType::BFloat16);

  auto NotSD = std::make_unique<Checkpoint>(makeList({}));
  Expected<std::shared_ptr<Target>> Bad =
      Target::fromCheckpoint(std::move(NotSD), "x.pth");
  ASSERT_FALSE(bool(Bad));
  EXPECT_EQ(toString(Bad.takeError()),
            "x.pth: cannot use as a target: the root is not a state dict");
}

} // namespace
