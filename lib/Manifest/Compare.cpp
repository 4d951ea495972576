//===- Compare.cpp - Checkpoint vs manifest, and the report --------------===//
//
// The comparison looks only at names, dtypes and shapes, never at tensor
// data, so verifying a multi-gigabyte checkpoint costs one hash map over its
// keys. The report is the product: findings are grouped by key pattern so a
// repeated mismatch is one line, and near misses come with the pass that
// repairs them.
//
//===----------------------------------------------------------------------===//
#include "wopt/IR/StateDict.h"
#include "wopt/Manifest/Manifest.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/JSON.h"
#include <map>

using namespace wopt;
using namespace llvm;

using Kind = Finding::Kind;
using Allowance = Finding::Allowance;

//===----------------------------------------------------------------------===//
// Comparison
//===----------------------------------------------------------------------===//

namespace {

bool matchesAny(ArrayRef<GlobPattern> Globs, StringRef Name) {
  return any_of(Globs, [&](const GlobPattern &G) { return G.match(Name); });
}

std::string typeOf(const ManifestEntry &E) {
  return formatTensorType(E.Type, E.Shape);
}

std::string typeOf(const CheckpointEntry &E) {
  if (!E.IsTensor)
    return "a non-tensor " + E.ValueKind;
  return formatTensorType(E.Type, E.Shape);
}

std::optional<uint64_t> numelOf(ArrayRef<int64_t> Shape) {
  uint64_t N = 1;
  for (int64_t D : Shape)
    if (D < 0 || (D && N > UINT64_MAX / uint64_t(D)))
      return std::nullopt;
    else
      N *= uint64_t(D);
  return N;
}

} // namespace

std::vector<CheckpointEntry> wopt::checkpointEntries(const DictValue &SD) {
  std::vector<CheckpointEntry> Out;
  Out.reserve(SD.size());
  for (const DictEntry &DE : SD.entries()) {
    std::optional<StringRef> Key = DE.keyString();
    if (!Key || !DE.Val)
      continue;
    CheckpointEntry E;
    E.Name = Key->str();
    if (const auto *T = dyn_cast<TensorValue>(DE.Val.get())) {
      E.Type = T->dtype();
      E.Shape.assign(T->shape().begin(), T->shape().end());
      E.Origin = T->provenance();
      E.Bytes = dtypeBytes(T->dtype(), T->numel().value_or(0)).value_or(0);
    } else {
      E.IsTensor = false;
      E.ValueKind = pythonTypeName(*DE.Val).str();
    }
    Out.push_back(std::move(E));
  }
  return Out;
}

Expected<std::vector<GlobPattern>>
wopt::compileGlobs(ArrayRef<std::string> Patterns, StringRef OptionName) {
  std::vector<GlobPattern> Out;
  for (const std::string &P : Patterns) {
    Expected<GlobPattern> G = GlobPattern::create(P);
    if (!G)
      return createStringError(inconvertibleErrorCode(),
                               OptionName + ": invalid glob '" + P +
                                   "': " + toString(G.takeError()));
    Out.push_back(std::move(*G));
  }
  return Out;
}

unsigned Comparison::count(Kind K, bool ErrorsOnly) const {
  return count_if(Findings, [&](const Finding &F) {
    return F.TheKind == K && (!ErrorsOnly || F.isError());
  });
}

unsigned Comparison::countAllowed(Allowance A) const {
  return count_if(Findings, [&](const Finding &F) { return F.Allowed == A; });
}

uint64_t Comparison::prunedBytes() const {
  uint64_t N = 0;
  for (const Finding &F : Findings)
    if (F.Allowed == Allowance::Pruned && F.Actual)
      N += F.Actual->Bytes;
  return N;
}

bool Comparison::ok() const {
  return none_of(Findings, [](const Finding &F) { return F.isError(); });
}

