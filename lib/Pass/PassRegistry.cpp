//===- PassRegistry.cpp - Passes, named pipelines, pipeline text ---------===//
//
// The pipeline grammar (MLIR's, without nesting):
//
//   pipeline := element (',' element)*
//   element  := name ('{' option* '}')?
//   option   := key ('=' value)?
//   value    := bare text up to a blank or the closing '}', where quotes
//               ('..', "..") and brackets ((), [], {}) may enclose blanks,
//               commas and braces
//
// Errors quote the text with a caret under the offending character, because
// pipelines are typed on command lines where a position is all a user needs.
//
//===----------------------------------------------------------------------===//
#include "wopt/Pass/PassRegistry.h"
#include "OptionText.h"
#include "wopt/Pass/PassManager.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace wopt;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

void PassRegistry::registerPass(PassInfo Info) {
  assert(!lookupPass(Info.Argument) && "pass registered twice");
  Passes.push_back(std::move(Info));
}

void PassRegistry::registerPipeline(PipelineInfo Info) {
  assert(!lookupPipeline(Info.Name) && "pipeline registered twice");
  Pipelines.push_back(Info);
}

const PassInfo *PassRegistry::lookupPass(StringRef Arg) const {
  for (const PassInfo &I : Passes)
    if (I.Argument == Arg)
      return &I;
  return nullptr;
}

const PipelineInfo *PassRegistry::lookupPipeline(StringRef Name) const {
  for (const PipelineInfo &I : Pipelines)
    if (I.Name == Name)
      return &I;
  return nullptr;
}

PassRegistry &wopt::getGlobalPassRegistry() {
  // A function-local static: built on first use, not at load time.
  static PassRegistry Registry;
  return Registry;
}

namespace {

/// The options a named pipeline forwards to verify-against-manifest.
constexpr StringRef ForwardedOptions[] = {"manifest", "allow-missing",
                                          "allow-unexpected",
                                          "prune-unexpected", "report"};
constexpr StringRef VerifyPassName = "verify-against-manifest";
constexpr unsigned MaxPipelineDepth = 8;

struct ParsedOption {
  StringRef Key, Value;
  size_t KeyPos = 0, ValuePos = 0;
  bool HasValue = false;
};

struct ParsedElement {
  StringRef Name;
  size_t NamePos = 0;
  std::vector<ParsedOption> Options;
};

using PassList = std::vector<std::unique_ptr<Pass>>;

class PipelineParser {
public:
  PipelineParser(const PassRegistry &R, StringRef Text, unsigned Depth)
      : R(R), Text(Text), Depth(Depth) {}

  Expected<PassList> parse();

private:
  Error fail(size_t Pos, const Twine &Msg, const Twine &Note = "") const;
  void skipBlanks(size_t &Pos) const;
  Expected<std::vector<ParsedElement>> parseElements() const;
  Error parseOptions(size_t &Pos, ParsedElement &E) const;
  Error addPass(const PassInfo &Info, const ParsedElement &E,
                PassList &Out) const;
  Error addPipeline(const PipelineInfo &Info, const ParsedElement &E,
                    PassList &Out) const;
  std::string suggest(StringRef Name) const;

  const PassRegistry &R;
  StringRef Text;
  unsigned Depth;
};

} // namespace

static bool isNameChar(char C) {
  return llvm::isAlnum(C) || C == '-' || C == '_' || C == '.';
}

Error PipelineParser::fail(size_t Pos, const Twine &Msg,
                           const Twine &Note) const {
  // Newlines and tabs would break the caret's alignment.
  std::string Shown = Text.str();
  for (char &C : Shown)
    if (C == '\n' || C == '\t' || C == '\r')
      C = ' ';
  std::string S = Msg.str() + "\n" + Shown + "\n" + std::string(Pos, ' ') + "^";
  std::string N = Note.str();
  if (!N.empty())
    S += "\nnote: " + N;
  return llvm::createStringError(S);
}

void PipelineParser::skipBlanks(size_t &Pos) const {
  while (Pos < Text.size() && llvm::isSpace(Text[Pos]))
    ++Pos;
}

/// The position of a quote in V that never closes, or npos.
static size_t findUnclosedQuote(StringRef V) {
  for (size_t I = 0; I < V.size(); ++I) {
    if (V[I] != '\'' && V[I] != '"')
      continue;
    size_t Close = V.find(V[I], I + 1);
    if (Close == StringRef::npos)
      return I;
    I = Close;
  }
  return StringRef::npos;
}

