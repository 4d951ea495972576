//===- TextParser.cpp - Reads the .wir text form --------------------------===//
//
// A hand-written lexer and recursive-descent parser. Every error stops the
// parse and points a caret at the offending token through llvm::SourceMgr,
// so messages look like the compiler diagnostics they are. docs/IR.md
// describes the grammar; the printer writes its canonical spelling.
//
//===----------------------------------------------------------------------===//

#include "TextIRInternal.h"
#include "wopt/IR/FloatBits.h"
#include "wopt/IR/TextIR.h"
#include "llvm/ADT/APInt.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/SourceMgr.h"
#include <cmath>
#include <cstdlib>

using namespace wopt;
using namespace llvm;

//===----------------------------------------------------------------------===//
// Lexer
//===----------------------------------------------------------------------===//

namespace {

struct Token {
  enum Kind {
    Eof,
    Error,
    Ident,      ///< keywords, dtype names, nan/inf/-nan/-inf
    StorageRef, ///< %name
    ValueName,  ///< @N: a node that is referenced more than once
    String,     ///< "..." (Text includes the quotes)
    Bytes,      ///< b"..."
    Hex,        ///< x"..."
    Integer,
    Float,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Colon,
    Equal,
  };
  Kind K = Eof;
  StringRef Text;
  SMLoc loc() const { return SMLoc::getFromPointer(Text.data()); }
  bool is(Kind Other) const { return K == Other; }
  bool isKeyword(StringRef W) const { return K == Ident && Text == W; }
};

class Lexer {
public:
  explicit Lexer(StringRef Buffer) : Buf(Buffer), Pos(Buffer.begin()) {}
  Token lex();
  const char *position() const { return Pos; }
  void reset(const char *P) { Pos = P; }

private:
  Token make(Token::Kind K, const char *Start) {
    return Token{K, StringRef(Start, Pos - Start)};
  }
  void skipBlanksAndComments();
  Token lexNumber(const char *Start);
  Token lexQuoted(Token::Kind K, const char *Start);

  StringRef Buf;
  const char *Pos;
};

} // namespace

static bool isIdentStart(char C) { return isAlpha(C) || C == '_'; }
static bool isIdentChar(char C) { return isAlnum(C) || C == '_'; }

void Lexer::skipBlanksAndComments() {
  while (Pos != Buf.end()) {
    if (isSpace(*Pos)) {
      ++Pos;
    } else if (*Pos == '/' && Pos + 1 != Buf.end() && Pos[1] == '/') {
      while (Pos != Buf.end() && *Pos != '\n')
        ++Pos;
    } else {
      return;
    }
  }
}

Token Lexer::lexNumber(const char *Start) {
  bool IsFloat = false;
  auto Digits = [&] {
    const char *D = Pos;
    while (Pos != Buf.end() && isDigit(*Pos))
      ++Pos;
    return Pos != D;
  };
  if (!Digits())
    return make(Token::Error, Start);
  if (Pos != Buf.end() && *Pos == '.') {
    ++Pos;
    IsFloat = true;
    Digits();
  }
  if (Pos != Buf.end() && (*Pos == 'e' || *Pos == 'E')) {
    ++Pos;
    IsFloat = true;
    if (Pos != Buf.end() && (*Pos == '+' || *Pos == '-'))
      ++Pos;
    if (!Digits())
      return make(Token::Error, Start);
  }
  // "12abc" is one bad token, not a number followed by a word.
  if (Pos != Buf.end() && isIdentChar(*Pos))
    return make(Token::Error, Start);
  return make(IsFloat ? Token::Float : Token::Integer, Start);
}

Token Lexer::lexQuoted(Token::Kind K, const char *Start) {
  ++Pos; // opening quote
  while (Pos != Buf.end() && *Pos != '"' && *Pos != '\n') {
    if (*Pos == '\\' && Pos + 1 != Buf.end() && Pos[1] != '\n')
      ++Pos;
    ++Pos;
  }
  if (Pos == Buf.end() || *Pos != '"')
    return make(Token::Error, Start);
  ++Pos;
  return make(K, Start);
}

Token Lexer::lex() {
  skipBlanksAndComments();
  const char *Start = Pos;
  if (Pos == Buf.end())
    return make(Token::Eof, Start);
  char C = *Pos;
  auto Single = [&](Token::Kind K) {
    ++Pos;
    return make(K, Start);
  };
  switch (C) {
  case '{':
    return Single(Token::LBrace);
  case '}':
    return Single(Token::RBrace);
  case '[':
    return Single(Token::LBracket);
  case ']':
    return Single(Token::RBracket);
  case '(':
    return Single(Token::LParen);
  case ')':
    return Single(Token::RParen);
  case ',':
    return Single(Token::Comma);
  case ':':
    return Single(Token::Colon);
  case '=':
    return Single(Token::Equal);
  case '"':
    return lexQuoted(Token::String, Start);
  case '%':
    ++Pos;
    while (Pos != Buf.end() && (isIdentChar(*Pos) || *Pos == '.'))
      ++Pos;
    return make(Pos - Start > 1 ? Token::StorageRef : Token::Error, Start);
  case '@':
    ++Pos;
    while (Pos != Buf.end() && isIdentChar(*Pos))
      ++Pos;
    return make(Pos - Start > 1 ? Token::ValueName : Token::Error, Start);
  default:
    break;
  }
  if ((C == 'b' || C == 'x') && Pos + 1 != Buf.end() && Pos[1] == '"') {
    ++Pos;
    return lexQuoted(C == 'b' ? Token::Bytes : Token::Hex, Start);
  }
  if (isIdentStart(C) ||
      (C == '-' && Pos + 1 != Buf.end() && isIdentStart(Pos[1]))) {
    ++Pos;
    while (Pos != Buf.end() && isIdentChar(*Pos))
      ++Pos;
    return make(Token::Ident, Start);
  }
  if (C == '-') {
    ++Pos;
    return lexNumber(Start);
  }
  if (isDigit(C))
    return lexNumber(Start);
  ++Pos;
  return make(Token::Error, Start);
}

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

