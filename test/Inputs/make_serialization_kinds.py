#!/usr/bin/python3
"""Writes one checkpoint per kind of object PyTorch's test_serialization.py saves.

Usage: /usr/bin/python3 make_serialization_kinds.py OUTDIR [--only GLOB...] [--exclude GLOB...]
       /usr/bin/python3 make_serialization_kinds.py --list

Writes OUTDIR/<kind>.pth for every kind and OUTDIR/kinds.json, the manifest:
for each kind its file, whether torch (this Python's, 1.13 on Debian) loads
it onto the CPU as compare_loaded.load does (torch.load(weights_only=False)
plus two fixes of later torch: the byteorder record, subclass state None),
tried right after writing; whether it also loads with weights_only=True;
the error when it does not load; "torch_1_13_loads"/"torch_1_13_error" when
plain torch 1.13 disagrees; and a note. Kinds torch refuses to *save* are
listed with "file": null and the reason.

The kinds (our own code, modelled on what PyTorch's tests save; all data
deterministic: ramps, or fixed seeds where a module initialises itself):

- dtype-*: every dtype of torch 1.13 (views, offsets, strides, 0-d, empty,
  stride-0) × zip and legacy format × every pickle protocol torch accepts;
- unalloc-*: an empty storage viewed as two dtypes (test_save_different_dtype_unallocated);
- storage-*: TypedStorage and UntypedStorage saved directly (root, lists,
  beside tensors that share them), legacy storage views;
- subclass-*, old-tensor-*, param-*: tensor subclasses with and without
  attributes, slots, __getstate__; the old tensor protocols; Parameters;
- module-*, optim-*, sched-*: whole nn.Modules (tied weights), state dicts,
  optimizers, LR schedulers (OneCycleLR holds a bound method);
- tensor-*: sparse, quantized, conj/neg views, meta, big, many, odd shapes;
- py-*: Python values (datetime with zoneinfo, nested classes, namedtuple,
  slots, sets, numpy, ...);
- cycle-*, shared-*, memo-*: object identity and cycles, and the memo
  blow-up pickles;
- cuda-*: storages whose location is cuda:N (written without CUDA by
  patching the location tag; loaded with map_location='cpu');
- be-*: big-endian files with a `byteorder` record (a little-endian file
  with its storages byte-swapped; torch 1.13 ignores the record, torch >= 2.1
  and compare_loaded.py apply it);
- unbuildable-*: hand-assembled pickles Python refuses ({[]: 1}, ...).

Classes the pickles refer to are defined here; the script imports itself as
`make_serialization_kinds` so they pickle under that importable name.
"""
import argparse
import collections
import contextlib
import dataclasses
import datetime
import enum
import fnmatch
import functools
import io
import json
import os
import pickle
import struct
import sys
import warnings
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# --- classes the kinds pickle -------------------------------------------------


class Sub(torch.Tensor):
    """A tensor subclass with nothing of its own."""


class SlotSub(torch.Tensor):
    """A subclass with slots; `elem` is a second tensor on the same storage."""
    __slots__ = ["elem", "other"]


class StateSub(torch.Tensor):
    """A subclass whose __getstate__ is a tuple and whose __setstate__ marks it."""
    __slots__ = ["elem"]

    def __getstate__(self):
        return ("v1", getattr(self, "elem", None), self.__dict__)

    def __setstate__(self, state):
        tag, self.elem, d = state
        if tag != "v1":
            raise RuntimeError("bad StateSub state")
        self.__dict__.update(d)


class SubParameter(torch.nn.Parameter):
    """A Parameter subclass (torch 1.13 pickles it as a plain Parameter)."""


class OldStyleTensor:
    """Pickles as the pre-1.0 tensor protocols: Tensor() + BUILD, or _rebuild_tensor."""

    def __init__(self, t, rebuild):
        self.t, self.rebuild = t, rebuild

    def __reduce__(self):
        t = self.t
        args = (t.storage(), t.storage_offset(), tuple(t.size()), t.stride())
        if self.rebuild:
            return (torch._utils._rebuild_tensor, args)
        return (torch.Tensor, (), args)


class Node:
    """A plain object (attributes in __dict__)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class Outer:
    class Nested:
        def __init__(self):
            self.x = 1


class Outer2:
    class Nested:
        pass


Point = collections.namedtuple("Point", ["x", "y"])


class WithBuild:
    """__reduce_ex__ with a state dict: REDUCE then BUILD."""

    def __init__(self, num):
        self.num = num

    def __reduce_ex__(self, proto):
        return WithBuild, (self.num,), {"foo": "bar"}


@dataclasses.dataclass
class AllSlots:
    __slots__ = ["x", "y"]
    x: int
    y: int


@dataclasses.dataclass
class SomeSlots(AllSlots):
    x: int
    y: int
    c: str


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class TwoLayer(torch.nn.Module):
    """A custom module: submodules, a buffer, a shared submodule, plain attributes."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 3)
        self.fc2 = torch.nn.Linear(3, 2)
        self.alias = self.fc1  # the same module registered twice
        self.register_buffer("steps", torch.tensor(5))
        self.config = {"hidden": [4, 3, 2], "act": "relu"}
        self.scale = 0.5

    def forward(self, x):
        return self.fc2(self.fc1(x).relu()) * self.scale


