//===- ReshapeDownsample.cpp - Swin PatchMerging between layouts ----------===//
//
// Swin's PatchMerging ("downsample") sits in three layouts:
//  - original (Microsoft's checkpoints, timm < 0.9): at the end of stage i,
//    `layers.<i>.downsample.*`, classifier `head.*`;
//  - timm >= 0.9: at the start of stage i+1, `layers.<i+1>.downsample.*`,
//    classifier `head.fc.*`;
//  - mmdet/mmseg: end of stage i like the original, but built on nn.Unfold,
//    which orders the four merged patches differently, so the reduction
//    weight's input channels and the norm's channels must be permuted.
// The layouts are told apart structurally: only the original has
// `layers.0.downsample.*`. Whether data was already permuted for mmdet is not
// visible in the data; the pass decides by the key names (mmdet's `stages.`).
//
//===----------------------------------------------------------------------===//
#include "PassUtils.h"
#include "wopt/IR/StateDict.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include <cstring>
#include <set>

using namespace llvm;

namespace wopt {
namespace {

using namespace passutil;

enum class Layout { Original, Timm };

/// `layers.<i>.downsample.<rest>` -> (i, rest).
std::optional<std::pair<uint64_t, StringRef>> splitDownsample(StringRef Key) {
  if (!Key.consume_front("layers."))
    return std::nullopt;
  auto [Idx, Rest] = Key.split('.');
  std::optional<uint64_t> I = parseIndex(Idx);
  if (!I || !Rest.consume_front("downsample."))
    return std::nullopt;
  return std::make_pair(*I, Rest);
}

/// Stage index of `layers.<i>.*`.
std::optional<uint64_t> stageOf(StringRef Key) {
  if (!Key.consume_front("layers."))
    return std::nullopt;
  return parseIndex(Key.split('.').first);
}

/// True for mmdet/mmseg Swin names: `[backbone.]stages.<i>.downsample.*`.
bool isMMDetDownsample(StringRef Key) {
  Key.consume_front("backbone.");
  if (!Key.consume_front("stages."))
    return false;
  auto [Idx, Rest] = Key.split('.');
  return parseIndex(Idx) && Rest.starts_with("downsample.");
}

/// The order in which mmdet's nn.Unfold visits the four merged patches,
/// relative to the original torch.cat([x0, x1, x2, x3]).
constexpr unsigned UnfoldOrder[4] = {0, 2, 1, 3};

class ReshapeDownsamplePass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Converts Swin PatchMerging between layouts: to=timm moves "
           "layers.<i>.downsample to layers.<i+1>.downsample and head to "
           "head.fc; to=original reverses that; to=mmdet brings the original "
           "layout and permutes reduction.weight / norm.{weight,bias} data "
           "into nn.Unfold order (names are left to rename).";
  }

  Error run(Checkpoint &C) override {
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    StringRef Target = *To;
    // The pipeline parser checks the value; a pass built in code may not
    // have one.
    if (Target.empty())
      return error("needs to=timm|original|mmdet");

    auto [Downsampled, Stages, MMDetNames] = survey(*SD);
    if (Downsampled.empty()) {
      if (MMDetNames && Target == "mmdet") {
        remark("", nullptr,
               "keys already use mmdet names (stages.<i>.downsample); "
               "assuming the data is already in nn.Unfold order");
        return Error::success();
      }
      if (MMDetNames)
        return error("keys use mmdet names (stages.<i>.downsample); "
                     "converting from the mmdet layout is not supported");
      return error("found no layers.<i>.downsample.* keys: is this a Swin "
                   "state dict?");
    }
    Layout From = Downsampled.count(0) ? Layout::Original : Layout::Timm;

    if (Target == "timm") {
      if (From == Layout::Timm) {
        remark("", nullptr,
               "already in the timm layout (no layers.0.downsample); "
               "nothing to do");
        return Error::success();
      }
      return move(*SD, Downsampled, Stages, +1);
    }
    if (From == Layout::Timm)
      if (Error E = move(*SD, Downsampled, Stages, -1))
        return E;
    if (Target == "original") {
      if (From == Layout::Original)
        remark("", nullptr,
               "already in the original layout (layers.0.downsample "
               "present); nothing to do");
      return Error::success();
    }
    return reorderAll(*SD);
  }

private:
  struct Survey {
    std::set<uint64_t> Downsampled; ///< i of every layers.<i>.downsample.*
    std::set<uint64_t> Stages;      ///< i of every layers.<i>.*
    bool MMDetNames = false;        ///< some [backbone.]stages.<i>.downsample.*
  };

