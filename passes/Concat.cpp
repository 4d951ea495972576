//===- Concat.cpp - Concatenate groups of tensors into one key ------------===//
//
// concat{rule=REGEX=>KEY dim=D}: fuses tensors that one model keeps apart and
// another keeps together, e.g. HF CLIP's self_attn.{q,k,v}_proj.weight and
// nn.MultiheadAttention's in_proj_weight. REGEX is a rename-style regex with
// one part list `{q,k,v}`; each part, substituted into the regex, picks one
// member of a group, and the replacement KEY (with $N references) names the
// group. The members are concatenated in part order along D into a fresh
// storage owned by the IR.
//
//===----------------------------------------------------------------------===//
#include "KeyRegex.h"
#include "PassUtils.h"
#include "wopt/Pass/Pass.h"
#include "wopt/Passes/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include <algorithm>
#include <cstring>

using namespace llvm;

namespace wopt {
namespace {

using namespace passutil;

/// A rule with its part list expanded: Parts[i] is the regex that picks
/// member i, all with the same replacement.
struct ConcatRule {
  std::string Text;
  std::vector<std::string> PartNames;
  std::vector<KeyRegex> Parts;
};

/// True when Body (the text between braces) is a regex interval such as
/// `2` or `1,3`, which is the regex's business, not a part list.
bool isInterval(StringRef Body) {
  return !Body.empty() &&
         Body.find_first_not_of("0123456789,") == StringRef::npos &&
         Body.count(',') <= 1;
}

/// Finds the one `{a,b,...}` part list in Pattern: returns its brace
/// positions.
Expected<std::pair<size_t, size_t>> findPartList(StringRef Pattern,
                                                 StringRef Text) {
  std::optional<std::pair<size_t, size_t>> Found;
  for (size_t I = 0; I < Pattern.size(); ++I) {
    if (Pattern[I] == '\\') {
      ++I; // an escaped character, maybe a literal brace
      continue;
    }
    if (Pattern[I] != '{')
      continue;
    size_t Close = Pattern.find('}', I);
    if (Close == StringRef::npos)
      break;
    StringRef Body = Pattern.slice(I + 1, Close);
    if (isInterval(Body) || !Body.contains(','))
      continue;
    if (Found)
      return createStringError("rule '" + Text +
                               "' has more than one part list {..,..}");
    Found = {I, Close};
    I = Close;
  }
  if (!Found)
    return createStringError(
        "rule '" + Text +
        "' has no part list; write the members as {a,b,...} in the regex, "
        "e.g. self_attn\\.{q,k,v}_proj\\.weight");
  return *Found;
}

Expected<ConcatRule> compileConcatRule(StringRef Text) {
  size_t Arrow = Text.find("=>");
  if (Arrow == StringRef::npos)
    return createStringError("rule '" + Text +
                             "' has no '=>'; write REGEX{a,b,..}=>KEY");
  StringRef Pattern = Text.take_front(Arrow),
            Target = Text.drop_front(Arrow + 2);
  if (Target.empty())
    return createStringError("rule '" + Text + "' has an empty key");
  Expected<std::pair<size_t, size_t>> Braces = findPartList(Pattern, Text);
  if (!Braces)
    return Braces.takeError();
  ConcatRule R;
  R.Text = Text.str();
  SmallVector<StringRef, 4> Names;
  Pattern.slice(Braces->first + 1, Braces->second).split(Names, ',');
  for (StringRef Name : Names) {
    if (Name.empty())
      return createStringError("rule '" + Text + "' has an empty part");
    std::string PartPattern = (Pattern.take_front(Braces->first) + Name +
                               Pattern.drop_front(Braces->second + 1))
                                  .str();
    Expected<KeyRegex> Re = compileKeyRegex(PartPattern, Target, Text);
    if (!Re)
      return Re.takeError();
    R.PartNames.push_back(Name.str());
    R.Parts.push_back(std::move(*Re));
  }
  return R;
}

/// One output key and the entries (indices into the state dict) that make
/// it, in part order; a missing member is npos.
struct Group {
  std::string Target;
  size_t Rule = 0;
  std::vector<size_t> Members;
};
constexpr size_t Missing = ~size_t(0);

/// Copies the elements of T in row-major order into Dst, Chunk elements at a
/// time, each chunk at Dst + k * DstPitch (in bytes). Reads through the
/// view's strides, so non-contiguous inputs need no copy first.
void gather(const TensorValue &T, int64_t Chunk, uint64_t DstPitch,
            uint8_t *Dst) {
  const unsigned Elt = dtypeSize(T.dtype());
  const uint8_t *Src = T.storage()->bytes().data();
  uint64_t N = *T.numel();
  if (N == 0)
    return;
  if (T.isContiguous()) {
    const uint8_t *From = Src + T.storageOffset() * Elt;
    for (uint64_t Done = 0; Done < N; Done += Chunk, Dst += DstPitch)
      std::memcpy(Dst, From + Done * Elt, Chunk * Elt);
    return;
  }
  ArrayRef<int64_t> Shape = T.shape(), Strides = T.strides();
  SmallVector<int64_t, 4> Index(Shape.size(), 0);
  int64_t SrcElem = T.storageOffset();
  for (uint64_t L = 0; L < N; ++L) {
    std::memcpy(Dst + (L / Chunk) * DstPitch + (L % Chunk) * Elt,
                Src + SrcElem * Elt, Elt);
    // Advance the multi-index like an odometer, keeping SrcElem in step.
    for (size_t D = Shape.size(); D-- > 0;) {
      SrcElem += Strides[D];
      if (++Index[D] < Shape[D])
        break;
      SrcElem -= Strides[D] * Shape[D];
      Index[D] = 0;
    }
  }
}

class ConcatPass : public Pass {
public:
  using Pass::Pass;

