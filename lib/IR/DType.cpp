//===- DType.cpp - Element type tables ------------------------------------===//
#include "wopt/IR/DType.h"
#include "llvm/ADT/bit.h"
#include <algorithm>
#include <cassert>
#include <cstring>

using namespace wopt;
using llvm::StringRef;

namespace {
struct DTypeRow {
  DType Type;
  StringRef Text;
  unsigned Bits;
  StringRef Torch;
  StringRef Storage;
  StringRef Safetensors;
};

const DTypeRow Rows[] = {
#define WOPT_DTYPE(ENUM, TEXT, BITS, TORCH, STORAGE, ST)                       \
  {DType::ENUM, TEXT, BITS, TORCH, STORAGE, ST},
#include "wopt/IR/DTypes.def"
};

const DTypeRow &row(DType T) { return Rows[static_cast<unsigned>(T)]; }

/// The row whose column Field equals Name; empty names never match.
std::optional<DType> findBy(StringRef DTypeRow::*Field, StringRef Name) {
  if (Name.empty())
    return std::nullopt;
  for (const DTypeRow &R : Rows)
    if (R.*Field == Name)
      return R.Type;
  return std::nullopt;
}
} // namespace

unsigned wopt::dtypeBits(DType T) { return row(T).Bits; }
bool wopt::isSubByte(DType T) { return row(T).Bits < 8; }
unsigned wopt::dtypeSize(DType T) {
  assert(!isSubByte(T) && "sub-byte kinds have no byte size");
  return std::max(row(T).Bits / 8, 1u);
}
std::optional<uint64_t> wopt::dtypeBytes(DType T, uint64_t N) {
  unsigned W = dtypeBits(T);
  uint64_t Bytes;
  // Whole groups of 8 elements take W bytes; N * W bits could overflow
  // where the bytes do not.
  if (__builtin_mul_overflow(N / 8, uint64_t(W), &Bytes) ||
      __builtin_add_overflow(Bytes, (N % 8 * W + 7) / 8, &Bytes))
    return std::nullopt;
  return Bytes;
}
std::optional<uint64_t> wopt::dtypeElements(DType T, uint64_t NumBytes) {
  unsigned W = dtypeBits(T);
  if (W % 8 == 0) {
    if (NumBytes % (W / 8))
      return std::nullopt;
    return NumBytes / (W / 8);
  }
  // NumBytes * 8 may overflow; elements are whole when NumBytes * 8 % W == 0.
  uint64_t Q = NumBytes / W, R = NumBytes % W, N;
  if (R * 8 % W || __builtin_mul_overflow(Q, uint64_t(8), &N) ||
      __builtin_add_overflow(N, R * 8 / W, &N))
    return std::nullopt;
  return N;
}
StringRef wopt::dtypeName(DType T) { return row(T).Text; }
std::optional<DType> wopt::parseDTypeName(StringRef N) {
  return findBy(&DTypeRow::Text, N);
}
StringRef wopt::dtypeTorchName(DType T) { return row(T).Torch; }
std::optional<DType> wopt::dtypeFromTorchName(StringRef N) {
  // torch also exposes aliases: torch.float is float32, torch.half float16...
  static const std::pair<StringRef, DType> Aliases[] = {
      {"float", DType::Float32},    {"double", DType::Float64},
      {"half", DType::Float16},     {"long", DType::Int64},
      {"int", DType::Int32},        {"short", DType::Int16},
      {"cfloat", DType::Complex64}, {"cdouble", DType::Complex128},
      {"chalf", DType::Complex32},
  };
  for (const auto &A : Aliases)
    if (A.first == N)
      return A.second;
  return findBy(&DTypeRow::Torch, N);
}
StringRef wopt::dtypeStorageName(DType T) { return row(T).Storage; }
std::optional<DType> wopt::dtypeFromStorageName(StringRef N) {
  return findBy(&DTypeRow::Storage, N);
}
StringRef wopt::dtypeSafetensorsName(DType T) { return row(T).Safetensors; }
std::optional<DType> wopt::dtypeFromSafetensorsName(StringRef N) {
  return findBy(&DTypeRow::Safetensors, N);
}

bool wopt::isFloatingPoint(DType T) {
  switch (T) {
  case DType::Float16:
  case DType::Float32:
  case DType::Float64:
  case DType::BFloat16:
  case DType::Float8E5M2:
  case DType::Float8E4M3FN:
  case DType::Float8E5M2FNUZ:
  case DType::Float8E4M3FNUZ:
  case DType::Float8E8M0FNU:
  case DType::Float4E2M1FN:
  case DType::Float6E2M3FN:
  case DType::Float6E3M2FN:
    return true;
  default:
    return false;
  }
}

bool wopt::isComplex(DType T) {
  return T == DType::Complex32 || T == DType::Complex64 ||
         T == DType::Complex128;
}

float wopt::halfBitsToFloat(uint16_t H) {
  // c10's fp16_ieee_to_fp32_value: the float multiply quiets a signalling
  // NaN as torch's conversion does.
  const uint32_t W = uint32_t(H) << 16;
  const uint32_t Sign = W & 0x80000000u;
  const uint32_t TwoW = W + W;
  const uint32_t ExpOffset = 0xE0u << 23;
  const float ExpScale = llvm::bit_cast<float>(0x7800000u);
  const float Normalized =
      llvm::bit_cast<float>((TwoW >> 4) + ExpOffset) * ExpScale;
  const uint32_t MagicMask = 126u << 23;
  const float Denormalized =
      llvm::bit_cast<float>((TwoW >> 17) | MagicMask) - 0.5f;
  const uint32_t DenormCutoff = 1u << 27;
  return llvm::bit_cast<float>(
      Sign | (TwoW < DenormCutoff ? llvm::bit_cast<uint32_t>(Denormalized)
                                  : llvm::bit_cast<uint32_t>(Normalized)));
}

float wopt::bfloat16BitsToFloat(uint16_t B) {
  return llvm::bit_cast<float>(uint32_t(B) << 16);
}

namespace {
template <typename T> double loadAs(const uint8_t *P) {
  T V;
  std::memcpy(&V, P, sizeof(T));
  return double(V);
}
} // namespace

std::optional<double> wopt::elementAsDouble(DType T, const uint8_t *P) {
  switch (T) {
  case DType::UInt8:
  case DType::QUInt8:
    return loadAs<uint8_t>(P);
  case DType::Int8:
  case DType::QInt8:
    return loadAs<int8_t>(P);
  case DType::Bool:
    return *P ? 1.0 : 0.0;
  case DType::Int16:
    return loadAs<int16_t>(P);
  case DType::UInt16:
    return loadAs<uint16_t>(P);
  case DType::Int32:
  case DType::QInt32:
    return loadAs<int32_t>(P);
  case DType::UInt32:
    return loadAs<uint32_t>(P);
  case DType::Int64:
    return loadAs<int64_t>(P);
  case DType::UInt64:
    return loadAs<uint64_t>(P);
  case DType::Float16: {
    uint16_t H;
    std::memcpy(&H, P, 2);
    return halfBitsToFloat(H);
  }
  case DType::BFloat16: {
    uint16_t B;
    std::memcpy(&B, P, 2);
    return bfloat16BitsToFloat(B);
  }
  case DType::Float32:
    return loadAs<float>(P);
  case DType::Float64:
    return loadAs<double>(P);
  default:
    return std::nullopt;
  }
}
