//===- PickleTest.cpp - The symbolic unpickler on hand-built pickles
//-------===//
#include "wopt/IR/TextIR.h"
#include "wopt/Serialization/PickleReader.h"
#include "wopt/Serialization/Torch.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "gtest/gtest.h"

using namespace wopt;
using namespace llvm;
using namespace std::string_literals;

namespace {

/// "" on success, else the message (the error is consumed either way).
template <typename T> std::string msg(llvm::Expected<T> &E) {
  return E ? "" : llvm::toString(E.takeError());
}
template <typename T> std::string msg(llvm::Expected<T> &&E) { return msg(E); }
inline std::string msg(llvm::Error E) {
  return E ? llvm::toString(std::move(E)) : "";
}

Expected<ValuePtr> readPickle(StringRef P, ReaderLimits L = {}) {
  PickleReader R(
      ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(P.data()), P.size()),
      "t.pth: data.pkl", L);
  return R.read();
}

TEST(PickleTest, Scalars) {
  auto V = readPickle(StringRef("\x80\x02(K\x07J\xff\xff\xff\xff\x88N"
                                "G?\xf8\x00\x00\x00\x00\x00\x00"
                                "\x8a\x01\xfft.",
                                30));
  ASSERT_EQ(msg(V), "");
  auto &T = cast<SequenceValue>(**V).elements();
  ASSERT_EQ(T.size(), 6u);
  EXPECT_EQ(cast<IntValue>(*T[0]).value(), 7);
  EXPECT_EQ(cast<IntValue>(*T[1]).value(), -1);
  EXPECT_TRUE(cast<BoolValue>(*T[2]).value());
  EXPECT_TRUE(isa<NoneValue>(*T[3]));
  EXPECT_EQ(cast<FloatValue>(*T[4]).value(), 1.5);
  EXPECT_EQ(cast<IntValue>(*T[5]).value(), -1);
}

TEST(PickleTest, OrderedDictWithMetadataState) {
  std::string P = "\x80\x02"
                  "ccollections\nOrderedDict\nq"s +
                  '\0' + ")R(X\x01\0\0\0"s + "aK\x01u}X\x09\0\0\0"s +
                  "_metadatah"s + '\0' + ")Rsb."s;
  auto V = readPickle(P);
  ASSERT_EQ(msg(V), "");
  auto &D = cast<DictValue>(**V);
  EXPECT_TRUE(D.isOrdered());
  ASSERT_EQ(D.size(), 1u);
  ASSERT_TRUE(D.state());
  EXPECT_NE(cast<DictValue>(*D.state()).lookup("_metadata"), nullptr);
}

TEST(PickleTest, UnknownGlobalsStayOpaque) {
  std::string P = "\x80\x02"
                  "c__builtin__\nfoo\n)\x81}X\x01\0\0\0"s +
                  "xK\x02sb."s;
  auto V = readPickle(P);
  ASSERT_EQ(msg(V), "");
  auto &O = cast<OpaqueValue>(**V);
  EXPECT_EQ(O.module(), "builtins");
  EXPECT_EQ(O.name(), "foo");
  EXPECT_EQ(O.construct(), OpaqueValue::Construct::NewObj);
  ASSERT_TRUE(O.State);
}

TEST(PickleTest, MemoGetIsTheSameObject) {
  auto V = readPickle("\x80\x02]q\x01K\x01"
                      "ah\x01\x86.");
  ASSERT_EQ(msg(V), "");
  auto &T = cast<SequenceValue>(**V).elements();
  EXPECT_EQ(T[0].get(), T[1].get());
  EXPECT_EQ(cast<SequenceValue>(*T[1]).elements().size(), 1u);
}

TEST(PickleTest, CyclesAreEdges) {
  // L = []; L.append(L); L.append(L): one node that holds itself twice.
  auto V = readPickle("\x80\x02]q\x00h\x00"
                      "ah\x00"
                      "a."s);
  ASSERT_EQ(msg(V), "");
  auto &L = cast<SequenceValue>(**V);
  ASSERT_EQ(L.elements().size(), 2u);
  EXPECT_EQ(L.elements()[0].get(), V->get());
  EXPECT_EQ(L.elements()[1].get(), V->get());
  EXPECT_EQ((*V)->countNodes(), 1u);
}

TEST(PickleTest, MemoBlowupIsLinear) {
  // A list appended to itself 100 times: 100 edges, one node, instantly.
  std::string P = "\x80\x02]q\x00"s;
  for (int I = 0; I < 100; ++I)
    P += "h\x00"
         "a"s;
  P += ".";
  auto V = readPickle(P);
  ASSERT_EQ(msg(V), "");
  EXPECT_EQ(cast<SequenceValue>(**V).elements().size(), 100u);
  EXPECT_EQ((*V)->countNodes(), 1u);
}

TEST(PickleTest, UnhashableKeysAreRefused) {
  // {[]: 1}, set([[]]), frozenset([{}]), d[d] = 'v': Python refuses them.
  EXPECT_EQ(msg(readPickle("\x80\x02}]K\x01s.")),
            "t.pth: data.pkl: a dict key is a list, which Python cannot hash "
            "(unhashable type: 'list') at byte 6");
  EXPECT_NE(msg(readPickle("\x80\x04\x8f(]\x90."))
                .find("a set element is a "
                      "list"),
            std::string::npos);
  EXPECT_NE(msg(readPickle("\x80\x04(}\x91."))
                .find("a frozenset element "
                      "is a dict"),
            std::string::npos);
  EXPECT_NE(msg(readPickle("\x80\x02}q\x00h\x00X\x01\x00\x00\x00vs."s))
                .find("a dict key is a dict"),
            std::string::npos);
  // A tuple of hashables is a fine key; a tuple holding a list is not.
  EXPECT_EQ(msg(readPickle("\x80\x02}K\x01K\x02\x86K\x03s.")), "");
  EXPECT_NE(msg(readPickle("\x80\x02}K\x01]\x86K\x03s."))
                .find("a dict key "
                      "is a tuple"),
            std::string::npos);
}

