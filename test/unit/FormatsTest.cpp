//===- FormatsTest.cpp - safetensors and .wopt readers and writers --------===//
#include "TempDir.h"
#include "wopt/IR/TextIR.h"
#include "wopt/Serialization/FlatBuffers.h"
#include "wopt/Serialization/Safetensors.h"
#include "wopt/Serialization/Serialization.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "gtest/gtest.h"
#include <cstring>

using namespace wopt;
using namespace llvm;

namespace {

/// A safetensors file: length, header text, data.
std::string safetensorsBytes(StringRef Header, StringRef Data) {
  std::string S(8, '\0');
  support::endian::write64le(&S[0], Header.size());
  return S + Header.str() + Data.str();
}

std::shared_ptr<SourceFile> memFile(StringRef Bytes, StringRef Name) {
  return SourceFile::fromBuffer(MemoryBuffer::getMemBufferCopy(Bytes, Name),
                                Name);
}

Expected<std::unique_ptr<Checkpoint>> importST(StringRef Header,
                                               StringRef Data) {
  return importSafetensors(
      memFile(safetensorsBytes(Header, Data), "t.safetensors"));
}

/// The error text of importing (Header, Data); "" when it imports.
std::string importError(StringRef Header, StringRef Data) {
  auto C = importST(Header, Data);
  if (C)
    return "";
  return toString(C.takeError());
}

std::string floats(std::initializer_list<float> Fs) {
  std::string S(Fs.size() * 4, '\0');
  size_t I = 0;
  for (float F : Fs)
    std::memcpy(&S[4 * I++], &F, 4);
  return S;
}

ValuePtr tensor(DType T, ArrayRef<int64_t> Shape, StorageRef S,
                int64_t Offset = 0, ArrayRef<int64_t> Strides = {}) {
  auto V = std::make_shared<TensorValue>();
  V->setDType(T);
  if (Strides.empty())
    V->setShape(Shape);
  else
    V->setShapeAndStrides(Shape, Strides);
  V->setStorageOffset(Offset);
  V->setStorage(std::move(S));
  return V;
}

StorageRef ownedFloats(std::initializer_list<float> Fs, StringRef Key = "0") {
  std::string B = floats(Fs);
  return Storage::owned(Key.str(), DType::Float32,
                        std::vector<uint8_t>(B.begin(), B.end()));
}

std::string text(const Checkpoint &C) {
  std::string S;
  raw_string_ostream OS(S);
  PrintOptions P;
  P.InlineDataLimit = 1 << 20;
  P.PrintProvenance = true;
  printCheckpoint(C, OS, P);
  return S;
}

using test::TempDir;

ArrayRef<uint8_t> tensorBytes(const Value *V) {
  auto *T = cast<TensorValue>(V);
  return T->storage()->bytes();
}

//===----------------------------------------------------------------------===//
// safetensors import
//===----------------------------------------------------------------------===//

TEST(SafetensorsImport, MapsTensorsInHeaderOrder) {
  // Header order deliberately differs from data order: the header's is the
  // state dict's (wopt's writer keeps it there while it orders the data by
  // element width).
  std::string H = R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                  R"("__metadata__":{"format":"pt"},)"
                  R"("a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})";
  std::string Data = std::string("\x07\0\0\0\0\0\0\0", 8) + floats({1, 2});
  std::string File = safetensorsBytes(H, Data);
  auto Source = memFile(File, "t.safetensors");
  auto C = importSafetensors(Source);
  ASSERT_TRUE(bool(C)) << toString(C.takeError());
  EXPECT_EQ((*C)->Format, "safetensors");
  DictValue *SD = (*C)->stateDict();
  ASSERT_TRUE(SD);
  ASSERT_EQ(SD->size(), 2u);
  EXPECT_EQ(*SD->entries()[0].keyString(), "b");
  EXPECT_EQ(*SD->entries()[1].keyString(), "a");
  auto *B = cast<TensorValue>(SD->entries()[0].Val.get());
  EXPECT_EQ(B->dtype(), DType::Float32);
  EXPECT_EQ(B->shape().vec(), std::vector<int64_t>{2});
  // Zero copy: the storage points into the source mapping.
  EXPECT_EQ(B->storage()->kind(), Storage::DataKind::Mapped);
  EXPECT_EQ(B->storage()->bytes().data(),
            Source->bytes().data() + 8 + H.size() + 8);
  EXPECT_EQ(B->provenance().originalName(), "b");
  auto *Meta = dyn_cast_or_null<DictValue>(SD->state().get());
  ASSERT_TRUE(Meta);
  EXPECT_EQ(cast<StringValue>(Meta->lookup("format"))->value(), "pt");
}

