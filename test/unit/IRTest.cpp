//===- IRTest.cpp - Text IR printer/parser, verifier, float bits ----------===//

#include "wopt/IR/Checkpoint.h"
#include "wopt/IR/FloatBits.h"
#include "wopt/IR/TextIR.h"
#include "wopt/IR/Verifier.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"
#include "gtest/gtest.h"
#include <cmath>
#include <cstring>
#include <random>

using namespace wopt;
using namespace llvm;

namespace {

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

std::string print(const Checkpoint &C, PrintOptions Opts = {}) {
  std::string S;
  raw_string_ostream OS(S);
  printCheckpoint(C, OS, Opts);
  return S;
}

PrintOptions withData() {
  PrintOptions O;
  O.InlineDataLimit = UINT64_MAX;
  return O;
}

std::unique_ptr<Checkpoint> parse(StringRef Text, StringRef Name = "t.wir") {
  Expected<std::unique_ptr<Checkpoint>> C =
      parseCheckpoint(MemoryBufferRef(Text, Name));
  if (!C) {
    ADD_FAILURE() << "parse failed:\n" << toString(C.takeError());
    return nullptr;
  }
  return std::move(*C);
}

/// The full diagnostic text of a parse that must fail.
std::string parseError(StringRef Text) {
  Expected<std::unique_ptr<Checkpoint>> C =
      parseCheckpoint(MemoryBufferRef(Text, "bad.wir"));
  if (C) {
    ADD_FAILURE() << "parse unexpectedly succeeded:\n" << Text.str();
    return "";
  }
  return toString(C.takeError());
}

std::string verifyError(const Checkpoint &C) {
  Error E = verifyCheckpoint(C);
  if (!E) {
    ADD_FAILURE() << "verifier unexpectedly accepted:\n" << print(C);
    return "";
  }
  return toString(std::move(E));
}

template <typename T> std::vector<uint8_t> toBytes(ArrayRef<T> Elts) {
  std::vector<uint8_t> B(Elts.size() * sizeof(T));
  if (!B.empty())
    memcpy(B.data(), Elts.data(), B.size());
  return B;
}

std::shared_ptr<TensorValue> tensor(DType T, ArrayRef<int64_t> Shape,
                                    StorageRef S) {
  auto Tensor = std::make_shared<TensorValue>();
  Tensor->setDType(T);
  Tensor->setShape(Shape);
  Tensor->setStorage(std::move(S));
  return Tensor;
}

/// A tensor that owns an elided storage of exactly its size.
std::shared_ptr<TensorValue> elidedTensor(DType T, ArrayRef<int64_t> Shape) {
  auto Tensor = tensor(T, Shape, nullptr);
  Tensor->setStorage(Storage::elided("", T, *Tensor->requiredStorageBytes()));
  return Tensor;
}

ValuePtr makeDict(std::vector<std::pair<ValuePtr, ValuePtr>> Entries,
                  bool Ordered = false) {
  auto D = std::make_shared<DictValue>(Ordered);
  for (auto &E : Entries)
    D->entries().push_back({E.first, E.second});
  return D;
}

/// print -> parse -> print must be the identity.
void expectRoundTrip(const Checkpoint &C, PrintOptions Opts = {}) {
  std::string First = print(C, Opts);
  std::unique_ptr<Checkpoint> Back = parse(First);
  ASSERT_TRUE(Back);
  EXPECT_EQ(First, print(*Back, Opts));
}

/// A tree with every kind of value, every tensor attribute and sharing.
std::unique_ptr<Checkpoint> buildEverything() {
  std::vector<float> Shared = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  StorageRef S0 =
      Storage::owned("7", DType::Float32, toBytes(ArrayRef<float>(Shared)));
  auto A = tensor(DType::Float32, {3, 4}, S0);
  A->setRequiresGrad(true);
  A->setParameter(true);
  auto B = tensor(DType::Float32, {4, 3}, S0);
  B->setShapeAndStrides({4, 3}, {1, 4}); // a transpose view
  auto C = tensor(DType::Float32, {2}, S0);
  C->setStorageOffset(10);
  C->provenance().File = "in.pth";
  C->provenance().KeyPath = {"teacher", "backbone.x"};
  C->provenance().StorageKey = "3";
  C->provenance().ByteOffset = 4096;
  C->provenance().addRename("canonicalize-prefix", "module.x", "x");
  C->provenance().addRewrite("scale", "multiplied by \"2\"");
  C->BackwardHooks = std::make_shared<DictValue>(/*Ordered=*/true);
  C->Metadata = makeDict({{makeStr("k"), makeInt(1)}});
  C->ParamState = makeTuple({makeNone()});

  std::vector<int64_t> Ints = {-1, 0, 1, INT64_MAX};
  auto I = tensor(
      DType::Int64, {4},
      Storage::owned("", DType::Int64, toBytes(ArrayRef<int64_t>(Ints))));
  auto Untyped = tensor(DType::UInt16, {2},
                        Storage::elided("", DType::UInt8, /*NumBytes=*/4));
  auto Scalar = elidedTensor(DType::Int64, {});
  auto Empty = elidedTensor(DType::BFloat16, {0, 5});

  auto Meta =
      makeDict({{makeStr(""), makeDict({{makeStr("version"), makeInt(1)}})}},
               /*Ordered=*/true);
  auto SD = std::make_shared<DictValue>(/*Ordered=*/true);
  SD->entries().push_back({makeStr("a"), A});
  SD->entries().push_back({makeStr("b.t"), B});
  SD->entries().push_back({makeStr("c view"), C});
  SD->entries().push_back({makeStr("ints"), I});
  SD->entries().push_back({makeStr("u16"), Untyped});
  SD->entries().push_back({makeStr("num_batches_tracked"), Scalar});
  SD->entries().push_back({makeStr("empty"), Empty});
  SD->setState(makeDict({{makeStr("_metadata"), Meta}}));

  auto NS = std::make_shared<OpaqueValue>("argparse", "Namespace",
                                          OpaqueValue::Construct::NewObj);
  NS->Args = makeTuple({});
  NS->State = makeDict({{makeStr("lr"), makeFloat(0.1)}});
  auto Dtype = std::make_shared<OpaqueValue>("torch", "float16",
                                             OpaqueValue::Construct::Global);
  auto Deque = std::make_shared<OpaqueValue>("collections", "deque",
                                             OpaqueValue::Construct::Reduce);
  Deque->Args = makeTuple({makeList({})});
  Deque->ListItems = {makeInt(1), makeStr("two")};
  Deque->DictItems.push_back({makeInt(3), makeBool(false)});
  auto Ex =
      std::make_shared<OpaqueValue>("m", "C", OpaqueValue::Construct::NewObjEx);
  Ex->Args = makeTuple({makeInt(1)});
  Ex->Kwargs = makeDict({{makeStr("x"), makeFloat(-0.0)}});

  std::string LongBytes = {'\x00', '\x7f', '\x80', '\xff', '"', '\\'};
  auto Root = makeDict({
      {makeStr("teacher"), SD},
      {makeStr("iteration"), makeInt(-42)},
      {makeStr("big"),
       std::make_shared<BigIntValue>(std::string(9, '\x11'))}, // canonical
      {makeStr("odd big"),
       std::make_shared<BigIntValue>(std::string("\x05\x00", 2))},
      {makeStr("floats"),
       makeList({makeFloat(0.1), makeFloat(1e300), makeFloat(5e-324),
                 makeFloat(-0.0), makeFloat(NAN), makeFloat(-INFINITY),
                 makeFloat(100.0), makeFloat(1e20)})},
      {makeStr("str\n\"esc\"\t\\ \x01 é"), makeStr("")},
      {makeStr("bytes"), makeBytes(LongBytes)},
      {makeStr("seqs"),
       makeList({makeTuple({makeInt(1)}), makeTuple({}),
                 std::make_shared<SequenceValue>(Value::Kind::Set,
                                                 std::vector<ValuePtr>{
                                                     makeInt(1), makeInt(2)}),
                 std::make_shared<SequenceValue>(Value::Kind::FrozenSet),
                 makeList({makeDict({{makeStr("nested"), makeNone()}})})})},
      {makeInt(7), makeStr("int key")},
      {makeTuple({makeInt(1), makeStr("x")}), makeBool(true)},
      {makeStr("ns"), NS},
      {makeStr("dtype"), Dtype},
      {makeStr("deque"), Deque},
      {makeStr("ex"), Ex},
      {makeStr("tensors in a list"),
       makeList({elidedTensor(DType::Float16, {2}),
                 elidedTensor(DType::Complex64, {1})})},
      {makeStr("plain dict with state"), [] {
         auto D = std::make_shared<DictValue>();
         D->setState(makeList({}));
         return D;
       }()},
  });
  auto Ckpt = std::make_unique<Checkpoint>(Root);
  Ckpt->Format = "torch-zip";
  Ckpt->FormatVersion = "3";
  Ckpt->RecordPrefix = "archive";
  return Ckpt;
}

//===----------------------------------------------------------------------===//
// Round trips
//===----------------------------------------------------------------------===//

TEST(TextIR, RoundTripEveryKind) {
  std::unique_ptr<Checkpoint> C = buildEverything();
  ASSERT_FALSE(verifyCheckpoint(*C)) << "fixture must be valid";
  expectRoundTrip(*C);
  expectRoundTrip(*C, withData());
  PrintOptions Prov;
  Prov.PrintProvenance = true;
  expectRoundTrip(*C, Prov);
  Prov.InlineDataLimit = 16;
  expectRoundTrip(*C, Prov);
}

TEST(TextIR, ParsedTreeMatchesTheBuiltOne) {
  std::unique_ptr<Checkpoint> Built = buildEverything();
  PrintOptions Opts = withData();
  Opts.PrintProvenance = true;
  std::unique_ptr<Checkpoint> C = parse(print(*Built, Opts));
  ASSERT_TRUE(C);
  EXPECT_EQ(C->Format, "torch-zip");
  EXPECT_EQ(C->FormatVersion, "3");
  EXPECT_EQ(C->RecordPrefix, "archive");
  EXPECT_FALSE(verifyCheckpoint(*C));

  auto *Root = cast<DictValue>(C->root().get());
  EXPECT_FALSE(Root->isOrdered());
  auto *SD = cast<DictValue>(Root->lookup("teacher"));
  EXPECT_TRUE(SD->isOrdered());
  ASSERT_TRUE(SD->state());
  EXPECT_TRUE(cast<DictValue>(SD->state().get())->lookup("_metadata"));

  auto *A = cast<TensorValue>(SD->lookup("a"));
  auto *B = cast<TensorValue>(SD->lookup("b.t"));
  auto *CV = cast<TensorValue>(SD->lookup("c view"));
  EXPECT_TRUE(A->requiresGrad());
  EXPECT_TRUE(A->isParameter());
  EXPECT_FALSE(B->requiresGrad());
  // Sharing survives: one storage object, with the data inline.
  EXPECT_EQ(A->storage(), B->storage());
  EXPECT_EQ(A->storage(), CV->storage());
  EXPECT_EQ(A->storage()->numBytes(), 48u);
  EXPECT_EQ(A->storage()->kind(), Storage::DataKind::Owned);
  EXPECT_EQ(B->strides(), ArrayRef<int64_t>({1, 4}));
  EXPECT_EQ(CV->storageOffset(), 10);
  float Tenth;
  memcpy(&Tenth, A->storage()->bytes().data() + 40, 4);
  EXPECT_EQ(Tenth, 11.0f);

  const Provenance &P = CV->provenance();
  EXPECT_EQ(P.File, "in.pth");
  EXPECT_EQ(P.KeyPath, (std::vector<std::string>{"teacher", "backbone.x"}));
  EXPECT_EQ(P.StorageKey, "3");
  EXPECT_EQ(P.ByteOffset, 4096u);
  ASSERT_EQ(P.History.size(), 2u);
  EXPECT_EQ(P.History[0].From, "module.x");
  EXPECT_EQ(P.History[1].Note, "multiplied by \"2\"");
  ASSERT_TRUE(CV->BackwardHooks);
  EXPECT_TRUE(cast<DictValue>(CV->BackwardHooks.get())->isOrdered());
  EXPECT_TRUE(isa<SequenceValue>(CV->ParamState.get()));

  auto *U = cast<TensorValue>(SD->lookup("u16"));
  EXPECT_EQ(U->dtype(), DType::UInt16);
  EXPECT_EQ(U->storage()->elementType(), DType::UInt8);
  EXPECT_FALSE(U->storage()->hasData());

  auto *Big = cast<BigIntValue>(Root->lookup("big"));
  EXPECT_EQ(Big->bytes(), std::string(9, '\x11'));
  EXPECT_EQ(cast<BigIntValue>(Root->lookup("odd big"))->bytes(),
            StringRef("\x05\x00", 2));

  auto *Floats = cast<SequenceValue>(Root->lookup("floats"));
  EXPECT_EQ(cast<FloatValue>(Floats->elements()[0].get())->value(), 0.1);
  EXPECT_EQ(cast<FloatValue>(Floats->elements()[2].get())->value(), 5e-324);
  EXPECT_TRUE(
      std::signbit(cast<FloatValue>(Floats->elements()[3].get())->value()));
  EXPECT_TRUE(
      std::isnan(cast<FloatValue>(Floats->elements()[4].get())->value()));

  // Int and tuple keys come back as such.
  const DictEntry &IntKey = Root->entries()[8];
  ASSERT_TRUE(isa<IntValue>(IntKey.Key.get()));
  EXPECT_EQ(cast<IntValue>(IntKey.Key.get())->value(), 7);
  EXPECT_EQ(Root->entries()[9].Key->kind(), Value::Kind::Tuple);
  EXPECT_EQ(Root->entries()[5].keyString(), "str\n\"esc\"\t\\ \x01 é");

  auto *Deque = cast<OpaqueValue>(Root->lookup("deque"));
  EXPECT_EQ(Deque->construct(), OpaqueValue::Construct::Reduce);
  EXPECT_EQ(Deque->ListItems.size(), 2u);
  EXPECT_EQ(Deque->DictItems.size(), 1u);
  auto *Ex = cast<OpaqueValue>(Root->lookup("ex"));
  EXPECT_EQ(Ex->construct(), OpaqueValue::Construct::NewObjEx);
  EXPECT_TRUE(Ex->Kwargs);
  auto *Dt = cast<OpaqueValue>(Root->lookup("dtype"));
  EXPECT_EQ(Dt->construct(), OpaqueValue::Construct::Global);
  EXPECT_FALSE(Dt->Args);
  EXPECT_EQ(cast<StringValue>(Root->lookup("bytes"))->value(),
            std::string({'\x00', '\x7f', '\x80', '\xff', '"', '\\'}));
  EXPECT_TRUE(cast<DictValue>(Root->lookup("plain dict with state"))->state());
}

TEST(TextIR, StateDictSpelling) {
  StringRef Text = "checkpoint {\n"
                   "  tensor \"text.embeddings.position_ids\" : i64[1, 77]\n"
                   "  tensor \"bn.num_batches_tracked\" : i64[]\n"
                   "  tensor \"w\" : f32[2, 2] = [1.0, 2.0, 3.0, 4.0]\n"
                   "}\n";
  std::unique_ptr<Checkpoint> C = parse(Text);
  ASSERT_TRUE(C);
  EXPECT_EQ(print(*C, withData()), Text);
  ASSERT_TRUE(C->stateDict());
  auto *W = cast<TensorValue>(C->stateDict()->lookup("w"));
  ASSERT_EQ(W->storage()->numBytes(), 16u);
  float Vals[4];
  memcpy(Vals, W->storage()->bytes().data(), 16);
  EXPECT_EQ(Vals[3], 4.0f);
  auto *P =
      cast<TensorValue>(C->stateDict()->lookup("text.embeddings.position_ids"));
  EXPECT_FALSE(P->storage()->hasData());
  EXPECT_EQ(P->storage()->numBytes(), 77u * 8);
  // Data elided by default.
  EXPECT_EQ(print(*C).find("= ["), std::string::npos);
}

TEST(TextIR, StoragesGetDistinctKeys) {
  std::unique_ptr<Checkpoint> C =
      parse("storage %s : f32 x 4\n"
            "checkpoint {\n"
            "  tensor \"a\" : f32[2]\n"
            "  tensor \"b\" : f32[4] in %s\n"
            "  tensor \"c\" : f32[2] offset 2 in %s\n"
            "}\n");
  ASSERT_TRUE(C);
  std::vector<StorageRef> S = C->storages();
  ASSERT_EQ(S.size(), 2u);
  EXPECT_EQ(S[0]->key(), "0");
  EXPECT_EQ(S[1]->key(), "1");
}

TEST(TextIR, NonDictRoots) {
  for (StringRef Text :
       {"checkpoint [1, 2, (3,)]\n", "checkpoint none\n",
        "checkpoint tensor f32[2]\n", "checkpoint odict {}\n",
        "checkpoint opaque \"torch\" \"Size\" reduce args ([2, 3],)\n",
        "checkpoint -17\n", "checkpoint \"just a string\"\n"}) {
    std::unique_ptr<Checkpoint> C = parse(Text);
    ASSERT_TRUE(C) << Text.str();
    EXPECT_EQ(print(*C), Text);
  }
  Checkpoint NoRoot;
  EXPECT_EQ(print(NoRoot), "checkpoint none\n");
}

TEST(TextIR, HandWrittenFormsNormalize) {
  // Commas between entries, comments, int data for floats, bools as 0/1.
  std::unique_ptr<Checkpoint> C = parse("// leading comment\n"
                                        "checkpoint { // trailing\n"
                                        "  \"a\": 1, \"b\": [1,2,],\n"
                                        "  tensor \"f\" : f32[2] = [1, -2]\n"
                                        "  tensor \"m\" : bool[2] = [0, 1]\n"
                                        "}\n");
  ASSERT_TRUE(C);
  EXPECT_EQ(print(*C, withData()), "checkpoint {\n"
                                   "  \"a\": 1\n"
                                   "  \"b\": [1, 2]\n"
                                   "  tensor \"f\" : f32[2] = [1.0, -2.0]\n"
                                   "  tensor \"m\" : bool[2] = [false, true]\n"
                                   "}\n");
}

TEST(TextIR, BigIntsAndIntBoundaries) {
  std::unique_ptr<Checkpoint> C =
      parse("checkpoint [9223372036854775807, -9223372036854775808, "
            "9223372036854775808, -9223372036854775809, "
            "340282366920938463463374607431768211456]\n");
  ASSERT_TRUE(C);
  auto &E = cast<SequenceValue>(C->root().get())->elements();
  EXPECT_EQ(cast<IntValue>(E[0].get())->value(), INT64_MAX);
  EXPECT_EQ(cast<IntValue>(E[1].get())->value(), INT64_MIN);
  // 2^63 needs a ninth byte for the sign: 00..80 00.
  EXPECT_EQ(cast<BigIntValue>(E[2].get())->bytes(),
            StringRef("\0\0\0\0\0\0\0\x80\0", 9));
  EXPECT_EQ(cast<BigIntValue>(E[3].get())->bytes(),
            StringRef("\xff\xff\xff\xff\xff\xff\xff\x7f\xff", 9));
  EXPECT_EQ(cast<BigIntValue>(E[4].get())->bytes().size(), 17u);
  expectRoundTrip(*C);
}

TEST(TextIR, InlineDataLimit) {
  std::vector<int32_t> Small = {1, 2}, Large(100, 7);
  auto Root =
      makeDict({{makeStr("small"),
                 tensor(DType::Int32, {2},
                        Storage::owned("", DType::Int32,
                                       toBytes(ArrayRef<int32_t>(Small))))},
                {makeStr("large"),
                 tensor(DType::Int32, {100},
                        Storage::owned("", DType::Int32,
                                       toBytes(ArrayRef<int32_t>(Large))))}});
  Checkpoint C(Root);
  PrintOptions Opts;
  Opts.InlineDataLimit = 8;
  std::string Text = print(C, Opts);
  EXPECT_NE(Text.find("tensor \"small\" : i32[2] = [1, 2]"), std::string::npos);
  EXPECT_NE(Text.find("tensor \"large\" : i32[100]\n"), std::string::npos);
  EXPECT_EQ(print(C).find('='), std::string::npos);
}

TEST(TextIR, MappedStorageDataPrints) {
  std::vector<uint8_t> File = {0xAA, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40};
  auto Source = SourceFile::fromBuffer(
      MemoryBuffer::getMemBufferCopy(
          StringRef(reinterpret_cast<const char *>(File.data()), File.size()),
          "mem"),
      "mem");
  auto T = tensor(DType::Float32, {2},
                  Storage::mapped("0", DType::Float32, Source, 1, 8));
  Checkpoint C(makeDict({{makeStr("t"), T}}));
  EXPECT_EQ(print(C, withData()),
            "checkpoint {\n  tensor \"t\" : f32[2] = [1.0, 2.0]\n}\n");
}

/// Every element must come back bit for bit, literal or hex.
void expectDataRoundTrip(DType T, const std::vector<uint8_t> &Bytes) {
  uint64_t N = Bytes.size() / dtypeSize(T);
  auto Tensor = tensor(T, {(int64_t)N}, Storage::owned("", T, Bytes));
  Checkpoint C(makeDict({{makeStr("t"), Tensor}}));
  std::string Text = print(C, withData());
  std::unique_ptr<Checkpoint> Back = parse(Text);
  ASSERT_TRUE(Back);
  auto *BT =
      cast<TensorValue>(cast<DictValue>(Back->root().get())->lookup("t"));
  ArrayRef<uint8_t> Got = BT->storage()->bytes();
  ASSERT_EQ(Got.size(), Bytes.size());
  for (size_t I = 0; I < Bytes.size(); ++I)
    ASSERT_EQ(Got[I], Bytes[I]) << dtypeName(T).str() << " byte " << I;
  EXPECT_EQ(print(*Back, withData()), Text);
}

std::vector<uint8_t> all16BitPatterns(bool SkipNaN, bool IsBF16) {
  std::vector<uint8_t> B;
  for (uint32_t I = 0; I < 65536; ++I) {
    double D = IsBF16 ? bfloat16BitsToDouble(I) : halfBitsToDouble(I);
    if (SkipNaN && std::isnan(D))
      continue;
    B.push_back(I & 0xff);
    B.push_back(I >> 8);
  }
  return B;
}

TEST(TextIR, F16DataRoundTripsEveryPattern) {
  // All finite values and infinities print as literals...
  std::vector<uint8_t> Finite = all16BitPatterns(/*SkipNaN=*/true, false);
  expectDataRoundTrip(DType::Float16, Finite);
  auto T = tensor(DType::Float16, {(int64_t)Finite.size() / 2},
                  Storage::owned("", DType::Float16, Finite));
  EXPECT_EQ(
      print(Checkpoint(makeDict({{makeStr("t"), T}})), withData()).find("x\""),
      std::string::npos);
  // ...and NaN payloads fall back to hex, still exact.
  expectDataRoundTrip(DType::Float16, all16BitPatterns(false, false));
}

TEST(TextIR, BF16DataRoundTripsEveryPattern) {
  expectDataRoundTrip(DType::BFloat16, all16BitPatterns(true, true));
  expectDataRoundTrip(DType::BFloat16, all16BitPatterns(false, true));
}

TEST(TextIR, F32AndF64DataRoundTrip) {
  std::mt19937_64 Rng(1234);
  std::vector<uint32_t> F32;
  std::vector<uint64_t> F64;
  for (int I = 0; I < 20000; ++I) {
    uint32_t B32 = (uint32_t)Rng();
    uint64_t B64 = Rng();
    if (!std::isnan(bit_cast<float>(B32)))
      F32.push_back(B32);
    if (!std::isnan(bit_cast<double>(B64)))
      F64.push_back(B64);
  }
  // Edge values: zeros, denormals, extremes, infinities, canonical NaN.
  for (uint32_t B : {0x00000000u, 0x80000000u, 0x00000001u, 0x007fffffu,
                     0x7f7fffffu, 0x7f800000u, 0xff800000u, 0x7fc00000u})
    F32.push_back(B);
  for (uint64_t B : {0ull, 1ull << 63, 1ull, 0x7fefffffffffffffull,
                     0x7ff0000000000000ull, 0x7ff8000000000000ull})
    F64.push_back(B);
  expectDataRoundTrip(DType::Float32, toBytes(ArrayRef<uint32_t>(F32)));
  expectDataRoundTrip(DType::Float64, toBytes(ArrayRef<uint64_t>(F64)));
  // A signalling NaN has no literal: hex, exact.
  F32.push_back(0x7f800001u);
  expectDataRoundTrip(DType::Float32, toBytes(ArrayRef<uint32_t>(F32)));
}

TEST(TextIR, IntegerAndOtherDataRoundTrip) {
  std::vector<uint8_t> Bytes;
  std::mt19937 Rng(7);
  for (int I = 0; I < 4096; ++I)
    Bytes.push_back((uint8_t)Rng());
  for (DType T :
       {DType::UInt8, DType::Int8, DType::Int16, DType::UInt16, DType::Int32,
        DType::UInt32, DType::Int64, DType::UInt64, DType::QInt8, DType::QUInt8,
        DType::QInt32, DType::Complex64, DType::Complex128, DType::Complex32,
        DType::Float8E4M3FN, DType::Float8E5M2, DType::Bool})
    expectDataRoundTrip(T, Bytes); // bool: bytes > 1 go hex
  std::vector<uint8_t> Bools = {0, 1, 1, 0};
  expectDataRoundTrip(DType::Bool, Bools);
}

TEST(TextIR, HexDataForTypesWithoutLiterals) {
  std::unique_ptr<Checkpoint> C =
      parse("checkpoint {\n  tensor \"c\" : c64[1] = x\"0000803f00000040\"\n"
            "}\n");
  ASSERT_TRUE(C);
  auto *T = cast<TensorValue>(cast<DictValue>(C->root().get())->lookup("c"));
  EXPECT_EQ(T->storage()->bytes().size(), 8u);
  EXPECT_EQ(T->storage()->bytes()[3], 0x3f);
  expectRoundTrip(*C, withData());
}

TEST(TextIR, LooksLikeTextIR) {
  EXPECT_TRUE(looksLikeTextIR("checkpoint {}"));
  EXPECT_TRUE(looksLikeTextIR("  // RUN: wopt %s\n\n// x\nstorage %0"));
  EXPECT_TRUE(looksLikeTextIR("checkpoint"));
  EXPECT_FALSE(looksLikeTextIR("checkpointed {}"));
  EXPECT_FALSE(looksLikeTextIR("PK\x03\x04"));
  EXPECT_FALSE(looksLikeTextIR("\x80\x02}q\x00"));
  EXPECT_FALSE(looksLikeTextIR(""));
  EXPECT_FALSE(looksLikeTextIR("// only a comment"));
}

//===----------------------------------------------------------------------===//
// Parse errors
//===----------------------------------------------------------------------===//

/// Checks "bad.wir:Line:Col: error: Msg" and that a caret line follows.
void expectParseError(StringRef Text, unsigned Line, unsigned Col,
                      StringRef Msg) {
  std::string Err = parseError(Text);
  std::string Prefix =
      ("bad.wir:" + Twine(Line) + ":" + Twine(Col) + ": error: ").str();
  EXPECT_EQ(Err.rfind(Prefix, 0), 0u) << Err;
  EXPECT_NE(Err.find(Msg), std::string::npos) << Err;
  // Source line, then the caret under column Col.
  SmallVector<StringRef, 3> Lines;
  StringRef(Err).split(Lines, '\n');
  ASSERT_EQ(Lines.size(), 3u) << Err;
  EXPECT_EQ(Lines[2], std::string(Col - 1, ' ') + "^") << Err;
}

TEST(TextIRErrors, DuplicateKey) {
  expectParseError("checkpoint {\n  \"a\": 1\n  \"a\": 2\n}\n", 3, 3,
                   "duplicate key \"a\"");
  expectParseError("checkpoint {\n  tensor \"w\" : f32[1]\n"
                   "  tensor \"w\" : f32[1]\n}\n",
                   3, 10, "duplicate key \"w\"");
  expectParseError("checkpoint {1: 1, 1: 2}", 1, 19, "duplicate key 1");
}

TEST(TextIRErrors, DataCountMismatch) {
  expectParseError("checkpoint {\n  tensor \"w\" : f32[2, 2] = [1.0, 2.0]\n}",
                   2, 28, "expected 4 elements of data, found 2");
  expectParseError("storage %0 : i8 x 3 = [1, 2]\ncheckpoint {}", 1, 23,
                   "expected 3 elements of data, found 2");
  expectParseError("checkpoint tensor c64[1] = x\"00\"", 1, 28,
                   "hex data has 1 bytes but the storage has 8");
}

TEST(TextIRErrors, BadElements) {
  expectParseError("checkpoint tensor i8[1] = [200]", 1, 28,
                   "integer 200 is out of range for 'i8'");
  expectParseError("checkpoint tensor u8[1] = [-1]", 1, 28,
                   "out of range for 'u8'");
  expectParseError("checkpoint tensor f32[1] = [\"x\"]", 1, 29,
                   "expected a floating-point number");
  expectParseError("checkpoint tensor c64[1] = [1.0]", 1, 29,
                   "has no literal form");
  expectParseError("checkpoint tensor bool[1] = [2]", 1, 30,
                   "expected true or false");
}

TEST(TextIRErrors, Storages) {
  expectParseError("checkpoint {\n  tensor \"w\" : f32[2] in %1\n}", 2, 26,
                   "use of undeclared storage '%1'");
  expectParseError("storage %0 : f32 x 2\n"
                   "checkpoint {\n  tensor \"w\" : f32[3] in %0\n}",
                   3, 16, "tensor extent 12 bytes exceeds its storage of 8");
  expectParseError("storage %0 : f32 x 2\nstorage %0 : f32 x 2\ncheckpoint {}",
                   2, 9, "storage '%0' is already declared");
  expectParseError("storage %0 : f32 x 4 \ncheckpoint tensor f32[1] in %0 = "
                   "[1.0]",
                   2, 32, "belongs on its 'storage' declaration");
  expectParseError("storage %0 : f33 x 4\ncheckpoint {}", 1, 14,
                   "expected an element type");
}

TEST(TextIRErrors, TensorSyntax) {
  expectParseError("checkpoint tensor q32[1]", 1, 19,
                   "unknown element type 'q32'");
  expectParseError("checkpoint tensor f32[-1]", 1, 23,
                   "a dimension must not be negative");
  expectParseError("checkpoint tensor f32[2, 2] strides [1]", 1, 29,
                   "tensor has 2 dimensions but 1 strides");
  expectParseError("checkpoint tensor f32[2] param param", 1, 32,
                   "tensor attribute 'param' given twice");
  expectParseError("checkpoint tensor f32[9223372036854775807, 2]", 1, 19,
                   "tensor extent overflows 64 bits");
}

TEST(TextIRErrors, Lexical) {
  expectParseError("checkpoint {\n  \"abc: 1\n}", 2, 3, "invalid token");
  expectParseError("checkpoint \"\\q\"", 1, 13, "unknown escape '\\q'");
  expectParseError("checkpoint \"\\x4\"", 1, 13,
                   "\\x must be followed by two hex digits");
  expectParseError("checkpoint 12abc", 1, 12, "invalid token");
  expectParseError("checkpoint ?", 1, 12, "expected a value");
}

TEST(TextIRErrors, Structure) {
  expectParseError("checkpoint (1)", 1, 13, "a 1-tuple needs a trailing comma");
  expectParseError("checkpoint {}\n{}", 2, 1,
                   "expected end of file after the checkpoint");
  expectParseError("checkpoint {\n  \"a\" 1\n}", 2, 7, "expected ':'");
  expectParseError("checkpoint {\n  \"a\": 1\n", 3, 1,
                   "expected '}' before end of file");
  expectParseError("chekpoint {}", 1, 1, "expected 'checkpoint'");
  expectParseError("checkpoint [1 2]", 1, 15, "expected ',' or closing");
  expectParseError("checkpoint attributes {colour = \"red\"} {}", 1, 24,
                   "unknown checkpoint attribute 'colour'");
  expectParseError("checkpoint opaque \"m\"", 1, 22, "expected a string");
  expectParseError("checkpoint tensor f32[1] loc(\"f\" history [step])", 1, 47,
                   "expected a string");
}

//===----------------------------------------------------------------------===//
// Verifier
//===----------------------------------------------------------------------===//

/// {"teacher": {"backbone.x": T}}
Checkpoint wrap(ValuePtr T) {
  return Checkpoint(makeDict(
      {{makeStr("teacher"), makeDict({{makeStr("backbone.x"), T}}, true)}}));
}

TEST(Verifier, AcceptsValidTrees) {
  EXPECT_FALSE(verifyCheckpoint(*buildEverything()));
  EXPECT_FALSE(verifyCheckpoint(*parse("checkpoint {}")));
}

TEST(Verifier, ExtentBeyondStorage) {
  auto T =
      tensor(DType::Float32, {256}, Storage::elided("", DType::Float32, 1024));
  T->setStorageOffset(768);
  EXPECT_EQ(verifyError(wrap(T)), "teacher/backbone.x: tensor extent 4096 "
                                  "bytes exceeds its storage of 1024 bytes");
}

TEST(Verifier, MissingStorage) {
  auto T = tensor(DType::Float32, {2}, nullptr);
  EXPECT_EQ(verifyError(wrap(T)), "teacher/backbone.x: tensor has no storage");
  // The text form keeps the defect visible and parseable.
  Checkpoint C = wrap(T);
  std::string Text = print(C);
  EXPECT_NE(Text.find("f32[2] no_storage"), std::string::npos);
  std::unique_ptr<Checkpoint> Back = parse(Text);
  ASSERT_TRUE(Back);
  EXPECT_EQ(print(*Back), Text);
}

TEST(Verifier, DuplicateKeys) {
  auto D = std::make_shared<DictValue>();
  D->entries().push_back({makeStr("a"), makeInt(1)});
  D->entries().push_back({makeStr("a"), makeInt(2)});
  EXPECT_EQ(verifyError(Checkpoint(makeDict({{makeStr("meta"), D}}))),
            "meta: duplicate key \"a\"");
  auto Root = std::make_shared<DictValue>();
  Root->entries().push_back({makeInt(3), makeInt(1)});
  Root->entries().push_back({makeInt(3), makeInt(2)});
  EXPECT_EQ(verifyError(Checkpoint(Root)), "<root>: duplicate key 3");
}

TEST(Verifier, NegativeDimsStridesOffset) {
  auto T = tensor(DType::Float32, {2}, Storage::elided("", DType::Float32, 8));
  T->setShapeAndStrides({2, -1}, {1, 1});
  EXPECT_EQ(verifyError(wrap(T)),
            "teacher/backbone.x: tensor dimension 1 is negative (-1)");
  T->setShapeAndStrides({2}, {-1});
  EXPECT_EQ(verifyError(wrap(T)),
            "teacher/backbone.x: tensor stride 0 is negative (-1)");
  T->setShape({2});
  T->setStorageOffset(-3);
  EXPECT_EQ(verifyError(wrap(T)),
            "teacher/backbone.x: tensor storage offset is negative (-3)");
}

TEST(Verifier, OverflowingExtent) {
  auto T = tensor(DType::Float32, {1}, Storage::elided("", DType::Float32, 8));
  T->setShapeAndStrides({INT64_MAX / 2, 4}, {4, 1});
  EXPECT_EQ(verifyError(wrap(T)),
            "teacher/backbone.x: tensor extent overflows 64 bits "
            "(f32[4611686018427387903, 4])");
}

TEST(Verifier, DTypeAndStorageDisagree) {
  auto T = tensor(DType::Float32, {2}, Storage::elided("", DType::Int64, 16));
  EXPECT_EQ(verifyError(wrap(T)),
            "teacher/backbone.x: tensor of type f32 views a storage of i64 "
            "elements");
  auto U = tensor(DType::Float32, {1}, Storage::elided("", DType::Float32, 6));
  EXPECT_EQ(verifyError(wrap(U)),
            "teacher/backbone.x: storage of 6 bytes is not a whole number of "
            "f32 elements");
  // An untyped (u8) storage may back any dtype.
  auto V = tensor(DType::BFloat16, {2}, Storage::elided("", DType::UInt8, 4));
  EXPECT_FALSE(verifyCheckpoint(wrap(V)));
}

TEST(Verifier, PathsThroughListsAndOpaques) {
  auto Bad =
      tensor(DType::Float32, {4}, Storage::elided("", DType::Float32, 4));
  Checkpoint L(makeDict({{makeStr("ts"), makeList({makeInt(0), Bad})}}));
  EXPECT_EQ(verifyError(L), "ts/1: tensor extent 16 bytes exceeds its "
                            "storage of 4 bytes");
  auto O =
      std::make_shared<OpaqueValue>("m", "Buf", OpaqueValue::Construct::NewObj);
  O->State = makeDict({{makeStr("arr"), Bad}});
  Checkpoint C(makeDict({{makeStr("hub"), O}}));
  EXPECT_EQ(verifyError(C), "hub/<state>/arr: tensor extent 16 bytes exceeds "
                            "its storage of 4 bytes");
  Checkpoint IntKey(makeDict({{makeInt(5), Bad}}));
  EXPECT_EQ(verifyError(IntKey), "5: tensor extent 16 bytes exceeds its "
                                 "storage of 4 bytes");
}

TEST(Verifier, NoRoot) {
  EXPECT_EQ(verifyError(Checkpoint()), "checkpoint has no root value");
}

//===----------------------------------------------------------------------===//
// f16 / bf16 bit conversions, checked against LLVM's APFloat
//===----------------------------------------------------------------------===//

double apWiden(const fltSemantics &Sem, uint16_t Bits) {
  APFloat F(Sem, APInt(16, Bits));
  bool LosesInfo;
  F.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &LosesInfo);
  return F.convertToDouble();
}

