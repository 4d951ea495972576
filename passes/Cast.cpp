//===- Cast.cpp - Convert floating-point tensors between dtypes ----------===//
//
// cast{to=f16|bf16|f32|f64|target keys=GLOBS}: converts the floating-point
// tensors whose keys match (all of them without keys=) to another float
// dtype, with the same bits torch's `tensor.to(dtype)` gives on the CPU:
// round to nearest even, signed zeros, infinities and subnormals kept, NaN
// as torch makes it. torch goes through float for every conversion to or
// from a 16-bit type (f64 -> f16 rounds twice, as there), so this does too.
//
// Nothing is converted here: each cast tensor gets a computed storage whose
// Producer converts the source bytes a chunk at a time when an exporter
// reads them, so casting a large checkpoint keeps peak memory flat and the
// input mapped, never copied. to=target casts each tensor to the dtype the
// -target has for its key.
//
//===----------------------------------------------------------------------===//
#include "PassUtils.h"
#include "wopt/IR/StateDict.h"
#include "wopt/Manifest/Target.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/GlobPattern.h"
#include <cmath>
#include <cstring>

using namespace llvm;

namespace wopt {
namespace {

//===----------------------------------------------------------------------===//
// Scalar conversions, as c10 (torch 1.13) does them
//===----------------------------------------------------------------------===//

/// c10's fp16_ieee_from_fp32_value: round to nearest even by letting the
/// FPU add a bias; NaN keeps its sign and becomes 0x7E00.
uint16_t floatToHalf(float F) {
  const float ScaleToInf = bit_cast<float>(0x77800000u);
  const float ScaleToZero = bit_cast<float>(0x08800000u);
  float Base = (std::fabs(F) * ScaleToInf) * ScaleToZero;
  const uint32_t W = bit_cast<uint32_t>(F);
  const uint32_t ShlW = W + W;
  const uint32_t Sign = W & 0x80000000u;
  uint32_t Bias = ShlW & 0xFF000000u;
  if (Bias < 0x71000000u)
    Bias = 0x71000000u;
  Base = bit_cast<float>((Bias >> 1) + 0x07800000u) + Base;
  const uint32_t Bits = bit_cast<uint32_t>(Base);
  const uint32_t ExpBits = (Bits >> 13) & 0x00007C00u;
  const uint32_t MantBits = Bits & 0x00000FFFu;
  const uint32_t NonSign = ExpBits + MantBits;
  return uint16_t((Sign >> 16) | (ShlW > 0xFF000000u ? 0x7E00u : NonSign));
}

/// Round to nearest even on the bits. torch 1.13 turns a NaN into 0x7FC0
/// when it converts one value at a time (from f16 or f64, through float)
/// and into 0xFFFF in its vectorised f32 -> bf16 copy.
uint16_t floatToBFloat(float F, uint16_t NaN) {
  if (std::isnan(F))
    return NaN;
  const uint32_t U = bit_cast<uint32_t>(F);
  return uint16_t((U + 0x7FFFu + ((U >> 16) & 1u)) >> 16);
}

/// Element conversions, one (From, To) pair per function.
using Converter = void (*)(const uint8_t *In, uint8_t *Out);

template <typename T> T load(const uint8_t *P) {
  T V;
  std::memcpy(&V, P, sizeof(T));
  return V;
}
template <typename T> void store(uint8_t *P, T V) {
  std::memcpy(P, &V, sizeof(T));
}

/// Source element as float (f64 sources never come here).
float loadAsFloat(DType From, const uint8_t *In) {
  switch (From) {
  case DType::Float16:
    return halfBitsToFloat(load<uint16_t>(In));
  case DType::BFloat16:
    return bfloat16BitsToFloat(load<uint16_t>(In));
  default:
    return load<float>(In);
  }
}

/// Converts one element of From at In to To at Out. VectorNaN: the NaN
/// torch's vectorised f64 -> bf16 loop writes (0xFFFF) rather than its
/// scalar tail (0x7FC0).
void convertOne(DType From, DType To, const uint8_t *In, uint8_t *Out,
                bool VectorNaN) {
  if (From == DType::Float64) {
    double D = load<double>(In);
    float F = static_cast<float>(D);
    if (To == DType::Float32)
      store(Out, F);
    else if (To == DType::Float16)
      store(Out, floatToHalf(F));
    else
      store(Out, floatToBFloat(F, VectorNaN ? 0xFFFF : 0x7FC0));
    return;
  }
  float F = loadAsFloat(From, In);
  switch (To) {
  case DType::Float64:
    store(Out, static_cast<double>(F));
    return;
  case DType::Float32:
    store(Out, F);
    return;
  case DType::Float16:
    store(Out, floatToHalf(F));
    return;
  default:
    store(Out, floatToBFloat(F, From == DType::Float32 ? 0xFFFF : 0x7FC0));
    return;
  }
}

void swapBytes(uint8_t *P, unsigned Size) { std::reverse(P, P + Size); }

/// What a computed storage needs to produce its bytes: the source view as
/// it was before the cast (a node of its own, keeping its storage alive)
/// and the two dtypes.
struct CastSource {
  ValuePtr View;
  DType From, To;
  bool Dense = false;
  bool BigEndian = false;

