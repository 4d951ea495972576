//===- Shards.cpp - Sharded checkpoints: one IR over many files -----------===//
//
// Import: every shard is imported on its own (only headers and pickles are
// read; tensors stay mapped in their files), then the state dicts are
// joined in shard order and checked against the index.
//
// Export: the split (planShards) depends on the state dict alone, so any
// process computes the same one and may write any subset of the shards.
// Each shard is a sub-checkpoint (the same tensor nodes under a new root)
// handed to the ordinary exporter, so a shard gets exactly the bytes a
// single-file export of those tensors would.
//
//===----------------------------------------------------------------------===//
#include "wopt/Serialization/Shards.h"
#include "AtomicOutput.h"
#include "Progress.h"
#include "wopt/IR/TextIR.h"
#include "wopt/Serialization/FlatBuffers.h"
#include "wopt/Serialization/Safetensors.h"
#include "wopt/Serialization/Torch.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/WithColor.h"
#include <atomic>
#include <map>
#include <thread>
#include <unistd.h>

using namespace wopt;
using namespace llvm;

static Error makeError(const Twine &Msg) {
  return createStringError(inconvertibleErrorCode(), Msg);
}

static void warn(const Twine &Msg) {
  WithColor::warning(errs(), "wopt") << Msg << "\n";
}

bool wopt::looksLikeShardIndex(StringRef Text) {
  StringRef T = Text.ltrim(" \t\r\n");
  return T.starts_with("{") && T.contains("\"weight_map\"");
}

//===----------------------------------------------------------------------===//
// Import
//===----------------------------------------------------------------------===//

namespace {
struct LoadedShard {
  std::string Name; ///< as the index (or the command line) names it
  std::unique_ptr<Checkpoint> C;
  DictValue *Root = nullptr;
};

/// Keys of the string -> string metadata of a set, first value kept.
struct MergedMetadata {
  std::vector<std::pair<std::string, std::string>> Entries;
  StringMap<std::pair<std::string, std::string>> Seen; ///< value, from
  ValuePtr OtherState; ///< a non-string state (torch's _metadata), first kept
  std::string OtherFrom;

  void add(StringRef Key, StringRef Val, StringRef From) {
    auto [It, New] = Seen.try_emplace(Key, Val.str(), From.str());
    if (New)
      Entries.emplace_back(Key.str(), Val.str());
    else if (It->second.first != Val)
      warn("metadata '" + Key + "' is '" + It->second.first + "' in '" +
           It->second.second + "' but '" + Val + "' in '" + From +
           "'; keeping '" + It->second.first + "'");
  }
  void addState(const ValuePtr &State, StringRef From);
};
} // namespace

void MergedMetadata::addState(const ValuePtr &State, StringRef From) {
  auto *D = dyn_cast_or_null<DictValue>(State.get());
  if (!D)
    return;
  bool Strings = llvm::all_of(D->entries(), [](const DictEntry &E) {
    auto *K = dyn_cast<StringValue>(E.Key.get());
    auto *V = dyn_cast<StringValue>(E.Val.get());
    return K && V && K->kind() == Value::Kind::Str &&
           V->kind() == Value::Kind::Str;
  });
  if (Strings) {
    for (const DictEntry &E : D->entries())
      add(cast<StringValue>(*E.Key).value(), cast<StringValue>(*E.Val).value(),
          From);
    return;
  }
  if (!OtherState) {
    OtherState = State;
    OtherFrom = From.str();
    return;
  }
  warn("the state dict attributes of '" + From +
       "' are dropped; the set keeps "
       "those of '" +
       OtherFrom + "'");
}

/// One shard, imported as any input is, but safetensors alias records are
/// left in the metadata: they are restored once for the whole set.
static Expected<LoadedShard> loadShard(StringRef Name, StringRef Path) {
  if (sys::fs::is_directory(Path))
    return makeError(Path + ": a shard is a folder");
  auto Source = SourceFile::open(Path);
  if (!Source)
    return Source.takeError();
  std::shared_ptr<SourceFile> S = std::move(*Source);
  FileFormat F = detectFormat(S->bytes());
  if (F == FileFormat::ShardIndex)
    return makeError(Path + ": a shard is itself a shard index");
  SafetensorsImportOptions Opts;
  Opts.RestoreAliases = false;
  Expected<std::unique_ptr<Checkpoint>> C = F == FileFormat::Safetensors
                                                ? importSafetensors(S, Opts)
                                                : importFile(Path);
  if (!C)
    return C.takeError();
  LoadedShard L;
  L.Name = Name.str();
  L.C = std::move(*C);
  auto *D = dyn_cast_or_null<DictValue>(L.C->root().get());
  if (!D || !llvm::all_of(D->entries(), [](const DictEntry &E) {
        return E.keyString().has_value();
      }))
    return makeError(
        Path + ": the root is " +
        (L.C->root() ? describeKind(*L.C->root()) : std::string("missing")) +
        ", not a state dict (a shard holds named tensors)");
  L.Root = D;
  return L;
}

