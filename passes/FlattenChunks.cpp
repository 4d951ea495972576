//===- FlattenChunks.cpp - DINOv2 BlockChunk keys to flat block keys ------===//
//
// DINOv2 with block_chunks=N>0 keeps its blocks in BlockChunks: chunk c holds
// [Identity] * i + blocks[i:i+chunksize], so keys read `blocks.<c>.<g>.rest`
// where g is the *global* block index and c == g // chunksize. An eval model
// (block_chunks=0) wants `blocks.<g>.rest`. This pass checks the layout and
// renames; with chunks=N it does the inverse exactly as DINOv2 builds it:
// chunksize = depth // N, chunks start at range(0, depth, chunksize) (so a
// depth N does not divide gives more than N chunks, the last one shorter).
//
// It never touches any other `.0.`: the folk fix `key.replace(".0.", ".")`
// only handles chunk 0 and mangles `mlp.0.weight`, `proj.0.weight`, ...
//
//===----------------------------------------------------------------------===//
#include "PassUtils.h"
#include "wopt/IR/StateDict.h"
#include "wopt/Manifest/Target.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include <map>
#include <set>

using namespace llvm;

namespace wopt {
namespace {

using namespace passutil;

/// A key under a container prefix P, split as P.<A>.<B>.<Rest> (B and Rest
/// optional).
struct Split {
  uint64_t A = 0;
  std::optional<uint64_t> B;
  std::string Rest; ///< after the indices, "" when nothing follows
};

/// Splits Key as Prefix + "." + <int> [+ "." + <int>] + "." + rest. nullopt
/// when Key is not under Prefix or the first component is not an index.
std::optional<Split> splitUnder(StringRef Key, StringRef Prefix) {
  if (!Key.consume_front(Prefix) || !Key.consume_front("."))
    return std::nullopt;
  auto [First, Tail] = Key.split('.');
  std::optional<uint64_t> A = parseIndex(First);
  if (!A)
    return std::nullopt;
  Split S;
  S.A = *A;
  auto [Second, Tail2] = Tail.split('.');
  if (std::optional<uint64_t> B = parseIndex(Second)) {
    S.B = B;
    S.Rest = Tail2.str();
  } else {
    S.Rest = Tail.str();
  }
  return S;
}

/// The outermost prefixes P with some key P.<int>.<int>.<rest> and no key
/// P.<int>.<non-int>: the shape of a chunked container.
std::vector<std::string> findChunkedContainers(const DictValue &SD) {
  std::vector<std::string> Order;
  StringSet<> Seen;
  for (const DictEntry &E : SD.entries()) {
    std::optional<StringRef> K = E.keyString();
    if (!K)
      continue;
    auto Parts = splitKey(*K);
    for (size_t I = 1; I + 2 < Parts.size(); ++I) {
      if (!parseIndex(Parts[I]) || !parseIndex(Parts[I + 1]))
        continue;
      std::string P = join(ArrayRef(Parts).take_front(I), ".");
      if (Seen.insert(P).second)
        Order.push_back(P);
      break; // Only the outermost pair of indices in a key.
    }
  }
  std::vector<std::string> Out;
  for (const std::string &P : Order) {
    bool AllChunked = all_of(SD.entries(), [&](const DictEntry &E) {
      std::optional<StringRef> K = E.keyString();
      std::optional<Split> S = K ? splitUnder(*K, P) : std::nullopt;
      return !S || (S->B && !S->Rest.empty());
    });
    bool Nested = any_of(Out, [&](const std::string &Q) {
      return StringRef(P).starts_with(Q + ".");
    });
    if (AllChunked && !Nested)
      Out.push_back(P);
  }
  return Out;
}

/// What the keys under a chunked container hold.
struct ChunkLayout {
  std::map<uint64_t, std::set<uint64_t>> ByChunk; ///< chunk -> blocks
  std::map<uint64_t, std::set<uint64_t>> ByBlock; ///< block -> chunks
  std::map<std::pair<uint64_t, uint64_t>, unsigned> KeysPer; ///< (c, g)
};

class FlattenChunksPass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Renames DINOv2 BlockChunk keys prefix.<c>.<g>.rest to "
           "prefix.<g>.rest after checking that every block appears once "
           "and that c == g // chunksize for one chunk size. With chunks=N, "
           "the inverse, chunking as DINOv2 does (chunksize = depth // N).";
  }