  const TensorValue &view() const { return cast<TensorValue>(*View); }

  /// torch 1.13 converts f64 to bf16 sixteen elements at a time along
  /// each run it iterates (the whole tensor when it is dense, in memory
  /// order; else each row) and the last run % 16 one at a time, and the
  /// two write different NaNs. Whether view element I is in the vector
  /// part, as a single-threaded torch on AVX2 iterates.
  bool inVectorPart(uint64_t I) const {
    const TensorValue &T = view();
    uint64_t Pos = I, Run = *T.numel();
    if (!T.isContiguous()) {
      if (Dense) {
        Pos = 0;
        for (int D = int(T.shape().size()) - 1; D >= 0; --D) {
          Pos += (I % T.shape()[D]) * T.strides()[D];
          I /= T.shape()[D];
        }
      } else {
        Run = T.shape().back();
        Pos = I % Run;
      }
    }
    return Pos < Run - Run % 16;
  }

  /// The Producer: output bytes [Off, Off + Out.size()), which need not
  /// start or end on an element.
  Error produce(uint64_t Off, MutableArrayRef<uint8_t> Out) const {
    const unsigned InSize = dtypeSize(From), OutSize = dtypeSize(To);
    const uint64_t Block = 1 << 14; // elements converted at a time
    std::vector<uint8_t> In(Block * InSize), Conv(Block * OutSize);
    uint64_t End = Off + Out.size();
    for (uint64_t Elem = Off / OutSize; Elem * OutSize < End;) {
      uint64_t N = std::min<uint64_t>(Block, divideCeil(End, OutSize) - Elem);
      if (Error E = readTensorElements(
              view(), Elem, N, MutableArrayRef<uint8_t>(In.data(), N * InSize)))
        return E;
      for (uint64_t I = 0; I < N; ++I) {
        uint8_t *IP = In.data() + I * InSize, *OP = Conv.data() + I * OutSize;
        if (BigEndian)
          swapBytes(IP, InSize);
        convertOne(From, To, IP, OP,
                   From == DType::Float64 && To == DType::BFloat16 &&
                       inVectorPart(Elem + I));
        if (BigEndian)
          swapBytes(OP, OutSize);
      }
      // The part of the converted block inside [Off, End).
      uint64_t BlockStart = Elem * OutSize;
      uint64_t From0 = std::max(BlockStart, Off);
      uint64_t To0 = std::min(BlockStart + N * OutSize, End);
      std::memcpy(Out.data() + (From0 - Off),
                  Conv.data() + (From0 - BlockStart), To0 - From0);
      Elem += N;
    }
    return Error::success();
  }
};

/// The view covers exactly numel() consecutive storage elements in some
/// dimension order: torch then iterates it in memory order as one run.
bool isDensePermutation(const TensorValue &T) {
  SmallVector<std::pair<int64_t, int64_t>, 4> Dims; // (stride, size)
  for (size_t D = 0; D < T.shape().size(); ++D)
    if (T.shape()[D] != 1)
      Dims.push_back({T.strides()[D], T.shape()[D]});
  llvm::sort(Dims);
  int64_t Expected = 1;
  for (auto [Stride, Size] : Dims) {
    if (Stride != Expected)
      return false;
    Expected *= Size;
  }
  return true;
}

bool castable(DType T) {
  return T == DType::Float16 || T == DType::BFloat16 || T == DType::Float32 ||
         T == DType::Float64;
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

class CastPass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Converts floating-point tensors (f16, bf16, f32, f64) to the "
           "dtype to= names, bit for bit as torch's tensor.to(dtype) does "
           "(round to nearest even; NaN, infinities, subnormals and -0.0 as "
           "torch gives them). to=target takes each tensor's dtype from the "
           "-target (keys it lacks, or has with a non-float dtype, stay). "
           "keys= limits it to keys matching the globs. Data is converted "
           "while the output is written, a chunk at a time.";
  }

