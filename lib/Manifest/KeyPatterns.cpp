//===- KeyPatterns.cpp - Grouping keys and pairing near misses -----------===//
//
// Both jobs look at keys as dot-separated components. Grouping folds keys
// that differ only in integer components into one pattern. Near-miss
// detection tries a fixed set of structural edits on each unexpected key and
// asks whether the result is a missing key; every lookup is a hash probe, so
// the cost is O(keys * components).
//
//===----------------------------------------------------------------------===//
#include "wopt/Manifest/Manifest.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include <algorithm>
#include <map>

using namespace wopt;
using namespace llvm;

namespace {

/// A component that names a module-list index: digits without a leading
/// zero ("07" is a name, not an index), short enough for uint64_t.
bool isIndex(StringRef C) {
  if (C.empty() || C.size() > 18 || (C.size() > 1 && C[0] == '0'))
    return false;
  return all_of(C, isDigit);
}

uint64_t indexValue(StringRef C) {
  uint64_t V = 0;
  bool Failed = C.getAsInteger(10, V);
  assert(!Failed && "caller checked isIndex");
  (void)Failed;
  return V;
}

SmallVector<StringRef, 8> components(StringRef Key) {
  SmallVector<StringRef, 8> C;
  Key.split(C, '.');
  return C;
}

std::string joinComponents(ArrayRef<StringRef> C) { return join(C, "."); }

//===----------------------------------------------------------------------===//
// Grouping
//===----------------------------------------------------------------------===//

struct SplitKey {
  SmallVector<StringRef, 8> Comps;
  SmallVector<unsigned, 4> IndexPos; ///< positions of integer components
  SmallVector<uint64_t, 4> Values;   ///< their values
};

SplitKey splitKey(StringRef Key) {
  SplitKey S;
  S.Comps = components(Key);
  for (unsigned I = 0; I < S.Comps.size(); ++I)
    if (isIndex(S.Comps[I])) {
      S.IndexPos.push_back(I);
      S.Values.push_back(indexValue(S.Comps[I]));
    }
  return S;
}

/// The key with its integer components replaced by a marker no key holds.
std::string templateOf(const SplitKey &S) {
  SmallVector<StringRef, 8> C(S.Comps.begin(), S.Comps.end());
  for (unsigned P : S.IndexPos)
    C[P] = "\x01";
  return joinComponents(C);
}

std::vector<uint64_t> distinctValues(ArrayRef<SplitKey> Keys,
                                     ArrayRef<unsigned> Members, unsigned Pos) {
  std::vector<uint64_t> V;
  V.reserve(Members.size());
  for (unsigned M : Members)
    V.push_back(Keys[M].Values[Pos]);
  llvm::sort(V);
  V.erase(std::unique(V.begin(), V.end()), V.end());
  return V;
}

/// Escapes what llvm::GlobPattern reads specially (brace expansion is off
/// in compileGlobs).
std::string escapeGlob(StringRef S) {
  std::string R;
  for (char C : S) {
    if (C == '*' || C == '?' || C == '[' || C == ']' || C == '\\')
      R += '\\';
    R += C;
  }
  return R;
}

KeyGroup makeGroup(ArrayRef<SplitKey> Keys, std::vector<unsigned> Members,
                   bool Sparse) {
  const SplitKey &First = Keys[Members.front()];
  SmallVector<std::string, 8> C(First.Comps.begin(), First.Comps.end());
  SmallVector<std::string, 8> Glob;
  for (StringRef Comp : First.Comps)
    Glob.push_back(escapeGlob(Comp));
  for (unsigned I = 0; I < First.IndexPos.size(); ++I) {
    std::vector<uint64_t> Values = distinctValues(Keys, Members, I);
    C[First.IndexPos[I]] = formatIntegerSet(Values);
    if (Values.size() > 1)
      Glob[First.IndexPos[I]] = "*";
  }
  KeyGroup G;
  G.Pattern = join(C, ".");
  G.Glob = join(Glob, ".");
  G.Members = std::move(Members);
  G.Sparse = Sparse;
  // The tail is what may differ between merged groups: the names after the
  // last integer set, or the last name of a key without integers.
  size_t StemSize =
      First.IndexPos.empty() ? C.size() - 1 : First.IndexPos.back() + 1;
  if (StemSize > 0 && StemSize < C.size()) {
    G.Stem = join(ArrayRef(C).take_front(StemSize), ".");
    G.Tail = join(ArrayRef(C).drop_front(StemSize), ".");
  }
  return G;
}

/// Renders one template's members. A full cartesian product is one pattern;
/// otherwise split on the first varying index when that gives two full
/// patterns (Swin stages of two depths). More pieces, as DINOv2's chunked
/// `blocks.<c>.<g>` gives, read better as one sparse pattern with a count.
void renderMembers(ArrayRef<SplitKey> Keys, std::vector<unsigned> Members,
                   std::vector<KeyGroup> &Out) {
  const unsigned MaxSplit = 2;
  unsigned NumPos = Keys[Members.front()].Values.size();
  uint64_t Combinations = 1;
  int FirstVarying = -1;
  for (unsigned P = 0; P < NumPos; ++P) {
    size_t N = distinctValues(Keys, Members, P).size();
    if (N > 1 && FirstVarying < 0)
      FirstVarying = P;
    Combinations = std::min<uint64_t>(Combinations * N, UINT32_MAX);
  }
  if (Combinations == Members.size()) {
    Out.push_back(makeGroup(Keys, std::move(Members), false));
    return;
  }
  std::map<uint64_t, std::vector<unsigned>> ByValue;
  for (unsigned M : Members)
    ByValue[Keys[M].Values[FirstVarying]].push_back(M);
  std::vector<KeyGroup> Split;
  for (auto &KV : ByValue) {
    renderMembers(Keys, std::move(KV.second), Split);
    if (Split.size() > MaxSplit)
      break;
  }
  if (Split.size() > MaxSplit) {
    Out.push_back(makeGroup(Keys, std::move(Members), true));
    return;
  }
  for (KeyGroup &G : Split)
    Out.push_back(std::move(G));
}

} // namespace

