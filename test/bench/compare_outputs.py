#!/usr/bin/python3
"""Are two state dict files tensor-identical?  Keeps the race fair: wopt's
output must be exactly what the Python recipe writes.

    compare_outputs.py A.pth B.pth      exit 0 identical, 1 different

Loads both with torch; the tensor entries must have the same names (same
order), dtype, shape, and every byte equal.  Non-tensor entries (none in a
state dict) and a `_metadata` attribute are not compared.
"""
import sys

import torch


def tensors(path):
    obj = torch.load(path, map_location="cpu")
    if not isinstance(obj, dict):
        sys.exit("compare_outputs: %s: root is %s, not a dict" % (path, type(obj).__name__))
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def same_bits(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    # Compare bytes, not values: NaN payloads and -0.0 count.
    a, b = a.contiguous().reshape(-1), b.contiguous().reshape(-1)
    return torch.equal(a.view(torch.uint8), b.view(torch.uint8))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
    problems = []
    if list(a) != list(b):
        only_a, only_b = a.keys() - b.keys(), b.keys() - a.keys()
        for k in sorted(only_a)[:10]:
            problems.append("only in %s: %s" % (sys.argv[1], k))
        for k in sorted(only_b)[:10]:
            problems.append("only in %s: %s" % (sys.argv[2], k))
        if not only_a and not only_b:
            problems.append("same keys in a different order")
    for k in a.keys() & b.keys():
        if not same_bits(a[k], b[k]):
            problems.append("tensor %s differs (%s %s vs %s %s)" % (
                k, a[k].dtype, tuple(a[k].shape), b[k].dtype, tuple(b[k].shape)))
    for p in sorted(problems):
        print("compare_outputs: " + p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print("compare_outputs: identical: %d tensors, %d bytes" % (
        len(a), sum(t.numel() * t.element_size() for t in a.values())))


if __name__ == "__main__":
    main()