# --- deterministic data -------------------------------------------------------

DTYPES = collections.OrderedDict([
    ("f32", torch.float32), ("f64", torch.float64), ("c64", torch.complex64),
    ("c128", torch.complex128), ("u8", torch.uint8), ("i8", torch.int8),
    ("i16", torch.int16), ("i32", torch.int32), ("i64", torch.int64),
    ("f16", torch.float16), ("bf16", torch.bfloat16), ("bool", torch.bool),
])


def ramp(n, dtype=torch.float32):
    """n deterministic values of dtype; floats include nan, ±inf and -0.0."""
    i = torch.arange(n, dtype=torch.float64)
    if dtype.is_floating_point or dtype.is_complex:
        v = i * 0.375 - n / 8
        if n > 8:
            v[1], v[2], v[3], v[4] = float("nan"), float("inf"), float("-inf"), -0.0
        if dtype.is_complex:
            return torch.complex(v, -0.5 * i).to(dtype)
        return v.to(dtype)
    if dtype == torch.bool:
        return torch.arange(n) % 3 == 0
    k = torch.arange(n, dtype=torch.int64) * 40503 + 17
    if dtype == torch.uint8:
        return (k % 256).to(torch.uint8)
    bits = torch.iinfo(dtype).bits
    if bits == 64:
        return k * -7046029254386353131  # wraps: the whole int64 range
    return ((k % (1 << bits)) - (1 << (bits - 1))).to(dtype)


def dtype_payload(dt):
    t = ramp(24, dt).view(4, 6)
    return {
        "t": t, "row": t[1], "col": t[:, 2], "T": t.t(), "scalar": t[2, 3],
        "flat_off": t.view(-1)[5:11], "strided": t[::2, ::3],
        "expand": ramp(3, dt).view(3, 1).expand(3, 4),
        "empty": torch.empty(0, dtype=dt), "zero_dim": ramp(1, dt).view(()),
        "n": 7, "name": str(dt),
    }


# --- writing ------------------------------------------------------------------

KINDS = collections.OrderedDict()  # name -> (write(path), note)

FORMATS = collections.OrderedDict([
    ("zip", {}), ("legacy", {"_use_new_zipfile_serialization": False})])


def add(name, write, note=""):
    assert name not in KINDS, name
    KINDS[name] = (write, note)


def save_kind(name, make, fmt="zip", protocol=2, note=""):
    """A kind torch.save writes: make() builds the object (seeded RNG)."""
    def write(path):
        torch.manual_seed(0)
        torch.save(make(), path, pickle_protocol=protocol, **FORMATS[fmt])
    add(f"{name}-{fmt}-p{protocol}", write, note)


def save_grid(name, make, fmts=("zip", "legacy"), protocols=(2,), note=""):
    for fmt in fmts:
        for p in protocols:
            save_kind(name, make, fmt, p, note)


def saved_bytes(obj, **kw):
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def zip_records(data):
    """(name without the folder prefix, bytes) of a torch zip, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(n.split("/", 1)[1], z.read(n)) for n in z.namelist()]


def write_torch_zip(path, records):
    """A zip laid out by torch's own writer; it adds `version` at the end."""
    w = torch._C.PyTorchFileWriter(path)
    for name, data in records:
        if name != "version":
            w.write_record(name, data, len(data))
    w.write_end_of_file()
    del w


def pickle_zip(pkl):
    """A writer of a torch zip whose data.pkl is pkl (no storages)."""
    return lambda path: write_torch_zip(path, [("data.pkl", pkl)])


@contextlib.contextmanager
def location_tag(tag_of):
    """Makes torch.save record tag_of(storage) as the storage location."""
    old = torch.serialization.location_tag
    torch.serialization.location_tag = tag_of
    try:
        yield
    finally:
        torch.serialization.location_tag = old


class _Pid:
    def __init__(self, pid):
        self.pid = pid


class _PidPickler(pickle.Pickler):
    """pickle.Pickler that writes _Pid(x) as persistent id x."""

    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Pid) else None


