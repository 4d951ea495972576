#!/usr/bin/python3
"""Checks that a checkpoint wopt exported equals the original, with torch.

Usage: /usr/bin/python3 check_roundtrip.py ORIGINAL EXPORTED [--prefix P]
           [--sample]

- Both files are loaded with torch.load. When ORIGINAL loads with
  weights_only=True, EXPORTED must too (wopt writes only allowlisted globals
  for plain data).
- The trees must match: container types (OrderedDict vs dict), key order,
  leaves (floats bit for bit), OrderedDict attributes such as _metadata,
  argparse/numpy/other objects by their state.
- Tensors: dtype, shape, stride, storage offset, requires_grad,
  Parameter-ness, and every byte of the storage behind them; storage sharing
  must be the same on both sides (a bijection between storages).
- The exported zip: record folder (P, default the file's stem), data.pkl
  first, version last, data/ records 64-byte aligned, CRCs correct (zipfile's
  testzip reads every record), keys 0..n-1.
- --sample compares storages by sampled 1 MiB windows instead of every byte
  (for multi-GB files).

Prints "roundtrip OK: <n> tensors, <m> storages" on success; exits 1 with a
message naming the first difference otherwise.
"""
import argparse
import collections
import math
import os
import struct
import sys
import zipfile

import torch


class Mismatch(Exception):
    pass


def fail(path, msg):
    raise Mismatch(f"{path or '<root>'}: {msg}")


def load(path):
    try:
        return torch.load(path, weights_only=True), True
    except Exception:
        return torch.load(path, weights_only=False), False


def storage_bytes(t):
    """The whole storage behind t as a flat uint8 tensor."""
    st = t.storage().untyped()
    return torch.tensor([], dtype=torch.uint8).set_(st)


class Comparer:
    def __init__(self, sample):
        self.sample = sample
        self.tensors = 0
        self.a_to_b = {}
        self.b_to_a = {}

    def same_bytes(self, path, a, b):
        if a.numel() != b.numel():
            fail(path, f"storage sizes differ: {a.numel()} vs {b.numel()} bytes")
        n = a.numel()
        if not self.sample or n <= (64 << 20):
            if not torch.equal(a, b):
                fail(path, "storage bytes differ")
            return
        w = 1 << 20
        starts = {0, max(0, n - w)} | {(n // 17) * k for k in range(1, 17)}
        for s in sorted(starts):
            if not torch.equal(a[s:s + w], b[s:s + w]):
                fail(path, f"storage bytes differ near byte {s}")

    def tensor(self, path, a, b):
        self.tensors += 1
        if isinstance(a, torch.nn.Parameter) != isinstance(b, torch.nn.Parameter):
            fail(path, "Parameter-ness differs")
        for attr in ("dtype", "requires_grad"):
            if getattr(a, attr) != getattr(b, attr):
                fail(path, f"{attr}: {getattr(a, attr)} vs {getattr(b, attr)}")
        if tuple(a.shape) != tuple(b.shape):
            fail(path, f"shape {tuple(a.shape)} vs {tuple(b.shape)}")
        if a.stride() != b.stride():
            fail(path, f"stride {a.stride()} vs {b.stride()}")
        if a.storage_offset() != b.storage_offset():
            fail(path, f"storage offset {a.storage_offset()} vs {b.storage_offset()}")
        pa, pb = a.storage().data_ptr(), b.storage().data_ptr()
        if self.a_to_b.setdefault(pa, pb) != pb or self.b_to_a.setdefault(pb, pa) != pa:
            fail(path, "storage sharing differs")
        self.same_bytes(path, storage_bytes(a), storage_bytes(b))

    def value(self, path, a, b):
        if type(a) is not type(b):
            fail(path, f"type {type(a).__name__} vs {type(b).__name__}")
        if isinstance(a, torch.Tensor):
            return self.tensor(path, a, b)
        if isinstance(a, dict):
            if list(a.keys()) != list(b.keys()):
                fail(path, f"keys {list(a.keys())[:8]} vs {list(b.keys())[:8]}")
            for k in a:
                self.value(f"{path}/{k}" if path else str(k), a[k], b[k])
            if vars(a) if hasattr(a, "__dict__") else False:
                self.value(path + "@attrs", vars(a), vars(b))
            return
        if isinstance(a, (list, tuple)):
            if len(a) != len(b):
                fail(path, f"length {len(a)} vs {len(b)}")
            for i, (x, y) in enumerate(zip(a, b)):
                self.value(f"{path}/{i}", x, y)
            return
        if isinstance(a, float):
            if struct.pack("<d", a) != struct.pack("<d", b):
                fail(path, f"{a!r} vs {b!r}")
            return
        if isinstance(a, (int, str, bytes, bool, type(None), set, frozenset)):
            if a != b:
                fail(path, f"{a!r} vs {b!r}")
            return
        if type(a).__module__ == "numpy" or type(a).__module__.startswith("numpy."):
            import numpy
            if isinstance(a, numpy.ndarray):
                if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                    fail(path, "numpy arrays differ")
            elif isinstance(a, numpy.generic):
                if a.dtype != b.dtype or a.tobytes() != b.tobytes():
                    fail(path, f"{a!r} vs {b!r}")
            elif a != b:
                fail(path, f"{a!r} vs {b!r}")
            return
        if hasattr(a, "__dict__"):
            return self.value(path + "@state", vars(a), vars(b))
        if a != b:
            fail(path, f"{a!r} vs {b!r}")


def check_zip(path, prefix):
    z = zipfile.ZipFile(path)
    names = z.namelist()
    if prefix is None:
        prefix = os.path.splitext(os.path.basename(path))[0]
    for n in names:
        if not n.startswith(prefix + "/"):
            fail("zip", f"record {n} is not under {prefix}/")
    if names[0] != prefix + "/data.pkl" or names[-1] != prefix + "/version":
        fail("zip", f"record order {names}")
    if z.read(prefix + "/version") != b"3\n":
        fail("zip", "version record is not 3")
    keys = [n[len(prefix) + 6:] for n in names if n.startswith(prefix + "/data/")]
    if sorted(keys, key=int) != [str(i) for i in range(len(keys))]:
        fail("zip", f"storage keys {keys}")
    with open(path, "rb") as f:
        for info in z.infolist():
            f.seek(info.header_offset)
            h = f.read(30)
            nl, el = struct.unpack("<HH", h[26:30])
            start = info.header_offset + 30 + nl + el
            if info.file_size and start % 64:
                fail("zip", f"{info.filename} data at {start} is not 64-byte aligned")
            if info.compress_type != zipfile.ZIP_STORED:
                fail("zip", f"{info.filename} is compressed")
    bad = z.testzip()
    if bad:
        fail("zip", f"CRC mismatch in {bad}")
    return len(keys)


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("original")
    p.add_argument("exported")
    p.add_argument("--prefix")
    p.add_argument("--sample", action="store_true")
    args = p.parse_args(argv[1:])
    try:
        nstorages = check_zip(args.exported, args.prefix)
        a, a_safe = load(args.original)
        b, b_safe = load(args.exported)
        if a_safe and not b_safe:
            fail("", "original loads with weights_only=True, the export does not")
        c = Comparer(args.sample)
        c.value("", a, b)
    except Mismatch as e:
        print(f"roundtrip MISMATCH: {e}")
        return 1
    print(f"roundtrip OK: {c.tensors} tensors, {nstorages} storages"
          + (" (weights_only)" if b_safe else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