  Error run(Checkpoint &C) override {
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    bool ToTarget = *To == "target";
    if (ToTarget && !target())
      return error("to=target needs a -target=FILE (a manifest or a "
                   "checkpoint of the model) to take the dtypes from");
    Expected<std::vector<GlobPattern>> Globs = passutil::compileKeyGlobs(*Keys);
    if (!Globs)
      return error(toString(Globs.takeError()));
    std::vector<unsigned> Hits(Globs->size(), 0);
    DType Fixed = ToTarget ? DType::Float32 : *parseDTypeName(*To);
    bool BigEndian = C.ByteOrder == "big";
    for (DictEntry &E : SD->entries()) {
      std::optional<StringRef> K = E.keyString();
      auto *T = dyn_cast_or_null<TensorValue>(E.Val.get());
      if (!K || !T || !castable(T->dtype()) ||
          (!Globs->empty() && !passutil::matchCounting(*Globs, *K, Hits)))
        continue;
      DType Want = Fixed;
      if (ToTarget) {
        const ManifestEntry *TE = target()->find(*K);
        if (!TE || !castable(TE->Type))
          continue;
        Want = TE->Type;
      }
      if (Want == T->dtype())
        continue;
      if (!T->storage() || !T->storage()->hasData())
        return error("'" + *K +
                     "' has no data (elided storage): nothing to "
                     "cast");
      cast(*K, ownTensor(E), Want, BigEndian);
    }
    for (size_t I = 0; I < Globs->size(); ++I)
      if (!Hits[I])
        matchedNothing("keys='" + Keys->at(I) +
                       "' matched no floating-point tensor");
    return Error::success();
  }

private:
  /// Gives T a contiguous computed storage of dtype Want.
  void cast(StringRef Key, TensorValue &T, DType Want, bool BigEndian) {
    std::string Before = T.typeString();
    auto Src = std::make_shared<CastSource>();
    Src->View = T.copyNode();
    Src->From = T.dtype();
    Src->To = Want;
    Src->Dense = !T.isContiguous() && isDensePermutation(T);
    Src->BigEndian = BigEndian;
    uint64_t N = T.numel().value_or(0);
    SmallVector<int64_t, 4> Shape(T.shape().begin(), T.shape().end());
    std::string Location = T.storage()->location();
    StorageRef S = Storage::computed(
        (argument() + "/" + Key).str(), Want, N * dtypeSize(Want),
        [Src](uint64_t Off, MutableArrayRef<uint8_t> Out) {
          return Src->produce(Off, Out);
        });
    S->setLocation(Location);
    T.setStorage(std::move(S));
    T.setDType(Want);
    T.setStorageOffset(0);
    T.setShape(Shape);
    ++NumCast;
    NumBytesBefore += N * dtypeSize(Src->From);
    NumBytesAfter += N * dtypeSize(Want);
    T.provenance().addRewrite(argument(), "cast " + Before + " to " +
                                              dtypeName(Want).str());
    remark(Key, &T, "cast " + Before + " to " + T.typeString());
  }

  EnumOption To{*this,
                "to",
                "the dtype to cast to, or target: each key's dtype in -target",
                {"f16", "bf16", "f32", "f64", "target"},
                "",
                Presence::Required};
  ListOption Keys{*this, "keys",
                  "globs over whole keys; without it every float tensor"};
  Statistic NumCast{*this, "cast", "tensors cast"};
  Statistic NumBytesBefore{*this, "bytes-before",
                           "bytes of the cast tensors before"};
  Statistic NumBytesAfter{*this, "bytes-after",
                          "bytes of the cast tensors after"};
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(Cast, CastPass)
