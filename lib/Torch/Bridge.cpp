//===- Bridge.cpp - Checkpoints into and out of LibTorch modules ---------===//
//
// The only wopt translation unit built with exceptions: every public entry
// point runs its body through guard(), which turns whatever LibTorch throws
// into an llvm::Error. LibTorch's headers are heavy, so the whole bridge is
// this one file.
//
//===----------------------------------------------------------------------===//
#include "wopt/Torch/Bridge.h"
#include "wopt/Pass/PassManager.h"
#include "wopt/Passes/Passes.h"
#include "wopt/Serialization/Serialization.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include <c10/core/CPUAllocator.h>
#include <cstring>
#include <torch/types.h>
#include <torch/utils.h>

using namespace llvm;

namespace wopt {
namespace {

//===----------------------------------------------------------------------===//
// Errors: nothing LibTorch throws crosses the boundary
//===----------------------------------------------------------------------===//

Error bridgeError(const Twine &Msg) {
  return createStringError(inconvertibleErrorCode(), Msg);
}

/// Runs F, turning a LibTorch (or any C++) exception into an llvm::Error
/// "<What>: LibTorch: <message>".
template <typename Fn> auto guard(StringRef What, Fn &&F) -> decltype(F()) {
  try {
    return F();
  } catch (const c10::Error &E) {
    return bridgeError(What + ": LibTorch: " + E.what_without_backtrace());
  } catch (const std::exception &E) {
    return bridgeError(What + ": LibTorch: " + E.what());
  } catch (...) {
    return bridgeError(What + ": LibTorch: unknown exception");
  }
}

//===----------------------------------------------------------------------===//
// Element types
//===----------------------------------------------------------------------===//

/// LibTorch 1.13 has no uint16/32/64 or float8, and quantized tensors need
/// quantizer parameters the IR does not carry.
std::optional<c10::ScalarType> toScalarType(DType T) {
  switch (T) {
  case DType::UInt8:
    return c10::ScalarType::Byte;
  case DType::Int8:
    return c10::ScalarType::Char;
  case DType::Int16:
    return c10::ScalarType::Short;
  case DType::Int32:
    return c10::ScalarType::Int;
  case DType::Int64:
    return c10::ScalarType::Long;
  case DType::Float16:
    return c10::ScalarType::Half;
  case DType::Float32:
    return c10::ScalarType::Float;
  case DType::Float64:
    return c10::ScalarType::Double;
  case DType::Complex32:
    return c10::ScalarType::ComplexHalf;
  case DType::Complex64:
    return c10::ScalarType::ComplexFloat;
  case DType::Complex128:
    return c10::ScalarType::ComplexDouble;
  case DType::Bool:
    return c10::ScalarType::Bool;
  case DType::BFloat16:
    return c10::ScalarType::BFloat16;
  default:
    return std::nullopt;
  }
}

std::optional<DType> fromScalarType(c10::ScalarType S) {
  for (DType T :
       {DType::UInt8, DType::Int8, DType::Int16, DType::Int32, DType::Int64,
        DType::Float16, DType::Float32, DType::Float64, DType::Complex32,
        DType::Complex64, DType::Complex128, DType::Bool, DType::BFloat16})
    if (toScalarType(T) == S)
      return T;
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Modules: their entries in state_dict() order
//===----------------------------------------------------------------------===//

struct ModuleEntry {
  std::string Name;
  torch::Tensor Tensor; ///< shares the module's TensorImpl
};

/// Each module's parameters, then its buffers, then its children's, as
/// Python's state_dict() orders them; undefined (None) entries skipped.
void collectEntries(const torch::nn::Module &M, const std::string &Prefix,
                    std::vector<ModuleEntry> &Out) {
  for (const auto &P : M.named_parameters(/*recurse=*/false))
    if (P.value().defined())
      Out.push_back({Prefix + P.key(), P.value()});
  for (const auto &B : M.named_buffers(/*recurse=*/false))
    if (B.value().defined())
      Out.push_back({Prefix + B.key(), B.value()});
  for (const auto &C : M.named_children())
    collectEntries(*C.value(), Prefix + C.key() + ".", Out);
}

std::vector<ModuleEntry> moduleEntries(const torch::nn::Module &M) {
  std::vector<ModuleEntry> Out;
  collectEntries(M, "", Out);
  return Out;
}

Expected<DType> tensorDType(StringRef Name, const torch::Tensor &T) {
  if (std::optional<DType> D = fromScalarType(T.scalar_type()))
    return *D;
  return bridgeError("'" + Name + "': dtype " +
                     std::string(c10::toString(T.scalar_type())) +
                     " has no wopt equivalent");
}

//===----------------------------------------------------------------------===//
// IR tensors -> torch tensors
//===----------------------------------------------------------------------===//

/// A private, copy-on-write mapping of a whole input file: the memory
/// behind zero-copy views. Writes change this process's pages only.
struct PrivateMapping {
  sys::fs::mapped_file_region Region;
};

/// Makes torch tensors from IR tensors, one torch storage per IR storage
/// (so sharing is kept), viewing or copying the bytes.
class TensorMaker {
public:
  enum class Mode {
    Copy,     ///< owned copies
    View,     ///< copy-on-write views of the file where possible
    ReadOnly, ///< read-only views of the input mapping where possible:
              ///< only as the source of a copy, never handed out
  };
  explicit TensorMaker(Mode M) : TheMode(M) {}

  /// Notes the alignment T needs of its storage's base, before any
  /// storage is made: a view is made only when every tensor of a storage
  /// can use it.
  void require(const TensorValue &T) {
    unsigned &A = Align[T.storage().get()];
    A = std::max(A, dtypeSize(T.dtype()));
  }

  Expected<torch::Tensor> make(StringRef Name, const TensorValue &T);
  /// Whether the torch storage made for S views the file.
  bool isView(const Storage *S) const { return Viewed.count(S); }

private:
  Expected<c10::Storage> storageFor(StringRef Name, const Storage &S);
  Expected<std::shared_ptr<PrivateMapping>> privateMapping(const SourceFile &F);
  /// The bytes of S in place, or null when S must be copied.
  Expected<void *> viewBytes(const Storage &S);

  Mode TheMode;
  DenseMap<const Storage *, unsigned> Align;
  DenseMap<const Storage *, c10::Storage> Made;
  DenseMap<const Storage *, bool> Viewed;
  DenseMap<const SourceFile *, std::shared_ptr<PrivateMapping>> Maps;
};

template <typename T> void deleteHolder(void *Ctx) {
  delete static_cast<std::shared_ptr<T> *>(Ctx);
}

/// A DataPtr over Data that keeps Owner alive until LibTorch frees it.
template <typename T>
at::DataPtr keepAlive(void *Data, std::shared_ptr<T> Owner) {
  return at::DataPtr(Data, new std::shared_ptr<T>(std::move(Owner)),
                     &deleteHolder<T>, at::Device(at::kCPU));
}

Expected<std::shared_ptr<PrivateMapping>>
TensorMaker::privateMapping(const SourceFile &F) {
  std::shared_ptr<PrivateMapping> &M = Maps[&F];
  if (M)
    return M;
  std::error_code EC;
  auto P = std::make_shared<PrivateMapping>();
  P->Region = sys::fs::mapped_file_region(
      sys::fs::convertFDToNativeFile(F.fd()), sys::fs::mapped_file_region::priv,
      F.size(), 0, EC);
  if (EC)
    return bridgeError(F.path() +
                       ": cannot map copy-on-write: " + EC.message());
  M = std::move(P);
  return M;
}

Expected<void *> TensorMaker::viewBytes(const Storage &S) {
  if (TheMode == Mode::Copy || S.kind() != Storage::DataKind::Mapped ||
      S.numBytes() == 0)
    return nullptr;
  const SourceFile &F = *S.source();
  unsigned A = std::max(1u, Align.lookup(&S));
  if (TheMode == Mode::ReadOnly) {
    // The input mapping itself: read, never written (the copy's source).
    const uint8_t *P = S.bytes().data();
    return reinterpret_cast<uintptr_t>(P) % A ? nullptr
                                              : const_cast<uint8_t *>(P);
  }
  // Copy-on-write needs the file itself (stdin was read into memory).
  if (F.fd() < 0)
    return nullptr;
  Expected<std::shared_ptr<PrivateMapping>> M = privateMapping(F);
  if (!M)
    return M.takeError();
  uint8_t *P =
      reinterpret_cast<uint8_t *>((*M)->Region.data()) + S.sourceOffset();
  return reinterpret_cast<uintptr_t>(P) % A ? nullptr : P;
}

Expected<c10::Storage> TensorMaker::storageFor(StringRef Name,
                                               const Storage &S) {
  auto It = Made.find(&S);
  if (It != Made.end())
    return It->second;
  if (!S.hasData())
    return bridgeError("'" + Name + "': storage '" + S.key() +
                       "' has no data (elided)");
  Expected<void *> InPlace = viewBytes(S);
  if (!InPlace)
    return InPlace.takeError();
  c10::Storage Out;
  if (*InPlace) {
    at::DataPtr Ptr = TheMode == Mode::View
                          ? keepAlive(*InPlace, Maps.lookup(S.source().get()))
                          : keepAlive(*InPlace, S.source());
    Out = c10::Storage(c10::Storage::use_byte_size_t(), S.numBytes(),
                       std::move(Ptr), /*allocator=*/nullptr,
                       /*resizable=*/false);
    Viewed[&S] = true;
  } else {
    Out = c10::Storage(c10::Storage::use_byte_size_t(),
                       static_cast<int64_t>(S.numBytes()),
                       c10::GetDefaultCPUAllocator(), /*resizable=*/false);
    auto *Dst = static_cast<uint8_t *>(Out.data());
    if (Error E = S.read(0, MutableArrayRef<uint8_t>(Dst, S.numBytes())))
      return bridgeError("'" + Name + "': " + toString(std::move(E)));
  }
  Made[&S] = Out;
  return Out;
}

Expected<torch::Tensor> TensorMaker::make(StringRef Name,
                                          const TensorValue &T) {
  std::optional<c10::ScalarType> ST = toScalarType(T.dtype());
  if (!ST)
    return bridgeError("'" + Name + "': dtype " + dtypeName(T.dtype()) +
                       " has no LibTorch 1.13 equivalent");
  if (!T.storage())
    return bridgeError("'" + Name + "': tensor has no storage");
  std::optional<uint64_t> Need = T.requiredStorageBytes();
  if (!Need || *Need > T.storage()->numBytes())
    return bridgeError("'" + Name + "': " + T.typeString() +
                       " reaches past the end of its storage ('" +
                       T.storage()->key() + "', " +
                       Twine(T.storage()->numBytes()) + " bytes)");
  Expected<c10::Storage> S = storageFor(Name, *T.storage());
  if (!S)
    return S.takeError();
  torch::Tensor Out = torch::empty({0}, torch::TensorOptions().dtype(*ST));
  Out.set_(*S, T.storageOffset(),
           c10::IntArrayRef(T.shape().data(), T.shape().size()),
           c10::IntArrayRef(T.strides().data(), T.strides().size()));
  return Out;
}

TensorMaker::Mode makerMode(TensorData D) {
  return D == TensorData::View ? TensorMaker::Mode::View
                               : TensorMaker::Mode::Copy;
}

//===----------------------------------------------------------------------===//
// Checkpoints
//===----------------------------------------------------------------------===//

std::string where(const Checkpoint &C) {
  return C.SourcePath.empty() ? std::string() : C.SourcePath + ": ";
}

/// The root state dict; an empty dict counts (a module without entries).
Expected<const DictValue *> rootStateDict(const Checkpoint &C) {
  if (C.ByteOrder != "little")
    return bridgeError(where(C) + "byte order '" + C.ByteOrder +
                       "': LibTorch tensors are little-endian here");
  if (const DictValue *SD = C.stateDict())
    return SD;
  const auto *D = dyn_cast_or_null<DictValue>(C.root().get());
  if (D && D->entries().empty())
    return D;
  std::string Msg = where(C) + "the root is ";
  Msg += C.root() ? describeKind(*C.root()) : "empty";
  if (D) {
    SmallVector<std::string, 4> Keys;
    for (const DictEntry &E : D->entries())
      if (std::optional<StringRef> K = E.keyString())
        if (Keys.size() < 4)
          Keys.push_back("'" + K->str() + "'");
    if (!Keys.empty())
      Msg += " with keys " + join(Keys, ", ") +
             (D->size() > Keys.size() ? ", ..." : "");
  }
  return bridgeError(Msg + ", not a state dict: add unwrap to the pipeline");
}

/// The report as one error: the first line names the file.
std::string mismatchText(const Checkpoint &C, const Comparison &R) {
  std::string Text;
  raw_string_ostream OS(Text);
  printReport(R, OS);
  StringRef T = StringRef(Text).rtrim('\n');
  T.consume_front("error: ");
  return where(C) + T.str();
}

/// The comparison's options. llvm::GlobPattern keeps a reference into its
/// pattern text, so the strings live here, beside the compiled globs.
struct ModuleCompare {
  std::vector<std::string> Missing, Unexpected;
  CompareOptions Options;
};

Error compareOptions(const torch::nn::Module &M, const TorchLoadOptions &Opts,
                     ModuleCompare &Out) {
  Out.Options.ManifestName = "of module " + M.name();
  Out.Missing = Opts.AllowMissing;
  Out.Unexpected = Opts.AllowUnexpected;
  if (!Opts.Strict) {
    Out.Missing.push_back("*");
    Out.Unexpected.push_back("*");
  }
  Expected<std::vector<GlobPattern>> MG =
      compileGlobs(Out.Missing, "AllowMissing");
  if (!MG)
    return MG.takeError();
  Expected<std::vector<GlobPattern>> UG =
      compileGlobs(Out.Unexpected, "AllowUnexpected");
  if (!UG)
    return UG.takeError();
  Out.Options.AllowMissing = std::move(*MG);
  Out.Options.AllowUnexpected = std::move(*UG);
  return Error::success();
}

/// One module entry and the checkpoint tensor it gets.
struct Assignment {
  const ModuleEntry *Target;
  const TensorValue *Source;
  torch::Tensor Data;
};

/// Module entries that are one tensor (tied weights) must get equal bytes.
Error checkTies(const Checkpoint &C, ArrayRef<Assignment> As) {
  DenseMap<const void *, const Assignment *> First;
  for (const Assignment &A : As) {
    auto [It, New] =
        First.try_emplace(A.Target->Tensor.unsafeGetTensorImpl(), &A);
    if (New)
      continue;
    const Assignment &B = *It->second;
    torch::Tensor X = B.Data.contiguous(), Y = A.Data.contiguous();
    if (X.nbytes() == Y.nbytes() &&
        std::memcmp(X.data_ptr(), Y.data_ptr(), X.nbytes()) == 0)
      continue;
    return bridgeError(where(C) + "module ties '" + B.Target->Name + "' and '" +
                       A.Target->Name +
                       "' (one tensor) but the checkpoint holds different "
                       "values for them");
  }
  return Error::success();
}

Expected<TorchLoadResult> loadInto(torch::nn::Module &M, const Checkpoint &C,
                                   const TorchLoadOptions &Opts) {
  Expected<const DictValue *> SD = rootStateDict(C);
  if (!SD)
    return SD.takeError();
  Expected<Manifest> Target = moduleManifest(M);
  if (!Target)
    return Target.takeError();
  ModuleCompare MC;
  if (Error E = compareOptions(M, Opts, MC))
    return E;
  TorchLoadResult Result;
  Result.Report =
      compareWithManifest(*Target, checkpointEntries(**SD), MC.Options);
  if (!Result.Report.ok())
    return make_error<VerificationFailure>(mismatchText(C, Result.Report));

  // Everything that can fail happens before the module is touched.
  std::vector<ModuleEntry> Entries = moduleEntries(M);
  TensorMaker Maker(Opts.Data == TensorData::View
                        ? TensorMaker::Mode::View
                        : TensorMaker::Mode::ReadOnly);
  std::vector<Assignment> As;
  for (const ModuleEntry &E : Entries)
    if (const auto *T = dyn_cast_or_null<TensorValue>((*SD)->lookup(E.Name))) {
      As.push_back({&E, T, {}});
      Maker.require(*T);
    }
  for (Assignment &A : As) {
    if (A.Target->Tensor.layout() != torch::kStrided)
      return bridgeError(where(C) + "module entry '" + A.Target->Name +
                         "' is not a dense tensor: only dense entries load");
    Expected<torch::Tensor> T = Maker.make(A.Target->Name, *A.Source);
    if (!T)
      return T.takeError();
    A.Data = std::move(*T);
  }
  if (Error E = checkTies(C, As))
    return E;

  torch::NoGradGuard NoGrad;
  // Module tensors adopt storages (View). A storage adopted by one module
  // tensor is not adopted by another: the module would come out with
  // entries tied that it keeps apart. The second one gets a copy.
  DenseMap<const Storage *, const void *> Adopter;
  for (Assignment &A : As) {
    const torch::Tensor &Dst = A.Target->Tensor;
    const Storage *S = A.Source->storage().get();
    if (Opts.Data == TensorData::View && Dst.device().is_cpu()) {
      const void *Impl = Dst.unsafeGetTensorImpl();
      auto [It, New] = Adopter.try_emplace(S, Impl);
      if (New || It->second == Impl) {
        Dst.set_data(A.Data); // the view (or the aligned copy just made)
        ++(Maker.isView(S) ? Result.NumViewed : Result.NumCopied);
      } else {
        Dst.set_data(A.Data.clone());
        ++Result.NumCopied;
      }
    } else {
      Dst.copy_(A.Data);
      ++Result.NumCopied;
    }
    ++Result.NumLoaded;
  }
  return Result;
}

Expected<std::unique_ptr<Checkpoint>>
fromTensors(const torch::OrderedDict<std::string, torch::Tensor> &Tensors) {
  auto Root = std::make_shared<DictValue>(/*Ordered=*/true);
  DenseMap<const void *, StorageRef> Storages;
  // A tensor given under two names is one node: the file pickles it once
  // and Python loads one object under both keys, as torch.save does.
  DenseMap<const void *, ValuePtr> Nodes;
  for (const auto &Item : Tensors) {
    const std::string &Name = Item.key();
    const torch::Tensor &T = Item.value();
    if (!T.defined())
      return bridgeError("'" + Name + "': undefined tensor");
    if (ValuePtr Seen = Nodes.lookup(T.unsafeGetTensorImpl())) {
      Root->set(Name, std::move(Seen));
      continue;
    }
    if (T.layout() != torch::kStrided || T.is_quantized() ||
        !T.device().is_cpu() || !T.has_storage())
      return bridgeError("'" + Name +
                         "': only dense CPU tensors can be "
                         "saved (move it to the CPU, make it dense)");
    Expected<DType> D = tensorDType(Name, T);
    if (!D)
      return D.takeError();
    const c10::Storage &S = T.storage();
    StorageRef &Stor = Storages[S.unsafeGetStorageImpl()];
    if (!Stor) {
      // Like torch.save: the whole storage, once, however many views.
      const auto *Bytes = static_cast<const uint8_t *>(S.data());
      Stor = Storage::owned(std::to_string(Storages.size() - 1), *D,
                            std::vector<uint8_t>(Bytes, Bytes + S.nbytes()));
    }
    auto TV = std::make_shared<TensorValue>();
    TV->setDType(*D);
    TV->setShapeAndStrides(ArrayRef<int64_t>(T.sizes().data(), T.dim()),
                           ArrayRef<int64_t>(T.strides().data(), T.dim()));
    TV->setStorageOffset(T.storage_offset());
    TV->setStorage(Stor);
    TV->provenance().KeyPath = {Name};
    Nodes[T.unsafeGetTensorImpl()] = TV;
    Root->set(Name, std::move(TV));
  }
  auto C = std::make_unique<Checkpoint>(std::move(Root));
  C->Format = "libtorch";
  return C;
}

} // namespace

//===----------------------------------------------------------------------===//
// The public entry points: each one guarded
//===----------------------------------------------------------------------===//

Expected<Manifest> moduleManifest(const torch::nn::Module &M) {
  return guard("manifest of module", [&]() -> Expected<Manifest> {
    Manifest Out;
    Out.MadeFrom = "LibTorch module " + M.name();
    for (const ModuleEntry &E : moduleEntries(M)) {
      Expected<DType> D = tensorDType(E.Name, E.Tensor);
      if (!D)
        return D.takeError();
      ManifestEntry ME;
      ME.Name = E.Name;
      ME.Type = *D;
      ME.Shape.assign(E.Tensor.sizes().begin(), E.Tensor.sizes().end());
      Out.Entries.push_back(std::move(ME));
    }
    return Out;
  });
}

Expected<std::unique_ptr<Checkpoint>>
importForTorch(StringRef Path, const TorchLoadOptions &Opts) {
  Expected<std::unique_ptr<Checkpoint>> C = importFile(Path);
  if (!C || Opts.Pipeline.empty())
    return C;
  PassRegistry Shipped;
  const PassRegistry *R = Opts.Registry;
  if (!R) {
    registerAllPasses(Shipped);
    registerAllPipelines(Shipped);
    R = &Shipped;
  }
  PassManager PM;
  if (Error E = R->parsePipeline(Opts.Pipeline, PM))
    return E;
  if (Opts.Diagnostics)
    PM.setDiagnosticHandler(Opts.Diagnostics);
  if (Error E = PM.run(**C)) {
    if (E.isA<VerificationFailure>())
      return E;
    return bridgeError(Path + ": " + toString(std::move(E)));
  }
  return C;
}

Expected<TorchLoadResult> loadStateDict(torch::nn::Module &M,
                                        const Checkpoint &C,
                                        const TorchLoadOptions &Opts) {
  return guard(where(C) + "loading into module " + M.name(),
               [&] { return loadInto(M, C, Opts); });
}

Expected<TorchLoadResult> loadStateDict(torch::nn::Module &M, StringRef Path,
                                        const TorchLoadOptions &Opts) {
  Expected<std::unique_ptr<Checkpoint>> C = importForTorch(Path, Opts);
  if (!C)
    return C.takeError();
  return loadStateDict(M, **C, Opts);
}

Expected<torch::OrderedDict<std::string, torch::Tensor>>
stateDictTensors(const Checkpoint &C, TensorData Data) {
  using Result = Expected<torch::OrderedDict<std::string, torch::Tensor>>;
  return guard(where(C) + "state dict as tensors", [&]() -> Result {
    Expected<const DictValue *> SD = rootStateDict(C);
    if (!SD)
      return SD.takeError();
    TensorMaker Maker(makerMode(Data));
    for (const DictEntry &E : (*SD)->entries())
      if (const auto *T = dyn_cast<TensorValue>(E.Val.get()))
        Maker.require(*T);
    torch::OrderedDict<std::string, torch::Tensor> Out;
    // One tensor node under two keys (one Python object saved twice) is
    // one torch::Tensor under both names, as torch.load gives `a is b`.
    DenseMap<const TensorValue *, torch::Tensor> Made;
    for (const DictEntry &E : (*SD)->entries()) {
      const auto *T = dyn_cast<TensorValue>(E.Val.get());
      if (!T)
        continue;
      StringRef Name = *E.keyString();
      if (Out.contains(Name.str()))
        return bridgeError(where(C) + "key '" + Name +
                           "' appears twice in the state dict");
      auto [It, New] = Made.try_emplace(T);
      if (New) {
        Expected<torch::Tensor> Tensor = Maker.make(Name, *T);
        if (!Tensor)
          return bridgeError(where(C) + toString(Tensor.takeError()));
        It->second = std::move(*Tensor);
      }
      Out.insert(Name.str(), It->second);
    }
    return Out;
  });
}

Expected<torch::OrderedDict<std::string, torch::Tensor>>
readStateDict(StringRef Path, const TorchLoadOptions &Opts) {
  Expected<std::unique_ptr<Checkpoint>> C = importForTorch(Path, Opts);
  if (!C)
    return C.takeError();
  return stateDictTensors(**C, Opts.Data);
}

Expected<std::unique_ptr<Checkpoint>>
checkpointFromTensors(const torch::OrderedDict<std::string, torch::Tensor> &T) {
  return guard("state dict from tensors", [&] { return fromTensors(T); });
}

Expected<std::unique_ptr<Checkpoint>>
moduleCheckpoint(const torch::nn::Module &M) {
  return guard("state dict of module " + M.name(),
               [&]() -> Expected<std::unique_ptr<Checkpoint>> {
                 torch::OrderedDict<std::string, torch::Tensor> Tensors;
                 for (const ModuleEntry &E : moduleEntries(M))
                   Tensors.insert(E.Name, E.Tensor.detach());
                 return fromTensors(Tensors);
               });
}

Error saveStateDict(const torch::nn::Module &M, StringRef Path,
                    const TorchExportOptions &Opts) {
  Expected<std::unique_ptr<Checkpoint>> C = moduleCheckpoint(M);
  if (!C)
    return C.takeError();
  return exportTorch(**C, Path, Opts);
}

} // namespace wopt
