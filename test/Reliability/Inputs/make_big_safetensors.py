#!/usr/bin/env python3
"""Writes a safetensors file of one f32 tensor of N MiB (no torch needed).

    make_big_safetensors.py OUT MIB

The values are i * 0.5 for element i (mod 2^20), so a partial or shifted
copy cannot pass for the real one.
"""
import json
import struct
import sys


def main(out, mib):
    n = (int(mib) << 20) // 4
    header = json.dumps({"w": {"dtype": "F32", "shape": [n],
                               "data_offsets": [0, 4 * n]}}).encode()
    header += b" " * (-len(header) % 8)
    block = struct.pack("<%df" % (1 << 18), *[i * 0.5 for i in range(1 << 18)])
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        for _ in range(n // (1 << 18)):
            f.write(block)
        f.write(block[: 4 * (n % (1 << 18))])


if __name__ == "__main__":
    main(*sys.argv[1:])
