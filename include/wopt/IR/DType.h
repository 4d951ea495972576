//===- DType.h - Element types of tensors and storages ---------*- C++ -*-===//
//
// Every element type torch can serialize. One table (DTypes.def) is the
// single source of truth for the text-IR spelling, the torch names, the
// safetensors names and the element width.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_IR_DTYPE_H
#define WOPT_IR_DTYPE_H

#include "llvm/ADT/StringRef.h"
#include <cstdint>
#include <optional>

namespace wopt {

enum class DType : uint8_t {
#define WOPT_DTYPE(ENUM, TEXT, BITS, TORCH, STORAGE, SAFETENSORS) ENUM,
#include "wopt/IR/DTypes.def"
};

/// Width of one element in bits: 4 for f4e2m1fn, 6 for the f6 kinds, eight
/// times the byte size otherwise.
unsigned dtypeBits(DType T);
/// Kinds narrower than a byte, packed several to a byte (DTypes.def).
bool isSubByte(DType T);
/// Size of one element in bytes. Sub-byte kinds have none: asserted; code
/// that can meet them sizes with dtypeBytes/dtypeElements or refuses them.
unsigned dtypeSize(DType T);
/// Bytes that N elements of T occupy, a partial last byte counted whole;
/// nullopt on overflow.
std::optional<uint64_t> dtypeBytes(DType T, uint64_t N);
/// The number of elements of T in NumBytes bytes, nullopt when they do not
/// hold a whole number (a 6-bit kind needs a multiple of 3 bytes).
std::optional<uint64_t> dtypeElements(DType T, uint64_t NumBytes);
/// Text-IR spelling: "f32", "bf16", "i64", "bool", "c64", "f8e4m3fn", ...
llvm::StringRef dtypeName(DType T);
std::optional<DType> parseDTypeName(llvm::StringRef Name);
/// torch attribute name: "float32", "bfloat16", "int64", "bool", ...
llvm::StringRef dtypeTorchName(DType T);
std::optional<DType> dtypeFromTorchName(llvm::StringRef Name);
/// Legacy typed storage class ("FloatStorage"); empty when the dtype has none
/// (new dtypes are saved through UntypedStorage + _rebuild_tensor_v3).
llvm::StringRef dtypeStorageName(DType T);
std::optional<DType> dtypeFromStorageName(llvm::StringRef Name);
/// safetensors spelling ("F32"); empty when safetensors has none.
llvm::StringRef dtypeSafetensorsName(DType T);
std::optional<DType> dtypeFromSafetensorsName(llvm::StringRef Name);
bool isFloatingPoint(DType T);
bool isComplex(DType T);

/// IEEE half bits to float, exactly, as c10 (torch) decodes them: a
/// signalling NaN comes out quiet.
float halfBitsToFloat(uint16_t H);
/// bfloat16 bits to float (the upper half of a float).
float bfloat16BitsToFloat(uint16_t B);
/// One element of a real (not complex) dtype at P, in host byte order, as
/// a double: exact for every float type but f8 and for integers up to
/// 2^53. nullopt for complex and 8-bit float types.
std::optional<double> elementAsDouble(DType T, const uint8_t *P);

} // namespace wopt

#endif