/// Joins the shards' state dicts in order. Owner (may be null) learns the
/// shard of every key; a key in two shards is an error.
static Expected<std::shared_ptr<DictValue>>
joinShards(StringRef Set, std::vector<LoadedShard> &Shards,
           MergedMetadata &Meta, StringMap<size_t> &Owner) {
  auto Root = std::make_shared<DictValue>(/*Ordered=*/true);
  for (size_t I = 0; I < Shards.size(); ++I) {
    LoadedShard &L = Shards[I];
    for (DictEntry &E : L.Root->entries()) {
      StringRef K = *E.keyString();
      auto [It, New] = Owner.try_emplace(K, I);
      if (!New)
        return makeError(Set + "tensor '" + K + "' is in both '" +
                         Shards[It->second].Name + "' and '" + L.Name + "'");
      Root->entries().push_back(E);
    }
    Meta.addState(L.Root->state(), L.Name);
  }
  return Root;
}

static std::unique_ptr<Checkpoint> finishSet(std::shared_ptr<DictValue> Root,
                                             MergedMetadata &Meta,
                                             StringRef SourcePath) {
  if (!Meta.Entries.empty()) {
    auto State = std::make_shared<DictValue>();
    for (auto &[K, V] : Meta.Entries)
      State->entries().push_back({makeStr(K), makeStr(V)});
    Root->setState(std::move(State));
    restoreSafetensorsAliases(*Root);
  } else if (Meta.OtherState) {
    Root->setState(Meta.OtherState);
  }
  auto C = std::make_unique<Checkpoint>(std::move(Root));
  // The set owns the nodes now (the shards' checkpoints go away).
  C->graph().adoptReachable(C->root());
  C->SourcePath = SourcePath.str();
  C->Format = "shards";
  return C;
}

Expected<std::unique_ptr<Checkpoint>>
wopt::importShardFiles(ArrayRef<std::string> Paths) {
  std::vector<LoadedShard> Shards;
  for (const std::string &P : Paths) {
    Expected<LoadedShard> L = loadShard(P, P);
    if (!L)
      return L.takeError();
    Shards.push_back(std::move(*L));
  }
  MergedMetadata Meta;
  StringMap<size_t> Owner;
  auto Root = joinShards("", Shards, Meta, Owner);
  if (!Root)
    return Root.takeError();
  return finishSet(std::move(*Root), Meta, Paths.empty() ? "" : Paths[0]);
}

namespace {
struct Index {
  std::vector<std::pair<std::string, std::string>> WeightMap; ///< sorted
  std::optional<uint64_t> TotalSize;
  std::vector<std::pair<std::string, std::string>> Metadata; ///< strings
};
} // namespace

static Expected<Index> parseIndex(StringRef Path) {
  auto Buf = MemoryBuffer::getFile(Path, /*IsText=*/true);
  if (!Buf)
    return makeError(Path + ": cannot read: " + Buf.getError().message());
  Expected<json::Value> V = json::parse((*Buf)->getBuffer());
  if (!V)
    return makeError(Path + ": not valid JSON: " + toString(V.takeError()));
  const json::Object *O = V->getAsObject();
  const json::Object *Map = O ? O->getObject("weight_map") : nullptr;
  if (!Map)
    return makeError(Path + ": a shard index is a JSON object with a "
                            "'weight_map' object");
  Index I;
  for (const auto &KV : *Map) {
    std::optional<StringRef> File = KV.second.getAsString();
    if (!File)
      return makeError(Path + ": weight_map: tensor '" + KV.first.str() +
                       "': the shard is not a string");
    if (File->empty() || sys::path::is_absolute(*File) ||
        llvm::is_contained(
            make_range(sys::path::begin(*File), sys::path::end(*File)), ".."))
      return makeError(Path + ": weight_map: tensor '" + KV.first.str() +
                       "': shard '" + *File +
                       "' is not a file name inside the index's folder");
    I.WeightMap.emplace_back(KV.first.str(), File->str());
  }
  llvm::sort(I.WeightMap);
  const json::Value *MetaV = O->get("metadata");
  const json::Object *Meta = MetaV ? MetaV->getAsObject() : nullptr;
  if (MetaV && !Meta && MetaV->kind() != json::Value::Null)
    return makeError(Path + ": 'metadata' is not a JSON object");
  if (Meta) {
    for (const auto &KV : *Meta) {
      if (KV.first == "total_size") {
        std::optional<double> D = KV.second.getAsNumber();
        if (!D || *D < 0 || *D != std::floor(*D) || *D >= 1.8e19)
          return makeError(Path + ": metadata.total_size is not a number "
                                  "of bytes");
        I.TotalSize = KV.second.getAsUINT64().value_or(uint64_t(*D));
      } else if (std::optional<StringRef> S = KV.second.getAsString()) {
        I.Metadata.emplace_back(KV.first.str(), S->str());
      }
    }
    llvm::sort(I.Metadata);
  }
  return I;
}

