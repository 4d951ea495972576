#!/usr/bin/python3
"""Compares two checkpoints as torch loads them: the whole object graph.

Usage: /usr/bin/python3 compare_loaded.py A B [--no-identity] [--sample]
       /usr/bin/python3 compare_loaded.py --selftest

Both files are loaded with torch.load(weights_only=False) onto the CPU
(map_location is a function that records each storage's location tag), with
two fixes later torch has: a zip whose `byteorder` record says `big` has its
storages byte-swapped after loading, as torch >= 2.1 does (1.13 ignores the
record), and a tensor subclass pickled with state None (Python 3.11, no
attributes) loads (1.13 fails on None.items()). Then the two graphs are
walked together and must match in:

- structure: exact types, dict key order, list/tuple lengths, set contents,
  the state of every other object (its __getstate__, or its __reduce_ex__
  arguments and state when the class defines its own reduction), attributes
  of dicts and lists that have a __dict__ (an OrderedDict's _metadata),
  slots;
- values: floats and complex numbers bit for bit (NaN payloads too), ints,
  strings, bytes; globals (classes, functions, dtypes) must be the same
  object; datetimes, devices and the like compare equal and print the same;
- tensors: exact type (subclass, Parameter), dtype, layout, device, shape,
  strides, storage offset, requires_grad, conj/neg bits, quantization
  parameters, sparse indices and values, Python attributes, and every byte
  of the storage behind them (of every storage: TypedStorage and
  UntypedStorage values too);
- storages: a bijection between the storages of the two sides (sharing),
  and the same location tag ('cpu', 'cuda:0', ...) for each pair;
- object identity: a bijection between the objects of the two sides (every
  container, tensor, storage and object; not ints, strings and other atoms,
  which Python interns as it likes), so `x is y` on one side is `x' is y'`
  on the other. A pair already compared is not descended again, which also
  ends cycles.

Prints "equal: ..." or "DIFFERENT: <path>: <what>" (the first difference,
with the path from the root) and exits 0 or 1; exit 2 if a file does not
load. As a library: load(path), compare(a, b), Comparer(...).compare(a, b).
--selftest compares pairs of in-memory graphs that differ in one respect.
"""
import argparse
import collections
import contextlib
import datetime
import decimal
import enum
import fractions
import os
import struct
import sys
import threading
import types
import uuid
import warnings
import zipfile

import torch

# Classes used by the kinds' pickles (make_serialization_kinds.*) live beside us.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class Mismatch(Exception):
    pass


def fail(path, msg):
    raise Mismatch(f"{path}: {msg}")


# --- loading ------------------------------------------------------------------

_rebuild_from_type_v2 = torch._tensor._rebuild_from_type_v2


def _rebuild_from_type_v2_py311(func, new_type, args, state):
    """torch 1.13 predates Python 3.11, whose object.__getstate__() is None for
    an empty __dict__: a tensor subclass without attributes pickles with state
    None, which 1.13 cannot load (None.items()). Later torch skips an empty
    state; so do we."""
    if state is None and getattr(new_type, "__setstate__", None) is torch.Tensor.__setstate__:
        state = {}
    return _rebuild_from_type_v2(func, new_type, args, state)


@contextlib.contextmanager
def later_torch_fixes():
    """Only while loading: torch.save would pickle the replacement by name."""
    torch._tensor._rebuild_from_type_v2 = _rebuild_from_type_v2_py311
    try:
        yield
    finally:
        torch._tensor._rebuild_from_type_v2 = _rebuild_from_type_v2

def zip_byteorder(path):
    """The `byteorder` record of a torch zip, or None (legacy files, no record)."""
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            return None
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        prefix = names[0].split("/", 1)[0] if names else ""
        name = prefix + "/byteorder"
        if name not in names:
            return None
        info = z.getinfo(name)
    # Read it at the local header's offset: the CRC may be 0 ("not computed").
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        nl, el = struct.unpack("<HH", f.read(4))
        f.seek(info.header_offset + 30 + nl + el)
        return f.read(info.file_size).decode("ascii", "replace").strip()


