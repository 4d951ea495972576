//===- Pass.cpp - The pass base class, options and statistics ------------===//
//
// Option values arrive here exactly as the pipeline text spelled them (the
// pipeline parser only finds where a value ends), so each option type decides
// how to unquote and split its own text.
//
//===----------------------------------------------------------------------===//
#include "wopt/Pass/Pass.h"
#include "OptionText.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace wopt;
using llvm::Error;
using llvm::StringRef;

char VerificationFailure::ID = 0;

std::error_code VerificationFailure::convertToErrorCode() const {
  return llvm::inconvertibleErrorCode();
}

//===----------------------------------------------------------------------===//
// Option text helpers
//===----------------------------------------------------------------------===//

size_t wopt::findValueEnd(StringRef S, size_t Pos, bool StopAtComma) {
  int Depth = 0; // of (), [] and {} together: regexes nest them all
  while (Pos < S.size()) {
    char C = S[Pos];
    if (C == '\'' || C == '"') {
      size_t Close = S.find(C, Pos + 1);
      if (Close == StringRef::npos)
        return S.size();
      Pos = Close + 1;
      continue;
    }
    if (C == '(' || C == '[' || C == '{') {
      ++Depth;
    } else if (C == ')' || C == ']' || C == '}') {
      if (Depth == 0)
        return Pos;
      --Depth;
    } else if (Depth == 0 && (C == ' ' || C == '\t' || C == '\n' || C == '\r' ||
                              (StopAtComma && C == ','))) {
      return Pos;
    }
    ++Pos;
  }
  return Pos;
}

/// True when S is one quoted string or one brace group, so that stripping
/// its first and last characters unquotes it.
static bool isWrapped(StringRef S) {
  if (S.size() < 2)
    return false;
  char Open = S.front();
  if (Open == '\'' || Open == '"')
    return S.back() == Open && S.find(Open, 1) == S.size() - 1;
  if (Open != '{' || S.back() != '}')
    return false;
  // "{a}{b}" starts and ends with braces but is two groups.
  int Depth = 0;
  for (size_t I = 0; I < S.size(); ++I) {
    if (S[I] == '{')
      ++Depth;
    else if (S[I] == '}' && --Depth == 0)
      return I == S.size() - 1;
  }
  return false;
}

StringRef wopt::unquoteOptionValue(StringRef S) {
  return isWrapped(S) ? S.substr(1, S.size() - 2) : S;
}

std::vector<StringRef> wopt::splitOptionList(StringRef S) {
  std::vector<StringRef> Items;
  if (S.trim().empty())
    return Items;
  size_t Pos = 0;
  while (true) {
    // Blanks inside an item are kept: only top-level commas split.
    size_t End = Pos;
    while (End < S.size() && S[End] != ',') {
      size_t Next = findValueEnd(S, End, /*StopAtComma=*/true);
      End = Next == End ? End + 1 : Next;
    }
    Items.push_back(unquoteOptionValue(S.slice(Pos, End).trim()));
    if (End >= S.size())
      break;
    Pos = End + 1;
  }
  return Items;
}

std::string wopt::quoteOptionValue(StringRef V) {
  // A bare value must end where the closing brace of `{opt=V}` begins: an
  // unclosed bracket or quote in V would swallow it.
  std::string Closed = (V + "}").str();
  if (!V.empty() && findValueEnd(Closed, 0, /*StopAtComma=*/true) == V.size() &&
      !isWrapped(V) && V.front() != '\'' && V.front() != '"')
    return V.str();
  if (!V.contains('\''))
    return ("'" + V + "'").str();
  if (!V.contains('"'))
    return ("\"" + V + "\"").str();
  return ("{" + V + "}").str();
}

StringRef wopt::closestMatch(StringRef Name, llvm::ArrayRef<StringRef> Cands) {
  StringRef Best;
  unsigned BestDist = 3; // more edits than that is not a typo
  for (StringRef C : Cands) {
    unsigned D = Name.edit_distance(C, true, BestDist);
    if (D < BestDist) {
      BestDist = D;
      Best = C;
    }
  }
  return Best;
}

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