/// The three totals writers have put in total_size: every entry's bytes
/// (older transformers, ties counted twice), each storage once by its
/// first tensor (transformers 4.x), each storage once by its size
/// (huggingface_hub today).
static std::vector<uint64_t> plausibleTotals(const DictValue &Root) {
  uint64_t All = 0, FirstView = 0, Storages = 0;
  DenseMap<const Storage *, bool> Seen;
  for (const DictEntry &E : Root.entries()) {
    auto *T = dyn_cast<TensorValue>(E.Val.get());
    if (!T)
      continue;
    uint64_t Bytes = dtypeBytes(T->dtype(), T->numel().value_or(0)).value_or(0);
    All += Bytes;
    if (!T->storage() || Seen.try_emplace(T->storage().get(), true).second) {
      FirstView += Bytes;
      Storages += T->storage() ? T->storage()->numBytes() : Bytes;
    }
  }
  return {All, FirstView, Storages};
}

/// Every key in the shard the map names and in no other; nothing unlisted.
static Error checkAgainstIndex(StringRef IndexPath, const Index &I,
                               ArrayRef<LoadedShard> Shards,
                               const StringMap<size_t> &Owner) {
  StringMap<StringRef> Map;
  for (auto &[K, F] : I.WeightMap)
    Map[K] = F;
  for (const LoadedShard &L : Shards)
    for (const DictEntry &E : L.Root->entries()) {
      StringRef K = *E.keyString();
      auto It = Map.find(K);
      if (It == Map.end())
        return makeError(IndexPath + ": shard '" + L.Name + "' holds tensor '" +
                         K + "', which the weight map does not list");
      if (It->second != L.Name)
        return makeError(IndexPath + ": tensor '" + K +
                         "': the weight map puts it in '" + It->second +
                         "', but it is in '" + L.Name + "'");
    }
  for (auto &[K, F] : I.WeightMap)
    if (!Owner.count(K))
      return makeError(IndexPath + ": tensor '" + K +
                       "': the weight map puts it in '" + F +
                       "', which does not hold it");
  return Error::success();
}

Expected<std::unique_ptr<Checkpoint>>
wopt::importShardIndex(StringRef IndexPath) {
  Expected<Index> I = parseIndex(IndexPath);
  if (!I)
    return I.takeError();
  StringRef Dir = sys::path::parent_path(IndexPath);
  // Shard files in name order (00001, 00002, ...), each loaded once.
  std::map<std::string, std::string> FirstKey;
  for (auto &[K, F] : I->WeightMap)
    FirstKey.try_emplace(F, K);
  std::vector<LoadedShard> Shards;
  for (auto &[F, K] : FirstKey) {
    SmallString<256> P(Dir);
    sys::path::append(P, F);
    if (!sys::fs::exists(P))
      return makeError(IndexPath + ": tensor '" + K + "': shard '" + F +
                       "' does not exist");
    Expected<LoadedShard> L = loadShard(F, P);
    if (!L)
      return L.takeError();
    Shards.push_back(std::move(*L));
  }
  MergedMetadata Meta;
  StringMap<size_t> Owner;
  auto Root = joinShards((IndexPath + ": ").str(), Shards, Meta, Owner);
  if (!Root)
    return Root.takeError();
  if (Error E = checkAgainstIndex(IndexPath, *I, Shards, Owner))
    return E;
  if (I->TotalSize) {
    std::vector<uint64_t> Totals = plausibleTotals(**Root);
    if (!llvm::is_contained(Totals, *I->TotalSize))
      return makeError(IndexPath + ": metadata.total_size is " +
                       Twine(*I->TotalSize) + " but the shards hold " +
                       Twine(Totals[0]) + " bytes of tensors (" +
                       Twine(Totals[2]) + " in distinct storages)");
  }
  // The index's string metadata (huggingface_hub records dropped tied names
  // there) joins the shards'.
  for (auto &[K, V] : I->Metadata)
    Meta.add(K, V, sys::path::filename(IndexPath));
  return finishSet(std::move(*Root), Meta, IndexPath);
}