ArrayRef<StringLiteral> wopt::derivedBufferNames() {
  static constexpr StringLiteral Names[] = {"position_ids", "token_type_ids",
                                            "relative_position_index",
                                            "attn_mask", "rotary_emb.inv_freq"};
  return Names;
}

std::optional<StringRef> wopt::derivedBufferOf(StringRef Key) {
  for (StringRef N : derivedBufferNames())
    if (Key == N || (Key.ends_with(N) && Key.size() > N.size() &&
                     Key[Key.size() - N.size() - 1] == '.'))
      return N;
  return std::nullopt;
}

std::optional<std::string> wopt::quoteForPipeline(StringRef V) {
  // Brackets are fine when balanced (rename's groups), but a key's own
  // `{` or an escaped `\]` is not, so quote whenever one is unbalanced.
  int Depth = 0;
  bool Balanced = true;
  for (char C : V) {
    if (C == '(' || C == '[' || C == '{')
      ++Depth;
    else if ((C == ')' || C == ']' || C == '}') && --Depth < 0)
      Balanced = false;
  }
  Balanced &= Depth == 0;
  if (Balanced && !V.empty() && V.find_first_of("'\" ,\t\n") == StringRef::npos)
    return V.str();
  if (!V.contains('\''))
    return ("'" + V + "'").str();
  if (!V.contains('"'))
    return ("\"" + V + "\"").str();
  return std::nullopt;
}

std::string wopt::formatIntegerSet(ArrayRef<uint64_t> V) {
  assert(!V.empty() && is_sorted(V) && "needs sorted distinct values");
  if (V.size() == 1)
    return std::to_string(V[0]);
  std::string S = "{";
  for (size_t I = 0; I < V.size();) {
    size_t J = I;
    while (J + 1 < V.size() && V[J + 1] == V[J] + 1)
      ++J;
    if (I)
      S += ",";
    // Runs of three or more read better as a range; a pair stays a list.
    if (J - I >= 2) {
      S += std::to_string(V[I]) + ".." + std::to_string(V[J]);
    } else {
      S += std::to_string(V[I]);
      if (J > I)
        S += "," + std::to_string(V[J]);
    }
    I = J + 1;
  }
  return S + "}";
}

std::vector<KeyGroup> wopt::groupKeys(ArrayRef<std::string> Keys) {
  std::vector<SplitKey> Split;
  Split.reserve(Keys.size());
  for (const std::string &K : Keys)
    Split.push_back(splitKey(K));

  StringMap<unsigned> GroupOf;
  std::vector<std::vector<unsigned>> Templates;
  for (unsigned I = 0; I < Keys.size(); ++I) {
    auto [It, New] =
        GroupOf.try_emplace(templateOf(Split[I]), Templates.size());
    if (New)
      Templates.emplace_back();
    Templates[It->second].push_back(I);
  }

  std::vector<KeyGroup> Out;
  for (std::vector<unsigned> &Members : Templates)
    renderMembers(Split, std::move(Members), Out);
  llvm::stable_sort(Out, [](const KeyGroup &A, const KeyGroup &B) {
    return A.Members.front() < B.Members.front();
  });
  return Out;
}