uint16_t apNarrow(const fltSemantics &Sem, double D) {
  APFloat F(D);
  bool LosesInfo;
  F.convert(Sem, APFloat::rmNearestTiesToEven, &LosesInfo);
  return (uint16_t)F.bitcastToAPInt().getZExtValue();
}

void checkFormat(const fltSemantics &Sem, double (*Widen)(uint16_t),
                 uint16_t (*Narrow)(double)) {
  for (uint32_t I = 0; I < 65536; ++I) {
    double D = Widen((uint16_t)I);
    double Ref = apWiden(Sem, (uint16_t)I);
    if (std::isnan(Ref)) {
      ASSERT_TRUE(std::isnan(D)) << I;
      ASSERT_TRUE(std::isnan(Widen(Narrow(D)))); // NaN stays NaN (quieted)
      continue;
    }
    ASSERT_EQ(bit_cast<uint64_t>(D), bit_cast<uint64_t>(Ref)) << I;
    ASSERT_EQ(Narrow(D), I) << I; // exact values narrow to themselves
  }
  // Midpoints between neighbours (ties), and just either side of them.
  for (uint32_t I = 0; I < 0x7c00 - 1; ++I) {
    double Lo = Widen((uint16_t)I), Hi = Widen((uint16_t)(I + 1));
    if (!std::isfinite(Lo) || !std::isfinite(Hi))
      continue;
    double Mid = (Lo + Hi) / 2;
    for (double D :
         {Mid, std::nextafter(Mid, 0.0), std::nextafter(Mid, 1e9), -Mid})
      ASSERT_EQ(Narrow(D), apNarrow(Sem, D)) << D;
  }
  std::mt19937_64 Rng(99);
  for (int I = 0; I < 200000; ++I) {
    double D = bit_cast<double>(Rng());
    if (std::isnan(D))
      continue;
    ASSERT_EQ(Narrow(D), apNarrow(Sem, D)) << D;
  }
  for (double D : {0.0, -0.0, 1e-300, -1e-300, 5e-324, 1e300, -1e300,
                   (double)INFINITY, -(double)INFINITY, 65504.0, 65520.0,
                   65519.99, 3.3895313892515355e38, 3.4e38})
    EXPECT_EQ(Narrow(D), apNarrow(Sem, D)) << D;
}

TEST(FloatBits, HalfMatchesAPFloat) {
  checkFormat(APFloat::IEEEhalf(), halfBitsToDouble, doubleToHalfBits);
  EXPECT_EQ(doubleToHalfBits(1.0), 0x3c00);
  EXPECT_EQ(doubleToHalfBits(65520.0), 0x7c00); // rounds up to infinity
  EXPECT_EQ(doubleToHalfBits(5.960464477539063e-08), 0x0001);   // min subnormal
  EXPECT_EQ(doubleToHalfBits(2.98023223876953125e-08), 0x0000); // tie to even
  EXPECT_EQ(halfBitsToDouble(0x7bff), 65504.0);
  EXPECT_EQ(doubleToHalfBits(NAN) & 0x7e00, 0x7e00);
}

TEST(FloatBits, BFloat16MatchesAPFloat) {
  checkFormat(APFloat::BFloat(), bfloat16BitsToDouble, doubleToBFloat16Bits);
  EXPECT_EQ(doubleToBFloat16Bits(1.0), 0x3f80);
  EXPECT_EQ(doubleToBFloat16Bits(-2.0), 0xc000);
  EXPECT_EQ(bfloat16BitsToDouble(0x7f7f), 3.3895313892515355e38);
}

} // namespace