def pickled(obj, protocol=2):
    buf = io.BytesIO()
    _PidPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def legacy_file(obj, storages, protocol=2):
    """A legacy (pre-zip) file: magic, version, sys info, obj, keys, storages.

    storages: [(key, element count, raw bytes)]."""
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    out = [pickle.dumps(0x1950a86a20f9469cfc6c, protocol=protocol),
           pickle.dumps(1001, protocol=protocol), pickle.dumps(sys_info, protocol=protocol),
           pickled(obj, protocol), pickle.dumps([k for k, _, _ in storages], protocol=protocol)]
    for _, numel, raw in storages:
        out.append(struct.pack("<q", numel) + raw)
    return b"".join(out)


def write_bytes(data):
    def write(path):
        with open(path, "wb") as f:
            f.write(data() if callable(data) else data)
    return write


# --- the kinds ----------------------------------------------------------------

def dtype_kinds():
    # Protocol 0 cannot hold torch's tuple persistent ids: torch writes the
    # file, then cannot load it (a kind wopt must refuse).
    for short, dt in DTYPES.items():
        save_grid(f"dtype-{short}", functools.partial(dtype_payload, dt), protocols=(1, 2, 3, 4, 5))
    for short in ("f32", "i64"):
        save_grid(f"dtype-{short}", functools.partial(dtype_payload, DTYPES[short]), protocols=(0,),
                  note="protocol 0 stores the persistent id as a string; torch cannot load it")


def unalloc_pair(a_dt, b_dt, variant):
    a = torch.tensor([], dtype=a_dt)
    s = torch.storage.TypedStorage(wrap_storage=a.storage().untyped(), dtype=b_dt)
    if variant == "tensor-storage":
        return [a, s]
    if variant == "storage-storage":
        return [a.storage(), s]
    return [a, torch.tensor([], dtype=b_dt)]


def unalloc_kinds():
    names = list(DTYPES)
    note = "torch loads both views with the first one's dtype (one key, one cached storage)"
    for x in names:
        for y in names:
            for v in ("tensor-storage", "storage-storage"):
                save_kind(f"unalloc-{x}-{y}-{v}",
                          functools.partial(unalloc_pair, DTYPES[x], DTYPES[y], v), "zip", 2,
                          note if x != y else "")
    for i, x in enumerate(names):
        y = names[(i + 1) % len(names)]
        for v in ("tensor-storage", "storage-storage", "tensor-tensor"):
            save_kind(f"unalloc-{x}-{y}-{v}",
                      functools.partial(unalloc_pair, DTYPES[x], DTYPES[y], v), "legacy", 2,
                      note if v != "tensor-tensor" else "")
        save_kind(f"unalloc-{x}-{y}-tensor-tensor",
                  functools.partial(unalloc_pair, DTYPES[x], DTYPES[y], "tensor-tensor"), "zip", 2)


def mixin_data():
    """A list like the one test_serialization.py's mixin saves: repeated
    tensors, storages of them, and storages of two separate clones."""
    a = [ramp(25).view(5, 5), ramp(25).view(5, 5) + 100]
    b = [a[i % 2] for i in range(4)]
    b.append(a[0].storage())
    b.append(a[0].reshape(-1)[1:4].storage())
    b.append(torch.arange(1, 11).int())
    t1 = torch.FloatTensor().set_(a[0].reshape(-1)[1:4].clone().storage(), 0, (3,), (1,))
    t2 = torch.FloatTensor().set_(a[0].reshape(-1)[1:4].clone().storage(), 0, (3,), (1,))
    b.append((t1.storage(), t1.storage(), t2.storage()))
    b.append(a[0].reshape(-1)[0:2].storage())
    return b


def storage_kinds():
    for short in ("f32", "i64", "bool", "f16", "c64"):
        save_grid(f"storage-typed-root-{short}", lambda s=short: ramp(10, DTYPES[s]).storage())
    save_grid("storage-typed-empty-root", lambda: torch.storage.TypedStorage(dtype=torch.float32))
    u8 = lambda: torch.arange(16, dtype=torch.uint8).storage().untyped()
    save_grid("storage-untyped-root", u8)
    save_grid("storage-untyped-in-list", lambda: (lambda u: [u, u, 5])(u8()))
    save_grid("storage-untyped-empty-root", lambda: torch.UntypedStorage(0))
    save_grid("storage-typed-list", lambda: (lambda s, s2: [s, s, s2])(ramp(6).storage(), ramp(4).storage()))
    save_grid("storage-tensor-then-storage", lambda: (lambda t: [t, t.storage()])(ramp(6).view(2, 3)))
    save_grid("storage-storage-then-tensor", lambda: (lambda t: [t.storage(), t])(ramp(6).view(2, 3)))
    save_grid("storage-with-views", lambda: (lambda t: {"s": t.storage(), "a": t[1:], "b": t[:2]})(ramp(8)))
    save_grid("storage-mixin-data", mixin_data, protocols=(2, 4))

    # A legacy storage view (PyTorch < 0.4): two views of one root storage.
    def legacy_views():
        cls = torch.FloatStorage
        v1 = _Pid(("storage", cls, "root", "cpu", 4, ("v1", 0, 2)))
        v2 = _Pid(("storage", cls, "root", "cpu", 4, ("v2", 1, 3)))
        return legacy_file((v1, v2, v1), [("root", 4, struct.pack("<4f", 1, 2, 3, 4))])
    add("storage-legacy-view", write_bytes(legacy_views),
        "legacy view_metadata, written only by PyTorch < 0.4")


