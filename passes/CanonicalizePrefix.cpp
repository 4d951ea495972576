//===- CanonicalizePrefix.cpp - Strip, select and add key prefixes --------===//
//
// Wrappers leave prefixes on every key: `module.` (DataParallel/DDP, nested
// as `module.module.`), `_orig_mod.` (torch.compile, possibly in the middle
// of a key). Frameworks nest the model (`backbone.`). This pass strips, then
// selects, then adds prefixes, and keeps `_metadata` module paths in step.
//
//===----------------------------------------------------------------------===//
#include "PassUtils.h"
#include "wopt/IR/StateDict.h"
#include "wopt/Manifest/Target.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"

using namespace llvm;

namespace wopt {
namespace {

using namespace passutil;

/// torch.compile's wrapper attribute: never a real module name, so it is
/// removed wherever it appears as a whole component.
constexpr StringLiteral OrigMod = "_orig_mod.";
constexpr StringLiteral DDPModule = "module.";

/// Removes every `_orig_mod.` component of Key.
std::string stripOrigMod(StringRef Key) {
  std::string Out;
  for (StringRef Part : splitKey(Key)) {
    if (Part == "_orig_mod")
      continue;
    if (!Out.empty())
      Out += '.';
    Out += Part;
  }
  // A key that was only "_orig_mod" stays as it was.
  return Out.empty() ? Key.str() : Out;
}

/// Removes P from the front of Key as often as it is there.
StringRef stripRepeated(StringRef Key, StringRef P) {
  while (!P.empty() && Key.starts_with(P) && Key.size() > P.size())
    Key = Key.drop_front(P.size());
  return Key;
}

class CanonicalizePrefixPass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Strips wrapper prefixes (default: `module.` when every key has "
           "it, repeated, and `_orig_mod.` anywhere), then keeps only the "
           "keys under select=P and strips P, then prepends add=P. Module "
           "paths in the state dict's _metadata follow.";
  }

  Error run(Checkpoint &C) override {
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    std::vector<std::string> Strips = stripList(*SD);
    std::string Select = normalizePrefix(*SelectOpt);
    std::string Add = normalizePrefix(*AddOpt);
    reportUnusedStrips(*SD, Strips);

    if (!Select.empty())
      if (Error E = checkSelectMatches(*SD, Strips, Select))
        return E;

    // Keys outside select= go first, reported by their first component.
    if (!Select.empty())
      dropUnselected(C, *SD, Strips, Select);

    // Told nothing, the pass strips what wrappers add; a key the target
    // has as it is (a model that is itself DDP-wrapped or compiled) stays.
    bool Told = Strip.wasSet() || !Select.empty() || !Add.empty();
    auto Map = [&](StringRef Key) -> std::optional<std::string> {
      std::optional<std::string> New = transform(Key, Strips, Select, Add);
      if (New && !Told && target() && target()->expects(Key) &&
          !target()->expects(*New)) {
        ++NumKeptForTarget;
        return std::nullopt;
      }
      return New;
    };
    unsigned Renamed = 0;
    if (Error E = renameKeys(*SD, Map, argument(), &Renamed))
      return E;
    NumRenamed += Renamed;
    // When a wrapper module strips to the root, the old root entry was the
    // wrapper's (DataParallel): it goes, whatever select/add do next.
    bool WrapperRoot = false;
    if (DictValue *Meta = moduleMetadata(*SD))
      for (const DictEntry &E : Meta->entries())
        if (std::optional<StringRef> K = E.keyString())
          WrapperRoot |=
              !K->empty() && applyStrips((*K + ".x").str(), Strips) == "x";
    NumMetadata += rewriteModuleMetadata(
        *SD, [&](StringRef Path) -> std::optional<std::string> {
          if (Path.empty() && WrapperRoot)
            return std::nullopt;
          return mapModulePath(Path, [&](StringRef P) {
            return mapModulePrefix(P, Strips, Select, Add);
          });
        });
    return Error::success();
  }

private:
  /// The prefixes to strip: always `_orig_mod.` (never a real module name);
  /// then strip= or, without it, `module.` when every key has it (a partial
  /// `module.` prefix is a real submodule).
  std::vector<std::string> stripList(DictValue &SD) {
    std::vector<std::string> L{OrigMod.str()};
    if (Strip.wasSet()) {
      for (const std::string &S : Strip)
        L.push_back(normalizePrefix(S));
      return L;
    }
    unsigned With = 0, Total = 0;
    for (const DictEntry &E : SD.entries()) {
      ++Total;
      With += E.keyString() &&
              StringRef(stripOrigMod(*E.keyString())).starts_with(DDPModule);
    }
    if (With && With == Total)
      L.push_back(DDPModule.str());
    else if (With)
      remark("", nullptr,
             Twine(With) + " of " + Twine(Total) +
                 " keys start with 'module.'; not stripping it (a partial "
                 "prefix is a real submodule). Pass strip=module. to force");
    return L;
  }

  /// Hits (one per strip, optional) counts the keys each one changed.
  static std::string applyStrips(StringRef Key, ArrayRef<std::string> Strips,
                                 MutableArrayRef<unsigned> Hits = {}) {
    std::string K = Key.str();
    // Strip until nothing changes: `module._orig_mod.module.x` needs both.
    for (bool Changed = true; Changed;) {
      Changed = false;
      for (size_t I = 0; I < Strips.size(); ++I) {
        const std::string &P = Strips[I];
        std::string Next =
            P == OrigMod ? stripOrigMod(K) : stripRepeated(K, P).str();
        if (Next != K) {
          K = std::move(Next);
          Changed = true;
          if (!Hits.empty())
            ++Hits[I];
        }
      }
    }
    return K;
  }

