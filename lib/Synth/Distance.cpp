//===- Distance.cpp - How far a state dict is from the target ------------===//
//
// The verification's comparison without its report: every trial run of the
// search makes one, so it keeps names, dtypes and shapes only, and asks
// findNearMisses (the verification's own hint finder) for the near misses.
//
//===----------------------------------------------------------------------===//
#include "Candidates.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

using namespace llvm;

namespace wopt {
namespace synth {
namespace {

bool matchesAny(ArrayRef<GlobPattern> Globs, StringRef Name) {
  return any_of(Globs, [&](const GlobPattern &G) { return G.match(Name); });
}

Distance::Entry entryOf(const DictEntry &E) {
  Distance::Entry Out;
  Out.Name = E.keyString().value_or("").str();
  auto *T = dyn_cast_or_null<TensorValue>(E.Val.get());
  Out.IsTensor = T != nullptr;
  if (T) {
    Out.Type = T->dtype();
    Out.Shape.assign(T->shape().begin(), T->shape().end());
  }
  return Out;
}

} // namespace

Distance distanceToTarget(const DictValue &SD, ArrayRef<ManifestEntry> Target,
                    const StringMap<unsigned> &TargetIndex,
                    const DistanceOptions &Opts, ArrayRef<RemovedEntry> Removed) {
  Distance D;
  D.NumTarget = Target.size();
  StringSet<> Present;
  std::vector<std::string> HintUnexpected;
  for (const DictEntry &DE : SD.entries()) {
    Distance::Entry E = entryOf(DE);
    Present.insert(E.Name);
    auto It = TargetIndex.find(E.Name);
    if (It == TargetIndex.end()) {
      if (!matchesAny(Opts.AllowUnexpected, E.Name))
        HintUnexpected.push_back(E.Name);
      D.Unexpected.push_back(std::move(E));
      continue;
    }
    const ManifestEntry &M = Target[It->second];
    D.Matched.push_back(M.Name);
    bool Shape = !E.IsTensor || ArrayRef<int64_t>(E.Shape) != ArrayRef(M.Shape);
    bool Type = !E.IsTensor || E.Type != M.Type;
    if (!Shape && !Type) {
      ++D.Good;
      continue;
    }
    if (Shape && E.IsTensor)
      D.Shapes.push_back({E, &M});
    if (Type)
      D.DTypes.push_back({E, &M});
  }
  StringSet<> WasRemoved;
  for (const RemovedEntry &R : Removed)
    WasRemoved.insert(R.Key);
  std::vector<std::string> HintMissing;
  for (const ManifestEntry &M : Target) {
    if (Present.count(M.Name))
      continue;
    ++D.AllMissing;
    if (M.Optional || matchesAny(Opts.AllowMissing, M.Name))
      continue;
    D.Missing.push_back(&M);
    if (!WasRemoved.count(M.Name))
      HintMissing.push_back(M.Name);
  }
  NearMissCoverage Cov;
  D.Hints = findNearMisses(HintUnexpected, HintMissing, &Cov, D.Matched);
  D.Explained = count(Cov.Unexpected, true);
  return D;
}

} // namespace synth
} // namespace wopt
