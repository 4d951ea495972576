//===- Synthesize.cpp - Find the pipeline that makes a checkpoint fit -----===//
//
// A beam search over pass runs. A state is a copy of the checkpoint (its
// values cloned, its storages shared) and the steps that made it; its score
// is how well its state dict matches the target. From each state the
// candidate generators (Candidates.cpp) and, from the input itself, the
// named pipelines propose steps; each runs through the real pass on a fresh
// copy, and the children that improve on their parent compete for the next
// beam. States that end up with the same tensors under the same names are
// one state, whatever pipeline reached them; two different states with the
// best score are a tie that synthesis reports instead of choosing.
//
//===----------------------------------------------------------------------===//
#include "wopt/Synth/Synthesize.h"
#include "Candidates.h"
#include "wopt/Manifest/Manifest.h"
#include "wopt/Manifest/Target.h"
#include "wopt/Pass/PassManager.h"
#include "wopt/Pass/PassRegistry.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/xxhash.h"
#include <set>
#include <tuple>

using namespace llvm;
using namespace wopt;
using namespace wopt::synth;

namespace {

/// How well a state matches the target. Compared lexicographically: target
/// entries in place first, then entries present under the right name,
/// then fewer keys the target lacks.
struct Score {
  bool IsStateDict = false;
  unsigned Good = 0;  ///< target entries with the name, shape and dtype
  unsigned Near = 0;  ///< present by name with another shape or dtype
  unsigned Extra = 0; ///< checkpoint entries the target lacks
  /// Unexpected entries a near-miss hint explains (a prefix, a chunk
  /// index away from a missing key): a step that makes more keys near
  /// misses is progress even before one matches (`module.blocks.0.0.x`
  /// needs the prefix stripped before the chunks show).
  unsigned Explained = 0;
  /// No missing key or mismatch left that the verification would reject.
  bool Complete = false;

  auto tuple() const {
    return std::make_tuple(IsStateDict, Good, Near, -int64_t(Extra), Explained);
  }
  bool operator>(const Score &O) const { return tuple() > O.tuple(); }
  bool operator==(const Score &O) const { return tuple() == O.tuple(); }
};

struct State {
  std::unique_ptr<Checkpoint> C;
  std::vector<SynthesisStep> Steps;
  Score S;
  std::optional<Distance> D;
  uint64_t Fingerprint = 0;
  /// Starts with a named pipeline: its layout's convention, preferred over
  /// an equally good pipeline put together step by step.
  bool Named = false;
  /// Set aside by a pass's own rule (unwrap's non-EMA preference), and why.
  unsigned Penalty = 0;
  std::string PenaltyWhy;
  /// Warnings the steps raised (an option that matched nothing): of two
  /// ways to the same result, the one without is the clearer.
  unsigned Warnings = 0;
  /// Trial number: equal ranks go to the earlier candidate, so the
  /// generators' order (a hint's explicit fix before the bare pass) decides.
  unsigned Seq = 0;

