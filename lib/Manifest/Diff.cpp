//===- Diff.cpp - Compare a state dict's values with a target's ----------===//
//
// Both tensors are read a block of elements at a time (readTensorElements,
// in each file's byte order) and compared bit for bit first; only when the
// bits differ are the elements read as doubles for the max abs difference.
//
//===----------------------------------------------------------------------===//
#include "wopt/Manifest/Diff.h"
#include "wopt/IR/StateDict.h"
#include "wopt/Manifest/Manifest.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Format.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

using namespace wopt;
using namespace llvm;
using Kind = TensorDiff::Kind;

unsigned DiffResult::count(Kind K) const {
  return llvm::count_if(Entries,
                        [K](const TensorDiff &D) { return D.TheKind == K; });
}

bool DiffResult::identical() const {
  return count(Kind::Equal) == Entries.size();
}

namespace {

/// Elements compared per block.
constexpr uint64_t Block = 1 << 14;

/// A tensor's elements a block at a time, in host byte order.
class ElementStream {
public:
  ElementStream(const TensorValue &T, bool BigEndian)
      : T(T), Size(dtypeSize(T.dtype())), Swap(BigEndian && Size > 1) {}

  Error read(uint64_t First, uint64_t N, std::vector<uint8_t> &Buf) const {
    Buf.resize(N * Size);
    if (Error E = readTensorElements(T, First, N, Buf))
      return E;
    if (Swap)
      for (uint64_t I = 0; I < N; ++I)
        std::reverse(Buf.data() + I * Size, Buf.data() + (I + 1) * Size);
    return Error::success();
  }
  unsigned size() const { return Size; }
  DType dtype() const { return T.dtype(); }

private:
  const TensorValue &T;
  unsigned Size;
  bool Swap;
};

/// Folds one pair of elements into D.
void compareElements(TensorDiff &D, DType HT, const uint8_t *H, DType TT,
                     const uint8_t *P) {
  std::optional<double> A = elementAsDouble(HT, H), B = elementAsDouble(TT, P);
  if (!A || !B) {
    D.Comparable = false;
    ++D.NumDiffering;
    return;
  }
  bool NA = std::isnan(*A), NB = std::isnan(*B);
  if (NA || NB) {
    if (NA != NB) {
      ++D.NumNaNMismatch;
      ++D.NumDiffering;
    }
    return;
  }
  if (*A == *B)
    return;
  ++D.NumDiffering;
  D.MaxAbs = std::max(D.MaxAbs, std::fabs(*A - *B));
}

/// Compares the values of two tensors of the same shape.
Error compareValues(TensorDiff &D, const TensorValue &Here, bool HereBig,
                    const TensorValue &There, bool ThereBig) {
  ElementStream A(Here, HereBig), B(There, ThereBig);
  uint64_t N = Here.numel().value_or(0);
  D.NumElements = N;
  bool SameType = Here.dtype() == There.dtype();
  std::vector<uint8_t> BufA, BufB;
  for (uint64_t First = 0; First < N; First += Block) {
    uint64_t Count = std::min(Block, N - First);
    if (Error E = A.read(First, Count, BufA))
      return E;
    if (Error E = B.read(First, Count, BufB))
      return E;
    if (SameType && BufA == BufB)
      continue;
    for (uint64_t I = 0; I < Count; ++I) {
      const uint8_t *PA = BufA.data() + I * A.size();
      const uint8_t *PB = BufB.data() + I * B.size();
      if (SameType && !std::memcmp(PA, PB, A.size()))
        continue;
      compareElements(D, Here.dtype(), PA, There.dtype(), PB);
    }
  }
  if (SameType && D.NumDiffering == 0)
    D.TheKind = Kind::Equal;
  return Error::success();
}

Error readable(const TensorValue &T, StringRef Key, StringRef Where) {
  if (!T.storage() || !T.storage()->hasData())
    return createStringError(inconvertibleErrorCode(),
                             "'" + Key + "' in " + Where +
                                 " has no data (elided storage): cannot diff "
                                 "values");
  return Error::success();
}

} // namespace