OptionBase::OptionBase(Pass &P, StringRef Name, StringRef Help, Presence Need)
    : Name(Name.str()), Help(Help.str()), Need(Need) {
  P.Options.push_back(this);
}

Error Option<std::string>::parse(StringRef Text) {
  V = unquoteOptionValue(Text).str();
  Set = true;
  return Error::success();
}

std::string Option<std::string>::print() const { return quoteOptionValue(V); }

Error Option<int64_t>::parse(StringRef Text) {
  StringRef T = unquoteOptionValue(Text).trim();
  int64_t N;
  if (T.getAsInteger(0, N))
    return llvm::createStringError(
        llvm::formatv("expected an integer, got '{0}'", T).str());
  if (N < Min)
    return llvm::createStringError(
        llvm::formatv("expected an integer >= {0}, got '{1}'", Min, T).str());
  V = N;
  Set = true;
  return Error::success();
}

std::string Option<int64_t>::print() const { return std::to_string(V); }

EnumOption::EnumOption(Pass &P, StringRef Name, StringRef Help,
                       std::vector<std::string> Values, std::string Default,
                       Presence Need)
    : Option<std::string>(P, Name, Help, std::move(Default), Need),
      Values(std::move(Values)), Spelled(llvm::join(this->Values, "|")) {}

Error EnumOption::parse(StringRef Text) {
  StringRef T = unquoteOptionValue(Text).trim();
  if (llvm::is_contained(Values, T))
    return Option<std::string>::parse(T);
  std::string Msg = llvm::formatv("expected one of {0}, got '{1}'",
                                  llvm::join(Values, ", "), T)
                        .str();
  std::vector<StringRef> Names(Values.begin(), Values.end());
  StringRef Best = closestMatch(T, Names);
  if (!Best.empty())
    Msg += (" (did you mean '" + Best + "'?)").str();
  return llvm::createStringError(Msg);
}

Error Option<bool>::parse(StringRef Text) {
  StringRef T = unquoteOptionValue(Text).trim();
  if (T.empty() || T == "true" || T == "1")
    V = true;
  else if (T == "false" || T == "0")
    V = false;
  else
    return llvm::createStringError(
        llvm::formatv("expected true, false, 1 or 0, got '{0}'", T).str());
  Set = true;
  return Error::success();
}

std::string Option<bool>::print() const { return V ? "true" : "false"; }

Error ListOption::parse(StringRef Text) {
  // `also={a,b}` and `also=a,b` are the list a,b; `rule='x{1,2}=>y'` is one
  // item: a quoted value protects its commas, braces only group the list.
  std::vector<StringRef> Items;
  if (Text.size() >= 2 && (Text.front() == '\'' || Text.front() == '"') &&
      unquoteOptionValue(Text) != Text)
    Items.push_back(unquoteOptionValue(Text));
  else
    Items = splitOptionList(unquoteOptionValue(Text));
  if (Items.empty())
    return llvm::createStringError("expected at least one item");
  for (StringRef Item : Items) {
    if (Item.empty())
      return llvm::createStringError(
          llvm::formatv("empty item in list '{0}'", Text).str());
    V.push_back(Item.str());
  }
  Set = true;
  return Error::success();
}

std::string ListOption::print() const {
  std::string S;
  for (const std::string &Item : V) {
    if (!S.empty())
      S += ',';
    S += quoteOptionValue(Item);
  }
  return S;
}

std::vector<std::string> ListOption::printEach() const {
  std::vector<std::string> Out;
  for (const std::string &Item : V)
    Out.push_back(quoteOptionValue(Item));
  return Out;
}

Statistic::Statistic(Pass &P, StringRef Name, StringRef Desc)
    : Name(Name.str()), Desc(Desc.str()) {
  P.Stats.push_back(this);
}

//===----------------------------------------------------------------------===//
// Pass
//===----------------------------------------------------------------------===//

Pass::~Pass() = default;

