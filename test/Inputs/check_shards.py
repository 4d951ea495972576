#!/usr/bin/python3
"""Checks a shard set wopt wrote against the state dict it came from.

    check_shards.py INDEX REFERENCE.pth MAX_SHARD_SIZE

- The split is recomputed here with Hugging Face's rule (make_shards.split)
  from REFERENCE: the same shard files, each holding the same keys in the
  same order (safetensors: the header's order).
- The index is byte for byte what transformers writes for that split:
  json.dumps({"metadata": {"total_size": ..., <tied name>: <kept>},
  "weight_map": {...}}, indent=2, sort_keys=True) + "\\n". In safetensors
  sets a tied name is not in the weight map; its record is in the metadata
  (as huggingface_hub writes it) and in its shard's __metadata__.
- Every shard loads: torch shards with torch.load(weights_only=True) (record
  folder = the file's stem), safetensors shards by hand with the reference
  reader's rules; every tensor equals REFERENCE's bit for bit.

Prints "set OK: <n> shards, <m> tensors" or fails naming the difference.
"""
import collections
import json
import os
import struct
import sys
import zipfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
import make_shards  # noqa: E402

NP = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
      "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8,
      "BOOL": torch.bool, "F64": torch.float64}


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0, path
    header = json.loads(raw[8:8 + n], object_pairs_hook=collections.OrderedDict)
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    end = 0
    for k in sorted(header, key=lambda k: header[k]["data_offsets"]):
        b, e = header[k]["data_offsets"]
        assert b == end, (path, k)
        end = e
    assert end == len(data), path
    out = collections.OrderedDict()
    for k, e in header.items():
        b, t = e["data_offsets"]
        dt = NP[e["dtype"]]
        assert (8 + n + b) % torch.empty(0, dtype=dt).element_size() == 0
        out[k] = torch.frombuffer(bytearray(data[b:t]) or bytearray(1),
                                  dtype=dt)[:max(0, (t - b) // torch.empty(0, dtype=dt).element_size())].reshape(e["shape"])
    return out, meta


def main(argv):
    index_path, ref_path, max_size = argv[1], argv[2], int(argv[3])
    folder = os.path.dirname(index_path)
    name = os.path.basename(index_path)[:-len(".index.json")]
    stem, ext = os.path.splitext(name)
    ref = torch.load(ref_path, weights_only=True)
    names, shards, total = make_shards.split(ref, max_size, stem, ext)
    aliases, weight_map = {}, {}
    for n in names:
        seen = {}
        for k in shards[n]:
            t = ref[k]
            view = (t.storage().data_ptr(), t.storage_offset(), tuple(t.shape),
                    tuple(t.stride()), t.dtype)
            if ext == ".safetensors" and view in seen:
                aliases[k] = seen[view]
            else:
                seen.setdefault(view, k)
                weight_map[k] = n
    meta = {"total_size": total}
    meta.update(aliases)
    want = json.dumps({"metadata": meta, "weight_map": weight_map}, indent=2,
                      sort_keys=True) + "\n"
    got = open(index_path).read()
    if got != want:
        sys.exit("index differs from transformers' spelling:\n--- want\n%s--- got\n%s"
                 % (want, got))
    count = 0
    for n in names:
        path = os.path.join(folder, n)
        keys = [k for k in shards[n] if k not in aliases]
        if ext == ".safetensors":
            tensors, fmeta = read_safetensors(path)
            assert fmeta.get("format") == "pt", (n, fmeta)
            for a, kept in aliases.items():
                if weight_map[kept] == n:
                    assert fmeta.get(a) == kept, (n, a)
        else:
            with zipfile.ZipFile(path) as z:
                assert z.namelist()[0] == os.path.splitext(n)[0] + "/data.pkl"
            tensors = torch.load(path, weights_only=True)
        if list(tensors) != keys:
            sys.exit("%s: keys %s, want %s" % (n, list(tensors), keys))
        for k in keys:
            a, b = ref[k], tensors[k]
            assert a.dtype == b.dtype and a.shape == b.shape, k
            assert torch.equal(a, b) or (a.numel() == 0), k
            count += 1
    print("set OK: %d shards, %d tensors" % (len(names), count))


if __name__ == "__main__":
    main(sys.argv)