TEST(SafetensorsImport, EmptyTensorsAndScalars) {
  std::string H = R"({"z":{"dtype":"F16","shape":[0,3],"data_offsets":[0,0]},)"
                  R"("s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";
  auto C = importST(H, floats({5}));
  ASSERT_TRUE(bool(C)) << toString(C.takeError());
  DictValue *SD = (*C)->stateDict();
  ASSERT_EQ(SD->size(), 2u);
  EXPECT_EQ(*SD->entries()[0].keyString(), "z");
  EXPECT_TRUE(cast<TensorValue>(SD->lookup("s"))->shape().empty());
}

struct BadCase {
  const char *Header;
  std::string Data;
  const char *Error;
};

TEST(SafetensorsImport, ValidationRules) {
  std::string F8 = floats({1, 2});
  const BadCase Cases[] = {
      {"[1, 2]", "", "header is not a JSON object"},
      {"{\"a\": ", "", "header is not valid JSON"},
      {"{\"a\":{\"dtype\":\"F32\"}}", "", "tensor 'a': missing 'shape'"},
      {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", F8.substr(0, 4),
       "tensor 'a': missing 'dtype'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", F8.substr(0, 4),
       "tensor 'a': missing 'data_offsets'"},
      {"{\"a\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}",
       F8.substr(0, 4), "tensor 'a': unknown dtype 'F99'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
       F8.substr(0, 4), "tensor 'a': 'shape' holds something other than"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
       F8.substr(0, 4), "tensor 'a': 'shape' holds something other than"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}",
       F8.substr(0, 4), "tensor 'a': data_offsets [4, 0] end before"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
       F8.substr(0, 4), "'data_offsets' is not a pair"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", F8,
       "tensor 'a': data_offsets [0, 8] hold 8 bytes but f32[3] needs 12"},
      {"{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
       "\"data_offsets\":[0,8]}}",
       F8, "overflows 64 bits"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", F8,
       "tensor 'a': data_offsets [4, 8] leave a gap of 4 bytes after the "
       "header"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       F8, "tensor 'b': data_offsets [4, 8] overlap tensor 'a'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", F8,
       "4 trailing bytes after the last tensor's data"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", F8,
       "run past the end of the file"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       F8, "tensor 'a': name appears twice in the header"},
      {"{\"__metadata__\":{\"k\":1}}", "",
       "__metadata__ entry 'k' is not a string"},
      {"{\"__metadata__\":[]}", "", "__metadata__ is not a JSON object"},
      {"{\"a\":7}", "", "tensor 'a': header entry is not a JSON object"},
      {"{\"a\":\"\xff\"}", "", "header is not valid UTF-8 (byte 14)"},
  };
  for (const BadCase &C : Cases) {
    std::string Err = importError(C.Header, C.Data);
    EXPECT_NE(Err.find(C.Error), std::string::npos)
        << "header " << C.Header << "\n got: " << Err;
    EXPECT_EQ(Err.rfind("t.safetensors: ", 0), 0u) << Err;
    EXPECT_EQ(Err.find('\n'), std::string::npos) << Err;
  }
}

