//===- Unwrap.cpp - Make the state dict inside a wrapper the root ---------===//
//
// Training checkpoints wrap the weights: {'teacher': sd, 'student': sd,
// 'optimizer': ..., 'iteration': n}, {'meta', 'state_dict', 'optimizer'},
// {'state_dict', 'state_dict_ema', 'epoch'}. unwrap picks the state dict and
// makes it the root; everything else is dropped and reported. Without a key
// it only picks when the choice is unambiguous.
//
//===----------------------------------------------------------------------===//
#include "PassUtils.h"
#include "wopt/IR/StateDict.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"

using namespace llvm;

namespace wopt {
namespace {

using namespace passutil;

/// One state dict found below the root.
struct Candidate {
  std::vector<std::string> Path; ///< keys from the root
  ValuePtr Dict;
  bool IsEMA = false;
  bool IsWellKnown = false; ///< every key on the path names "the model"
};

std::string joinPath(ArrayRef<std::string> Path) {
  return Path.empty() ? std::string("<root>") : join(Path, "/");
}

/// Keys under which frameworks store the model's own weights.
bool isModelKey(StringRef K) {
  return StringSwitch<bool>(K)
      .Cases("state_dict", "model_state_dict", "model", "module", "net",
             "network", "state", true)
      .Cases("weights", "params", "model_state", true)
      .Default(false);
}

/// Keys under which timm, mmengine and friends store averaged weights.
bool isEMAKey(StringRef K) {
  std::string L = K.lower();
  StringRef S(L);
  return S == "ema" || S.starts_with("ema_") || S.ends_with("_ema") ||
         S.contains("_ema_");
}

class UnwrapPass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Makes a sub-dict of a training checkpoint the root. With key=K "
           "(a path: 'model.state_dict' or 'model/state_dict') that dict; "
           "without, the unique state dict below well-known wrapper keys, "
           "preferring non-EMA weights unless ema=true. Everything else is "
           "dropped and reported.";
  }

  Error run(Checkpoint &C) override {
    auto *Root = dyn_cast_or_null<DictValue>(C.root().get());
    if (!Root)
      return error("the root is not a dict; nothing to unwrap");
    if (!Key->empty())
      return runWithKey(C, *Root);
    if (isStateDict(*Root)) {
      remark("", nullptr, "the root is already a state dict; nothing to do");
      return Error::success();
    }
    std::vector<Candidate> All;
    SmallPtrSet<const Value *, 32> Seen;
    collect(C.root(), {}, All, Seen);
    Expected<Candidate> Pick = choose(All);
    if (!Pick)
      return Pick.takeError();
    return adopt(C, *Pick);
  }

private:
  Error runWithKey(Checkpoint &C, DictValue &Root) {
    std::vector<std::string> Path;
    ValuePtr Found = resolve(Root, *Key, Path);
    if (!Found) {
      if (isStateDict(Root)) {
        warning("", nullptr,
                "the root is already a state dict and has no dict at '" + *Key +
                    "'; nothing to unwrap");
        return Error::success();
      }
      std::vector<std::string> Keys;
      for (const DictEntry &E : Root.entries())
        if (auto K = E.keyString())
          Keys.push_back("'" + K->str() + "'");
      return error("no dict at key '" + *Key + "'\nnote: the root has keys " +
                   joinLimited(Keys, 12));
    }
    if (!isa<DictValue>(Found.get()))
      return error("'" + *Key + "' is not a dict");
    Candidate Pick;
    Pick.Path = Path;
    Pick.Dict = Found;
    return adopt(C, Pick);
  }

  /// Finds Key below D: the whole key first (keys may contain dots), then
  /// every split of it at a '.' or '/', longest first component first.
  static ValuePtr resolve(DictValue &D, StringRef Key,
                          std::vector<std::string> &Path) {
    if (DictEntry *E = D.find(Key)) {
      Path.push_back(Key.str());
      return E->Val;
    }
    for (size_t I = Key.size(); I-- > 0;) {
      if (Key[I] != '.' && Key[I] != '/')
        continue;
      StringRef Head = Key.take_front(I), Rest = Key.drop_front(I + 1);
      DictEntry *E = D.find(Head);
      auto *Sub = E ? dyn_cast_or_null<DictValue>(E->Val.get()) : nullptr;
      if (!Sub)
        continue;
      Path.push_back(Head.str());
      if (ValuePtr V = resolve(*Sub, Rest, Path))
        return V;
      Path.pop_back();
    }
    return nullptr;
  }

