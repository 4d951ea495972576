//===- Value.h - The object graph of a checkpoint ---------------*- C++ -*-===//
//
// A faithful graph of what the pickle held. A node is one Python object:
// an object the pickle fetched again from its memo is the same node, so
// `a is b` in the file is `a is b` here, and a reference back to an
// ancestor (L.append(L), d['d'] = d, a.me = a) is an edge like any other.
// Every walk over values visits each node once (forEachNode), so sharing and
// cycles cost nothing extra, and a pickle's graph is never bigger than the
// pickle.
//
// Nodes are reference counted; the ValueGraph of a checkpoint owns the
// nodes its importer made and breaks their edges when it dies, so cycles are
// freed too.
//
// Use LLVM casting: llvm::dyn_cast<DictValue>(V.get()).
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_IR_VALUE_H
#define WOPT_IR_VALUE_H

#include "wopt/IR/DType.h"
#include "wopt/IR/Storage.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Casting.h"
#include "llvm/Support/raw_ostream.h"
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wopt {

class Value;
using ValuePtr = std::shared_ptr<Value>;

/// Where a tensor came from and what happened to it since.
struct Provenance {
  /// One step of history: a pass renamed the tensor (From != To) or rewrote
  /// its data (Note says how).
  struct Step {
    std::string Pass;
    std::string From;
    std::string To;
    std::string Note;
  };
  std::string File;                 ///< input file ("" when built in memory)
  std::vector<std::string> KeyPath; ///< keys from the file's root to the tensor
  std::string StorageKey;           ///< record key in the file ("0", "1", ...)
  std::optional<uint64_t> ByteOffset; ///< offset of the first element in File
  std::vector<Step> History;

  bool empty() const { return File.empty() && KeyPath.empty(); }
  /// The key path as the file had it:
  /// "teacher/backbone.blocks.0.0.norm1.weight".
  std::string originalPath() const;
  /// The name the tensor had in the file (last key), "" when unknown.
  llvm::StringRef originalName() const;
  void addRename(llvm::StringRef Pass, llvm::StringRef From,
                 llvm::StringRef To);
  void addRewrite(llvm::StringRef Pass, llvm::StringRef Note);
  /// "teacher/backbone.x (file.pth, storage 3, byte 4096); renamed by
  /// canonicalize-prefix from backbone.x"
  void print(llvm::raw_ostream &OS) const;
};

class Value {
public:
  enum class Kind {
    None,
    Bool,
    Int,    ///< fits in int64
    BigInt, ///< does not: two's complement little-endian bytes (pickle LONG)
    Float,
    Str,   ///< UTF-8 text
    Bytes, ///< raw bytes
    List,
    Tuple,
    Set,
    FrozenSet,
    Dict,
    Tensor,
    Opaque,
    Storage, ///< a torch storage object (TypedStorage/UntypedStorage)
  };
  explicit Value(Kind K) : TheKind(K) {}
  virtual ~Value();
  Kind kind() const { return TheKind; }
  /// A new node with the same contents: its children are the same nodes
  /// (tensors keep their storage). What a pass uses to change one reference
  /// of a shared object without touching the others.
  virtual ValuePtr copyNode() const = 0;
  /// Number of distinct nodes reachable from this one, itself included.
  uint64_t countNodes() const;
  /// Whether Python identity of such an object is observable and kept:
  /// containers, tensors, storages and objects are; scalars and strings are
  /// immutable values, compared by value.
  bool hasIdentity() const { return TheKind >= Kind::List; }

private:
  const Kind TheKind;
};

class NoneValue : public Value {
public:
  NoneValue() : Value(Kind::None) {}
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) { return V->kind() == Kind::None; }
};

class BoolValue : public Value {
public:
  explicit BoolValue(bool B) : Value(Kind::Bool), B(B) {}
  bool value() const { return B; }
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) { return V->kind() == Kind::Bool; }

private:
  bool B;
};

class IntValue : public Value {
public:
  explicit IntValue(int64_t I) : Value(Kind::Int), I(I) {}
  int64_t value() const { return I; }
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) { return V->kind() == Kind::Int; }

private:
  int64_t I;
};

class BigIntValue : public Value {
public:
  /// Two's complement, little-endian, as pickle's LONG1/LONG4 carry it.
  explicit BigIntValue(std::string Bytes)
      : Value(Kind::BigInt), Bytes(std::move(Bytes)) {}
  llvm::StringRef bytes() const { return Bytes; }
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) { return V->kind() == Kind::BigInt; }

