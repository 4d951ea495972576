//===- Reshape.cpp - Give tensors a new shape of the same size -----------===//
//
// reshape{rule=GLOB=>[D,...]}: the official ConvNeXt-V2 keeps GRN's gamma and
// beta as (1, 1, 1, C) for broadcasting over NHWC, mmpretrain as (C,). Such
// changes only touch metadata: a contiguous tensor gets the new shape and
// row-major strides over the same bytes. A non-contiguous view could need a
// copy, so it is an error rather than a silent materialization.
//
//===----------------------------------------------------------------------===//
#include "wopt/IR/StateDict.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/GlobPattern.h"

using namespace llvm;

namespace wopt {
namespace {

/// One GLOB=>[D,...] rule; at most one D is -1 (inferred from the size).
struct ReshapeRule {
  std::string Text;
  GlobPattern Glob;
  SmallVector<int64_t, 4> Shape;
};

Expected<SmallVector<int64_t, 4>> parseShape(StringRef S, StringRef Text) {
  auto Bad = [&](const Twine &Why) {
    return createStringError("rule '" + Text + "': " + Why);
  };
  S = S.trim();
  if (!S.consume_front("[") || !S.consume_back("]"))
    return Bad("the shape must be written [D, ...], e.g. [-1] or [4, 8]");
  SmallVector<int64_t, 4> Shape;
  if (S.trim().empty())
    return Shape; // [] : a 0-dim tensor
  SmallVector<StringRef, 4> Dims;
  S.split(Dims, ',');
  bool Inferred = false;
  for (StringRef D : Dims) {
    int64_t V;
    if (D.trim().getAsInteger(10, V) || V < -1)
      return Bad("'" + D.trim() + "' is not a dimension (a size >= 0 or -1)");
    if (V == -1 && std::exchange(Inferred, true))
      return Bad("only one dimension can be -1");
    Shape.push_back(V);
  }
  return Shape;
}

Expected<ReshapeRule> compileReshapeRule(StringRef Text) {
  size_t Arrow = Text.find("=>");
  if (Arrow == StringRef::npos)
    return createStringError("rule '" + Text +
                             "' has no '=>'; write GLOB=>[D,...]");
  Expected<GlobPattern> G = GlobPattern::create(Text.take_front(Arrow));
  if (!G)
    return createStringError("rule '" + Text + "': " + toString(G.takeError()));
  Expected<SmallVector<int64_t, 4>> Shape =
      parseShape(Text.drop_front(Arrow + 2), Text);
  if (!Shape)
    return Shape.takeError();
  return ReshapeRule{Text.str(), std::move(*G), std::move(*Shape)};
}

std::string formatShape(ArrayRef<int64_t> Shape) {
  std::string S = "[";
  for (size_t I = 0; I < Shape.size(); ++I)
    S += (I ? ", " : "") + std::to_string(Shape[I]);
  return S + "]";
}

class ReshapePass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Gives the tensors whose keys match a rule's GLOB the rule's "
           "shape [D,...] (one D may be -1: inferred). The element count "
           "must stay; only shape and strides change (no copy), so the "
           "tensor must be contiguous. The first matching rule applies; a "
           "rule that matches nothing is a warning.";
  }

  Error run(Checkpoint &C) override {
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    const std::vector<ReshapeRule> &Rules = RuleOpt.compiled();
    if (Rules.empty())
      return error("no rules; give rule=GLOB=>[D,...]");
    std::vector<unsigned> Hits(Rules.size(), 0);
    std::vector<std::tuple<StringRef, DictEntry *, SmallVector<int64_t, 4>>>
        Todo;
    for (DictEntry &E : SD->entries()) {
      std::optional<StringRef> K = E.keyString();
      auto *T = dyn_cast_or_null<TensorValue>(E.Val.get());
      if (!K || !T)
        continue;
      for (size_t R = 0; R < Rules.size(); ++R) {
        if (!Rules[R].Glob.match(*K))
          continue;
        ++Hits[R];
        Expected<SmallVector<int64_t, 4>> Shape = target(*K, *T, Rules[R]);
        if (!Shape)
          return Shape.takeError();
        Todo.emplace_back(*K, &E, std::move(*Shape));
        break;
      }
    }
    // Every tensor checked: only now change them.
    for (auto &[K, E, Shape] : Todo)
      reshape(K, ownTensor(*E), Shape);
    for (size_t R = 0; R < Rules.size(); ++R)
      if (!Hits[R])
        matchedNothing("rule " + Twine(R + 1) + " ('" + Rules[R].Text +
                       "') matched no tensor");
    return Error::success();
  }

private:
  /// The rule's shape with -1 resolved, once T can take it without a copy.
  Expected<SmallVector<int64_t, 4>> target(StringRef Key, const TensorValue &T,
                                           const ReshapeRule &R) {
    std::optional<uint64_t> N = T.numel();
    if (!N)
      return error("'" + Key + "' has a bad shape " + T.typeString());
    SmallVector<int64_t, 4> Shape = R.Shape;
    uint64_t Known = 1;
    int64_t *Inferred = nullptr;
    for (int64_t &D : Shape)
      if (D == -1)
        Inferred = &D;
      else
        Known *= uint64_t(D);
    if (Inferred && Known != 0 && *N % Known == 0)
      *Inferred = int64_t(*N / Known);
    uint64_t Total = 1;
    for (int64_t D : Shape)
      Total *= uint64_t(D);
    if (Total != *N || (Inferred && Known == 0))
      return error("cannot reshape '" + Key + "' (" + T.typeString() + ", " +
                   Twine(*N) + " elements) to " + formatShape(R.Shape) +
                   " (rule '" + R.Text + "')");
    if (!T.isContiguous())
      return error("'" + Key + "' (" + T.typeString() +
                   ") is a non-contiguous view; reshaping it would need a "
                   "copy");
    return Shape;
  }

  void reshape(StringRef Key, TensorValue &T, ArrayRef<int64_t> Shape) {
    std::string Before = T.typeString();
    T.setShape(Shape);
    if (Before == T.typeString())
      return;
    T.provenance().addRewrite(argument(), "reshaped from " + Before);
    ++NumReshaped;
    remark(Key, &T, "reshaped " + Before + " to " + T.typeString());
  }

  CompiledListOption<ReshapeRule> RuleOpt{
      *this, "rule",
      "GLOB=>[D,...] (one D may be -1); the first matching rule applies; "
      "repeatable",
      compileReshapeRule, Presence::Required};
  Statistic NumReshaped{*this, "reshaped", "tensors given a new shape"};
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(Reshape, ReshapePass)