namespace {

std::vector<std::string> namesOf(ArrayRef<const Finding *> Fs) {
  std::vector<std::string> N;
  N.reserve(Fs.size());
  for (const Finding *F : Fs)
    N.push_back(F->Name);
  return N;
}

/// Keys no near miss accounts for: say which option settles them, since
/// only the user knows whether the target can do without them.
void addLeftoverHints(ArrayRef<const Finding *> UFs,
                      ArrayRef<const Finding *> MFs,
                      const NearMissCoverage &Cov, std::vector<Hint> &Hints) {
  unsigned Lost = 0;
  for (size_t I = 0; I < UFs.size(); ++I)
    Lost += !Cov.Unexpected[I] && UFs[I]->isError();
  if (Lost)
    Hints.push_back(
        {"prune-unexpected",
         "prune-unexpected=true",
         std::to_string(Lost) +
             (Lost == 1 ? " unexpected key has" : " unexpected keys have") +
             " no counterpart in the manifest; drop " +
             (Lost == 1 ? "it" : "them") +
             " with prune-unexpected=true, or keep " +
             (Lost == 1 ? "it" : "them") + " with allow-unexpected=GLOB",
         Lost,
         {},
         {}});

  std::vector<const Finding *> Alone;
  for (size_t I = 0; I < MFs.size(); ++I)
    if (!Cov.Missing[I])
      Alone.push_back(MFs[I]);
  if (Alone.empty())
    return;
  const size_t MaxGlobs = 6;
  std::vector<std::string> Globs;
  StringSet<> Seen;
  for (const KeyGroup &G : groupKeys(namesOf(Alone))) {
    // A quote in a key cannot be quoted around: `?` matches it.
    std::string Glob = G.Glob;
    if (StringRef(Glob).contains('\'') && StringRef(Glob).contains('"'))
      std::replace(Glob.begin(), Glob.end(), '\'', '?');
    if (Seen.insert(Glob).second)
      Globs.push_back(*quoteForPipeline(Glob));
  }
  std::string List = join(ArrayRef(Globs).take_front(MaxGlobs), ",");
  if (Globs.size() > MaxGlobs)
    List += ",...";
  unsigned N = Alone.size();
  Hints.push_back(
      {"allow-missing",
       "allow-missing=" + List,
       std::to_string(N) +
           (N == 1 ? " missing key matches" : " missing keys match") +
           " nothing in the checkpoint; if the model initialises " +
           (N == 1 ? "it" : "them") + " itself, add allow-missing=" + List,
       0,
       {},
       {}});
}

/// One hint per pass that removed keys the manifest has, with how to keep
/// them; the keys point at it, so the report lists them under it.
void addRemovedHints(std::vector<Finding> &Missing, const CompareOptions &Opts,
                     Comparison &C) {
  StringMap<unsigned> Last; // key -> its last removal
  for (unsigned I = 0; I < Opts.Removed.size(); ++I)
    Last[Opts.Removed[I].Key] = I;
  std::vector<std::string> Passes;
  std::map<std::string, std::vector<Finding *>> ByPass;
  for (Finding &F : Missing) {
    auto It = Last.find(F.Name);
    if (!F.isError() || It == Last.end())
      continue;
    F.RemovedBy = Opts.Removed[It->second];
    auto &List = ByPass[F.RemovedBy->Pass];
    if (List.empty())
      Passes.push_back(F.RemovedBy->Pass);
    List.push_back(&F);
  }
  for (const std::string &P : Passes) {
    const std::vector<Finding *> &Fs = ByPass[P];
    std::vector<std::string> Keeps;
    for (const Finding *F : Fs)
      if (!F->RemovedBy->Keep.empty() &&
          !is_contained(Keeps, F->RemovedBy->Keep))
        Keeps.push_back(F->RemovedBy->Keep);
    unsigned N = Fs.size();
    std::string Fix = Keeps.empty() ? "" : P + "{" + join(Keeps, " ") + "}";
    std::string Msg = std::to_string(N) +
                      (N == 1 ? " missing key was" : " missing keys were") +
                      " removed by " + P + ", but the " + Opts.Noun + " has " +
                      (N == 1 ? "it" : "them");
    if (!Fix.empty())
      Msg += "; add " + Fix;
    if (Opts.SuggestTarget)
      Msg += std::string(Fix.empty() ? "; " : ", or ") +
             "run with -target=" + C.ManifestName +
             " so that passes keep what it has";
    Hint H{"removed", Fix, Msg, 0, {}, {}};
    for (size_t I = 0; I < Fs.size() && I < 2; ++I)
      H.Notes.push_back(Fs[I]->Name + " was removed by " + P + ": " +
                        Fs[I]->RemovedBy->Reason);
    int Index = C.Hints.size();
    for (Finding *F : Fs)
      F->HintIndex = Index;
    C.Hints.push_back(std::move(H));
  }
}

/// The float dtypes the cast pass converts between.
bool castable(DType T) {
  return T == DType::Float16 || T == DType::BFloat16 || T == DType::Float32 ||
         T == DType::Float64;
}

/// Float-to-float dtype mismatches are one cast away: one hint for all of
/// them, "20 tensors are f16 where the manifest has f32; add
/// cast{to=target}", and the findings point at it.
void addCastHint(std::vector<Finding> &DTypes, const CompareOptions &Opts,
                 Comparison &C) {
  std::vector<Finding *> Fs;
  std::vector<std::string> Pairs;
  StringMap<unsigned> CountOf;
  for (Finding &F : DTypes) {
    if (!F.Actual->IsTensor || !castable(F.Actual->Type) ||
        !castable(F.Expected->Type))
      continue;
    Fs.push_back(&F);
    std::string Pair = dtypeName(F.Actual->Type).str() + " where the " +
                       Opts.Noun + " has " + dtypeName(F.Expected->Type).str();
    if (!CountOf[Pair]++)
      Pairs.push_back(Pair);
  }
  if (Fs.empty())
    return;
  std::vector<std::string> Parts;
  for (const std::string &P : Pairs)
    Parts.push_back(std::to_string(CountOf[P]) + " " + P);
  std::string Msg = std::to_string(Fs.size()) +
                    (Fs.size() == 1 ? " tensor differs" : " tensors differ") +
                    " only in float dtype (" + join(Parts, ", ") +
                    "); add cast{to=target}";
  if (Opts.SuggestTarget)
    Msg += " and run with -target=" + C.ManifestName;
  int Index = C.Hints.size();
  for (Finding *F : Fs)
    F->HintIndex = Index;
  C.Hints.push_back(
      {"cast", "cast{to=target}", Msg, unsigned(Fs.size()), {}, {}});
}

} // namespace