Expected<std::unique_ptr<Checkpoint>>
wopt::importShardDirectory(StringRef Dir) {
  auto In = [&](StringRef Name) {
    SmallString<256> P(Dir);
    sys::path::append(P, Name);
    return std::string(P);
  };
  for (StringRef Name :
       {"model.safetensors.index.json", "pytorch_model.bin.index.json"})
    if (sys::fs::exists(In(Name)))
      return importShardIndex(In(Name));
  std::vector<std::string> Indexes;
  std::error_code EC;
  for (sys::fs::directory_iterator It(Dir, EC), End; It != End && !EC;
       It.increment(EC))
    if (StringRef(It->path()).ends_with(".index.json"))
      Indexes.push_back(It->path());
  if (EC)
    return makeError(Dir + ": cannot list: " + EC.message());
  llvm::sort(Indexes);
  if (Indexes.size() == 1)
    return importShardIndex(Indexes[0]);
  if (Indexes.size() > 1)
    return makeError(Dir + ": holds " + Twine(Indexes.size()) +
                     " shard indexes ('" + sys::path::filename(Indexes[0]) +
                     "', '" + sys::path::filename(Indexes[1]) +
                     "', ...); name the one to read");
  for (StringRef Name : {"model.safetensors", "pytorch_model.bin"})
    if (sys::fs::exists(In(Name)))
      return importFile(In(Name));
  return makeError(Dir + ": holds no shard index (*.index.json), "
                         "model.safetensors or pytorch_model.bin");
}

//===----------------------------------------------------------------------===//
// Names and sizes
//===----------------------------------------------------------------------===//

Expected<uint64_t> wopt::parseShardSize(StringRef Text) {
  StringRef T = Text.trim();
  static const std::pair<StringRef, double> Units[] = {{"TIB", 1099511627776.0},
                                                       {"GIB", 1073741824.0},
                                                       {"MIB", 1048576.0},
                                                       {"KIB", 1024.0},
                                                       {"TB", 1e12},
                                                       {"GB", 1e9},
                                                       {"MB", 1e6},
                                                       {"KB", 1e3},
                                                       {"B", 1.0}};
  double Mult = 1;
  std::string Upper = T.upper();
  StringRef U(Upper);
  for (auto &[Suffix, M] : Units)
    if (U.ends_with(Suffix)) {
      Mult = M;
      T = T.drop_back(Suffix.size()).rtrim();
      break;
    }
  double V;
  if (T.empty() || T.getAsDouble(V) || !(V > 0) || V * Mult >= 1.8e19)
    return makeError("a shard size is a positive number of bytes, "
                     "optionally with a unit (5GB, 500MB, 2GiB), not '" +
                     Text + "'");
  // int(value * multiplier), as huggingface_hub's parse_size_to_int.
  return uint64_t(V * Mult);
}

std::string ShardTarget::shardName(unsigned Index, unsigned Count) const {
  if (Count == 1)
    return Stem + Extension;
  return formatv("{0}-{1:d5}-of-{2:d5}{3}", Stem, Index, Count, Extension)
      .str();
}

Expected<std::optional<ShardTarget>>
wopt::shardTargetFor(StringRef Path, std::optional<EmitKind> Emit) {
  if (Path == "-")
    return std::nullopt;
  ShardTarget T;
  // Only the trailing '/' says "a set in this folder": `-o adir` by mistake
  // must not spread shard files into an existing folder (it is refused as
  // a directory by the output checks, with this spelling as the hint).
  if (Path.ends_with("/")) {
    T.Dir = Path.rtrim('/').str();
    if (T.Dir.empty())
      T.Dir = "/";
    T.Format = Emit.value_or(EmitKind::Safetensors);
    if (T.Format != EmitKind::Safetensors && T.Format != EmitKind::Torch)
      return makeError("a shard folder holds safetensors or torch shards; "
                       "-emit asks for another format");
    T.Stem = T.Format == EmitKind::Torch ? "pytorch_model" : "model";
    T.Extension = T.Format == EmitKind::Torch ? ".bin" : ".safetensors";
    return T;
  }
  StringRef Name = sys::path::filename(Path);
  if (!Name.ends_with(".index.json"))
    return std::nullopt;
  StringRef Base = Name.drop_back(strlen(".index.json"));
  T.Dir = sys::path::parent_path(Path).str();
  if (T.Dir.empty())
    T.Dir = ".";
  T.Extension = sys::path::extension(Base).str();
  T.Stem = sys::path::stem(Base).str();
  std::optional<EmitKind> K = emitKindForPath(Base);
  if (T.Stem.empty() || (K != EmitKind::Safetensors && K != EmitKind::Torch))
    return makeError("'" + Name +
                     "': a shard index is named <name>.safetensors.index.json "
                     "or <name>.bin.index.json (the shards' own name)");
  if (Emit && *Emit != *K)
    return makeError("'" + Name + "' names " +
                     (*K == EmitKind::Torch ? "torch" : "safetensors") +
                     " shards, but -emit asks for another format");
  T.Format = *K;
  T.IndexNamed = true;
  return T;
}