  /// Every state dict reachable from V through dicts (not through lists or
  /// opaque objects: optimizer and framework state lives there), each dict
  /// once, at the first path that reaches it.
  static void collect(const ValuePtr &V, std::vector<std::string> Path,
                      std::vector<Candidate> &Out,
                      SmallPtrSetImpl<const Value *> &Seen) {
    auto *D = dyn_cast_or_null<DictValue>(V.get());
    if (!D || !Seen.insert(D).second)
      return;
    if (!Path.empty() && isStateDict(*D)) {
      Candidate Cand;
      Cand.Path = Path;
      Cand.Dict = V;
      Cand.IsEMA =
          any_of(Path, [](const std::string &K) { return isEMAKey(K); });
      Cand.IsWellKnown =
          all_of(Path, [](const std::string &K) { return isModelKey(K); });
      Out.push_back(std::move(Cand));
      return;
    }
    for (const DictEntry &E : D->entries()) {
      std::optional<StringRef> K = E.keyString();
      if (!K)
        continue;
      Path.push_back(K->str());
      collect(E.Val, Path, Out, Seen);
      Path.pop_back();
    }
  }

  Expected<Candidate> choose(const std::vector<Candidate> &All) {
    if (All.empty())
      return error("found no state dict (a dict of named tensors) below the "
                   "root; pass key=K to pick a dict");
    std::vector<Candidate> Pool;
    for (const Candidate &Cand : All)
      if (Cand.IsEMA == bool(EMA))
        Pool.push_back(Cand);
    if (Pool.empty())
      return ambiguity(All, EMA ? "found no EMA weights (keys like "
                                  "'state_dict_ema', 'model_ema', 'ema')"
                                : "found only EMA weights; pass ema=true to "
                                  "use them");
    if (Pool.size() == 1)
      return Pool.front();
    std::vector<Candidate> Known;
    for (const Candidate &Cand : Pool)
      if (Cand.IsWellKnown)
        Known.push_back(Cand);
    if (Known.size() == 1) {
      for (const Candidate &Cand : Pool)
        if (!Cand.IsWellKnown)
          remark("", nullptr,
                 "also found a state dict at '" + joinPath(Cand.Path) +
                     "'; chose '" + joinPath(Known.front().Path) +
                     "' (a well-known model key)");
      return Known.front();
    }
    return ambiguity(Pool, "found " + Twine(Pool.size()) +
                               " state dicts and no rule picks one");
  }

  Error ambiguity(const std::vector<Candidate> &Cands, const Twine &Why) {
    std::string Msg;
    raw_string_ostream OS(Msg);
    OS << "cannot choose the state dict: " << Why;
    for (const Candidate &Cand : Cands) {
      uint64_t Bytes = tensorBytes(*Cand.Dict);
      OS << "\nnote: candidate '" << joinPath(Cand.Path)
         << "': " << countTensors(*Cand.Dict) << " tensors, "
         << formatBytes(Bytes) << (Cand.IsEMA ? " (EMA)" : "");
    }
    OS << "\nhint: pass key=<path>, e.g. unwrap{key="
       << join(Cands.front().Path, "/") << "}";
    return error(Msg);
  }

  /// Makes Pick the root: reports what is dropped along the way and adds a
  /// history step to every tensor that stays.
  Error adopt(Checkpoint &C, const Candidate &Pick) {
    reportDropped(*C.root(), Pick.Path, 0);
    std::string From = join(Pick.Path, "/");
    SmallPtrSet<const Value *, 32> Seen;
    walkTensors(
        *Pick.Dict, "",
        [&](TensorValue &T, StringRef Rel) {
          T.provenance().addRename(argument(), From + "/" + Rel.str(), Rel);
          ++NumKept;
        },
        Seen);
    remark("", nullptr,
           "unwrapped '" + From + "' (" + Twine(NumKept.value()) +
               " tensors, " + formatBytes(tensorBytes(*Pick.Dict)) + ")");
    C.setRoot(Pick.Dict);
    return Error::success();
  }