def with_attrs(t, **kw):
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def slot_sub():
    base = ramp(6)
    s = base.as_subclass(SlotSub)
    s.elem = base[1:]
    s.foo = "bar"
    return s


def state_sub():
    base = ramp(4)
    s = base.as_subclass(StateSub)
    s.elem = ramp(2)
    s.tag = 3
    return s


def subclass_kinds():
    save_grid("subclass-empty", lambda: ramp(4).as_subclass(Sub), protocols=(2, 4))
    save_grid("subclass-empty-nodata", lambda: torch.empty(0).as_subclass(Sub))
    save_grid("subclass-attrs", lambda: with_attrs(ramp(4).as_subclass(Sub), foo="bar", pi=3.25),
              protocols=(2, 4))
    save_grid("subclass-slots", slot_sub)
    save_grid("subclass-getstate", state_sub)
    save_grid("subclass-shared", lambda: (lambda s: [s, s, {"again": s}])(ramp(3).as_subclass(Sub)))
    save_grid("subclass-parameter", lambda: SubParameter(ramp(3)),
              note="torch 1.13 pickles a Parameter subclass as a plain Parameter")
    save_grid("tensor-attrs", lambda: with_attrs(torch.zeros(3, 3), foo="foo", pi=3.14))
    save_grid("param-attrs", lambda: with_attrs(torch.nn.Parameter(torch.zeros(3, 3)), foo="foo", pi=3.14))
    strided = lambda: ramp(30).as_strided([2, 3], [9, 3], 2)
    save_grid("old-tensor-build", lambda: OldStyleTensor(strided(), False),
              note="REDUCE torch.Tensor() then BUILD (storage, offset, size, stride)")
    save_grid("old-tensor-rebuild", lambda: OldStyleTensor(strided(), True),
              note="torch._utils._rebuild_tensor(storage, offset, size, stride)")


def param_kinds():
    P = torch.nn.Parameter
    save_grid("param-requires-grad", lambda: {"p": P(ramp(4))})
    save_grid("param-no-grad", lambda: {"p": P(ramp(4), requires_grad=False)})
    save_grid("param-twice", lambda: (lambda p: {"a": p, "b": p})(P(ramp(4))))
    save_grid("param-and-data", lambda: (lambda p: {"p": p, "d": p.data})(P(ramp(4))))
    save_grid("param-list", lambda: (lambda p, q: [p, q, p])(P(ramp(2)), P(ramp(3))))
    save_grid("tensor-requires-grad", lambda: {"t": ramp(4).requires_grad_()})


def tied_seq():
    m = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    m[1].weight = m[0].weight
    return m


def bn():
    m = torch.nn.BatchNorm2d(3)
    m(ramp(2 * 3 * 2 * 2).view(2, 3, 2, 2).nan_to_num(0, 0, 0))
    return m


MODULES = collections.OrderedDict([
    ("linear", lambda: torch.nn.Linear(3, 2)),
    ("seq-tied", tied_seq),
    ("conv", lambda: torch.nn.Conv2d(2, 3, (1, 3))),
    ("bn", bn),
    ("lstm", lambda: torch.nn.LSTM(3, 3)),
    ("custom", TwoLayer),
    ("modulelist-shared", lambda: (lambda l: torch.nn.ModuleList([l, torch.nn.ReLU(), l]))(torch.nn.Linear(2, 2))),
])


def module_kinds():
    for name, make in MODULES.items():
        save_kind(f"module-{name}", make, "zip", 2)
        save_kind(f"module-{name}", make, "zip", 4)
        save_kind(f"module-{name}", make, "legacy", 2,
                  "legacy whole module: ('module', class, source file, source) persistent ids")
        save_grid(f"module-{name}-state-dict", lambda m=make: m().state_dict())
    save_kind("module-linear", MODULES["linear"], "legacy", 4)


def stepped(opt_cls, steps=2, **kw):
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    opt = opt_cls(m.parameters(), **kw)
    for i in range(steps):
        opt.zero_grad()
        m(ramp(6).view(2, 3).nan_to_num(0, 0, 0) + i).sum().backward()
        opt.step()
    return m, opt


def sched(make):
    p = torch.nn.Parameter(ramp(4))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    s = make(opt)
    opt.step()
    s.step()
    return s.state_dict()