Comparison wopt::compareWithManifest(const Manifest &M,
                                     ArrayRef<CheckpointEntry> Entries,
                                     const CompareOptions &Opts) {
  Comparison C;
  C.ManifestName = Opts.ManifestName.empty() ? M.SourceName : Opts.ManifestName;
  C.Noun = Opts.Noun;
  // addRemovedHints names the target as the comparison does.
  CompareOptions Named = Opts;
  Named.ManifestName = C.ManifestName;
  C.NumManifestEntries = M.Entries.size();
  C.NumCheckpointEntries = Entries.size();

  StringMap<unsigned> IndexOf;
  for (unsigned I = 0; I < Entries.size(); ++I)
    IndexOf.try_emplace(Entries[I].Name, I);
  std::vector<bool> Seen(Entries.size(), false);

  std::vector<Finding> Missing, Unexpected, Shapes, DTypes;
  for (const ManifestEntry &E : M.Entries) {
    auto It = IndexOf.find(E.Name);
    if (It == IndexOf.end()) {
      Finding F{Kind::Missing, Allowance::None, E.Name, E, std::nullopt};
      if (E.Optional)
        F.Allowed = Allowance::Optional;
      else if (matchesAny(Opts.AllowMissing, E.Name))
        F.Allowed = Allowance::AllowedByGlob;
      Missing.push_back(std::move(F));
      continue;
    }
    Seen[It->second] = true;
    const CheckpointEntry &A = Entries[It->second];
    if (!A.IsTensor || A.Type != E.Type)
      DTypes.push_back({Kind::DTypeMismatch, Allowance::None, E.Name, E, A});
    if (A.IsTensor && ArrayRef<int64_t>(A.Shape) != ArrayRef<int64_t>(E.Shape))
      Shapes.push_back({Kind::ShapeMismatch, Allowance::None, E.Name, E, A});
  }
  for (unsigned I = 0; I < Entries.size(); ++I) {
    if (Seen[I])
      continue;
    Finding F{Kind::Unexpected, Allowance::None, Entries[I].Name, std::nullopt,
              Entries[I]};
    if (matchesAny(Opts.AllowUnexpected, F.Name))
      F.Allowed = Allowance::AllowedByGlob;
    else if (Opts.PruneUnexpected)
      F.Allowed = Allowance::Pruned;
    Unexpected.push_back(std::move(F));
  }

  // A missing key a pass removed is that pass's doing, not a near miss.
  addRemovedHints(Missing, Named, C);
  int Offset = C.Hints.size();

  // Pruned keys still pair with missing ones: a pruned `blocks.0.3.x` next
  // to a missing `blocks.3.x` is the mistake worth a hint.
  std::vector<Finding *> UFs, MFs;
  for (Finding &F : Unexpected)
    if (F.Allowed != Allowance::AllowedByGlob)
      UFs.push_back(&F);
  for (Finding &F : Missing)
    if (F.isError() && !F.RemovedBy)
      MFs.push_back(&F);
  std::vector<std::string> Matched;
  for (const ManifestEntry &E : M.Entries)
    if (IndexOf.count(E.Name))
      Matched.push_back(E.Name);
  NearMissCoverage Cov;
  for (Hint &H : findNearMisses(namesOf(UFs), namesOf(MFs), &Cov, Matched))
    C.Hints.push_back(std::move(H));
  auto Shift = [&](int I) { return I < 0 ? I : I + Offset; };
  for (size_t I = 0; I < UFs.size(); ++I)
    UFs[I]->HintIndex = Shift(Cov.UnexpectedHint[I]);
  for (size_t I = 0; I < MFs.size(); ++I)
    MFs[I]->HintIndex = Shift(Cov.MissingHint[I]);
  addLeftoverHints(UFs, MFs, Cov, C.Hints);
  addCastHint(DTypes, Named, C);

  for (auto *List : {&Missing, &Unexpected, &Shapes, &DTypes})
    for (Finding &F : *List)
      C.Findings.push_back(std::move(F));
  return C;
}