namespace {

/// A storage declared with `storage %name ...`.
struct StorageDecl {
  StorageRef S;
  SMLoc Loc;
};

class Parser {
public:
  Parser(SourceMgr &SM, StringRef Buffer) : SM(SM), Lex(Buffer) { consume(); }

  Expected<std::unique_ptr<Checkpoint>> parseFile();

private:
  // Token handling.
  void consume() { Tok = Lex.lex(); }
  Token peek() {
    const char *Save = Lex.position();
    Token Next = Lex.lex();
    Lex.reset(Save);
    return Next;
  }
  Error error(SMLoc Loc, const Twine &Msg);
  Error error(const Twine &Msg) { return error(Tok.loc(), Msg); }
  Error expect(Token::Kind K, StringRef What);
  Error expectKeyword(StringRef W);
  bool consumeIf(Token::Kind K) {
    if (!Tok.is(K))
      return false;
    consume();
    return true;
  }
  bool consumeKeyword(StringRef W) {
    if (!Tok.isKeyword(W))
      return false;
    consume();
    return true;
  }

  // Literals.
  Expected<std::string> parseString();
  Expected<std::string> decodeQuoted(const Token &T);
  Expected<std::vector<uint8_t>> parseHex();
  Expected<int64_t> parseInt64();
  Expected<int64_t> parseNonNegative(StringRef What);
  Expected<ValuePtr> parseIntegerValue();

  // Top level.
  Error parseStorageDecl();
  Error parseHeader(Checkpoint &C);

  // Values.
  Expected<ValuePtr> parseValue();
  Expected<ValuePtr> parseUnnamedValue();
  Expected<ValuePtr> parseNamedValue();
  Expected<ValuePtr> parseStorageValue();
  Error resolveForwardReferences(Value &Root);
  Expected<ValuePtr> parseSequence(Value::Kind K, Token::Kind Close);
  Expected<ValuePtr> parseDict(bool Ordered);
  Error parseEntries(std::vector<DictEntry> &Entries);
  Expected<ValuePtr> parseTensor();
  Expected<ValuePtr> parseOpaque();
  Error parseProvenance(Provenance &P);
  Error parseStep(Provenance::Step &S);

  // Tensor data.
  Expected<std::vector<uint8_t>> parseData(DType T, uint64_t NumBytes);
  Error parseElement(DType T, std::vector<uint8_t> &Out);

  SourceMgr &SM;
  Lexer Lex;
  Token Tok;
  StringMap<StorageDecl> Storages;
  /// @names: defined nodes, names whose definition is being parsed (a
  /// reference to one is a cycle), and the stand-ins such references got
  /// until the definition is complete.
  StringMap<ValuePtr> Defined;
  StringSet<> Defining;
  StringMap<ValuePtr> ForwardRefs;
  DenseMap<const Value *, StringRef> ForwardName;
  unsigned Depth = 0;
};

} // namespace

Error Parser::error(SMLoc Loc, const Twine &Msg) {
  std::string Text;
  raw_string_ostream OS(Text);
  SM.PrintMessage(OS, Loc, SourceMgr::DK_Error, Msg);
  StringRef Trimmed = StringRef(Text).rtrim('\n');
  return createStringError(inconvertibleErrorCode(), Trimmed);
}

static StringRef describe(const Token &T) {
  switch (T.K) {
  case Token::Eof:
    return "end of file";
  case Token::Error:
    return "invalid token";
  default:
    return T.Text;
  }
}

Error Parser::expect(Token::Kind K, StringRef What) {
  if (!Tok.is(K))
    return error("expected " + What + ", found '" + describe(Tok) + "'");
  consume();
  return Error::success();
}

