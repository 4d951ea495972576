//===- Summary.cpp - The -emit=summary view
//--------------------------------===//
//
// What a person wants to know about a checkpoint before choosing a
// pipeline: how big, which dtypes, what is at the top, and which foreign
// globals would stop torch.load(weights_only=True).
//
//===----------------------------------------------------------------------===//

#include "wopt/IR/Checkpoint.h"
#include "wopt/Serialization/Serialization.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/FormatVariadic.h"
#include <map>

using namespace llvm;

namespace wopt {
namespace {

struct Stats {
  uint64_t Tensors = 0;
  uint64_t TensorBytes = 0;
  std::map<std::string, uint64_t> DTypes;
  std::map<std::string, uint64_t> Globals;
};

/// Every node once, including tensors inside opaque objects.
void collect(const Value *V, Stats &S) {
  if (!V)
    return;
  forEachNode(*V, [&](const Value &X) {
    if (auto *T = dyn_cast<TensorValue>(&X)) {
      ++S.Tensors;
      ++S.DTypes[dtypeName(T->dtype()).str()];
      if (std::optional<uint64_t> N = T->numel())
        S.TensorBytes += dtypeBytes(T->dtype(), *N).value_or(0);
    } else if (auto *O = dyn_cast<OpaqueValue>(&X)) {
      if (!O->isWeightsOnlySafe())
        ++S.Globals[O->qualifiedName()];
    }
    return true;
  });
}

/// One line describing a value: "dict, 12 entries, 10 tensors (1.2 MB)".
void describe(const Value &V, raw_ostream &OS) {
  OS << pythonTypeName(V);
  if (auto *T = dyn_cast<TensorValue>(&V)) {
    OS << " " << T->typeString();
    return;
  }
  if (auto *O = dyn_cast<OpaqueValue>(&V)) {
    OS << " " << O->qualifiedName();
  } else if (auto *D = dyn_cast<DictValue>(&V)) {
    OS << ", " << D->size() << (D->size() == 1 ? " entry" : " entries");
  } else if (auto *Q = dyn_cast<SequenceValue>(&V)) {
    OS << ", " << Q->elements().size()
       << (Q->elements().size() == 1 ? " element" : " elements");
  } else if (auto *I = dyn_cast<IntValue>(&V)) {
    OS << " " << I->value();
    return;
  } else if (auto *B = dyn_cast<BoolValue>(&V)) {
    OS << " " << (B->value() ? "True" : "False");
    return;
  } else if (auto *F = dyn_cast<FloatValue>(&V)) {
    OS << " " << formatv("{0}", F->value());
    return;
  } else {
    return;
  }
  Stats S;
  collect(&V, S);
  if (S.Tensors)
    OS << ", " << S.Tensors << (S.Tensors == 1 ? " tensor" : " tensors") << " ("
       << S.TensorBytes << " bytes)";
}

std::string keyLabel(const Value *K) {
  if (auto *S = dyn_cast_or_null<StringValue>(K))
    return "'" + S->value() + "'";
  if (auto *I = dyn_cast_or_null<IntValue>(K))
    return std::to_string(I->value());
  return K ? pythonTypeName(*K).str() : "?";
}

/// A set's files, in the order their tensors come.
void writeShardFiles(const Checkpoint &C, raw_ostream &OS) {
  std::vector<std::string> Files;
  C.forEachTensor([&](TensorValue &T) {
    const StorageRef &S = T.storage();
    if (S && S->source() && !llvm::is_contained(Files, S->source()->path()))
      Files.push_back(S->source()->path().str());
  });
  OS << "shards: " << Files.size() << " file" << (Files.size() == 1 ? "" : "s");
  if (!Files.empty())
    OS << " (" << Files.front()
       << (Files.size() > 1 ? " ... " + Files.back() : std::string()) << ")";
  OS << "\n";
}

} // namespace

void writeSummary(const Checkpoint &C, raw_ostream &OS) {
  OS << "file: " << C.SourcePath << "\n";
  OS << "format: " << C.Format;
  if (!C.FormatVersion.empty())
    OS << " (version " << C.FormatVersion << ")";
  OS << "\n";
  if (!C.RecordPrefix.empty())
    OS << "record prefix: " << C.RecordPrefix << "\n";
  OS << "byte order: " << C.ByteOrder << "\n";
  if (C.Format == "shards")
    writeShardFiles(C, OS);

  Stats S;
  collect(C.root().get(), S);
  OS << "tensors: " << S.Tensors << "\n";
  OS << "tensor bytes: " << S.TensorBytes << "\n";

  // Storages: distinct ones, their bytes, and those several tensors share.
  DenseMap<const Storage *, unsigned> Uses;
  C.forEachTensor([&](TensorValue &T) {
    if (T.storage())
      ++Uses[T.storage().get()];
  });
  uint64_t StorageBytes = 0, Shared = 0;
  for (auto &[Stor, N] : Uses) {
    StorageBytes += Stor->numBytes();
    Shared += N > 1;
  }
  OS << "storages: " << Uses.size() << " (" << StorageBytes << " bytes, "
     << Shared << " shared by several tensors)\n";

  OS << "dtypes:";
  if (S.DTypes.empty())
    OS << " none";
  for (auto &[Name, N] : S.DTypes)
    OS << " " << Name << "=" << N;
  OS << "\n";

  OS << "root: ";
  if (!C.root()) {
    OS << "none\n";
  } else {
    describe(*C.root(), OS);
    OS << "\n";
    if (auto *D = dyn_cast<DictValue>(C.root().get())) {
      // A state dict has thousands of keys: show the structure, not all.
      const size_t Max = 20;
      for (size_t I = 0; I < D->size() && I < Max; ++I) {
        const DictEntry &E = D->entries()[I];
        OS << "  " << keyLabel(E.Key.get()) << ": ";
        describe(*E.Val, OS);
        OS << "\n";
      }
      if (D->size() > Max)
        OS << "  ... " << (D->size() - Max) << " more\n";
      if (D->state())
        OS << "  (with _metadata state)\n";
    }
  }

  OS << "opaque globals:";
  if (S.Globals.empty())
    OS << " none";
  OS << "\n";
  for (auto &[Name, N] : S.Globals)
    OS << "  " << Name << " (" << N << ")\n";
}

} // namespace wopt
