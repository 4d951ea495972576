#!/usr/bin/python3
"""Checks that a checkpoint wopt exported equals the original, with torch.

Usage: /usr/bin/python3 check_roundtrip.py ORIGINAL EXPORTED [--prefix P]
           [--sample]

- Both files are loaded with torch.load. When ORIGINAL loads with
  weights_only=True, EXPORTED must too (wopt writes only allowlisted globals
  for plain data).
- The trees must match, as compare_loaded.py compares them (types, key
  order, values bit for bit, object state, tensors, every storage byte,
  storage sharing and locations), except object identity: a shared object
  may come back as copies here (serialization-kinds.test checks identity).
- The exported zip: record folder (P, default the file's stem), data.pkl
  first, version last, data/ records 64-byte aligned, CRCs correct (zipfile's
  testzip reads every record), keys 0..n-1.
- --sample compares storages by sampled 1 MiB windows instead of every byte
  (for multi-GB files).

Prints "roundtrip OK: <n> tensors, <m> storages" on success; exits 1 with a
message naming the first difference otherwise.
"""
import argparse
import os
import struct
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_loaded import Comparer, Mismatch, fail, run_with_big_stack  # noqa: E402
import compare_loaded  # noqa: E402


def load(path):
    try:
        return compare_loaded.load(path, weights_only=True), True
    except Exception:
        return compare_loaded.load(path), False


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
            fail("root", "original loads with weights_only=True, the export does not")
        c = Comparer(identity=False, sample=args.sample)
        c.compare(a, b)
    except Mismatch as e:
        print(f"roundtrip MISMATCH: {e}")
        return 1
    print(f"roundtrip OK: {c.tensors} tensors, {nstorages} storages"
          + (" (weights_only)" if b_safe else ""))
    return 0


if __name__ == "__main__":
    sys.exit(run_with_big_stack(main, sys.argv))