  void reportDropped(const Value &V, ArrayRef<std::string> Path, size_t Depth) {
    const auto *D = dyn_cast<DictValue>(&V);
    if (!D || Depth >= Path.size())
      return;
    for (const DictEntry &E : D->entries()) {
      std::optional<StringRef> K = E.keyString();
      if (K && *K == Path[Depth]) {
        if (E.Val)
          reportDropped(*E.Val, Path, Depth + 1);
        continue;
      }
      std::string Name = K ? K->str() : std::string("<non-string key>");
      if (Depth)
        Name = join(Path.take_front(Depth), "/") + "/" + Name;
      uint64_t Bytes = E.Val ? tensorBytes(*E.Val) : 0;
      uint64_t Tensors = E.Val ? countTensors(*E.Val) : 0;
      ++NumDropped;
      NumDroppedTensors += Tensors;
      NumDroppedBytes += Bytes;
      remark("", nullptr,
             "dropped '" + Name + "' (" + describe(E.Val.get()) +
                 (Tensors ? ", " + Twine(Tensors) + " tensors, " +
                                formatBytes(Bytes)
                          : Twine("")) +
                 ")");
    }
  }

  static std::string describe(const Value *V) {
    if (!V)
      return "none";
    switch (V->kind()) {
    case Value::Kind::Dict:
      return "dict of " + std::to_string(cast<DictValue>(V)->size());
    case Value::Kind::List:
    case Value::Kind::Tuple:
      return "sequence of " +
             std::to_string(cast<SequenceValue>(V)->elements().size());
    case Value::Kind::Opaque:
      return "object " + cast<OpaqueValue>(V)->qualifiedName();
    case Value::Kind::Tensor:
      return "tensor " + cast<TensorValue>(V)->typeString();
    case Value::Kind::Int:
      return "int " + std::to_string(cast<IntValue>(V)->value());
    case Value::Kind::Str:
      return "str";
    default:
      return "scalar";
    }
  }

  /// Tensors below V through dicts and sequences, each node once, with the
  /// path that first reaches it.
  static void walkTensors(Value &V, StringRef Rel,
                          function_ref<void(TensorValue &, StringRef)> F,
                          SmallPtrSetImpl<const Value *> &Seen) {
    if (!Seen.insert(&V).second)
      return;
    if (auto *T = dyn_cast<TensorValue>(&V))
      return F(*T, Rel);
    if (auto *D = dyn_cast<DictValue>(&V)) {
      for (DictEntry &E : D->entries()) {
        std::optional<StringRef> K = E.keyString();
        if (!E.Val || !K)
          continue;
        std::string Sub = Rel.empty() ? K->str() : (Rel + "/" + *K).str();
        walkTensors(*E.Val, Sub, F, Seen);
      }
      return;
    }
    if (auto *S = dyn_cast<SequenceValue>(&V))
      for (size_t I = 0; I < S->elements().size(); ++I)
        if (S->elements()[I])
          walkTensors(*S->elements()[I], (Rel + "/" + Twine(I)).str(), F, Seen);
  }

  Option<std::string> Key{*this, "key",
                          "path of the dict to make the root "
                          "('teacher', 'model.state_dict')"};
  Option<bool> EMA{*this, "ema",
                   "pick EMA weights (state_dict_ema, model_ema, ema) when "
                   "choosing automatically"};
  Statistic NumKept{*this, "kept-tensors", "tensors in the new root"};
  Statistic NumDropped{*this, "dropped-entries",
                       "wrapper entries dropped (optimizer, meta, ...)"};
  Statistic NumDroppedTensors{*this, "dropped-tensors",
                              "tensors in the dropped entries"};
  Statistic NumDroppedBytes{*this, "dropped-bytes",
                            "tensor bytes in the dropped entries"};
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(Unwrap, UnwrapPass)

llvm::Error wopt::unwrapToStateDict(Checkpoint &C) {
  if (C.stateDict())
    return llvm::Error::success();
  static const PassInfo Info{"unwrap", "", nullptr};
  return UnwrapPass(Info).run(C);
}
