//===- FlatBuffers.cpp - The .wopt FlatBuffers format ---------------------===//
//
// A .wopt file is the whole IR: the flatbuffer described by schema/wopt.fbs
// followed by a data section holding every storage's bytes, 64-byte aligned
// and referenced by absolute offsets (FlatBuffers 2.0.8 buffers stop at
// 2 GiB, checkpoints do not).
//
// Import trusts nothing: the flatbuffer Verifier checks structure, then every
// index, offset and size is checked for meaning before the IR is built, and
// storages become zero-copy slices of the mapped file.
//
//===----------------------------------------------------------------------===//
#include "wopt/Serialization/FlatBuffers.h"
#include "AtomicOutput.h"
#include "Progress.h"
#include "wopt/IR/Verifier.h"
#include "wopt/Serialization/Serialization.h"
#include "wopt_generated.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"

using namespace wopt;
using namespace llvm;
using wopt::detail::AtomicOutput;

static constexpr uint32_t SchemaVersion = 2;
static constexpr uint64_t BlobAlign = 64;
/// The Verifier asserts unless the buffer is below FLATBUFFERS_MAX_BUFFER_SIZE.
static constexpr uint64_t MaxFlatbufferSize = FLATBUFFERS_MAX_BUFFER_SIZE - 1;

static Error fileError(StringRef File, const Twine &Msg) {
  return createStringError(inconvertibleErrorCode(), File + ": " + Msg);
}

//===----------------------------------------------------------------------===//
// Kind mapping (explicit: the schema's numbers are a file format)
//===----------------------------------------------------------------------===//

static fb::ValueKind toSchema(Value::Kind K) {
  switch (K) {
  case Value::Kind::None:
    return fb::ValueKind::None;
  case Value::Kind::Bool:
    return fb::ValueKind::Bool;
  case Value::Kind::Int:
    return fb::ValueKind::Int;
  case Value::Kind::BigInt:
    return fb::ValueKind::BigInt;
  case Value::Kind::Float:
    return fb::ValueKind::Float;
  case Value::Kind::Str:
    return fb::ValueKind::Str;
  case Value::Kind::Bytes:
    return fb::ValueKind::Bytes;
  case Value::Kind::List:
    return fb::ValueKind::List;
  case Value::Kind::Tuple:
    return fb::ValueKind::Tuple;
  case Value::Kind::Set:
    return fb::ValueKind::Set;
  case Value::Kind::FrozenSet:
    return fb::ValueKind::FrozenSet;
  case Value::Kind::Dict:
    return fb::ValueKind::Dict;
  case Value::Kind::Tensor:
    return fb::ValueKind::Tensor;
  case Value::Kind::Opaque:
    return fb::ValueKind::Opaque;
  case Value::Kind::Storage:
    return fb::ValueKind::Storage;
  }
  llvm_unreachable("bad value kind");
}

static std::optional<Value::Kind> fromSchema(fb::ValueKind K) {
  switch (K) {
  case fb::ValueKind::None:
    return Value::Kind::None;
  case fb::ValueKind::Bool:
    return Value::Kind::Bool;
  case fb::ValueKind::Int:
    return Value::Kind::Int;
  case fb::ValueKind::BigInt:
    return Value::Kind::BigInt;
  case fb::ValueKind::Float:
    return Value::Kind::Float;
  case fb::ValueKind::Str:
    return Value::Kind::Str;
  case fb::ValueKind::Bytes:
    return Value::Kind::Bytes;
  case fb::ValueKind::List:
    return Value::Kind::List;
  case fb::ValueKind::Tuple:
    return Value::Kind::Tuple;
  case fb::ValueKind::Set:
    return Value::Kind::Set;
  case fb::ValueKind::FrozenSet:
    return Value::Kind::FrozenSet;
  case fb::ValueKind::Dict:
    return Value::Kind::Dict;
  case fb::ValueKind::Tensor:
    return Value::Kind::Tensor;
  case fb::ValueKind::Opaque:
    return Value::Kind::Opaque;
  case fb::ValueKind::Storage:
    return Value::Kind::Storage;
  }
  return std::nullopt;
}

static fb::Construct toSchema(OpaqueValue::Construct C) {
  switch (C) {
  case OpaqueValue::Construct::Global:
    return fb::Construct::Global;
  case OpaqueValue::Construct::Reduce:
    return fb::Construct::Reduce;
  case OpaqueValue::Construct::NewObj:
    return fb::Construct::NewObj;
  case OpaqueValue::Construct::NewObjEx:
    return fb::Construct::NewObjEx;
  }
  llvm_unreachable("bad construct");
}