  Error run(Checkpoint &C) override {
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    if (Chunks.wasSet())
      return chunk(*SD);
    return flatten(*SD);
  }

private:
  //===--- flatten --------------------------------------------------------===//

  Error flatten(DictValue &SD) {
    std::string P = *Prefix;
    if (P.empty()) {
      std::vector<std::string> Found = findChunkedContainers(SD);
      if (Found.empty()) {
        remark("", nullptr,
               "found no chunked container (keys X.<c>.<g>.*); nothing to do");
        return Error::success();
      }
      if (Found.size() > 1)
        return error("found " + Twine(Found.size()) +
                     " chunked containers: " + joinLimited(quoted(Found)) +
                     "\nhint: pick one with prefix=");
      P = Found.front();
      // Found, not told: a target that has the chunked keys (a model built
      // with block_chunks) keeps them.
      if (std::optional<std::string> K = chunkedKeyTargetHas(SD, P)) {
        remark("", nullptr,
               "left '" + P + "' chunked: the target " + target()->name() +
                   " has chunked keys such as '" + *K + "'");
        return Error::success();
      }
    }
    if (StringRef(P).ends_with("."))
      P.pop_back();

    Expected<ChunkLayout> L = collectLayout(SD, P);
    if (!L)
      return L.takeError();
    if (Error E = checkLayout(P, *L))
      return E;

    auto Map = [&](StringRef Key) -> std::optional<std::string> {
      std::optional<Split> S = splitUnder(Key, P);
      if (!S || !S->B)
        return std::nullopt;
      return P + "." + std::to_string(*S->B) + "." + S->Rest;
    };
    unsigned Renamed = 0;
    if (Error E = renameKeys(SD, Map, argument(), &Renamed))
      return E;
    NumRenamed += Renamed;
    NumChunks += L->ByChunk.size();
    NumBlocks += L->ByBlock.size();
    remark("", nullptr,
           "flattened " + Twine(L->ByBlock.size()) + " blocks from " +
               Twine(L->ByChunk.size()) + " chunks of '" + P + "' (" +
               Twine(Renamed) + " keys)");
    NumMetadata += flattenMetadata(SD, P, *L);
    return Error::success();
  }

  /// A key under P the target has as it is, if any.
  std::optional<std::string> chunkedKeyTargetHas(const DictValue &SD,
                                                 StringRef P) const {
    if (!target())
      return std::nullopt;
    for (const DictEntry &E : SD.entries())
      if (std::optional<StringRef> K = E.keyString())
        if (K->starts_with((P + ".").str()) && target()->expects(*K))
          return K->str();
    return std::nullopt;
  }

  /// Reads the (chunk, block) pairs under P; every key under P must be
  /// P.<chunk>.<block>.<name>.
  Expected<ChunkLayout> collectLayout(const DictValue &SD, StringRef P) {
    ChunkLayout L;
    std::vector<std::string> Malformed;
    for (const DictEntry &E : SD.entries()) {
      std::optional<StringRef> K = E.keyString();
      if (!K || !K->starts_with((P + ".").str()))
        continue;
      std::optional<Split> S = splitUnder(*K, P);
      if (!S || !S->B || S->Rest.empty()) {
        Malformed.push_back(K->str());
        continue;
      }
      L.ByChunk[S->A].insert(*S->B);
      L.ByBlock[*S->B].insert(S->A);
      ++L.KeysPer[{S->A, *S->B}];
    }
    if (!Malformed.empty())
      return error("'" + P + "' is not a chunked container: " +
                   Twine(Malformed.size()) + " keys are not " + P +
                   ".<chunk>.<block>.<name>\nnote: " + joinLimited(Malformed));
    if (L.ByChunk.empty())
      return error("no key matches " + P + ".<chunk>.<block>.<name>");
    return L;
  }

