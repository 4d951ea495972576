//===- PassUtils.cpp - Helpers the key-repair passes share ----------------===//
#include "PassUtils.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace wopt {
namespace passutil {

bool isStateDict(const DictValue &D) {
  bool HasTensor = false;
  for (const DictEntry &E : D.entries()) {
    if (!E.keyString())
      return false;
    HasTensor |= E.Val && isa<TensorValue>(E.Val.get());
  }
  return HasTensor;
}

uint64_t countTensors(const Value &V) {
  // Through dicts and sequences only (not objects' insides), each tensor
  // node once however often it is referenced.
  uint64_t N = 0;
  forEachNode(V, [&](const Value &X) {
    N += isa<TensorValue>(X);
    return isa<DictValue>(X) || isa<SequenceValue>(X);
  });
  return N;
}

std::string formatBytes(uint64_t N) {
  std::string S;
  raw_string_ostream OS(S);
  if (N < 1024)
    OS << N << " B";
  else if (N < 1024ull * 1024)
    OS << format("%.1f KiB", N / 1024.0);
  else if (N < 1024ull * 1024 * 1024)
    OS << format("%.1f MiB", N / (1024.0 * 1024));
  else
    OS << format("%.2f GiB", N / (1024.0 * 1024 * 1024));
  return S;
}

std::optional<uint64_t> parseIndex(StringRef S) {
  if (S.empty() || S.size() > 18 || !all_of(S, isDigit))
    return std::nullopt;
  if (S.size() > 1 && S[0] == '0')
    return std::nullopt;
  uint64_t V = 0;
  for (char C : S)
    V = V * 10 + (C - '0');
  return V;
}

SmallVector<StringRef, 8> splitKey(StringRef Key) {
  SmallVector<StringRef, 8> Parts;
  Key.split(Parts, '.');
  return Parts;
}

std::string normalizePrefix(StringRef P) {
  if (P.empty() || P.ends_with("."))
    return P.str();
  return (P + ".").str();
}

DictValue *moduleMetadata(DictValue &SD) {
  auto *State = dyn_cast_or_null<DictValue>(SD.state().get());
  if (!State)
    return nullptr;
  return dyn_cast_or_null<DictValue>(State->lookup("_metadata"));
}

unsigned
rewriteModuleMetadata(DictValue &SD,
                      function_ref<std::optional<std::string>(StringRef)> Map) {
  DictValue *Meta = moduleMetadata(SD);
  if (!Meta)
    return 0;
  // Map every entry once; entries that moved claim their new path before
  // unmoved ones, so a stale entry (say, of a removed wrapper) never
  // shadows the module that now owns the path.
  std::vector<std::optional<std::string>> NewPaths;
  StringSet<> MovedTo;
  for (const DictEntry &E : Meta->entries()) {
    std::optional<StringRef> K = E.keyString();
    NewPaths.push_back(K ? Map(*K) : std::optional<std::string>(""));
    if (K && NewPaths.back() && *NewPaths.back() != *K)
      MovedTo.insert(*NewPaths.back());
  }
  unsigned Changed = 0;
  std::vector<DictEntry> Kept;
  StringSet<> Taken;
  for (size_t I = 0, N = Meta->entries().size(); I != N; ++I) {
    const DictEntry &E = Meta->entries()[I];
    std::optional<StringRef> K = E.keyString();
    if (!K) {
      Kept.push_back(E); // Not a module path; leave it alone.
      continue;
    }
    const std::optional<std::string> &New = NewPaths[I];
    bool Moved = New && *New != *K;
    if (!New || (!Moved && MovedTo.contains(*New)) ||
        !Taken.insert(*New).second) {
      ++Changed;
      continue;
    }
    DictEntry NE = E;
    if (Moved) {
      NE.Key = makeStr(*New);
      ++Changed;
    }
    Kept.push_back(std::move(NE));
  }
  Meta->entries() = std::move(Kept);
  return Changed;
}

std::optional<std::string>
mapModulePath(StringRef Path,
              function_ref<std::optional<std::string>(StringRef)> KeyMap) {
  std::string AsPrefix = Path.empty() ? std::string() : (Path + ".").str();
  std::optional<std::string> New = KeyMap(AsPrefix);
  if (!New)
    return std::nullopt;
  StringRef R(*New);
  if (R.ends_with("."))
    R = R.drop_back();
  return R.str();
}

std::string joinLimited(ArrayRef<std::string> Items, size_t Max) {
  std::string S;
  raw_string_ostream OS(S);
  for (size_t I = 0; I < Items.size() && I < Max; ++I)
    OS << (I ? ", " : "") << Items[I];
  if (Items.size() > Max)
    OS << ", and " << (Items.size() - Max) << " more";
  return S;
}

std::string describeKeyHeads(ArrayRef<std::string> Keys, size_t Max) {
  StringMap<unsigned> Heads;
  std::vector<std::string> Order;
  for (StringRef K : Keys) {
    size_t Dot = K.find('.');
    std::string Head =
        Dot == StringRef::npos ? K.str() : K.take_front(Dot + 1).str();
    if (Heads[Head]++ == 0)
      Order.push_back(Head);
  }
  std::vector<std::string> Notes;
  for (const std::string &H : Order)
    Notes.push_back("'" + H + "' (" + std::to_string(Heads[H]) +
                    (Heads[H] == 1 ? " key)" : " keys)"));
  return joinLimited(Notes, Max);
}

Expected<std::vector<GlobPattern>> compileKeyGlobs(ArrayRef<std::string> Keys) {
  std::vector<GlobPattern> Globs;
  for (const std::string &K : Keys) {
    Expected<GlobPattern> G = GlobPattern::create(K);
    if (!G)
      return createStringError(inconvertibleErrorCode(),
                               "keys='" + K + "': " + toString(G.takeError()));
    Globs.push_back(std::move(*G));
  }
  return Globs;
}

bool matchCounting(ArrayRef<GlobPattern> Globs, StringRef Key,
                   MutableArrayRef<unsigned> Hits) {
  bool Any = false;
  for (size_t I = 0; I < Globs.size(); ++I)
    if (Globs[I].match(Key)) {
      ++Hits[I];
      Any = true;
    }
  return Any;
}

} // namespace passutil
} // namespace wopt