  StringRef description() const override {
    return "Concatenates groups of tensors into one new key. A rule is "
           "REGEX=>KEY where REGEX is a rename-style regex (matched whole, "
           "\\d \\w \\s, groups) holding one part list {a,b,...}: each part "
           "in turn substituted into the regex picks one member, KEY ($N "
           "references) names the group, and the members are concatenated "
           "in part order along dim= (default 0). Dtypes and all other dims "
           "must agree; a group missing a member is an error naming it; the "
           "new key may not collide with a key that stays. The result owns "
           "fresh contiguous bytes; its provenance names the members.";
  }

  Error run(Checkpoint &C) override {
    DictValue *SD = C.stateDict();
    if (!SD)
      return needsStateDict(C);
    const std::vector<ConcatRule> &Rules = RuleOpt.compiled();
    if (Rules.empty())
      return error("no rules; give rule=REGEX{a,b,..}=>KEY");
    Expected<std::vector<Group>> Groups = collect(*SD, Rules);
    if (!Groups)
      return Groups.takeError();
    std::vector<ValuePtr> Fused;
    for (const Group &G : *Groups) {
      Expected<ValuePtr> T = fuse(*SD, G, Rules[G.Rule]);
      if (!T)
        return T.takeError();
      Fused.push_back(std::move(*T));
    }
    // Everything is checked and built: only now change the state dict.
    for (const Group &G : *Groups)
      for (size_t M : G.Members)
        if (*SD->entries()[M].keyString() != G.Target)
          recordRemoved(C, *SD->entries()[M].keyString(), SD->entries()[M].Val,
                        "joined into '" + G.Target + "' by rule " +
                            Twine(G.Rule + 1));
    replace(*SD, *Groups, Fused);
    return Error::success();
  }

private:
  /// Assigns the keys to groups and checks that every group is complete and
  /// that no new key collides with a key that stays.
  Expected<std::vector<Group>> collect(const DictValue &SD,
                                       ArrayRef<ConcatRule> Rules) {
    std::vector<Group> Groups;
    StringMap<size_t> ByTarget;
    std::vector<unsigned> Hits(Rules.size(), 0);
    const std::vector<DictEntry> &Entries = SD.entries();
    for (size_t I = 0; I < Entries.size(); ++I) {
      std::optional<StringRef> K = Entries[I].keyString();
      if (!K || !isa_and_nonnull<TensorValue>(Entries[I].Val.get()))
        continue;
      for (size_t R = 0; R < Rules.size(); ++R) {
        std::optional<std::pair<size_t, std::string>> M =
            matchRule(Rules[R], *K);
        if (!M)
          continue;
        ++Hits[R];
        auto [It, New] = ByTarget.try_emplace(M->second, Groups.size());
        if (New)
          Groups.push_back(
              {M->second, R,
               std::vector<size_t>(Rules[R].Parts.size(), Missing)});
        Group &G = Groups[It->second];
        if (G.Rule != R)
          return error("'" + *K + "' (rule " + Twine(R + 1) +
                       ") and a key of rule " + Twine(G.Rule + 1) +
                       " both make '" + G.Target + "'");
        size_t &Slot = G.Members[M->first];
        if (Slot != Missing)
          return error("'" + *Entries[Slot].keyString() + "' and '" + *K +
                       "' are both part '" + Rules[R].PartNames[M->first] +
                       "' of '" + G.Target + "'");
        Slot = I;
        break;
      }
    }
    for (size_t R = 0; R < Rules.size(); ++R)
      if (!Hits[R])
        matchedNothing("rule " + Twine(R + 1) + " ('" + Rules[R].Text +
                       "') matched no key");
    if (Error Err = checkComplete(SD, Groups, Rules))
      return Err;
    if (Error Err = checkCollisions(SD, Groups))
      return Err;
    return Groups;
  }