  /// _metadata: block paths lose their chunk index; the chunk containers
  /// and their Identity placeholders go away.
  unsigned flattenMetadata(DictValue &SD, StringRef P, const ChunkLayout &L) {
    return rewriteModuleMetadata(
        SD, [&](StringRef Path) -> std::optional<std::string> {
          std::optional<Split> S = splitUnder((Path + ".").str(), P);
          if (!S)
            return Path.str();
          auto Chunk = L.ByChunk.find(S->A);
          if (!S->B || Chunk == L.ByChunk.end() || !Chunk->second.count(*S->B))
            return std::nullopt;
          std::string Out = (P + "." + Twine(*S->B)).str();
          if (!S->Rest.empty())
            Out += "." + StringRef(S->Rest).drop_back().str();
          return Out;
        });
  }

  /// Every block 0..depth-1 exactly once, chunks 0..n-1 with no gap, and
  /// c == g // S where S is the size of chunk 0 (the last chunk may be
  /// shorter).
  Error checkLayout(StringRef P, const ChunkLayout &L) {
    const auto &ByChunk = L.ByChunk;
    const auto &ByBlock = L.ByBlock;
    const auto &KeysPer = L.KeysPer;
    std::vector<std::string> Problems;
    auto group = [&](uint64_t Ch, uint64_t G) {
      auto It = KeysPer.find({Ch, G});
      unsigned N = It == KeysPer.end() ? 0 : It->second;
      return (P + "." + Twine(Ch) + "." + Twine(G) + ".* (" + Twine(N) +
              " keys)")
          .str();
    };
    uint64_t Depth = ByBlock.rbegin()->first + 1;
    for (const auto &[G, Cs] : ByBlock)
      if (Cs.size() > 1) {
        std::vector<std::string> Where;
        for (uint64_t Ch : Cs)
          Where.push_back(group(Ch, G));
        Problems.push_back("block " + std::to_string(G) +
                           " appears in several chunks: " + join(Where, ", "));
      }
    std::vector<std::string> Missing;
    for (uint64_t G = 0; G < Depth; ++G)
      if (!ByBlock.count(G))
        Missing.push_back(std::to_string(G));
    if (!Missing.empty())
      Problems.push_back("blocks missing (depth " + std::to_string(Depth) +
                         "): " + joinLimited(Missing, 16));
    auto First = ByChunk.find(0);
    if (First == ByChunk.end()) {
      Problems.push_back("there is no chunk 0");
    } else {
      uint64_t Size = First->second.size();
      for (const auto &[Ch, Gs] : ByChunk)
        for (uint64_t G : Gs)
          if (G / Size != Ch)
            Problems.push_back(group(Ch, G) + ": block " + std::to_string(G) +
                               " belongs in chunk " + std::to_string(G / Size) +
                               " with chunk size " + std::to_string(Size) +
                               " (the size of chunk 0)");
    }
    if (Problems.empty())
      return Error::success();
    std::string Msg = "inconsistent chunk layout under '" + P.str() + "'";
    for (const std::string &Pr : Problems)
      Msg += "\nnote: " + Pr;
    Msg += "\nnote: DINOv2 chunk c holds blocks [c*size, (c+1)*size) under "
           "their global index";
    return error(Msg);
  }

  //===--- chunk (the inverse) --------------------------------------------===//