def training_checkpoint():
    m, opt = stepped(torch.optim.Adam, lr=1e-3)
    s = torch.optim.lr_scheduler.StepLR(opt, 2)
    import argparse as ap
    return {"model": m.state_dict(), "optimizer": opt.state_dict(), "scheduler": s.state_dict(),
            "epoch": 3, "args": ap.Namespace(lr=1e-3, name="run")}


def optim_kinds():
    save_grid("optim-sgd-momentum", lambda: stepped(torch.optim.SGD, lr=0.1, momentum=0.9)[1].state_dict())
    save_grid("optim-adam", lambda: stepped(torch.optim.Adam, lr=1e-3)[1].state_dict())
    save_grid("optim-adamw-amsgrad", lambda: stepped(torch.optim.AdamW, lr=1e-3, amsgrad=True)[1].state_dict())
    save_grid("optim-whole-with-model", lambda: (lambda mo: {"model": mo[0], "optimizer": mo[1]})(
        stepped(torch.optim.SGD, lr=0.1, momentum=0.9)),
        note="optimizer param_groups hold the model's Parameter objects")
    lr = torch.optim.lr_scheduler
    save_grid("sched-onecycle", lambda: sched(lambda o: lr.OneCycleLR(o, 6.0, total_steps=10)),
              protocols=(2, 4), note="state_dict holds the bound method anneal_func (scheduler, optimizer, parameter)")
    save_grid("sched-steplr", lambda: sched(lambda o: lr.StepLR(o, 3)))
    save_grid("sched-cosine", lambda: sched(lambda o: lr.CosineAnnealingLR(o, 10)))
    save_grid("sched-plateau", lambda: (lambda s: (s.step(1.0), s.state_dict())[1])(
        lr.ReduceLROnPlateau(torch.optim.SGD([torch.nn.Parameter(ramp(2))], lr=0.1))))
    save_grid("sched-lambda", lambda: sched(lambda o: lr.LambdaLR(o, lambda e: 0.5 ** e)))
    save_grid("training-checkpoint", training_checkpoint, protocols=(2, 4))


def fake_zip():
    t = torch.zeros(104, dtype=torch.uint8)
    t[:4] = torch.tensor(list(b"PK\x05\x06"))
    return t


def tensor_kinds():
    x = lambda: torch.zeros(3, 3).index_put_((torch.tensor([1]), torch.tensor([1])), torch.tensor(1.0))
    save_grid("tensor-sparse-coo", lambda: {"tensor": x().to_sparse()})
    save_grid("tensor-sparse-coo-uncoalesced", lambda: torch.sparse_coo_tensor(
        torch.tensor([[0, 0, 1], [1, 1, 0]]), torch.tensor([1.0, 2.0, 3.0]), (2, 2)))
    save_grid("tensor-sparse-csr", lambda: {"tensor": x().to_sparse_csr()})
    for q in ("quint8", "qint8", "qint32"):
        save_grid(f"tensor-quant-{q}", lambda q=q: torch.quantize_per_tensor(
            ramp(8).nan_to_num(0, 0, 0), 0.5, 2, getattr(torch, q)))
    save_grid("tensor-quant-per-channel", lambda: torch.quantize_per_channel(
        ramp(8).nan_to_num(0, 0, 0).view(2, 4), torch.tensor([0.5, 0.25], dtype=torch.float64),
        torch.tensor([0, 1]), 0, torch.qint8))
    save_grid("tensor-conj-view", lambda: torch.conj(ramp(3, torch.complex64)))
    save_grid("tensor-neg-view", lambda: torch._neg_view(ramp(3, torch.complex64)))
    save_grid("tensor-meta-state-dict", lambda: torch.nn.Conv2d(200, 3200, kernel_size=3, device="meta").state_dict())
    save_grid("tensor-big", lambda: {"w": ramp(1 << 20), "b": ramp(7)}, note="4 MiB of float32")
    save_grid("tensor-many", lambda: collections.OrderedDict(
        (f"layer{i}.weight", ramp(i % 7 + 1)) for i in range(600)))
    save_grid("tensor-zero-size", lambda: {"a": torch.zeros(0, 3), "b": torch.zeros(3, 0),
                                           "c": ramp(8)[4:4], "d": torch.zeros(2, 0, 4)})
    save_grid("tensor-rank6", lambda: ramp(64).view(2, 2, 2, 2, 2, 2).permute(5, 3, 1, 0, 2, 4))
    save_grid("tensor-channels-last", lambda: ramp(2 * 3 * 4 * 5).view(2, 3, 4, 5).contiguous(
        memory_format=torch.channels_last))
    save_grid("tensor-storage-tail", lambda: ramp(100)[10:20],
              note="a small view of a big storage: the whole storage is saved")
    save_grid("tensor-expand-huge", lambda: ramp(1).expand(1000, 1000))
    def torchscript(path):
        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(torch.nn.Linear(3, 4)), path)
    add("torchscript-linear", torchscript, "torch.load of a TorchScript archive returns torch.jit.load()")
    save_grid("tensor-fake-zip", fake_zip,
              note="uint8 data starting PK\\x05\\x06: a legacy file that zipfile.is_zipfile accepts")