def graph_nodes(obj):
    """Every object reachable through containers, attributes and tensors."""
    seen, todo, out = set(), [obj], []
    while todo:
        x = todo.pop()
        if id(x) in seen or isinstance(x, ATOMS):
            continue
        seen.add(id(x))
        out.append(x)
        if isinstance(x, dict):
            todo.extend(x.values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            todo.extend(x)
        if isinstance(x, torch.Tensor) and x.layout == torch.sparse_coo:
            todo.extend([x._indices(), x._values()])
        d = getattr(x, "__dict__", None)
        if isinstance(d, dict) and not isinstance(x, type):
            todo.extend(d.values())
    return out


def swap_storages(obj):
    """Byte-swaps, in place, every storage reachable from obj (once each)."""
    done = set()
    for x in graph_nodes(obj):
        if isinstance(x, torch.Tensor) and x.layout == torch.strided and x.device.type == "cpu":
            st, es = x.storage(), x.element_size()
            if x.is_complex():
                es //= 2
        elif isinstance(x, torch.storage.TypedStorage):
            st, es = x, x.element_size()
            if x.dtype.is_complex:
                es //= 2
        else:
            continue
        u = untyped(st)
        if u._cdata in done or es == 1:
            continue
        done.add(u._cdata)
        raw = storage_u8(u)
        if raw.numel() % es:
            raise ValueError("storage size is not a multiple of its element size")
        raw.copy_(raw.view(-1, es).flip(1).reshape(-1))


def load(path, weights_only=False, locations=None):
    """torch.load to CPU; fills locations (storage pointer -> location tag)."""
    def where(storage, location):
        if locations is not None:
            locations[storage._cdata] = location
        return storage

    with warnings.catch_warnings(), later_torch_fixes():
        warnings.simplefilter("ignore")
        try:
            obj = torch.load(path, map_location="cpu" if weights_only else where,
                             weights_only=weights_only)
        except ValueError as e:  # a TorchScript archive: torch.jit.load wants a device
            if "map_location" not in str(e):
                raise
            obj = torch.load(path, map_location="cpu")
    if zip_byteorder(path) == "big":
        swap_storages(obj)
    return obj


# --- the comparison -----------------------------------------------------------

ATOMS = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis),
         type(NotImplemented))

# Compared with `is`: both sides are loaded in this process, so a global is
# the same object on both.
SINGLETONS = (type, types.FunctionType, types.BuiltinFunctionType,
              types.ModuleType, types.MethodDescriptorType,
              types.WrapperDescriptorType, types.MethodWrapperType,
              torch.dtype, torch.layout, torch.memory_format, torch.qscheme,
              enum.Enum)

# Immutable values compared by equality and repr.
VALUES = (datetime.date, datetime.time, datetime.timedelta, datetime.tzinfo,
          torch.device, decimal.Decimal, fractions.Fraction, uuid.UUID,
          range, slice)


def untyped(st):
    """The UntypedStorage behind a TypedStorage (or itself)."""
    return st._storage if isinstance(st, torch.storage.TypedStorage) else st


def storage_u8(u):
    """An untyped storage as a flat uint8 tensor (no copy)."""
    return torch.tensor([], dtype=torch.uint8).set_(u)


def float_bits(x):
    return struct.pack("<d", x)


def has_own_reduce(cls):
    return (cls.__reduce_ex__ is not object.__reduce_ex__
            or cls.__reduce__ is not object.__reduce__)


def slot_names(cls):
    for k in cls.__mro__:
        slots = k.__dict__.get("__slots__", ())
        for s in [slots] if isinstance(slots, str) else slots:
            if s not in ("__dict__", "__weakref__"):
                yield s