Error Parser::expectKeyword(StringRef W) {
  if (!Tok.isKeyword(W))
    return error("expected '" + W + "', found '" + describe(Tok) + "'");
  consume();
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Literals
//===----------------------------------------------------------------------===//

/// Decodes the escapes of a "..." or b"..." token.
Expected<std::string> Parser::decodeQuoted(const Token &T) {
  StringRef Body = T.Text.drop_front(T.is(Token::String) ? 1 : 2).drop_back();
  std::string Out;
  Out.reserve(Body.size());
  for (size_t I = 0; I < Body.size(); ++I) {
    char C = Body[I];
    if (C != '\\') {
      Out += C;
      continue;
    }
    SMLoc EscLoc = SMLoc::getFromPointer(Body.data() + I);
    char E = Body[++I]; // the lexer guarantees a character follows
    switch (E) {
    case 'n':
      Out += '\n';
      break;
    case 't':
      Out += '\t';
      break;
    case 'r':
      Out += '\r';
      break;
    case '0':
      Out += '\0';
      break;
    case '\\':
    case '"':
    case '\'':
      Out += E;
      break;
    case 'x': {
      if (I + 2 >= Body.size() || !isHexDigit(Body[I + 1]) ||
          !isHexDigit(Body[I + 2]))
        return error(EscLoc, "\\x must be followed by two hex digits");
      Out +=
          (char)(hexDigitValue(Body[I + 1]) * 16 + hexDigitValue(Body[I + 2]));
      I += 2;
      break;
    }
    default:
      return error(EscLoc, Twine("unknown escape '\\") + StringRef(&E, 1) +
                               "' in string");
    }
  }
  return Out;
}

Expected<std::string> Parser::parseString() {
  if (!Tok.is(Token::String))
    return error("expected a string, found '" + describe(Tok) + "'");
  Token T = Tok;
  consume();
  return decodeQuoted(T);
}

Expected<std::vector<uint8_t>> Parser::parseHex() {
  Token T = Tok;
  consume();
  StringRef Body = T.Text.drop_front(2).drop_back();
  std::vector<uint8_t> Out;
  if (Body.size() % 2)
    return error(T.loc(), "hex data must have an even number of digits");
  for (size_t I = 0; I < Body.size(); I += 2) {
    if (!isHexDigit(Body[I]) || !isHexDigit(Body[I + 1]))
      return error(SMLoc::getFromPointer(Body.data() + I),
                   "invalid hex digit in hex data");
    Out.push_back(hexDigitValue(Body[I]) * 16 + hexDigitValue(Body[I + 1]));
  }
  return Out;
}

Expected<int64_t> Parser::parseInt64() {
  int64_t V;
  if (!Tok.is(Token::Integer))
    return error("expected an integer, found '" + describe(Tok) + "'");
  if (Tok.Text.getAsInteger(10, V))
    return error("integer does not fit in 64 bits");
  consume();
  return V;
}

Expected<int64_t> Parser::parseNonNegative(StringRef What) {
  SMLoc Loc = Tok.loc();
  Expected<int64_t> V = parseInt64();
  if (V && *V < 0)
    return error(Loc, What + " must not be negative");
  return V;
}

/// An integer literal: Int when it fits in 64 bits, BigInt otherwise.
Expected<ValuePtr> Parser::parseIntegerValue() {
  StringRef Text = Tok.Text;
  consume();
  int64_t V;
  if (!Text.getAsInteger(10, V))
    return makeInt(V);
  std::optional<std::string> Bytes = longBytesFromDecimal(Text);
  if (!Bytes)
    return error("integer literal of more than 10000 digits");
  return std::make_shared<BigIntValue>(std::move(*Bytes));
}

//===----------------------------------------------------------------------===//
// Values
//===----------------------------------------------------------------------===//

static std::optional<double> nonFiniteKeyword(StringRef W) {
  if (W == "nan")
    return std::numeric_limits<double>::quiet_NaN();
  if (W == "-nan")
    return -std::numeric_limits<double>::quiet_NaN();
  if (W == "inf")
    return HUGE_VAL;
  if (W == "-inf")
    return -HUGE_VAL;
  return std::nullopt;
}

Expected<ValuePtr> Parser::parseValue() {
  // Recursion is bounded like every walk over the graph it builds.
  if (Depth >= MaxGraphDepth)
    return error("values nested deeper than " + Twine(MaxGraphDepth) +
                 " (limit)");
  ++Depth;
  auto Restore = make_scope_exit([&] { --Depth; });
  if (Tok.is(Token::ValueName))
    return parseNamedValue();
  return parseUnnamedValue();
}

/// `@N = value` defines a node that is referenced again as `@N`; inside its
/// own definition, `@N` is a cycle.
Expected<ValuePtr> Parser::parseNamedValue() {
  Token NameTok = Tok;
  StringRef Name = Tok.Text.drop_front();
  consume();
  if (!consumeIf(Token::Equal)) {
    if (auto It = Defined.find(Name); It != Defined.end())
      return It->second;
    if (!Defining.count(Name))
      return error(NameTok.loc(), "use of undefined value '" + NameTok.Text +
                                      "' (a value is defined as '" +
                                      NameTok.Text +
                                      " = ...' before it is "
                                      "used)");
    ValuePtr &Ref = ForwardRefs[Name];
    if (!Ref) {
      Ref = makeNone();
      ForwardName[Ref.get()] = ForwardRefs.find(Name)->first();
    }
    return Ref;
  }
  if (Defined.count(Name) || !Defining.insert(Name).second)
    return error(NameTok.loc(),
                 "value '" + NameTok.Text + "' is already defined");
  SMLoc Loc = Tok.loc();
  Expected<ValuePtr> V = parseUnnamedValue();
  if (!V)
    return V.takeError();
  if (!(*V)->hasIdentity())
    return error(Loc, "only containers, tensors, storages and objects have "
                      "an identity to name; write this value in place");
  Defining.erase(Name);
  Defined[Name] = *V;
  return V;
}

/// Replaces every stand-in for a reference inside its own definition with
/// the node it named: the edges that close cycles.
Error Parser::resolveForwardReferences(Value &Root) {
  if (ForwardRefs.empty())
    return Error::success();
  std::vector<Value *> Nodes;
  forEachNode(Root, [&](const Value &V) {
    Nodes.push_back(const_cast<Value *>(&V));
    return true;
  });
  for (Value *V : Nodes)
    forEachChildSlot(*V, [&](ValuePtr &Slot) {
      auto It = ForwardName.find(Slot.get());
      if (It != ForwardName.end())
        Slot = Defined.lookup(It->second);
    });
  return Error::success();
}

/// `storage %N DTYPE` (a TypedStorage) or `storage %N untyped`.
Expected<ValuePtr> Parser::parseStorageValue() {
  if (!Tok.is(Token::StorageRef))
    return error("expected a storage name like %0 after 'storage'");
  auto It = Storages.find(Tok.Text.drop_front());
  if (It == Storages.end())
    return error("use of undeclared storage '" + Tok.Text + "'");
  StorageRef S = It->second.S;
  consume();
  if (consumeKeyword("untyped"))
    return std::make_shared<StorageValue>(S, DType::UInt8, /*Untyped=*/true);
  std::optional<DType> T =
      Tok.is(Token::Ident) ? parseDTypeName(Tok.Text) : std::nullopt;
  if (!T)
    return error("expected an element type or 'untyped' after the storage, "
                 "found '" +
                 describe(Tok) + "'");
  consume();
  return std::make_shared<StorageValue>(S, *T, /*Untyped=*/false);
}

Expected<ValuePtr> Parser::parseUnnamedValue() {
  switch (Tok.K) {
  case Token::Integer:
    return parseIntegerValue();
  case Token::Float: {
    double D = strtod(Tok.Text.str().c_str(), nullptr);
    consume();
    return makeFloat(D);
  }
  case Token::String: {
    SMLoc Loc = Tok.loc();
    Expected<std::string> S = parseString();
    if (!S)
      return S.takeError();
    if (!isPythonText(*S))
      return error(Loc, "string is not valid UTF-8; write raw bytes as "
                        "b\"...\"");
    return makeStr(*S);
  }
  case Token::Bytes: {
    Token T = Tok;
    consume();
    Expected<std::string> S = decodeQuoted(T);
    if (!S)
      return S.takeError();
    return makeBytes(*S);
  }
  case Token::LBracket:
    consume();
    return parseSequence(Value::Kind::List, Token::RBracket);
  case Token::LParen:
    consume();
    return parseSequence(Value::Kind::Tuple, Token::RParen);
  case Token::LBrace:
    return parseDict(/*Ordered=*/false);
  case Token::Ident:
    break;
  default:
    return error("expected a value, found '" + describe(Tok) + "'");
  }

  StringRef W = Tok.Text;
  if (std::optional<double> D = nonFiniteKeyword(W)) {
    consume();
    return makeFloat(*D);
  }
  if (W == "none" || W == "true" || W == "false") {
    consume();
    return W == "none" ? makeNone() : makeBool(W == "true");
  }
  if (W == "set" || W == "frozenset") {
    consume();
    if (Error E = expect(Token::LBrace, "'{'"))
      return E;
    return parseSequence(W == "set" ? Value::Kind::Set : Value::Kind::FrozenSet,
                         Token::RBrace);
  }
  if (W == "odict") {
    consume();
    return parseDict(/*Ordered=*/true);
  }
  if (W == "bigint") {
    consume();
    if (!Tok.is(Token::Hex))
      return error("expected x\"...\" after 'bigint'");
    Expected<std::vector<uint8_t>> B = parseHex();
    if (!B)
      return B.takeError();
    return std::make_shared<BigIntValue>(std::string(B->begin(), B->end()));
  }
  if (W == "tensor") {
    consume();
    return parseTensor();
  }
  if (W == "opaque") {
    consume();
    return parseOpaque();
  }
  if (W == "storage") {
    consume();
    return parseStorageValue();
  }
  return error("expected a value, found '" + W + "'");
}

/// Elements up to Close; the opening bracket is already consumed. Commas
/// separate elements; a trailing comma is allowed (and makes `(x,)`).
Expected<ValuePtr> Parser::parseSequence(Value::Kind K, Token::Kind Close) {
  std::vector<ValuePtr> Elts;
  SMLoc Open = Tok.loc();
  bool SawComma = false;
  while (!Tok.is(Close)) {
    Expected<ValuePtr> V = parseValue();
    if (!V)
      return V.takeError();
    Elts.push_back(std::move(*V));
    SawComma = Tok.is(Token::Comma);
    if (!consumeIf(Token::Comma) && !Tok.is(Close))
      return error("expected ',' or closing bracket, found '" + describe(Tok) +
                   "'");
  }
  // (x) is not a tuple in Python either; ask for the comma.
  if (K == Value::Kind::Tuple && Elts.size() == 1 && !SawComma)
    return error(Open, "a 1-tuple needs a trailing comma: (x,)");
  consume();
  return std::make_shared<SequenceValue>(K, std::move(Elts));
}

Expected<ValuePtr> Parser::parseDict(bool Ordered) {
  if (Error E = expect(Token::LBrace, "'{'"))
    return E;
  auto D = std::make_shared<DictValue>(Ordered);
  if (Error E = parseEntries(D->entries()))
    return E;
  if (Error E = expect(Token::RBrace, "'}'"))
    return E;
  if (consumeKeyword("attrs")) {
    Expected<ValuePtr> S = parseValue();
    if (!S)
      return S.takeError();
    D->setState(std::move(*S));
  }
  return D;
}

/// Entries up to (not including) '}'. Commas between entries are optional.
Error Parser::parseEntries(std::vector<DictEntry> &Entries) {
  StringSet<> Seen;
  while (!Tok.is(Token::RBrace)) {
    if (Tok.is(Token::Eof))
      return error("expected '}' before end of file");
    SMLoc KeyLoc = Tok.loc();
    DictEntry E;
    // `tensor KEY : type ...` unless `tensor` starts a tensor used as a key.
    bool TensorEntry = false;
    if (Tok.isKeyword("tensor")) {
      Token Next = peek();
      TensorEntry = !(Next.is(Token::Ident) && parseDTypeName(Next.Text));
    }
    if (TensorEntry) {
      consume();
      KeyLoc = Tok.loc();
    }
    Expected<ValuePtr> Key = parseValue();
    if (!Key)
      return Key.takeError();
    E.Key = std::move(*Key);
    if (!Seen.insert(textir::keyIdentity(*E.Key)).second)
      return error(KeyLoc, "duplicate key " + textir::keyIdentity(*E.Key));
    if (Error Err = expect(Token::Colon, "':' after the key"))
      return Err;
    Expected<ValuePtr> Val = TensorEntry ? parseTensor() : parseValue();
    if (!Val)
      return Val.takeError();
    E.Val = std::move(*Val);
    Entries.push_back(std::move(E));
    consumeIf(Token::Comma);
  }
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Tensors
//===----------------------------------------------------------------------===//

/// `dtype[dims] attributes...`, after the `tensor` keyword (and key).
Expected<ValuePtr> Parser::parseTensor() {
  SMLoc TypeLoc = Tok.loc();
  if (!Tok.is(Token::Ident))
    return error("expected an element type, found '" + describe(Tok) + "'");
  std::optional<DType> T = parseDTypeName(Tok.Text);
  if (!T)
    return error("unknown element type '" + Tok.Text + "'");
  consume();
  auto Tensor = std::make_shared<TensorValue>();
  Tensor->setDType(*T);

  auto ParseInts = [&](SmallVectorImpl<int64_t> &Out, StringRef What) -> Error {
    if (Error E = expect(Token::LBracket, "'['"))
      return E;
    while (!Tok.is(Token::RBracket)) {
      Expected<int64_t> V = parseNonNegative(What);
      if (!V)
        return V.takeError();
      Out.push_back(*V);
      if (!consumeIf(Token::Comma) && !Tok.is(Token::RBracket))
        return error("expected ',' or ']', found '" + describe(Tok) + "'");
    }
    consume();
    return Error::success();
  };

  SmallVector<int64_t, 4> Shape, Strides;
  if (Error E = ParseInts(Shape, "a dimension"))
    return E;

  // Attributes, each at most once, in any order; data comes last.
  StringSet<> Seen;
  SMLoc StridesLoc;
  bool HaveStrides = false, NoStorage = false;
  const StorageDecl *In = nullptr;
  static const char *const Keywords[] = {
      "strides",  "offset",         "in",    "no_storage", "requires_grad",
      "param",    "rebuild",        "hooks", "metadata",   "param_state",
      "subclass", "subclass_state", "loc"};
  for (;;) {
    if (!Tok.is(Token::Ident) || !is_contained(Keywords, Tok.Text))
      break;
    StringRef W = Tok.Text;
    if (!Seen.insert(W).second)
      return error("tensor attribute '" + W + "' given twice");
    SMLoc Loc = Tok.loc();
    consume();
    if (W == "strides") {
      StridesLoc = Loc;
      HaveStrides = true;
      if (Error E = ParseInts(Strides, "a stride"))
        return E;
    } else if (W == "offset") {
      Expected<int64_t> O = parseNonNegative("the storage offset");
      if (!O)
        return O.takeError();
      Tensor->setStorageOffset(*O);
    } else if (W == "in") {
      if (!Tok.is(Token::StorageRef))
        return error("expected a storage name like %0 after 'in'");
      auto It = Storages.find(Tok.Text.drop_front());
      if (It == Storages.end())
        return error("use of undeclared storage '" + Tok.Text + "'");
      In = &It->second;
      consume();
    } else if (W == "no_storage") {
      NoStorage = true;
    } else if (W == "requires_grad") {
      Tensor->setRequiresGrad(true);
    } else if (W == "param") {
      Tensor->setParameter(true);
    } else if (W == "rebuild") {
      if (!Tok.isKeyword("v1"))
        return error("expected 'v1' after 'rebuild' (the default, v2, is "
                     "not written)");
      consume();
      Tensor->setRebuildKind(TensorValue::RebuildKind::V1);
    } else if (W == "loc") {
      if (Error E = parseProvenance(Tensor->provenance()))
        return E;
    } else {
      Expected<ValuePtr> V = parseValue();
      if (!V)
        return V.takeError();
      ValuePtr &Slot = W == "hooks"            ? Tensor->BackwardHooks
                       : W == "metadata"       ? Tensor->Metadata
                       : W == "subclass"       ? Tensor->SubclassType
                       : W == "subclass_state" ? Tensor->SubclassState
                                               : Tensor->ParamState;
      Slot = std::move(*V);
    }
  }

  if (HaveStrides && Strides.size() != Shape.size())
    return error(StridesLoc, "tensor has " + Twine(Shape.size()) +
                                 " dimensions but " + Twine(Strides.size()) +
                                 " strides");
  if (HaveStrides)
    Tensor->setShapeAndStrides(Shape, Strides);
  else
    Tensor->setShape(Shape);

  std::optional<uint64_t> Need = Tensor->requiredStorageBytes();
  if (!Need)
    return error(TypeLoc, "tensor extent overflows 64 bits");
  SMLoc DataLoc = Tok.loc();
  bool HasData = consumeIf(Token::Equal);
  if (NoStorage && (In || HasData))
    return error(TypeLoc, "a tensor with 'no_storage' cannot have data or "
                          "a storage");
  if (In && HasData)
    return error(DataLoc, "data of a shared storage belongs on its "
                          "'storage' declaration");
  if (In) {
    if (*Need > In->S->numBytes())
      return error(TypeLoc, "tensor extent " + Twine(*Need) +
                                " bytes exceeds its storage of " +
                                Twine(In->S->numBytes()) + " bytes");
    Tensor->setStorage(In->S);
  } else if (HasData) {
    Expected<std::vector<uint8_t>> Bytes = parseData(*T, *Need);
    if (!Bytes)
      return Bytes.takeError();
    Tensor->setStorage(Storage::owned("", *T, std::move(*Bytes)));
  } else if (!NoStorage) {
    Tensor->setStorage(Storage::elided("", *T, *Need));
  }
  return Tensor;
}

Error Parser::parseStep(Provenance::Step &S) {
  if (Error E = expectKeyword("step"))
    return E;
  Expected<std::string> Pass = parseString();
  if (!Pass)
    return Pass.takeError();
  S.Pass = std::move(*Pass);
  for (StringRef Field : {"from", "to", "note"}) {
    if (!consumeKeyword(Field))
      continue;
    Expected<std::string> Text = parseString();
    if (!Text)
      return Text.takeError();
    (Field == "from" ? S.From : Field == "to" ? S.To : S.Note) = *Text;
  }
  return Error::success();
}

/// loc("file" ["key", ...] storage "3" offset 4096 history [step ...]).
Error Parser::parseProvenance(Provenance &P) {
  if (Error E = expect(Token::LParen, "'(' after 'loc'"))
    return E;
  Expected<std::string> File = parseString();
  if (!File)
    return File.takeError();
  P.File = std::move(*File);
  if (consumeIf(Token::LBracket)) {
    while (!consumeIf(Token::RBracket)) {
      Expected<std::string> Key = parseString();
      if (!Key)
        return Key.takeError();
      P.KeyPath.push_back(std::move(*Key));
      if (!consumeIf(Token::Comma) && !Tok.is(Token::RBracket))
        return error("expected ',' or ']', found '" + describe(Tok) + "'");
    }
  }
  if (consumeKeyword("storage")) {
    Expected<std::string> Key = parseString();
    if (!Key)
      return Key.takeError();
    P.StorageKey = std::move(*Key);
  }
  if (consumeKeyword("offset")) {
    Expected<int64_t> O = parseNonNegative("a byte offset");
    if (!O)
      return O.takeError();
    P.ByteOffset = (uint64_t)*O;
  }
  if (consumeKeyword("history")) {
    if (Error E = expect(Token::LBracket, "'['"))
      return E;
    while (!consumeIf(Token::RBracket)) {
      P.History.emplace_back();
      if (Error E = parseStep(P.History.back()))
        return E;
      if (!consumeIf(Token::Comma) && !Tok.is(Token::RBracket))
        return error("expected ',' or ']', found '" + describe(Tok) + "'");
    }
  }
  return expect(Token::RParen, "')' to close 'loc('");
}

//===----------------------------------------------------------------------===//
// Tensor data
//===----------------------------------------------------------------------===//

template <typename T> static void append(std::vector<uint8_t> &Out, T V) {
  uint8_t Buf[sizeof(T)];
  support::endian::write<T, llvm::endianness::little>(Buf, V);
  Out.insert(Out.end(), Buf, Buf + sizeof(T));
}

/// One literal element of type T, appended in little-endian byte order.
Error Parser::parseElement(DType T, std::vector<uint8_t> &Out) {
  if (T == DType::Bool) {
    if (Tok.isKeyword("true") || Tok.isKeyword("false")) {
      Out.push_back(Tok.isKeyword("true"));
      consume();
      return Error::success();
    }
    if (Tok.is(Token::Integer) && (Tok.Text == "0" || Tok.Text == "1")) {
      Out.push_back(Tok.Text == "1");
      consume();
      return Error::success();
    }
    return error("expected true or false, found '" + describe(Tok) + "'");
  }

  if (isFloatingPoint(T)) {
    std::optional<double> D;
    if (Tok.is(Token::Ident))
      D = nonFiniteKeyword(Tok.Text);
    else if (Tok.is(Token::Integer) || Tok.is(Token::Float))
      D = strtod(Tok.Text.str().c_str(), nullptr);
    if (!D)
      return error("expected a floating-point number, found '" + describe(Tok) +
                   "'");
    switch (T) {
    case DType::Float16:
      append<uint16_t>(Out, doubleToHalfBits(*D));
      break;
    case DType::BFloat16:
      append<uint16_t>(Out, doubleToBFloat16Bits(*D));
      break;
    case DType::Float32:
      // strtof rounds the decimal once; going through double would round
      // twice and could miss by one unit on a tie.
      append<uint32_t>(Out, Tok.is(Token::Ident)
                                ? bit_cast<uint32_t>((float)*D)
                                : bit_cast<uint32_t>(
                                      strtof(Tok.Text.str().c_str(), nullptr)));
      break;
    case DType::Float64:
      append<uint64_t>(Out, bit_cast<uint64_t>(*D));
      break;
    default:
      return error("element type '" + dtypeName(T) +
                   "' has no literal form; write its bytes as x\"...\"");
    }
    consume();
    return Error::success();
  }

  // Integers, checked against the range of T.
  int64_t Lo = 0;
  uint64_t Hi = 0;
  switch (T) {
  case DType::UInt8:
  case DType::QUInt8:
    Hi = UINT8_MAX;
    break;
  case DType::Int8:
  case DType::QInt8:
    Lo = INT8_MIN, Hi = INT8_MAX;
    break;
  case DType::Int16:
    Lo = INT16_MIN, Hi = INT16_MAX;
    break;
  case DType::UInt16:
    Hi = UINT16_MAX;
    break;
  case DType::Int32:
  case DType::QInt32:
    Lo = INT32_MIN, Hi = INT32_MAX;
    break;
  case DType::UInt32:
    Hi = UINT32_MAX;
    break;
  case DType::Int64:
    Lo = INT64_MIN, Hi = INT64_MAX;
    break;
  case DType::UInt64:
    Hi = UINT64_MAX;
    break;
  default:
    return error("element type '" + dtypeName(T) +
                 "' has no literal form; write its bytes as x\"...\"");
  }
  if (!Tok.is(Token::Integer))
    return error("expected an integer, found '" + describe(Tok) + "'");
  uint64_t Bits;
  bool InRange;
  if (Tok.Text.starts_with("-")) {
    int64_t V;
    InRange = !Tok.Text.getAsInteger(10, V) && V >= Lo;
    Bits = (uint64_t)V;
  } else {
    InRange = !Tok.Text.getAsInteger(10, Bits) && Bits <= Hi;
  }
  if (!InRange)
    return error("integer " + Tok.Text + " is out of range for '" +
                 dtypeName(T) + "'");
  consume();
  switch (dtypeSize(T)) {
  case 1:
    Out.push_back((uint8_t)Bits);
    break;
  case 2:
    append<uint16_t>(Out, (uint16_t)Bits);
    break;
  case 4:
    append<uint32_t>(Out, (uint32_t)Bits);
    break;
  default:
    append<uint64_t>(Out, Bits);
    break;
  }
  return Error::success();
}

/// `[e0, e1, ...]` or `x"..."`, which must hold exactly NumBytes bytes.
Expected<std::vector<uint8_t>> Parser::parseData(DType T, uint64_t NumBytes) {
  SMLoc Loc = Tok.loc();
  if (Tok.is(Token::Hex)) {
    Expected<std::vector<uint8_t>> Bytes = parseHex();
    if (Bytes && Bytes->size() != NumBytes)
      return error(Loc, "hex data has " + Twine(Bytes->size()) +
                            " bytes but the storage has " + Twine(NumBytes));
    return Bytes;
  }
  if (Error E = expect(Token::LBracket, "'[' or x\"...\" after '='"))
    return E;
  std::vector<uint8_t> Out;
  uint64_t Count = 0;
  while (!Tok.is(Token::RBracket)) {
    if (Error E = parseElement(T, Out))
      return E;
    ++Count;
    if (!consumeIf(Token::Comma) && !Tok.is(Token::RBracket))
      return error("expected ',' or ']', found '" + describe(Tok) + "'");
  }
  consume();
  std::optional<uint64_t> Elems = dtypeElements(T, NumBytes);
  if (!Elems)
    return error(Loc, "storage of " + Twine(NumBytes) + " bytes is not a " +
                          "whole number of '" + dtypeName(T) +
                          "' elements; write its bytes as x\"...\"");
  if (Out.size() != NumBytes)
    return error(Loc, "expected " + Twine(*Elems) +
                          " elements of data, found " + Twine(Count));
  return Out;
}

//===----------------------------------------------------------------------===//
// Top level
//===----------------------------------------------------------------------===//

Expected<ValuePtr> Parser::parseOpaque() {
  // `opaque call V reduce ...`: the callable is a value, not a global.
  ValuePtr Callee;
  std::string Module, Name;
  SMLoc CallLoc = Tok.loc();
  if (consumeKeyword("call")) {
    Expected<ValuePtr> V = parseValue();
    if (!V)
      return V.takeError();
    Callee = std::move(*V);
  } else {
    Expected<std::string> M = parseString();
    if (!M)
      return M.takeError();
    Expected<std::string> N = parseString();
    if (!N)
      return N.takeError();
    Module = std::move(*M);
    Name = std::move(*N);
  }
  auto How = OpaqueValue::Construct::Global;
  if (consumeKeyword("reduce"))
    How = OpaqueValue::Construct::Reduce;
  else if (consumeKeyword("newobj"))
    How = OpaqueValue::Construct::NewObj;
  else if (consumeKeyword("newobj_ex"))
    How = OpaqueValue::Construct::NewObjEx;
  if (Callee && How == OpaqueValue::Construct::Global)
    return error(CallLoc, "'opaque call' needs reduce, newobj or newobj_ex");
  auto O = std::make_shared<OpaqueValue>(Module, Name, How);
  O->Callee = std::move(Callee);
  // Fixed order, each optional: the printer writes them this way.
  for (auto Slot :
       {std::make_pair("args", &O->Args), std::make_pair("kwargs", &O->Kwargs),
        std::make_pair("state", &O->State)}) {
    if (!consumeKeyword(Slot.first))
      continue;
    Expected<ValuePtr> V = parseValue();
    if (!V)
      return V.takeError();
    *Slot.second = std::move(*V);
  }
  if (consumeKeyword("items")) {
    if (Error E = expect(Token::LBracket, "'['"))
      return E;
    Expected<ValuePtr> L = parseSequence(Value::Kind::List, Token::RBracket);
    if (!L)
      return L.takeError();
    O->ListItems = std::move(cast<SequenceValue>(L->get())->elements());
  }
  if (consumeKeyword("dictitems")) {
    if (Error E = expect(Token::LBrace, "'{'"))
      return E;
    if (Error E = parseEntries(O->DictItems))
      return E;
    if (Error E = expect(Token::RBrace, "'}'"))
      return E;
  }
  return O;
}

/// storage %name : dtype x count [= data]   or   ... bytes N [= x"..."]
Error Parser::parseStorageDecl() {
  consume(); // 'storage'
  if (!Tok.is(Token::StorageRef))
    return error("expected a storage name like %0, found '" + describe(Tok) +
                 "'");
  Token NameTok = Tok;
  StringRef Name = Tok.Text.drop_front();
  if (Storages.count(Name))
    return error("storage '" + Tok.Text + "' is already declared");
  consume();
  if (Error E = expect(Token::Colon, "':' after the storage name"))
    return E;
  if (!Tok.is(Token::Ident) || !parseDTypeName(Tok.Text))
    return error("expected an element type, found '" + describe(Tok) + "'");
  DType T = *parseDTypeName(Tok.Text);
  consume();
  uint64_t NumBytes;
  bool InBytes = consumeKeyword("bytes");
  if (!InBytes && !consumeKeyword("x"))
    return error("expected 'x' (element count) or 'bytes', found '" +
                 describe(Tok) + "'");
  SMLoc CountLoc = Tok.loc();
  Expected<int64_t> Count = parseNonNegative("a storage size");
  if (!Count)
    return Count.takeError();
  NumBytes = (uint64_t)*Count;
  bool Overflow = false;
  if (!InBytes) {
    std::optional<uint64_t> B = dtypeBytes(T, NumBytes);
    Overflow = !B;
    NumBytes = B.value_or(0);
  }
  if (Overflow)
    return error(CountLoc, "storage size overflows 64 bits");
  std::string Device = "cpu";
  if (consumeKeyword("device")) {
    Expected<std::string> D = parseString();
    if (!D)
      return D.takeError();
    Device = std::move(*D);
  }
  StorageRef S;
  if (consumeIf(Token::Equal)) {
    Expected<std::vector<uint8_t>> Bytes = parseData(T, NumBytes);
    if (!Bytes)
      return Bytes.takeError();
    S = Storage::owned("", T, std::move(*Bytes));
  } else {
    S = Storage::elided("", T, NumBytes);
  }
  S->setLocation(std::move(Device));
  Storages[Name] = StorageDecl{std::move(S), NameTok.loc()};
  return Error::success();
}

/// checkpoint attributes {format = "torch-zip", version = "3", ...}
Error Parser::parseHeader(Checkpoint &C) {
  if (Error E = expect(Token::LBrace, "'{' after 'attributes'"))
    return E;
  StringSet<> Seen;
  while (!consumeIf(Token::RBrace)) {
    if (!Tok.is(Token::Ident))
      return error("expected an attribute name, found '" + describe(Tok) + "'");
    StringRef Name = Tok.Text;
    std::string *Field = Name == "format"      ? &C.Format
                         : Name == "version"   ? &C.FormatVersion
                         : Name == "byteorder" ? &C.ByteOrder
                         : Name == "prefix"    ? &C.RecordPrefix
                                               : nullptr;
    if (!Field)
      return error("unknown checkpoint attribute '" + Name +
                   "' (expected format, version, byteorder or prefix)");
    if (!Seen.insert(Name).second)
      return error("checkpoint attribute '" + Name + "' given twice");
    consume();
    if (Error E = expect(Token::Equal, "'='"))
      return E;
    Expected<std::string> Text = parseString();
    if (!Text)
      return Text.takeError();
    *Field = std::move(*Text);
    if (!consumeIf(Token::Comma) && !Tok.is(Token::RBrace))
      return error("expected ',' or '}', found '" + describe(Tok) + "'");
  }
  return Error::success();
}

/// Gives every storage a distinct key ("0", "1", ...) in first-use order so
/// exporters that name records by key never see a clash.
static void numberStorages(Checkpoint &C) {
  unsigned Next = 0;
  for (const StorageRef &S : C.storages())
    S->setKey(std::to_string(Next++));
}

Expected<std::unique_ptr<Checkpoint>> Parser::parseFile() {
  auto C = std::make_unique<Checkpoint>();
  C->Format = "wir";
  while (Tok.isKeyword("storage"))
    if (Error E = parseStorageDecl())
      return E;
  if (Error E = expectKeyword("checkpoint"))
    return E;
  if (consumeKeyword("attributes"))
    if (Error E = parseHeader(*C))
      return E;
  SMLoc RootLoc = Tok.loc();
  Expected<ValuePtr> Root = parseValue();
  if (!Root)
    return Root.takeError();
  if (!Tok.is(Token::Eof))
    return error("expected end of file after the checkpoint, found '" +
                 describe(Tok) + "'");
  if (Error E = resolveForwardReferences(**Root))
    return E;
  // The checkpoint's graph owns the nodes, so cycles among them are freed.
  C->graph().adoptReachable(*Root);
  C->setRoot(std::move(*Root));
  // References make a chain as deep as the file is long without nesting.
  if (graphDepth(*C->root(), MaxGraphDepth + 1) > MaxGraphDepth)
    return error(RootLoc, "values nested deeper than " + Twine(MaxGraphDepth) +
                              " (limit), counting references");
  numberStorages(*C);
  return C;
}

//===----------------------------------------------------------------------===//
// Entry point
//===----------------------------------------------------------------------===//

Expected<std::unique_ptr<Checkpoint>>
wopt::parseCheckpoint(MemoryBufferRef Buffer) {
  SourceMgr SM;
  SM.AddNewSourceBuffer(
      MemoryBuffer::getMemBuffer(Buffer, /*RequiresNullTerminator=*/false),
      SMLoc());
  Parser P(SM, Buffer.getBuffer());
  Expected<std::unique_ptr<Checkpoint>> C = P.parseFile();
  if (C)
    (*C)->SourcePath = Buffer.getBufferIdentifier().str();
  return C;
}