Expected<DiffResult> wopt::diffWithTarget(const Checkpoint &C, const Target &T,
                                          StringRef InputName) {
  if (!T.hasData())
    return createStringError(
        inconvertibleErrorCode(),
        "-emit=diff compares values: the target " + T.name() +
            " is a manifest (names, dtypes and shapes only); give a "
            "checkpoint of the model as -target");
  const DictValue *SD = C.stateDict();
  if (!SD)
    return createStringError(inconvertibleErrorCode(),
                             "-emit=diff needs a state dict at the root; "
                             "unwrap it first (-pass-pipeline=unwrap)");
  DiffResult R;
  R.InputName = InputName.str();
  R.TargetName = T.name().str();
  StringMap<const TensorValue *> Here;
  for (const DictEntry &E : SD->entries())
    if (std::optional<StringRef> K = E.keyString())
      if (const auto *TV = dyn_cast_or_null<TensorValue>(E.Val.get()))
        Here.try_emplace(*K, TV);
  bool HereBig = C.ByteOrder == "big";
  bool ThereBig = T.checkpoint()->ByteOrder == "big";
  StringMap<bool> InTarget;
  for (const ManifestEntry &ME : T.entries()) {
    InTarget[ME.Name] = true;
    TensorDiff D;
    D.Name = ME.Name;
    const TensorValue *There = T.tensor(ME.Name);
    const TensorValue *H = Here.lookup(ME.Name);
    if (There)
      D.There = There->typeString();
    if (!H || !There) {
      D.TheKind = Kind::Missing;
      R.Entries.push_back(std::move(D));
      continue;
    }
    D.Here = H->typeString();
    if (H->shape() != There->shape()) {
      D.TheKind = Kind::Shape;
    } else {
      if (Error E = readable(*H, ME.Name, InputName))
        return std::move(E);
      if (Error E = readable(*There, ME.Name, T.name()))
        return std::move(E);
      D.TheKind = H->dtype() == There->dtype() ? Kind::Values : Kind::DType;
      if (Error E = compareValues(D, *H, HereBig, *There, ThereBig))
        return createStringError(inconvertibleErrorCode(),
                                 "'" + ME.Name +
                                     "': " + toString(std::move(E)));
    }
    R.Entries.push_back(std::move(D));
  }
  for (const DictEntry &E : SD->entries()) {
    std::optional<StringRef> K = E.keyString();
    const auto *TV = dyn_cast_or_null<TensorValue>(E.Val.get());
    if (!K || !TV || InTarget.count(*K))
      continue;
    TensorDiff D;
    D.TheKind = Kind::Unexpected;
    D.Name = K->str();
    D.Here = TV->typeString();
    R.Entries.push_back(std::move(D));
  }
  return R;
}

//===----------------------------------------------------------------------===//
// Report
//===----------------------------------------------------------------------===//

