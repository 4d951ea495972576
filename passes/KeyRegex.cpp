//===- KeyRegex.cpp - Whole-key regexes with group replacements -----------===//
#include "KeyRegex.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"

using namespace llvm;

namespace wopt {
namespace passutil {

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
static Error checkReplacement(const KeyRegex &R) {
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
        return createStringError(
            "rule '" + R.Text + "': '${' must be followed by a number and '}'");
      I = Close;
    } else if (isDigit(S[Next])) {
      Group = S[Next] - '0';
      I = Next;
    } else {
      continue;
    }
    if (Group > R.NumGroups)
      return createStringError("rule '" + R.Text + "' refers to group " +
                               std::to_string(Group) + " but its regex has " +
                               std::to_string(R.NumGroups) +
                               (R.NumGroups == 1 ? " group" : " groups"));
  }
  return Error::success();
}

Expected<KeyRegex> compileKeyRegex(StringRef Pattern, StringRef Replacement,
                                   StringRef Text) {
  KeyRegex R;
  R.Text = Text.str();
  R.Replacement = Replacement.str();
  if (Pattern.empty())
    return createStringError("rule '" + Text + "' has an empty regex");
  // The user's pattern is wrapped in a group of its own, so the key must
  // match whole even when the pattern has a top-level '|'.
  R.Re = std::make_unique<Regex>("^(" + translateShorthands(Pattern) + ")$");
  std::string Why;
  if (!R.Re->isValid(Why))
    return createStringError("invalid regex '" + Pattern + "' in rule '" +
                             Text + "': " + Why);
  R.NumGroups = R.Re->getNumMatches() - 1;
  if (Error Err = checkReplacement(R))
    return Err;
  return R;
}

Expected<KeyRegex> compileKeyRule(StringRef Text) {
  size_t Arrow = Text.find("=>");
  if (Arrow == StringRef::npos)
    return createStringError("rule '" + Text +
                             "' has no '=>'; write REGEX=>REPLACEMENT");
  return compileKeyRegex(Text.take_front(Arrow), Text.drop_front(Arrow + 2),
                         Text);
}

std::optional<std::string> KeyRegex::apply(StringRef Key) const {
  SmallVector<StringRef, 8> Groups;
  if (!Re->match(Key, &Groups))
    return std::nullopt;
  return expand(Groups);
}

std::string KeyRegex::expand(ArrayRef<StringRef> Groups) const {
  StringRef S = Replacement;
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
    } else if (isDigit(N)) {
      Out += Group(N - '0');
      ++I;
    } else {
      Out += C;
    }
  }
  return Out;
}

} // namespace passutil
} // namespace wopt
