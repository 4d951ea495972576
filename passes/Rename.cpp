//===- Rename.cpp - Rename state dict keys by ordered regex rules --------===//
//
// rename{rule=REGEX=>REPLACEMENT ...}: each key of the root state dict is
// matched, whole, against the rules in order; the first rule that matches
// gives the new key. Rules are compiled while the pipeline is parsed so that a
// bad regex is reported with a caret under the option, before any input is
// read.
//
//===----------------------------------------------------------------------===//
#include "KeyRegex.h"
#include "wopt/IR/StateDict.h"
#include "wopt/Passes/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Regex.h"
#include <map>

using namespace wopt;
using llvm::Error;
using llvm::StringRef;
using wopt::passutil::compileKeyRule;
using Rule = wopt::passutil::KeyRegex;

namespace {

/// Keys that a later rule would also have matched after an earlier rule
/// renamed them: usually an accident (the user meant the rules to chain).
struct ChainReport {
  unsigned Count = 0;
  std::string ExampleOld, ExampleNew;
};

class RenamePass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Renames the keys of the root state dict. Each rule is "
           "REGEX=>REPLACEMENT; a key is matched whole (anchored) against the "
           "rules in order and the first matching rule renames it; keys no "
           "rule matches stay. Regexes are POSIX extended plus \\d \\w \\s. "
           "The replacement refers to groups as $1..$9, ${10} or \\1..\\9; $0 "
           "is the whole key; $$ and \\\\ are literal. Each key is renamed at "
           "most once per run: when a later rule also matches the new key, a "
           "warning says so. Two keys ending with the same name is an error "
           "that names both.";
  }

  Error run(Checkpoint &C) override {
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    const std::vector<Rule> &Rules = RuleOpt.compiled();
    if (Rules.empty())
      return error("no rules; give rule=REGEX=>REPLACEMENT");

    std::vector<unsigned> Hits(Rules.size(), 0);
    std::map<std::pair<size_t, size_t>, ChainReport> Chains;
    llvm::StringMap<std::pair<std::string, size_t>> Origin; // new -> old, rule
    std::string EmptyKeyError;
    auto Map = [&](StringRef Key) -> std::optional<std::string> {
      std::optional<size_t> Which;
      std::string New = applyRules(Rules, Key, Which);
      if (!Which)
        return std::nullopt;
      ++Hits[*Which];
      if (New.empty() && EmptyKeyError.empty())
        EmptyKeyError = "rule " + std::to_string(*Which + 1) + " ('" +
                        Rules[*Which].Text + "') renames '" + Key.str() +
                        "' to an empty key";
      noteChains(Rules, *Which, Key, New, Chains);
      Origin[New] = {Key.str(), *Which};
      return New;
    };
    // An empty key would only be reported after renameKeys committed, so
    // look first: a failing pass must leave the IR as it was.
    for (const DictEntry &E : SD->entries())
      if (std::optional<StringRef> K = E.keyString())
        (void)Map(*K);
    if (!EmptyKeyError.empty())
      return error(EmptyKeyError);
    std::fill(Hits.begin(), Hits.end(), 0);
    Chains.clear();
    Origin.clear();

    unsigned Count = 0;
    if (Error Err = renameKeys(*SD, Map, argument(), &Count))
      return Err;
    NumRenamed += Count;
    reportRemarks(*SD, Rules, Origin);
    reportWarnings(Rules, Hits, Chains);
    return Error::success();
  }

private:
  /// The new key from the first rule that matches Key whole; Which is unset
  /// when none does.
  static std::string applyRules(const std::vector<Rule> &Rules, StringRef Key,
                                std::optional<size_t> &Which) {
    llvm::SmallVector<StringRef, 8> Groups;
    for (size_t I = 0; I < Rules.size(); ++I) {
      if (!Rules[I].Re->match(Key, &Groups))
        continue;
      Which = I;
      return Rules[I].expand(Groups);
    }
    return Key.str();
  }

  static void noteChains(const std::vector<Rule> &Rules, size_t Which,
                         StringRef Old, StringRef New,
                         std::map<std::pair<size_t, size_t>, ChainReport> &C) {
    if (New == Old)
      return;
    for (size_t J = Which + 1; J < Rules.size(); ++J) {
      if (!Rules[J].Re->match(New))
        continue;
      ChainReport &R = C[{Which, J}];
      if (R.Count++ == 0) {
        R.ExampleOld = Old.str();
        R.ExampleNew = New.str();
      }
    }
  }

  void
  reportRemarks(const DictValue &SD, const std::vector<Rule> &Rules,
                const llvm::StringMap<std::pair<std::string, size_t>> &Origin) {
    for (const DictEntry &E : SD.entries()) {
      std::optional<StringRef> K = E.keyString();
      if (!K)
        continue;
      auto It = Origin.find(*K);
      if (It == Origin.end() || It->second.first == *K)
        continue;
      remark(*K, llvm::dyn_cast<TensorValue>(E.Val.get()),
             "renamed from '" + It->second.first + "' by rule " +
                 std::to_string(It->second.second + 1));
    }
  }

  void reportWarnings(
      const std::vector<Rule> &Rules, llvm::ArrayRef<unsigned> Hits,
      const std::map<std::pair<size_t, size_t>, ChainReport> &Chains) {
    for (const auto &[Pair, R] : Chains)
      warning(R.ExampleNew, nullptr,
              "rule " + std::to_string(Pair.second + 1) + " ('" +
                  Rules[Pair.second].Text + "') also matches " +
                  std::to_string(R.Count) + (R.Count == 1 ? " key" : " keys") +
                  " that rule " + std::to_string(Pair.first + 1) +
                  " produced, e.g. '" + R.ExampleOld + "' -> '" + R.ExampleNew +
                  "'; each key is renamed once, so rule " +
                  std::to_string(Pair.second + 1) +
                  " was not applied to them (run rename again to chain)");
    for (size_t I = 0; I < Rules.size(); ++I)
      if (!Hits[I])
        matchedNothing("rule " + std::to_string(I + 1) + " ('" + Rules[I].Text +
                       "') matched no key");
  }

  CompiledListOption<Rule> RuleOpt{
      *this, "rule",
      "REGEX=>REPLACEMENT, in order; repeat the option or separate rules with "
      "commas (quote a rule whose regex has a top-level comma)",
      compileKeyRule, Presence::Required};
  Statistic NumRenamed{*this, "renamed", "keys renamed"};
};

} // namespace

WOPT_DEFINE_PASS_FACTORY(Rename, RenamePass)