  /// The part index and group key when Key is a member under Rule.
  static std::optional<std::pair<size_t, std::string>>
  matchRule(const ConcatRule &Rule, StringRef Key) {
    for (size_t P = 0; P < Rule.Parts.size(); ++P)
      if (std::optional<std::string> Target = Rule.Parts[P].apply(Key))
        return std::make_pair(P, std::move(*Target));
    return std::nullopt;
  }

  Error checkComplete(const DictValue &SD, ArrayRef<Group> Groups,
                      ArrayRef<ConcatRule> Rules) {
    for (const Group &G : Groups) {
      std::vector<std::string> Lacking, Have;
      for (size_t P = 0; P < G.Members.size(); ++P) {
        const std::string &Name = Rules[G.Rule].PartNames[P];
        if (G.Members[P] == Missing)
          Lacking.push_back("'" + Name + "'");
        else
          Have.push_back(Name + "='" +
                         SD.entries()[G.Members[P]].keyString()->str() + "'");
      }
      if (!Lacking.empty())
        return error("group '" + G.Target + "' (rule " + Twine(G.Rule + 1) +
                     ") is missing part " + join(Lacking, ", ") +
                     "\nnote: it has " + joinLimited(Have));
    }
    return Error::success();
  }

  /// A new key may replace one of the members (they all go) but never a key
  /// that stays: that would silently drop a tensor.
  Error checkCollisions(const DictValue &SD, ArrayRef<Group> Groups) {
    std::vector<bool> Consumed(SD.size(), false);
    for (const Group &G : Groups)
      for (size_t M : G.Members)
        Consumed[M] = true;
    for (const Group &G : Groups)
      for (size_t I = 0; I < SD.size(); ++I)
        if (!Consumed[I] && SD.entries()[I].keyString() == StringRef(G.Target))
          return error("the concatenation '" + G.Target +
                       "' would replace the existing key of that name; "
                       "rename or drop it first");
    return Error::success();
  }

  /// Checks the members of G agree and concatenates them.
  Expected<ValuePtr> fuse(const DictValue &SD, const Group &G,
                          const ConcatRule &Rule) {
    std::vector<const TensorValue *> Ts;
    std::vector<std::string> Names;
    for (size_t M : G.Members) {
      Ts.push_back(cast<TensorValue>(SD.entries()[M].Val.get()));
      Names.push_back(SD.entries()[M].keyString()->str());
    }
    Expected<int64_t> Dim = checkMembers(G, Ts, Names);
    if (!Dim)
      return Dim.takeError();
    const TensorValue &First = *Ts.front();
    SmallVector<int64_t, 4> Shape(First.shape().begin(), First.shape().end());
    Shape[*Dim] = 0;
    for (const TensorValue *T : Ts)
      Shape[*Dim] += T->shape()[*Dim];

    // Each member contributes, per index of the dims before Dim, one
    // contiguous chunk of its dims from Dim on; the output interleaves them.
    const unsigned Elt = dtypeSize(First.dtype());
    int64_t Outer = 1, OutChunk = 0;
    for (int64_t D = 0; D < *Dim; ++D)
      Outer *= Shape[D];
    std::vector<int64_t> Chunks;
    for (const TensorValue *T : Ts) {
      int64_t Chunk = 1;
      for (size_t D = *Dim; D < T->shape().size(); ++D)
        Chunk *= T->shape()[D];
      Chunks.push_back(Chunk);
      OutChunk += Chunk;
    }
    std::vector<uint8_t> Bytes(uint64_t(Outer) * OutChunk * Elt);
    uint64_t At = 0;
    for (size_t I = 0; I < Ts.size(); ++I) {
      if (Chunks[I] > 0)
        gather(*Ts[I], Chunks[I], uint64_t(OutChunk) * Elt, Bytes.data() + At);
      At += uint64_t(Chunks[I]) * Elt;
    }

    auto T = std::make_shared<TensorValue>();
    T->setDType(First.dtype());
    T->setShape(Shape);
    T->setParameter(First.isParameter());
    T->setRequiresGrad(First.requiresGrad());
    NumBytes += Bytes.size();
    T->setStorage(Storage::owned((argument() + "/" + G.Target).str(),
                                 First.dtype(), std::move(Bytes)));
    // The first member's origin stands for the group; the note names all.
    T->provenance() = First.provenance();
    T->provenance().addRename(argument(), Names.front(), G.Target);
    T->provenance().addRewrite(argument(), "concatenated along dim " +
                                               Twine(*Dim).str() + " from " +
                                               join(Names, ", "));
    ++NumGroups;
    NumMembers += Ts.size();
    remark(G.Target, T.get(),
           "concatenated " + Twine(Ts.size()) + " tensors (" +
               join(Rule.PartNames, ",") + ") along dim " + Twine(*Dim) +
               " into " + T->typeString());
    return T;
  }

