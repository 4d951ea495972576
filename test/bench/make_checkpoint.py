#!/usr/bin/python3
"""Write a synthetic DINOv2 teacher checkpoint, shaped like the real training output.

    make_checkpoint.py --size {tiny,vitb,vitl,vitg} OUT.pth [--manifest OUT.json]

The file is what DINOv2's training code saves for the teacher with
block_chunks=4: {'teacher': OrderedDict(backbone.*, dino_head.*, ibot_head.*),
'iteration': N}.  The OrderedDict carries a `_metadata` attribute like a real
`state_dict()`.  Blocks live in chunks: chunk c holds global blocks
[c*k, (c+1)*k) with k = depth / 4, so the key is `backbone.blocks.<c>.<g>.*`
(g is the *global* block index).  vitl/vitb use a plain MLP (mlp.fc1, mlp.fc2);
vitg uses DINOv2's fused SwiGLU (mlp.w12, mlp.w3, hidden 4096 from ratio 4).
Heads are DINOv2's defaults: 3-layer MLP 2048 -> 256, weight-normed last layer
with 65536 prototypes (tiny sizes shrink everything).

No model is built: every tensor is made directly (random, fixed seed), so the
1.4 GB default file takes seconds.  --manifest also writes the wopt manifest
(format "wopt-manifest" v1) of the eval backbone that dinov2-eval must produce.
"""
import argparse
import collections
import json
import os
import sys

import torch

# name: (depth, width, mlp kind, mlp hidden, patch, pos tokens, head hidden, bottleneck, prototypes)
SIZES = {
    "tiny": (8, 32, "mlp", 128, 14, 1 + 4 * 4, 64, 16, 128),
    "vitb": (12, 768, "mlp", 3072, 14, 1 + 37 * 37, 2048, 256, 65536),
    "vitl": (24, 1024, "mlp", 4096, 14, 1 + 37 * 37, 2048, 256, 65536),
    "vitg": (40, 1536, "swiglu", 4096, 14, 1 + 37 * 37, 2048, 256, 65536),
}
BLOCK_CHUNKS = 4
ITERATION = 124999


def backbone_entries(size):
    """(name, shape) of the eval backbone, in state_dict order, with block
    names as `blocks.<g>.` and a callable giving the chunk index of block g."""
    depth, d, kind, hidden, patch, tokens, _, _, _ = SIZES[size]
    out = [
        ("cls_token", (1, 1, d)),
        ("pos_embed", (1, tokens, d)),
        ("mask_token", (1, d)),
        ("patch_embed.proj.weight", (d, 3, patch, patch)),
        ("patch_embed.proj.bias", (d,)),
    ]
    for g in range(depth):
        b = "blocks.%d." % g
        out += [
            (b + "norm1.weight", (d,)),
            (b + "norm1.bias", (d,)),
            (b + "attn.qkv.weight", (3 * d, d)),
            (b + "attn.qkv.bias", (3 * d,)),
            (b + "attn.proj.weight", (d, d)),
            (b + "attn.proj.bias", (d,)),
            (b + "ls1.gamma", (d,)),
            (b + "norm2.weight", (d,)),
            (b + "norm2.bias", (d,)),
        ]
        if kind == "mlp":
            out += [
                (b + "mlp.fc1.weight", (hidden, d)),
                (b + "mlp.fc1.bias", (hidden,)),
                (b + "mlp.fc2.weight", (d, hidden)),
                (b + "mlp.fc2.bias", (d,)),
            ]
        else:
            out += [
                (b + "mlp.w12.weight", (2 * hidden, d)),
                (b + "mlp.w12.bias", (2 * hidden,)),
                (b + "mlp.w3.weight", (d, hidden)),
                (b + "mlp.w3.bias", (d,)),
            ]
        out.append((b + "ls2.gamma", (d,)))
    out += [("norm.weight", (d,)), ("norm.bias", (d,))]
    return out


def head_entries(prefix, size):
    _, d, _, _, _, _, hid, bottleneck, protos = SIZES[size]
    return [
        (prefix + "mlp.0.weight", (hid, d)),
        (prefix + "mlp.0.bias", (hid,)),
        (prefix + "mlp.2.weight", (hid, hid)),
        (prefix + "mlp.2.bias", (hid,)),
        (prefix + "mlp.4.weight", (bottleneck, hid)),
        (prefix + "mlp.4.bias", (bottleneck,)),
        (prefix + "last_layer.weight_g", (protos, 1)),
        (prefix + "last_layer.weight_v", (protos, bottleneck)),
    ]


def chunked(name, depth):
    """blocks.<g>.rest -> blocks.<c>.<g>.rest as BlockChunk writes it."""
    if not name.startswith("blocks."):
        return name
    g = int(name.split(".")[1])
    c = g // (depth // BLOCK_CHUNKS)
    return "blocks.%d.%s" % (c, name[len("blocks."):])


def module_metadata(names):
    """The `_metadata` of a state_dict(): one {'version': 1} per module path."""
    meta = collections.OrderedDict([("", {"version": 1})])
    for n in names:
        parts = n.split(".")[:-1]
        for i in range(1, len(parts) + 1):
            meta.setdefault(".".join(parts[:i]), {"version": 1})
    return meta


def teacher_state_dict(size):
    depth = SIZES[size][0]
    entries = [("backbone." + chunked(n, depth), s) for n, s in backbone_entries(size)]
    entries += head_entries("dino_head.", size) + head_entries("ibot_head.", size)
    gen = torch.Generator().manual_seed(0)
    sd = collections.OrderedDict()
    for name, shape in entries:
        t = torch.empty(shape, dtype=torch.float32)
        t.normal_(0.0, 0.02, generator=gen)
        sd[name] = t
    sd._metadata = module_metadata(sd.keys())
    return sd


def manifest(size):
    return {
        "format": "wopt-manifest",
        "version": 1,
        "source": "test/bench/make_checkpoint.py --size %s (eval backbone)" % size,
        "entries": [
            {"name": n, "dtype": "f32", "shape": list(s)} for n, s in backbone_entries(size)
        ],
    }


def write_manifest(m, f):
    """JSON with one entry per line (readable, diffable)."""
    f.write('{"format": "%s", "version": %d, "source": %s, "entries": [\n'
            % (m["format"], m["version"], json.dumps(m["source"])))
    f.write(",\n".join("  " + json.dumps(e) for e in m["entries"]))
    f.write("\n]}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="vitl")
    ap.add_argument("--manifest", help="also write the eval backbone manifest here")
    ap.add_argument("out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ckpt = {"teacher": teacher_state_dict(args.size), "iteration": ITERATION}
    # torch.save names the zip's folder after the file's stem: write to a
    # temporary name with the same stem, so the archive is a direct save.
    tmp = os.path.splitext(args.out)[0] + ".partial"
    torch.save(ckpt, tmp)
    os.replace(tmp, args.out)
    if args.manifest:
        with open(args.manifest, "w") as f:
            write_manifest(manifest(args.size), f)
    n = sum(t.numel() for t in ckpt["teacher"].values())
    print("%s: %s, %d tensors, %.1f M parameters, %d bytes"
          % (args.out, args.size, len(ckpt["teacher"]), n / 1e6, os.path.getsize(args.out)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
