//===- DropDynamicBuffers.cpp - Drop buffers models recompute -------------===//
//
// Some buffers are derived from the config and rebuilt at construction:
// HF `position_ids`/`token_type_ids` (non-persistent since transformers
// 4.31), Swin's `relative_position_index` and `attn_mask`, rotary
// `inv_freq`. Old checkpoints still carry them and strict loading rejects
// them as unexpected. `num_batches_tracked` is persistent state and stays
// unless asked for.
//
//===----------------------------------------------------------------------===//
#include "PassUtils.h"
#include "wopt/IR/StateDict.h"
#include "wopt/Manifest/Target.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "llvm/Support/GlobPattern.h"

using namespace llvm;

namespace wopt {
namespace {

using namespace passutil;

/// A name pattern: with a glob metacharacter (`*?[`) a glob over the whole
/// key; otherwise a key suffix that starts at a component boundary
/// (`position_ids` matches `emb.position_ids`, not `emb.my_position_ids`).
class KeyPattern {
public:
  static Expected<KeyPattern> parse(StringRef Text) {
    KeyPattern P;
    P.Text = Text.str();
    if (Text.find_first_of("*?[") != StringRef::npos) {
      Expected<GlobPattern> G = GlobPattern::create(Text);
      if (!G)
        return G.takeError();
      P.Glob = std::move(*G);
    }
    return P;
  }
  bool match(StringRef Key) const {
    if (Glob)
      return Glob->match(Key);
    return Key == Text || (Key.ends_with(Text) && Key.size() > Text.size() &&
                           Key[Key.size() - Text.size() - 1] == '.');
  }
  const std::string &text() const { return Text; }

private:
  std::string Text;
  std::optional<GlobPattern> Glob;
};

class DropDynamicBuffersPass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Drops tensors whose keys end in a derived-buffer name "
           "(position_ids, token_type_ids, relative_position_index, "
           "attn_mask, rotary_emb.inv_freq) or match also=; keep= wins. "
           "Patterns are key suffixes at a '.' boundary, or globs over the "
           "whole key when they contain * ? [. With a -target, a key the "
           "target expects is kept unless also= names it (some models keep "
           "relative_position_index as a persistent buffer).";
  }

  Error run(Checkpoint &C) override {
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    std::vector<KeyPattern> Drop, Spare;
    const size_t NumDefaults = derivedBufferNames().size();
    for (StringRef D : derivedBufferNames())
      Drop.push_back(cantFail(KeyPattern::parse(D)));
    if (Error E = parseAll(Also, Drop))
      return E;
    if (Error E = parseAll(Keep, Spare))
      return E;

    // Which of also= (after the defaults in Drop) and keep= matched a key.
    std::vector<bool> DropHit(Drop.size()), SpareHit(Spare.size());
    eraseIf(*SD, [&](const DictEntry &E) {
      std::optional<StringRef> K = E.keyString();
      auto *T = dyn_cast_or_null<TensorValue>(E.Val.get());
      if (!K || !T)
        return false;
      auto Hit = [&](const KeyPattern &P) { return P.match(*K); };
      for (size_t I = 0; I < Drop.size(); ++I)
        DropHit[I] = DropHit[I] || Drop[I].match(*K);
      for (size_t I = 0; I < Spare.size(); ++I)
        SpareHit[I] = SpareHit[I] || Spare[I].match(*K);
      // also= is an explicit request; the defaults give way to the target.
      auto Why = std::find_if(Drop.begin() + NumDefaults, Drop.end(), Hit);
      if (Why == Drop.end())
        Why = find_if(Drop, Hit);
      if (Why == Drop.end() || any_of(Spare, Hit))
        return false;
      bool Explicit = size_t(Why - Drop.begin()) >= NumDefaults;
      if (!Explicit && target() && target()->expects(*K)) {
        ++NumKeptForTarget;
        remark(*K, T,
               "kept " + T->typeString() + " (matches '" + Why->text() +
                   "'): the target " + target()->name() + " has it");
        return false;
      }
      ++NumDropped;
      NumDroppedBytes += tensorBytes(*T);
      remark(*K, T,
             "dropped derived buffer " + T->typeString() + " (matches '" +
                 Why->text() + "')");
      recordRemoved(C, *K, E.Val,
                    "a derived buffer (matches '" + Why->text() + "')",
                    "keep=" + Why->text());
      return true;
    });
    for (size_t I = NumDefaults; I < Drop.size(); ++I)
      if (!DropHit[I])
        matchedNothing("also='" + Drop[I].text() + "' matched no tensor");
    for (size_t I = 0; I < Spare.size(); ++I)
      if (!SpareHit[I])
        matchedNothing("keep='" + Spare[I].text() + "' matched no tensor");
    return Error::success();
  }

private:
  Error parseAll(const ListOption &L, std::vector<KeyPattern> &Out) {
    for (const std::string &S : L) {
      Expected<KeyPattern> P = KeyPattern::parse(S);
      if (!P)
        return error("bad pattern '" + S + "' in " + L.name() +
                     "=: " + toString(P.takeError()));
      Out.push_back(std::move(*P));
    }
    return Error::success();
  }

  ListOption Also{*this, "also",
                  "more buffers to drop: key suffixes, or globs with * ? ["};
  ListOption Keep{*this, "keep",
                  "buffers to keep even if they match: key suffixes or globs"};
  Statistic NumDropped{*this, "dropped", "buffers dropped"};
  Statistic NumDroppedBytes{*this, "dropped-bytes", "bytes dropped"};
  Statistic NumKeptForTarget{*this, "kept-for-target",
                             "buffers kept because the target has them"};
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(DropDynamicBuffers, DropDynamicBuffersPass)
