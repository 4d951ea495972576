//===- VerifyAgainstManifest.cpp - Hold a checkpoint to a manifest -------===//
//
// The last pass of a repair pipeline: proves the result has exactly the keys,
// dtypes and shapes the target model wants, or fails the run (exit 1,
// nothing written) with a report that groups the differences and names the
// pass that would repair each near miss. Only names, dtypes and shapes are
// read, so it costs the same on a 10 KB and a 10 GB checkpoint.
//
//===----------------------------------------------------------------------===//
#include "wopt/IR/StateDict.h"
#include "wopt/Manifest/Manifest.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "wopt/Serialization/Output.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"

using namespace llvm;

namespace wopt {
namespace {

class VerifyAgainstManifestPass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Compares the root state dict with a target: manifest=FILE (a "
           "manifest, or any checkpoint wopt reads: its state dict), or "
           "without it the run's -target. Missing and unexpected keys, shape "
           "and dtype mismatches: any difference not allowed (optional "
           "entries, allow-missing=/allow-unexpected= globs, "
           "prune-unexpected=true) fails the run with exit code 1 and a "
           "grouped report whose hints name the passes that would repair "
           "near misses. report=FILE also writes the findings as JSON.";
  }

  Error run(Checkpoint &C) override {
    LastVerdict.clear();
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    Expected<CompareOptions> Opts = compareOptions();
    if (!Opts)
      return Opts.takeError();
    std::shared_ptr<const Target> Loaded;
    const Target *T = target();
    if (!ManifestPath->empty()) {
      Expected<std::shared_ptr<const Target>> L = loadTarget(*ManifestPath);
      if (!L)
        return L.takeError();
      Loaded = std::move(*L);
      T = Loaded.get();
    }
    if (!T)
      return error("needs manifest=FILE or a -target=FILE (a manifest, made "
                   "with -emit=manifest, or a checkpoint of the model)");
    Opts->ManifestName = T->name().str();
    Opts->Removed = C.Removed;
    Opts->SuggestTarget = T != target();
    if (T->source() == Target::Source::Checkpoint)
      Opts->Noun = "target";

    Comparison Result =
        compareWithManifest(T->manifest(), checkpointEntries(*SD), *Opts);
    count(Result);
    prune(*SD, Result);
    if (!ReportPath->empty())
      if (Error E = writeReportFile(Result))
        return E;
    if (!Result.ok())
      return make_error<VerificationFailure>(failureText(Result));
    std::string Summary;
    raw_string_ostream OS(Summary);
    printReport(Result, OS);
    remark("", nullptr, StringRef(Summary).rtrim());
    LastVerdict = verdictOf(Result);
    return Error::success();
  }

  std::string verdict() const override { return LastVerdict; }

private:
  /// "matches m.json (119 tensors)", with what was let through.
  static std::string verdictOf(const Comparison &R) {
    std::string S = "matches " + R.ManifestName + " (" +
                    std::to_string(R.NumManifestEntries) +
                    (R.NumManifestEntries == 1 ? " tensor" : " tensors");
    std::string Counts = summarizeCounts(R);
    if (Counts != "no differences")
      S += "; " + Counts;
    return S + ")";
  }

  Expected<CompareOptions> compareOptions() const {
    CompareOptions Opts;
    Opts.PruneUnexpected = PruneUnexpected;
    Expected<std::vector<GlobPattern>> Missing =
        compileGlobs(*AllowMissing, "allow-missing");
    if (!Missing)
      return error(toString(Missing.takeError()));
    Expected<std::vector<GlobPattern>> Unexpected =
        compileGlobs(*AllowUnexpected, "allow-unexpected");
    if (!Unexpected)
      return error(toString(Unexpected.takeError()));
    Opts.AllowMissing = std::move(*Missing);
    Opts.AllowUnexpected = std::move(*Unexpected);
    return Opts;
  }

  void count(const Comparison &R) {
    using K = Finding::Kind;
    NumChecked = R.NumManifestEntries;
    NumMissing = R.count(K::Missing);
    NumUnexpected = R.count(K::Unexpected);
    NumShape = R.count(K::ShapeMismatch);
    NumDType = R.count(K::DTypeMismatch);
    NumAllowed = R.countAllowed(Finding::Allowance::Optional) +
                 R.countAllowed(Finding::Allowance::AllowedByGlob);
  }

  /// Drops the unexpected keys the comparison marked as pruned, with a
  /// remark each so the provenance of what went is on record.
  void prune(DictValue &SD, const Comparison &R) {
    StringMap<const Finding *> Pruned;
    for (const Finding &F : R.Findings)
      if (F.Allowed == Finding::Allowance::Pruned)
        Pruned[F.Name] = &F;
    if (Pruned.empty())
      return;
    eraseIf(SD, [&](const DictEntry &E) {
      std::optional<StringRef> Key = E.keyString();
      if (!Key || !Pruned.count(*Key))
        return false;
      const auto *T = dyn_cast_or_null<TensorValue>(E.Val.get());
      uint64_t Bytes = T ? tensorBytes(*T) : 0;
      ++NumPruned;
      NumPrunedBytes += Bytes;
      remark(*Key, T,
             "pruned unexpected key" +
                 (T ? " " + T->typeString() + " (" + std::to_string(Bytes) +
                          " bytes)"
                    : std::string()));
      return true;
    });
  }

  /// Written as every output is (wopt/Serialization/Output.h): complete
  /// or not at all.
  Error writeReportFile(const Comparison &R) const {
    Error E = writeOutputFile(*ReportPath, [&](raw_ostream &OS) {
      writeJSONReport(R, OS);
      return Error::success();
    });
    if (E)
      return error("cannot write the report: " + toString(std::move(E)));
    return Error::success();
  }

  /// The report as the driver prints it: it puts "error: <input>: " in
  /// front of the first line itself, so that line has no severity of its
  /// own.
  static std::string failureText(const Comparison &R) {
    std::string Text;
    raw_string_ostream OS(Text);
    printReport(R, OS);
    StringRef T = StringRef(Text).rtrim('\n');
    T.consume_front("error: ");
    return T.str();
  }

  Option<std::string> ManifestPath{
      *this, "manifest",
      "the target: a manifest, or a checkpoint of the model (default: the "
      "run's -target)"};
  ListOption AllowMissing{*this, "allow-missing",
                          "globs of manifest keys that may be missing"};
  ListOption AllowUnexpected{
      *this, "allow-unexpected",
      "globs of checkpoint keys the manifest may lack (kept)"};
  Option<bool> PruneUnexpected{
      *this, "prune-unexpected",
      "drop unexpected keys instead of failing on them", false};
  Option<std::string> ReportPath{*this, "report",
                                 "also write the findings as JSON to FILE"};

  Statistic NumChecked{*this, "checked", "manifest entries checked"};
  Statistic NumMissing{*this, "missing", "missing keys (errors)"};
  Statistic NumUnexpected{*this, "unexpected", "unexpected keys (errors)"};
  Statistic NumShape{*this, "shape-mismatches", "shape mismatches"};
  Statistic NumDType{*this, "dtype-mismatches", "dtype mismatches"};
  Statistic NumAllowed{*this, "allowed",
                       "differences allowed (optional or by glob)"};
  Statistic NumPruned{*this, "pruned", "unexpected keys pruned"};
  Statistic NumPrunedBytes{*this, "pruned-bytes", "bytes pruned"};
  std::string LastVerdict;
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(VerifyAgainstManifest, VerifyAgainstManifestPass)