//===----------------------------------------------------------------------===//
// The split
//===----------------------------------------------------------------------===//

using ViewKey = std::tuple<const Storage *, int64_t, std::vector<int64_t>,
                           std::vector<int64_t>, DType>;

static ViewKey viewKey(const TensorValue &T) {
  return {T.storage().get(), T.storageOffset(),
          std::vector<int64_t>(T.shape().begin(), T.shape().end()),
          std::vector<int64_t>(T.strides().begin(), T.strides().end()),
          T.dtype()};
}

static Expected<const DictValue *> shardableDict(const Checkpoint &C) {
  const DictValue *SD = C.stateDict();
  if (!SD)
    return makeError("a shard set holds a state dict of named tensors, but "
                     "the root is not one; run unwrap first");
  for (const DictEntry &E : SD->entries()) {
    auto *T = dyn_cast<TensorValue>(E.Val.get());
    if (!T)
      return makeError("state dict entry '" + *E.keyString() + "' is " +
                       describeKind(*E.Val) +
                       ", not a tensor; a shard index maps tensors only "
                       "(hint: drop it)");
    if (!T->storage())
      return makeError("tensor '" + *E.keyString() + "' has no storage");
  }
  return SD;
}

Expected<ShardPlan> wopt::planShards(const Checkpoint &C,
                                     const ShardTarget &Target,
                                     uint64_t MaxShardSize) {
  Expected<const DictValue *> SDOr = shardableDict(C);
  if (!SDOr)
    return SDOr.takeError();
  const DictValue &SD = **SDOr;
  // The first pass, as huggingface_hub: one storage, one block, counted
  // once; later users of a storage are placed with the first afterwards.
  std::vector<std::vector<size_t>> Shards;
  std::vector<uint64_t> Sizes;
  std::vector<size_t> Current;
  uint64_t CurrentSize = 0, Total = 0;
  MapVector<const Storage *, std::vector<size_t>> Groups;
  for (size_t I = 0; I < SD.entries().size(); ++I) {
    const auto &T = cast<TensorValue>(*SD.entries()[I].Val);
    auto &G = Groups[T.storage().get()];
    G.push_back(I);
    if (G.size() > 1)
      continue;
    uint64_t Size = T.storage()->numBytes();
    Total += Size;
    if (Size > MaxShardSize) {
      Shards.push_back({I});
      Sizes.push_back(Size);
      continue;
    }
    if (CurrentSize + Size > MaxShardSize) {
      Shards.push_back(std::move(Current));
      Sizes.push_back(CurrentSize);
      Current.clear();
      CurrentSize = 0;
    }
    Current.push_back(I);
    CurrentSize += Size;
  }
  if (!Current.empty()) {
    Shards.push_back(std::move(Current));
    Sizes.push_back(CurrentSize);
  }
  // The others join the shard of their storage's first tensor, at its end.
  DenseMap<size_t, size_t> ShardOf;
  for (size_t S = 0; S < Shards.size(); ++S)
    for (size_t I : Shards[S])
      ShardOf[I] = S;
  for (auto &[Stor, Members] : Groups)
    for (size_t K = 1; K < Members.size(); ++K)
      Shards[ShardOf[Members[0]]].push_back(Members[K]);

  ShardPlan Plan;
  Plan.TotalSize = Total;
  unsigned N = Shards.size();
  for (unsigned S = 0; S < N; ++S) {
    ShardPlan::Shard Sh;
    Sh.File = Target.shardName(S + 1, N);
    Sh.Entries = std::move(Shards[S]);
    Sh.Bytes = Sizes[S];
    // safetensors keeps one name per exact alias (the exporter records the
    // others in the shard's metadata); the index lists the names written.
    std::map<ViewKey, StringRef> Kept;
    for (size_t I : Sh.Entries) {
      StringRef K = *SD.entries()[I].keyString();
      const auto &T = cast<TensorValue>(*SD.entries()[I].Val);
      auto [It, New] = Kept.try_emplace(viewKey(T), K);
      if (Target.Format == EmitKind::Safetensors && !New)
        Plan.Aliases.emplace_back(K.str(), It->second.str());
      else
        Plan.WeightMap.emplace_back(K.str(), Sh.File);
    }
    Plan.Shards.push_back(std::move(Sh));
  }
  llvm::sort(Plan.WeightMap);
  llvm::sort(Plan.Aliases);
  return Plan;
}

