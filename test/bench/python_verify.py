#!/usr/bin/python3
"""Verify-only in Python: does a DINOv2 teacher checkpoint give the eval
backbone a manifest describes?  (What `wopt -pass-pipeline='dinov2-eval{manifest=M}'`
does without writing an output.)

    python_verify.py IN.pth MANIFEST.json      exit 0 match, 1 mismatch

torch.load the whole file (torch 1.13 has no lazy load), rename the keys as
python_recipe.py does, compare names, dtypes and shapes with the manifest.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python_recipe import eval_state_dict  # noqa: E402

DTYPES = {
    torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16",
    torch.float64: "f64", torch.int64: "i64", torch.int32: "i32",
    torch.int16: "i16", torch.int8: "i8", torch.uint8: "u8", torch.bool: "bool",
}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[2]) as f:
        want = {e["name"]: (e["dtype"], list(e["shape"])) for e in json.load(f)["entries"]}
    sd = eval_state_dict(torch.load(sys.argv[1], map_location="cpu"))
    have = {k: (DTYPES.get(v.dtype, str(v.dtype)), list(v.shape)) for k, v in sd.items()}
    bad = sorted("missing " + k for k in want.keys() - have.keys())
    bad += sorted("unexpected " + k for k in have.keys() - want.keys())
    bad += sorted("mismatch %s: %s vs %s" % (k, have[k], want[k])
                  for k in want.keys() & have.keys() if have[k] != want[k])
    for line in bad:
        print("python_verify: " + line, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