private:
  std::string Bytes;
};

class FloatValue : public Value {
public:
  explicit FloatValue(double D) : Value(Kind::Float), D(D) {}
  double value() const { return D; }
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) { return V->kind() == Kind::Float; }

private:
  double D;
};

/// Str (UTF-8 text) or Bytes.
class StringValue : public Value {
public:
  StringValue(Kind K, std::string S) : Value(K), S(std::move(S)) {
    assert(K == Kind::Str || K == Kind::Bytes);
  }
  const std::string &value() const { return S; }
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) {
    return V->kind() == Kind::Str || V->kind() == Kind::Bytes;
  }

private:
  std::string S;
};

/// List, Tuple, Set or FrozenSet: an ordered sequence of elements.
class SequenceValue : public Value {
public:
  explicit SequenceValue(Kind K, std::vector<ValuePtr> Elts = {})
      : Value(K), Elements(std::move(Elts)) {
    assert(K == Kind::List || K == Kind::Tuple || K == Kind::Set ||
           K == Kind::FrozenSet);
  }
  std::vector<ValuePtr> &elements() { return Elements; }
  const std::vector<ValuePtr> &elements() const { return Elements; }
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) {
    return V->kind() == Kind::List || V->kind() == Kind::Tuple ||
           V->kind() == Kind::Set || V->kind() == Kind::FrozenSet;
  }

private:
  std::vector<ValuePtr> Elements;
};

struct DictEntry {
  ValuePtr Key; ///< usually Str; Int in optimizer state; anything hashable
  ValuePtr Val;
  /// The key as text when it is a Str.
  std::optional<llvm::StringRef> keyString() const;
};

/// dict or collections.OrderedDict, in insertion order.
class DictValue : public Value {
public:
  explicit DictValue(bool Ordered = false)
      : Value(Kind::Dict), Ordered(Ordered) {}
  /// collections.OrderedDict (what state_dict() returns) rather than dict.
  bool isOrdered() const { return Ordered; }
  void setOrdered(bool O) { Ordered = O; }
  std::vector<DictEntry> &entries() { return Entries; }
  const std::vector<DictEntry> &entries() const { return Entries; }
  size_t size() const { return Entries.size(); }
  /// The attribute state an OrderedDict got from BUILD, e.g.
  /// {'_metadata': OrderedDict(...)} of a state_dict(); null when none.
  const ValuePtr &state() const { return State; }
  void setState(ValuePtr S) { State = std::move(S); }
  ValuePtr &stateSlot() { return State; }
  /// First entry whose key is the string Key, or null.
  DictEntry *find(llvm::StringRef Key);
  const DictEntry *find(llvm::StringRef Key) const;
  Value *lookup(llvm::StringRef Key) const;
  /// Appends (Key, V); replaces the value if the key exists.
  void set(llvm::StringRef Key, ValuePtr V);
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) { return V->kind() == Kind::Dict; }

private:
  bool Ordered;
  std::vector<DictEntry> Entries;
  ValuePtr State;
};

class TensorValue : public Value {
public:
  TensorValue() : Value(Kind::Tensor) {}

  DType dtype() const { return Dtype; }
  void setDType(DType T) { Dtype = T; }
  llvm::ArrayRef<int64_t> shape() const { return Shape; }
  llvm::ArrayRef<int64_t> strides() const { return Strides; }
  /// Sets shape and contiguous (row-major) strides.
  void setShape(llvm::ArrayRef<int64_t> S);
  void setShapeAndStrides(llvm::ArrayRef<int64_t> S,
                          llvm::ArrayRef<int64_t> St);
  /// In elements of dtype().
  int64_t storageOffset() const { return Offset; }
  void setStorageOffset(int64_t O) { Offset = O; }
  bool requiresGrad() const { return RequiresGrad; }
  void setRequiresGrad(bool R) { RequiresGrad = R; }
  /// Saved as torch.nn.Parameter (_rebuild_parameter) rather than a Tensor.
  bool isParameter() const { return IsParameter; }
  void setParameter(bool P) { IsParameter = P; }
  const StorageRef &storage() const { return Stor; }
  void setStorage(StorageRef S) { Stor = std::move(S); }
  Provenance &provenance() { return Prov; }
  const Provenance &provenance() const { return Prov; }

