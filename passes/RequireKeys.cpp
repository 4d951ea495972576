//===- RequireKeys.cpp - Fail unless the checkpoint has the keys expected -===//
//
// require-keys{keys=GLOBS}: every glob must match a key of the root state
// dict, or the run stops (exit 2) before any pass changes a thing. Named
// pipelines start with it: their signature. A recipe written for HF CLIP
// run on a ConvNeXt would otherwise "succeed" with a warning per rule that
// matched nothing and write a file no model loads. Synthesis reads the same
// globs to recognise which named pipeline a checkpoint is for.
//
//===----------------------------------------------------------------------===//
#include "PassUtils.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/GlobPattern.h"

using namespace llvm;

namespace wopt {
namespace {

using namespace passutil;

Expected<GlobPattern> compileKeyGlob(StringRef Text) {
  Expected<GlobPattern> G = GlobPattern::create(Text);
  if (!G)
    return createStringError("glob '" + Text + "': " + toString(G.takeError()));
  return G;
}

class RequireKeysPass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Fails the run (exit 2) unless every glob of keys= matches at "
           "least one key of the root state dict; changes nothing. Named "
           "pipelines begin with it, so a pipeline run on a checkpoint it "
           "was not written for stops and says what it looked for instead "
           "of writing a file no model loads.";
  }

  Error run(Checkpoint &C) override {
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    std::vector<std::string> Keys;
    for (const DictEntry &E : SD->entries())
      if (std::optional<StringRef> K = E.keyString())
        Keys.push_back(K->str());
    std::vector<std::string> Absent;
    const std::vector<GlobPattern> &Globs = KeysOpt.compiled();
    for (size_t I = 0; I < Globs.size(); ++I)
      if (none_of(Keys, [&](StringRef K) { return Globs[I].match(K); }))
        Absent.push_back("'" + (*KeysOpt)[I] + "'");
    NumChecked += Globs.size();
    if (Absent.empty())
      return Error::success();

    std::string Subject =
        pipelineName().empty()
            ? "pass '" + argument().str() + "'"
            : "pipeline '" + pipelineName().str() + "' does not fit: it";
    std::string Msg = Subject + " expects keys matching " +
                      joinLimited(Absent) + ", and no key of the " +
                      std::to_string(Keys.size()) + " does";
    Msg += "\nnote: the keys start with " + describeKeyHeads(Keys);
    if (!pipelineName().empty())
      Msg += "\nnote: 'wopt --help-pass=" + pipelineName().str() +
             "' says what it is for; 'wopt --help' lists the others";
    return createStringError(Msg);
  }

private:
  CompiledListOption<GlobPattern> KeysOpt{
      *this, "keys",
      "globs over whole keys (llvm::GlobPattern); each must match a key",
      compileKeyGlob, Presence::Required};
  Statistic NumChecked{*this, "checked", "globs checked"};
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(RequireKeys, RequireKeysPass)