TEST(PickleTest, DeepGraphsAreRefused) {
  // 2000 nested lists, each made from the previous one by the memo: the
  // nesting limit holds for chains of references too.
  std::string P = "\x80\x02]q\x00"s;
  for (int I = 0; I < 2000; ++I)
    P += "]h\x00"
         "aq\x00"s;
  P += ".";
  EXPECT_NE(msg(readPickle(P)).find("values nested deeper than 1000 (limit)"),
            std::string::npos);
}

TEST(PickleTest, CodecsEncodeIsBytes) {
  std::string P = "\x80\x02"
                  "c_codecs\nencode\nX\x02\0\0\0"s +
                  "\xc3\xbfX\x06\0\0\0"s + "latin1\x86R."s;
  auto V = readPickle(P);
  ASSERT_EQ(msg(V), "");
  EXPECT_EQ((*V)->kind(), Value::Kind::Bytes);
  EXPECT_EQ(cast<StringValue>(**V).value(), "\xff");
}

TEST(PickleTest, Errors) {
  EXPECT_EQ(msg(readPickle("\x80\x02\xff.")), "t.pth: data.pkl: opcode 0xff at "
                                              "byte 2 is not a pickle opcode");
  EXPECT_EQ(msg(readPickle("\x80\x02"
                           "0.")),
            "t.pth: data.pkl: no MARK on the "
            "stack at byte 2");
  EXPECT_EQ(msg(readPickle("\x80\x02h\x03.")),
            "t.pth: data.pkl: memo key 3 is not "
            "defined at byte 2");
  EXPECT_EQ(msg(readPickle("\x80\x02"
                           "N")),
            "t.pth: data.pkl: pickle ends "
            "without STOP at byte 3");
  EXPECT_NE(msg(readPickle("")), "");
}

TEST(PickleTest, Limits) {
  ReaderLimits L;
  L.MaxNesting = 3;
  EXPECT_NE(msg(readPickle("\x80\x02]]]]]aaaa.", L)), "");
  L = {};
  L.MaxValueNodes = 20;
  // A list doubled by memo fetches: the node budget stops it.
  EXPECT_NE(
      msg(readPickle("\x80\x02]q\x00(h\x00h\x00h\x00h\x00h\x00h\x00h\x00"
                     "h\x00h\x00h\x00h\x00h\x00h\x00h\x00h\x00h\x00h\x00h\x00"
                     "h\x00h\x00h\x00h\x00e.",
                     L)),
      "");
  L = {};
  L.MaxStackDepth = 4;
  EXPECT_NE(msg(readPickle("\x80\x02NNNNNN.", L)), "");
  L = {};
  L.MaxMemoSize = 1;
  EXPECT_NE(msg(readPickle("\x80\x02Nq\x00q\x01.", L)), "");
}

TEST(PickleTest, LegacyMagic) {
  const uint8_t M[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                       0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
  EXPECT_TRUE(looksLikeLegacyTorch(M));
  EXPECT_FALSE(looksLikeLegacyTorch(ArrayRef<uint8_t>(M).take_front(5)));
}

/// The IR a torch data.pkl reads to, printed, or the error.
std::string readAndPrint(StringRef Pickle, StringRef Name) {
  auto C = importTorchPickle(arrayRefFromStringRef(Pickle), Name);
  if (!C)
    return "error: " + toString(C.takeError());
  std::string S;
  raw_string_ostream OS(S);
  printCheckpoint(**C, OS);
  return S;
}

// Inputs a property fuzzer found: read -> write -> read changed the value,
// or the writer emitted what the reader then refused. Each must be refused
// on the first read, or come back the same.
TEST(PickleTest, FuzzerFindingsRoundTrip) {
  SmallString<128> Dir(WOPT_TEST_INPUTS);
  sys::path::append(Dir, "findings", "pickle-roundtrip");
  std::error_code EC;
  unsigned Files = 0;
  for (sys::fs::directory_iterator It(Dir, EC), End; It != End && !EC;
       It.increment(EC)) {
    auto Buf = MemoryBuffer::getFile(It->path());
    ASSERT_TRUE(bool(Buf)) << It->path();
    ++Files;
    StringRef Name = sys::path::filename(It->path());
    auto C =
        importTorchPickle(arrayRefFromStringRef((*Buf)->getBuffer()), Name);
    if (!C) {
      // Refused: a one-line message naming the file.
      std::string Msg = toString(C.takeError());
      EXPECT_EQ(Msg.find('\n'), std::string::npos) << Msg;
      EXPECT_EQ(Msg.rfind(Name, 0), 0u) << Msg;
      continue;
    }
    std::string First;
    raw_string_ostream OS(First);
    printCheckpoint(**C, OS);
    auto P = pickleTorch(**C);
    ASSERT_TRUE(bool(P)) << Name.str() << ": " << toString(P.takeError());
    EXPECT_EQ(readAndPrint(*P, Name), First) << Name.str();
  }
  EXPECT_FALSE(EC) << EC.message();
  EXPECT_EQ(Files, 9u);
}

} // namespace
