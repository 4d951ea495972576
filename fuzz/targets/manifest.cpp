//===- manifest.cpp - Fuzz the manifest reader and the comparison ---------===//
//
// A manifest that parses is written back and parsed again (same JSON), and
// compared with a 144-tensor ViT-like state dict, the report printed both
// ways: a hostile manifest must not make the comparison or the grouping of
// keys in the report slow (the fuzzer's -timeout catches that).
//
//===----------------------------------------------------------------------===//
#include "wopt/Manifest/Manifest.h"
#include "FuzzTarget.h"
#include "llvm/Support/raw_ostream.h"

using namespace wopt;
using namespace llvm;

namespace {

std::vector<CheckpointEntry> makeEntries() {
  std::vector<CheckpointEntry> Out;
  auto Add = [&](std::string Name, std::initializer_list<int64_t> Shape) {
    CheckpointEntry E;
    E.Name = std::move(Name);
    E.Shape.assign(Shape);
    E.Bytes = 4;
    for (int64_t D : Shape)
      E.Bytes *= D;
    Out.push_back(std::move(E));
  };
  Add("cls_token", {1, 1, 384});
  Add("pos_embed", {1, 197, 384});
  Add("patch_embed.proj.weight", {384, 3, 16, 16});
  Add("patch_embed.proj.bias", {384});
  for (int B = 0; B < 11; ++B) {
    std::string P = "blocks." + std::to_string(B) + ".";
    Add(P + "norm1.weight", {384});
    Add(P + "norm1.bias", {384});
    Add(P + "attn.qkv.weight", {1152, 384});
    Add(P + "attn.qkv.bias", {1152});
    Add(P + "attn.proj.weight", {384, 384});
    Add(P + "attn.proj.bias", {384});
    Add(P + "ls1.gamma", {384});
    Add(P + "norm2.weight", {384});
    Add(P + "norm2.bias", {384});
    Add(P + "mlp.fc1.weight", {1536, 384});
    Add(P + "mlp.fc1.bias", {1536});
    Add(P + "mlp.fc2.weight", {384, 1536});
  }
  Add("norm.weight", {384});
  Add("norm.bias", {384});
  Add("head.weight", {1000, 384});
  Add("head.bias", {1000});
  return Out;
}

std::string written(const Manifest &M) {
  std::string S;
  raw_string_ostream OS(S);
  writeManifest(M, OS);
  return S;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *Data, size_t Size) {
  Expected<Manifest> M = parseManifest(fuzz::asText(Data, Size), "fuzz.json");
  if (!M) {
    fuzz::expectCleanError(M.takeError());
    return 0;
  }
  std::string Once = written(*M);
  Expected<Manifest> Again = parseManifest(Once, "written.json");
  if (!Again)
    fuzz::propertyFailed("manifest",
                         "the written manifest does not parse: " +
                             toString(Again.takeError()),
                         Once);
  std::string Twice = written(*Again);
  if (Once != Twice)
    fuzz::propertyFailed("manifest", "write -> parse -> write changed it", Once,
                         Twice);
  static const std::vector<CheckpointEntry> Entries = makeEntries();
  CompareOptions Opts;
  Opts.ManifestName = "fuzz.json";
  Comparison C = compareWithManifest(*M, Entries, Opts);
  raw_null_ostream Null;
  printReport(C, Null);
  writeJSONReport(C, Null);
  return 0;
}