//===----------------------------------------------------------------------===//
// Human report
//===----------------------------------------------------------------------===//

namespace {

/// Most groups printed per kind; the JSON report lists everything.
const size_t MaxGroupsShown = 12;
/// Most hints printed; keys explained by a hint past it are listed.
const size_t MaxHintsShown = 8;
/// Per-key types are listed for groups up to this size.
const size_t MaxPerKeyTypes = 4;

std::string plural(size_t N, StringRef One, StringRef Many) {
  return std::to_string(N) + " " + (N == 1 ? One : Many).str();
}

/// "'blocks.0.0.x' is teacher/backbone.blocks.0.0.x in t.pth (storage 5,
/// byte 101376), renamed by unwrap, canonicalize-prefix": where to look in
/// the file, and which passes to suspect; the JSON report has every step.
std::string originNote(const CheckpointEntry &A) {
  const Provenance &P = A.Origin;
  if (P.empty())
    return "note: '" + A.Name + "' has no recorded origin";
  std::string S;
  raw_string_ostream OS(S);
  std::string Path = P.KeyPath.empty() ? "<unnamed>" : P.originalPath();
  OS << "note: '" << A.Name << "' ";
  if (Path == A.Name)
    OS << "comes unchanged from " << (P.File.empty() ? "memory" : P.File);
  else
    OS << "is " << Path << (P.File.empty() ? "" : " in " + P.File);
  if (!P.StorageKey.empty() && P.ByteOffset)
    OS << " (storage " << P.StorageKey << ", byte " << *P.ByteOffset << ")";
  else if (!P.StorageKey.empty())
    OS << " (storage " << P.StorageKey << ")";
  std::vector<StringRef> Renamers;
  for (const Provenance::Step &Step : P.History)
    if (!Step.Note.empty())
      OS << ", " << Step.Note << " by " << Step.Pass;
    else if (Renamers.empty() || Renamers.back() != Step.Pass)
      Renamers.push_back(Step.Pass);
  if (!Renamers.empty())
    OS << ", renamed by " << join(Renamers, ", ");
  return S;
}

/// "7 × f32[1]"; per key for small groups; for large mixed groups only how
/// many types there are (the JSON report has each key's).
std::string typesOf(ArrayRef<std::string> Types) {
  if (Types.size() == 1)
    return Types.front();
  if (all_equal(Types))
    return std::to_string(Types.size()) + " \u00d7 " + Types.front();
  if (Types.size() <= MaxPerKeyTypes)
    return join(Types, ", ");
  std::vector<std::string> Distinct(Types.begin(), Types.end());
  llvm::sort(Distinct);
  Distinct.erase(std::unique(Distinct.begin(), Distinct.end()), Distinct.end());
  return std::to_string(Distinct.size()) + " types; report=FILE has each";
}

class ReportPrinter {
public:
  ReportPrinter(const Comparison &C, raw_ostream &OS) : C(C), OS(OS) {}
  void print();

private:
  /// Errors of kind K that no printed hint explains: the hint and its
  /// examples already say all a user needs about those.
  std::vector<const Finding *> unexplained(Kind K) const {
    std::vector<const Finding *> R;
    for (const Finding &F : C.Findings)
      if (F.TheKind == K && F.isError() &&
          (F.HintIndex < 0 || size_t(F.HintIndex) >= MaxHintsShown))
        R.push_back(&F);
    return R;
  }
  void printHints();
  void printMissingOrUnexpected(Kind K);
  void printGroupOrigin(ArrayRef<const Finding *> Members);
  void printMismatches(Kind K);
  void printAllowed();
  bool limitReached(size_t Shown, size_t Total, StringRef What,
                    size_t KeysLeft);