  /// Kept as read so export writes them back: the backward_hooks argument
  /// (null: an empty OrderedDict), the metadata argument of
  /// _rebuild_tensor_v2 (null: absent), the state of
  /// _rebuild_parameter_with_state (null: none).
  ValuePtr BackwardHooks, Metadata, ParamState;
  /// A tensor subclass, or a tensor with Python attributes, as
  /// _rebuild_from_type_v2(func, SubclassType, args, SubclassState) saves
  /// it: the class (null: a plain torch.Tensor) and the attribute dict
  /// (null: none).
  ValuePtr SubclassType, SubclassState;

  /// How the file rebuilt it: torch's current rebuild function, or the
  /// _rebuild_tensor(storage, offset, size, stride) of old torch versions
  /// (no requires_grad, no hooks), written back the same way.
  enum class RebuildKind { V2, V1 };
  RebuildKind rebuildKind() const { return Rebuild; }
  void setRebuildKind(RebuildKind K) { Rebuild = K; }

  /// Product of the shape; nullopt on overflow or a negative dimension.
  std::optional<uint64_t> numel() const;
  bool isContiguous() const;
  /// Bytes the view needs in its storage, (offset + max index + 1) * size,
  /// 0 for an empty tensor; nullopt on overflow or negative values.
  std::optional<uint64_t> requiredStorageBytes() const;
  /// "f32[1, 77]"
  std::string typeString() const;
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) { return V->kind() == Kind::Tensor; }

private:
  DType Dtype = DType::Float32;
  llvm::SmallVector<int64_t, 4> Shape, Strides;
  int64_t Offset = 0;
  bool RequiresGrad = false;
  bool IsParameter = false;
  RebuildKind Rebuild = RebuildKind::V2;
  StorageRef Stor;
  Provenance Prov;
};

/// An object built from a global the reader does not interpret: kept
/// (module, name, arguments, state) so it can be written back; never run.
/// The callable is a global (module, name), or, when the pickle called
/// something else (a method fetched with getattr from an object), the value
/// Callee; then module() and name() are empty.
class OpaqueValue : public Value {
public:
  enum class Construct {
    Global,   ///< a bare reference to the global (a class, a dtype, ...)
    Reduce,   ///< global(*Args)
    NewObj,   ///< cls.__new__(cls, *Args)
    NewObjEx, ///< cls.__new__(cls, *Args, **Kwargs)
  };
  OpaqueValue(std::string Module, std::string Name, Construct How)
      : Value(Kind::Opaque), Module(std::move(Module)), Name(std::move(Name)),
        How(How) {}
  const std::string &module() const { return Module; }
  const std::string &name() const { return Name; }
  /// "module.name" ("<call>" when the callable is not a global)
  std::string qualifiedName() const {
    return Callee ? std::string("<call>") : Module + "." + Name;
  }
  Construct construct() const { return How; }
  void setConstruct(Construct C) { How = C; }

  ValuePtr Callee; ///< the callable when it is not a global; else null
  ValuePtr Args;   ///< tuple; null for Global
  ValuePtr Kwargs; ///< dict; NewObjEx only
  ValuePtr State;  ///< from BUILD; null when none
  /// Items appended (APPEND/APPENDS) or set (SETITEM/SETITEMS) on the object
  /// after construction, in order.
  std::vector<ValuePtr> ListItems;
  std::vector<DictEntry> DictItems;

  /// True for the globals torch.load(weights_only=True) accepts as plain
  /// values (torch.Size, torch.device, torch dtypes, ...).
  bool isWeightsOnlySafe() const;
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) { return V->kind() == Kind::Opaque; }

private:
  std::string Module, Name;
  Construct How;
};

/// A torch storage object as the file named it by persistent id, not
/// through a tensor: torch.save(storage), a storage in a list, the storage
/// argument of a rebuild function wopt does not interpret. torch loads one
/// object per storage key, so every name of a key is this one node.
class StorageValue : public Value {
public:
  /// Untyped: torch.UntypedStorage; else a TypedStorage of TypedAs.
  StorageValue(StorageRef S, DType TypedAs, bool Untyped)
      : Value(Kind::Storage), Stor(std::move(S)), TypedAs(TypedAs),
        Untyped(Untyped) {}
  const StorageRef &storage() const { return Stor; }
  void setStorage(StorageRef S) { Stor = std::move(S); }
  /// The dtype of the TypedStorage torch builds (UInt8 for an untyped one).
  DType typedAs() const { return TypedAs; }
  bool isUntyped() const { return Untyped; }
  ValuePtr copyNode() const override;
  static bool classof(const Value *V) { return V->kind() == Kind::Storage; }

private:
  StorageRef Stor;
  DType TypedAs;
  bool Untyped;
};

