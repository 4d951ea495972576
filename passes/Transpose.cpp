//===- Transpose.cpp - Transpose 2-D tensors as views --------------------===//
//
// transpose{keys=GLOBS}: swaps the two dims of each matching 2-D tensor
// (HF CLIP's text_projection.weight (embed, width) is OpenCLIP's
// text_projection (width, embed)). Only shape and strides change: the result
// is a non-contiguous view of the same storage, which export writes as is
// and torch loads as a transposed view (load_state_dict copies it into the
// parameter). No bytes are copied, and a storage shared with other tensors
// stays valid for them.
//
//===----------------------------------------------------------------------===//
#include "PassUtils.h"
#include "wopt/IR/StateDict.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "llvm/Support/GlobPattern.h"

using namespace llvm;

namespace wopt {
namespace {

class TransposePass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Transposes the 2-D tensors whose keys match keys= (globs over "
           "the whole key) by swapping shape and strides: a view, no data is "
           "copied. A matching tensor that is not 2-D is an error; a glob "
           "that matches nothing is a warning.";
  }

  Error run(Checkpoint &C) override {
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    if (Keys.empty())
      return error("no keys; give keys=GLOB,...");
    Expected<std::vector<GlobPattern>> Globs = passutil::compileKeyGlobs(*Keys);
    if (!Globs)
      return error(toString(Globs.takeError()));
    std::vector<unsigned> Hits(Globs->size(), 0);
    std::vector<std::pair<StringRef, DictEntry *>> Todo;
    for (DictEntry &E : SD->entries()) {
      std::optional<StringRef> K = E.keyString();
      auto *T = dyn_cast_or_null<TensorValue>(E.Val.get());
      if (!K || !T || !passutil::matchCounting(*Globs, *K, Hits))
        continue;
      if (T->shape().size() != 2)
        return error("'" + *K + "' is " + T->typeString() +
                     ": only 2-D tensors can be transposed");
      Todo.push_back({*K, &E});
    }
    for (auto [K, E] : Todo)
      transpose(K, ownTensor(*E));
    for (size_t I = 0; I < Globs->size(); ++I)
      if (!Hits[I])
        matchedNothing("keys='" + Keys->at(I) + "' matched no tensor");
    return Error::success();
  }

private:
  void transpose(StringRef Key, TensorValue &T) {
    std::string Before = T.typeString();
    int64_t Shape[2] = {T.shape()[1], T.shape()[0]};
    int64_t Strides[2] = {T.strides()[1], T.strides()[0]};
    T.setShapeAndStrides(Shape, Strides);
    T.provenance().addRewrite(argument(),
                              "transposed " + Before +
                                  " (a view: shape and strides swapped)");
    ++NumTransposed;
    remark(Key, &T, "transposed " + Before + " to " + T.typeString());
  }

  ListOption Keys{*this, "keys", "globs over whole keys of 2-D tensors",
                  Presence::Required};
  Statistic NumTransposed{*this, "transposed", "tensors transposed"};
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(Transpose, TransposePass)