std::vector<KeyGroup> wopt::groupKeysByStem(ArrayRef<std::string> Keys,
                                            size_t MaxNames) {
  std::vector<KeyGroup> Out;
  StringMap<unsigned> MergedInto;
  std::vector<std::vector<std::string>> Tails;
  for (KeyGroup &G : groupKeys(Keys)) {
    auto [It, New] = MergedInto.try_emplace(
        G.Stem.empty() ? "" : G.Stem + (G.Sparse ? "\x01s" : "\x01"),
        Out.size());
    if (New || G.Stem.empty()) {
      Tails.push_back({G.Tail});
      Out.push_back(std::move(G));
      continue;
    }
    KeyGroup &M = Out[It->second];
    append_range(M.Members, G.Members);
    Tails[It->second].push_back(G.Tail);
  }
  for (size_t I = 0; I < Out.size(); ++I) {
    ArrayRef<std::string> T = Tails[I];
    if (T.size() < 2)
      continue;
    std::string Names = join(T.take_front(MaxNames), ",");
    if (T.size() > MaxNames)
      Names += ",+" + std::to_string(T.size() - MaxNames) + " more";
    Out[I].Pattern = Out[I].Stem + ".{" + Names + "}";
    Out[I].Tail.clear();
    llvm::sort(Out[I].Members);
  }
  return Out;
}

//===----------------------------------------------------------------------===//
// Near misses
//===----------------------------------------------------------------------===//

namespace {

std::string plural(size_t N, StringRef One, StringRef Many) {
  return std::to_string(N) + " " + (N == 1 ? One : Many).str();
}

/// Counts occurrences and remembers the first example of each.
struct Tally {
  std::map<std::string, unsigned> Count;
  std::vector<std::string> Order;
  void add(const std::string &K) {
    if (Count[K]++ == 0)
      Order.push_back(K);
  }
  /// Keys by count, most first; ties keep first-seen order.
  std::vector<std::string> ranked() const {
    std::vector<std::string> R = Order;
    llvm::stable_sort(R, [&](const std::string &A, const std::string &B) {
      return Count.at(A) > Count.at(B);
    });
    return R;
  }
};

/// Wrappers that frameworks put in front of every key (DDP, torch.compile,
/// Lightning); they are stripped, never selected.
bool isWrapperComponent(StringRef C) {
  return C == "module" || C == "_orig_mod" || C == "model";
}

} // namespace

std::string wopt::escapeRegex(StringRef S) {
  std::string R;
  for (char C : S) {
    if (StringRef("\\^$.|?*+()[]{}").contains(C))
      R += '\\';
    R += C;
  }
  return R;
}

namespace {

/// Keys with more components than this are left out of the searches that
/// edit one component at a time (chunk index, renamed component): each
/// edit rebuilds the key, so the cost per key grows with components times
/// length. Real module paths have far fewer.
constexpr size_t MaxEditComponents = 32;

class NearMissFinder {
public:
  NearMissFinder(ArrayRef<std::string> U, ArrayRef<std::string> M,
                 ArrayRef<std::string> Matched)
      : U(U), M(M), Matched(Matched), UTag(U.size()), MTag(M.size()),
        Explained(U.size(), false), MissingExplained(M.size(), false) {
    for (unsigned I = 0; I < M.size(); ++I)
      MIndex.try_emplace(M[I], I);
    for (unsigned I = 0; I < U.size(); ++I)
      UIndex.try_emplace(U[I], I);
    for (const std::string &K : U)
      UComps.push_back(components(K));
    for (const std::string &K : Matched)
      MatchedComps.push_back(components(K));
  }

  std::vector<Hint> run() {
    chunks();
    downsampleAndHead();
    prefixes();
    renamedComponent();
    derivedBuffers();
    return sortedHints();
  }

  /// Per key, the index of the hint (as run() returns them) naming its fix.
  std::vector<int> hintIndices(ArrayRef<std::string> Tags) const {
    std::vector<int> R(Tags.size(), -1);
    for (size_t I = 0; I < Tags.size(); ++I)
      if (!Tags[I].empty())
        R[I] = FinalIndex.lookup(Tags[I]) - 1;
    return R;
  }

private:
  /// Tag ties the hint to the keys explain() marked with it.
  void add(StringRef Kind, StringRef Fix, unsigned N, const Twine &Msg,
           const std::string &Tag) {
    Hints.push_back({Kind.str(), Fix.str(), Msg.str(), N, examples(Tag), {}});
    HintTags.push_back(Tag);
  }