  std::string pipeline() const {
    std::vector<std::string> T;
    for (const SynthesisStep &S : Steps)
      T.push_back(S.Text);
    return join(T, ",");
  }
  /// The order of preference; ties are broken by trial order only for
  /// determinism, and reported.
  auto rank() const {
    return std::make_tuple(S.Complete, S.tuple(), Named, -int64_t(Penalty),
                           -int64_t(Steps.size()), -int64_t(Warnings));
  }
};

bool better(const State &A, const State &B) {
  if (A.rank() != B.rank())
    return A.rank() > B.rank();
  return A.Seq < B.Seq;
}

/// A copy of C's object graph for a trial run: every node with identity is
/// copied once (sharing and cycles are kept, edges point into the copy),
/// tensors keep their storages, so no tensor byte is copied. Passes change
/// tensors through ownTensor but record history (renames) in place: the
/// copy keeps that history off the input's nodes.
std::unique_ptr<Checkpoint> copyCheckpoint(const Checkpoint &C) {
  auto N = std::make_unique<Checkpoint>();
  N->SourcePath = C.SourcePath;
  N->Format = C.Format;
  N->FormatVersion = C.FormatVersion;
  N->ByteOrder = C.ByteOrder;
  N->RecordPrefix = C.RecordPrefix;
  N->Source = C.Source;
  N->Removed = C.Removed;
  if (!C.root())
    return N;
  DenseMap<const Value *, ValuePtr> Copies;
  std::vector<ValuePtr> Made;
  forEachNode(*C.root(), [&](const Value &V) {
    if (V.hasIdentity()) {
      Made.push_back(V.copyNode());
      Copies[&V] = Made.back();
    }
    return true;
  });
  for (const ValuePtr &V : Made)
    forEachChildSlot(*V, [&](ValuePtr &Slot) {
      auto It = Slot ? Copies.find(Slot.get()) : Copies.end();
      if (It != Copies.end())
        Slot = It->second;
    });
  auto Root = Copies.find(C.root().get());
  N->setRoot(Root != Copies.end() ? Root->second : C.root());
  for (ValuePtr &V : Made)
    N->graph().adopt(std::move(V));
  return N;
}

/// A non-tensor entry, by what it holds (copies of a state have new nodes).
void printEntryValue(raw_ostream &OS, const Value &V) {
  OS << unsigned(V.kind());
  if (auto *I = dyn_cast<IntValue>(&V))
    OS << '=' << I->value();
  else if (auto *S = dyn_cast<StringValue>(&V))
    OS << '=' << S->value();
  else
    OS << '#' << V.countNodes();
}

/// The state dict's names and tensors (storage, offset, dtype, shape,
/// strides), hashed: equal for two states that would export the same.
uint64_t fingerprint(const Checkpoint &C) {
  const DictValue *SD = C.stateDict();
  if (!SD)
    return uint64_t(uintptr_t(C.root().get()));
  std::string Buf;
  raw_string_ostream OS(Buf);
  for (const DictEntry &E : SD->entries()) {
    OS << E.keyString().value_or("") << '\0';
    auto *T = dyn_cast_or_null<TensorValue>(E.Val.get());
    if (!T) {
      if (E.Val)
        printEntryValue(OS, *E.Val);
      OS << '\0';
      continue;
    }
    // A pass that wrote data names the storage after the key it wrote
    // (concat/blk.0.qkv): the same bytes reached in another order must be
    // one state, so those are told apart by content. They are in memory
    // already; mapped and computed storages keep their file key.
    if (const StorageRef &St = T->storage()) {
      if (St->kind() == Storage::DataKind::Owned)
        OS << "owned:" << xxh3_64bits(St->bytes());
      else
        OS << St->key();
      OS << ':' << St->numBytes();
    }
    OS << '@' << T->storageOffset() << dtypeName(T->dtype());
    for (int64_t D : T->shape())
      OS << ',' << D;
    OS << '/';
    for (int64_t D : T->strides())
      OS << ',' << D;
    OS << '\0';
  }
  return xxh3_64bits(StringRef(Buf));
}

class Search {
public:
  Search(const Checkpoint &Input, std::shared_ptr<const Target> T,
         const PassRegistry &R, const SynthesisOptions &Opts)
      : Input(Input), T(std::move(T)), R(R), Opts(Opts) {}

  Expected<SynthesisResult> run();

private:
  Error prepare();
  void evaluate(State &S) const;
  std::string describe(const State &S) const;
  /// Runs Text on a copy of From; null when the pass fails (the reason
  /// goes to the notes when Explain).
  std::unique_ptr<State> trial(const State &From, const Candidate &Cand,
                               bool Explain);
  std::vector<Candidate> candidates(const State &S);
  void seedNamedPipelines(std::vector<std::unique_ptr<State>> &Beam);
  std::vector<std::unique_ptr<State>>
  expand(const std::vector<std::unique_ptr<State>> &Beam);
  SynthesisResult finish();
  void decidePrune(const State &Best, SynthesisResult &Res) const;