namespace {

std::string plural(size_t N, StringRef One, StringRef Many) {
  return std::to_string(N) + " " + (N == 1 ? One : Many).str();
}

std::string formatAbs(double V) {
  std::string S;
  raw_string_ostream OS(S);
  OS << format("%.6g", V);
  return S;
}

std::string subject(const KeyGroup &G) {
  if (G.Members.size() == 1)
    return "key " + G.Pattern;
  return plural(G.Members.size(), "key", "keys") + (G.Sparse ? " in " : " ") +
         G.Pattern;
}

/// What the line says about a group of differing values: the largest
/// difference and where.
std::string valuesSummary(ArrayRef<const TensorDiff *> Ds) {
  const TensorDiff *Worst = Ds.front();
  uint64_t Differing = 0, Elements = 0, NaNs = 0;
  bool Comparable = true;
  for (const TensorDiff *D : Ds) {
    if (D->MaxAbs > Worst->MaxAbs)
      Worst = D;
    Differing += D->NumDiffering;
    Elements += D->NumElements;
    NaNs += D->NumNaNMismatch;
    Comparable &= D->Comparable;
  }
  std::string S = std::to_string(Differing) + " of " +
                  std::to_string(Elements) + " elements differ";
  if (!Comparable)
    return S + " (not comparable as numbers: bytes differ)";
  S += ", max abs difference " + formatAbs(Worst->MaxAbs);
  if (Ds.size() > 1)
    S += " (at " + Worst->Name + ")";
  if (NaNs)
    S += ", " + plural(NaNs, "NaN", "NaNs") + " on one side only";
  return S;
}

/// "3 × f32[8]" or "f32[8], f32[16], ..." for the side that has the keys.
std::string typesOf(ArrayRef<const TensorDiff *> Ds, bool TargetSide) {
  std::vector<std::string> Types;
  for (const TensorDiff *D : Ds) {
    const std::string &T = TargetSide ? D->There : D->Here;
    if (!is_contained(Types, T))
      Types.push_back(T);
  }
  if (Types.size() == 1)
    return Ds.size() == 1 ? Types[0]
                          : std::to_string(Ds.size()) + " × " + Types[0];
  if (Types.size() > 3) {
    Types.resize(3);
    Types.push_back("...");
  }
  return join(Types, ", ");
}

/// One line per group of keys of kind K that share what Line prints for
/// them (the types), in target order.
void printKind(const DiffResult &R, Kind K, StringRef What, raw_ostream &OS) {
  std::vector<const TensorDiff *> Ds;
  for (const TensorDiff &D : R.Entries)
    if (D.TheKind == K)
      Ds.push_back(&D);
  if (Ds.empty())
    return;
  // Group by the types both sides have: equal types, one pattern.
  std::map<std::string, std::vector<const TensorDiff *>> ByTypes;
  std::vector<std::string> Order;
  for (const TensorDiff *D : Ds) {
    std::string Key = K == Kind::Shape ? D->Here + "\x01" + D->There : "";
    if (K == Kind::DType)
      Key = D->Here.substr(0, D->Here.find('[')) + "\x01" +
            D->There.substr(0, D->There.find('['));
    auto &L = ByTypes[Key];
    if (L.empty())
      Order.push_back(Key);
    L.push_back(D);
  }
  for (const std::string &Key : Order) {
    ArrayRef<const TensorDiff *> Part = ByTypes[Key];
    std::vector<std::string> Names;
    for (const TensorDiff *D : Part)
      Names.push_back(D->Name);
    for (const KeyGroup &G : groupKeysByStem(Names)) {
      std::vector<const TensorDiff *> Members;
      for (unsigned M : G.Members)
        Members.push_back(Part[M]);
      const TensorDiff &F = *Members.front();
      OS << What << ": " << subject(G);
      switch (K) {
      case Kind::Values:
        OS << ": " << valuesSummary(Members);
        break;
      case Kind::DType:
        OS << ": " << F.Here.substr(0, F.Here.find('[')) << " here, "
           << F.There.substr(0, F.There.find('[')) << " in the target; "
           << valuesSummary(Members);
        break;
      case Kind::Shape:
        OS << ": " << F.Here << " here, " << F.There << " in the target";
        break;
      case Kind::Missing:
      case Kind::Unexpected:
        OS << " (" << typesOf(Members, K == Kind::Missing) << ")";
        break;
      case Kind::Equal:
        break;
      }
      OS << "\n";
    }
  }
}

} // namespace

void wopt::printDiff(const DiffResult &R, raw_ostream &OS) {
  SmallVector<std::string, 6> Parts;
  auto Add = [&](Kind K, StringRef One, StringRef Many) {
    if (unsigned N = R.count(K))
      Parts.push_back(plural(N, One, Many));
  };
  Add(Kind::Equal, "equal", "equal");
  Add(Kind::Values, "with other values", "with other values");
  Add(Kind::DType, "dtype change", "dtype changes");
  Add(Kind::Shape, "shape change", "shape changes");
  Add(Kind::Missing, "missing", "missing");
  Add(Kind::Unexpected, "unexpected", "unexpected");
  OS << "diff: " << R.InputName << " against " << R.TargetName << ": "
     << plural(R.Entries.size(), "key", "keys") << ", "
     << (Parts.empty() ? std::string("nothing to compare") : join(Parts, ", "))
     << "\n";
  printKind(R, Kind::Values, "values", OS);
  printKind(R, Kind::DType, "dtype", OS);
  printKind(R, Kind::Shape, "shape", OS);
  printKind(R, Kind::Missing, "missing", OS);
  printKind(R, Kind::Unexpected, "unexpected", OS);
}
