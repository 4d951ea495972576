//===- FloatBits.h - Half and bfloat16 bit conversions ----------*- C++ -*-===//
//
// Exact conversions between double and the 16-bit float formats torch stores
// (IEEE binary16 "f16" and bfloat16 "bf16"). Every 16-bit value is exactly a
// double, so widening is exact; narrowing rounds to nearest, ties to even,
// straight from the double so no intermediate rounding step can move a value
// that sits on a tie. The text IR uses these to print tensor data that reads
// back bit for bit; passes that rewrite 16-bit data may use them too.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_IR_FLOATBITS_H
#define WOPT_IR_FLOATBITS_H

#include "llvm/ADT/bit.h"
#include <cmath>
#include <cstdint>

namespace wopt {
namespace detail {

/// A small binary float format: ExpBits exponent bits, MantBits stored
/// mantissa bits, one sign bit, 16 bits in all.
template <unsigned ExpBits, unsigned MantBits> struct SmallFloat {
  static_assert(1 + ExpBits + MantBits == 16, "16-bit formats only");
  static constexpr int Bias = (1 << (ExpBits - 1)) - 1;
  static constexpr uint16_t ExpMask = ((1u << ExpBits) - 1) << MantBits;
  static constexpr uint16_t MantMask = (1u << MantBits) - 1;

  static double toDouble(uint16_t Bits) {
    double Sign = (Bits & 0x8000) ? -1.0 : 1.0;
    unsigned Exp = (Bits & ExpMask) >> MantBits;
    unsigned Mant = Bits & MantMask;
    if (Exp == (ExpMask >> MantBits)) {
      if (Mant == 0)
        return Sign * HUGE_VAL;
      // Keep the payload in the top mantissa bits of the double, as
      // hardware widening does; the printer only relies on canonical NaNs.
      uint64_t D = (Bits & 0x8000 ? (1ull << 63) : 0) | (0x7ffull << 52) |
                   ((uint64_t)Mant << (52 - MantBits));
      return llvm::bit_cast<double>(D);
    }
    if (Exp == 0) // subnormal: Mant units of the smallest step
      return Sign * std::ldexp((double)Mant, 1 - Bias - (int)MantBits);
    return Sign * std::ldexp((double)(Mant | (1u << MantBits)),
                             (int)Exp - Bias - (int)MantBits);
  }

  /// Rounds D to nearest, ties to even.
  static uint16_t fromDouble(double D) {
    uint64_t B = llvm::bit_cast<uint64_t>(D);
    uint16_t Sign = (B >> 48) & 0x8000;
    unsigned DExp = (B >> 52) & 0x7ff;
    uint64_t DMant = B & ((1ull << 52) - 1);
    if (DExp == 0x7ff) {
      if (DMant == 0)
        return Sign | ExpMask;
      // NaN: keep the top payload bits and force it quiet so it stays NaN.
      uint16_t Payload = (uint16_t)(DMant >> (52 - MantBits));
      return Sign | ExpMask | Payload | (1u << (MantBits - 1));
    }
    if (DExp == 0) // double subnormals are far below the smallest step
      return Sign;
    int E = (int)DExp - 1023;
    if (E > Bias)
      return Sign | ExpMask; // at least twice the largest finite value
    uint64_t M = DMant | (1ull << 52);
    // Normal results keep MantBits bits below the leading one; subnormal
    // results count units of 2^(1 - Bias - MantBits), so they shift further.
    unsigned Shift = 52 - MantBits;
    uint64_t Base = 0;
    if (E >= 1 - Bias) {
      Base = (uint64_t)(E + Bias) << MantBits;
      M &= (1ull << 52) - 1; // the exponent field carries the leading one
    } else {
      Shift += (unsigned)((1 - Bias) - E);
      if (Shift > 53)
        return Sign; // below half the smallest step: rounds to zero
    }
    uint64_t Kept = M >> Shift;
    uint64_t Rest = M & ((1ull << Shift) - 1);
    uint64_t Half = 1ull << (Shift - 1);
    uint64_t Result = Base + Kept;
    // A carry out of the mantissa bumps the exponent, up to infinity.
    if (Rest > Half || (Rest == Half && (Kept & 1)))
      ++Result;
    return Sign | (uint16_t)Result;
  }
};

using Half = SmallFloat<5, 10>;
using BFloat = SmallFloat<8, 7>;
} // namespace detail

inline double halfBitsToDouble(uint16_t Bits) {
  return detail::Half::toDouble(Bits);
}
inline uint16_t doubleToHalfBits(double D) {
  return detail::Half::fromDouble(D);
}
inline double bfloat16BitsToDouble(uint16_t Bits) {
  return detail::BFloat::toDouble(Bits);
}
inline uint16_t doubleToBFloat16Bits(double D) {
  return detail::BFloat::fromDouble(D);
}

} // namespace wopt

#endif