class Comparer:
    """Walks two object graphs together; raises Mismatch at the first difference.

    identity=False keeps only cycle protection (a pair of objects compared
    once), for checks that do not ask for object identity."""

    def __init__(self, identity=True, sample=False, locations=None):
        self.identity = identity
        self.sample = sample
        self.locations = locations  # (left, right) maps filled by load()
        self.a2b = {}   # id(a) -> (b, path where first met)
        self.b2a = {}
        self.pairs = set()
        self.keep = []  # objects made during the walk (reduce args) stay alive
        self.sa2b = {}  # storage pointer -> storage pointer
        self.sb2a = {}
        self.tensors = 0
        self.storages = 0
        self.objects = 0

    def compare(self, a, b, path="root"):
        self.value(path, a, b)

    # -- identity --

    def seen(self, path, a, b):
        """Pairs a with b; True if the pair was already compared."""
        key = (id(a), id(b))
        if key in self.pairs:
            return True
        if self.identity:
            pa, pb = self.a2b.get(id(a)), self.b2a.get(id(b))
            if pa is not None:
                fail(path, f"object identity differs: on the left this is the object "
                           f"met at {pa[1]}, on the right it is another object")
            if pb is not None:
                fail(path, f"object identity differs: on the right this is the object "
                           f"met at {pb[1]}, on the left it is another object")
            self.a2b[id(a)] = (b, path)
            self.b2a[id(b)] = (a, path)
        self.pairs.add(key)
        self.keep.append((a, b))
        self.objects += 1
        return False

    # -- dispatch --

    def value(self, path, a, b):
        ta, tb = type(a), type(b)
        if ta is not tb:
            fail(path, f"type {ta.__module__}.{ta.__qualname__} vs {tb.__module__}.{tb.__qualname__}")
        if isinstance(a, enum.Enum) or isinstance(a, SINGLETONS):
            if a is not b:
                fail(path, f"{a!r} vs {b!r} (not the same global)")
            return
        if isinstance(a, ATOMS):
            return self.atom(path, a, b)
        if isinstance(a, VALUES):
            if a != b or repr(a) != repr(b):
                fail(path, f"{a!r} vs {b!r}")
            return
        if isinstance(a, torch.Tensor):
            self.tensors += 1
        if self.seen(path, a, b):
            return
        if isinstance(a, torch.Tensor):
            return self.tensor(path, a, b)
        if isinstance(a, (torch.storage.TypedStorage, torch.UntypedStorage)):
            return self.storage_value(path, a, b)
        if isinstance(a, dict):
            return self.dict(path, a, b)
        if isinstance(a, (list, tuple)):
            return self.sequence(path, a, b)
        if isinstance(a, (set, frozenset)):
            return self.set(path, a, b)
        if isinstance(a, bytearray):
            if bytes(a) != bytes(b):
                fail(path, f"{a!r} vs {b!r}")
            return self.extra_state(path, a, b)
        if isinstance(a, types.MethodType):
            if a.__func__ is not b.__func__:
                fail(path, f"bound method {a.__func__!r} vs {b.__func__!r}")
            return self.value(path + ".__self__", a.__self__, b.__self__)
        if ta.__module__ == "numpy" or ta.__module__.startswith("numpy."):
            return self.numpy(path, a, b)
        if isinstance(a, torch.jit.ScriptModule):  # no pickle state: code and weights
            if a.code != b.code:
                fail(path, "TorchScript code differs")
            return self.value(path + ".state_dict()", a.state_dict(), b.state_dict())
        return self.object(path, a, b)

    def atom(self, path, a, b):
        if isinstance(a, float):
            if float_bits(a) != float_bits(b):
                fail(path, f"{a!r} vs {b!r} (bits {float_bits(a).hex()} vs {float_bits(b).hex()})")
        elif isinstance(a, complex):
            if (float_bits(a.real), float_bits(a.imag)) != (float_bits(b.real), float_bits(b.imag)):
                fail(path, f"{a!r} vs {b!r}")
        elif a != b:
            fail(path, f"{short(a)} vs {short(b)}")

    # -- containers --

    def dict(self, path, a, b):
        ka, kb = list(a.keys()), list(b.keys())
        if len(ka) != len(kb):
            fail(path, f"{len(ka)} keys vs {len(kb)}: {short(ka)} vs {short(kb)}")
        for i, (x, y) in enumerate(zip(ka, kb)):
            if isinstance(x, ATOMS + (tuple, frozenset)):
                if type(x) is not type(y) or not same_key(x, y):
                    fail(path, f"key {i}: {short(x)} vs {short(y)}")
            else:  # an object as a key (an optimizer's state is keyed by Parameters)
                self.value(f"{path}.keys()[{i}]", x, y)
        for x, y in zip(ka, kb):  # b[y], not b[x]: a defaultdict would grow
            self.value(f"{path}[{key_text(x)}]", a[x], b[y])
        if isinstance(a, collections.defaultdict):
            self.value(path + ".default_factory", a.default_factory, b.default_factory)
        self.extra_state(path, a, b)

    def sequence(self, path, a, b):
        if len(a) != len(b):
            fail(path, f"length {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            self.value(f"{path}[{i}]", x, y)
        self.extra_state(path, a, b)

    def set(self, path, a, b):
        if len(a) != len(b):
            fail(path, f"{len(a)} elements vs {len(b)}")
        if all(isinstance(x, ATOMS + (tuple, frozenset)) for x in a):
            if a != b:
                fail(path, f"{short(sorted(map(repr, a)))} vs {short(sorted(map(repr, b)))}")
        elif len(a) == 1:
            self.value(path + "{0}", next(iter(a)), next(iter(b)))
        else:
            self.match_elements(path, list(a), list(b))
        self.extra_state(path, a, b)

    def match_elements(self, path, xs, ys):
        """Pairs set elements that are objects (no order, no equality)."""
        left = list(ys)
        for i, x in enumerate(xs):
            for j, y in enumerate(left):
                trial = self.fork()
                try:
                    trial.value(f"{path}{{{i}}}", x, y)
                except Mismatch:
                    continue
                self.adopt(trial)
                del left[j]
                break
            else:
                fail(path, f"element {i} ({short(x)}) has no counterpart")

    def fork(self):
        c = Comparer(self.identity, self.sample, self.locations)
        for name in ("a2b", "b2a", "sa2b", "sb2a"):
            setattr(c, name, dict(getattr(self, name)))
        c.pairs = set(self.pairs)
        return c

    def adopt(self, c):
        for name in ("a2b", "b2a", "pairs", "sa2b", "sb2a"):
            setattr(self, name, getattr(c, name))
        self.keep.extend(c.keep)
        self.tensors += c.tensors
        self.storages += c.storages
        self.objects += c.objects

    def extra_state(self, path, a, b):
        """Attributes of a container subclass (OrderedDict._metadata, ...)."""
        da, db = getattr(a, "__dict__", None), getattr(b, "__dict__", None)
        if da is None and db is None:
            return
        self.value(path + ".__dict__", da if da is not None else {}, db if db is not None else {})

    # -- objects --

    def object(self, path, a, b):
        cls = type(a)
        if has_own_reduce(cls) and not isinstance(a, torch.nn.Module):
            ra, rb = self.reduction(path, a), self.reduction(path, b)
            return self.value(path + "<reduce>", ra, rb)
        sa, sb = self.state(path, a), self.state(path, b)
        self.value(path + "<state>", sa, sb)

    def state(self, path, x):
        try:
            st = x.__getstate__()
        except Exception as e:  # an object that cannot be pickled
            fail(path, f"cannot get the state of a {type(x).__qualname__}: {e}")
        self.keep.append(st)
        return st

    def reduction(self, path, x):
        try:
            r = x.__reduce_ex__(4)
        except Exception as e:
            fail(path, f"cannot reduce a {type(x).__qualname__}: {e}")
        if isinstance(r, str):  # a global
            return r
        r = tuple(list(p) if isinstance(p, types.GeneratorType) or hasattr(p, "__next__") else p
                  for p in r)
        self.keep.append(r)
        return r

    def numpy(self, path, a, b):
        import numpy
        if isinstance(a, numpy.ndarray):
            if a.dtype != b.dtype or a.shape != b.shape or a.strides != b.strides:
                fail(path, f"array {a.dtype}{a.shape}/{a.strides} vs {b.dtype}{b.shape}/{b.strides}")
            if a.dtype.hasobject:
                return self.value(path + ".tolist()", a.tolist(), b.tolist())
            if a.tobytes() != b.tobytes():
                fail(path, "array bytes differ")
        elif isinstance(a, numpy.generic):
            if a.dtype != b.dtype or a.tobytes() != b.tobytes():
                fail(path, f"{a!r} vs {b!r}")
        elif isinstance(a, numpy.dtype):
            if a != b:
                fail(path, f"{a!r} vs {b!r}")
        else:
            self.object(path, a, b)

    # -- tensors and storages --

    def tensor(self, path, a, b):
        for attr in ("dtype", "layout", "device", "requires_grad"):
            x, y = getattr(a, attr), getattr(b, attr)
            if x != y:
                fail(path, f"{attr} {x} vs {y}")
        if tuple(a.shape) != tuple(b.shape):
            fail(path, f"shape {tuple(a.shape)} vs {tuple(b.shape)}")
        for attr in ("is_conj", "is_neg", "is_quantized"):
            x, y = getattr(a, attr), getattr(b, attr)
            x, y = (x(), y()) if callable(x) else (x, y)
            if x != y:
                fail(path, f"{attr} {x} vs {y}")
        if a.layout == torch.strided:
            self.strided(path, a, b)
        elif a.layout == torch.sparse_coo:
            if a.is_coalesced() != b.is_coalesced():
                fail(path, "is_coalesced differs")
            self.data(path + "._indices()", a._indices(), b._indices())
            self.data(path + "._values()", a._values(), b._values())
        elif a.layout == torch.sparse_csr:
            self.data(path + ".crow_indices()", a.crow_indices(), b.crow_indices())
            self.data(path + ".col_indices()", a.col_indices(), b.col_indices())
            self.data(path + ".values()", a.values(), b.values())
        else:
            fail(path, f"layout {a.layout} is not compared")
        self.value(path + ".grad", a.grad, b.grad)
        self.value(path + ".__dict__", a.__dict__, b.__dict__)
        for s in slot_names(type(a)):
            self.value(f"{path}.{s}", getattr(a, s, None), getattr(b, s, None))

    def strided(self, path, a, b):
        if a.stride() != b.stride():
            fail(path, f"stride {a.stride()} vs {b.stride()}")
        if a.storage_offset() != b.storage_offset():
            fail(path, f"storage offset {a.storage_offset()} vs {b.storage_offset()}")
        if a.is_quantized:
            q = a.qscheme()
            if q != b.qscheme():
                fail(path, f"qscheme {q} vs {b.qscheme()}")
            if q in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                pa, pb = (a.q_scale(), a.q_zero_point()), (b.q_scale(), b.q_zero_point())
                if pa != pb:
                    fail(path, f"scale/zero point {pa} vs {pb}")
            else:
                if a.q_per_channel_axis() != b.q_per_channel_axis():
                    fail(path, "quantization axis differs")
                self.data(path + ".q_per_channel_scales()", a.q_per_channel_scales(),
                          b.q_per_channel_scales())
                self.data(path + ".q_per_channel_zero_points()", a.q_per_channel_zero_points(),
                          b.q_per_channel_zero_points())
        if a.device.type == "meta":
            return
        self.shared(path, untyped(a.storage()), untyped(b.storage()))

    def data(self, path, a, b):
        """A derived tensor (sparse parts, quantizer parameters): values only."""
        if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
            fail(path, f"{a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}")
        x = a.detach().clone(memory_format=torch.contiguous_format)
        y = b.detach().clone(memory_format=torch.contiguous_format)
        if not torch.equal(storage_u8(untyped(x.storage())), storage_u8(untyped(y.storage()))):
            fail(path, "values differ")

    def storage_value(self, path, a, b):
        self.storages += 1
        if isinstance(a, torch.storage.TypedStorage):
            if a.dtype != b.dtype:
                fail(path, f"storage dtype {a.dtype} vs {b.dtype}")
            if a.size() != b.size():
                fail(path, f"storage size {a.size()} vs {b.size()}")
        if a.device != b.device:
            fail(path, f"storage device {a.device} vs {b.device}")
        if a.device.type != "meta":
            self.shared(path, untyped(a), untyped(b))

    def shared(self, path, ua, ub):
        pa, pb = ua._cdata, ub._cdata
        qa, qb = self.sa2b.get(pa), self.sb2a.get(pb)
        if qa is None and qb is None:
            self.sa2b[pa], self.sb2a[pb] = pb, pa
            if self.locations:
                la, lb = self.locations[0].get(pa), self.locations[1].get(pb)
                if la != lb:
                    fail(path, f"storage location {la!r} vs {lb!r}")
            self.keep.append((ua, ub))
            self.same_bytes(path, storage_u8(ua), storage_u8(ub))
        elif qa != pb or qb != pa:
            fail(path, "storage sharing differs")

    def same_bytes(self, path, x, y):
        if x.numel() != y.numel():
            fail(path, f"storage sizes differ: {x.numel()} vs {y.numel()} bytes")
        n = x.numel()
        if not self.sample or n <= (64 << 20):
            if not torch.equal(x, y):
                i = int((x != y).nonzero()[0])
                fail(path, f"storage bytes differ (first at byte {i})")
            return
        w = 1 << 20
        for s in sorted({0, max(0, n - w)} | {(n // 17) * k for k in range(1, 17)}):
            if not torch.equal(x[s:s + w], y[s:s + w]):
                fail(path, f"storage bytes differ near byte {s}")


def same_key(x, y):
    if isinstance(x, float):
        return float_bits(x) == float_bits(y)
    return x == y


def key_text(k):
    return repr(k) if isinstance(k, ATOMS + (tuple, frozenset)) else f"<{type(k).__name__}>"


def short(x, n=120):
    s = repr(x)
    return s if len(s) <= n else s[:n] + "..."


def compare(a, b, identity=True, sample=False, locations=None):
    """None if a and b match, else the first difference as 'path: what'."""
    c = Comparer(identity, sample, locations)
    try:
        c.compare(a, b)
    except Mismatch as e:
        return str(e)
    return None


def run_with_big_stack(fn, *args):
    """Deep graphs recurse deeply: run fn in a thread with a large stack."""
    sys.setrecursionlimit(200000)
    threading.stack_size(512 << 20)
    out = {}

    def body():
        try:
            out["result"] = fn(*args)
        except BaseException as e:  # re-raised in the caller
            out["error"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("result")


# --- self test -----------------------------------------------------------------

def selftest_cases():
    """(name, a, b[, locations]): pairs of graphs that differ in one respect
    (or not at all), to show the comparer sees each difference."""
    t = torch.arange(4.0)
    cyc_a = [t.clone()]
    cyc_a.append(cyc_a)
    cyc_b = [t.clone()]
    cyc_b.append(cyc_b)
    cut = [t.clone(), []]
    shared = t.clone()
    base = torch.arange(6.0)
    od_a = collections.OrderedDict(w=t.clone())
    od_a._metadata = {"": {"version": 1}}
    od_b = collections.OrderedDict(w=t.clone())
    od_b._metadata = {"": {"version": 2}}
    pa, pb = torch.nn.Parameter(t.clone()), torch.nn.Parameter(t.clone())
    la, lb = t.clone(), t.clone()
    locs = ({la.storage()._storage._cdata: "cuda:0"}, {lb.storage()._storage._cdata: "cpu"})
    nan2 = struct.unpack("<d", struct.pack("<Q", 0x7ff8000000000001))[0]
    return [
        ("equal-cycle", cyc_a, cyc_b),
        ("cycle-cut", cyc_a, cut),
        ("identity-lost", {"a": shared, "b": shared}, {"a": t.clone(), "b": t.clone()}),
        ("identity-added", {"a": t.clone(), "b": t.clone()}, {"a": shared, "b": shared}),
        ("sharing-lost", [base[:3], base[3:]], [base.clone()[:3], base.clone()[3:]]),
        ("sharing-added", [base.clone()[:3], base.clone()[3:]], [base[:3], base[3:]]),
        ("storage-byte", [t.clone()], [torch.tensor([0.0, 1.0, 2.0, 3.5])]),
        ("storage-tail", [base[:2]], [torch.arange(6.0).index_fill_(0, torch.tensor([5]), 9.0)[:2]]),
        ("stride", [base.view(2, 3).t()], [base.view(3, 2).clone()]),
        ("offset", [base[1:3]], [torch.arange(6.0)[2:4] - 1]),
        ("storage-vs-tensor", [t.storage()], [t.clone()]),
        ("typed-storage-dtype", [torch.storage.TypedStorage(wrap_storage=t.storage()._storage, dtype=torch.int32)],
         [t.storage()]),
        ("requires-grad", [pa], [torch.nn.Parameter(t.clone(), requires_grad=False)]),
        ("parameter-vs-tensor", [pb], [t.clone()]),
        ("negzero", [0.0], [-0.0]),
        ("nan-payload", [float("nan")], [nan2]),
        ("nan-equal", [float("nan")], [float("nan")]),
        ("key-order", {"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ("odict-metadata", od_a, od_b),
        ("object-state", Probe(x=1), Probe(x=2)),
        ("tensor-attribute", [with_attr(t.clone(), "foo", "bar")], [with_attr(t.clone(), "foo", "baz")]),
        ("location", [la], [lb], locs),
        ("set-of-objects", {Probe(x=1), Probe(x=2)}, {Probe(x=2), Probe(x=1)}),
        ("set-of-objects-differ", {Probe(x=1), Probe(x=2)}, {Probe(x=2), Probe(x=3)}),
        ("tuple-vs-list", [(1, 2)], [[1, 2]]),
        ("bound-method-self", [Probe(x=1).method], [Probe(x=2).method]),
    ]


class Probe:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def method(self):
        return self


def with_attr(t, k, v):
    setattr(t, k, v)
    return t


def selftest():
    for case in selftest_cases():
        name, a, b = case[:3]
        diff = compare(a, b, locations=case[3] if len(case) > 3 else None)
        print(f"{name}: " + (f"DIFFERENT {diff}" if diff else "equal"))
    return 0


def main(argv):
    if argv[1:] == ["--selftest"]:
        return selftest()
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--no-identity", action="store_true")
    p.add_argument("--sample", action="store_true")
    args = p.parse_args(argv[1:])
    locations = ({}, {})
    try:
        a, b = load(args.a, locations=locations[0]), load(args.b, locations=locations[1])
    except Exception as e:
        print(f"cannot load: {type(e).__name__}: {e}")
        return 2
    c = Comparer(not args.no_identity, args.sample, locations)
    try:
        c.compare(a, b)
    except Mismatch as e:
        print(f"DIFFERENT: {e}")
        return 1
    print(f"equal: {c.tensors} tensors, {len(c.sa2b)} storages, {c.objects} objects")
    return 0


if __name__ == "__main__":
    sys.exit(run_with_big_stack(main, sys.argv))