  std::optional<unsigned> findMissing(ArrayRef<StringRef> C) const {
    auto It = MIndex.find(joinComponents(C));
    if (It == MIndex.end())
      return std::nullopt;
    return It->second;
  }

  /// Unexpected key I would be missing key J (none for a derived buffer)
  /// under the fix that Tag stands for.
  void explain(unsigned I, std::optional<unsigned> J, const std::string &Tag) {
    Explained[I] = true;
    UTag[I] = Tag;
    if (J) {
      MissingExplained[*J] = true;
      MTag[*J] = Tag;
    }
    PairsOf[Tag].push_back({I, J ? int(*J) : -1});
  }

  std::vector<std::pair<std::string, std::string>>
  examples(const std::string &Tag) const;
  std::vector<Hint> sortedHints();

  void derivedBuffers();
  void chunks();
  void downsampleAndHead();
  void prefixes();
  void renamedComponent();

  ArrayRef<std::string> U, M;
  /// Keys both sides have: a fix must not rename or drop them.
  ArrayRef<std::string> Matched;
  StringMap<unsigned> MIndex, UIndex;
  std::vector<SmallVector<StringRef, 8>> UComps, MatchedComps;
  /// Which fix explains each key ("" for none), and the pairs per fix.
  std::vector<std::string> UTag, MTag;
  std::map<std::string, std::vector<std::pair<unsigned, int>>> PairsOf;
  std::vector<std::string> HintTags;
  /// Tag -> 1 + index of its hint after sorting.
  StringMap<int> FinalIndex;

public:
  std::vector<bool> Explained, MissingExplained;
  std::vector<std::string> unexpectedTags() const { return UTag; }
  std::vector<std::string> missingTags() const { return MTag; }

private:
  std::vector<Hint> Hints;
};

/// The first pair, then the last one of the same key shape, so the two
/// show how the integers move (`blocks.3.7.x` -> `blocks.7.x`), not just
/// the trivial first case twice.
std::vector<std::pair<std::string, std::string>>
NearMissFinder::examples(const std::string &Tag) const {
  auto It = PairsOf.find(Tag);
  if (It == PairsOf.end())
    return {};
  ArrayRef<std::pair<unsigned, int>> P = It->second;
  auto Spell = [&](std::pair<unsigned, int> X) {
    return std::make_pair(U[X.first],
                          X.second < 0 ? std::string() : M[X.second]);
  };
  std::vector<std::pair<std::string, std::string>> R = {Spell(P.front())};
  std::string Shape = templateOf(splitKey(U[P.front().first]));
  size_t Second = P.size();
  while (Second > 1 && templateOf(splitKey(U[P[Second - 1].first])) != Shape)
    --Second;
  if (Second > 1)
    R.push_back(Spell(P[Second - 1]));
  else if (P.size() > 1)
    R.push_back(Spell(P[1]));
  return R;
}

/// Most keys explained first; ties keep the order the checks ran in.
std::vector<Hint> NearMissFinder::sortedHints() {
  std::vector<unsigned> Order(Hints.size());
  for (unsigned I = 0; I < Order.size(); ++I)
    Order[I] = I;
  llvm::stable_sort(Order, [&](unsigned A, unsigned B) {
    return Hints[A].NumKeys > Hints[B].NumKeys;
  });
  std::vector<Hint> Sorted;
  for (unsigned I : Order) {
    FinalIndex.try_emplace(HintTags[I], Sorted.size() + 1);
    Sorted.push_back(std::move(Hints[I]));
  }
  return Sorted;
}

/// Buffers models rebuild in __init__; a checkpoint holding them is stale,
/// never wrong, so drop-dynamic-buffers is always the fix.
/// Runs last, on what no structural edit explains: `module.position_ids`
/// next to a missing `position_ids` is a prefix to strip, not a buffer to
/// drop. The fix must not drop a buffer the target has: those the defaults
/// would take among the matched keys go into keep=.
void NearMissFinder::derivedBuffers() {
  Tally Names;
  unsigned N = 0;
  for (size_t I = 0; I < U.size(); ++I) {
    if (Explained[I])
      continue;
    std::optional<StringRef> Name = derivedBufferOf(U[I]);
    if (!Name)
      continue;
    Names.add(Name->str());
    explain(I, std::nullopt, "buffers");
    ++N;
  }
  if (!N)
    return;
  Tally Keep;
  for (const std::string &K : Matched)
    if (std::optional<StringRef> Name = derivedBufferOf(K))
      Keep.add(Name->str());
  std::string Fix = "drop-dynamic-buffers";
  if (!Keep.Order.empty())
    Fix += "{keep=" + join(Keep.Order, ",") + "}";
  add("drop-dynamic-buffers", Fix, N,
      (N == 1 ? "1 unexpected key is a buffer the model recomputes ("
              : plural(N, "",
                       "unexpected keys are buffers the model "
                       "recomputes (")) +
          join(Names.Order, ", ") + "); add " + Fix +
          (Keep.Order.empty() ? ""
                              : " (keep=: the manifest has those buffers)"),
      "buffers");
}

/// DINOv2 BlockChunk: `blocks.<c>.<g>.x` where the target has `blocks.<g>.x`.
void NearMissFinder::chunks() {
  Tally Prefixes;
  unsigned N = 0;
  for (size_t I = 0; I < U.size(); ++I) {
    ArrayRef<StringRef> C = UComps[I];
    if (C.size() > MaxEditComponents)
      continue;
    for (size_t P = 0; P + 1 < C.size(); ++P) {
      if (!isIndex(C[P]) || !isIndex(C[P + 1]))
        continue;
      SmallVector<StringRef, 8> Flat(C.begin(), C.end());
      Flat.erase(Flat.begin() + P);
      std::optional<unsigned> J = findMissing(Flat);
      if (!J)
        continue;
      Prefixes.add(joinComponents(C.take_front(P)));
      explain(I, J, "chunks");
      ++N;
      break;
    }
  }
  if (!N)
    return;
  std::string Pre = Prefixes.ranked().front();
  std::string Dot = Pre.empty() ? "" : ".";
  add("flatten-chunks", "flatten-chunks", N,
      plural(N, "unexpected key looks", "unexpected keys look") +
          " like chunked blocks (" + Pre + Dot + "<c>.<g>.* where the " +
          "manifest has " + Pre + Dot + "<g>.*); add flatten-chunks",
      "chunks");
}

/// Swin: old checkpoints keep `layers.<i>.downsample` at the end of stage i
/// and the classifier at `head.`; timm >= 0.9 wants `layers.<i+1>` and
/// `head.fc.`. One pass, reshape-downsample, converts either way.
void NearMissFinder::downsampleAndHead() {
  unsigned ToTimm = 0, ToOriginal = 0, HeadToFc = 0, FcToHead = 0;
  std::string Stage = "layers";
  bool HeadFirst = true;
  for (size_t I = 0; I < U.size(); ++I) {
    ArrayRef<StringRef> C = UComps[I];
    for (size_t P = 0; P + 1 < C.size(); ++P) {
      if (isIndex(C[P]) && C[P + 1] == "downsample") {
        uint64_t Idx = indexValue(C[P]);
        SmallVector<StringRef, 8> K(C.begin(), C.end());
        std::string Next = std::to_string(Idx + 1);
        std::string Prev = std::to_string(Idx ? Idx - 1 : 0);
        K[P] = Next;
        std::optional<unsigned> J = findMissing(K);
        bool Up = J.has_value();
        if (!J && Idx > 0) {
          K[P] = Prev;
          J = findMissing(K);
        }
        if (!J)
          break;
        ++(Up ? ToTimm : ToOriginal);
        explain(I, J, Up ? "to-timm" : "to-original");
        if (P > 0)
          Stage = C[P - 1].str();
        break;
      }
      if (C[P] != "head")
        continue;
      SmallVector<StringRef, 8> K(C.begin(), C.end());
      bool ToFc = C[P + 1] != "fc";
      if (ToFc)
        K.insert(K.begin() + P + 1, "fc");
      else
        K.erase(K.begin() + P + 1);
      if (std::optional<unsigned> J = findMissing(K)) {
        ++(ToFc ? HeadToFc : FcToHead);
        explain(I, J, ToFc ? "to-timm" : "to-original");
      }
      HeadFirst = P == 0;
      break;
    }
  }
  // rename matches whole keys: capture what comes before and after.
  std::string Head = HeadFirst ? "head" : "(.*)\\.head";
  std::string HeadTo = HeadFirst ? "head" : "$1.head";
  std::string Rest = HeadFirst ? "$1" : "$2";
  if (ToTimm || ToOriginal) {
    bool Timm = ToTimm >= ToOriginal;
    unsigned N = Timm ? ToTimm : ToOriginal;
    std::string From = Timm ? "<i>" : "<i+1>", To = Timm ? "<i+1>" : "<i>";
    unsigned NumHead = Timm ? HeadToFc : FcToHead;
    std::string Fix = std::string("reshape-downsample{to=") +
                      (Timm ? "timm" : "original") + "}";
    add("reshape-downsample", Fix, N + NumHead,
        plural(N, "unexpected key has", "unexpected keys have") + " " + Stage +
            "." + From + ".downsample.* where the manifest has " + Stage + "." +
            To + ".downsample.*" +
            (NumHead ? " (and " + plural(NumHead, "key", "keys") + " " +
                           (Timm ? "head.* for head.fc.*"
                                 : "head.fc.* for head.*") +
                           ")"
                     : std::string()) +
            "; add " + Fix,
        Timm ? "to-timm" : "to-original");
    return;
  }
  if (HeadToFc)
    add("head-fc", "reshape-downsample{to=timm}", HeadToFc,
        plural(HeadToFc, "unexpected key", "unexpected keys") +
            " head.* match missing head.fc.*; add reshape-downsample{to=timm} "
            "or rename{rule=" +
            Head + "\\.(.*)=>" + HeadTo + ".fc." + Rest + "}",
        "to-timm");
  if (FcToHead)
    add("head-fc", "reshape-downsample{to=original}", FcToHead,
        plural(FcToHead, "unexpected key", "unexpected keys") +
            " head.fc.* match missing head.*; add "
            "reshape-downsample{to=original} or rename{rule=" +
            Head + "\\.fc\\.(.*)=>" + HeadTo + "." + Rest + "}",
        "to-original");
}

/// Splits an extra prefix into wrappers to strip and a part to keep
/// (select, when the checkpoint also holds keys outside it).
std::string prefixFix(StringRef Prefix, bool OthersOutside) {
  SmallVector<StringRef, 4> C = components(Prefix.drop_back());
  size_t W = 0;
  while (W < C.size() && isWrapperComponent(C[W]))
    ++W;
  std::string Fix = "canonicalize-prefix{";
  auto Spell = [](ArrayRef<StringRef> Part) {
    return joinComponents(Part) + ".";
  };
  if (W == C.size())
    return Fix + "strip=" + Prefix.str() + "}";
  if (W)
    Fix += "strip=" + Spell(ArrayRef(C).take_front(W)) + " ";
  Fix += std::string(OthersOutside ? "select=" : "strip=") +
         Spell(ArrayRef(C).drop_front(W)) + "}";
  return Fix;
}

/// `module.x` for `x` (strip or select), `x` for `backbone.x` (add), and
/// torch.compile's `_orig_mod.` anywhere in the key.
/// How many keys start with each prefix of Counts (whole components, at
/// most MaxComps of them), counted in one pass over Keys: asking every key
/// for every prefix would be quadratic.
void countUnder(ArrayRef<SmallVector<StringRef, 8>> Keys, size_t MaxComps,
                StringMap<unsigned> &Counts) {
  for (ArrayRef<StringRef> C : Keys) {
    std::string Pre;
    for (size_t P = 0; P < C.size() && P < MaxComps; ++P) {
      Pre += C[P].str() + ".";
      auto It = Counts.find(Pre);
      if (It != Counts.end())
        ++It->second;
    }
  }
}

void NearMissFinder::prefixes() {
  const size_t MaxPrefix = 4;
  struct Pair {
    unsigned I, J;
    std::string Pre;
  };
  std::vector<Pair> Found;
  Tally Strip;
  for (size_t I = 0; I < U.size(); ++I) {
    if (Explained[I])
      continue;
    ArrayRef<StringRef> C = UComps[I];
    for (size_t P = 1; P < C.size() && P <= MaxPrefix; ++P) {
      std::string Pre = joinComponents(C.take_front(P)) + ".";
      std::optional<unsigned> J = findMissing(C.drop_front(P));
      if (!J) {
        // torch.compile may wrap a submodule: `encoder._orig_mod.x`.
        if (C[P] != "_orig_mod")
          continue;
        SmallVector<StringRef, 8> K(C.begin(), C.end());
        K.erase(K.begin() + P);
        if (!(J = findMissing(K)))
          continue;
        Pre = "_orig_mod.";
      }
      Strip.add(Pre);
      Found.push_back({unsigned(I), *J, Pre});
      break;
    }
  }
  StringMap<unsigned> Under, MatchedUnder;
  for (const std::string &Pre : Strip.Order) {
    Under.try_emplace(Pre, 0);
    MatchedUnder.try_emplace(Pre, 0);
  }
  countUnder(UComps, MaxPrefix, Under);
  countUnder(MatchedComps, MaxPrefix, MatchedUnder);
  bool MatchedOrigMod = any_of(MatchedComps, [](ArrayRef<StringRef> C) {
    return is_contained(C, "_orig_mod");
  });
  // Stripping a prefix a matched key has would rename that key away.
  auto Safe = [&](const std::string &Pre) {
    return Pre == "_orig_mod." ? !MatchedOrigMod : !MatchedUnder.lookup(Pre);
  };
  for (const Pair &F : Found)
    if (Safe(F.Pre))
      explain(F.I, F.J, "strip:" + F.Pre);
  for (const std::string &Pre : Strip.ranked()) {
    if (!Safe(Pre))
      continue;
    unsigned N = Strip.Count[Pre];
    // select= would drop the keys outside the prefix: only when none of
    // them is a key the manifest has.
    bool Outside = Under.lookup(Pre) < U.size() &&
                   size_t(MatchedUnder.lookup(Pre)) == Matched.size();
    std::string Fix = prefixFix(Pre, Outside);
    add("strip-prefix", Fix, N,
        plural(N, "unexpected key is a missing key",
               "unexpected keys are "
               "missing keys") +
            " with the extra prefix '" + Pre + "'; add " + Fix,
        "strip:" + Pre);
  }

  Tally Add;
  Found.clear();
  // The first components of the keys each prefix would go in front of.
  std::map<std::string, std::vector<std::string>> Heads;
  for (unsigned J = 0; J < M.size(); ++J) {
    SmallVector<StringRef, 8> C = components(M[J]);
    for (size_t P = 1; P < C.size() && P <= MaxPrefix; ++P) {
      auto It = UIndex.find(joinComponents(ArrayRef(C).drop_front(P)));
      if (It == UIndex.end() || Explained[It->second])
        continue;
      std::string Pre = joinComponents(ArrayRef(C).take_front(P)) + ".";
      Add.add(Pre);
      Found.push_back({It->second, J, Pre});
      std::string Head = C[P].str();
      if (!is_contained(Heads[Pre], Head))
        Heads[Pre].push_back(Head);
      break;
    }
  }
  // add= prefixes every key, so with keys the manifest already has in
  // place only those under the moved first components may get it.
  StringSet<> MatchedHeads;
  for (ArrayRef<StringRef> C : MatchedComps)
    MatchedHeads.insert(C.front());
  std::map<std::string, std::string> FixOf;
  for (const std::string &Pre : Add.Order) {
    if (Matched.empty()) {
      FixOf[Pre] = "canonicalize-prefix{add=" + Pre + "}";
      continue;
    }
    const std::vector<std::string> &H = Heads[Pre];
    if (any_of(H, [&](const std::string &X) { return MatchedHeads.count(X); }))
      continue;
    std::vector<std::string> Alt;
    for (const std::string &X : H)
      Alt.push_back(escapeRegex(X));
    std::optional<std::string> Rule =
        quoteForPipeline("(" + join(Alt, "|") + ")(\\..*)?=>" + Pre + "$0");
    if (Rule)
      FixOf[Pre] = "rename{rule=" + *Rule + "}";
  }
  for (const Pair &F : Found)
    if (FixOf.count(F.Pre))
      explain(F.I, F.J, "add:" + F.Pre);
  for (const std::string &Pre : Add.ranked()) {
    if (!FixOf.count(Pre))
      continue;
    unsigned N = Add.Count[Pre];
    std::string Fix = FixOf[Pre];
    add("add-prefix", Fix, N,
        plural(N, "missing key is an unexpected key",
               "missing keys are "
               "unexpected keys") +
            " with the prefix '" + Pre + "'; add " + Fix,
        "add:" + Pre);
  }
}

/// One component spelled differently (`dwconv` vs `depthwise_conv`): the
/// same key shape with one name changed, consistently across keys.
void NearMissFinder::renamedComponent() {
  // Missing keys by "key with component i masked".
  StringMap<std::pair<unsigned, unsigned>> Masked; // -> (key, component)
  for (unsigned J = 0; J < M.size(); ++J) {
    SmallVector<StringRef, 8> C = components(M[J]);
    if (C.size() > MaxEditComponents)
      continue;
    for (unsigned P = 0; P < C.size(); ++P) {
      if (isIndex(C[P]))
        continue;
      StringRef Orig = C[P];
      C[P] = "\x01";
      Masked.try_emplace(joinComponents(C), J, P);
      C[P] = Orig;
    }
  }
  // The rule would also rename a key the manifest has, at that place:
  // such a rename is never proposed.
  StringSet<> MatchedFirst, MatchedLast, MatchedMiddle, MatchedWhole;
  for (ArrayRef<StringRef> C : MatchedComps) {
    if (C.size() == 1) {
      MatchedWhole.insert(C.front());
      continue;
    }
    MatchedFirst.insert(C.front());
    MatchedLast.insert(C.back());
    for (StringRef X : C.drop_front().drop_back())
      MatchedMiddle.insert(X);
  }
  auto HitsMatched = [&](StringRef Pos, StringRef From) {
    const StringSet<> &S = Pos == "^"   ? MatchedFirst
                           : Pos == "$" ? MatchedLast
                           : Pos == "=" ? MatchedWhole
                                        : MatchedMiddle;
    return S.count(From) > 0;
  };
  Tally Pairs;
  for (size_t I = 0; I < U.size(); ++I) {
    if (Explained[I] || UComps[I].size() > MaxEditComponents)
      continue;
    SmallVector<StringRef, 8> C(UComps[I].begin(), UComps[I].end());
    for (unsigned P = 0; P < C.size(); ++P) {
      if (isIndex(C[P]))
        continue;
      StringRef Orig = C[P];
      C[P] = "\x01";
      auto It = Masked.find(joinComponents(C));
      C[P] = Orig;
      if (It == Masked.end())
        continue;
      StringRef To = components(M[It->second.first])[It->second.second];
      std::string Pos = C.size() == 1       ? "="
                        : P == 0            ? "^"
                        : P + 1 == C.size() ? "$"
                                            : "";
      if (HitsMatched(Pos, Orig))
        continue;
      std::string PairKey = Pos + "\x01" + Orig.str() + "\x01" + To.str();
      Pairs.add(PairKey);
      explain(I, It->second.first, "rename:" + PairKey);
      break;
    }
  }
  const size_t MaxRenames = 4;
  std::vector<std::string> Ranked = Pairs.ranked();
  for (size_t R = 0; R < Ranked.size() && R < MaxRenames; ++R) {
    SmallVector<StringRef, 3> Parts;
    StringRef(Ranked[R]).split(Parts, '\x01');
    StringRef Pos = Parts[0], From = Parts[1], To = Parts[2];
    // rename matches whole keys, so the rule captures what surrounds the
    // component.
    std::string FromRe = escapeRegex(From), Rule;
    if (Pos == "=")
      Rule = FromRe + "=>" + To.str();
    else if (Pos == "^")
      Rule = FromRe + "\\.(.*)=>" + To.str() + ".$1";
    else if (Pos == "$")
      Rule = "(.*)\\." + FromRe + "=>$1." + To.str();
    else
      Rule = "(.*)\\." + FromRe + "\\.(.*)=>$1." + To.str() + ".$2";
    std::optional<std::string> Quoted = quoteForPipeline(Rule);
    if (!Quoted)
      continue;
    Rule = *Quoted;
    unsigned N = Pairs.Count[Ranked[R]];
    add("rename", "rename{rule=" + Rule + "}", N,
        plural(N, "unexpected key matches a missing key",
               "unexpected keys match missing keys") +
            " with '" + From + "' renamed to '" + To +
            "'; add rename{rule=" + Rule + "}",
        "rename:" + Ranked[R]);
  }
}

} // namespace

std::vector<Hint> wopt::findNearMisses(ArrayRef<std::string> Unexpected,
                                       ArrayRef<std::string> Missing,
                                       NearMissCoverage *Coverage,
                                       ArrayRef<std::string> Matched) {
  NearMissFinder F(Unexpected, Missing, Matched);
  std::vector<Hint> Hints = F.run();
  if (Coverage) {
    Coverage->Unexpected = std::move(F.Explained);
    Coverage->Missing = std::move(F.MissingExplained);
    Coverage->UnexpectedHint = F.hintIndices(F.unexpectedTags());
    Coverage->MissingHint = F.hintIndices(F.missingTags());
  }
  return Hints;
}
