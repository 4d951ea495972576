//===- Rename.cpp - Rename state dict keys by ordered regex rules --------===//
//
// rename{rule=REGEX=>REPLACEMENT ...}: each key of the root state dict is
// matched, whole, against the rules in order; the first rule that matches
// gives the new key. Rules are compiled while the pipeline is parsed so that a
// bad regex is reported with a caret under the option, before any input is
// read.
//
//===----------------------------------------------------------------------===//
#include "wopt/IR/StateDict.h"
#include "wopt/Passes/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Regex.h"
#include <map>

using namespace wopt;
using llvm::Error;
using llvm::StringRef;

namespace {

/// One compiled rule.
struct Rule {
  std::string Text;        ///< as the user wrote it, for messages
  std::string Replacement; ///< with $N, ${N} and \N references
  std::unique_ptr<llvm::Regex> Re;
  unsigned NumGroups = 0;
};

/// Rewrites the Perl shorthands users reach for (\d, \w, \s and their
/// negations) into POSIX classes, which llvm::Regex understands. Inside a
/// bracket expression they are left alone.
std::string translateShorthands(StringRef Re) {
  std::string Out;
  bool InBracket = false;
  for (size_t I = 0; I < Re.size(); ++I) {
    char C = Re[I];
    if (InBracket) {
      Out += C;
      if (C == ']')
        InBracket = false;
      continue;
    }
    if (C == '[') {
      Out += C;
      InBracket = true;
      // "[]" and "[^]" start with a literal ']'.
      if (I + 1 < Re.size() && Re[I + 1] == '^')
        Out += Re[++I];
      if (I + 1 < Re.size() && Re[I + 1] == ']')
        Out += Re[++I];
      continue;
    }
    if (C != '\\' || I + 1 == Re.size()) {
      Out += C;
      continue;
    }
    char N = Re[++I];
    switch (N) {
    case 'd':
      Out += "[0-9]";
      break;
    case 'D':
      Out += "[^0-9]";
      break;
    case 'w':
      Out += "[A-Za-z0-9_]";
      break;
    case 'W':
      Out += "[^A-Za-z0-9_]";
      break;
    case 's':
      Out += "[[:space:]]";
      break;
    case 'S':
      Out += "[^[:space:]]";
      break;
    default:
      Out += C;
      Out += N;
    }
  }
  return Out;
}

/// Checks that every group reference in R.Replacement exists.
Error checkReplacement(const Rule &R) {
  StringRef S = R.Replacement;
  for (size_t I = 0; I + 1 < S.size(); ++I) {
    if (S[I] != '$' && S[I] != '\\')
      continue;
    unsigned Group = 0;
    size_t Next = I + 1;
    if (S[Next] == S[I]) { // "$$" or "\\": a literal
      I = Next;
      continue;
    }
    if (S[I] == '$' && S[Next] == '{') {
      size_t Close = S.find('}', Next);
      if (Close == StringRef::npos ||
          S.slice(Next + 1, Close).getAsInteger(10, Group))
        return llvm::createStringError(
            "rule '" + R.Text + "': '${' must be followed by a number and '}'");
      I = Close;
    } else if (llvm::isDigit(S[Next])) {
      Group = S[Next] - '0';
      I = Next;
    } else {
      continue;
    }
    if (Group > R.NumGroups)
      return llvm::createStringError(
          "rule '" + R.Text + "' refers to group " + std::to_string(Group) +
          " but its regex has " + std::to_string(R.NumGroups) +
          (R.NumGroups == 1 ? " group" : " groups"));
  }
  return Error::success();
}

llvm::Expected<Rule> compileRule(StringRef Text) {
  size_t Arrow = Text.find("=>");
  if (Arrow == StringRef::npos)
    return llvm::createStringError("rule '" + Text +
                                   "' has no '=>'; write REGEX=>REPLACEMENT");
  Rule R;
  R.Text = Text.str();
  StringRef Pattern = Text.take_front(Arrow);
  R.Replacement = Text.drop_front(Arrow + 2).str();
  if (Pattern.empty())
    return llvm::createStringError("rule '" + Text + "' has an empty regex");
  // The user's pattern is wrapped in a group of its own, so the key must
  // match whole even when the pattern has a top-level '|'.
  R.Re =
      std::make_unique<llvm::Regex>("^(" + translateShorthands(Pattern) + ")$");
  std::string Why;
  if (!R.Re->isValid(Why))
    return llvm::createStringError("invalid regex '" + Pattern + "' in rule '" +
                                   Text + "': " + Why);
  R.NumGroups = R.Re->getNumMatches() - 1;
  if (Error Err = checkReplacement(R))
    return Err;
  return R;
}

/// Expands the replacement of R for a match. Groups is what Regex::match
/// filled: [0] the key, [1] our wrapper group, [N + 1] the user's group N.
std::string expand(const Rule &R, llvm::ArrayRef<StringRef> Groups) {
  StringRef S = R.Replacement;
  std::string Out;
  auto Group = [&](unsigned N) { return N == 0 ? Groups[0] : Groups[N + 1]; };
  for (size_t I = 0; I < S.size(); ++I) {
    char C = S[I];
    if ((C != '$' && C != '\\') || I + 1 == S.size()) {
      Out += C;
      continue;
    }
    char N = S[I + 1];
    unsigned G = 0;
    if (N == C) {
      Out += C;
      ++I;
    } else if (C == '$' && N == '{') {
      size_t Close = S.find('}', I);
      S.slice(I + 2, Close).getAsInteger(10, G);
      Out += Group(G);
      I = Close;
    } else if (llvm::isDigit(N)) {
      Out += Group(N - '0');
      ++I;
    } else {
      Out += C;
    }
  }
  return Out;
}

/// The `rule` option: a list whose items are compiled as they are parsed.
class RuleListOption : public ListOption {
public:
  RuleListOption(Pass &P, StringRef Name, StringRef Help)
      : ListOption(P, Name, Help) {}
  Error parse(StringRef Text) override {
    size_t Old = (*this)->size();
    if (Error Err = ListOption::parse(Text))
      return Err;
    for (size_t I = Old; I < (*this)->size(); ++I) {
      llvm::Expected<Rule> R = compileRule((**this)[I]);
      if (!R)
        return R.takeError();
      Rules.push_back(std::move(*R));
    }
    return Error::success();
  }
  const std::vector<Rule> &rules() const { return Rules; }

private:
  std::vector<Rule> Rules;
};

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
    const std::vector<Rule> &Rules = RuleOpt.rules();
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
      return expand(Rules[I], Groups);
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
        warning("", nullptr,
                "rule " + std::to_string(I + 1) + " ('" + Rules[I].Text +
                    "') matched no key");
  }

  RuleListOption RuleOpt{*this, "rule",
                         "REGEX=>REPLACEMENT, in order; repeat the option or "
                         "separate rules with commas (quote a rule whose regex "
                         "has a top-level comma)"};
  Statistic NumRenamed{*this, "renamed", "keys renamed"};
};

} // namespace

WOPT_DEFINE_PASS_FACTORY(Rename, RenamePass)