  const Comparison &C;
  raw_ostream &OS;
};

std::vector<const Finding *> membersOf(const KeyGroup &G,
                                       ArrayRef<const Finding *> Fs) {
  std::vector<const Finding *> R;
  for (unsigned M : G.Members)
    R.push_back(Fs[M]);
  return R;
}

std::string groupSubject(const KeyGroup &G) {
  if (G.Members.size() == 1)
    return "key " + G.Pattern;
  return plural(G.Members.size(), "key", "keys") + (G.Sparse ? " in " : " ") +
         G.Pattern;
}

bool ReportPrinter::limitReached(size_t Shown, size_t Total, StringRef What,
                                 size_t KeysLeft) {
  if (Shown < MaxGroupsShown)
    return false;
  OS << "note: " << plural(Total - Shown, "more group", "more groups") << " of "
     << What << " (" << plural(KeysLeft, "key", "keys")
     << ") not shown; report=FILE lists every key\n";
  return true;
}

void ReportPrinter::printHints() {
  for (size_t I = 0; I < C.Hints.size() && I < MaxHintsShown; ++I) {
    OS << "hint: " << C.Hints[I].Message << "\n";
    for (const auto &[From, To] : C.Hints[I].Examples)
      OS << "note: " << From
         << (To.empty() ? " would be dropped" : " would be " + To) << "\n";
    for (const std::string &N : C.Hints[I].Notes)
      OS << "note: " << N << "\n";
  }
}

/// One provenance note per group: the first key's origin stands for the
/// rest, which the JSON report lists one by one.
void ReportPrinter::printGroupOrigin(ArrayRef<const Finding *> Members) {
  OS << originNote(*Members.front()->Actual);
  if (size_t More = Members.size() - 1) {
    const std::string &File = Members.front()->Actual->Origin.File;
    bool SameFile = !File.empty() && all_of(Members, [&](const Finding *F) {
      return F->Actual->Origin.File == File;
    });
    OS << " (+" << More << " more" << (SameFile ? " from the same file" : "")
       << ")";
  }
  OS << "\n";
}

void ReportPrinter::printMissingOrUnexpected(Kind K) {
  bool IsMissing = K == Kind::Missing;
  std::vector<const Finding *> Fs = unexplained(K);
  std::vector<KeyGroup> Groups = groupKeysByStem(namesOf(Fs));
  StringRef What = IsMissing ? "missing" : "unexpected";
  size_t KeysLeft = Fs.size();
  for (size_t I = 0; I < Groups.size(); ++I) {
    if (limitReached(I, Groups.size(), What.str() + " keys", KeysLeft))
      break;
    std::vector<const Finding *> Members = membersOf(Groups[I], Fs);
    std::vector<std::string> Types;
    for (const Finding *F : Members)
      Types.push_back(IsMissing ? typeOf(*F->Expected) : typeOf(*F->Actual));
    OS << "error: " << What << " " << groupSubject(Groups[I]) << " ("
       << typesOf(Types) << ")\n";
    if (!IsMissing)
      printGroupOrigin(Members);
    KeysLeft -= Members.size();
  }
}

/// Shape and dtype mismatches, grouped by key pattern among findings that
/// have the same expected and actual types.
void ReportPrinter::printMismatches(Kind K) {
  std::vector<const Finding *> Fs = unexplained(K);
  std::map<std::string, std::vector<const Finding *>> ByTypes;
  std::vector<std::string> Order;
  for (const Finding *F : Fs) {
    std::string Key = typeOf(*F->Expected) + "\x01" + typeOf(*F->Actual);
    auto &List = ByTypes[Key];
    if (List.empty())
      Order.push_back(Key);
    List.push_back(F);
  }
  struct Line {
    const Finding *First;
    KeyGroup Group;
  };
  std::vector<Line> Lines;
  for (const std::string &Key : Order) {
    ArrayRef<const Finding *> Part = ByTypes[Key];
    for (KeyGroup &G : groupKeys(namesOf(Part)))
      Lines.push_back({Part[G.Members.front()], std::move(G)});
  }
  // Back to manifest order: findings are stored in it.
  llvm::stable_sort(
      Lines, [](const Line &A, const Line &B) { return A.First < B.First; });
  StringRef What = K == Kind::ShapeMismatch ? "shape" : "dtype";
  size_t KeysLeft = Fs.size();
  for (size_t I = 0; I < Lines.size(); ++I) {
    if (limitReached(I, Lines.size(), What.str() + " mismatches", KeysLeft))
      break;
    const Finding &F = *Lines[I].First;
    const ManifestEntry &E = *F.Expected;
    const CheckpointEntry &A = *F.Actual;
    OS << "error: " << What << " mismatch for " << groupSubject(Lines[I].Group)
       << ": manifest has "
       << (K == Kind::ShapeMismatch ? typeOf(E) : dtypeName(E.Type).str())
       << ", checkpoint has "
       << (K == Kind::ShapeMismatch || !A.IsTensor ? typeOf(A)
                                                   : dtypeName(A.Type).str())
       << "\n";
    KeysLeft -= Lines[I].Group.Members.size();
    if (K != Kind::ShapeMismatch)
      continue;
    std::optional<uint64_t> NE = numelOf(E.Shape), NA = numelOf(A.Shape);
    bool Transposed = E.Shape.size() == 2 && A.Shape.size() == 2 &&
                      E.Shape[0] == A.Shape[1] && E.Shape[1] == A.Shape[0] &&
                      E.Shape[0] != E.Shape[1];
    if (Transposed)
      OS << "note: the shapes are transposed; the data needs a transpose, "
            "not just a reshape\n";
    else if (NE && NA && *NE == *NA)
      OS << "note: both have " << *NE << " elements; a reshape would fit\n";
  }
}

void ReportPrinter::printAllowed() {
  SmallVector<std::string, 4> Parts;
  if (unsigned N = C.countAllowed(Allowance::Optional))
    Parts.push_back(plural(N, "optional entry", "optional entries") +
                    " missing");
  unsigned AllowedMissing = 0, AllowedUnexpected = 0;
  for (const Finding &F : C.Findings)
    if (F.Allowed == Allowance::AllowedByGlob)
      ++(F.TheKind == Kind::Missing ? AllowedMissing : AllowedUnexpected);
  if (AllowedMissing)
    Parts.push_back(std::to_string(AllowedMissing) +
                    " missing allowed by allow-missing");
  if (AllowedUnexpected)
    Parts.push_back(std::to_string(AllowedUnexpected) +
                    " unexpected allowed by allow-unexpected");
  if (unsigned N = C.countAllowed(Allowance::Pruned))
    Parts.push_back(std::to_string(N) + " unexpected pruned");
  if (!Parts.empty())
    OS << "note: not counted: " << join(Parts, ", ") << "\n";
}

void ReportPrinter::print() {
  if (C.ok()) {
    OS << "checkpoint matches " << C.Noun << " " << C.ManifestName << " ("
       << plural(C.NumManifestEntries, "entry", "entries");
    std::string Counts = summarizeCounts(C);
    if (Counts != "no differences")
      OS << "; " << Counts;
    OS << ")\n";
    return;
  }
  // The verdict first, then the fixes, then what no fix explains: the
  // first lines are what a user pastes into a bug report.
  OS << "error: checkpoint does not match " << C.Noun << " " << C.ManifestName
     << ": " << summarizeCounts(C) << "\n";
  printHints();
  printMissingOrUnexpected(Kind::Missing);
  printMissingOrUnexpected(Kind::Unexpected);
  printMismatches(Kind::ShapeMismatch);
  printMismatches(Kind::DTypeMismatch);
  printAllowed();
}

} // namespace