  Error chunk(DictValue &SD) {
    int64_t N = Chunks;
    if (N <= 0)
      return error("chunks=" + Twine(N) + ": expected a positive count");
    std::string P = *Prefix;
    if (P.empty()) {
      Expected<std::string> Found = findFlatBlocks(SD);
      if (!Found)
        return Found.takeError();
      P = *Found;
    }
    if (StringRef(P).ends_with("."))
      P.pop_back();
    std::set<uint64_t> Blocks;
    std::vector<std::string> Bad;
    for (const DictEntry &E : SD.entries()) {
      std::optional<StringRef> K = E.keyString();
      if (!K || !K->starts_with(P + "."))
        continue;
      std::optional<Split> S = splitUnder(*K, P);
      if (!S || S->B || S->Rest.empty()) {
        Bad.push_back(K->str());
        continue;
      }
      Blocks.insert(S->A);
    }
    if (!Bad.empty())
      return error(
          "'" + P + "' is not a flat block list: " + Twine(Bad.size()) +
          " keys are not " + P +
          ".<block>.<name> (already chunked?)\nnote: " + joinLimited(Bad));
    if (Blocks.empty())
      return error("no key matches " + P + ".<block>.<name>");
    uint64_t Depth = *Blocks.rbegin() + 1;
    if (Blocks.size() != Depth)
      return error("blocks of '" + P + "' have gaps: " + Twine(Blocks.size()) +
                   " blocks, highest index " + Twine(Depth - 1));
    if (uint64_t(N) > Depth)
      return error("chunks=" + Twine(N) + " exceeds the depth " + Twine(Depth) +
                   " (DINOv2's chunk size depth // N is 0)");
    uint64_t Size = Depth / N;
    auto Map = [&](StringRef Key) -> std::optional<std::string> {
      std::optional<Split> S = splitUnder(Key, P);
      if (!S || S->B)
        return std::nullopt;
      return P + "." + std::to_string(S->A / Size) + "." +
             std::to_string(S->A) + "." + S->Rest;
    };
    unsigned Renamed = 0;
    if (Error E = renameKeys(SD, Map, argument(), &Renamed))
      return E;
    NumRenamed += Renamed;
    NumBlocks += Depth;
    NumChunks += (Depth + Size - 1) / Size;
    remark("", nullptr,
           "chunked " + Twine(Depth) + " blocks of '" + P + "' into " +
               Twine((Depth + Size - 1) / Size) + " chunks of " + Twine(Size));
    NumMetadata += rewriteModuleMetadata(
        SD, [&](StringRef Path) -> std::optional<std::string> {
          std::optional<Split> S = splitUnder(Path.str() + ".", P);
          if (!S || S->B)
            return Path.str();
          std::string Out = P + "." + std::to_string(S->A / Size) + "." +
                            std::to_string(S->A);
          if (!S->Rest.empty())
            Out += "." + StringRef(S->Rest).drop_back().str();
          return Out;
        });
    return Error::success();
  }

  /// The unique prefix ending in a `blocks` component with keys
  /// P.<int>.<name>.
  Expected<std::string> findFlatBlocks(const DictValue &SD) {
    std::vector<std::string> Found;
    StringSet<> Seen;
    for (const DictEntry &E : SD.entries()) {
      std::optional<StringRef> K = E.keyString();
      if (!K)
        continue;
      auto Parts = splitKey(*K);
      for (size_t I = 0; I + 2 < Parts.size(); ++I)
        if (Parts[I] == "blocks" && parseIndex(Parts[I + 1])) {
          std::string P = join(ArrayRef(Parts).take_front(I + 1), ".");
          if (Seen.insert(P).second)
            Found.push_back(P);
          break;
        }
    }
    if (Found.size() == 1)
      return Found.front();
    if (Found.empty())
      return error("found no block list (keys X.blocks.<i>.*)\nhint: name "
                   "the container with prefix=");
    return error("found " + Twine(Found.size()) + " block lists: " +
                 joinLimited(quoted(Found)) + "\nhint: pick one with prefix=");
  }

  static std::vector<std::string> quoted(ArrayRef<std::string> L) {
    std::vector<std::string> Q;
    for (const std::string &S : L)
      Q.push_back("'" + S + "'");
    return Q;
  }

  Option<std::string> Prefix{*this, "prefix",
                             "the chunked container, e.g. 'blocks' "
                             "(default: detect X.<int>.<int>.* keys)"};
  Option<int64_t> Chunks{*this, "chunks",
                         "chunk a flat block list into N chunks the way "
                         "DINOv2 does (the inverse)",
                         /*Default=*/0, /*Min=*/1};
  Statistic NumRenamed{*this, "renamed", "keys renamed"};
  Statistic NumBlocks{*this, "blocks", "blocks found"};
  Statistic NumChunks{*this, "chunks", "chunks found or made"};
  Statistic NumMetadata{*this, "metadata-rewritten",
                        "_metadata module paths rewritten or dropped"};
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(FlattenChunks, FlattenChunksPass)