TEST(SafetensorsImport, HeaderLengthChecks) {
  std::string Huge(8, '\0');
  support::endian::write64le(&Huge[0], 100000001);
  auto E1 = importSafetensors(memFile(Huge + "{}", "h.safetensors"));
  ASSERT_FALSE(bool(E1));
  EXPECT_NE(toString(E1.takeError()).find("exceeds the limit"),
            std::string::npos);
  std::string Short(8, '\0');
  support::endian::write64le(&Short[0], 100);
  auto E2 = importSafetensors(memFile(Short + "{}", "h.safetensors"));
  ASSERT_FALSE(bool(E2));
  EXPECT_NE(toString(E2.takeError()).find("runs past the end of the file"),
            std::string::npos);
  auto E3 = importSafetensors(memFile("abc", "h.safetensors"));
  ASSERT_FALSE(bool(E3));
  EXPECT_NE(toString(E3.takeError()).find("too small"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// safetensors export
//===----------------------------------------------------------------------===//

std::unique_ptr<Checkpoint>
stateDict(std::vector<std::pair<std::string, ValuePtr>> Entries) {
  auto D = std::make_shared<DictValue>(true);
  for (auto &[K, V] : Entries)
    D->entries().push_back({makeStr(K), V});
  return std::make_unique<Checkpoint>(D);
}

TEST(SafetensorsExport, RoundTripsAndGathersViews) {
  TempDir Dir;
  StorageRef S = ownedFloats({1, 2, 3, 4, 5, 6});
  // w: 2x3 contiguous; wt: its transpose (non-contiguous); tail: offset view.
  auto C = stateDict({{"w", tensor(DType::Float32, {2, 3}, S)},
                      {"wt", tensor(DType::Float32, {3, 2}, S, 0, {1, 3})},
                      {"tail", tensor(DType::Float32, {2}, S, 4)}});
  std::string Out = Dir.file("o.safetensors");
  ASSERT_FALSE(bool(exportSafetensors(*C, Out)));
  auto R = importFile(Out);
  ASSERT_TRUE(bool(R)) << toString(R.takeError());
  DictValue *SD = (*R)->stateDict();
  ASSERT_EQ(SD->size(), 3u);
  EXPECT_EQ(*SD->entries()[1].keyString(), "wt");
  std::string WT = floats({1, 4, 2, 5, 3, 6});
  EXPECT_EQ(toStringRef(tensorBytes(SD->lookup("wt"))), WT);
  EXPECT_EQ(toStringRef(tensorBytes(SD->lookup("tail"))), floats({5, 6}));
  EXPECT_EQ(cast<TensorValue>(SD->lookup("wt"))->shape().vec(),
            (std::vector<int64_t>{3, 2}));
  // Header padded to a multiple of 8.
  auto Buf = MemoryBuffer::getFile(Out);
  ASSERT_TRUE(bool(Buf));
  EXPECT_EQ(support::endian::read64le((*Buf)->getBufferStart()) % 8, 0u);
  EXPECT_EQ(Dir.count(), 1u);
}

TEST(SafetensorsExport, AliasesRecordedInMetadata) {
  TempDir Dir;
  StorageRef S = ownedFloats({1, 2});
  auto C = stateDict({{"emb", tensor(DType::Float32, {2}, S)},
                      {"head", tensor(DType::Float32, {2}, S)}});
  std::string Out = Dir.file("o.safetensors");
  ASSERT_FALSE(bool(exportSafetensors(*C, Out)));
  // Written once, the record in __metadata__ ...
  SafetensorsImportOptions Raw;
  Raw.RestoreAliases = false;
  auto Source = SourceFile::open(Out);
  ASSERT_TRUE(bool(Source));
  auto R = importSafetensors(*Source, Raw);
  ASSERT_TRUE(bool(R)) << toString(R.takeError());
  DictValue *SD = (*R)->stateDict();
  ASSERT_EQ(SD->size(), 1u);
  auto *Meta = dyn_cast_or_null<DictValue>(SD->state().get());
  ASSERT_TRUE(Meta);
  EXPECT_EQ(cast<StringValue>(Meta->lookup("head"))->value(), "emb");
  EXPECT_EQ(cast<StringValue>(Meta->lookup("format"))->value(), "pt");
  // ... and read back as the tie it was.
  auto Tied = importFile(Out);
  ASSERT_TRUE(bool(Tied)) << toString(Tied.takeError());
  SD = (*Tied)->stateDict();
  ASSERT_EQ(SD->size(), 2u);
  EXPECT_EQ(*SD->entries()[1].keyString(), "head");
  EXPECT_EQ(cast<TensorValue>(SD->entries()[0].Val.get())->storage(),
            cast<TensorValue>(SD->entries()[1].Val.get())->storage());
  Meta = dyn_cast_or_null<DictValue>(SD->state().get());
  ASSERT_TRUE(Meta);
  EXPECT_EQ(Meta->size(), 1u); // "format" only
}

TEST(SafetensorsExport, RefusesWhatItCannotWrite) {
  TempDir Dir;
  std::string Out = Dir.file("o.safetensors");
  auto Check = [&](const Checkpoint &C, StringRef Want) {
    Error E = exportSafetensors(C, Out);
    ASSERT_TRUE(bool(E));
    std::string Msg = toString(std::move(E));
    EXPECT_NE(Msg.find(Want), std::string::npos) << Msg;
    EXPECT_EQ(Dir.count(), 0u) << "partial output left behind";
  };
  auto Wrapper = std::make_shared<DictValue>();
  Wrapper->set("model", makeInt(1));
  Check(Checkpoint(Wrapper), "run unwrap first");
  Check(*stateDict({{"w", tensor(DType::Float32, {1}, ownedFloats({1}))},
                    {"step", makeInt(3)}}),
        "state dict entry 'step' is an int, not a tensor");
  Check(*stateDict({{"w", tensor(DType::Float32, {2},
                                 Storage::elided("0", DType::Float32, 8))}}),
        "tensor 'w': tensor data is elided");
  Check(*stateDict({{"q", tensor(DType::QInt8, {1},
                                 Storage::owned("0", DType::QInt8, {1}))}}),
        "tensor 'q': safetensors has no dtype for qi8");
  Check(*stateDict({{"w", tensor(DType::Float32, {4}, ownedFloats({1}))}}),
        "reaches past its storage");
}

TEST(SafetensorsExport, CopiesFromMappedFiles) {
  // Big enough for the copy_file_range path (>= 1 MiB).
  TempDir Dir;
  std::vector<uint8_t> Big(3 << 20);
  for (size_t I = 0; I < Big.size(); ++I)
    Big[I] = uint8_t(I * 7);
  auto C = stateDict({{"big", tensor(DType::UInt8, {int64_t(Big.size())},
                                     Storage::owned("0", DType::UInt8, Big))}});
  std::string First = Dir.file("a.safetensors");
  ASSERT_FALSE(bool(exportSafetensors(*C, First)));
  auto R = importFile(First); // mapped from a.safetensors
  ASSERT_TRUE(bool(R));
  std::string Second = Dir.file("b.safetensors");
  ASSERT_FALSE(bool(exportSafetensors(**R, Second)));
  auto R2 = importFile(Second);
  ASSERT_TRUE(bool(R2));
  EXPECT_EQ(tensorBytes((*R2)->stateDict()->lookup("big")), ArrayRef(Big));
}

//===----------------------------------------------------------------------===//
// .wopt
//===----------------------------------------------------------------------===//

/// Every kind of value, sharing, a view, provenance with history.
std::unique_ptr<Checkpoint> richCheckpoint() {
  StorageRef S = ownedFloats({1, 2, 3, 4}, "0");
  StorageRef Empty = Storage::owned("1", DType::Int64, {});
  auto SD = std::make_shared<DictValue>(true);
  auto W = tensor(DType::Float32, {2, 2}, S);
  auto &Prov = cast<TensorValue>(*W).provenance();
  Prov.File = "in.pth";
  Prov.KeyPath = {"model", "w"};
  Prov.StorageKey = "0";
  Prov.ByteOffset = 4096;
  Prov.addRename("canonicalize-prefix", "module.w", "w");
  Prov.addRewrite("flatten-chunks", "reshaped");
  cast<TensorValue>(*W).setParameter(true);
  cast<TensorValue>(*W).setRequiresGrad(true);
  SD->set("w", W);
  SD->set("wt", tensor(DType::Float32, {2, 2}, S, 0, {1, 2}));
  SD->set("e", tensor(DType::Int64, {0}, Empty));
  auto Meta = std::make_shared<DictValue>(true);
  auto Versions = std::make_shared<DictValue>();
  Versions->set("version", makeInt(1));
  Meta->set("", Versions);
  auto State = std::make_shared<DictValue>();
  State->set("_metadata", Meta);
  SD->setState(State);

  auto Opt = std::make_shared<DictValue>();
  Opt->entries().push_back({makeInt(0), makeFloat(0.5)});
  Opt->entries().push_back({makeInt(-3), makeNone()});
  auto NS = std::make_shared<OpaqueValue>("argparse", "Namespace",
                                          OpaqueValue::Construct::NewObj);
  NS->Args = makeTuple({});
  auto NSState = std::make_shared<DictValue>();
  NSState->set("lr", makeFloat(1e-3));
  NS->State = NSState;
  NS->ListItems.push_back(makeStr("x"));
  NS->DictItems.push_back({makeStr("k"), makeBool(true)});
  auto Root = std::make_shared<DictValue>();
  Root->set("model", SD);
  Root->set("optimizer", Opt);
  Root->set("args", NS);
  Root->set("blob", makeBytes(StringRef("\0\x01\xff", 3)));
  Root->set("big", std::make_shared<BigIntValue>(std::string(9, '\x7f')));
  Root->set("set", std::make_shared<SequenceValue>(
                       Value::Kind::FrozenSet,
                       std::vector<ValuePtr>{makeInt(1), makeInt(2)}));
  Root->set("dtype", std::make_shared<OpaqueValue>(
                         "torch", "float16", OpaqueValue::Construct::Global));
  auto C = std::make_unique<Checkpoint>(Root);
  C->SourcePath = "in.pth";
  C->Format = "torch-zip";
  C->FormatVersion = "3";
  C->RecordPrefix = "in";
  return C;
}

TEST(WoptFormat, RoundTripsTheWholeIR) {
  TempDir Dir;
  auto C = richCheckpoint();
  std::string Out = Dir.file("x.wopt");
  ASSERT_FALSE(bool(exportFlatBuffers(*C, Out)));
  auto R = importFile(Out);
  ASSERT_TRUE(bool(R)) << toString(R.takeError());
  EXPECT_EQ(text(*C), text(**R));
  EXPECT_EQ((*R)->FormatVersion, "3");
  EXPECT_EQ((*R)->RecordPrefix, "in");
  // Sharing survives: w and wt use one storage, mapped 64-byte aligned.
  auto *SD = cast<DictValue>(cast<DictValue>(*(*R)->root()).lookup("model"));
  auto *W = cast<TensorValue>(SD->lookup("w"));
  auto *WT = cast<TensorValue>(SD->lookup("wt"));
  EXPECT_EQ(W->storage(), WT->storage());
  EXPECT_EQ(W->storage()->kind(), Storage::DataKind::Mapped);
  EXPECT_EQ(W->storage()->sourceOffset() % 64, 0u);
  EXPECT_EQ(W->provenance().History.size(), 2u);
  EXPECT_EQ(toStringRef(W->storage()->bytes()), floats({1, 2, 3, 4}));
  // And a second trip from the mapped file gives the same file (the source
  // path is recorded: give it the original's).
  std::string Out2 = Dir.file("y.wopt");
  (*R)->SourcePath = C->SourcePath;
  ASSERT_FALSE(bool(exportFlatBuffers(**R, Out2)));
  auto A = MemoryBuffer::getFile(Out), B = MemoryBuffer::getFile(Out2);
  ASSERT_TRUE(A && B);
  EXPECT_EQ((*A)->getBuffer(), (*B)->getBuffer());
}

TEST(WoptFormat, KeepsSharingAndCycles) {
  // L = [t, t, L] with t one tensor object, and d = {'d': d, 'l': L}.
  TempDir Dir;
  auto T = tensor(DType::Float32, {2},
                  Storage::owned("0", DType::Float32, std::vector<uint8_t>(8)));
  auto L = std::make_shared<SequenceValue>(Value::Kind::List);
  L->elements() = {T, T, L};
  auto D = std::make_shared<DictValue>();
  D->set("d", D);
  D->set("l", L);
  Checkpoint C(D);
  C.Format = "torch-zip";
  C.graph().adoptReachable(D);
  std::string Out = Dir.file("g.wopt");
  ASSERT_FALSE(bool(exportFlatBuffers(C, Out)));
  auto R = importFile(Out);
  ASSERT_TRUE(bool(R)) << toString(R.takeError());
  auto *RD = cast<DictValue>((*R)->root().get());
  EXPECT_EQ(RD->lookup("d"), RD);
  auto *RL = cast<SequenceValue>(RD->lookup("l"));
  ASSERT_EQ(RL->elements().size(), 3u);
  EXPECT_EQ(RL->elements()[0], RL->elements()[1]);
  EXPECT_EQ(RL->elements()[2].get(), RL);
  EXPECT_EQ(text(C), text(**R));
}

TEST(WoptFormat, KeepsElidedStorages) {
  TempDir Dir;
  auto C = stateDict({{"w", tensor(DType::BFloat16, {3},
                                   Storage::elided("0", DType::BFloat16, 6))}});
  std::string Out = Dir.file("x.wopt");
  ASSERT_FALSE(bool(exportFlatBuffers(*C, Out)));
  auto R = importFile(Out);
  ASSERT_TRUE(bool(R)) << toString(R.takeError());
  auto *W = cast<TensorValue>((*R)->stateDict()->lookup("w"));
  EXPECT_FALSE(W->storage()->hasData());
  EXPECT_EQ(W->storage()->numBytes(), 6u);
}

TEST(WoptFormat, BoundsNesting) {
  TempDir Dir;
  ValuePtr V = makeNone();
  for (int I = 0; I < 1500; ++I)
    V = makeList({V});
  Checkpoint C(V);
  // The writer refuses what the reader would: every recursive walk over
  // values relies on the bound.
  std::string Out = Dir.file("deep.wopt");
  Error E = exportFlatBuffers(C, Out);
  ASSERT_TRUE(bool(E));
  EXPECT_NE(toString(std::move(E)).find("nested deeper than 1000 (limit)"),
            std::string::npos);
  EXPECT_FALSE(sys::fs::exists(Out));
}

std::string writeWopt(const TempDir &Dir) {
  std::string Out = Dir.file("good.wopt");
  auto C = richCheckpoint();
  EXPECT_FALSE(bool(exportFlatBuffers(*C, Out)));
  auto Buf = MemoryBuffer::getFile(Out);
  return (*Buf)->getBuffer().str();
}

TEST(WoptFormat, RejectsTruncatedAndForeignFiles) {
  TempDir Dir;
  std::string Good = writeWopt(Dir);
  auto Err = [](StringRef Bytes) {
    auto C = importFlatBuffers(memFile(Bytes, "b.wopt"));
    return C ? std::string() : toString(C.takeError());
  };
  EXPECT_NE(Err("abcdWOPT").find("fails verification"), std::string::npos);
  EXPECT_NE(Err("abcdefgh").find("no WOPT identifier"), std::string::npos);
  EXPECT_NE(Err(StringRef(Good).drop_back(1)).find("runs past the end"),
            std::string::npos);
  EXPECT_NE(Err(StringRef(Good).take_front(40)).find("b.wopt: "),
            std::string::npos);
}

/// Flipping any byte of the flatbuffer part must give an error or a valid
/// checkpoint, never a crash (run under the verifier and semantic checks).
TEST(WoptFormat, SurvivesEveryByteFlip) {
  TempDir Dir;
  std::string Good = writeWopt(Dir);
  uint64_t FBEnd = 0;
  {
    auto C = importFlatBuffers(memFile(Good, "g.wopt"));
    ASSERT_TRUE(bool(C)) << toString(C.takeError());
    for (const StorageRef &S : (*C)->storages())
      if (S->hasData() && S->numBytes())
        FBEnd = S->sourceOffset();
  }
  ASSERT_GT(FBEnd, 0u);
  for (uint64_t I = 0; I < FBEnd; ++I) {
    for (uint8_t X : {0x01, 0x80, 0xff}) {
      std::string Bad = Good;
      Bad[I] = char(Bad[I] ^ X);
      auto C = importFlatBuffers(memFile(Bad, "f.wopt"));
      if (!C)
        consumeError(C.takeError());
    }
  }
}

} // namespace