/// The position of the first bracket in V that is never closed, or npos.
static size_t findUnclosedBracket(StringRef V) {
  std::vector<size_t> Open;
  for (size_t I = 0; I < V.size(); ++I) {
    char C = V[I];
    if (C == '\'' || C == '"') {
      size_t Close = V.find(C, I + 1);
      I = Close == StringRef::npos ? V.size() : Close;
    } else if (C == '(' || C == '[' || C == '{') {
      Open.push_back(I);
    } else if (C == ')' || C == ']' || C == '}') {
      // findValueEnd lets any closer end any opener; here only its own does,
      // so `a(b}` shows the '(' as the culprit.
      char Want = C == ')' ? '(' : C == ']' ? '[' : '{';
      if (!Open.empty() && V[Open.back()] == Want)
        Open.pop_back();
    }
  }
  return Open.empty() ? StringRef::npos : Open.front();
}

Error PipelineParser::parseOptions(size_t &Pos, ParsedElement &E) const {
  size_t BracePos = Pos++;
  while (true) {
    skipBlanks(Pos);
    if (Pos >= Text.size())
      return fail(BracePos,
                  "missing '}' to close the options of '" + E.Name + "'");
    if (Text[Pos] == '}') {
      ++Pos;
      return Error::success();
    }
    ParsedOption O;
    O.KeyPos = Pos;
    while (Pos < Text.size() && isNameChar(Text[Pos]))
      ++Pos;
    O.Key = Text.slice(O.KeyPos, Pos);
    if (O.Key.empty())
      return fail(Pos,
                  "expected an option name, got '" + Text.substr(Pos, 1) + "'");
    if (Pos < Text.size() && Text[Pos] == '=') {
      O.HasValue = true;
      O.ValuePos = ++Pos;
      Pos = findValueEnd(Text, Pos, /*StopAtComma=*/false);
      O.Value = Text.slice(O.ValuePos, Pos);
      size_t Q = findUnclosedQuote(O.Value);
      if (Q != StringRef::npos)
        return fail(O.ValuePos + Q,
                    "unterminated quote in the value of '" + O.Key + "'");
      // A value that ran to the end swallowed the closing brace: blame the
      // bracket that opened and never closed, not the missing '}'.
      size_t B = findUnclosedBracket(O.Value);
      if (Pos == Text.size() && B != StringRef::npos)
        return fail(O.ValuePos + B,
                    "unclosed '" + O.Value.substr(B, 1) +
                        "' in the value of '" + O.Key + "'",
                    "quote the value ('..' or \"..\") when the bracket is "
                    "meant literally");
    } else if (Pos < Text.size() && !llvm::isSpace(Text[Pos]) &&
               Text[Pos] != '}') {
      return fail(Pos, "expected '=' after option name '" + O.Key + "'");
    }
    E.Options.push_back(O);
  }
}

Expected<std::vector<ParsedElement>> PipelineParser::parseElements() const {
  std::vector<ParsedElement> Elements;
  if (Text.trim().empty())
    return Elements;
  size_t Pos = 0;
  while (true) {
    skipBlanks(Pos);
    if (Pos >= Text.size() || Text[Pos] == ',')
      return fail(Pos, "empty pipeline element");
    ParsedElement E;
    E.NamePos = Pos;
    while (Pos < Text.size() && isNameChar(Text[Pos]))
      ++Pos;
    E.Name = Text.slice(E.NamePos, Pos);
    if (E.Name.empty())
      return fail(Pos, "expected a pass or pipeline name, got '" +
                           Text.substr(Pos, 1) + "'");
    skipBlanks(Pos);
    if (Pos < Text.size() && Text[Pos] == '{')
      if (Error Err = parseOptions(Pos, E))
        return Err;
    Elements.push_back(std::move(E));
    skipBlanks(Pos);
    if (Pos >= Text.size())
      return Elements;
    if (Text[Pos] != ',')
      return fail(Pos, "expected ',' or the end of the pipeline, got '" +
                           Text.substr(Pos, 1) + "'");
    ++Pos;
  }
}

std::string PipelineParser::suggest(StringRef Name) const {
  StringRef Best;
  unsigned BestDist = 3; // more edits than that is not a typo
  auto Consider = [&](StringRef Cand) {
    unsigned D = Name.edit_distance(Cand, true, BestDist);
    if (D < BestDist) {
      BestDist = D;
      Best = Cand;
    }
  };
  for (const PipelineInfo &P : R.pipelines())
    Consider(P.Name);
  for (const PassInfo &P : R.passes())
    Consider(P.Argument);
  return Best.empty() ? "" : ("did you mean '" + Best + "'?").str();
}

