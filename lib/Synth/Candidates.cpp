//===- Candidates.cpp - Steps worth trying from one state -----------------===//
//
// Every generator proposes pass invocations whose options come from the two
// key sets and shapes. None of them decides anything: the search runs each
// one through the real pass and keeps what improves the match, so a
// generator may be generous (a wrong guess only costs a trial run).
//
//===----------------------------------------------------------------------===//
#include "Candidates.h"
#include "wopt/Pass/PassRegistry.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include <map>
#include <set>

using namespace llvm;

namespace wopt {
namespace synth {
namespace {

using Mismatch = Distance::Mismatch;

/// Rules spelled out per key at most this many times (beyond, only globs).
constexpr size_t MaxPerKeyRules = 256;

bool isIndex(StringRef C) {
  return !C.empty() && all_of(C, isDigit) && (C.size() == 1 || C[0] != '0');
}

SmallVector<StringRef, 8> components(StringRef Key) {
  SmallVector<StringRef, 8> C;
  Key.split(C, '.');
  return C;
}

std::string joinComps(ArrayRef<StringRef> C) {
  std::string S;
  for (size_t I = 0; I < C.size(); ++I)
    S += (I ? "." : "") + C[I].str();
  return S;
}

std::string shapeText(ArrayRef<int64_t> Shape) {
  std::string S = "[";
  for (size_t I = 0; I < Shape.size(); ++I)
    S += (I ? "," : "") + std::to_string(Shape[I]);
  return S + "]";
}

uint64_t numel(ArrayRef<int64_t> Shape) {
  uint64_t N = 1;
  for (int64_t D : Shape)
    N *= uint64_t(D);
  return N;
}

/// The option value V, quoted when the pipeline parser needs it.
std::optional<std::string> value(StringRef V) { return quoteForPipeline(V); }

/// Option list items joined with commas, each quoted when needed; nullopt
/// when one cannot be spelled.
std::optional<std::string> listValue(ArrayRef<std::string> Items) {
  std::vector<std::string> Out;
  for (const std::string &I : Items) {
    std::optional<std::string> Q = value(I);
    if (!Q)
      return std::nullopt;
    Out.push_back(*Q);
  }
  return join(Out, ",");
}

struct KeySets {
  std::vector<std::string> Missing, Unexpected;
  StringSet<> MissingSet, UnexpectedSet;
};

KeySets keySets(const Distance &D) {
  KeySets K;
  for (const ManifestEntry *M : D.Missing) {
    K.Missing.push_back(M->Name);
    K.MissingSet.insert(M->Name);
  }
  for (const Distance::Entry &E : D.Unexpected) {
    K.Unexpected.push_back(E.Name);
    K.UnexpectedSet.insert(E.Name);
  }
  return K;
}

/// `head.x` where the target has `head.fc.x` (timm >= 0.9 classifier
/// heads): a rename per prefix in front of `head`.
void headRenames(const KeySets &K, std::vector<Candidate> &Out) {
  std::map<std::string, unsigned> ByPrefix;
  for (const std::string &U : K.Unexpected) {
    SmallVector<StringRef, 8> C = components(U);
    for (size_t P = 0; P + 1 < C.size(); ++P) {
      if (C[P] != "head" || C[P + 1] == "fc")
        continue;
      SmallVector<StringRef, 8> To(C.begin(), C.end());
      To.insert(To.begin() + P + 1, "fc");
      if (K.MissingSet.count(joinComps(To)))
        ++ByPrefix[joinComps(ArrayRef(C).take_front(P))];
      break;
    }
  }
  for (const auto &[Prefix, N] : ByPrefix) {
    std::string Rule = Prefix.empty()
                           ? std::string("head\\.(.*)=>head.fc.$1")
                           : escapeRegex(Prefix) + "\\.head\\.(.*)=>" +
                                 Prefix + ".head.fc.$1";
    if (std::optional<std::string> Q = value(Rule))
      Out.push_back(
          {"rename{rule=" + *Q + "}", Twine(N).str() + " unexpected keys " +
                                          (Prefix.empty() ? "" : Prefix + ".") +
                                          "head.* are missing keys head.fc.*"});
  }
}

/// Reshape rules for the tensors whose shape differs from the target's
/// with the same number of elements (GRN's (1,1,1,C) vs (C,)): one rule
/// per key group, and one per key.
void reshapes(const std::vector<const Mismatch *> &Fs,
              std::vector<Candidate> &Out) {
  if (Fs.empty())
    return;
  std::vector<std::string> Names;
  for (const Mismatch *F : Fs)
    Names.push_back(F->Actual.Name);
  std::vector<std::string> Grouped, PerKey;
  for (const KeyGroup &G : groupKeys(Names)) {
    bool AllFlat = all_of(G.Members, [&](unsigned I) {
      return Fs[I]->Expected->Shape.size() == 1;
    });
    bool Same = all_of(G.Members, [&](unsigned I) {
      return Fs[I]->Expected->Shape == Fs[G.Members.front()]->Expected->Shape;
    });
    if (AllFlat || Same) {
      Grouped.push_back(
          G.Glob + "=>" +
          (AllFlat ? std::string("[-1]")
                   : shapeText(Fs[G.Members.front()]->Expected->Shape)));
      continue;
    }
    for (unsigned I : G.Members)
      Grouped.push_back(Fs[I]->Actual.Name + "=>" +
                        shapeText(Fs[I]->Expected->Shape));
  }
  if (Fs.size() <= MaxPerKeyRules)
    for (const Mismatch *F : Fs)
      PerKey.push_back(F->Actual.Name + "=>" + shapeText(F->Expected->Shape));
  std::string Why = Twine(Fs.size()).str() +
                    " tensors have the target's number of elements in "
                    "another shape (" +
                    Fs.front()->Actual.Name + ": " +
                    shapeText(Fs.front()->Actual.Shape) + " -> " +
                    shapeText(Fs.front()->Expected->Shape) + ")";
  for (const std::vector<std::string> *Rules : {&Grouped, &PerKey}) {
    if (Rules->empty() || (Rules == &PerKey && PerKey == Grouped))
      continue;
    if (std::optional<std::string> L = listValue(*Rules))
      Out.push_back({"reshape{rule=" + *L + "}", Why});
  }
}

/// 2-D tensors stored (out, in) where the target has (in, out): transposed
/// views (HF CLIP's projections).
void transposes(const std::vector<const Mismatch *> &Fs,
                std::vector<Candidate> &Out) {
  if (Fs.empty())
    return;
  std::vector<std::string> Names, Globs;
  for (const Mismatch *F : Fs)
    Names.push_back(F->Actual.Name);
  for (const KeyGroup &G : groupKeys(Names))
    Globs.push_back(G.Glob);
  std::string Why = Twine(Fs.size()).str() +
                    " 2-D tensors have the target's shape transposed (" +
                    Fs.front()->Actual.Name + ": " +
                    shapeText(Fs.front()->Actual.Shape) + " -> " +
                    shapeText(Fs.front()->Expected->Shape) + ")";
  if (std::optional<std::string> L = listValue(Globs))
    Out.push_back({"transpose{keys=" + *L + "}", Why});
  if (Names != Globs && Names.size() <= MaxPerKeyRules)
    if (std::optional<std::string> L = listValue(Names))
      Out.push_back({"transpose{keys=" + *L + "}", Why});
}

void shapeSteps(const Distance &D, std::vector<Candidate> &Out) {
  std::vector<const Mismatch *> Reshape, Transpose;
  for (const Mismatch &F : D.Shapes) {
    ArrayRef<int64_t> A = F.Actual.Shape, E = F.Expected->Shape;
    if (A.size() == 2 && E.size() == 2 && A[0] == E[1] && A[1] == E[0] &&
        A[0] != A[1])
      Transpose.push_back(&F);
    else if (numel(A) == numel(E))
      Reshape.push_back(&F);
  }
  reshapes(Reshape, Out);
  transposes(Transpose, Out);
}

/// A cast to the target's dtypes, when some tensor has another float dtype
/// and this build has the cast pass.
void casts(const Distance &D, const PassRegistry &R, std::vector<Candidate> &Out) {
  unsigned N = 0;
  std::string Example;
  for (const Mismatch &F : D.DTypes)
    if (F.Actual.IsTensor && isFloatingPoint(F.Actual.Type) &&
        isFloatingPoint(F.Expected->Type)) {
      if (!N++)
        Example = F.Actual.Name + ": " + dtypeName(F.Actual.Type).str() +
                  " -> " + dtypeName(F.Expected->Type).str();
    }
  if (!N)
    return;
  if (!R.lookupPass("cast"))
    return;
  Out.push_back({"cast{to=target}", Twine(N).str() +
                                        " tensors have another float dtype "
                                        "than the target's (" +
                                        Example + ")"});
}

/// Separate q, k, v projections where the target has them fused:
/// `X.{q,k,v}_proj.w` -> `X.in_proj_w` (nn.MultiheadAttention) and
/// `X.{q,k,v}.w` -> `X.qkv.w` (timm).
void qkvConcats(const KeySets &K, std::vector<Candidate> &Out) {
  struct Form {
    StringRef Part, Rule, FusedSuffix;
  };
  static const Form Forms[] = {
      {"_proj", "(.*)\\.{q,k,v}_proj\\.(weight|bias)=>$1.in_proj_$2",
       "in_proj_weight"},
      {"", "(.*)\\.{q,k,v}\\.(weight|bias)=>$1.qkv.$2", "qkv.weight"},
  };
  for (const Form &F : Forms) {
    std::string Q = ("q" + F.Part + ".weight").str();
    unsigned Groups = 0;
    for (const std::string &U : K.Unexpected) {
      StringRef Key(U);
      if (!Key.ends_with("." + Q))
        continue;
      StringRef Base = Key.drop_back(Q.size());
      if (K.UnexpectedSet.count((Base + "k" + F.Part + ".weight").str()) &&
          K.UnexpectedSet.count((Base + "v" + F.Part + ".weight").str()))
        ++Groups;
    }
    bool Wanted = any_of(K.Missing, [&](const std::string &M) {
      return StringRef(M).ends_with(F.FusedSuffix);
    });
    if (Groups && Wanted)
      Out.push_back({("concat{rule=" + F.Rule + "}").str(),
                     Twine(Groups).str() + " attention layers keep q, k, v " +
                         "apart where the target has keys ending in " +
                         F.FusedSuffix.str()});
  }
}

/// Flat blocks where the target has DINOv2's chunked layout
/// (`blocks.<c>.<g>.x`): flatten-chunks{chunks=N}, N the target's chunks.
void inverseChunks(const KeySets &K, std::vector<Candidate> &Out) {
  std::map<std::string, std::set<std::string>> ChunksOf;
  for (const std::string &M : K.Missing) {
    SmallVector<StringRef, 8> C = components(M);
    for (size_t P = 0; P + 2 < C.size(); ++P) {
      if (!isIndex(C[P]) || !isIndex(C[P + 1]))
        continue;
      SmallVector<StringRef, 8> Flat(C.begin(), C.end());
      Flat.erase(Flat.begin() + P);
      if (K.UnexpectedSet.count(joinComps(Flat)))
        ChunksOf[joinComps(ArrayRef(C).take_front(P))].insert(C[P].str());
      break;
    }
  }
  for (const auto &[Prefix, Chunks] : ChunksOf) {
    if (Prefix.empty())
      continue;
    std::optional<std::string> P = value(Prefix);
    if (!P)
      continue;
    Out.push_back({"flatten-chunks{prefix=" + *P +
                       " chunks=" + std::to_string(Chunks.size()) + "}",
                   "the target keeps " + Prefix + " in " +
                       std::to_string(Chunks.size()) + " chunks (" + Prefix +
                       ".<c>.<g>.*) where the checkpoint has " + Prefix +
                       ".<g>.*"});
  }
}

/// A first component all keys share is a wrapper (DDP's `module.`,
/// Lightning's `model.`, torch.compile's `_orig_mod.`): strip it, with
/// canonicalize-prefix's defaults and by name. One most keys share is the
/// part to keep: select it. Near-miss hints find these only when one edit
/// reaches a target key; behind a second difference (chunked blocks under
/// `module.`) they need proposing here.
void commonPrefixes(const Distance &D, std::vector<Candidate> &Out) {
  std::map<std::string, unsigned> First;
  unsigned N = 0;
  bool OrigMod = false;
  for (const Distance::Entry &F : D.Unexpected) {
    if (!F.IsTensor)
      continue;
    ++N;
    StringRef Head = StringRef(F.Name).split('.').first;
    if (Head.size() < F.Name.size())
      ++First[Head.str()];
    OrigMod |= StringRef(F.Name).contains("_orig_mod.");
  }
  if (!N)
    return;
  for (const auto &[Head, Count] : First) {
    std::optional<std::string> P = value(Head + ".");
    if (!P)
      continue;
    if (Count == N)
      Out.push_back({"canonicalize-prefix{strip=" + *P + "}",
                     "every unexpected key starts with '" + Head + ".'"});
    else if (2 * Count > N)
      Out.push_back({"canonicalize-prefix{select=" + *P + "}",
                     Twine(Count).str() + " of " + Twine(N).str() +
                         " unexpected keys are under '" + Head + ".'"});
  }
  if (OrigMod || First.count("module"))
    Out.push_back({"canonicalize-prefix",
                   "keys carry a wrapper prefix (module., _orig_mod.)"});
}

} // namespace

std::vector<Candidate> unwrapCandidates(const Checkpoint &C) {
  std::vector<Candidate> Out;
  // Breadth first: the nearest state dicts are the likely ones, and the
  // order is the file's, so the result is deterministic.
  std::vector<std::pair<std::vector<std::string>, const DictValue *>> Queue;
  if (auto *Root = dyn_cast_or_null<DictValue>(C.root().get()))
    Queue.push_back({{}, Root});
  const size_t MaxDepth = 4;
  for (size_t Next = 0; Next < Queue.size(); ++Next) {
    auto [Path, D] = Queue[Next];
    for (const DictEntry &E : D->entries()) {
      std::optional<StringRef> K = E.keyString();
      auto *Sub = dyn_cast_or_null<DictValue>(E.Val.get());
      if (!K || !Sub || K->contains('/'))
        continue;
      std::vector<std::string> P = Path;
      P.push_back(K->str());
      if (Checkpoint(E.Val).stateDict()) {
        std::string Key = join(P, "/");
        if (std::optional<std::string> Q = value(Key))
          Out.push_back({"unwrap{key=" + *Q + "}",
                         "the state dict at '" + Key + "' (" +
                             std::to_string(Sub->size()) + " entries)"});
        continue;
      }
      if (P.size() < MaxDepth)
        Queue.push_back({P, Sub});
    }
  }
  return Out;
}

std::vector<Candidate> stateDictCandidates(const Distance &D,
                                           const PassRegistry &R) {
  std::vector<Candidate> Out;
  // A missing key a pass already removed is not brought back by running
  // that pass again ("removed" hints).
  for (const Hint &H : D.Hints) {
    if (H.Fix.empty() || H.Kind == "removed")
      continue;
    // Only fixes that are passes (not allow-missing=, prune-unexpected=).
    StringRef Name = StringRef(H.Fix).take_until(
        [](char C) { return C == '{' || C == ','; });
    if (!R.lookupPass(Name) && !R.lookupPipeline(Name))
      continue;
    Out.push_back({H.Fix, H.Message});
    // The pass with its defaults too: when it does the same, the shorter
    // spelling wins (and raises no "matched nothing" warning).
    if (Name.size() < H.Fix.size())
      Out.push_back({Name.str(), H.Message + " (with the pass's defaults)"});
  }
  KeySets K = keySets(D);
  commonPrefixes(D, Out);
  headRenames(K, Out);
  shapeSteps(D, Out);
  casts(D, R, Out);
  qkvConcats(K, Out);
  inverseChunks(K, Out);
  return Out;
}

} // namespace synth
} // namespace wopt