def py_values():
    return {
        "int": 1, "big": 2 ** 100, "neg": -2 ** 70, "float": 1.5, "nan": float("nan"),
        "negzero": -0.0, "inf": float("inf"), "str": "plain", "none": None, "bool": True,
        "tuple": (1, 2), "list": [1, [2, 3]], "set": {1, 2}, "frozenset": frozenset({3}),
        "complex": 1 + 2j, "keys": {1: "a", (1, 2): "b", "c": 3, 2.5: "d", None: 0},
        "empty": [[], {}, (), set()],
    }


def unicode_values():
    return {"str": "h\u00e9llo \u2713 \\u0041 \n\x00", "bytes": b"\x00\xff\\n", "\u00e9": 1}


def py_kinds():
    save_grid("py-values", py_values, protocols=(0, 1, 2, 3, 4, 5))
    save_grid("py-unicode", unicode_values, protocols=(0, 1, 2, 4))
    save_grid("py-bytearray", lambda: {"ba": bytearray(b"bytearray"), "b": b"byte"}, protocols=(2, 5))
    import zoneinfo
    dt = lambda: {"a": torch.tensor([1, 2, 3]),
                  "b": datetime.datetime(2025, 1, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo(key="UTC"))}
    save_grid("py-datetime-zoneinfo", dt, protocols=(2, 4),
              note="ZoneInfo pickles as ZoneInfo._unpickle: REDUCE of getattr(ZoneInfo, '_unpickle')")
    save_grid("py-datetime-naive", lambda: [datetime.datetime(2024, 2, 29, 23, 59, 59, 999),
                                            datetime.date(2000, 1, 1), datetime.timedelta(days=-1, seconds=5),
                                            datetime.timezone(datetime.timedelta(hours=2))])
    save_grid("py-nested-class", lambda: dict(a_nested=Outer.Nested(), b_nested=Outer2.Nested()),
              protocols=(2, 4), note="protocol 2 spells a nested class as getattr(Outer, 'Nested')")
    save_grid("py-namedtuple", lambda: {"p": Point(x=1, y=ramp(2))}, protocols=(2, 4))
    save_grid("py-build-state", lambda: WithBuild(2))
    save_grid("py-slots-all", lambda: AllSlots(2, 3), protocols=(2, 4))
    save_grid("py-slots-some", lambda: SomeSlots(2, 3, "foo"), protocols=(2, 4))

    def odict():
        od = collections.OrderedDict([("w", ramp(2)), ("b", ramp(1))])
        od._metadata = collections.OrderedDict([("", {"version": 1})])
        return od
    save_grid("py-odict-metadata", odict)
    save_grid("py-defaultdict", lambda: collections.defaultdict(list, {"a": [1]}))
    import argparse as ap
    save_grid("py-namespace", lambda: {"args": ap.Namespace(lr=0.1, layers=[1, 2]), "w": ramp(2)})
    import numpy
    save_grid("py-numpy", lambda: {"arr": numpy.arange(6, dtype=numpy.float32).reshape(2, 3),
                                   "scalar": numpy.float64(2.5), "dtype": numpy.dtype("int16"),
                                   "i": numpy.int64(7)})
    save_grid("py-torch-globals", lambda: {"size": torch.Size([2, 3]), "dtype": torch.float16,
                                           "device": torch.device("cpu"), "layout": torch.strided,
                                           "qscheme": torch.per_tensor_affine})
    save_grid("py-enum", lambda: [Color.RED, Color.GREEN, Color.RED])
    save_grid("py-partial", lambda: functools.partial(int, base=2))
    save_grid("py-range-slice", lambda: [range(1, 10, 2), slice(1, None, 2)])

    def deep():
        x = [ramp(1)]
        for i in range(150):
            x = [x, i]
        return x
    save_grid("py-deep-nesting", deep)
    save_grid("py-builtin-reduce", lambda: {"v": OldReduce()})


class OldReduce:
    """__reduce__ to a builtin call: int('42')."""

    def __reduce__(self):
        return (int, ("42",))


def self_list():
    l = [ramp(2)]
    l.append(l)
    return l


def self_dict():
    d = {"t": ramp(2)}
    d["d"] = d
    return d


def self_object():
    a = Node(t=ramp(2))
    a.me = a
    return a


def two_objects():
    a, b = Node(name="a"), Node(name="b", t=ramp(2))
    a.other, b.other = b, a
    return [a, b]


def tuple_via_list():
    l = [ramp(2)]
    t = (l, 1)
    l.append(t)
    return t


