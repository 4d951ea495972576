//===- Verifier.cpp - IR invariants ---------------------------------------===//
//
// What every pass may take for granted. Importers check untrusted input as
// they read it; the verifier re-checks the whole graph (each node once)
// after a pass so a bug in a pass is caught at that pass, not later as a
// corrupt export.
//
//===----------------------------------------------------------------------===//

#include "wopt/IR/Verifier.h"
#include "TextIRInternal.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

using namespace wopt;
using namespace llvm;

namespace {

class Verifier {
public:
  Error verifyRoot(const Value &Root) {
    Seen.insert(&Root);
    return verifyValue(&Root);
  }
  Error verifyValue(const Value *V);

private:
  Error verifyEntries(const std::vector<DictEntry> &Entries);
  Error verifyTensor(const TensorValue &T);
  Error verifyChild(const Twine &Name, const ValuePtr &V) {
    if (!V || !Seen.insert(V.get()).second)
      return Error::success();
    Path.push_back(Name.str());
    Error E = verifyValue(V.get());
    Path.pop_back();
    return E;
  }
  /// "teacher/backbone.x: <Msg>", or "<root>: <Msg>".
  Error fail(const Twine &Msg) const {
    std::string Where = Path.empty() ? "<root>" : join(Path, "/");
    return createStringError(inconvertibleErrorCode(), Where + ": " + Msg);
  }

  std::vector<std::string> Path;
  SmallPtrSet<const Value *, 32> Seen;
};

} // namespace

/// How a key appears in a path: string keys as they are, others as printed.
static std::string pathComponent(const Value &Key) {
  if (auto *S = dyn_cast<StringValue>(&Key))
    if (S->kind() == Value::Kind::Str)
      return S->value();
  return textir::keyIdentity(Key);
}

Error Verifier::verifyEntries(const std::vector<DictEntry> &Entries) {
  StringSet<> Keys;
  for (const DictEntry &E : Entries) {
    if (!E.Key || !E.Val)
      return fail("dict entry without a key or a value");
    std::string Identity = textir::keyIdentity(*E.Key);
    if (!Keys.insert(Identity).second)
      return fail("duplicate key " + Identity);
    if (Error Err = verifyChild("<key>", E.Key))
      return Err;
    if (Error Err = verifyChild(pathComponent(*E.Key), E.Val))
      return Err;
  }
  return Error::success();
}

Error Verifier::verifyTensor(const TensorValue &T) {
  ArrayRef<int64_t> Shape = T.shape(), Strides = T.strides();
  if (Shape.size() != Strides.size())
    return fail("tensor has " + Twine(Shape.size()) + " dimensions but " +
                Twine(Strides.size()) + " strides");
  for (size_t I = 0; I < Shape.size(); ++I) {
    if (Shape[I] < 0)
      return fail("tensor dimension " + Twine(I) + " is negative (" +
                  Twine(Shape[I]) + ")");
    if (Strides[I] < 0)
      return fail("tensor stride " + Twine(I) + " is negative (" +
                  Twine(Strides[I]) + ")");
  }
  if (T.storageOffset() < 0)
    return fail("tensor storage offset is negative (" +
                Twine(T.storageOffset()) + ")");
  std::optional<uint64_t> Need = T.requiredStorageBytes();
  if (!Need)
    return fail("tensor extent overflows 64 bits (" + T.typeString() + ")");

  const StorageRef &S = T.storage();
  if (!S)
    return fail("tensor has no storage");
  DType Elem = S->elementType();
  // A typed storage holds one dtype; an untyped one (u8) holds raw bytes
  // that any tensor may view (torch's UntypedStorage for newer dtypes); an
  // empty one holds nothing, and torch saves it under every dtype that
  // views it.
  if (Elem != T.dtype() && Elem != DType::UInt8 && S->numBytes() != 0)
    return fail("tensor of type " + dtypeName(T.dtype()) +
                " views a storage of " + dtypeName(Elem) + " elements");
  if (!dtypeElements(Elem, S->numBytes()))
    return fail("storage of " + Twine(S->numBytes()) +
                " bytes is not a whole number of " + dtypeName(Elem) +
                " elements");
  // A computed storage is its size by construction; bytes() would produce
  // all of it in memory.
  if (S->hasData() && S->kind() != Storage::DataKind::Computed &&
      S->bytes().size() != S->numBytes())
    return fail("storage holds " + Twine(S->bytes().size()) +
                " bytes of data but claims " + Twine(S->numBytes()));
  if (*Need > S->numBytes())
    return fail("tensor extent " + Twine(*Need) +
                " bytes exceeds its storage of " + Twine(S->numBytes()) +
                " bytes");
  if (Error E = verifyChild("<hooks>", T.BackwardHooks))
    return E;
  if (Error E = verifyChild("<metadata>", T.Metadata))
    return E;
  if (Error E = verifyChild("<param_state>", T.ParamState))
    return E;
  if (Error E = verifyChild("<subclass>", T.SubclassType))
    return E;
  return verifyChild("<subclass_state>", T.SubclassState);
}

