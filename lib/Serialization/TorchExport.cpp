//===- TorchExport.cpp - Write a checkpoint as torch.save does ------------===//
//
// The pickle is built in memory first (it is small and building it finds
// every reachable storage and every problem, such as elided data, before a
// byte is written). Then the zip is streamed into a temporary file next to
// the destination, storage bytes copied from the input file, and renamed
// over the destination.
//
//===----------------------------------------------------------------------===//

#include "AtomicOutput.h"
#include "DataCopy.h"
#include "Progress.h"
#include "wopt/IR/Verifier.h"
#include "wopt/Serialization/PickleWriter.h"
#include "wopt/Serialization/Torch.h"
#include "wopt/Serialization/ZipWriter.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/WithColor.h"
#include <algorithm>
#include <unistd.h>

using namespace llvm;

namespace wopt {

namespace {

Error makeError(const Twine &Msg) {
  return createStringError(inconvertibleErrorCode(), Msg);
}

/// One storage to write: its renumbered key and the element type its
/// persistent id names (the first tensor or storage that used it decides).
struct StorageRecord {
  const Storage *S;
  std::string Key;
  DType Type;
};

/// Pickles the root value the way torch.save pickles tensors and storages,
/// numbering storages in first-use order.
class TorchPickler {
public:
  /// AllowElided: only the pickle is wanted (pickleTorch), not the data.
  explicit TorchPickler(bool AllowElided = false) : AllowElided(AllowElided) {}
  Expected<std::string> run(const Checkpoint &C);
  std::vector<StorageRecord> Records;

private:
  Error writeTensor(const TensorValue &T, PickleWriter &W);
  Error writeStorageValue(const StorageValue &SV, PickleWriter &W);
  Error writeRebuild(const TensorValue &T, bool Inner, PickleWriter &W);
  Error writeRebuildArgs(const TensorValue &T, bool Inner, PickleWriter &W);
  Error writePersistentId(const Storage &S, DType Type, bool Untyped,
                          const Twine &Subject, PickleWriter &W);
  Expected<const StorageRecord *> record(const Storage *S, DType Type,
                                         const Twine &Subject);
  Error checkView(const TensorValue &T, StringRef Name);
  DenseMap<const Storage *, size_t> Index;
  bool AllowElided;
};

std::string tensorName(const TensorValue &T, PickleWriter &W) {
  std::string Path = W.currentPath();
  if (Path.empty())
    Path = T.provenance().originalPath();
  return Path.empty() ? std::string("<root>") : Path;
}

bool needsUntypedStorage(DType T) { return dtypeStorageName(T).empty(); }

/// The storage's key, numbered on first use. Tensors may view one storage
/// as several types only when it is empty (torch itself saves an
/// unallocated storage under every dtype that views it).
Expected<const StorageRecord *>
TorchPickler::record(const Storage *S, DType Type, const Twine &Subject) {
  if (!S)
    return makeError(Subject + " has no storage");
  if (!S->hasData() && !AllowElided)
    return makeError(Subject + " has no data (elided storage '" + S->key() +
                     "'): cannot write a .pth without the tensor bytes");
  auto [It, Inserted] = Index.try_emplace(S, Records.size());
  if (Inserted) {
    Records.push_back({S, std::to_string(Records.size()), Type});
    return &Records.back();
  }
  const StorageRecord &R = Records[It->second];
  if (R.Type != Type && S->numBytes() != 0)
    return makeError(Subject + " views storage " + R.Key + " as " +
                     dtypeName(Type) + " but another tensor views it as " +
                     dtypeName(R.Type) + "; torch cannot load that");
  return &R;
}

Error TorchPickler::checkView(const TensorValue &T, StringRef Name) {
  if (dtypeTorchName(T.dtype()).empty())
    return makeError("tensor '" + Name + "' (" + T.typeString() +
                     "): torch has no dtype for " + dtypeName(T.dtype()) +
                     " (safetensors has one: -o x.safetensors)");
  std::optional<uint64_t> Need = T.requiredStorageBytes();
  if (T.storage() && (!Need || *Need > T.storage()->numBytes()))
    return makeError("tensor '" + Name + "' (" + T.typeString() +
                     ") needs more bytes than its storage holds (" +
                     Twine(T.storage()->numBytes()) + ")");
  return Error::success();
}

/// ('storage', torch.<X>Storage, key, location, numel) and BINPERSID; an
/// untyped storage is torch.UntypedStorage with numel in bytes.
Error TorchPickler::writePersistentId(const Storage &S, DType Type,
                                      bool Untyped, const Twine &Subject,
                                      PickleWriter &W) {
  Expected<const StorageRecord *> Rec = record(&S, Type, Subject);
  if (!Rec)
    return Rec.takeError();
  unsigned ElemSize = Untyped ? 1 : dtypeSize(Type);
  if (S.numBytes() % ElemSize)
    return makeError("storage of " + Subject + " holds " + Twine(S.numBytes()) +
                     " bytes, not a multiple of " + dtypeName(Type) +
                     " elements");
  if (!isPythonText(S.location()))
    return makeError("storage of " + Subject +
                     " has a location that is not UTF-8");
  W.op(PickleWriter::Op::MARK);
  W.writeStr("storage");
  // The class torch.save names: UntypedStorage lives in torch.storage (and
  // only that spelling is on torch 1.13's weights_only allowlist).
  if (Error E = Untyped ? W.writeGlobal("torch.storage", "UntypedStorage")
                        : W.writeGlobal("torch", dtypeStorageName(Type)))
    return E;
  W.writeStr((*Rec)->Key);
  W.writeStr(S.location());
  W.writeInt(static_cast<int64_t>(S.numBytes() / ElemSize));
  W.op(PickleWriter::Op::TUPLE);
  W.memoize();
  W.op(PickleWriter::Op::BINPERSID);
  return Error::success();
}

Error TorchPickler::writeStorageValue(const StorageValue &SV, PickleWriter &W) {
  std::string Path = W.currentPath();
  return writePersistentId(*SV.storage(), SV.typedAs(), SV.isUntyped(),
                           "storage '" + (Path.empty() ? "<root>" : Path) + "'",
                           W);
}

/// The arguments of torch._utils._rebuild_tensor_v2(storage, offset, size,
/// stride, requires_grad, backward_hooks[, metadata]); _rebuild_tensor_v3
/// (new dtypes, UntypedStorage) adds the dtype before the metadata; the old
/// _rebuild_tensor has the first four only.
Error TorchPickler::writeRebuildArgs(const TensorValue &T, bool Inner,
                                     PickleWriter &W) {
  std::string Name = tensorName(T, W);
  if (Error E = checkView(T, Name))
    return E;
  bool V3 = needsUntypedStorage(T.dtype());
  bool V1 = T.rebuildKind() == TensorValue::RebuildKind::V1;
  W.op(PickleWriter::Op::MARK);
  if (!T.storage())
    return makeError("tensor '" + Name + "' has no storage");
  if (Error E = writePersistentId(
          *T.storage(), V3 ? DType::UInt8 : T.dtype(), V3,
          "tensor '" + Name + "' (" + T.typeString() + ")", W))
    return E;
  W.writeInt(T.storageOffset());
  auto Ints = [&](ArrayRef<int64_t> V) {
    return W.writeTuple(V.size(), [&](size_t I) {
      W.writeInt(V[I]);
      return Error::success();
    });
  };
  if (Error E = Ints(T.shape()))
    return E;
  if (Error E = Ints(T.strides()))
    return E;
  if (!V1) {
    // A parameter's data is a plain tensor: requires_grad and hooks belong
    // to the _rebuild_parameter call around it.
    W.writeBool(!Inner && T.requiresGrad());
    if (!Inner && T.BackwardHooks) {
      if (Error E = W.writeValue(*T.BackwardHooks))
        return E;
    } else {
      W.writeEmptyOrderedDict();
    }
    if (V3)
      if (Error E = W.writeGlobal("torch", dtypeTorchName(T.dtype())))
        return E;
    if (T.Metadata)
      if (Error E = W.writeValue(*T.Metadata))
        return E;
  }
  W.op(PickleWriter::Op::TUPLE);
  W.memoize();
  return Error::success();
}

StringRef rebuildFunction(const TensorValue &T) {
  if (T.rebuildKind() == TensorValue::RebuildKind::V1)
    return "_rebuild_tensor";
  return needsUntypedStorage(T.dtype()) ? "_rebuild_tensor_v3"
                                        : "_rebuild_tensor_v2";
}

/// rebuild(args): a plain tensor object, memoized by the caller.
Error TorchPickler::writeRebuild(const TensorValue &T, bool Inner,
                                 PickleWriter &W) {
  if (Error E = W.writeGlobal("torch._utils", rebuildFunction(T)))
    return E;
  if (Error E = writeRebuildArgs(T, Inner, W))
    return E;
  W.op(PickleWriter::Op::REDUCE);
  return Error::success();
}

/// A Parameter is _rebuild_parameter(tensor, requires_grad, hooks), or
/// _rebuild_parameter_with_state(..., state) when it carried attributes; a
/// tensor subclass or a tensor with attributes is
/// _rebuild_from_type_v2(rebuild, type, args, state).
Error TorchPickler::writeTensor(const TensorValue &T, PickleWriter &W) {
  if (T.isParameter()) {
    bool WithState = static_cast<bool>(T.ParamState);
    if (Error E = W.writeGlobal("torch._utils",
                                WithState ? "_rebuild_parameter_with_state"
                                          : "_rebuild_parameter"))
      return E;
    Error E = W.writeTuple(WithState ? 4 : 3, [&](size_t I) -> Error {
      switch (I) {
      case 0:
        if (Error E = writeRebuild(T, /*Inner=*/true, W))
          return E;
        W.memoize();
        return Error::success();
      case 1:
        W.writeBool(T.requiresGrad());
        return Error::success();
      case 2:
        if (T.BackwardHooks)
          return W.writeValue(*T.BackwardHooks);
        W.writeEmptyOrderedDict();
        return Error::success();
      default:
        return W.writeValue(*T.ParamState);
      }
    });
    if (E)
      return E;
  } else if (T.SubclassType || T.SubclassState) {
    if (Error E = W.writeGlobal("torch._tensor", "_rebuild_from_type_v2"))
      return E;
    Error E = W.writeTuple(4, [&](size_t I) -> Error {
      switch (I) {
      case 0:
        return W.writeGlobal("torch._utils", rebuildFunction(T));
      case 1:
        if (T.SubclassType)
          return W.writeValue(*T.SubclassType);
        return W.writeGlobal("torch", "Tensor");
      case 2:
        return writeRebuildArgs(T, /*Inner=*/false, W);
      default:
        if (T.SubclassState)
          return W.writeValue(*T.SubclassState);
        W.op(PickleWriter::Op::EMPTY_DICT);
        W.memoize();
        return Error::success();
      }
    });
    if (E)
      return E;
  } else {
    if (Error E = writeRebuild(T, /*Inner=*/false, W))
      return E;
    W.endObject(T);
    return Error::success();
  }
  W.op(PickleWriter::Op::REDUCE);
  W.endObject(T);
  return Error::success();
}

Expected<std::string> TorchPickler::run(const Checkpoint &C) {
  if (!C.root())
    return makeError("checkpoint has no root value");
  PickleWriter W;
  W.setTensorCallback([this](const TensorValue &T, PickleWriter &W) {
    return writeTensor(T, W);
  });
  W.setStorageCallback([this](const StorageValue &SV, PickleWriter &W) {
    return writeStorageValue(SV, W);
  });
  if (Error E = W.writeValue(*C.root()))
    return E;
  return W.finish();
}

/// Bytes of storages held in memory are written in pieces this large.
constexpr size_t MemoryChunk = 8 << 20;
/// Computed storages are produced into a buffer this large at a time.
constexpr size_t ProduceChunk = 1 << 20;

/// Streams the bytes of S into the current record: kernel-side or through
/// one buffer from the input file (ZipWriter::copyFromFile), from memory,
/// or produced a chunk at a time (a computed storage is never whole in
/// memory).
Error writeStorage(ZipWriter &Z, const Storage &S,
                   std::vector<uint8_t> &Scratch) {
  switch (S.kind()) {
  case Storage::DataKind::Elided:
    llvm_unreachable("the pickler refuses elided storages");
  case Storage::DataKind::Computed:
    Scratch.resize(std::min<uint64_t>(S.numBytes(), ProduceChunk));
    for (uint64_t Off = 0; Off < S.numBytes();) {
      MutableArrayRef<uint8_t> Part(
          Scratch.data(), std::min<uint64_t>(S.numBytes() - Off, ProduceChunk));
      if (Error E = S.read(Off, Part))
        return E;
      if (Error E = Z.writeData(Part))
        return E;
      Off += Part.size();
    }
    return Error::success();
  case Storage::DataKind::Mapped:
    if (S.source()->fd() >= 0)
      return Z.copyFromFile(S.source()->fd(), S.sourceOffset(), S.numBytes());
    break; // stdin: the bytes are in memory
  case Storage::DataKind::Owned:
    break;
  }
  ArrayRef<uint8_t> Bytes = S.bytes();
  assert(Bytes.size() == S.numBytes() && "storage size mismatch");
  while (!Bytes.empty()) {
    size_t N = std::min(Bytes.size(), MemoryChunk);
    if (Error E = Z.writeData(Bytes.take_front(N)))
      return E;
    Bytes = Bytes.drop_front(N);
  }
  return Error::success();
}

/// One data record. A storage that is still the data of a zip record whose
/// directory gave a CRC keeps that CRC and is copied kernel-side: nothing
/// is computed, so export costs what cp costs, and a corrupt input record
/// stays detectably corrupt in the output (unzip -t, zipfile). With
/// VerifyInputCRC the CRC is computed while copying and checked instead.
Error writeDataRecord(ZipWriter &Z, StringRef Name, const Storage &S,
                      const TorchExportOptions &Opts,
                      std::vector<uint8_t> &Scratch) {
  std::optional<uint32_t> Known;
  if (!Opts.VerifyInputCRC)
    Known = S.sourceCRC();
  if (Error E = Z.beginRecord(Name, S.numBytes(), Known))
    return E;
  if (Error E = writeStorage(Z, S, Scratch))
    return E;
  if (Opts.VerifyInputCRC)
    if (Error E = detail::checkSourceCRC(S, Z.currentCRC()))
      return E;
  return Z.endRecord();
}

/// Records in torch's order: data.pkl, byteorder (torch >= 2.1), data/<key>
/// in lexicographic key order, version.
Error writeArchive(int FD, StringRef Prefix, StringRef ByteOrder,
                   StringRef Pickle, std::vector<StorageRecord> Records,
                   const detail::ProgressFn &Report,
                   const TorchExportOptions &Opts) {
  ZipWriter Z(FD);
  if (Report)
    Z.setProgress([&Report](uint64_t Done) { Report(Done); });
  std::string P = (Prefix + "/").str();
  if (Error E = Z.addRecord(P + "data.pkl", arrayRefFromStringRef(Pickle)))
    return E;
  if (Error E = Z.addRecord(P + "byteorder", arrayRefFromStringRef(ByteOrder)))
    return E;
  llvm::sort(Records, [](const StorageRecord &A, const StorageRecord &B) {
    return A.Key < B.Key;
  });
  std::vector<uint8_t> Scratch;
  for (const StorageRecord &R : Records)
    if (Error E = writeDataRecord(Z, P + "data/" + R.Key, *R.S, Opts, Scratch))
      return E;
  if (Error E = Z.addRecord(P + "version", arrayRefFromStringRef("3\n")))
    return E;
  return Z.finish();
}

/// torch.save names the record folder after the file: "ck.pt" -> "ck".
std::string recordPrefix(StringRef Path, const TorchExportOptions &Opts) {
  if (!Opts.RecordPrefix.empty())
    return Opts.RecordPrefix;
  if (Path == "-")
    return "archive";
  std::string Stem = sys::path::stem(Path).str();
  return Stem.empty() ? std::string("archive") : Stem;
}

uint64_t totalBytes(ArrayRef<StorageRecord> Records) {
  uint64_t N = 0;
  for (const StorageRecord &R : Records)
    N += R.S->numBytes();
  return N;
}

/// Writes through Write to Path with the output semantics of
/// wopt/Serialization/Output.h (a file appears only once complete; "-", a
/// device or a FIFO is streamed to).
Error writeAtomically(StringRef Path, function_ref<Error(int FD)> Write) {
  auto Out = detail::AtomicOutput::create(Path);
  if (!Out)
    return Out.takeError();
  if (Error E = Write((*Out)->fd()))
    return (*Out)->nameOutput(std::move(E)); // the destructor drops the file
  return (*Out)->commit();
}

} // namespace

Expected<std::string> pickleTorch(const Checkpoint &C) {
  return TorchPickler(/*AllowElided=*/true).run(C);
}

Error exportTorch(const Checkpoint &C, StringRef Path,
                  const TorchExportOptions &Opts) {
  // What the readers would refuse (a key twice, a str that is not UTF-8)
  // is never written.
  if (Error E = verifyCheckpoint(C))
    return createStringError(
        inconvertibleErrorCode(),
        Path + ": cannot write an invalid IR: " + toString(std::move(E)));
  TorchPickler Pickler;
  Expected<std::string> Pickle = Pickler.run(C);
  if (!Pickle)
    return Pickle.takeError();
  if (Opts.VerifyInputCRC &&
      llvm::none_of(Pickler.Records,
                    [](const StorageRecord &R) { return R.S->sourceCRC(); }))
    return detail::nothingToVerify();
  std::string Prefix = recordPrefix(Path, Opts);
  std::optional<detail::ProgressBar> Bar;
  detail::ProgressFn Report = Opts.OnProgress;
  if (Opts.Progress && !Report) {
    Bar.emplace(Path == "-" ? "<stdout>" : sys::path::filename(Path),
                totalBytes(Pickler.Records));
    Report = [&Bar](uint64_t Done) { Bar->update(Done); };
  }
  auto Write = [&](int FD) {
    Error E = writeArchive(FD, Prefix, C.ByteOrder, *Pickle, Pickler.Records,
                           Report, Opts);
    if (Bar)
      Bar->done();
    return E;
  };
  return writeAtomically(Path, Write);
}

} // namespace wopt