std::string wopt::summarizeCounts(const Comparison &C) {
  SmallVector<std::string, 4> Parts;
  if (unsigned N = C.count(Kind::Missing))
    Parts.push_back(std::to_string(N) + " missing");
  if (unsigned N = C.count(Kind::Unexpected))
    Parts.push_back(std::to_string(N) + " unexpected");
  if (unsigned N = C.count(Kind::ShapeMismatch))
    Parts.push_back(plural(N, "shape mismatch", "shape mismatches"));
  if (unsigned N = C.count(Kind::DTypeMismatch))
    Parts.push_back(plural(N, "dtype mismatch", "dtype mismatches"));
  if (!C.ok())
    return join(Parts, ", ");
  // A passing run: say what was let through.
  unsigned Allowed = C.countAllowed(Allowance::Optional) +
                     C.countAllowed(Allowance::AllowedByGlob);
  if (Allowed)
    Parts.push_back(std::to_string(Allowed) + " allowed");
  if (unsigned N = C.countAllowed(Allowance::Pruned))
    Parts.push_back(std::to_string(N) + " pruned");
  return Parts.empty() ? "no differences" : join(Parts, ", ");
}

void wopt::printReport(const Comparison &C, raw_ostream &OS) {
  ReportPrinter(C, OS).print();
}