/// "a (string), b (list)" for the note of an unknown-option error.
static std::string listOptions(const Pass &P) {
  std::string S;
  for (const OptionBase *O : P.options()) {
    if (!S.empty())
      S += ", ";
    S += (O->name() + " (" + O->typeName() + ")").str();
  }
  return S;
}

Error PipelineParser::addPass(const PassInfo &Info, const ParsedElement &E,
                              PassList &Out) const {
  std::unique_ptr<Pass> P = Info.Factory(Info);
  for (const ParsedOption &O : E.Options) {
    auto It = llvm::find_if(
        P->options(), [&](const OptionBase *B) { return B->name() == O.Key; });
    bool Known = It != P->options().end();
    // A list takes more items from a repeat; any other option would lose
    // its first value without a word.
    if (Known && (*It)->typeName() != "list" &&
        llvm::any_of(llvm::make_range(E.Options.data(), &O),
                     [&](const ParsedOption &B) { return B.Key == O.Key; }))
      return fail(O.KeyPos, "option '" + O.Key + "' of pass '" + E.Name +
                                "' is given twice");
    if (!Known) {
      std::string Opts = listOptions(*P);
      return fail(O.KeyPos,
                  "unknown option '" + O.Key + "' for pass '" + E.Name + "'",
                  Opts.empty() ? "pass '" + E.Name + "' takes no options"
                               : "pass '" + E.Name + "' takes " + Opts);
    }
    if (Error Err = P->setOption(O.Key, O.Value))
      return fail(O.HasValue ? O.ValuePos : O.KeyPos,
                  "bad value for option '" + O.Key + "' of pass '" + E.Name +
                      "': " + llvm::toString(std::move(Err)));
  }
  Out.push_back(std::move(P));
  return Error::success();
}

Error PipelineParser::addPipeline(const PipelineInfo &Info,
                                  const ParsedElement &E, PassList &Out) const {
  const ParsedOption *FirstForwarded = nullptr;
  for (const ParsedOption &O : E.Options) {
    if (!llvm::is_contained(ForwardedOptions, O.Key))
      return fail(O.KeyPos,
                  "unknown option '" + O.Key + "' for pipeline '" + E.Name +
                      "'",
                  "a pipeline takes manifest=, allow-missing=, "
                  "allow-unexpected=, prune-unexpected= and report=, which "
                  "it forwards to verify-against-manifest");
    if (!FirstForwarded)
      FirstForwarded = &O;
  }
  if (Depth >= MaxPipelineDepth)
    return fail(E.NamePos, "pipeline '" + E.Name +
                               "' nests too deeply; does it name itself?");

  Expected<PassList> Inner = PipelineParser(R, Info.Text, Depth + 1).parse();
  if (!Inner)
    return llvm::createStringError("in pipeline '" + E.Name +
                                   "': " + llvm::toString(Inner.takeError()));
  for (std::unique_ptr<Pass> &P : *Inner)
    Out.push_back(std::move(P));
  if (!FirstForwarded)
    return Error::success();

  const PassInfo *Verify = R.lookupPass(VerifyPassName);
  if (!Verify)
    return fail(FirstForwarded->KeyPos,
                "option '" + FirstForwarded->Key + "' of pipeline '" + E.Name +
                    "' needs the " + VerifyPassName +
                    " pass, which this build does not register");
  ParsedElement Forward = E;
  Forward.Name = VerifyPassName;
  return addPass(*Verify, Forward, Out);
}

Expected<PassList> PipelineParser::parse() {
  Expected<std::vector<ParsedElement>> Elements = parseElements();
  if (!Elements)
    return Elements.takeError();
  PassList Out;
  for (const ParsedElement &E : *Elements) {
    if (const PipelineInfo *PI = R.lookupPipeline(E.Name)) {
      if (Error Err = addPipeline(*PI, E, Out))
        return Err;
    } else if (const PassInfo *PI = R.lookupPass(E.Name)) {
      if (Error Err = addPass(*PI, E, Out))
        return Err;
    } else {
      return fail(E.NamePos, "unknown pass or pipeline '" + E.Name + "'",
                  suggest(E.Name));
    }
  }
  return Out;
}

Error PassRegistry::parsePipeline(StringRef Text, PassManager &PM) const {
  // Nothing is added unless the whole text parses.
  Expected<PassList> Passes = PipelineParser(*this, Text, 0).parse();
  if (!Passes)
    return Passes.takeError();
  for (std::unique_ptr<Pass> &P : *Passes)
    PM.addPass(std::move(P));
  return Error::success();
}