Expected<unsigned> wopt::countShards(const Checkpoint &C,
                                     const ShardTarget &Target,
                                     uint64_t MaxShardSize) {
  Expected<ShardPlan> P = planShards(C, Target, MaxShardSize);
  if (!P)
    return P.takeError();
  return P->Shards.size();
}

//===----------------------------------------------------------------------===//
// Export
//===----------------------------------------------------------------------===//

namespace {
/// A shard being written: its temporary name until the set is complete.
struct PendingShard {
  unsigned Index; ///< into the plan
  SmallString<256> Temp, Final;
  std::string Failure;
  std::vector<std::string> Warnings;
};

/// Temporary files of a set, removed unless published (and on a signal),
/// then the folder when this export created it and failed.
class PendingSet {
public:
  ~PendingSet() {
    for (PendingShard &P : Shards)
      if (!P.Temp.empty()) {
        sys::fs::remove(P.Temp);
        sys::DontRemoveFileOnSignal(P.Temp);
      }
    if (!Done)
      for (const std::string &D : CreatedDirs) // deepest first
        sys::fs::remove(D);                    // only when still empty
  }
  std::vector<PendingShard> Shards;
  std::vector<std::string> CreatedDirs;
  bool Done = false;
};
} // namespace

static std::string inDir(StringRef Dir, StringRef Name) {
  SmallString<256> P(Dir);
  sys::path::append(P, Name);
  return std::string(P);
}

/// The same tensor nodes under a root of their own, with the root's state
/// (safetensors metadata, a state dict's _metadata).
static Checkpoint subCheckpoint(const Checkpoint &C, const DictValue &SD,
                                ArrayRef<size_t> Entries) {
  auto Root = std::make_shared<DictValue>(SD.isOrdered());
  for (size_t I : Entries)
    Root->entries().push_back(SD.entries()[I]);
  Root->setState(SD.state());
  Checkpoint Sub(std::move(Root));
  Sub.SourcePath = C.SourcePath;
  Sub.Format = C.Format;
  Sub.FormatVersion = C.FormatVersion;
  Sub.ByteOrder = C.ByteOrder;
  Sub.Source = C.Source;
  return Sub;
}

static Error writeShard(const Checkpoint &Sub, const ShardTarget &Target,
                        PendingShard &P, const ShardExportOptions &Opts,
                        const wopt::detail::ProgressFn &Report) {
  if (Target.Format == EmitKind::Torch) {
    TorchExportOptions TO;
    // torch.save names the record folder after the file it writes.
    TO.RecordPrefix = sys::path::stem(P.Final).str();
    TO.VerifyInputCRC = Opts.VerifyInputCRC;
    TO.OnProgress = Report;
    return exportTorch(Sub, P.Temp, TO);
  }
  SafetensorsExportOptions SO;
  SO.OnProgress = Report;
  SO.OnWarning = [&P](const std::string &W) {
    // The exporter names the temporary file: say the shard's name.
    std::string Msg = W;
    if (StringRef(Msg).starts_with(P.Temp.str()))
      Msg = std::string(P.Final) + Msg.substr(P.Temp.size());
    P.Warnings.push_back(std::move(Msg));
  };
  return exportSafetensors(Sub, P.Temp, SO);
}

