#!/usr/bin/python3
"""Writes malformed checkpoints, one per class of defect, for bad-*.test.

Usage: /usr/bin/python3 make_bad_inputs.py OUTDIR NAME...   (NAME 'all' = every case)
       /usr/bin/python3 make_bad_inputs.py --list

Each case writes OUTDIR/NAME.pth. Zip-level cases corrupt a file written by
torch.save at a precise offset (found by parsing it, never guessed);
pickle-level cases hand-assemble data.pkl and wrap it in a stored zip the
way torch lays records out. torch is imported only by cases that need it.
"""
import collections
import io
import struct
import sys
import os
import zipfile

CASES = collections.OrderedDict()


def case(fn):
    CASES[fn.__name__.replace("_", "-")] = fn
    return fn


# --- pickle assembly -------------------------------------------------------

def U(s):  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def I(n):  # BININT
    return b"J" + struct.pack("<i", n)


def G(mod, name):  # GLOBAL
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def pid(key="0", stype="FloatStorage", numel=3):
    return tup(U("storage"), G("torch", stype), U(key), U("cpu"), I(numel)) + b"Q"


def tensor(storage=None, offset=0, size=(3,), stride=(1,)):
    storage = storage if storage is not None else pid()
    return (G("torch._utils", "_rebuild_tensor_v2")
            + tup(storage, I(offset), tup(*map(I, size)), tup(*map(I, stride)),
                  b"\x89", G("collections", "OrderedDict") + b")R")
            + b"R")


def state_dict(*entries):
    body = b"".join(U(k) + v for k, v in entries)
    return b"\x80\x02}(" + body + b"u."