  /// strip= prefixes that no key had: most likely a typo (`modul.`).
  void reportUnusedStrips(const DictValue &SD, ArrayRef<std::string> Strips) {
    if (!Strip.wasSet())
      return;
    std::vector<unsigned> Hits(Strips.size(), 0);
    for (const DictEntry &E : SD.entries())
      if (std::optional<StringRef> K = E.keyString())
        (void)applyStrips(*K, Strips, Hits);
    std::vector<std::string> Keys;
    for (const DictEntry &E : SD.entries())
      if (std::optional<StringRef> K = E.keyString())
        Keys.push_back(K->str());
    // Strips[0] is the implicit _orig_mod.; the user's follow.
    for (size_t I = 1; I < Strips.size(); ++I)
      if (!Hits[I])
        matchedNothing("strip='" + Strips[I] +
                       "' matched no key; the keys start with " +
                       describeKeyHeads(Keys, 4));
  }

  /// The first component with its dot ("head."), or the whole key.
  static std::string headOf(StringRef Key) {
    size_t Dot = Key.find('.');
    return Dot == StringRef::npos ? Key.str() : Key.take_front(Dot + 1).str();
  }

  /// The key transformation applied to a module prefix ("module.backbone.",
  /// "" for the root) for _metadata: nullopt when the module is gone.
  static std::optional<std::string>
  mapModulePrefix(StringRef P, ArrayRef<std::string> Strips, StringRef Select,
                  StringRef Add) {
    // Strip as if a parameter name followed, so that the wrapper's own path
    // ("module.") may strip to the root ("").
    std::string S = applyStrips((P + "x").str(), Strips);
    S.pop_back();
    if (!Select.empty()) {
      if (!StringRef(S).starts_with(Select))
        return std::nullopt;
      S = S.substr(Select.size());
    }
    return Add.str() + S;
  }

  static std::optional<std::string> transform(StringRef Key,
                                              ArrayRef<std::string> Strips,
                                              StringRef Select, StringRef Add) {
    std::string K = applyStrips(Key, Strips);
    if (!Select.empty()) {
      assert(StringRef(K).starts_with(Select) && "unselected keys are gone");
      K = K.substr(Select.size());
    }
    K = Add.str() + K;
    if (K == Key)
      return std::nullopt;
    return K;
  }

  static bool selected(StringRef Key, ArrayRef<std::string> Strips,
                       StringRef Select) {
    std::string K = applyStrips(Key, Strips);
    return StringRef(K).starts_with(Select) && K.size() > Select.size();
  }

  Error checkSelectMatches(DictValue &SD, ArrayRef<std::string> Strips,
                           StringRef Select) {
    std::vector<std::string> Stripped;
    for (const DictEntry &E : SD.entries()) {
      std::optional<StringRef> K = E.keyString();
      if (!K)
        continue;
      if (selected(*K, Strips, Select))
        return Error::success();
      Stripped.push_back(applyStrips(*K, Strips));
    }
    return error("no key starts with '" + Select + "' (after stripping)" +
                 "\nnote: the keys start with " + describeKeyHeads(Stripped) +
                 "\nhint: pick one of those prefixes with select=");
  }

  void dropUnselected(Checkpoint &C, DictValue &SD,
                      ArrayRef<std::string> Strips, StringRef Select) {
    StringMap<std::pair<unsigned, uint64_t>> Groups;
    std::vector<std::string> Order, Wanted;
    unsigned N = eraseIf(SD, [&](const DictEntry &E) {
      std::optional<StringRef> K = E.keyString();
      if (K && selected(*K, Strips, Select))
        return false;
      if (K) {
        // Under the name the key would have had after stripping: the one
        // a target would list.
        std::string As = applyStrips(*K, Strips);
        recordRemoved(C, As, E.Val, "not under select=" + Select);
        if (target() && target()->expects(As))
          Wanted.push_back("'" + As + "'");
      }
      std::string S = K ? applyStrips(*K, Strips) : std::string("<non-string>");
      std::string Head = headOf(S);
      auto &G = Groups[Head];
      if (G.first++ == 0)
        Order.push_back(Head);
      uint64_t Bytes = E.Val ? tensorBytes(*E.Val) : 0;
      G.second += Bytes;
      NumRemovedBytes += Bytes;
      return true;
    });
    NumRemoved += N;
    for (const std::string &H : Order)
      remark("", nullptr,
             "removed " + Twine(Groups[H].first) + " keys under '" + H + "' (" +
                 formatBytes(Groups[H].second) +
                 "): not under select=" + Select);
    // select= is explicit, so it wins; but the target wanted these.
    if (!Wanted.empty())
      warning("", nullptr,
              "select=" + Select + " removed " + Twine(Wanted.size()) +
                  (Wanted.size() == 1 ? " key" : " keys") + " the target " +
                  target()->name() + " has: " + joinLimited(Wanted, 4));
  }

  ListOption Strip{*this, "strip",
                   "prefixes to strip, repeated (default: module. when all "
                   "keys have it); _orig_mod. is always stripped, anywhere"};
  Option<std::string> SelectOpt{*this, "select",
                                "keep only keys under this prefix, and strip "
                                "it"};
  Option<std::string> AddOpt{*this, "add", "prefix to prepend to every key"};
  Statistic NumRenamed{*this, "renamed", "keys renamed"};
  Statistic NumRemoved{*this, "removed", "keys removed by select="};
  Statistic NumRemovedBytes{*this, "removed-bytes",
                            "tensor bytes removed by select="};
  Statistic NumMetadata{*this, "metadata-rewritten",
                        "_metadata module paths rewritten or dropped"};
  Statistic NumKeptForTarget{*this, "kept-for-target",
                             "keys left as they are: the target has them so"};
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(CanonicalizePrefix, CanonicalizePrefixPass)