  static Survey survey(const DictValue &SD) {
    Survey S;
    for (const DictEntry &E : SD.entries()) {
      std::optional<StringRef> K = E.keyString();
      if (!K)
        continue;
      if (auto D = splitDownsample(*K))
        S.Downsampled.insert(D->first);
      if (auto St = stageOf(*K))
        S.Stages.insert(*St);
      S.MMDetNames |= isMMDetDownsample(*K);
    }
    return S;
  }

  //===--- moving downsample between stages ---------------------------===//

  /// Moves every `layers.<i>.downsample.*` to stage i + Delta and the
  /// classifier between `head.*` (Delta < 0) and `head.fc.*` (Delta > 0).
  Error move(DictValue &SD, const std::set<uint64_t> &Downsampled,
             const std::set<uint64_t> &Stages, int Delta) {
    uint64_t Last = Stages.empty() ? 0 : *Stages.rbegin();
    if (Delta > 0 && *Downsampled.rbegin() >= Last)
      return error("layers." + Twine(*Downsampled.rbegin()) +
                   ".downsample would move to stage " +
                   Twine(*Downsampled.rbegin() + 1) +
                   ", but the last stage is " + Twine(Last) +
                   "\nnote: the original layout has downsample in every "
                   "stage but the last");
    auto Map = [&](StringRef Key) -> std::optional<std::string> {
      if (auto D = splitDownsample(Key))
        return ("layers." + Twine(D->first + Delta) + ".downsample." +
                D->second)
            .str();
      if (Delta > 0 && (Key == "head.weight" || Key == "head.bias"))
        return ("head.fc." + Key.drop_front(5)).str();
      if (Delta < 0 && (Key == "head.fc.weight" || Key == "head.fc.bias"))
        return ("head." + Key.drop_front(8)).str();
      return std::nullopt;
    };
    unsigned Renamed = 0;
    if (Error E = renameKeys(SD, Map, argument(), &Renamed))
      return E;
    NumMoved += Renamed;
    remark("", nullptr,
           "moved " + Twine(Downsampled.size()) + " downsample modules " +
               (Delta > 0 ? "to the start of the "
                            "next stage (timm)"
                          : "to the end of their "
                            "stage (original)") +
               ", " + Twine(Renamed) + " keys");
    NumMetadata += rewriteModuleMetadata(SD, [&](StringRef Path) {
      return mapModulePath(
          Path, [&](StringRef P) -> std::optional<std::string> {
            if (std::optional<std::string> New = Map((P + "x").str()))
              return StringRef(*New).drop_back().str();
            return P.str();
          });
    });
    return Error::success();
  }

  //===--- mmdet's nn.Unfold order --------------------------------------===//

  Error reorderAll(DictValue &SD) {
    for (DictEntry &E : SD.entries()) {
      std::optional<StringRef> K = E.keyString();
      auto *T = dyn_cast_or_null<TensorValue>(E.Val.get());
      if (!K || !T)
        continue;
      auto D = splitDownsample(*K);
      if (!D)
        continue;
      bool IsReduction = D->second == "reduction.weight";
      bool IsNorm = D->second == "norm.weight" || D->second == "norm.bias";
      if (!IsReduction && !IsNorm)
        continue;
      if (Error Err = reorder(*K, ownTensor(E), IsReduction))
        return Err;
    }
    return Error::success();
  }