  /// The dim to concatenate along (normalized), once the members agree on
  /// dtype, rank and the other dims and have their data.
  Expected<int64_t> checkMembers(const Group &G,
                                 ArrayRef<const TensorValue *> Ts,
                                 ArrayRef<std::string> Names) {
    const TensorValue &First = *Ts.front();
    int64_t Rank = First.shape().size();
    int64_t D = *Dim < 0 ? *Dim + Rank : int64_t(*Dim);
    if (Rank == 0 || D < 0 || D >= Rank)
      return error("dim=" + Twine(int64_t(*Dim)) + " is out of range for '" +
                   Names.front() + "' (" + First.typeString() + ")");
    // Their elements do not sit on byte boundaries: the byte copies below
    // cannot split them.
    if (isSubByte(First.dtype()))
      return error("cannot concatenate '" + Names.front() + "' (" +
                   First.typeString() +
                   "): its elements are narrower than "
                   "a byte");
    for (size_t I = 0; I < Ts.size(); ++I) {
      const TensorValue &T = *Ts[I];
      bool Same = T.dtype() == First.dtype() &&
                  T.shape().size() == First.shape().size();
      for (int64_t K = 0; Same && K < Rank; ++K)
        Same = K == D || T.shape()[K] == First.shape()[K];
      if (!Same)
        return error("cannot concatenate '" + G.Target + "' along dim " +
                     Twine(D) + ": '" + Names.front() + "' is " +
                     First.typeString() + " but '" + Names[I] + "' is " +
                     T.typeString());
      if (!T.storage() || !T.storage()->hasData())
        return error("'" + Names[I] +
                     "' needs tensor data to concatenate, but its data was "
                     "elided");
      std::optional<uint64_t> Need = T.requiredStorageBytes();
      if (!T.numel() || !Need || *Need > T.storage()->bytes().size())
        return error("'" + Names[I] + "' views past the end of its storage");
    }
    return D;
  }

  /// Puts each group's tensor where its earliest member was and drops the
  /// other members, keeping the order of everything else.
  void replace(DictValue &SD, ArrayRef<Group> Groups,
               ArrayRef<ValuePtr> Fused) {
    // For each entry: the group it belongs to and whether the group's
    // tensor goes there.
    std::vector<std::pair<size_t, bool>> Role(SD.size(), {Missing, false});
    for (size_t G = 0; G < Groups.size(); ++G) {
      for (size_t M : Groups[G].Members)
        Role[M] = {G, false};
      Role[*std::min_element(Groups[G].Members.begin(),
                             Groups[G].Members.end())]
          .second = true;
    }
    std::vector<DictEntry> Out;
    for (size_t I = 0; I < SD.size(); ++I) {
      auto [G, Here] = Role[I];
      if (G == Missing)
        Out.push_back(std::move(SD.entries()[I]));
      else if (Here)
        Out.push_back({makeStr(Groups[G].Target), Fused[G]});
    }
    SD.entries() = std::move(Out);
  }

  CompiledListOption<ConcatRule> RuleOpt{
      *this, "rule",
      "REGEX{a,b,..}=>KEY: members picked by each part, in order; repeatable",
      compileConcatRule, Presence::Required};
  Option<int64_t> Dim{*this, "dim",
                      "dimension to concatenate along (negative: from the "
                      "end)",
                      0};
  Statistic NumGroups{*this, "concatenated", "tensors made by concatenation"};
  Statistic NumMembers{*this, "members", "tensors consumed"};
  Statistic NumBytes{*this, "rewritten-bytes", "bytes of data written"};
};

} // namespace
} // namespace wopt

WOPT_DEFINE_PASS_FACTORY(Concat, ConcatPass)