Error Pass::setOption(StringRef Name, StringRef Text) {
  auto It =
      llvm::find_if(Options, [&](OptionBase *O) { return O->name() == Name; });
  if (It == Options.end())
    return llvm::createStringError(
        llvm::formatv("unknown option '{0}' for pass '{1}'", Name, argument())
            .str());
  return (*It)->parse(Text);
}

void Pass::printAsTextualPipeline(llvm::raw_ostream &OS) const {
  OS << argument();
  bool First = true;
  for (const OptionBase *O : Options) {
    if (!O->wasSet())
      continue;
    OS << (First ? "{" : " ") << O->name() << '=' << O->print();
    First = false;
  }
  if (!First)
    OS << '}';
}

void Pass::printAsPipelineFileEntry(llvm::raw_ostream &OS, size_t Width) const {
  std::string Line;
  llvm::raw_string_ostream LS(Line);
  printAsTextualPipeline(LS);
  if (Line.size() <= Width) {
    OS << Line << '\n';
    return;
  }
  OS << argument() << "{\n";
  for (const OptionBase *O : Options)
    if (O->wasSet())
      for (const std::string &V : O->printEach())
        OS << "  " << O->name() << '=' << V << '\n';
  OS << "}\n";
}

static Diagnostic makeDiagnostic(Diagnostic::Severity Sev, StringRef PassArg,
                                 StringRef Key, const TensorValue *T,
                                 const llvm::Twine &Msg) {
  Diagnostic D;
  D.Sev = Sev;
  D.PassArgument = PassArg.str();
  D.Message = Msg.str();
  D.Subject = Key.str();
  if (T)
    D.Origin = T->provenance();
  return D;
}

void Pass::remark(StringRef Key, const TensorValue *T, const llvm::Twine &Msg) {
  if (Handler)
    Handler(
        makeDiagnostic(Diagnostic::Severity::Remark, argument(), Key, T, Msg));
}

void Pass::warning(StringRef Key, const TensorValue *T,
                   const llvm::Twine &Msg) {
  if (Handler)
    Handler(
        makeDiagnostic(Diagnostic::Severity::Warning, argument(), Key, T, Msg));
}

void Pass::recordRemoved(Checkpoint &C, StringRef Key, const ValuePtr &V,
                         const llvm::Twine &Reason, const llvm::Twine &Keep) {
  C.Removed.push_back(
      {Key.str(), argument().str(), Reason.str(), Keep.str(), V});
}

void Pass::matchedNothing(const llvm::Twine &Msg) {
  if (PipelineName.empty())
    warning("", nullptr, Msg);
  else
    remark("", nullptr, Msg);
}

/// "'a', 'b', 'c' and 4 more" — enough of the root to see what it holds.
static std::string describeKeys(const DictValue &D) {
  constexpr size_t MaxShown = 8;
  std::string S;
  llvm::raw_string_ostream OS(S);
  size_t Shown = 0;
  for (const DictEntry &E : D.entries()) {
    if (Shown == MaxShown)
      break;
    OS << (Shown ? ", " : "");
    if (std::optional<StringRef> K = E.keyString())
      OS << "'" << *K << "'";
    else
      OS << "<non-string key>";
    ++Shown;
  }
  if (D.size() > Shown)
    OS << " and " << D.size() - Shown << " more";
  return S;
}

Error Pass::needsStateDict(const Checkpoint &C) const {
  std::string Msg;
  llvm::raw_string_ostream OS(Msg);
  OS << "pass '" << argument()
     << "' needs a state dict at the root; run unwrap first\nnote: ";
  const Value *Root = C.root().get();
  if (!Root)
    OS << "the checkpoint is empty";
  else if (const auto *D = llvm::dyn_cast<DictValue>(Root))
    OS << (D->size() ? "the root is a dict with keys " + describeKeys(*D)
                     : std::string("the root is an empty dict"));
  else
    OS << "the root is " << describeKind(*Root);
  return llvm::createStringError(OS.str());
}

Error Pass::error(const llvm::Twine &Msg) const {
  return llvm::createStringError(("pass '" + argument() + "': " + Msg).str());
}