Error Verifier::verifyValue(const Value *V) {
  if (!V)
    return fail("missing value");
  if (auto *S = dyn_cast<SequenceValue>(V)) {
    for (size_t I = 0; I < S->elements().size(); ++I) {
      if (!S->elements()[I])
        return fail("element " + Twine(I) + " is missing");
      if (Error E = verifyChild(Twine(I), S->elements()[I]))
        return E;
    }
    return Error::success();
  }
  if (auto *D = dyn_cast<DictValue>(V)) {
    if (Error E = verifyEntries(D->entries()))
      return E;
    return verifyChild("<attrs>", D->state());
  }
  if (auto *T = dyn_cast<TensorValue>(V))
    return verifyTensor(*T);
  if (auto *S = dyn_cast<StringValue>(V)) {
    if (S->kind() == Value::Kind::Str && !isPythonText(S->value()))
      return fail("str " + quoteForMessage(S->value()) +
                  " is not valid UTF-8 (raw bytes are a bytes value)");
    return Error::success();
  }
  if (auto *SV = dyn_cast<StorageValue>(V)) {
    if (!SV->storage())
      return fail("storage value without a storage");
    if (!SV->isUntyped() &&
        !dtypeElements(SV->typedAs(), SV->storage()->numBytes()))
      return fail("storage of " + Twine(SV->storage()->numBytes()) +
                  " bytes is not a whole number of " +
                  dtypeName(SV->typedAs()) + " elements");
    return Error::success();
  }
  if (auto *O = dyn_cast<OpaqueValue>(V)) {
    // An exporter writes these names as GLOBAL text: anything find_class
    // could not resolve (a newline above all) must never get that far.
    if (O->Callee) {
      if (!O->module().empty() || !O->name().empty() ||
          O->construct() == OpaqueValue::Construct::Global)
        return fail("opaque value with a callee value has a global name too, "
                    "or is not a call");
    } else if (!isPythonDottedName(O->module()) ||
               !isPythonDottedName(O->name())) {
      return fail("opaque global " + quoteForMessage(O->module()) + " " +
                  quoteForMessage(O->name()) +
                  " is not a dotted Python identifier");
    }
    if (Error E = verifyChild("<callee>", O->Callee))
      return E;
    if (Error E = verifyChild("<args>", O->Args))
      return E;
    if (Error E = verifyChild("<kwargs>", O->Kwargs))
      return E;
    if (Error E = verifyChild("<state>", O->State))
      return E;
    for (size_t I = 0; I < O->ListItems.size(); ++I) {
      if (!O->ListItems[I])
        return fail("item " + Twine(I) + " is missing");
      if (Error E = verifyChild("<items>/" + Twine(I), O->ListItems[I]))
        return E;
    }
    return verifyEntries(O->DictItems);
  }
  return Error::success();
}

Error wopt::verifyCheckpoint(const Checkpoint &C) {
  if (!C.root())
    return createStringError(inconvertibleErrorCode(),
                             "checkpoint has no root value");
  // What the torch export writes as the byteorder record, which its
  // reader accepts only spelled so.
  if (C.ByteOrder != "little" && C.ByteOrder != "big")
    return createStringError(inconvertibleErrorCode(),
                             "byte order '" + C.ByteOrder +
                                 "' is neither 'little' nor 'big'");
  // Every walk after this one recurses; this one too.
  if (graphDepth(*C.root(), MaxGraphDepth + 1) > MaxGraphDepth)
    return createStringError(inconvertibleErrorCode(),
                             "<root>: values nested deeper than " +
                                 Twine(MaxGraphDepth) + " (limit)");
  Verifier V;
  return V.verifyRoot(*C.root());
}