def torch_zip(pkl, records=None, prefix="archive"):
    """A stored zip with torch's record names: data.pkl, data/<key>, version."""
    if records is None:
        records = {"0": struct.pack("<3f", 1, 2, 3)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(prefix + "/data.pkl", pkl)
        for key, data in records.items():
            z.writestr(prefix + "/data/" + key, data)
        z.writestr(prefix + "/version", b"3\n")
    return buf.getvalue()


def pickle_case(pkl):
    return lambda: torch_zip(pkl)


# --- torch-written files and where their structures are --------------------

def torch_file(obj=None):
    import torch

    if obj is None:
        obj = {"w": torch.arange(3.0), "b": torch.arange(2.0)}
    buf = io.BytesIO()
    torch.save(obj, buf)
    return bytearray(buf.getvalue())


def central_entries(data):
    """(offset of central header, name) for each entry, via the end record."""
    eocd = data.rindex(b"PK\x05\x06")
    loc = eocd - 20
    assert data[loc:loc + 4] == b"PK\x06\x07"
    z64 = struct.unpack_from("<Q", data, loc + 8)[0]
    count, size, offset = struct.unpack_from("<QQQ", data, z64 + 32)
    out, at = [], offset
    for _ in range(count):
        nlen, elen, clen = struct.unpack_from("<HHH", data, at + 28)
        out.append((at, bytes(data[at + 46:at + 46 + nlen]).decode()))
        at += 46 + nlen + elen + clen
    return out


def entry(data, suffix):
    return next(at for at, name in central_entries(data) if name.endswith(suffix))


# --- zip container ------------------------------------------------------------

@case
def empty():
    return b""


@case
def random_bytes():
    return bytes((i * 7919 + 13) % 251 for i in range(4096))


@case
def truncated_zip():
    d = torch_file()
    return d[: len(d) // 2]


@case
def bad_central_directory():
    d = torch_file()
    at = central_entries(d)[1][0]
    d[at:at + 4] = b"XXXX"
    return d


@case
def record_out_of_bounds():
    d = torch_file()
    at = entry(d, "data/0")
    # Move the record's local header offset past the end of the file.
    struct.pack_into("<I", d, at + 42, 0x7FFFFF00)
    return d


@case
def record_size_past_end():
    d = torch_file()
    at = entry(d, "version")
    struct.pack_into("<II", d, at + 20, 0x7FFFFF00, 0x7FFFFF00)
    return d


@case
def overlapping_records():
    d = torch_file()
    # Grow data/0 (12 bytes) so that its range runs into data/1's header.
    struct.pack_into("<II", d, entry(d, "data/0") + 20, 200, 200)
    return d


@case
def compressed_entry():
    d = torch_file()
    struct.pack_into("<H", d, entry(d, "data.pkl") + 10, 8)
    return d


@case
def encrypted_entry():
    d = torch_file()
    at = entry(d, "data.pkl")
    flags = struct.unpack_from("<H", d, at + 8)[0]
    struct.pack_into("<H", d, at + 8, flags | 1)
    return d


@case
def missing_data_pkl():
    return torch_zip(b"", prefix="archive").replace(b"archive/data.pkl", b"archive/data.pkX")


@case
def bad_zip64_locator():
    d = torch_file()
    loc = d.rindex(b"PK\x05\x06") - 20
    struct.pack_into("<Q", d, loc + 8, 5)
    return d


@case
def duplicate_entry():
    d = torch_file()
    return bytearray(bytes(d).replace(b"archive/data/1", b"archive/data/0"))


@case
def local_name_mismatch():
    d = torch_file()
    at = entry(d, "data/1")
    hdr = struct.unpack_from("<I", d, at + 42)[0]
    d[hdr + 30:hdr + 30 + len("archive/data/1")] = b"archive/data/9"
    return d


@case
def torchscript():
    import torch

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buf)
    return buf.getvalue()


@case
def big_endian():
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("archive/data.pkl", state_dict(("w", tensor())))
        f.writestr("archive/data/0", struct.pack(">3f", 1, 2, 3))
        f.writestr("archive/byteorder", b"big")
    return z.getvalue()


# --- pickle -------------------------------------------------------------------

CASES["unknown-opcode"] = pickle_case(b"\x80\x02}\xff.")
CASES["stack-underflow"] = pickle_case(b"\x80\x02R.")
CASES["memo-miss"] = pickle_case(b"\x80\x02}h\x05.")
CASES["no-stop"] = pickle_case(b"\x80\x02}(" + U("a") + I(1) + b"u")
CASES["huge-length"] = pickle_case(b"\x80\x02X\xf0\xff\xff\xffabc.")
CASES["bad-protocol"] = pickle_case(b"\x80\x09}.")
CASES["reduce-non-global"] = pickle_case(b"\x80\x02])R.")
CASES["setitems-odd"] = pickle_case(b"\x80\x02}(" + U("a") + b"u.")
CASES["build-on-list"] = pickle_case(b"\x80\x02]}b.")
CASES["absurd-nesting"] = pickle_case(b"\x80\x02" + b"]" * 1500 + b"a" * 1499 + b".")
CASES["bad-persistent-id"] = pickle_case(
    state_dict(("w", tensor(storage=tup(U("storage"), U("0")) + b"Q"))))
CASES["unknown-storage-type"] = pickle_case(state_dict(("w", tensor(storage=pid(stype="FooStorage")))))
CASES["missing-storage-record"] = pickle_case(state_dict(("w", tensor(storage=pid(key="9")))))
CASES["numel-record-mismatch"] = pickle_case(state_dict(("w", tensor(storage=pid(numel=5), size=(5,)))))
CASES["tensor-past-storage"] = pickle_case(state_dict(("w", tensor(size=(2, 3), stride=(3, 1)))))
CASES["negative-size"] = pickle_case(state_dict(("w", tensor(size=(-1,)))))
CASES["bad-rebuild-args"] = pickle_case(
    state_dict(("w", G("torch._utils", "_rebuild_tensor_v2") + tup(pid(), I(0)) + b"R")))


# --- legacy -------------------------------------------------------------------

def legacy_file():
    import torch

    return torch_file_legacy(torch)


def torch_file_legacy(torch):
    buf = io.BytesIO()
    torch.save({"w": torch.arange(4.0)}, buf, _use_new_zipfile_serialization=False)
    return bytearray(buf.getvalue())


@case
def legacy_truncated_storage():
    d = legacy_file()
    return d[:-6]


@case
def legacy_bad_version():
    d = legacy_file()
    # The second pickle is PROTO 2, BININT2 1001 (0x03e9), STOP.
    at = d.index(b"\x80\x02M\xe9\x03.")
    d[at + 3] = 0xE8
    return d


@case
def legacy_numel_mismatch():
    d = legacy_file()
    # The storage's element count precedes its 16 bytes at the end.
    struct.pack_into("<q", d, len(d) - 16 - 8, 5)
    return d


def main(argv):
    if argv[1:] == ["--list"]:
        print("\n".join(CASES))
        return 0
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    outdir, names = argv[1], argv[2:]
    if names == ["all"]:
        names = list(CASES)
    os.makedirs(outdir, exist_ok=True)
    for name in names:
        if name not in CASES:
            sys.stderr.write("unknown case %r; try --list\n" % name)
            return 2
        with open(os.path.join(outdir, name + ".pth"), "wb") as f:
            f.write(bytes(CASES[name]()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