def self_odict():
    od = collections.OrderedDict(t=ramp(2))
    od["self"] = od
    return od


def set_object():
    n = Node()
    s = {n}
    n.s = s
    return s


def shared_dag(depth=24):
    x = [ramp(1)]
    for _ in range(depth):
        x = [x, x]
    return x


def identity_kinds():
    for name, make in [("cycle-list-self", self_list), ("cycle-dict-self", self_dict),
                       ("cycle-object-self", self_object), ("cycle-two-objects", two_objects),
                       ("cycle-tuple-via-list", tuple_via_list), ("cycle-odict-self", self_odict),
                       ("shared-tensor-dict", lambda: (lambda t: {"a": t, "b": t})(ramp(3))),
                       ("shared-tensor-list", lambda: (lambda t: [t, t, t])(ramp(3))),
                       ("shared-list", lambda: (lambda x: {"a": x, "b": x})([1, 2])),
                       ("shared-dict-in-objects", lambda: (lambda c: [Node(cfg=c), Node(cfg=c)])({"k": 1})),
                       ("shared-tuple", lambda: (lambda t: [t, t])((1, 2, [3]))),
                       ("shared-views", lambda: (lambda t: [t, t[1:], t.view(2, 2), t[1:]])(ramp(4))),
                       ("shared-dag", shared_dag)]:
        save_kind(name, make, "zip", 2)
        if name != "shared-dag":  # its p4 twin would only repeat the blow-up
            save_kind(name, make, "zip", 4)
        save_kind(name, make, "legacy", 2)
    save_kind("cycle-set-object", set_object, "zip", 4)
    save_kind("cycle-set-object", set_object, "zip", 2,
              "protocol 2 spells the set as builtins.set(list): the inner reference recurses")
    for n in (24, 100):
        add(f"memo-blowup-{n}", pickle_zip(b"\x80\x02]q\x00" + b"h\x00a" * n + b"."),
            f"a list appended to itself {n} times (BINGET of the list)")


def cuda_kinds():
    def on(tag, make, fmt="zip", mixed=None):
        def write(path):
            obj = make()
            cpu = {mixed.storage().data_ptr()} if mixed is not None else set()
            with location_tag(lambda s: "cpu" if s.data_ptr() in cpu else tag):
                torch.save(obj if mixed is None else {"cpu": mixed, "gpu": obj}, path,
                           **FORMATS[fmt])
        return write
    sd = lambda: {"w": ramp(6).view(2, 3), "b": ramp(2)}
    add("cuda-cuda0-state-dict-zip-p2", on("cuda:0", sd))
    add("cuda-cuda1-tensor-zip-p2", on("cuda:1", lambda: ramp(3)))
    add("cuda-mixed-zip-p2", on("cuda:0", lambda: ramp(3), mixed=ramp(5)))
    add("cuda-cuda0-storage-root-zip-p2", on("cuda:0", lambda: ramp(4).storage()))
    add("cuda-cuda0-state-dict-legacy-p2", on("cuda:0", sd, "legacy"))


def swapped(raw, es):
    if es == 1:
        return raw
    b = bytearray(raw)
    for i in range(0, len(b), es):
        b[i:i + es] = b[i:i + es][::-1]
    return bytes(b)


