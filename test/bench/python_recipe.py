#!/usr/bin/python3
"""The Python recipe users run today to turn a DINOv2 teacher checkpoint into
an eval backbone (what `wopt -pass-pipeline=dinov2-eval` replaces).

    python_recipe.py IN.pth OUT.pth

torch.load everything; take 'teacher'; strip `module.`; keep only `backbone.`
and strip it; flatten block chunks correctly (`blocks.<c>.<g>.` -> `blocks.<g>.`,
not the folk `.replace(".0.", ".")`); torch.save.  The heads are dropped.
"""
import re
import sys

import torch

CHUNKED = re.compile(r"^blocks\.(\d+)\.(\d+)\.")


def eval_state_dict(ckpt):
    """The eval backbone state dict of a loaded DINOv2 checkpoint."""
    sd = ckpt["teacher"] if "teacher" in ckpt else ckpt
    out = {}
    for key, value in sd.items():
        if key.startswith("module."):
            key = key[len("module."):]
        if not key.startswith("backbone."):
            continue
        key = CHUNKED.sub(r"blocks.\2.", key[len("backbone."):])
        if key in out:
            sys.exit("python_recipe: duplicate key after renaming: " + key)
        out[key] = value
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ckpt = torch.load(sys.argv[1], map_location="cpu")
    torch.save(eval_state_dict(ckpt), sys.argv[2])


if __name__ == "__main__":
    main()