  /// reduction.weight (out, 4C): reshape(out, 4, C)[:, [0,2,1,3]]
  ///   .transpose(1, 2).reshape(out, 4C), i.e. new[o, c*4 + j] =
  ///   old[o, UnfoldOrder[j]*C + c];
  /// norm.{weight,bias} (4C): reshape(4, C)[[0,2,1,3]].T.reshape(4C), i.e.
  ///   new[c*4 + j] = old[UnfoldOrder[j]*C + c].
  /// Reads through the view's strides, writes a fresh contiguous storage.
  Error reorder(StringRef Key, TensorValue &T, bool IsReduction) {
    ArrayRef<int64_t> Shape = T.shape(), Strides = T.strides();
    size_t Rank = IsReduction ? 2 : 1;
    int64_t Channels4 = Shape.empty() ? 0 : Shape.back();
    if (Shape.size() != Rank || Channels4 <= 0 || Channels4 % 4 != 0)
      return error("'" + Key + "' has type " + T.typeString() + ": expected " +
                   (IsReduction ? "(out, 4C)" : "(4C)") +
                   " with 4C divisible by 4");
    if (isSubByte(T.dtype()))
      return error("'" + Key + "' has type " + T.typeString() +
                   ": elements narrower than a byte cannot be reordered");
    const StorageRef &S = T.storage();
    if (!S || !S->hasData())
      return error("'" + Key +
                   "' needs tensor data to reorder, but its data was elided");
    std::optional<uint64_t> Need = T.requiredStorageBytes();
    if (!Need || *Need > S->bytes().size())
      return error("'" + Key + "' views past the end of its storage");

    const unsigned Elt = dtypeSize(T.dtype());
    const int64_t Out = IsReduction ? Shape[0] : 1;
    const int64_t RowStride = IsReduction ? Strides[0] : 0;
    const int64_t ColStride = Strides.back();
    const int64_t C = Channels4 / 4;
    const uint8_t *Src = S->bytes().data();
    std::vector<uint8_t> Dst(uint64_t(Out) * Channels4 * Elt);
    uint8_t *W = Dst.data();
    for (int64_t O = 0; O < Out; ++O)
      for (int64_t Ch = 0; Ch < C; ++Ch)
        for (unsigned J = 0; J < 4; ++J) {
          int64_t Elem = T.storageOffset() + O * RowStride +
                         (int64_t(UnfoldOrder[J]) * C + Ch) * ColStride;
          std::memcpy(W, Src + Elem * Elt, Elt);
          W += Elt;
        }

    // A fresh storage: the old one may be shared with other tensors.
    NumRewrittenBytes += Dst.size();
    T.setStorage(Storage::owned((argument() + "/" + Key).str(), T.dtype(),
                                std::move(Dst)));
    T.setStorageOffset(0);
    T.setShape(SmallVector<int64_t, 2>(Shape.begin(), Shape.end()));
    T.provenance().addRewrite(
        argument(), IsReduction
                        ? "permuted input channels into nn.Unfold order "
                          "(reshape(out,4,C)[:, [0,2,1,3]].transpose(1,2))"
                        : "permuted channels into nn.Unfold order "
                          "(reshape(4,C)[[0,2,1,3]].T)");
    ++NumReordered;
    remark(Key, &T, "reordered into mmdet's nn.Unfold channel order");
    return Error::success();
  }

  EnumOption To{*this,
                "to",
                "target layout",
                {"timm", "original", "mmdet"},
                "",
                Presence::Required};
  Statistic NumMoved{*this, "moved", "keys moved between stages or to head.fc"};
  Statistic NumReordered{*this, "reordered", "tensors permuted for mmdet"};
  Statistic NumRewrittenBytes{*this, "rewritten-bytes",
                              "bytes of data rewritten"};
  Statistic NumMetadata{*this, "metadata-rewritten",
                        "_metadata module paths rewritten or dropped"};
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(ReshapeDownsample, ReshapeDownsamplePass)