//===----------------------------------------------------------------------===//
// JSON report
//===----------------------------------------------------------------------===//

namespace {

StringRef allowanceName(Allowance A) {
  switch (A) {
  case Allowance::None:
    return "error";
  case Allowance::Optional:
    return "optional";
  case Allowance::AllowedByGlob:
    return "allowed";
  case Allowance::Pruned:
    return "pruned";
  }
  return "error";
}

void writeType(json::OStream &J, DType T, ArrayRef<int64_t> Shape) {
  J.attribute("dtype", dtypeName(T));
  // One line per shape keeps the report readable and greppable.
  J.attributeBegin("shape");
  J.rawValue([&](raw_ostream &OS) {
    OS << "[";
    for (size_t I = 0; I < Shape.size(); ++I)
      OS << (I ? ", " : "") << Shape[I];
    OS << "]";
  });
  J.attributeEnd();
}

void writeExpected(json::OStream &J, const ManifestEntry &E) {
  J.attributeObject("expected", [&] { writeType(J, E.Type, E.Shape); });
}

void writeActual(json::OStream &J, const CheckpointEntry &A) {
  J.attributeObject("actual", [&] {
    if (A.IsTensor)
      writeType(J, A.Type, A.Shape);
    else
      J.attribute("kind", A.ValueKind);
  });
}

void writeOrigin(json::OStream &J, const Provenance &P) {
  if (P.empty())
    return;
  J.attributeObject("origin", [&] {
    J.attribute("file", P.File);
    J.attribute("path", P.originalPath());
    J.attribute("name", P.originalName());
    if (!P.StorageKey.empty())
      J.attribute("storage", P.StorageKey);
    if (P.ByteOffset)
      J.attribute("byte", int64_t(*P.ByteOffset));
    J.attributeArray("history", [&] {
      for (const Provenance::Step &S : P.History)
        J.object([&] {
          J.attribute("pass", S.Pass);
          if (S.From != S.To) {
            J.attribute("from", S.From);
            J.attribute("to", S.To);
          }
          if (!S.Note.empty())
            J.attribute("note", S.Note);
        });
    });
  });
}

void writeFinding(json::OStream &J, const Finding &F) {
  J.object([&] {
    J.attribute("name", F.Name);
    J.attribute("status", allowanceName(F.Allowed));
    if (F.HintIndex >= 0)
      J.attribute("hint", F.HintIndex);
    if (F.TheKind == Kind::Missing) {
      writeExpected(J, *F.Expected);
      if (F.RemovedBy)
        J.attributeObject("removed_by", [&] {
          J.attribute("pass", F.RemovedBy->Pass);
          J.attribute("reason", F.RemovedBy->Reason);
          if (!F.RemovedBy->Keep.empty())
            J.attribute("keep", F.RemovedBy->Keep);
          if (const auto *T =
                  dyn_cast_or_null<TensorValue>(F.RemovedBy->Val.get()))
            writeOrigin(J, T->provenance());
        });
      return;
    }
    if (F.TheKind != Kind::Unexpected)
      writeExpected(J, *F.Expected);
    writeActual(J, *F.Actual);
    if (F.TheKind == Kind::Unexpected) {
      J.attribute("bytes", int64_t(F.Actual->Bytes));
      writeOrigin(J, F.Actual->Origin);
    }
    if (F.TheKind == Kind::ShapeMismatch) {
      std::optional<uint64_t> NE = numelOf(F.Expected->Shape),
                              NA = numelOf(F.Actual->Shape);
      J.attribute("same_numel", NE && NA && *NE == *NA);
    }
  });
}

void writeGroups(json::OStream &J, const Comparison &C, Kind K) {
  std::vector<std::string> Names;
  for (const Finding &F : C.Findings)
    if (F.TheKind == K && F.isError())
      Names.push_back(F.Name);
  J.arrayBegin();
  // Every name spelled out: the JSON report is the complete answer.
  for (const KeyGroup &G : groupKeysByStem(Names, SIZE_MAX))
    J.object([&] {
      J.attribute("pattern", G.Pattern);
      J.attribute("count", int64_t(G.Members.size()));
      J.attribute("sparse", G.Sparse);
    });
  J.arrayEnd();
}

} // namespace

