//===- TorchImport.cpp - Reading torch.save checkpoints
//--------------------===//
//
// Zip checkpoints (PyTorch >= 1.6): only data.pkl is parsed; each storage
// becomes a slice of the mapped file, so importing a large file touches a
// few pages. Legacy checkpoints (_use_new_zipfile_serialization=False): five
// pickles, then the storages back to back, mapped the same way.
//
// The pickle is read symbolically (PickleReader); this file gives meaning
// to torch's persistent ids and tensor rebuild functions, then walks the
// finished graph once to fill provenance and check every tensor against its
// storage.
//
//===----------------------------------------------------------------------===//

#include "wopt/Serialization/PickleReader.h"
#include "wopt/Serialization/Torch.h"
#include "wopt/Serialization/ZipReader.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

using namespace llvm;

namespace wopt {
namespace {

Error fail(const Twine &Msg) {
  return createStringError(inconvertibleErrorCode(), Msg);
}

bool isGlobalNamed(const Value *V, StringRef Module, StringRef Name) {
  auto *O = dyn_cast_or_null<OpaqueValue>(V);
  return O && O->construct() == OpaqueValue::Construct::Global &&
         O->module() == Module && O->name() == Name;
}

/// An empty OrderedDict (what torch passes as backward_hooks): the IR keeps
/// null for it.
bool isEmptyOrderedDict(const Value *V) {
  auto *D = dyn_cast_or_null<DictValue>(V);
  return D && D->isOrdered() && D->entries().empty() && !D->state();
}

bool isEmptyState(const Value *V) {
  if (!V || isa<NoneValue>(V))
    return true;
  auto *D = dyn_cast<DictValue>(V);
  return D && D->entries().empty() && !D->state();
}

/// A shape or stride: a tuple of ints, or torch.Size((...)).
std::optional<SmallVector<int64_t, 4>> intTuple(const Value *V) {
  if (auto *O = dyn_cast_or_null<OpaqueValue>(V)) {
    if (O->module() != "torch" || O->name() != "Size" || !O->Args)
      return std::nullopt;
    auto *A = dyn_cast<SequenceValue>(O->Args.get());
    if (!A || A->elements().size() != 1)
      return std::nullopt;
    V = A->elements()[0].get();
  }
  auto *S = dyn_cast_or_null<SequenceValue>(V);
  if (!S || (S->kind() != Value::Kind::Tuple && S->kind() != Value::Kind::List))
    return std::nullopt;
  SmallVector<int64_t, 4> Out;
  for (const ValuePtr &E : S->elements()) {
    auto *I = dyn_cast<IntValue>(E.get());
    if (!I)
      return std::nullopt;
    Out.push_back(I->value());
  }
  return Out;
}

std::string joinInts(ArrayRef<int64_t> V) {
  std::string S;
  for (size_t I = 0; I < V.size(); ++I)
    S += (I ? ", " : "") + std::to_string(V[I]);
  return S;
}

/// One import: the storages seen so far and the tree walk at the end.
class TorchImporter {
public:
  TorchImporter(std::shared_ptr<SourceFile> Source, const ReaderLimits &Limits)
      : Source(std::move(Source)), Limits(Limits),
        File(this->Source->path().str()) {}

  Expected<std::unique_ptr<Checkpoint>> importZip();
  Expected<std::unique_ptr<Checkpoint>> importLegacy();
  /// The whole source is a data.pkl whose storages are elided.
  Expected<std::unique_ptr<Checkpoint>> importPickle();

private:
  void installCallbacks(PickleReader &R, bool Legacy);
  Expected<ValuePtr> loadStorage(PickleReader &R, const ValuePtr &Pid,
                                 uint64_t At, bool Legacy);
  Expected<StorageRef> zipStorage(PickleReader &R, StringRef Key, DType T,
                                  uint64_t Bytes, uint64_t At);
  Expected<ValuePtr> rebuild(PickleReader &R, const OpaqueValue &Fn,
                             const SequenceValue &Args, uint64_t At);
  Expected<ValuePtr> rebuildTensor(PickleReader &R, StringRef Fn,
                                   const SequenceValue &Args, uint64_t At);
  Expected<ValuePtr> rebuildParameter(PickleReader &R, StringRef Fn,
                                      const SequenceValue &Args, uint64_t At);
  Expected<ValuePtr> rebuildFromType(PickleReader &R, const SequenceValue &Args,
                                     uint64_t At);
  Error readLegacyStorages(uint64_t Pos, const Value &Keys);
  Error finish(Checkpoint &C, PickleReader &R);
  Error walk(Value &Root);
  Error checkTensor(TensorValue &T, const std::vector<std::string> &Path);