/// Owns the nodes an importer made, so that cycles among them are freed:
/// when it dies, the edges of every node it reaches that nothing outside
/// holds any more are cut (a cycle collector). Values a caller still holds
/// stay whole (a cycle among them is then the caller's to drop).
class ValueGraph {
public:
  ValueGraph() = default;
  ValueGraph(const ValueGraph &) = delete;
  ValueGraph &operator=(const ValueGraph &) = delete;
  ~ValueGraph();
  /// Registers a node that has (or may get) children.
  void adopt(ValuePtr V) {
    if (V && V->hasIdentity())
      Nodes.push_back(std::move(V));
  }
  /// Registers Root and every node reachable from it.
  void adoptReachable(const ValuePtr &Root);
  size_t size() const { return Nodes.size(); }

private:
  std::vector<ValuePtr> Nodes;
};

// Convenience constructors.
ValuePtr makeNone();
ValuePtr makeBool(bool B);
ValuePtr makeInt(int64_t I);
ValuePtr makeFloat(double D);
ValuePtr makeStr(llvm::StringRef S);
ValuePtr makeBytes(llvm::StringRef S);
ValuePtr makeTuple(std::vector<ValuePtr> Elts);
ValuePtr makeList(std::vector<ValuePtr> Elts);

/// Calls F on every direct child of V (elements, dict keys and values, dict
/// state, tensor attributes, an opaque object's parts), in print order.
void forEachChild(const Value &V, llvm::function_ref<void(const Value &)> F);
/// The same over the slots that hold the children (null slots included), so
/// a caller can replace or clear edges.
void forEachChildSlot(Value &V, llvm::function_ref<void(ValuePtr &)> F);

/// Calls F once for every node reachable from Root, Root first, in print
/// order (depth-first, children in forEachChild order); an edge to a node
/// already visited is not followed. Iterative: no depth limit. F returns
/// false to skip the node's children.
void forEachNode(const Value &Root, llvm::function_ref<bool(const Value &)> F);

/// How deep a value graph may be (graphDepth): every importer and the
/// verifier refuse deeper ones, so walks that recurse over values are safe.
constexpr uint64_t MaxGraphDepth = 1000;

/// Length of the longest chain of edges from Root in forEachNode's order
/// (an edge to a node already visited ends a chain), counting up to Limit:
/// what a recursive walk over the graph needs in stack frames.
uint64_t graphDepth(const Value &Root, uint64_t Limit);

/// Can V be a dict key or set element in Python? Lists, dicts and sets
/// cannot, nor a tuple or frozenset that holds one.
bool isHashable(const Value &V);

/// Python's name for the kind of V: "None", "bool", "int", "float", "str",
/// "bytes", "list", "tuple", "set", "frozenset", "dict", "OrderedDict",
/// "tensor", "object".
llvm::StringRef pythonTypeName(const Value &V);
/// The same with an article, for messages: "a dict", "an int", "None".
std::string describeKind(const Value &V);

/// Is S text as Python's pickle carries a str: UTF-8, where a lone
/// surrogate (U+D800..U+DFFF) is allowed because pickle writes str with the
/// 'surrogatepass' error handler?
bool isPythonText(llvm::StringRef S);
/// Is S a name pickle's find_class could resolve: non-empty identifiers
/// joined by single dots ("torch._utils", "Outer.Inner")? Identifiers are
/// ASCII letters, digits and '_' (not starting with a digit), plus non-ASCII
/// letters in UTF-8; no blank, control character, newline or punctuation.
bool isPythonDottedName(llvm::StringRef S);
/// The bytes BigIntValue holds (two's complement, little-endian, as few as
/// pickle's LONG1 writes) for a decimal integer; nullopt when Text is not
/// one (or has more than 10000 digits).
std::optional<std::string> longBytesFromDecimal(llvm::StringRef Text);

/// S for a one-line message: quoted, escaped, cut to about 60 characters.
std::string quoteForMessage(llvm::StringRef S);

/// "f32[1, 77]", "i64[]"
std::string formatTensorType(DType T, llvm::ArrayRef<int64_t> Shape);
/// Row-major strides for Shape.
llvm::SmallVector<int64_t, 4> contiguousStrides(llvm::ArrayRef<int64_t> Shape);

} // namespace wopt

#endif