/// Writes every pending shard, Jobs at a time; stops early on a failure.
static void writeAll(const Checkpoint &C, const DictValue &SD,
                     const ShardPlan &Plan, const ShardTarget &Target,
                     PendingSet &Set, const ShardExportOptions &Opts) {
  uint64_t Total = 0;
  for (PendingShard &P : Set.Shards)
    Total += Plan.Shards[P.Index].Bytes;
  std::optional<wopt::detail::ProgressBar> Bar;
  if (Opts.Progress)
    Bar.emplace((Target.Dir + "/ (" + Twine(Set.Shards.size()) + " shard" +
                 (Set.Shards.size() == 1 ? ")" : "s)"))
                    .str(),
                Total);
  unsigned Jobs = Opts.Jobs ? Opts.Jobs : std::thread::hardware_concurrency();
  Jobs = std::max(1u, std::min<unsigned>(Jobs, Set.Shards.size()));
  std::atomic<size_t> Next{0};
  std::atomic<bool> Failed{false};
  auto Work = [&] {
    for (size_t I; !Failed && (I = Next++) < Set.Shards.size();) {
      PendingShard &P = Set.Shards[I];
      Checkpoint Sub = subCheckpoint(C, SD, Plan.Shards[P.Index].Entries);
      wopt::detail::ProgressFn Report;
      if (Bar)
        Report = Bar->part(I, Set.Shards.size());
      if (Error E = writeShard(Sub, Target, P, Opts, Report)) {
        P.Failure = toString(std::move(E));
        Failed = true;
      }
    }
  };
  std::vector<std::thread> Pool;
  for (unsigned J = 1; J < Jobs; ++J)
    Pool.emplace_back(Work);
  Work();
  for (std::thread &T : Pool)
    T.join();
  if (Bar)
    Bar->done();
}

static Error writeIndex(const ShardPlan &Plan, const ShardTarget &Target) {
  std::string Text;
  raw_string_ostream OS(Text);
  {
    // Spelled as transformers writes it: json.dumps(index, indent=2,
    // sort_keys=True) + "\n".
    json::OStream J(OS, 2);
    J.object([&] {
      J.attributeObject("metadata", [&] {
        std::vector<std::pair<std::string, std::string>> Strings = Plan.Aliases;
        bool TotalWritten = false;
        for (auto &[K, V] : Strings) {
          if (!TotalWritten && K > "total_size") {
            J.attribute("total_size", Plan.TotalSize);
            TotalWritten = true;
          }
          J.attribute(K, V);
        }
        if (!TotalWritten)
          J.attribute("total_size", Plan.TotalSize);
      });
      J.attributeObject("weight_map", [&] {
        for (auto &[K, F] : Plan.WeightMap)
          J.attribute(K, F);
      });
    });
  }
  OS << "\n";
  OS.flush();
  auto Out =
      wopt::detail::AtomicOutput::create(inDir(Target.Dir, Target.indexName()));
  if (!Out)
    return Out.takeError();
  if (Error E = (*Out)->write(StringRef(Text)))
    return E;
  return (*Out)->commit();
}

/// The shard files an index at Path names (empty when there is none or it
/// is not readable: then there is nothing to clean up).
static std::vector<std::string> oldShards(StringRef Path) {
  std::vector<std::string> Files;
  if (!sys::fs::exists(Path))
    return Files;
  Expected<Index> I = parseIndex(Path);
  if (!I) {
    consumeError(I.takeError());
    return Files;
  }
  for (auto &[K, F] : I->WeightMap)
    if (!llvm::is_contained(Files, F))
      Files.push_back(F);
  return Files;
}

/// Removes the files of the replaced set the new one does not use, when
/// they are named as this target names shards (nothing else is touched).
static void removeStale(ArrayRef<std::string> Old, const ShardPlan &Plan,
                        const ShardTarget &Target) {
  for (const std::string &F : Old) {
    if (llvm::any_of(Plan.Shards,
                     [&](const ShardPlan::Shard &S) { return S.File == F; }))
      continue;
    StringRef Name(F);
    bool Ours = Name == Target.Stem + Target.Extension;
    StringRef Mid = Name;
    if (Mid.consume_front(Target.Stem + "-") &&
        Mid.consume_back(Target.Extension) && Mid.size() == 14 &&
        Mid.substr(5, 4) == "-of-" &&
        Mid.find_first_not_of("0123456789-of") == StringRef::npos)
      Ours = true;
    if (Ours && Name.find('/') == StringRef::npos)
      sys::fs::remove(inDir(Target.Dir, F));
  }
}

/// Creates Dir and the parents it lacks; Created lists them, deepest
/// first, so that a failed export can remove them again.
static Error prepareDir(StringRef Dir, std::vector<std::string> &Created) {
  if (sys::fs::is_directory(Dir))
    return Error::success();
  if (sys::fs::exists(Dir))
    return makeError(Dir + ": exists and is not a folder");
  for (StringRef D = Dir; !D.empty() && !sys::fs::exists(D);
       D = sys::path::parent_path(D))
    Created.push_back(D.str());
  if (std::error_code EC = sys::fs::create_directories(Dir))
    return makeError(Dir + ": cannot create the folder: " + EC.message());
  return Error::success();
}