void wopt::writeJSONReport(const Comparison &C, raw_ostream &OS) {
  json::OStream J(OS, 2);
  J.object([&] {
    J.attribute("format", "wopt-verify-report");
    J.attribute("version", 1);
    J.attribute("manifest", C.ManifestName);
    J.attribute("ok", C.ok());
    J.attribute("summary", summarizeCounts(C));
    J.attributeObject("counts", [&] {
      J.attribute("manifest_entries", int64_t(C.NumManifestEntries));
      J.attribute("checkpoint_entries", int64_t(C.NumCheckpointEntries));
      J.attribute("missing", C.count(Kind::Missing));
      J.attribute("unexpected", C.count(Kind::Unexpected));
      J.attribute("shape_mismatches", C.count(Kind::ShapeMismatch));
      J.attribute("dtype_mismatches", C.count(Kind::DTypeMismatch));
      J.attribute("optional_missing", C.countAllowed(Allowance::Optional));
      J.attribute("allowed", C.countAllowed(Allowance::AllowedByGlob));
      J.attribute("pruned", C.countAllowed(Allowance::Pruned));
      J.attribute("pruned_bytes", int64_t(C.prunedBytes()));
    });
    const std::pair<Kind, StringRef> Sections[] = {
        {Kind::Missing, "missing"},
        {Kind::Unexpected, "unexpected"},
        {Kind::ShapeMismatch, "shape_mismatches"},
        {Kind::DTypeMismatch, "dtype_mismatches"}};
    for (const auto &Section : Sections)
      J.attributeArray(Section.second, [&] {
        for (const Finding &F : C.Findings)
          if (F.TheKind == Section.first)
            writeFinding(J, F);
      });
    J.attributeObject("groups", [&] {
      J.attributeBegin("missing");
      writeGroups(J, C, Kind::Missing);
      J.attributeEnd();
      J.attributeBegin("unexpected");
      writeGroups(J, C, Kind::Unexpected);
      J.attributeEnd();
    });
    J.attributeArray("hints", [&] {
      for (const Hint &H : C.Hints)
        J.object([&] {
          J.attribute("kind", H.Kind);
          J.attribute("fix", H.Fix);
          J.attribute("keys", H.NumKeys);
          J.attribute("message", H.Message);
          J.attributeArray("examples", [&] {
            for (const auto &[From, To] : H.Examples)
              J.object([&] {
                J.attribute("unexpected", From);
                if (!To.empty())
                  J.attribute("missing", To);
              });
          });
          if (!H.Notes.empty())
            J.attributeArray("notes", [&] {
              for (const std::string &N : H.Notes)
                J.value(N);
            });
        });
    });
  });
  OS << "\n";
}