static std::optional<OpaqueValue::Construct> fromSchema(fb::Construct C) {
  switch (C) {
  case fb::Construct::Global:
    return OpaqueValue::Construct::Global;
  case fb::Construct::Reduce:
    return OpaqueValue::Construct::Reduce;
  case fb::Construct::NewObj:
    return OpaqueValue::Construct::NewObj;
  case fb::Construct::NewObjEx:
    return OpaqueValue::Construct::NewObjEx;
  }
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Export
//===----------------------------------------------------------------------===//

namespace {
struct Blob {
  uint64_t Offset = 0, Size = 0;
};

/// Builds the flatbuffer for one checkpoint. Every node reachable from the
/// root gets one index (in forEachNode's order, the root first), so shared
/// objects stay shared and cycles are references like any other.
class FlatbufferWriter {
public:
  FlatbufferWriter(const Checkpoint &C, const std::vector<StorageRef> &Stors)
      : C(C), Stors(Stors) {
    // Every field is written even when it has its default value, so the
    // buffer's size does not depend on the data offsets stored in it.
    B.ForceDefaults(true);
    for (size_t I = 0; I < Stors.size(); ++I)
      StorageIndex[Stors[I].get()] = int32_t(I);
    forEachNode(*C.root(), [&](const Value &V) {
      Index[&V] = uint32_t(Order.size());
      Order.push_back(&V);
      return true;
    });
  }

  /// Builds the buffer with blobs laid out from DataStart on.
  void build(uint64_t DataStart, std::vector<Blob> &Blobs);
  const uint8_t *data() const { return B.GetBufferPointer(); }
  uint64_t size() const { return B.GetSize(); }

private:
  using NodeRef = flatbuffers::Offset<fb::Node>;
  NodeRef emit(const Value &V);
  int32_t ref(const ValuePtr &V) {
    return V ? int32_t(Index.lookup(V.get())) : -1;
  }
  std::vector<uint32_t> refs(const std::vector<ValuePtr> &Vs);
  std::vector<uint32_t> refs(const std::vector<DictEntry> &Entries);
  NodeRef emitTensor(const TensorValue &T);
  NodeRef emitOpaque(const OpaqueValue &O);
  NodeRef emitStorage(const StorageValue &SV);
  flatbuffers::Offset<fb::Provenance> emitProvenance(const Provenance &P);
  int32_t storageIndex(const StorageRef &S) {
    return S ? StorageIndex.lookup(S.get()) : -1;
  }
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> bytes(StringRef S) {
    return B.CreateVector(reinterpret_cast<const uint8_t *>(S.data()),
                          S.size());
  }

  const Checkpoint &C;
  const std::vector<StorageRef> &Stors;
  DenseMap<const Storage *, int32_t> StorageIndex;
  std::vector<const Value *> Order;
  DenseMap<const Value *, uint32_t> Index;
  flatbuffers::FlatBufferBuilder B;
};
} // namespace

std::vector<uint32_t> FlatbufferWriter::refs(const std::vector<ValuePtr> &Vs) {
  std::vector<uint32_t> Out;
  Out.reserve(Vs.size());
  for (const ValuePtr &V : Vs)
    Out.push_back(Index.lookup(V.get()));
  return Out;
}

std::vector<uint32_t>
FlatbufferWriter::refs(const std::vector<DictEntry> &Entries) {
  std::vector<uint32_t> Pairs;
  Pairs.reserve(Entries.size() * 2);
  for (const DictEntry &E : Entries) {
    Pairs.push_back(Index.lookup(E.Key.get()));
    Pairs.push_back(Index.lookup(E.Val.get()));
  }
  return Pairs;
}

flatbuffers::Offset<fb::Provenance>
FlatbufferWriter::emitProvenance(const Provenance &P) {
  std::vector<flatbuffers::Offset<fb::HistoryStep>> Steps;
  // CreateString(std::string), not the *Direct helpers' const char *: a
  // name may hold NUL bytes.
  for (const Provenance::Step &S : P.History) {
    auto Pass = B.CreateString(S.Pass), From = B.CreateString(S.From),
         To = B.CreateString(S.To), Note = B.CreateString(S.Note);
    Steps.push_back(fb::CreateHistoryStep(B, Pass, From, To, Note));
  }
  auto Keys = B.CreateVectorOfStrings(P.KeyPath);
  return fb::CreateProvenance(B, B.CreateString(P.File), Keys,
                              B.CreateString(P.StorageKey),
                              P.ByteOffset.has_value(),
                              P.ByteOffset.value_or(0), B.CreateVector(Steps));
}

FlatbufferWriter::NodeRef FlatbufferWriter::emitTensor(const TensorValue &T) {
  auto Prov = emitProvenance(T.provenance());
  std::vector<int64_t> Shape(T.shape().begin(), T.shape().end());
  std::vector<int64_t> Strides(T.strides().begin(), T.strides().end());
  auto FT = fb::CreateTensorDirect(
      B, dtypeName(T.dtype()).data(), &Shape, &Strides, T.storageOffset(),
      T.requiresGrad(), T.isParameter(), storageIndex(T.storage()),
      ref(T.BackwardHooks), ref(T.Metadata), ref(T.ParamState), Prov,
      T.rebuildKind() == TensorValue::RebuildKind::V1, ref(T.SubclassType),
      ref(T.SubclassState));
  fb::NodeBuilder N(B);
  N.add_kind(fb::ValueKind::Tensor);
  N.add_tensor(FT);
  return N.Finish();
}

FlatbufferWriter::NodeRef FlatbufferWriter::emitOpaque(const OpaqueValue &O) {
  std::vector<uint32_t> List = refs(O.ListItems);
  std::vector<uint32_t> Dict = refs(O.DictItems);
  // CreateString(std::string), not the *Direct helpers' const char *: a
  // name may hold NUL bytes.
  auto Module = B.CreateString(O.module()), Name = B.CreateString(O.name());
  auto ListVec = B.CreateVector(List), DictVec = B.CreateVector(Dict);
  auto FO = fb::CreateOpaque(B, Module, Name, toSchema(O.construct()),
                             ref(O.Args), ref(O.Kwargs), ref(O.State), ListVec,
                             DictVec, ref(O.Callee));
  fb::NodeBuilder N(B);
  N.add_kind(fb::ValueKind::Opaque);
  N.add_opaque(FO);
  return N.Finish();
}

FlatbufferWriter::NodeRef
FlatbufferWriter::emitStorage(const StorageValue &SV) {
  auto FS = fb::CreateStorageObjectDirect(B, storageIndex(SV.storage()),
                                          dtypeName(SV.typedAs()).data(),
                                          SV.isUntyped());
  fb::NodeBuilder N(B);
  N.add_kind(fb::ValueKind::Storage);
  N.add_storage_value(FS);
  return N.Finish();
}

FlatbufferWriter::NodeRef FlatbufferWriter::emit(const Value &V) {
  if (auto *T = dyn_cast<TensorValue>(&V))
    return emitTensor(*T);
  if (auto *O = dyn_cast<OpaqueValue>(&V))
    return emitOpaque(*O);
  if (auto *SV = dyn_cast<StorageValue>(&V))
    return emitStorage(*SV);
  fb::ValueKind K = toSchema(V.kind());
  if (auto *S = dyn_cast<SequenceValue>(&V))
    return fb::CreateNode(B, K, 0, 0, 0, B.CreateVector(refs(S->elements())));
  if (auto *D = dyn_cast<DictValue>(&V))
    return fb::CreateNode(B, K, 0, 0, 0, B.CreateVector(refs(D->entries())),
                          D->isOrdered(), ref(D->state()));
  if (auto *S = dyn_cast<StringValue>(&V))
    return fb::CreateNode(B, K, 0, 0, bytes(S->value()));
  if (auto *BI = dyn_cast<BigIntValue>(&V))
    return fb::CreateNode(B, K, 0, 0, bytes(BI->bytes()));
  if (auto *I = dyn_cast<IntValue>(&V))
    return fb::CreateNode(B, K, I->value());
  if (auto *Bo = dyn_cast<BoolValue>(&V))
    return fb::CreateNode(B, K, Bo->value() ? 1 : 0);
  if (auto *F = dyn_cast<FloatValue>(&V))
    return fb::CreateNode(B, K, 0, F->value());
  return fb::CreateNode(B, K); // None
}

void FlatbufferWriter::build(uint64_t DataStart, std::vector<Blob> &Blobs) {
  B.Clear();
  Blobs.assign(Stors.size(), Blob());
  uint64_t At = DataStart;
  std::vector<flatbuffers::Offset<fb::StorageEntry>> Entries;
  for (size_t I = 0; I < Stors.size(); ++I) {
    const Storage &S = *Stors[I];
    if (S.hasData()) {
      At = alignTo(At, BlobAlign);
      Blobs[I] = {At, S.numBytes()};
      At += S.numBytes();
    }
    auto Key = B.CreateString(S.key());
    auto Type = B.CreateString(dtypeName(S.elementType()).str());
    auto Location = B.CreateString(S.location());
    Entries.push_back(fb::CreateStorageEntry(
        B, Key, Type, !S.hasData(), Blobs[I].Offset, S.numBytes(), Location));
  }
  auto StorVec = B.CreateVector(Entries);
  std::vector<NodeRef> Nodes;
  Nodes.reserve(Order.size());
  for (const Value *V : Order)
    Nodes.push_back(emit(*V));
  auto NodeVec = B.CreateVector(Nodes);
  auto Root = fb::CreateCheckpoint(
      B, SchemaVersion, DataStart, B.CreateString(C.SourcePath),
      B.CreateString(C.Format), B.CreateString(C.FormatVersion),
      B.CreateString(C.ByteOrder), B.CreateString(C.RecordPrefix), StorVec,
      NodeVec, /*root=*/0);
  fb::FinishCheckpointBuffer(B, Root);
}

Error wopt::exportFlatBuffers(const Checkpoint &C, StringRef Path,
                              const FlatBuffersExportOptions &Opts) {
  if (!C.root())
    return fileError(Path, "the checkpoint has no root value");
  // What the reader would refuse (a missing element, a name that is not an
  // identifier, ...) is never written.
  if (Error E = verifyCheckpoint(C))
    return fileError(Path,
                     "cannot write an invalid IR: " + toString(std::move(E)));
  std::vector<StorageRef> Stors = C.storages();
  FlatbufferWriter W(C, Stors);
  std::vector<Blob> Blobs;
  // The data section starts after the flatbuffer, whose size is only known
  // once built; with every field forced, a second build with the real
  // offsets has the same size. Loop in case alignment padding shifts it.
  uint64_t DataStart = 0;
  for (unsigned Try = 0;; ++Try) {
    W.build(DataStart, Blobs);
    uint64_t Need = alignTo(W.size(), BlobAlign);
    if (Need == DataStart)
      break;
    if (Try == 3)
      return fileError(Path, "internal error: the flatbuffer size does not "
                             "settle");
    DataStart = Need;
  }
  if (W.size() > MaxFlatbufferSize)
    return fileError(Path, "the value tree needs " + Twine(W.size()) +
                               " bytes, more than a 2 GiB flatbuffer holds");
  auto Out = AtomicOutput::create(Path);
  if (!Out)
    return Out.takeError();
  if (Error E = (*Out)->write(ArrayRef<uint8_t>(W.data(), W.size())))
    return E;
  std::optional<wopt::detail::ProgressBar> Bar;
  wopt::detail::ProgressFn Report;
  if (Opts.Progress) {
    uint64_t Total = 0;
    for (size_t I = 0; I < Stors.size(); ++I)
      Total += Stors[I]->hasData() ? Blobs[I].Size : 0;
    Bar.emplace(Path == "-" ? "<stdout>" : sys::path::filename(Path), Total);
    Report = [&](uint64_t Pos) { Bar->update(Pos - DataStart); };
  }
  for (size_t I = 0; I < Stors.size(); ++I) {
    if (!Stors[I]->hasData())
      continue;
    if (Error E = (*Out)->writeZeros(Blobs[I].Offset - (*Out)->position()))
      return E;
    if (Error E = wopt::detail::writeStorageRangeReporting(
            **Out, *Stors[I], 0, Blobs[I].Size, Report))
      return E;
  }
  if (Bar)
    Bar->done();
  // An empty data section still ends the file at DataStart.
  if ((*Out)->position() < DataStart)
    if (Error E = (*Out)->writeZeros(DataStart - (*Out)->position()))
      return E;
  return (*Out)->commit();
}

//===----------------------------------------------------------------------===//
// Import
//===----------------------------------------------------------------------===//

namespace {
/// Rebuilds the value graph from the node list in two passes: every node
/// first, then the edges between them, checking every reference.
class GraphReader {
public:
  GraphReader(StringRef File, const fb::Checkpoint &Root,
              const std::vector<StorageRef> &Stors)
      : File(File), Root(Root), Stors(Stors) {}
  Expected<ValuePtr> read();
  /// Every node made, so that a graph read in part is freed too.
  const std::shared_ptr<ValueGraph> &graph() const { return Graph; }

private:
  Error err(uint32_t Node, const Twine &Msg) {
    return fileError(File, "node " + Twine(Node) + ": " + Msg);
  }
  Expected<ValuePtr> node(uint64_t Idx, uint32_t Parent);
  Expected<ValuePtr> optional(int32_t Idx, uint32_t Parent);
  Error elements(const flatbuffers::Vector<uint32_t> *Kids, uint32_t Parent,
                 std::vector<ValuePtr> &Out);
  Error entries(const flatbuffers::Vector<uint32_t> *Pairs, uint32_t Parent,
                std::vector<DictEntry> &Out);
  Expected<const StorageRef *> storage(int32_t Idx, uint32_t Node);
  Expected<ValuePtr> makeNode(uint32_t I, const fb::Node &N);
  Expected<ValuePtr> makeTensor(uint32_t I, const fb::Tensor &T);
  Expected<ValuePtr> makeOpaque(uint32_t I, const fb::Opaque &O);
  Error link(uint32_t I, const fb::Node &N);

  StringRef File;
  const fb::Checkpoint &Root;
  const std::vector<StorageRef> &Stors;
  // Graph before Built: members die in reverse order, and the graph frees
  // a cycle only once nothing else (Built) holds its nodes.
  std::shared_ptr<ValueGraph> Graph = std::make_shared<ValueGraph>();
  std::vector<ValuePtr> Built;
};
} // namespace

Expected<ValuePtr> GraphReader::node(uint64_t Idx, uint32_t Parent) {
  if (Idx >= Built.size())
    return err(Parent,
               "refers to node " + Twine(Idx) + " of " + Twine(Built.size()));
  return Built[Idx];
}

Expected<ValuePtr> GraphReader::optional(int32_t Idx, uint32_t Parent) {
  if (Idx == -1)
    return nullptr;
  if (Idx < -1)
    return err(Parent, "has a negative node reference " + Twine(Idx));
  return node(uint64_t(Idx), Parent);
}

Error GraphReader::elements(const flatbuffers::Vector<uint32_t> *Kids,
                            uint32_t Parent, std::vector<ValuePtr> &Out) {
  if (!Kids)
    return Error::success();
  for (uint32_t K : *Kids) {
    Expected<ValuePtr> V = node(K, Parent);
    if (!V)
      return V.takeError();
    Out.push_back(std::move(*V));
  }
  return Error::success();
}

Error GraphReader::entries(const flatbuffers::Vector<uint32_t> *Pairs,
                           uint32_t Parent, std::vector<DictEntry> &Out) {
  std::vector<ValuePtr> Flat;
  if (Error E = elements(Pairs, Parent, Flat))
    return E;
  if (Flat.size() % 2)
    return err(Parent, "has an odd number of dict key/value references");
  for (size_t I = 0; I < Flat.size(); I += 2)
    Out.push_back({std::move(Flat[I]), std::move(Flat[I + 1])});
  return Error::success();
}

Expected<const StorageRef *> GraphReader::storage(int32_t Idx, uint32_t I) {
  if (Idx < 0 || size_t(Idx) >= Stors.size())
    return err(I, "refers to storage " + Twine(Idx) + " of " +
                      Twine(Stors.size()));
  return &Stors[Idx];
}

static void readProvenance(const fb::Provenance *P, Provenance &Out) {
  if (!P)
    return;
  auto Str = [](const flatbuffers::String *S) {
    return S ? S->str() : std::string();
  };
  Out.File = Str(P->file());
  if (P->key_path())
    for (const flatbuffers::String *K : *P->key_path())
      Out.KeyPath.push_back(Str(K));
  Out.StorageKey = Str(P->storage_key());
  if (P->has_byte_offset())
    Out.ByteOffset = P->byte_offset();
  if (P->history())
    for (const fb::HistoryStep *S : *P->history())
      Out.History.push_back(
          {Str(S->pass()), Str(S->from()), Str(S->to()), Str(S->note())});
}

static SmallVector<int64_t, 4> toVector(const flatbuffers::Vector<int64_t> *V) {
  SmallVector<int64_t, 4> Out;
  if (V)
    Out.append(V->begin(), V->end());
  return Out;
}

Expected<ValuePtr> GraphReader::makeTensor(uint32_t I, const fb::Tensor &FT) {
  auto T = std::make_shared<TensorValue>();
  std::optional<DType> Ty = parseDTypeName(FT.dtype()->str());
  if (!Ty)
    return err(I, "unknown tensor dtype '" + FT.dtype()->str() + "'");
  T->setDType(*Ty);
  SmallVector<int64_t, 4> Shape = toVector(FT.shape());
  SmallVector<int64_t, 4> Strides = toVector(FT.strides());
  if (Shape.size() != Strides.size())
    return err(I, "tensor has " + Twine(Shape.size()) + " dimensions but " +
                      Twine(Strides.size()) + " strides");
  if (any_of(Shape, [](int64_t D) { return D < 0; }) ||
      any_of(Strides, [](int64_t D) { return D < 0; }) ||
      FT.storage_offset() < 0)
    return err(I, "tensor has a negative size, stride or offset");
  T->setShapeAndStrides(Shape, Strides);
  T->setStorageOffset(FT.storage_offset());
  T->setRequiresGrad(FT.requires_grad());
  T->setParameter(FT.is_parameter());
  if (FT.rebuild_v1())
    T->setRebuildKind(TensorValue::RebuildKind::V1);
  if (FT.storage() != -1) {
    Expected<const StorageRef *> S = storage(FT.storage(), I);
    if (!S)
      return S.takeError();
    std::optional<uint64_t> Need = T->requiredStorageBytes();
    if (!Need || !T->numel() || *Need > (**S)->numBytes())
      return err(I, "tensor " + T->typeString() + " reaches past storage " +
                        Twine(FT.storage()) + " (" + Twine((**S)->numBytes()) +
                        " bytes)");
    T->setStorage(**S);
  }
  readProvenance(FT.provenance(), T->provenance());
  return T;
}

Expected<ValuePtr> GraphReader::makeOpaque(uint32_t I, const fb::Opaque &FO) {
  std::optional<OpaqueValue::Construct> How = fromSchema(FO.construct());
  if (!How)
    return err(I, "unknown object construction " +
                      Twine(unsigned(FO.construct())));
  return std::make_shared<OpaqueValue>(FO.module_()->str(), FO.name()->str(),
                                       *How);
}

static StringRef bytesOf(const fb::Node &N) {
  if (!N.bytes_value())
    return {};
  return StringRef(reinterpret_cast<const char *>(N.bytes_value()->data()),
                   N.bytes_value()->size());
}

/// A node with its own fields; its edges come in link().
Expected<ValuePtr> GraphReader::makeNode(uint32_t I, const fb::Node &N) {
  std::optional<Value::Kind> K = fromSchema(N.kind());
  if (!K)
    return err(I, "unknown value kind " + Twine(unsigned(N.kind())));
  switch (*K) {
  case Value::Kind::None:
    return makeNone();
  case Value::Kind::Bool:
    if (N.int_value() != 0 && N.int_value() != 1)
      return err(I, "bool value " + Twine(N.int_value()) + " is not 0 or 1");
    return makeBool(N.int_value());
  case Value::Kind::Int:
    return makeInt(N.int_value());
  case Value::Kind::BigInt:
    return ValuePtr(std::make_shared<BigIntValue>(bytesOf(N).str()));
  case Value::Kind::Float:
    return makeFloat(N.float_value());
  case Value::Kind::Str:
  case Value::Kind::Bytes:
    return ValuePtr(std::make_shared<StringValue>(*K, bytesOf(N).str()));
  case Value::Kind::List:
  case Value::Kind::Tuple:
  case Value::Kind::Set:
  case Value::Kind::FrozenSet:
    return ValuePtr(std::make_shared<SequenceValue>(*K));
  case Value::Kind::Dict:
    return ValuePtr(std::make_shared<DictValue>(N.ordered()));
  case Value::Kind::Tensor:
    if (!N.tensor())
      return err(I, "tensor node without tensor fields");
    return makeTensor(I, *N.tensor());
  case Value::Kind::Opaque:
    if (!N.opaque())
      return err(I, "object node without object fields");
    return makeOpaque(I, *N.opaque());
  case Value::Kind::Storage: {
    const fb::StorageObject *SO = N.storage_value();
    if (!SO)
      return err(I, "storage node without storage fields");
    Expected<const StorageRef *> S = storage(SO->storage(), I);
    if (!S)
      return S.takeError();
    std::optional<DType> Ty = parseDTypeName(SO->typed_as()->str());
    if (!Ty)
      return err(I, "unknown storage dtype '" + SO->typed_as()->str() + "'");
    return ValuePtr(std::make_shared<StorageValue>(**S, *Ty, SO->untyped()));
  }
  }
  llvm_unreachable("bad value kind");
}

Error GraphReader::link(uint32_t I, const fb::Node &N) {
  Value &V = *Built[I];
  auto Slots =
      [&](std::initializer_list<std::pair<int32_t, ValuePtr *>> L) -> Error {
    for (auto [Idx, Slot] : L) {
      Expected<ValuePtr> C = optional(Idx, I);
      if (!C)
        return C.takeError();
      *Slot = std::move(*C);
    }
    return Error::success();
  };
  if (auto *S = dyn_cast<SequenceValue>(&V))
    return elements(N.children(), I, S->elements());
  if (auto *D = dyn_cast<DictValue>(&V)) {
    if (Error E = entries(N.children(), I, D->entries()))
      return E;
    return Slots({{N.state(), &D->stateSlot()}});
  }
  if (auto *T = dyn_cast<TensorValue>(&V)) {
    const fb::Tensor &FT = *N.tensor();
    return Slots({{FT.backward_hooks(), &T->BackwardHooks},
                  {FT.metadata(), &T->Metadata},
                  {FT.param_state(), &T->ParamState},
                  {FT.subclass_type(), &T->SubclassType},
                  {FT.subclass_state(), &T->SubclassState}});
  }
  if (auto *O = dyn_cast<OpaqueValue>(&V)) {
    const fb::Opaque &FO = *N.opaque();
    if (Error E = Slots({{FO.callee(), &O->Callee},
                         {FO.args(), &O->Args},
                         {FO.kwargs(), &O->Kwargs},
                         {FO.state(), &O->State}}))
      return E;
    if (Error E = elements(FO.list_items(), I, O->ListItems))
      return E;
    return entries(FO.dict_items(), I, O->DictItems);
  }
  return Error::success();
}

Expected<ValuePtr> GraphReader::read() {
  const auto *Nodes = Root.nodes();
  if (!Nodes || Nodes->size() == 0)
    return fileError(File, "the value graph is empty");
  if (Nodes->size() > ReaderLimits().MaxValueNodes)
    return fileError(File, "the value graph has " + Twine(Nodes->size()) +
                               " nodes, more than the limit of " +
                               Twine(ReaderLimits().MaxValueNodes));
  Built.assign(Nodes->size(), nullptr);
  for (uint32_t I = 0; I < Nodes->size(); ++I) {
    Expected<ValuePtr> V = makeNode(I, *Nodes->Get(I));
    if (!V)
      return V.takeError();
    Graph->adopt(*V);
    Built[I] = std::move(*V);
  }
  for (uint32_t I = 0; I < Nodes->size(); ++I)
    if (Error E = link(I, *Nodes->Get(I)))
      return E;
  int64_t RootIdx = Root.root() == -1 ? int64_t(Built.size()) - 1 : Root.root();
  if (RootIdx < 0 || uint64_t(RootIdx) >= Built.size())
    return fileError(File, "the root node " + Twine(RootIdx) +
                               " is not one "
                               "of the " +
                               Twine(Built.size()) + " nodes");
  ValuePtr Result = Built[RootIdx];
  // Every node hangs below the root, and the graph is no deeper than every
  // recursive walk over values allows.
  DenseMap<const Value *, uint32_t> Index;
  for (uint32_t I = 0; I < Built.size(); ++I)
    Index.try_emplace(Built[I].get(), I);
  std::vector<bool> Reached(Built.size(), false);
  forEachNode(*Result, [&](const Value &V) {
    Reached[Index.lookup(&V)] = true;
    return true;
  });
  for (uint32_t I = 0; I < Built.size(); ++I)
    if (!Reached[I])
      return err(I, "is not part of the value graph (not reachable from "
                    "the root)");
  if (graphDepth(*Result, MaxGraphDepth + 1) > MaxGraphDepth)
    return fileError(File, "values are nested more than " +
                               Twine(MaxGraphDepth) + " levels deep");
  return Result;
}

static Expected<StorageRef>
readStorage(StringRef File, const std::shared_ptr<SourceFile> &Source,
            uint64_t DataStart, uint32_t I, const fb::StorageEntry &E) {
  auto Err = [&](const Twine &Msg) {
    return fileError(File, "storage " + Twine(I) + ": " + Msg);
  };
  std::optional<DType> Ty = parseDTypeName(E.element_type()->str());
  if (!Ty)
    return Err("unknown element type '" + E.element_type()->str() + "'");
  std::string Key = E.key() ? E.key()->str() : std::string();
  if (E.elided()) {
    StorageRef S = Storage::elided(std::move(Key), *Ty, E.size());
    if (E.location() && E.location()->size())
      S->setLocation(E.location()->str());
    return S;
  }
  if (E.offset() % BlobAlign)
    return Err("data offset " + Twine(E.offset()) + " is not " +
               Twine(BlobAlign) + "-byte aligned");
  if (E.offset() < DataStart)
    return Err("data offset " + Twine(E.offset()) +
               " lies inside the flatbuffer (data starts at " +
               Twine(DataStart) + ")");
  if (E.offset() > Source->size() || E.size() > Source->size() - E.offset())
    return Err("data [" + Twine(E.offset()) + ", +" + Twine(E.size()) +
               ") runs past the end of the file (" + Twine(Source->size()) +
               " bytes)");
  StorageRef S =
      Storage::mapped(std::move(Key), *Ty, Source, E.offset(), E.size());
  if (E.location() && E.location()->size())
    S->setLocation(E.location()->str());
  return S;
}

/// Blobs may not overlap: each storage owns its bytes.
static Error checkOverlap(StringRef File, const std::vector<StorageRef> &S) {
  std::vector<std::pair<uint64_t, uint32_t>> Order;
  for (uint32_t I = 0; I < S.size(); ++I)
    if (S[I]->hasData() && S[I]->numBytes())
      Order.push_back({S[I]->sourceOffset(), I});
  llvm::sort(Order);
  for (size_t K = 1; K < Order.size(); ++K) {
    const Storage &Prev = *S[Order[K - 1].second];
    if (Prev.sourceOffset() + Prev.numBytes() > Order[K].first)
      return fileError(File, "storage " + Twine(Order[K].second) +
                                 " overlaps the data of storage " +
                                 Twine(Order[K - 1].second));
  }
  return Error::success();
}

static Expected<uint64_t> verify(StringRef File, ArrayRef<uint8_t> Bytes) {
  if (Bytes.size() < 8 || !fb::CheckpointBufferHasIdentifier(Bytes.data()))
    return fileError(File, "not a .wopt file (no WOPT identifier)");
  uint64_t Limit = std::min<uint64_t>(Bytes.size(), MaxFlatbufferSize);
  flatbuffers::Verifier::Options Opts;
  Opts.max_tables = ReaderLimits().MaxValueNodes * 4;
  flatbuffers::Verifier V(Bytes.data(), Limit, Opts);
  if (!fb::VerifyCheckpointBuffer(V))
    return fileError(File, "the flatbuffer fails verification (corrupt or "
                           "truncated file)");
  const fb::Checkpoint *Root = fb::GetCheckpoint(Bytes.data());
  if (Root->version() < 1 || Root->version() > SchemaVersion)
    return fileError(
        File, "unsupported .wopt version " + Twine(Root->version()) +
                  " (this build reads 1 to " + Twine(SchemaVersion) + ")");
  uint64_t DataStart = Root->data_start();
  if (DataStart > Bytes.size() || DataStart > MaxFlatbufferSize ||
      DataStart % BlobAlign)
    return fileError(File, "data section start " + Twine(DataStart) +
                               " is not a 64-byte aligned offset inside the "
                               "file");
  // Again within [0, DataStart): the flatbuffer must not reach into the data
  // section that the storages map.
  flatbuffers::Verifier Inner(Bytes.data(), DataStart, Opts);
  if (!fb::VerifyCheckpointBuffer(Inner))
    return fileError(File, "the flatbuffer extends past the data section "
                           "start " +
                               Twine(DataStart));
  return DataStart;
}

Expected<std::unique_ptr<Checkpoint>>
wopt::importFlatBuffers(std::shared_ptr<SourceFile> Source) {
  StringRef File = Source->path();
  Expected<uint64_t> DataStart = verify(File, Source->bytes());
  if (!DataStart)
    return DataStart.takeError();
  const fb::Checkpoint &FC = *fb::GetCheckpoint(Source->bytes().data());
  std::vector<StorageRef> Stors;
  if (FC.storages())
    for (uint32_t I = 0; I < FC.storages()->size(); ++I) {
      Expected<StorageRef> S =
          readStorage(File, Source, *DataStart, I, *FC.storages()->Get(I));
      if (!S)
        return S.takeError();
      Stors.push_back(std::move(*S));
    }
  if (Error E = checkOverlap(File, Stors))
    return E;
  GraphReader R(File, FC, Stors);
  Expected<ValuePtr> Root = R.read();
  if (!Root)
    return Root.takeError();
  auto C = std::make_unique<Checkpoint>(std::move(*Root));
  C->setGraph(R.graph());
  auto Str = [](const flatbuffers::String *S) {
    return S ? S->str() : std::string();
  };
  // A .wopt is a snapshot of an IR: the checkpoint keeps the format,
  // version, byte order and record prefix of its original (so printing or
  // re-exporting it gives what the original would); only the path is this
  // file, for diagnostics. Each tensor's provenance still names its origin.
  C->SourcePath = File.str();
  C->Format = FC.format() && FC.format()->size() ? FC.format()->str()
                                                 : std::string("wopt");
  C->FormatVersion = Str(FC.format_version());
  if (FC.byte_order() && FC.byte_order()->size())
    C->ByteOrder = FC.byte_order()->str();
  C->RecordPrefix = Str(FC.record_prefix());
  C->Source = std::move(Source);
  return C;
}
