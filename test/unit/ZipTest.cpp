//===- ZipTest.cpp - The stored-entry zip reader on hand-built bytes
//-------===//
#include "wopt/Serialization/ZipReader.h"
#include "gtest/gtest.h"
#include <string>
#include <vector>

using namespace wopt;

namespace {

/// "" on success, else the message (the error is consumed either way).
template <typename T> std::string msg(llvm::Expected<T> &E) {
  return E ? "" : llvm::toString(E.takeError());
}
template <typename T> std::string msg(llvm::Expected<T> &&E) { return msg(E); }
inline std::string msg(llvm::Error E) {
  return E ? llvm::toString(std::move(E)) : "";
}

void put16(std::string &S, uint16_t V) {
  S.push_back(char(V));
  S.push_back(char(V >> 8));
}
void put32(std::string &S, uint32_t V) {
  put16(S, uint16_t(V));
  put16(S, uint16_t(V >> 16));
}

struct Rec {
  std::string Name, Data;
  uint16_t Method = 0;
};

/// A minimal classic (non-zip64) archive of stored records.
std::string makeZip(const std::vector<Rec> &Recs) {
  std::string Z, CD;
  for (const Rec &R : Recs) {
    uint32_t Off = Z.size();
    put32(Z, 0x04034b50);
    put16(Z, 20);
    put16(Z, 0);
    put16(Z, R.Method);
    put32(Z, 0);
    put32(Z, 0);
    put32(Z, R.Data.size());
    put32(Z, R.Data.size());
    put16(Z, R.Name.size());
    put16(Z, 0);
    Z += R.Name + R.Data;
    put32(CD, 0x02014b50);
    put16(CD, 20);
    put16(CD, 20);
    put16(CD, 0);
    put16(CD, R.Method);
    put32(CD, 0);
    put32(CD, 0);
    put32(CD, R.Data.size());
    put32(CD, R.Data.size());
    put16(CD, R.Name.size());
    put32(CD, 0); // extra, comment
    put32(CD, 0); // disk, internal attrs
    put32(CD, 0); // external attrs
    put32(CD, Off);
    CD += R.Name;
  }
  uint32_t CDOff = Z.size();
  Z += CD;
  put32(Z, 0x06054b50);
  put32(Z, 0);
  put16(Z, Recs.size());
  put16(Z, Recs.size());
  put32(Z, CD.size());
  put32(Z, CDOff);
  put16(Z, 0);
  return Z;
}

llvm::ArrayRef<uint8_t> bytes(const std::string &S) {
  return {reinterpret_cast<const uint8_t *>(S.data()), S.size()};
}

TEST(ZipTest, ReadsStoredRecordsUnderPrefix) {
  std::string Z = makeZip({{"ck/data.pkl", "abc"}, {"ck/data/0", "0123"}});
  auto A = ZipArchive::open(bytes(Z), "t.pth");
  ASSERT_EQ(msg(A), "");
  EXPECT_EQ(A->prefix(), "ck");
  const ZipEntry *E = A->find("data/0");
  ASSERT_NE(E, nullptr);
  EXPECT_EQ(E->Size, 4u);
  auto D = A->data(*E);
  EXPECT_EQ(std::string(D.begin(), D.end()), "0123");
  EXPECT_EQ(A->find("data/1"), nullptr);
  EXPECT_EQ(msg(A->checkStored("t.pth")), "");
  EXPECT_TRUE(looksLikeZip(bytes(Z)));
  EXPECT_FALSE(isTorchScriptZip(bytes(Z)));
}

TEST(ZipTest, RecognizesTorchScript) {
  std::string Z = makeZip({{"m/constants.pkl", "x"}, {"m/data.pkl", "y"}});
  EXPECT_TRUE(isTorchScriptZip(bytes(Z)));
}

TEST(ZipTest, RefusesCompressed) {
  std::string Z = makeZip({{"a/data.pkl", "xyz", 8}});
  auto A = ZipArchive::open(bytes(Z), "t.pth");
  ASSERT_EQ(msg(A), "");
  EXPECT_EQ(msg(A->checkStored("t.pth")),
            "t.pth: zip: entry 'a/data.pkl' is compressed (method 8); only "
            "stored entries are supported");
}

TEST(ZipTest, EveryTruncationFailsCleanly) {
  std::string Z = makeZip({{"a/data.pkl", "abc"}, {"a/data/0", "0123"}});
  for (size_t N = 0; N < Z.size(); ++N) {
    auto A = ZipArchive::open(bytes(Z.substr(0, N)), "t.pth");
    EXPECT_FALSE(bool(A)) << N;
    if (!A)
      llvm::consumeError(A.takeError());
  }
}

TEST(ZipTest, RefusesRecordPastEnd) {
  std::string Z = makeZip({{"a/data.pkl", "abc"}});
  // Central size fields of the only entry: offset 30 + 13 + 3 + 20.
  size_t CD = 30 + 10 + 3;
  Z[CD + 20] = Z[CD + 24] = char(0x7f);
  auto A = ZipArchive::open(bytes(Z), "t.pth");
  EXPECT_NE(msg(A), "");
}

TEST(ZipTest, RefusesOverlap) {
  std::string Z = makeZip({{"a/data.pkl", "abc"}, {"a/data/0", "0123"}});
  // Make both central entries point at the first local header.
  size_t CD1 = 30 + 10 + 3 + 30 + 8 + 4;
  size_t CD2 = CD1 + 46 + 10;
  Z[CD2 + 42] = Z[CD1 + 42];
  Z[CD2 + 28] = 10; // and name the same length so the header name check
  auto A = ZipArchive::open(bytes(Z), "t.pth");
  EXPECT_NE(msg(A), "");
}

} // namespace
