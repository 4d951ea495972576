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
#include <atomic>

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
  Pipelines.push_back(std::move(Info));
}

void PassRegistry::registerPipelineFile(StringRef Name, StringRef Contents,
                                        StringRef FileName) {
  registerPipeline({Name.str(), Contents.str(), pipelineFileSummary(Contents),
                    FileName.str()});
}

std::string wopt::pipelineFileSummary(StringRef Contents) {
  std::string Summary;
  while (!Contents.empty()) {
    StringRef Line;
    std::tie(Line, Contents) = Contents.split('\n');
    Line = Line.trim();
    if (!Line.consume_front("//"))
      break;
    Line = Line.trim();
    if (Line.empty()) {
      if (!Summary.empty())
        break;
      continue;
    }
    Summary += (Summary.empty() ? "" : " ") + Line.str();
  }
  return Summary;
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

std::string PassRegistry::suggest(StringRef Name, bool PassesOnly) const {
  std::vector<StringRef> Names;
  if (!PassesOnly)
    for (const PipelineInfo &P : Pipelines)
      Names.push_back(P.Name);
  for (const PassInfo &P : Passes)
    Names.push_back(P.Argument);
  StringRef Best = closestMatch(Name, Names);
  return Best.empty() ? "" : ("did you mean '" + Best + "'?").str();
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

/// Text with every `//` comment replaced by blanks (new lines stay), so
/// positions in it are positions in the file. A comment starts at the
/// start of a line or after a blank, outside quotes: `a//b` in a value is
/// not one.
std::string blankComments(StringRef Text) {
  std::string Out = Text.str();
  char Quote = 0;
  for (size_t I = 0; I < Out.size(); ++I) {
    char C = Out[I];
    if (C == '\n') {
      Quote = 0; // a quote never spans lines
    } else if (Quote) {
      if (C == Quote)
        Quote = 0;
    } else if (C == '\'' || C == '"') {
      Quote = C;
    } else if (C == '/' && I + 1 < Out.size() && Out[I + 1] == '/' &&
               (I == 0 || llvm::isSpace(Out[I - 1]))) {
      while (I < Out.size() && Out[I] != '\n')
        Out[I++] = ' ';
      --I;
    }
  }
  return Out;
}

class PipelineParser {
public:
  /// With a FileName, Text is the contents of a .wpipe file.
  PipelineParser(const PassRegistry &R, StringRef Text, unsigned Depth,
                 StringRef FileName = "")
      : R(R), Original(Text), Depth(Depth), FileName(FileName),
        Blanked(FileName.empty() ? std::string() : blankComments(Text)),
        Text(FileName.empty() ? Text : StringRef(Blanked)) {}

  Expected<PassList> parse();

private:
  bool isFile() const { return !FileName.empty(); }
  Error fail(size_t Pos, const Twine &Msg, const Twine &Note = "") const;
  void skipBlanks(size_t &Pos) const;
  /// Between elements: true when a separator (a comma, or in a file a new
  /// line) or the end follows; Pos is then at the next element.
  Expected<bool> skipSeparator(size_t &Pos) const;
  Expected<std::vector<ParsedElement>> parseElements() const;
  Error parseOptions(size_t &Pos, ParsedElement &E) const;
  Error addPass(const PassInfo &Info, const ParsedElement &E,
                PassList &Out) const;
  Error addPipeline(const PipelineInfo &Info, const ParsedElement &E,
                    PassList &Out) const;
  std::string suggest(StringRef Name) const;

  const PassRegistry &R;
  StringRef Original;
  unsigned Depth;
  StringRef FileName;
  std::string Blanked;
  /// What is parsed: Original, or in a file Original without comments.
  StringRef Text;
};

} // namespace

static bool isNameChar(char C) {
  return llvm::isAlnum(C) || C == '-' || C == '_' || C == '.';
}

Error PipelineParser::fail(size_t Pos, const Twine &Msg,
                           const Twine &Note) const {
  std::string Where;
  StringRef Line = Original;
  if (isFile()) {
    // Only the offending line of the file, as the user wrote it.
    size_t Start = Original.rfind('\n', Pos); // a '\n' before Pos
    Start = Start == StringRef::npos ? 0 : Start + 1;
    size_t End = Original.find('\n', Start);
    Line = Original.slice(Start, End);
    unsigned LineNo = 1 + Original.take_front(Start).count('\n');
    Where =
        (FileName + ":" + Twine(LineNo) + ":" + Twine(Pos - Start + 1) + ": ")
            .str();
    Pos -= Start;
  }
  // Newlines and tabs would break the caret's alignment.
  std::string Shown = Line.str();
  for (char &C : Shown)
    if (C == '\n' || C == '\t' || C == '\r')
      C = ' ';
  std::string S =
      Where + Msg.str() + "\n" + Shown + "\n" + std::string(Pos, ' ') + "^";
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

Expected<bool> PipelineParser::skipSeparator(size_t &Pos) const {
  if (!isFile()) {
    skipBlanks(Pos);
    if (Pos >= Text.size())
      return false;
    if (Text[Pos] != ',')
      return fail(Pos, "expected ',' or the end of the pipeline, got '" +
                           Text.substr(Pos, 1) + "'");
    ++Pos;
    return true;
  }
  while (Pos < Text.size() &&
         (Text[Pos] == ' ' || Text[Pos] == '\t' || Text[Pos] == '\r'))
    ++Pos;
  if (Pos >= Text.size())
    return false;
  if (Text[Pos] != ',' && Text[Pos] != '\n')
    return fail(Pos,
                "expected a new line or ',' after a pass, got '" +
                    Text.substr(Pos, 1) + "'",
                "a .wpipe file has one pass per line");
  bool Comma = Text[Pos++] == ',';
  skipBlanks(Pos);
  // A file may end after its last pass's new line, not after a comma.
  return Comma || Pos < Text.size();
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
    // In a file the options open on the pass's line; a '{' on the next
    // line would start nothing.
    if (isFile())
      while (Pos < Text.size() && (Text[Pos] == ' ' || Text[Pos] == '\t'))
        ++Pos;
    else
      skipBlanks(Pos);
    if (Pos < Text.size() && Text[Pos] == '{')
      if (Error Err = parseOptions(Pos, E))
        return Err;
    Elements.push_back(std::move(E));
    Expected<bool> More = skipSeparator(Pos);
    if (!More)
      return More.takeError();
    if (!*More)
      return Elements;
  }
}

std::string PipelineParser::suggest(StringRef Name) const {
  return R.suggest(Name);
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
  for (const OptionBase *O : P->options())
    if (O->isRequired() && !O->wasSet())
      return fail(E.NamePos,
                  "pass '" + E.Name + "' needs option '" + O->name() + "' (" +
                      O->typeName() + ")",
                  (E.Name + "{" + O->name() + "=...}: " + O->help()).str());
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

  Expected<PassList> Inner =
      PipelineParser(R, Info.Text, Depth + 1, Info.FileName).parse();
  if (!Inner)
    return llvm::createStringError("in pipeline '" + E.Name +
                                   "': " + llvm::toString(Inner.takeError()));
  // Uses are numbered across parses, so that two uses of one pipeline
  // never merge when a pass manager is filled from several texts.
  static std::atomic<unsigned> Uses{0};
  unsigned Use = ++Uses;
  for (std::unique_ptr<Pass> &P : *Inner) {
    if (P->pipelineName().empty())
      P->setPipelineName(E.Name);
    P->setTopPipeline(E.Name, Use); // the outermost use wins
    Out.push_back(std::move(P));
  }
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

static Error addAll(Expected<PassList> Passes, PassManager &PM) {
  // Nothing is added unless the whole text parses.
  if (!Passes)
    return Passes.takeError();
  for (std::unique_ptr<Pass> &P : *Passes)
    PM.addPass(std::move(P));
  return Error::success();
}

Error PassRegistry::parsePipeline(StringRef Text, PassManager &PM) const {
  return addAll(PipelineParser(*this, Text, 0).parse(), PM);
}

Error PassRegistry::parsePipelineFile(StringRef Contents, StringRef FileName,
                                      PassManager &PM) const {
  assert(!FileName.empty() && "a pipeline file needs a name for messages");
  return addAll(PipelineParser(*this, Contents, 0, FileName).parse(), PM);
}
