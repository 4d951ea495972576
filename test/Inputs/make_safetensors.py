#!/usr/bin/env python3
"""Writes safetensors files by hand (struct + json), good and bad.

There is no safetensors package here, and the bad files need exact control
over every byte anyway.

    make_safetensors.py KIND OUT      write one file
    make_safetensors.py --list        the kinds

Each bad kind breaks exactly one rule of the format.
"""
import json
import struct
import sys


def pack(header, data, pad=True, length=None):
    """u64 LE header length, header JSON (padded to 8), data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    n = len(text) if length is None else length
    return struct.pack("<Q", n) + text + data


def f32(*xs):
    return struct.pack("<%df" % len(xs), *xs)


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def good():
    # Header order is not data order: the reader lists tensors by offset.
    h = {
        "__metadata__": {"format": "pt", "note": "hand-written"},
        "z.bias": entry("F32", [2], 16, 24),
        "a.weight": entry("F32", [2, 2], 0, 16),
        "steps": entry("I64", [], 24, 32),
        "half": entry("F16", [2], 32, 36),
        "bf": entry("BF16", [2], 36, 40),
        "mask": entry("BOOL", [3], 40, 43),
        "empty": entry("U8", [0, 4], 43, 43),
        "bytes": entry("U8", [2], 43, 45),
        "i8": entry("I8", [1], 45, 46),
    }
    data = (f32(1, 2, 3, 4) + f32(0.5, -0.5) + struct.pack("<q", 1000)
            + struct.pack("<2e", 1.0, -2.0)
            + bytes.fromhex("803f" "0040")  # bf16 1.0, 2.0
            + bytes([1, 0, 1]) + bytes([7, 255]) + struct.pack("<b", -3))
    return pack(h, data)


def two_floats(h):
    return pack(h, f32(1, 2))


BAD = {
    # N > 100,000,000
    "header-too-large": lambda: struct.pack("<Q", 100_000_001) + b"{}",
    # 8 + N > file size
    "header-truncated": lambda: pack(b'{"a":{}}', b"", pad=False, length=64),
    "not-json": lambda: pack(b'{"a": {"dtype": "F32",', b""),
    "not-utf8": lambda: pack(b'{"\xff\xfe": 1}', b""),
    "not-object": lambda: pack(b"[1, 2, 3]", b""),
    "missing-dtype": lambda: two_floats(
        {"a": {"shape": [2], "data_offsets": [0, 8]}}),
    "missing-offsets": lambda: two_floats({"a": {"dtype": "F32", "shape": [2]}}),
    "unknown-dtype": lambda: two_floats({"a": entry("F12", [2], 0, 8)}),
    "negative-shape": lambda: two_floats({"a": entry("F32", [-2], 0, 8)}),
    "size-mismatch": lambda: two_floats({"a": entry("F32", [3], 0, 8)}),
    "shape-overflow": lambda: two_floats(
        {"a": entry("F64", [2**32, 2**32, 2**32], 0, 8)}),
    "gap": lambda: pack({"a": entry("F32", [1], 0, 4),
                         "b": entry("F32", [1], 8, 12)}, f32(1, 2, 3)),
    "overlap": lambda: two_floats({"a": entry("F32", [2], 0, 8),
                                   "b": entry("F32", [1], 4, 8)}),
    "not-from-zero": lambda: two_floats({"a": entry("F32", [1], 4, 8)}),
    "trailing-bytes": lambda: pack({"a": entry("F32", [1], 0, 4)},
                                   f32(1, 2)),
    "past-end": lambda: two_floats({"a": entry("F32", [4], 0, 16)}),
    "reversed-offsets": lambda: two_floats({"a": entry("F32", [0], 8, 0)}),
    "duplicate-name": lambda: pack(
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2)),
    "metadata-not-string": lambda: two_floats(
        {"__metadata__": {"epoch": 3}, "a": entry("F32", [2], 0, 8)}),
}

def raw(header_text, data=b""):
    """An exact header text (no padding added)."""
    return struct.pack("<Q", len(header_text)) + header_text + data


# Valid by the reference reader (SafeTensors::deserialize), each for one
# rule wopt once refused.
GOOD = {
    # JSON whitespace may pad the header on both sides.
    "leading-whitespace": lambda: raw(
        b'\t\n {"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} \r\n',
        f32(1.5)),
    "metadata-null": lambda: pack(
        b'{"__metadata__":null,"a":{"dtype":"F32","shape":[1],'
        b'"data_offsets":[0,4]}}', f32(2)),
    # Every dtype the reference knows that torch 1.13 lacks; the sub-byte
    # kinds hold whole bytes (4 x F4 = 2 bytes, 4 x F6 = 3 bytes).
    "new-dtypes": lambda: pack({
        "__metadata__": {"format": "pt"},
        "e8m0": entry("F8_E8M0", [2], 0, 2),
        "e4m3fnuz": entry("F8_E4M3FNUZ", [2], 2, 4),
        "e5m2fnuz": entry("F8_E5M2FNUZ", [2], 4, 6),
        "f4": entry("F4", [2, 2], 6, 8),
        "f6a": entry("F6_E2M3", [4], 8, 11),
        "f6b": entry("F6_E3M2", [8], 11, 17),
    }, bytes(range(0x70, 0x81))),
    # A zero in the shape makes the product 0, however large the rest.
    "huge-empty": lambda: pack({
        "e": entry("F32", [0, 9223372036854775807], 0, 0),
        "f": entry("I64", [0, 2**62, 4], 0, 0),
        "a": entry("F32", [1], 0, 4)}, f32(3)),
    "empty": lambda: pack({}, b""),
}

# Malformed files that once got the generic "not a checkpoint" message or
# no rule of their own.
BAD.update({
    "f4-odd": lambda: pack({"a": entry("F4", [3], 0, 2)}, b"\0\0"),
    "metadata-string": lambda: two_floats(
        {"__metadata__": "pt", "a": entry("F32", [2], 0, 8)}),
    "header-array": lambda: pack(b"[1, 2]", b""),
    "header-empty": lambda: struct.pack("<Q", 0) + b"",
    "header-space-only": lambda: raw(b"        "),
    "header-huge-brace": lambda: struct.pack("<Q", 0xffffff0000000010) +
    b'{"a":1}',
    "header-one-byte": lambda: raw(b"{"),
    "dim-past-int64": lambda: pack(
        {"e": entry("F32", [0, 18446744073709551615], 0, 0)}, b""),
    "short-file": lambda: b"\x10\x00\x00\x00\x00",
})

KINDS = {"good": good, **GOOD, **BAD}


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        print("\n".join(KINDS))
        return 0
    if len(argv) != 3 or argv[1] not in KINDS:
        sys.stderr.write("usage: make_safetensors.py KIND OUT (--list)\n")
        return 2
    with open(argv[2], "wb") as f:
        f.write(KINDS[argv[1]]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
