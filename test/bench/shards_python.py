#!/usr/bin/python3
"""The Python recipes the shard benchmark compares wopt with: what users run
today on a sharded .bin set (torch.load each shard, work, torch.save).

    shards_python.py merge   INDEX OUT.bin          one file
    shards_python.py reshard INDEX OUTDIR MAX       Hugging Face's split at MAX bytes
    shards_python.py rename  INDEX OUTDIR           strip "model." from every key,
                                                    shard by shard

There is no safetensors package on this machine, so the recipes write .bin
(torch.save) where wopt writes safetensors; the bytes written are the same
tensors either way.
"""
import collections
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Inputs"))
import make_shards  # noqa: E402  (Hugging Face's split rule)


def shards(index):
    folder = os.path.dirname(index)
    files = sorted(set(json.load(open(index))["weight_map"].values()))
    return [os.path.join(folder, f) for f in files]


def load_all(index):
    sd = collections.OrderedDict()
    for path in shards(index):
        sd.update(torch.load(path, weights_only=True))
    return sd


def write_set(sd, outdir, max_size, stem="pytorch_model", ext=".bin"):
    os.makedirs(outdir, exist_ok=True)
    names, parts, total = make_shards.split(sd, max_size, stem, ext)
    wm = {}
    for n in names:
        torch.save({k: sd[k] for k in parts[n]}, os.path.join(outdir, n))
        wm.update({k: n for k in parts[n]})
    make_shards.write_index(os.path.join(outdir, stem + ext + ".index.json"), wm, total)


def main(argv):
    cmd = argv[1]
    if cmd == "merge":
        torch.save(load_all(argv[2]), argv[3])
    elif cmd == "reshard":
        write_set(load_all(argv[2]), argv[3], int(argv[4]))
    elif cmd == "rename":
        index = json.load(open(argv[2]))
        os.makedirs(argv[3], exist_ok=True)
        wm = {}
        for path in shards(argv[2]):
            sd = torch.load(path, weights_only=True)
            out = collections.OrderedDict(
                (k[len("model."):] if k.startswith("model.") else k, v) for k, v in sd.items())
            name = os.path.basename(path)
            torch.save(out, os.path.join(argv[3], name))
            wm.update({k: name for k in out})
            del sd, out
        make_shards.write_index(os.path.join(argv[3], "pytorch_model.bin.index.json"), wm,
                                index["metadata"]["total_size"])
    else:
        sys.exit("usage: shards_python.py merge|reshard|rename ...")


if __name__ == "__main__":
    main(sys.argv)