/// Which shards to write (indices into the plan).
static Expected<std::vector<unsigned>>
selectShards(const ShardPlan &Plan, const ShardExportOptions &Opts) {
  std::vector<unsigned> Todo;
  if (!Opts.WriteShards)
    return Todo;
  if (Opts.OnlyShards.empty()) {
    for (unsigned I = 0; I < Plan.Shards.size(); ++I)
      Todo.push_back(I);
    return Todo;
  }
  for (unsigned N : Opts.OnlyShards) {
    if (N < 1 || N > Plan.Shards.size())
      return makeError("-write-shards: shard " + Twine(N) +
                       " does not exist (the split makes " +
                       Twine(Plan.Shards.size()) + " shard" +
                       (Plan.Shards.size() == 1 ? "" : "s") +
                       ", numbered 1 to " + Twine(Plan.Shards.size()) + ")");
    if (!llvm::is_contained(Todo, N - 1))
      Todo.push_back(N - 1);
  }
  llvm::sort(Todo);
  return Todo;
}

/// A hidden temporary per shard to write, beside its final name.
static Error createTemporaries(const ShardPlan &Plan, const ShardTarget &Target,
                               ArrayRef<unsigned> Todo, PendingSet &Set) {
  for (unsigned I : Todo) {
    PendingShard P;
    P.Index = I;
    P.Final = inDir(Target.Dir, Plan.Shards[I].File);
    int FD;
    SmallString<256> Model(
        inDir(Target.Dir, "." + Plan.Shards[I].File + ".wopt-set-%%%%%%"));
    if (std::error_code EC = sys::fs::createUniqueFile(Model, FD, P.Temp))
      return makeError(P.Final + ": cannot create a temporary file in '" +
                       Target.Dir + "': " + EC.message());
    ::close(FD);
    sys::RemoveFileOnSignal(P.Temp);
    Set.Shards.push_back(std::move(P));
  }
  return Error::success();
}

/// The first failure (named by the shard's final name), or, when every
/// shard is complete, their warnings and the renames into place.
static Error publish(PendingSet &Set) {
  for (PendingShard &P : Set.Shards)
    if (!P.Failure.empty()) {
      std::string Msg = P.Failure;
      if (StringRef(Msg).starts_with(P.Temp.str()))
        Msg = std::string(P.Final) + Msg.substr(P.Temp.size());
      return makeError(Msg);
    }
  for (PendingShard &P : Set.Shards)
    for (const std::string &W : P.Warnings)
      warn(W);
  for (PendingShard &P : Set.Shards) {
    if (std::error_code EC = sys::fs::rename(P.Temp, P.Final))
      return makeError(P.Final +
                       ": cannot rename the finished shard into "
                       "place: " +
                       EC.message());
    sys::DontRemoveFileOnSignal(P.Temp);
    P.Temp.clear();
  }
  return Error::success();
}

Error wopt::exportShards(const Checkpoint &C, const ShardTarget &Target,
                         const ShardExportOptions &Opts) {
  Expected<ShardPlan> Plan = planShards(C, Target, Opts.MaxShardSize);
  if (!Plan)
    return Plan.takeError();
  Expected<std::vector<unsigned>> Todo = selectShards(*Plan, Opts);
  if (!Todo)
    return Todo.takeError();
  const DictValue &SD = *C.stateDict();
  PendingSet Set;
  if (Error E = prepareDir(Target.Dir, Set.CreatedDirs))
    return E;
  std::string IndexPath = inDir(Target.Dir, Target.indexName());
  // One shard in a folder is a plain file, as Hugging Face saves it; an
  // index is written when named, when there are several shards, or to
  // replace one already there (it would describe another set).
  bool WantIndex =
      Opts.WriteIndex && (Target.IndexNamed || Plan->Shards.size() > 1 ||
                          sys::fs::exists(IndexPath));
  if (Opts.WriteIndex && !Opts.WriteShards && !WantIndex)
    return makeError(IndexPath + ": the split makes one shard, written as '" +
                     Plan->Shards[0].File +
                     "' without an index; name the index (-o " + IndexPath +
                     ") to write one");
  bool FullSet = Opts.WriteShards && Opts.OnlyShards.empty() && WantIndex;
  std::vector<std::string> Old =
      FullSet ? oldShards(IndexPath) : std::vector<std::string>();
  if (Error E = createTemporaries(*Plan, Target, *Todo, Set))
    return E;
  writeAll(C, SD, *Plan, Target, Set, Opts);
  // Complete: into place, the index last.
  if (Error E = publish(Set))
    return E;
  if (WantIndex) {
    if (Error E = writeIndex(*Plan, Target))
      return E;
    if (FullSet)
      removeStale(Old, *Plan, Target);
  }
  Set.Done = true;
  return Error::success();
}