  const Checkpoint &Input;
  std::shared_ptr<const Target> T;
  const PassRegistry &R;
  const SynthesisOptions &Opts;
  DistanceOptions DOpts;
  StringMap<unsigned> TargetIndex;
  std::vector<std::unique_ptr<State>> All;
  std::vector<std::string> Notes;
  /// Why the last trial that failed did (its error's first line).
  std::string LastFailure;
  unsigned Trials = 0;
};

Error Search::prepare() {
  Expected<std::vector<GlobPattern>> AM =
      compileGlobs(Opts.AllowMissing, "allow-missing");
  if (!AM)
    return AM.takeError();
  Expected<std::vector<GlobPattern>> AU =
      compileGlobs(Opts.AllowUnexpected, "allow-unexpected");
  if (!AU)
    return AU.takeError();
  DOpts.AllowMissing = std::move(*AM);
  DOpts.AllowUnexpected = std::move(*AU);
  for (unsigned I = 0; I < T->entries().size(); ++I)
    TargetIndex.try_emplace(T->entries()[I].Name, I);
  return Error::success();
}

void Search::evaluate(State &S) const {
  S.Fingerprint = fingerprint(*S.C);
  const DictValue *SD = S.C->stateDict();
  if (!SD)
    return;
  S.D = distanceToTarget(*SD, T->entries(), TargetIndex, DOpts, S.C->Removed);
  const Distance &D = *S.D;
  S.S.IsStateDict = true;
  // A key can mismatch in shape and dtype at once: count keys.
  StringSet<> Mismatched;
  for (const auto *List : {&D.Shapes, &D.DTypes})
    for (const Distance::Mismatch &M : *List)
      Mismatched.insert(M.Actual.Name);
  S.S.Good = D.Good;
  S.S.Near = Mismatched.size();
  S.S.Extra = D.Unexpected.size();
  S.S.Explained = D.Explained;
  S.S.Complete = D.Missing.empty() && D.Shapes.empty() && D.DTypes.empty();
}

std::string Search::describe(const State &S) const {
  if (!S.S.IsStateDict)
    return "the root is not a state dict";
  std::string D = std::to_string(S.S.Good) + " of " +
                  std::to_string(S.D->NumTarget) + " target entries in place";
  if (S.S.Near)
    D += ", " + std::to_string(S.S.Near) + " with another shape or dtype";
  D += ", " + std::to_string(S.S.Extra) + " unexpected";
  if (S.S.Explained)
    D += " (" + std::to_string(S.S.Explained) + " near misses)";
  return D;
}

std::unique_ptr<State> Search::trial(const State &From, const Candidate &Cand,
                                     bool Explain) {
  PassManager PM;
  if (Error E = R.parsePipeline(Cand.Text, PM)) {
    // A hint's fix that is not a pipeline element (allow-missing=...).
    consumeError(std::move(E));
    return nullptr;
  }
  PM.setTarget(T);
  auto S = std::make_unique<State>();
  unsigned Warnings = 0;
  PM.setDiagnosticHandler([&Warnings](const Diagnostic &D) {
    Warnings += D.Sev == Diagnostic::Severity::Warning;
  });
  S->C = copyCheckpoint(*From.C);
  S->Seq = ++Trials;
  if (Error E = PM.run(*S->C)) {
    std::string Msg = toString(std::move(E));
    LastFailure = StringRef(Msg).split('\n').first.str();
    std::string Note = Cand.Text + ": not taken: " + LastFailure;
    if (Explain && !is_contained(Notes, Note))
      Notes.push_back(Note);
    return nullptr;
  }
  S->Steps = From.Steps;
  S->Named = From.Named;
  S->Penalty = From.Penalty;
  S->PenaltyWhy = From.PenaltyWhy;
  S->Warnings = From.Warnings + Warnings;
  evaluate(*S);
  S->Steps.push_back({Cand.Text, Cand.Why, describe(*S)});
  return S;
}

std::vector<Candidate> Search::candidates(const State &S) {
  std::vector<Candidate> Out = unwrapCandidates(*S.C);
  if (S.D)
    for (Candidate &C : stateDictCandidates(*S.D, R))
      Out.push_back(std::move(C));
  // A step already taken would only repeat itself.
  StringSet<> Taken, Seen;
  for (const SynthesisStep &St : S.Steps)
    Taken.insert(St.Text);
  std::vector<Candidate> Unique;
  for (Candidate &C : Out)
    if (!Taken.count(C.Text) && Seen.insert(C.Text).second)
      Unique.push_back(std::move(C));
  return Unique;
}

/// Named pipelines run from the input as a whole: they start with their
/// own unwrap, and their require-keys signature turns away any checkpoint
/// of another layout.
void Search::seedNamedPipelines(std::vector<std::unique_ptr<State>> &Beam) {
  const State &Start = *Beam.front();
  for (const PipelineInfo &P : R.pipelines()) {
    std::unique_ptr<State> S =
        trial(Start, {P.Name, "named pipeline: " + P.Summary}, false);
    if (!S) {
      Notes.push_back("named pipeline '" + P.Name +
                      "' not taken: " + LastFailure);
      continue;
    }
    Notes.push_back("named pipeline '" + P.Name + "' fits: " + describe(*S));
    S->Named = true;
    Beam.push_back(std::move(S));
  }
}

std::vector<std::unique_ptr<State>>
Search::expand(const std::vector<std::unique_ptr<State>> &Beam) {
  std::vector<std::unique_ptr<State>> Children;
  for (const std::unique_ptr<State> &Parent : Beam) {
    if (Parent->Steps.size() >= Opts.MaxSteps)
      continue;
    std::vector<Candidate> Cands = candidates(*Parent);
    // unwrap's own rule (the unique non-EMA state dict) decides between
    // state dicts that fit equally; a key= that departs from it is set
    // aside, not tied.
    std::optional<uint64_t> DefaultUnwrap;
    if (any_of(Cands, [](const Candidate &C) {
          return StringRef(C.Text).starts_with("unwrap{");
        }))
      if (std::unique_ptr<State> D = trial(*Parent, {"unwrap", ""}, false))
        DefaultUnwrap = D->Fingerprint;
    for (const Candidate &Cand : Cands) {
      std::unique_ptr<State> S =
          trial(*Parent, Cand, Parent.get() == Beam.front().get());
      if (!S)
        continue;
      if (!(S->S > Parent->S))
        continue;
      if (DefaultUnwrap && StringRef(Cand.Text).starts_with("unwrap{") &&
          S->Fingerprint != *DefaultUnwrap) {
        ++S->Penalty;
        S->PenaltyWhy = "unwrap without key= takes another state dict by "
                        "its own rule (non-EMA weights, well-known keys)";
      }
      Children.push_back(std::move(S));
    }
  }
  // One state per result: the best-ranked pipeline that reached it.
  llvm::stable_sort(
      Children, [](const auto &A, const auto &B) { return better(*A, *B); });
  std::vector<std::unique_ptr<State>> Unique;
  DenseSet<uint64_t> Seen;
  for (const std::unique_ptr<State> &Old : All)
    Seen.insert(Old->Fingerprint);
  for (const std::unique_ptr<State> &Old : Beam)
    Seen.insert(Old->Fingerprint);
  for (std::unique_ptr<State> &S : Children)
    if (Seen.insert(S->Fingerprint).second)
      Unique.push_back(std::move(S));
  return Unique;
}

/// Unexpected keys left when the target is otherwise met, or that no
/// missing key could be (none has their shape), have no place in the
/// model: the verification prunes them. Any other unexpected key is kept,
/// so that the report pairs it with the missing key it may be.
void Search::decidePrune(const State &Best, SynthesisResult &Res) const {
  if (!Best.D || Opts.PruneUnexpected)
    return;
  std::set<std::vector<int64_t>> MissingShapes;
  for (const ManifestEntry *M : Best.D->Missing)
    MissingShapes.insert(
        std::vector<int64_t>(M->Shape.begin(), M->Shape.end()));
  std::vector<const Distance::Entry *> Unexpected;
  for (const Distance::Entry &E : Best.D->Unexpected)
    if (none_of(DOpts.AllowUnexpected,
                [&](const GlobPattern &G) { return G.match(E.Name); }))
      Unexpected.push_back(&E);
  if (Unexpected.empty())
    return;
  for (const Distance::Entry *E : Unexpected)
    if (E->IsTensor && MissingShapes.count(std::vector<int64_t>(
                           E->Shape.begin(), E->Shape.end())))
      return;
  Res.Prune = true;
  for (const Distance::Entry *E : Unexpected)
    Res.PrunedKeys.push_back(E->Name);
}

SynthesisResult Search::finish() {
  SynthesisResult Res;
  const State *Best = All.front().get();
  for (const std::unique_ptr<State> &S : All)
    if (better(*S, *Best))
      Best = S.get();
  Res.Steps = Best->Steps;
  Res.Complete = Best->S.Complete;
  Res.Before = describe(*All.front());
  auto Key = [](const State &S) {
    return std::make_tuple(S.S.Complete, S.S.tuple(), S.Named,
                           -int64_t(S.Steps.size()));
  };
  for (const std::unique_ptr<State> &S : All) {
    if (S.get() == Best || S->Fingerprint == Best->Fingerprint ||
        Key(*S) != Key(*Best))
      continue;
    if (S->Penalty == Best->Penalty)
      Res.Ties.push_back(S->pipeline());
    else if (S->Penalty > Best->Penalty)
      Res.SetAside.push_back({S->pipeline(), S->PenaltyWhy});
  }
  if (!Res.Ties.empty())
    Res.Ties.insert(Res.Ties.begin(), Best->pipeline());
  decidePrune(*Best, Res);
  Res.Notes = std::move(Notes);
  Res.Trials = Trials;
  return Res;
}

Expected<SynthesisResult> Search::run() {
  if (Error E = prepare())
    return E;
  auto Start = std::make_unique<State>();
  Start->C = copyCheckpoint(Input);
  evaluate(*Start);
  std::vector<std::unique_ptr<State>> Beam;
  Beam.push_back(std::move(Start));
  seedNamedPipelines(Beam);
  for (unsigned Step = 0; Step < Opts.MaxSteps; ++Step) {
    std::vector<std::unique_ptr<State>> Next = expand(Beam);
    for (std::unique_ptr<State> &S : Beam)
      All.push_back(std::move(S));
    Beam.clear();
    if (Next.empty())
      break;
    for (size_t I = 0; I < Next.size(); ++I) {
      if (I < Opts.BeamWidth)
        Beam.push_back(std::move(Next[I]));
      else
        All.push_back(std::move(Next[I]));
    }
  }
  for (std::unique_ptr<State> &S : Beam)
    All.push_back(std::move(S));
  return finish();
}

} // namespace

std::string SynthesisResult::pipeline() const {
  std::vector<std::string> T;
  for (const SynthesisStep &S : Steps)
    T.push_back(S.Text);
  return join(T, ",");
}

Expected<SynthesisResult>
wopt::synthesizePipeline(const Checkpoint &C, std::shared_ptr<const Target> T,
                         const PassRegistry &R, const SynthesisOptions &Opts) {
  Search S(C, std::move(T), R, Opts);
  return S.run();
}