def big_endian(tensors, extra=()):
    """A zip of {name: tensor} (one storage each, in order) with its storages
    byte-swapped and a `byteorder` record saying big."""
    obj = collections.OrderedDict(tensors)
    es = [t.element_size() // (2 if t.is_complex() else 1) for t in obj.values()]

    def write(path):
        recs = []
        for name, data in zip_records(saved_bytes(obj)):
            if name.startswith("data/"):
                data = swapped(data, es[int(name[5:])])
            recs.append((name, data))
            if name == "data.pkl":
                recs.append(("byteorder", b"big"))
                recs.extend(extra)
        write_torch_zip(path, recs)
    return write


def be_kinds():
    for short, dt in DTYPES.items():
        add(f"be-{short}", big_endian([("t", ramp(12, dt).view(3, 4))]))
    add("be-all-dtypes", big_endian([(s, ramp(5, dt)) for s, dt in DTYPES.items()]))
    torch.manual_seed(0)
    add("be-lstm-state-dict", big_endian(torch.nn.LSTM(3, 3).state_dict().items()))

    def little_torch2(path):
        recs = []
        for name, data in zip_records(saved_bytes({"w": ramp(4)})):
            recs.append((name, data))
            if name == "data.pkl":
                recs += [(".format_version", b"1"), (".storage_alignment", b"64"),
                         ("byteorder", b"little")]
        recs.append((".data/serialization_id", b"0123456789012345678901234567890123456789"))
        write_torch_zip(path, recs)
    add("le-torch2-records", little_torch2, "the extra records torch >= 2.1 writes")


def unbuildable_kinds():
    P2, P4 = b"\x80\x02", b"\x80\x04"
    U = lambda s: b"X" + struct.pack("<I", len(s)) + s.encode()
    for name, pkl in [("list-key", P2 + b"}]K\x01s."),                       # {[]: 1}
                      ("set-of-list", P4 + b"\x8f(]\x90."),                   # set([[]])
                      ("frozenset-of-dict", P4 + b"(}\x91."),                 # frozenset([{}])
                      ("dict-own-key", P2 + b"}q\x00h\x00" + U("v") + b"s."),  # d[d] = 'v'
                      ("set-reduce-of-dict", P2 + b"c__builtin__\nset\n]}a\x85R."),
                      ("tuple-with-list-key", P2 + b"}]\x85K\x01s.")]:        # {([],): 1}
        add(f"unbuildable-{name}", pickle_zip(pkl), "Python refuses it: unhashable key or element")


def py2_legacy():
    """A legacy file as Python 2 wrote it: byte strings (SHORT_BINSTRING),
    old module names; torch loads the strings as UTF-8 str."""
    s = lambda b: b"U" + bytes([len(b)]) + b
    obj = (b"\x80\x02]q\x01(" + s("caf\u00e9".encode()) + b"q\x02"
           + b"ctorch._utils\n_rebuild_tensor_v2\nq\x03((" + s(b"storage")
           + b"ctorch\nFloatStorage\nq\x04" + s(b"k1") + s(b"cpu") + b"K\x02NtQK\x00K\x02\x85K\x01\x85"
           + b"\x89NtRq\x05c__builtin__\nset\n]K\x07a\x85Rq\x06e.")
    sys_info = b"\x80\x02}q\x00(" + s(b"protocol_version") + b"M\xe9\x03" + s(b"little_endian") + b"\x88u."
    return (pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2)
            + sys_info + obj + b"\x80\x02]q\x00" + s(b"k1") + b"a."
            + struct.pack("<q", 2) + struct.pack("<2f", 1.5, -2.0))


def legacy_kinds():
    add("legacy-py2-strings", write_bytes(py2_legacy), "SHORT_BINSTRING strings, __builtin__.set")


def register():
    for fn in (dtype_kinds, unalloc_kinds, storage_kinds, subclass_kinds, param_kinds,
               module_kinds, optim_kinds, tensor_kinds, py_kinds, identity_kinds,
               cuda_kinds, be_kinds, unbuildable_kinds, legacy_kinds):
        fn()


# --- main ---------------------------------------------------------------------

def try_load(path, weights_only, plain=False):
    """(loads, error) for path: as compare_loaded.load loads it (torch plus the
    fixes of later torch it applies), or with plain torch.load. Prints of the
    file are swallowed."""
    import compare_loaded
    out = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out):
            warnings.simplefilter("ignore")
            if plain:
                torch.load(path, map_location="cpu", weights_only=weights_only)
            else:
                compare_loaded.load(path, weights_only=weights_only)
        return True, None
    except Exception as e:
        return False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("outdir", nargs="?")
    p.add_argument("--only", nargs="*", default=["*"])
    p.add_argument("--exclude", nargs="*", default=[])
    p.add_argument("--list", action="store_true")
    args = p.parse_args(argv[1:])
    register()
    names = [n for n in KINDS if any(fnmatch.fnmatch(n, g) for g in args.only)
             and not any(fnmatch.fnmatch(n, g) for g in args.exclude)]
    if args.list or not args.outdir:
        print("\n".join(names))
        return 0
    os.makedirs(args.outdir, exist_ok=True)
    entries = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            write, note = KINDS[name]
            e = collections.OrderedDict(name=name, file=name + ".pth")
            path = os.path.join(args.outdir, e["file"])
            try:
                write(path)
            except Exception as ex:  # torch refuses to save it
                e.update(file=None, torch_loads=False, weights_only=False,
                         error=f"save: {type(ex).__name__}: {ex}"[:200])
            else:
                e["torch_loads"], e["error"] = try_load(path, False)
                e["weights_only"] = e["torch_loads"] and try_load(path, True)[0]
                plain, err = try_load(path, False, plain=True)
                if plain != e["torch_loads"]:
                    e["torch_1_13_loads"], e["torch_1_13_error"] = plain, err
            e["note"] = note
            entries.append(e)
    with open(os.path.join(args.outdir, "kinds.json"), "w") as f:
        json.dump({"torch": torch.__version__, "kinds": entries}, f, indent=1)
    made = sum(1 for e in entries if e["file"])
    loads = sum(1 for e in entries if e["torch_loads"])
    print(f"{len(entries)} kinds, {made} files, {loads} load in torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    import make_serialization_kinds  # the classes pickle under this name
    sys.exit(make_serialization_kinds.main(sys.argv))