  std::shared_ptr<SourceFile> Source;
  ReaderLimits Limits;
  std::string File;
  std::optional<ZipArchive> Zip;
  /// One storage object per key, however many persistent ids name it, as
  /// torch.load caches them: the first name decides its type.
  StringMap<std::shared_ptr<StorageValue>> Storages;
  /// Legacy: element counts from the persistent ids, and the mapped
  /// storages that replace the placeholders once the data is located.
  StringMap<uint64_t> LegacyNumel;
  DenseMap<const Storage *, StorageRef> Replace;
};

//===----------------------------------------------------------------------===//
// Storages
//===----------------------------------------------------------------------===//

void TorchImporter::installCallbacks(PickleReader &R, bool Legacy) {
  R.setPersistentLoad([this, &R, Legacy](const ValuePtr &Pid, uint64_t At) {
    return loadStorage(R, Pid, At, Legacy);
  });
  R.setReduce([this, &R](const OpaqueValue &Fn, const SequenceValue &Args,
                         uint64_t At) { return rebuild(R, Fn, Args, At); });
}

/// The DType of a storage class global: torch.FloatStorage, ...,
/// torch.UntypedStorage (bytes, UInt8); torch 1.13 names the untyped class
/// torch.storage.UntypedStorage.
std::optional<DType> storageClassType(const OpaqueValue &Type, bool &Untyped) {
  StringRef M = Type.module(), N = Type.name();
  Untyped = N == "UntypedStorage" && (M == "torch" || M == "torch.storage");
  if (Untyped)
    return DType::UInt8;
  if (M == "torch" || M == "torch.cuda")
    return dtypeFromStorageName(N);
  return std::nullopt;
}

/// ('storage', <storage class>, key, location, numel) — legacy adds
/// view_metadata, and names whole-module classes as ('module', class,
/// source file, source). A storage is a StorageValue; the rebuild functions
/// take its bytes.
Expected<ValuePtr> TorchImporter::loadStorage(PickleReader &R,
                                              const ValuePtr &Pid, uint64_t At,
                                              bool Legacy) {
  auto *T = dyn_cast<SequenceValue>(Pid.get());
  auto *Tag = T && T->kind() == Value::Kind::Tuple && !T->elements().empty()
                  ? dyn_cast<StringValue>(T->elements()[0].get())
                  : nullptr;
  // torch.load of a legacy file returns the class itself; the source text
  // only fed a warning when it had changed.
  if (Legacy && Tag && Tag->value() == "module" && T->elements().size() == 4) {
    if (!isa<OpaqueValue>(T->elements()[1].get()))
      return R.error(At, "persistent id ('module', ...) does not name a class");
    return T->elements()[1];
  }
  size_t Want = Legacy ? 6 : 5;
  if (!T || T->kind() != Value::Kind::Tuple || T->elements().size() != Want)
    return R.error(At, formatv("persistent id is not a {0}-tuple "
                               "('storage', type, key, location, numel{1})",
                               Want, Legacy ? ", view" : "")
                           .str());
  const auto &E = T->elements();
  if (!Tag || Tag->kind() != Value::Kind::Str || Tag->value() != "storage")
    return R.error(At, "persistent id does not start with 'storage'");
  auto *Type = dyn_cast<OpaqueValue>(E[1].get());
  auto *Key = dyn_cast<StringValue>(E[2].get());
  auto *Loc = dyn_cast<StringValue>(E[3].get());
  auto *Numel = dyn_cast<IntValue>(E[4].get());
  if (!Type || Type->construct() != OpaqueValue::Construct::Global || !Key ||
      Key->kind() != Value::Kind::Str || !Loc || !Numel || Numel->value() < 0)
    return R.error(At, "persistent id has a bad storage type, key, location "
                       "or numel");
  if (Legacy && !isa<NoneValue>(E[5].get()))
    return R.error(At, "storage views (legacy view_metadata) are not "
                       "supported");
  // torch.load keeps the object the first name of a key built.
  if (auto It = Storages.find(Key->value()); It != Storages.end())
    return It->second;
  bool Untyped = false;
  std::optional<DType> DT = storageClassType(*Type, Untyped);
  if (!DT)
    return R.error(At, "unknown storage type " + Type->qualifiedName());
  // torch.load's legacy reader asks the storage class for its dtype, which
  // UntypedStorage has not: torch writes such files but cannot read them.
  if (Legacy && Untyped)
    return R.error(At, "a legacy file cannot hold an UntypedStorage (torch "
                       "cannot load it: the class has no dtype)");
  bool Overflow = false;
  uint64_t Bytes = SaturatingMultiply(uint64_t(Numel->value()),
                                      uint64_t(dtypeSize(*DT)), &Overflow);
  // A storage lives in the file; with no archive (importPickle) it is only
  // a size, but still one a file could hold.
  uint64_t Room = Zip || Legacy ? Source->size() : uint64_t(1) << 62;
  if (Overflow || Bytes > Room)
    return R.error(At, formatv("storage '{0}' of {1} {2} elements is larger "
                               "than the file",
                               Key->value(), Numel->value(), Type->name())
                           .str());
  StorageRef S;
  if (!Zip && !Legacy) {
    S = Storage::elided(Key->value(), *DT, Bytes);
  } else if (Legacy) {
    // Where the bytes are is known only after the last pickle.
    S = Storage::elided(Key->value(), *DT, Bytes);
    LegacyNumel[Key->value()] = Numel->value();
  } else {
    Expected<StorageRef> Z = zipStorage(R, Key->value(), *DT, Bytes, At);
    if (!Z)
      return Z.takeError();
    S = *Z;
  }
  S->setLocation(Loc->value());
  auto V = std::make_shared<StorageValue>(S, *DT, Untyped);
  Storages[Key->value()] = V;
  return V;
}

Expected<StorageRef> TorchImporter::zipStorage(PickleReader &R, StringRef Key,
                                               DType T, uint64_t Bytes,
                                               uint64_t At) {
  const ZipEntry *E = Zip->find(("data/" + Key).str());
  if (!E)
    return R.error(At, formatv("storage '{0}' has no record '{1}/data/{0}'",
                               Key, Zip->prefix())
                           .str());
  if (E->Size != Bytes)
    return R.error(At, formatv("storage '{0}' holds {1} bytes by its numel "
                               "but record '{2}' has {3}",
                               Key, Bytes, E->Name, E->Size)
                           .str());
  StorageRef S = Storage::mapped(Key.str(), T, Source, E->DataOffset, E->Size);
  S->setSourceRecord(E->Name, E->CRC);
  return S;
}

//===----------------------------------------------------------------------===//
// Tensors
//===----------------------------------------------------------------------===//

Expected<ValuePtr> TorchImporter::rebuild(PickleReader &R,
                                          const OpaqueValue &Fn,
                                          const SequenceValue &Args,
                                          uint64_t At) {
  if (Fn.module() == "torch._utils") {
    if (Fn.name() == "_rebuild_tensor_v2" ||
        Fn.name() == "_rebuild_tensor_v3" || Fn.name() == "_rebuild_tensor")
      return rebuildTensor(R, Fn.name(), Args, At);
    if (Fn.name() == "_rebuild_parameter" ||
        Fn.name() == "_rebuild_parameter_with_state")
      return rebuildParameter(R, Fn.name(), Args, At);
  }
  if (Fn.module() == "torch._tensor" && Fn.name() == "_rebuild_from_type_v2")
    return rebuildFromType(R, Args, At);
  return nullptr; // the reader keeps it as an OpaqueValue
}

/// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks
/// [, metadata]); v3 adds the dtype before metadata (UntypedStorage); the
/// _rebuild_tensor(storage, offset, size, stride) of old torch has neither.
Expected<ValuePtr> TorchImporter::rebuildTensor(PickleReader &R, StringRef Fn,
                                                const SequenceValue &Args,
                                                uint64_t At) {
  const auto &A = Args.elements();
  bool V1 = Fn == "_rebuild_tensor", V3 = Fn.ends_with("v3");
  size_t Min = V1 ? 4 : V3 ? 7 : 6, Max = V1 ? 4 : Min + 1;
  if (A.size() < Min || A.size() > Max)
    return R.error(
        At, V1 ? formatv("{0} takes {1} arguments, not {2}", Fn, Min, A.size())
                     .str()
               : formatv("{0} takes {1} or {2} arguments, not {3}", Fn, Min,
                         Max, A.size())
                     .str());
  auto *Stor = dyn_cast<StorageValue>(A[0].get());
  auto *Offset = dyn_cast<IntValue>(A[1].get());
  std::optional<SmallVector<int64_t, 4>> Shape = intTuple(A[2].get());
  std::optional<SmallVector<int64_t, 4>> Stride = intTuple(A[3].get());
  auto *Grad = V1 ? nullptr : dyn_cast<BoolValue>(A[4].get());
  if (!Stor || !Stor->storage())
    return R.error(At, Fn + ": argument 1 is not a storage");
  if (!Offset || Offset->value() < 0)
    return R.error(At, Fn + ": storage offset is not a non-negative int");
  if (!Shape || !Stride || Shape->size() != Stride->size())
    return R.error(At, Fn + ": size and stride are not int tuples of one "
                            "length");
  for (int64_t D : *Shape)
    if (D < 0)
      return R.error(At, Fn + ": negative size " + joinInts(*Shape));
  if (!V1 && !Grad)
    return R.error(At, Fn + ": requires_grad is not a bool");

  // The tensor has the dtype of the storage object torch built for the key.
  DType DT = Stor->typedAs();
  if (V3) {
    auto *D = dyn_cast<OpaqueValue>(A[6].get());
    std::optional<DType> Parsed;
    if (D && D->module() == "torch")
      Parsed = dtypeFromTorchName(D->name());
    if (!Parsed)
      return R.error(At, Fn + ": argument 7 is not a torch dtype");
    DT = *Parsed;
  }
  auto T = std::make_shared<TensorValue>();
  T->setDType(DT);
  T->setShapeAndStrides(*Shape, *Stride);
  T->setStorageOffset(Offset->value());
  T->setStorage(Stor->storage());
  if (V1) {
    T->setRebuildKind(TensorValue::RebuildKind::V1);
    return T;
  }
  T->setRequiresGrad(Grad->value());
  if (!isEmptyOrderedDict(A[5].get()))
    T->BackwardHooks = A[5];
  if (A.size() > Min)
    T->Metadata = A[Min];
  return T;
}

/// _rebuild_parameter(data, requires_grad, hooks) and, from 2.x,
/// _rebuild_parameter_with_state(data, requires_grad, hooks, state).
Expected<ValuePtr> TorchImporter::rebuildParameter(PickleReader &R,
                                                   StringRef Fn,
                                                   const SequenceValue &Args,
                                                   uint64_t At) {
  const auto &A = Args.elements();
  bool WithState = Fn.ends_with("state");
  if (A.size() != (WithState ? 4u : 3u))
    return R.error(At, formatv("{0} takes {1} arguments, not {2}", Fn,
                               WithState ? 4 : 3, A.size())
                           .str());
  auto *Data = dyn_cast<TensorValue>(A[0].get());
  auto *Grad = dyn_cast<BoolValue>(A[1].get());
  if (!Data || !Grad)
    return R.error(At, Fn + ": arguments are not (tensor, bool, hooks)");
  // Parameter(data) is a new object over data's storage; data itself may
  // be referenced elsewhere in the file, unchanged.
  ValuePtr Param = Data->copyNode();
  auto &T = cast<TensorValue>(*Param);
  T.setParameter(true);
  T.setRequiresGrad(Grad->value());
  T.BackwardHooks = isEmptyOrderedDict(A[2].get()) ? nullptr : A[2];
  if (WithState && !isEmptyState(A[3].get()))
    T.ParamState = A[3];
  return Param;
}

/// _rebuild_from_type_v2(func, type, args, state): the tensor func builds
/// from args, as an instance of type with the attributes in state. A plain
/// Tensor or Parameter without attributes is just that tensor; a subclass
/// or attributes are kept on it (SubclassType/State) and written back the
/// same way. A func wopt does not interpret stays opaque.
Expected<ValuePtr> TorchImporter::rebuildFromType(PickleReader &R,
                                                  const SequenceValue &Args,
                                                  uint64_t At) {
  const auto &A = Args.elements();
  if (A.size() != 4)
    return nullptr;
  auto *Fn = dyn_cast<OpaqueValue>(A[0].get());
  auto *Inner = dyn_cast<SequenceValue>(A[2].get());
  if (!Fn || Fn->construct() != OpaqueValue::Construct::Global || !Inner ||
      Inner->kind() != Value::Kind::Tuple || Fn->module() != "torch._utils" ||
      !StringRef(Fn->name()).starts_with("_rebuild_tensor"))
    return nullptr;
  Expected<ValuePtr> V = rebuild(R, *Fn, *Inner, At);
  if (!V || !*V || !isa<TensorValue>(V->get()))
    return V;
  auto &T = cast<TensorValue>(**V);
  bool Plain = isGlobalNamed(A[1].get(), "torch", "Tensor");
  bool Param = isGlobalNamed(A[1].get(), "torch.nn.parameter", "Parameter");
  if (Param && isEmptyState(A[3].get())) {
    T.setParameter(true);
    return V;
  }
  if (!Plain)
    T.SubclassType = A[1];
  if (!isEmptyState(A[3].get()))
    T.SubclassState = A[3];
  return V;
}

//===----------------------------------------------------------------------===//
// The finished graph
//===----------------------------------------------------------------------===//

std::string keyText(const Value *K) {
  if (auto *S = dyn_cast_or_null<StringValue>(K))
    return S->value();
  if (auto *I = dyn_cast_or_null<IntValue>(K))
    return std::to_string(I->value());
  if (auto *B = dyn_cast_or_null<BoolValue>(K))
    return B->value() ? "True" : "False";
  return "?";
}

/// Python dicts keep the first position of a key and its last value.
void dedupeKeys(std::vector<DictEntry> &Entries) {
  if (Entries.size() < 2)
    return;
  StringMap<size_t> Seen;
  std::vector<DictEntry> Out;
  for (DictEntry &E : Entries) {
    std::string K;
    if (auto *S = dyn_cast<StringValue>(E.Key.get()))
      K = (S->kind() == Value::Kind::Str ? "s:" : "b:") + S->value();
    else if (auto *I = dyn_cast<IntValue>(E.Key.get()))
      K = "i:" + std::to_string(I->value());
    if (!K.empty()) {
      auto [It, New] = Seen.try_emplace(K, Out.size());
      if (!New) {
        Out[It->second].Val = std::move(E.Val);
        continue;
      }
    }
    Out.push_back(std::move(E));
  }
  Entries = std::move(Out);
}

Error TorchImporter::checkTensor(TensorValue &T,
                                 const std::vector<std::string> &Path) {
  if (auto It = Replace.find(T.storage().get()); It != Replace.end())
    T.setStorage(It->second);
  const Storage &S = *T.storage();
  Provenance &P = T.provenance();
  P.File = File;
  P.KeyPath = Path;
  P.StorageKey = S.key();
  std::string Where;
  for (const std::string &K : Path)
    Where += (Where.empty() ? "" : "/") + K;
  std::optional<uint64_t> Need = T.requiredStorageBytes();
  if (!Need || *Need > S.numBytes())
    return fail(formatv("{0}: tensor '{1}' ({2}, strides [{3}], offset {4}) "
                        "needs {5} bytes but storage '{6}' holds {7}",
                        File, Where, T.typeString(), joinInts(T.strides()),
                        T.storageOffset(),
                        Need ? std::to_string(*Need) : "more than 2^64",
                        S.key(), S.numBytes())
                    .str());
  if (S.kind() == Storage::DataKind::Mapped)
    P.ByteOffset =
        S.sourceOffset() + uint64_t(T.storageOffset()) * dtypeSize(T.dtype());
  return Error::success();
}

/// Calls F on each child slot of V with the name a key path gives it:
/// dict values by their keys, elements by index, an object's attributes by
/// name (ns/lr), other parts as <args>, <state>, ...
void forEachNamedChild(Value &V,
                       function_ref<void(ValuePtr &, std::string)> F) {
  auto Entries = [&](std::vector<DictEntry> &Es) {
    for (DictEntry &E : Es) {
      F(E.Key, "<key>");
      F(E.Val, keyText(E.Key.get()));
    }
  };
  auto Elements = [&](std::vector<ValuePtr> &Es) {
    for (size_t I = 0; I < Es.size(); ++I)
      F(Es[I], std::to_string(I));
  };
  if (auto *S = dyn_cast<SequenceValue>(&V)) {
    Elements(S->elements());
  } else if (auto *D = dyn_cast<DictValue>(&V)) {
    Entries(D->entries());
    F(D->stateSlot(), "<state>");
  } else if (auto *T = dyn_cast<TensorValue>(&V)) {
    F(T->BackwardHooks, "<hooks>");
    F(T->Metadata, "<metadata>");
    F(T->ParamState, "<param_state>");
    F(T->SubclassType, "<subclass>");
    F(T->SubclassState, "<subclass_state>");
  } else if (auto *O = dyn_cast<OpaqueValue>(&V)) {
    F(O->Callee, "<callee>");
    F(O->Args, "<args>");
    F(O->Kwargs, "<kwargs>");
    if (auto *SD = dyn_cast_or_null<DictValue>(O->State.get()))
      Entries(SD->entries());
    F(O->State, "<state>"); // visited already when a dict: only dedupes
    Elements(O->ListItems);
    Entries(O->DictItems);
  }
}

/// Fills provenance (the keys of the first path from the root to each
/// tensor), checks each tensor's extent, applies Python's duplicate-key rule
/// and puts located legacy storages in place: once per node, however often
/// it is shared. Recursion depth is bounded by the reader's nesting limit.
Error TorchImporter::walk(Value &Root) {
  SmallPtrSet<const Value *, 32> Seen;
  std::vector<std::string> Path;
  std::function<Error(Value &)> Visit = [&](Value &V) -> Error {
    if (!Seen.insert(&V).second)
      return Error::success();
    if (auto *T = dyn_cast<TensorValue>(&V)) {
      if (Error Err = checkTensor(*T, Path))
        return Err;
    } else if (auto *SV = dyn_cast<StorageValue>(&V)) {
      if (auto It = Replace.find(SV->storage().get()); It != Replace.end())
        SV->setStorage(It->second);
    } else if (auto *D = dyn_cast<DictValue>(&V)) {
      dedupeKeys(D->entries());
    } else if (auto *O = dyn_cast<OpaqueValue>(&V)) {
      dedupeKeys(O->DictItems);
      if (auto *SD = dyn_cast_or_null<DictValue>(O->State.get()))
        dedupeKeys(SD->entries());
    }
    Error Err = Error::success();
    forEachNamedChild(V, [&](ValuePtr &C, std::string Name) {
      if (Err || !C)
        return;
      Path.push_back(std::move(Name));
      Err = Visit(*C);
      Path.pop_back();
    });
    return Err;
  };
  return Visit(Root);
}

Error TorchImporter::finish(Checkpoint &C, PickleReader &R) {
  if (Error Err = walk(*C.root()))
    return Err;
  C.setGraph(R.graph());
  C.SourcePath = File;
  C.Source = Source;
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Zip
//===----------------------------------------------------------------------===//

Expected<std::unique_ptr<Checkpoint>> TorchImporter::importZip() {
  Expected<ZipArchive> A =
      ZipArchive::open(Source->bytes(), File, Source->fd());
  if (!A)
    return A.takeError();
  Zip.emplace(std::move(*A));
  if (Zip->find("constants.pkl"))
    return fail(File + " is a TorchScript archive, not a checkpoint; wopt "
                       "reads torch.save files (save the model's "
                       "state_dict() with torch.save)");
  if (Error Err = Zip->checkStored(File))
    return Err;
  const ZipEntry *Pkl = Zip->find("data.pkl");
  if (!Pkl)
    return fail(formatv("{0}: zip: no record '{1}/data.pkl'; not a torch.save "
                        "checkpoint",
                        File, Zip->prefix())
                    .str());

  auto C = std::make_unique<Checkpoint>();
  C->Format = "torch-zip";
  C->RecordPrefix = Zip->prefix().str();
  if (const ZipEntry *V = Zip->find("version")) {
    ArrayRef<uint8_t> D = Zip->data(*V);
    C->FormatVersion =
        StringRef(reinterpret_cast<const char *>(D.data()), D.size())
            .trim()
            .str();
  }
  if (const ZipEntry *B = Zip->find("byteorder")) {
    ArrayRef<uint8_t> D = Zip->data(*B);
    StringRef Order =
        StringRef(reinterpret_cast<const char *>(D.data()), D.size()).trim();
    // Kept as it is: tensor bytes stay in the file's order, and an export
    // writes the same record, so torch reads the values it would have.
    if (Order != "little" && Order != "big")
      return fail(File + ": byteorder: unknown byte order " +
                  quoteForMessage(Order) + " (expected 'little' or 'big')");
    C->ByteOrder = Order.str();
  }

  PickleReader R(Zip->data(*Pkl), File + ": data.pkl", Limits);
  installCallbacks(R, /*Legacy=*/false);
  Expected<ValuePtr> Root = R.read();
  if (!Root)
    return Root.takeError();
  C->setRoot(std::move(*Root));
  if (Error Err = finish(*C, R))
    return Err;
  return C;
}

Expected<std::unique_ptr<Checkpoint>> TorchImporter::importPickle() {
  PickleReader R(Source->bytes(), File, Limits);
  installCallbacks(R, /*Legacy=*/false);
  Expected<ValuePtr> Root = R.read();
  if (!Root)
    return Root.takeError();
  auto C = std::make_unique<Checkpoint>();
  C->Format = "torch-pickle";
  C->setRoot(std::move(*Root));
  if (Error Err = finish(*C, R))
    return Err;
  return C;
}

//===----------------------------------------------------------------------===//
// Legacy
//===----------------------------------------------------------------------===//

/// 0x1950a86a20f9469cfc6c, little-endian, as LONG1 carries it.
constexpr char LegacyMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

Expected<std::unique_ptr<Checkpoint>> TorchImporter::importLegacy() {
  std::string Where = File + ": legacy pickle";
  PickleReader R(Source->bytes(), Where, Limits);
  Expected<ValuePtr> Magic = R.read();
  if (!Magic)
    return Magic.takeError();
  auto *M = dyn_cast<BigIntValue>(Magic->get());
  if (!M || M->bytes() != StringRef(LegacyMagic, 10))
    return fail(File + ": not a legacy torch file (bad magic number)");
  Expected<ValuePtr> Proto = R.read();
  if (!Proto)
    return Proto.takeError();
  auto *P = dyn_cast<IntValue>(Proto->get());
  if (!P || P->value() != 1001)
    return fail(File + ": legacy protocol version is not 1001");
  Expected<ValuePtr> SysInfo = R.read();
  if (!SysInfo)
    return SysInfo.takeError();
  if (auto *D = dyn_cast<DictValue>(SysInfo->get()))
    if (auto *LE = dyn_cast_or_null<BoolValue>(D->lookup("little_endian")))
      if (!LE->value())
        return fail(File + ": big-endian checkpoints are not supported");

  installCallbacks(R, /*Legacy=*/true);
  Expected<ValuePtr> Root = R.read();
  if (!Root)
    return Root.takeError();
  R.setPersistentLoad(nullptr);
  Expected<ValuePtr> Keys = R.read();
  if (!Keys)
    return Keys.takeError();
  if (Error Err = readLegacyStorages(R.position(), **Keys))
    return Err;

  auto C = std::make_unique<Checkpoint>();
  C->Format = "torch-legacy";
  C->FormatVersion = "1001";
  C->setRoot(std::move(*Root));
  if (Error Err = finish(*C, R))
    return Err;
  return C;
}

/// After the key list, each storage is an int64 LE element count and its
/// bytes, in key-list order. Unaligned, but a byte slice needs no alignment.
Error TorchImporter::readLegacyStorages(uint64_t Pos, const Value &Keys) {
  auto *L = dyn_cast<SequenceValue>(&Keys);
  if (!L)
    return fail(File + ": legacy storage key list is not a list");
  ArrayRef<uint8_t> Bytes = Source->bytes();
  StringSet<> Done;
  for (const ValuePtr &KV : L->elements()) {
    auto *K = dyn_cast<StringValue>(KV.get());
    if (!K)
      return fail(File + ": legacy storage key list holds a non-string");
    auto It = Storages.find(K->value());
    if (It == Storages.end() || !Done.insert(K->value()).second)
      return fail(formatv("{0}: legacy storage '{1}' is listed but not used "
                          "or listed twice",
                          File, K->value())
                      .str());
    const StorageRef &S = It->second->storage();
    if (Bytes.size() - Pos < 8)
      return fail(formatv("{0}: legacy storage '{1}' at byte {2}: file ends "
                          "before its size",
                          File, K->value(), Pos)
                      .str());
    uint64_t Numel = support::endian::read64le(Bytes.data() + Pos);
    if (Numel != LegacyNumel[K->value()])
      return fail(formatv("{0}: legacy storage '{1}' at byte {2} has {3} "
                          "elements, its persistent id says {4}",
                          File, K->value(), Pos, Numel, LegacyNumel[K->value()])
                      .str());
    Pos += 8;
    if (S->numBytes() > Bytes.size() - Pos)
      return fail(formatv("{0}: legacy storage '{1}' ({2} bytes at byte {3}) "
                          "runs past the end of the file",
                          File, K->value(), S->numBytes(), Pos)
                      .str());
    StorageRef Mapped =
        Storage::mapped(S->key(), S->elementType(), Source, Pos, S->numBytes());
    Mapped->setLocation(S->location());
    Replace[S.get()] = std::move(Mapped);
    Pos += S->numBytes();
  }
  if (Done.size() != Storages.size())
    return fail(File + ": a legacy storage is used but missing from the key "
                       "list");
  return Error::success();
}

} // namespace

Expected<std::unique_ptr<Checkpoint>>
importTorch(std::shared_ptr<SourceFile> Source, const ReaderLimits &Limits) {
  ArrayRef<uint8_t> Bytes = Source->bytes();
  std::string File = Source->path().str();
  if (Bytes.empty())
    return fail(File + ": file is empty");
  TorchImporter I(Source, Limits);
  if (looksLikeZip(Bytes) ||
      (Bytes.size() >= 4 && Bytes[0] == 'P' && Bytes[1] == 'K'))
    return I.importZip();
  if (looksLikeLegacyTorch(Bytes))
    return I.importLegacy();
  return fail(File + ": not a torch checkpoint (neither a zip archive nor a "
                     "legacy torch pickle)");
}

Expected<std::unique_ptr<Checkpoint>>
importTorchPickle(ArrayRef<uint8_t> Pickle, StringRef Name,
                  const ReaderLimits &Limits) {
  auto Buffer = MemoryBuffer::getMemBuffer(toStringRef(Pickle), Name,
                                           /*RequiresNullTerminator=*/false);
  TorchImporter I(SourceFile::fromBuffer(std::move(Buffer), Name), Limits);
  return I.importPickle();
}

bool looksLikeLegacyTorch(ArrayRef<uint8_t> Bytes) {
  StringRef S(reinterpret_cast<const char *>(Bytes.data()), Bytes.size());
  // Protocols 0 and 1: the magic number as LONG text.
  if (S.starts_with("L119547037146038801333356L\n"))
    return true;
  // Protocol 2 and up: PROTO n, a FRAME from protocol 4, then LONG1.
  if (!S.consume_front("\x80") || S.empty() || S[0] < 2 || S[0] > 5)
    return false;
  S = S.drop_front();
  if (S.starts_with("\x95"))
    S = S.drop_front(std::min<size_t>(9, S.size()));
  return S.starts_with("\x8a\x0a") &&
         S.drop_front(2).starts_with(StringRef(LegacyMagic, 10));
}

} // namespace wopt
