//===- WriterTest.cpp - Pickle writer, zip writer, torch export ----------===//

#include "wopt/Serialization/PickleWriter.h"
#include "wopt/Serialization/Torch.h"
#include "wopt/Serialization/ZipReader.h"
#include "wopt/Serialization/ZipWriter.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "gtest/gtest.h"
#include <fcntl.h>
#include <unistd.h>

using namespace llvm;
using namespace wopt;

namespace {

std::string pickle(const Value &V) {
  PickleWriter W;
  Error E = W.writeValue(V);
  EXPECT_FALSE(static_cast<bool>(E));
  consumeError(std::move(E));
  return W.finish();
}

/// A literal with embedded NULs.
template <size_t N> std::string lit(const char (&S)[N]) {
  return std::string(S, N - 1);
}

std::string bytes(std::initializer_list<int> B) {
  std::string S;
  for (int C : B)
    S.push_back(static_cast<char>(C));
  return S;
}

// Expected bytes below are what CPython's pickle.dumps(v, protocol=2) gives.
TEST(PickleWriter, Ints) {
  EXPECT_EQ(pickle(IntValue(5)), bytes({0x80, 2, 'K', 5, '.'}));
  EXPECT_EQ(pickle(IntValue(300)), bytes({0x80, 2, 'M', 0x2c, 1, '.'}));
  EXPECT_EQ(pickle(IntValue(-5)),
            bytes({0x80, 2, 'J', 0xfb, 0xff, 0xff, 0xff, '.'}));
  EXPECT_EQ(pickle(IntValue(70000)),
            bytes({0x80, 2, 'J', 0x70, 0x11, 0x01, 0x00, '.'}));
  // 2**40 and -2**31-1 need LONG1 with the minimal two's complement.
  EXPECT_EQ(pickle(IntValue(int64_t(1) << 40)),
            bytes({0x80, 2, 0x8a, 6, 0, 0, 0, 0, 0, 1, '.'}));
  EXPECT_EQ(pickle(IntValue(-(int64_t(1) << 31) - 1)),
            bytes({0x80, 2, 0x8a, 5, 0xff, 0xff, 0xff, 0x7f, 0xff, '.'}));
  EXPECT_EQ(pickle(IntValue(INT64_MIN)),
            bytes({0x80, 2, 0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x80, '.'}));
  EXPECT_EQ(pickle(BigIntValue(std::string("\x00\x00\x40", 3))),
            bytes({0x80, 2, 0x8a, 3, 0, 0, 0x40, '.'}));
}

TEST(PickleWriter, Scalars) {
  EXPECT_EQ(pickle(FloatValue(2.5)),
            bytes({0x80, 2, 'G', 0x40, 0x04, 0, 0, 0, 0, 0, 0, '.'}));
  EXPECT_EQ(pickle(NoneValue()), bytes({0x80, 2, 'N', '.'}));
  EXPECT_EQ(pickle(BoolValue(true)), bytes({0x80, 2, 0x88, '.'}));
  EXPECT_EQ(pickle(BoolValue(false)), bytes({0x80, 2, 0x89, '.'}));
  EXPECT_EQ(pickle(StringValue(Value::Kind::Str, "ab")),
            bytes({0x80, 2, 'X', 2, 0, 0, 0, 'a', 'b', 'q', 0, '.'}));
}

TEST(PickleWriter, BytesAsCodecsEncode) {
  // pickle.dumps(b'\xff', 2)
  std::string Expected = lit("\x80\x02"
                             "c_codecs\nencode\nq\x00"
                             "X\x02\x00\x00\x00\xc3\xbfq\x01"
                             "X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.");
  EXPECT_EQ(pickle(StringValue(Value::Kind::Bytes, "\xff")), Expected);
  EXPECT_EQ(pickle(StringValue(Value::Kind::Bytes, "")),
            std::string("\x80\x02"
                        "c__builtin__\nbytes\nq\x00)Rq\x01.",
                        28));
}

TEST(PickleWriter, Containers) {
  // pickle.dumps([1, (1, 2), ('a', 'a'), (1, 2, 3, 4), ()], 2): repeated
  // strings come back through BINGET.
  std::vector<ValuePtr> L = {
      makeInt(1), makeTuple({makeInt(1), makeInt(2)}),
      makeTuple({makeStr("a"), makeStr("a")}),
      makeTuple({makeInt(1), makeInt(2), makeInt(3), makeInt(4)}),
      makeTuple({})};
  std::string Expected = lit("\x80\x02]q\x00(K\x01K\x01K\x02\x86q\x01"
                             "X\x01\x00\x00\x00"
                             "aq\x02h\x02\x86q\x03"
                             "(K\x01K\x02K\x03K\x04tq\x04)e.");
  EXPECT_EQ(pickle(SequenceValue(Value::Kind::List, L)), Expected);
  // A one-element list uses APPEND, a set is builtins.set([...]).
  EXPECT_EQ(pickle(SequenceValue(Value::Kind::List, {makeInt(7)})),
            std::string("\x80\x02]q\x00K\x07"
                        "a.",
                        9));
  EXPECT_EQ(pickle(SequenceValue(Value::Kind::Set, {makeInt(1), makeInt(2)})),
            std::string("\x80\x02"
                        "c__builtin__\nset\nq\x00]q\x01(K\x01K\x02"
                        "e\x85q\x02Rq\x03.",
                        37));
}

TEST(PickleWriter, OrderedDictWithMetadata) {
  // OrderedDict(a=1, b=2) with _metadata = OrderedDict(): what a
  // state_dict() pickles to.
  DictValue D(/*Ordered=*/true);
  D.set("a", makeInt(1));
  D.set("b", makeInt(2));
  auto State = std::make_shared<DictValue>();
  State->set("_metadata", std::make_shared<DictValue>(true));
  D.setState(State);
  std::string Expected =
      lit("\x80\x02"
          "ccollections\nOrderedDict\nq\x00)Rq\x01("
          "X\x01\x00\x00\x00"
          "aq\x02K\x01X\x01\x00\x00\x00"
          "bq\x03K\x02u"
          "}q\x04X\t\x00\x00\x00_metadataq\x05h\x00)Rq\x06sb.");
  EXPECT_EQ(pickle(D), Expected);
}

TEST(PickleWriter, OpaqueNewObjWithState) {
  // argparse.Namespace(lr=0.5) pickled with protocol 2.
  OpaqueValue O("argparse", "Namespace", OpaqueValue::Construct::NewObj);
  O.Args = makeTuple({});
  auto State = std::make_shared<DictValue>();
  State->set("lr", makeFloat(0.5));
  O.State = State;
  std::string Expected = std::string("\x80\x02"
                                     "cargparse\nNamespace\nq\x00)"
                                     "\x81q\x01}q\x02X\x02\x00\x00\x00lrq\x03"
                                     "G?\xe0\x00\x00\x00\x00\x00\x00sb.",
                                     52);
  EXPECT_EQ(pickle(O), Expected);
}

/// The message of writing V, or "" when it was written.
std::string pickleError(const Value &V) {
  PickleWriter W;
  Error E = W.writeValue(V);
  return E ? toString(std::move(E)) : std::string();
}

TEST(PickleWriter, RefusesGlobalsFindClassCouldNotResolve) {
  // Whatever built the IR, no name becomes GLOBAL text that reads back as
  // more opcodes.
  for (auto [Module, Name] : std::vector<std::pair<std::string, std::string>>{
           {"builtins\nprint\n(X", "len"},
           {"builtins", "print\nx"},
           {"os system", "x"},
           {"", "x"},
           {"builtins", ""},
           {"9lives", "x"},
           {"a..b", "x"},
           {"builtins", "len."},
           {std::string("builtins\0", 9), "len"},
           {"\xff\xfe", "x"}}) {
    OpaqueValue O(Module, Name, OpaqueValue::Construct::Global);
    std::string Msg = pickleError(O);
    EXPECT_NE(Msg.find("not a dotted Python identifier"), std::string::npos)
        << Module << " " << Name << ": " << Msg;
    EXPECT_EQ(Msg.find('\n'), std::string::npos) << Msg;
  }
}

TEST(PickleWriter, MemoKeysOfStrsAndGlobalsNeverCollide) {
  // Once, "module\nname" was the memo key of a global and strs shared the
  // map: a str could fetch a global.
  std::vector<ValuePtr> L = {
      std::make_shared<OpaqueValue>("collections", "OrderedDict",
                                    OpaqueValue::Construct::Global),
      makeStr("collections\nOrderedDict"), makeStr("g:collections"),
      std::make_shared<OpaqueValue>("collections", "OrderedDict",
                                    OpaqueValue::Construct::Global)};
  std::string P = pickle(SequenceValue(Value::Kind::List, L));
  // ] BINPUT0 ( GLOBAL BINPUT1 X.. BINPUT2 X.. BINPUT3 BINGET1 e
  std::string Expected = lit("\x80\x02]q\x00(ccollections\nOrderedDict\n"
                             "q\x01X\x17\x00\x00\x00"
                             "collections\n"
                             "OrderedDictq\x02X\x0d\x00\x00\x00"
                             "g:collectionsq\x03h\x01"
                             "e.");
  EXPECT_EQ(P, Expected);
}

TEST(PickleWriter, RefusesStrThatIsNotUTF8) {
  auto D = std::make_shared<DictValue>();
  D->set("k", makeStr("\xff\xfe"));
  std::string Msg = pickleError(*D);
  EXPECT_NE(Msg.find("not valid UTF-8"), std::string::npos) << Msg;
  EXPECT_NE(Msg.find("at 'k'"), std::string::npos) << Msg;
  // A lone surrogate is what pickle's 'surrogatepass' writes: kept.
  EXPECT_EQ(pickleError(StringValue(Value::Kind::Str, "\xed\xa0\x80")), "");
}

TEST(PickleWriter, NestedGlobalIsGetattrInProtocol2) {
  // What CPython's save_global writes for a nested class with protocol 2.
  OpaqueValue O("m", "Outer.Inner", OpaqueValue::Construct::Global);
  std::string Expected = lit("\x80\x02"
                             "c__builtin__\ngetattr\nq\x00"
                             "cm\nOuter\nq\x01X\x05\x00\x00\x00"
                             "Innerq\x02\x86q\x03Rq\x04.");
  EXPECT_EQ(pickle(O), Expected);
}

TEST(PickleWriter, StateOfABareGlobalIsWritten) {
  // BUILD on a global: the reader keeps the state, so the writer must too.
  OpaqueValue O("torch", "FloatStorage", OpaqueValue::Construct::Global);
  O.State = makeStr("$");
  EXPECT_EQ(pickle(O), lit("\x80\x02"
                           "ctorch\nFloatStorage\nq\x00"
                           "X\x01\x00\x00\x00$q\x01"
                           "b."));
}

TEST(PickleWriter, LongMemoIndices) {
  std::vector<ValuePtr> L;
  for (int I = 0; I < 300; ++I)
    L.push_back(makeStr("s" + std::to_string(I)));
  L.push_back(makeStr("s299"));
  std::string P = pickle(SequenceValue(Value::Kind::List, L));
  // Index 256 onwards: LONG_BINPUT; the repeat of s299 (index 300):
  // LONG_BINGET 300.
  EXPECT_NE(P.find(std::string("r\x00\x01\x00\x00", 5)), std::string::npos);
  EXPECT_NE(P.find(std::string("j\x2c\x01\x00\x00", 5)), std::string::npos);
}

TEST(ZipWriter, LocalExtraFieldMatchesTorch) {
  // From a 4.3 GB file torch 1.13 wrote: data/0 (>= 4 GiB) at offset 397.
  std::string E = ZipWriter::localExtraField(397, 10, 0x112c00011ull);
  ASSERT_EQ(E.size(), 75u);
  EXPECT_EQ(E.substr(0, 24),
            std::string("\x01\x00\x10\x00\x11\x00\xc0\x12\x01\x00\x00\x00"
                        "\x00\x00\x00\x00\x00\x00\x00\x00"
                        "FB\x33\x00",
                        24));
  // data/1 (40 bytes) after the 4 GiB mark.
  E = ZipWriter::localExtraField(0x112c00229ull, 10, 40);
  ASSERT_EQ(E.size(), 47u);
  EXPECT_EQ(E.substr(0, 16), std::string("\x01\x00\x08\x00\x29\x02\xc0\x12"
                                         "\x01\x00\x00\x00"
                                         "FB\x1f\x00",
                                         16));
  // Small archive: data starts aligned, padding is 'Z'.
  E = ZipWriter::localExtraField(0, 11, 680);
  EXPECT_EQ(E, "FB\x13" + std::string(1, '\0') + std::string(19, 'Z'));
}

/// Reads a temp file back.
std::string readFile(StringRef Path) {
  auto Buf = MemoryBuffer::getFile(Path);
  EXPECT_TRUE(static_cast<bool>(Buf));
  return Buf ? (*Buf)->getBuffer().str() : std::string();
}

uint32_t le32(const std::string &S, size_t At) {
  return support::endian::read32le(S.data() + At);
}
uint16_t le16(const std::string &S, size_t At) {
  return support::endian::read16le(S.data() + At);
}

TEST(ZipWriter, StructureAndCRC) {
  SmallString<128> Path;
  int FD;
  ASSERT_FALSE(sys::fs::createTemporaryFile("zipwriter", "zip", FD, Path));
  {
    ZipWriter Z(FD);
    ASSERT_FALSE(static_cast<bool>(
        Z.addRecord("a/data.pkl", arrayRefFromStringRef("hello"))));
    ASSERT_FALSE(static_cast<bool>(Z.addRecord("a/data/0", {})));
    ASSERT_FALSE(static_cast<bool>(Z.finish()));
  }
  ::close(FD);
  std::string S = readFile(Path);
  sys::fs::remove(Path);
  ASSERT_GE(S.size(), 64u);
  EXPECT_EQ(le32(S, 0), 0x04034b50u);
  EXPECT_EQ(le16(S, 6), 0x0808);
  size_t DataAt = 30 + le16(S, 26) + le16(S, 28);
  EXPECT_EQ(DataAt % 64, 0u);
  EXPECT_EQ(S.substr(DataAt, 5), "hello");
  // Data descriptor: CRC-32 of "hello" is 0x3610a686.
  EXPECT_EQ(le32(S, DataAt + 5), 0x08074b50u);
  EXPECT_EQ(le32(S, DataAt + 9), 0x3610a686u);
  EXPECT_EQ(le32(S, DataAt + 13), 5u);
  // The empty record has no descriptor and flags 0x800.
  size_t Second = DataAt + 21;
  EXPECT_EQ(le32(S, Second), 0x04034b50u);
  EXPECT_EQ(le16(S, Second + 6), 0x0800);
  // Ends with zip64 end record, locator, end record.
  size_t End = S.size() - 22;
  EXPECT_EQ(le32(S, End), 0x06054b50u);
  EXPECT_EQ(le16(S, End + 10), 2);
  EXPECT_EQ(le32(S, End - 20), 0x07064b50u);
  EXPECT_EQ(le32(S, End - 20 - 56), 0x06064b50u);
  EXPECT_EQ(crc32Update(0, arrayRefFromStringRef("hello")), 0x3610a686u);
}

std::shared_ptr<TensorValue> tensor(StorageRef S, std::vector<int64_t> Shape) {
  auto T = std::make_shared<TensorValue>();
  T->setDType(DType::Float32);
  T->setShape(Shape);
  T->setStorage(std::move(S));
  return T;
}

TEST(TorchExport, ElidedDataFailsAndLeavesNoFile) {
  auto Root = std::make_shared<DictValue>(true);
  Root->set("w", tensor(Storage::elided("0", DType::Float32, 16), {2, 2}));
  Checkpoint C(Root);
  SmallString<128> Dir;
  ASSERT_FALSE(sys::fs::createUniqueDirectory("wopt-export", Dir));
  SmallString<128> Out(Dir);
  sys::path::append(Out, "out.pth");
  Error E = exportTorch(C, Out);
  ASSERT_TRUE(static_cast<bool>(E));
  std::string Msg = toString(std::move(E));
  EXPECT_NE(Msg.find("'w'"), std::string::npos) << Msg;
  std::error_code EC;
  EXPECT_EQ(sys::fs::directory_iterator(Dir, EC),
            sys::fs::directory_iterator());
  sys::fs::remove(Dir);
}

TEST(TorchExport, MissingDirectoryFailsCleanly) {
  auto Root = std::make_shared<DictValue>(true);
  Checkpoint C(Root);
  Error E = exportTorch(C, "/nonexistent-wopt-dir/out.pth");
  ASSERT_TRUE(static_cast<bool>(E));
  EXPECT_NE(toString(std::move(E)).find("out.pth"), std::string::npos);
}

TEST(TorchExport, SharedStorageWrittenOnceAndRenumbered) {
  std::vector<uint8_t> B(16);
  for (size_t I = 0; I < B.size(); ++I)
    B[I] = static_cast<uint8_t>(I);
  auto S = Storage::owned("7", DType::Float32, B);
  auto Unused = Storage::owned("3", DType::Float32, B);
  auto Root = std::make_shared<DictValue>(true);
  Root->set("a", tensor(S, {4}));
  Root->set("b", tensor(S, {2, 2}));
  Checkpoint C(Root);
  SmallString<128> Dir;
  ASSERT_FALSE(sys::fs::createUniqueDirectory("wopt-export", Dir));
  SmallString<128> Out(Dir);
  sys::path::append(Out, "ck.pth");
  ASSERT_FALSE(static_cast<bool>(exportTorch(C, Out)));
  std::string F = readFile(Out);
  EXPECT_NE(F.find("ck/data/0"), std::string::npos);
  EXPECT_EQ(F.find("ck/data/1"), std::string::npos);
  EXPECT_NE(F.find("ck/data.pkl"), std::string::npos);
  EXPECT_NE(F.find("ck/version"), std::string::npos);
  EXPECT_NE(F.find("ck/byteorder"), std::string::npos);
  sys::fs::remove(Out);
  sys::fs::remove(Dir);
}

/// A temporary directory removed with everything in it.
struct TempDir {
  SmallString<128> Path;
  TempDir() { EXPECT_FALSE(sys::fs::createUniqueDirectory("wopt-crc", Path)); }
  ~TempDir() { sys::fs::remove_directories(Path); }
  std::string file(StringRef Name) const {
    SmallString<128> P(Path);
    sys::path::append(P, Name);
    return std::string(P);
  }
};

void writeFile(StringRef Path, ArrayRef<uint8_t> Bytes) {
  std::error_code EC;
  raw_fd_ostream OS(Path, EC);
  ASSERT_FALSE(EC);
  OS.write(reinterpret_cast<const char *>(Bytes.data()), Bytes.size());
}

std::vector<uint8_t> pattern(size_t N) {
  std::vector<uint8_t> B(N);
  for (size_t I = 0; I < N; ++I)
    B[I] = static_cast<uint8_t>(I * 131 + (I >> 9));
  return B;
}

TEST(ZipWriter, KnownCRCIsWrittenAndTheBytesCopiedKernelSide) {
  TempDir D;
  std::vector<uint8_t> Data = pattern(3 << 20);
  writeFile(D.file("in.bin"), Data);
  int In = ::open(D.file("in.bin").c_str(), O_RDONLY);
  int Out = ::open(D.file("out.zip").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(In, 0);
  ASSERT_GE(Out, 0);
  uint64_t Copied;
  {
    ZipWriter Z(Out);
    // Known (here deliberately wrong, to show it is not recomputed).
    ASSERT_FALSE(
        static_cast<bool>(Z.beginRecord("a/data/0", Data.size(), 0x12345678u)));
    ASSERT_FALSE(static_cast<bool>(Z.copyFromFile(In, 0, Data.size())));
    EXPECT_EQ(Z.currentCRC(), 0x12345678u);
    ASSERT_FALSE(static_cast<bool>(Z.endRecord()));
    Copied = Z.kernelCopiedBytes();
    // Unknown: computed from the bytes, which then pass through a buffer.
    ASSERT_FALSE(static_cast<bool>(Z.beginRecord("a/data/1", Data.size())));
    ASSERT_FALSE(static_cast<bool>(Z.copyFromFile(In, 0, Data.size())));
    EXPECT_EQ(Z.currentCRC(), crc32Update(0, Data));
    ASSERT_FALSE(static_cast<bool>(Z.endRecord()));
    EXPECT_EQ(Z.kernelCopiedBytes(), Copied);
    ASSERT_FALSE(static_cast<bool>(Z.finish()));
  }
  ::close(In);
  ::close(Out);
  // copy_file_range works between two files of one file system on Linux
  // >= 5.3; the fallback (pread + write) copies nothing kernel-side.
  EXPECT_EQ(Copied, Data.size());
  std::string F = readFile(D.file("out.zip"));
  Expected<ZipArchive> A = ZipArchive::open(arrayRefFromStringRef(F), "out");
  ASSERT_TRUE(static_cast<bool>(A)) << toString(A.takeError());
  ASSERT_EQ(A->entries().size(), 2u);
  EXPECT_EQ(A->entries()[0].CRC, 0x12345678u);
  EXPECT_EQ(A->entries()[1].CRC, crc32Update(0, Data));
  for (const ZipEntry &E : A->entries())
    EXPECT_TRUE(A->data(E) == ArrayRef<uint8_t>(Data)) << E.Name;
}

TEST(ZipWriter, CRCMatchesZlibOnUnalignedPieces) {
  // libdeflate folds 16+ bytes at a time: feed it pieces of every length
  // around its block sizes, continued across calls.
  std::vector<uint8_t> Data = pattern(70000);
  uint32_t Whole = crc32Update(0, Data);
  EXPECT_EQ(Whole, 0x4bff611eu) << "Python zlib.crc32 of the pattern";
  uint32_t Pieces = 0;
  size_t At = 0;
  for (size_t Len = 0; At < Data.size(); ++Len) {
    size_t N = std::min(Len % 300, Data.size() - At);
    Pieces = crc32Update(Pieces, ArrayRef<uint8_t>(Data).slice(At, N));
    At += N;
  }
  EXPECT_EQ(Pieces, Whole);
}

TEST(TorchExport, ComputedStorageIsStreamedAndCRCed) {
  TempDir D;
  std::vector<uint8_t> Want = pattern((3 << 20) + 5);
  uint64_t Largest = 0;
  auto S = Storage::computed(
      "0", DType::Float32, Want.size(),
      [&](uint64_t Off, MutableArrayRef<uint8_t> Out) {
        Largest = std::max<uint64_t>(Largest, Out.size());
        std::copy_n(Want.begin() + Off, Out.size(), Out.begin());
        return Error::success();
      });
  // 3 MiB + 5 bytes is not a whole number of floats: view it as uint8.
  S->setElementType(DType::UInt8);
  auto T = std::make_shared<TensorValue>();
  T->setDType(DType::UInt8);
  T->setShape({int64_t(Want.size())});
  T->setStorage(S);
  auto Root = std::make_shared<DictValue>(true);
  Root->set("w", T);
  Checkpoint C(Root);
  ASSERT_FALSE(static_cast<bool>(exportTorch(C, D.file("ck.pth"))));
  // Produced a chunk at a time, never whole.
  EXPECT_GT(Largest, 0u);
  EXPECT_LE(Largest, 1u << 20);
  std::string F = readFile(D.file("ck.pth"));
  Expected<ZipArchive> A = ZipArchive::open(arrayRefFromStringRef(F), "ck");
  ASSERT_TRUE(static_cast<bool>(A)) << toString(A.takeError());
  const ZipEntry *E = A->find("data/0");
  ASSERT_NE(E, nullptr);
  EXPECT_TRUE(A->data(*E) == ArrayRef<uint8_t>(Want));
  EXPECT_EQ(E->CRC, crc32Update(0, Want));
}

/// A checkpoint of one tensor mapped from a file, as the torch importer
/// makes it, with the CRC its directory is said to give.
struct MappedCheckpoint {
  std::unique_ptr<Checkpoint> C;
  StorageRef S;
  MappedCheckpoint(StringRef Path, size_t Bytes, uint32_t CRC) {
    writeFile(Path, pattern(Bytes));
    Expected<std::shared_ptr<SourceFile>> Src = SourceFile::open(Path);
    EXPECT_TRUE(static_cast<bool>(Src));
    S = Storage::mapped("0", DType::UInt8, *Src, 0, Bytes);
    S->setSourceRecord("in/data/0", CRC);
    auto T = std::make_shared<TensorValue>();
    T->setDType(DType::UInt8);
    T->setShape({int64_t(Bytes)});
    T->setStorage(S);
    auto Root = std::make_shared<DictValue>(true);
    Root->set("w", T);
    C = std::make_unique<Checkpoint>(Root);
  }
};

TEST(TorchExport, UnchangedRecordKeepsTheInputCRC) {
  TempDir D;
  MappedCheckpoint M(D.file("in.bin"), 4096, 0xCAFEF00Du);
  ASSERT_FALSE(static_cast<bool>(exportTorch(*M.C, D.file("out.pth"))));
  std::string F = readFile(D.file("out.pth"));
  Expected<ZipArchive> A = ZipArchive::open(arrayRefFromStringRef(F), "out");
  ASSERT_TRUE(static_cast<bool>(A)) << toString(A.takeError());
  // Reused as the input said, not recomputed.
  EXPECT_EQ(A->find("data/0")->CRC, 0xCAFEF00Du);

  // Checking it finds the mismatch, names the record, writes nothing.
  TorchExportOptions Opts;
  Opts.VerifyInputCRC = true;
  Error E = exportTorch(*M.C, D.file("checked.pth"), Opts);
  ASSERT_TRUE(static_cast<bool>(E));
  std::string Msg = toString(std::move(E));
  EXPECT_NE(Msg.find("record 'in/data/0' is corrupt"), std::string::npos)
      << Msg;
  EXPECT_FALSE(sys::fs::exists(D.file("checked.pth")));

  // Changed bytes have no source CRC any more: computed.
  std::vector<uint8_t> New(4096, 7);
  M.S->setOwnedBytes(New);
  EXPECT_FALSE(M.S->sourceCRC());
  EXPECT_TRUE(M.S->sourceRecord().empty());
  ASSERT_FALSE(static_cast<bool>(exportTorch(*M.C, D.file("owned.pth"))));
  F = readFile(D.file("owned.pth"));
  A = ZipArchive::open(arrayRefFromStringRef(F), "owned");
  ASSERT_TRUE(static_cast<bool>(A)) << toString(A.takeError());
  EXPECT_EQ(A->find("data/0")->CRC, crc32Update(0, New));
}

TEST(TorchExport, VerifyInputCRCAcceptsAGoodRecord) {
  TempDir D;
  MappedCheckpoint M(D.file("in.bin"), (2 << 20) + 3,
                     crc32Update(0, pattern((2 << 20) + 3)));
  TorchExportOptions Opts;
  Opts.VerifyInputCRC = true;
  Error E = exportTorch(*M.C, D.file("out.pth"), Opts);
  EXPECT_FALSE(static_cast<bool>(E)) << toString(std::move(E));
  // A CRC of 0 means "not computed" (torch >= 2.6 may write it): nothing
  // is left to check, and that is an error, not a silent success.
  M.S->setSourceRecord("in/data/0", 0);
  E = exportTorch(*M.C, D.file("none.pth"), Opts);
  ASSERT_TRUE(static_cast<bool>(E));
  EXPECT_NE(toString(std::move(E)).find("nothing to check"), std::string::npos);
}

} // namespace
