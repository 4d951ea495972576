#!/usr/bin/env python3
"""Shard sets as Hugging Face writes them, good and bad, and the split rule.

    make_shards.py KIND DIR      write one set into DIR (created)
    make_shards.py split MAX SET print the split Hugging Face makes of the
                                 state dict that SET (a .pth) holds, with
                                 shard files named model-....safetensors

The rule is huggingface_hub's split_state_dict_into_shards_factory (which
transformers' save_pretrained uses), written again here from its
description: tensors in order; a storage is counted once, by its size, and
the other tensors on it join the first one's shard; a tensor above MAX gets
a shard of its own where it is met; a shard closes when the next tensor
would take it past MAX.

safetensors shards are written by hand (struct + json) as the reference
writer lays them out: data sorted by dtype alignment, then name; header
padded with spaces to a multiple of 8; "__metadata__": {"format": "pt"}.
"""
import collections
import json
import os
import struct
import sys

import torch

ST_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8",
            torch.bool: "BOOL", torch.float64: "F64"}
# The reference writer's order: by dtype, the widest first (its Dtype enum,
# reversed), then by name.
ST_RANK = ["BOOL", "U8", "I8", "I16", "F16", "BF16", "I32", "F32", "F64", "I64"]


def llama(layers=3, hidden=16, vocab=64, tied=True):
    """A small LLaMA-style state dict, keys as transformers names them."""
    torch.manual_seed(0)
    sd = collections.OrderedDict()
    sd["model.embed_tokens.weight"] = torch.randn(vocab, hidden)
    for i in range(layers):
        p = "model.layers.%d." % i
        for n in ["q_proj", "k_proj", "v_proj", "o_proj"]:
            sd[p + "self_attn.%s.weight" % n] = torch.randn(hidden, hidden)
        sd[p + "mlp.gate_proj.weight"] = torch.randn(2 * hidden, hidden)
        sd[p + "mlp.up_proj.weight"] = torch.randn(2 * hidden, hidden)
        sd[p + "mlp.down_proj.weight"] = torch.randn(hidden, 2 * hidden)
        sd[p + "input_layernorm.weight"] = torch.ones(hidden)
        sd[p + "post_attention_layernorm.weight"] = torch.ones(hidden).half()
    sd["model.norm.weight"] = torch.ones(hidden)
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"] if tied else \
        torch.randn(vocab, hidden)
    return sd


def storage_key(t):
    return t.storage().data_ptr()


def storage_bytes(t):
    return t.storage().size() * t.element_size()


def split(sd, max_size, stem, ext):
    """(files in order, {file: [keys]}, total_size) for a state dict."""
    return split_items([(k, storage_key(t), storage_bytes(t)) for k, t in sd.items()],
                       max_size, stem, ext)


def split_items(items, max_size, stem, ext):
    """The rule on (key, storage id, storage bytes) triples."""
    groups = collections.OrderedDict()
    shards, current, current_size, total = [], [], 0, 0
    for k, sid, size in items:
        if sid in groups:
            groups[sid].append(k)
            continue
        groups[sid] = [k]
        if size > max_size:
            total += size
            shards.append([k])
            continue
        if current_size + size > max_size:
            shards.append(current)
            current, current_size = [], 0
        current.append(k)
        current_size += size
        total += size
    if current:
        shards.append(current)
    for keys in groups.values():
        for s in shards:
            if keys[0] in s:
                s.extend(keys[1:])
                break
    n = len(shards)
    names = [stem + ext] if n == 1 else [
        "%s-%05d-of-%05d%s" % (stem, i + 1, n, ext) for i in range(n)]
    return names, dict(zip(names, shards)), total


def write_safetensors(path, tensors, metadata):
    items = sorted(tensors.items(),
                   key=lambda kv: (-ST_RANK.index(ST_DTYPE[kv[1].dtype]), kv[0]))
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for k, t in items:
        t = t.contiguous()
        b = t.view(torch.uint8).numpy().tobytes() if t.dim() else \
            t.reshape(1).view(torch.uint8).numpy().tobytes()
        header[k] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_index(path, weight_map, total, extra=None):
    meta = {"total_size": total}
    meta.update(extra or {})
    with open(path, "w") as f:
        f.write(json.dumps({"metadata": meta, "weight_map": weight_map},
                           indent=2, sort_keys=True) + "\n")


def hf_bin(d, max_size=8000):
    """pytorch_model-*.bin as transformers' save_pretrained (torch.save of
    each shard's dict; tied tensors in one shard share a storage). full.pth
    is the state dict in the set's order."""
    sd = llama()
    names, shards, total = split(sd, max_size, "pytorch_model", ".bin")
    wm = {}
    for name in names:
        torch.save({k: sd[k] for k in shards[name]}, os.path.join(d, name))
        wm.update({k: name for k in shards[name]})
    write_index(os.path.join(d, "pytorch_model.bin.index.json"), wm, total)
    # The set's order: shard by shard (ties sit in their first's shard).
    torch.save(collections.OrderedDict(
        (k, sd[k]) for n in names for k in shards[n]),
        os.path.join(d, "full.pth"))


def hf_st(d, max_size=8000):
    """model-*.safetensors as huggingface_hub's save_torch_state_dict: the
    tied name dropped before the split, recorded in the index metadata.
    full.pth is the state dict in the order wopt reads the set back."""
    sd = llama()
    full = collections.OrderedDict(sd)
    del sd["lm_head.weight"]
    names, shards, total = split(sd, max_size, "model", ".safetensors")
    wm = {}
    for name in names:
        write_safetensors(os.path.join(d, name),
                          {k: sd[k] for k in shards[name]}, {"format": "pt"})
        wm.update({k: name for k in shards[name]})
    write_index(os.path.join(d, "model.safetensors.index.json"), wm, total,
                {"lm_head.weight": "model.embed_tokens.weight"})
    # The set's order, each shard in its data order (the reference writer's
    # header order), then the restored tie.
    order = [k for n in names for k in sorted(
        shards[n], key=lambda k: (-ST_RANK.index(ST_DTYPE[sd[k].dtype]), k))]
    torch.save(collections.OrderedDict(
        [(k, full[k]) for k in order] + [("lm_head.weight", full["lm_head.weight"])]),
        os.path.join(d, "full.pth"))


def edit_index(d, name, fn):
    p = os.path.join(d, name)
    idx = json.load(open(p))
    fn(idx)
    with open(p, "w") as f:
        json.dump(idx, f, indent=2, sort_keys=True)


BIN_INDEX = "pytorch_model.bin.index.json"


def shard_of(d, key):
    return json.load(open(os.path.join(d, BIN_INDEX)))["weight_map"][key]


def bad_missing_file(d):
    hf_bin(d)
    os.remove(os.path.join(d, shard_of(d, "model.layers.1.mlp.up_proj.weight")))


def bad_wrong_shard(d):
    hf_bin(d)
    first = shard_of(d, "model.embed_tokens.weight")
    edit_index(d, BIN_INDEX,
               lambda i: i["weight_map"].update({"model.norm.weight": first}))


def bad_two_shards(d):
    hf_bin(d)
    # The first shard also holds model.norm.weight (the map puts it last).
    p = os.path.join(d, shard_of(d, "model.embed_tokens.weight"))
    s = torch.load(p)
    s["model.norm.weight"] = torch.ones(16)
    torch.save(s, p)


def bad_unlisted(d):
    hf_bin(d)
    edit_index(d, BIN_INDEX,
               lambda i: i["weight_map"].pop("model.layers.1.self_attn.k_proj.weight"))


def bad_not_held(d):
    hf_bin(d)
    third = shard_of(d, "model.layers.1.self_attn.k_proj.weight")
    edit_index(d, BIN_INDEX, lambda i: i["weight_map"].update(
        {"model.layers.9.mlp.up_proj.weight": third}))


def bad_total_size(d):
    hf_bin(d)
    edit_index(d, BIN_INDEX,
               lambda i: i["metadata"].update({"total_size": 12345}))


def bad_escape(d):
    hf_bin(d)
    last = shard_of(d, "model.norm.weight")
    edit_index(d, BIN_INDEX, lambda i: i["weight_map"].update(
        {"model.norm.weight": "../" + last}))


KINDS = {"hf-bin": hf_bin, "hf-st": hf_st, "bad-missing-file": bad_missing_file,
         "bad-wrong-shard": bad_wrong_shard, "bad-two-shards": bad_two_shards,
         "bad-unlisted": bad_unlisted, "bad-not-held": bad_not_held,
         "bad-total-size": bad_total_size, "bad-escape": bad_escape}


def main(argv):
    if len(argv) == 4 and argv[1] == "split":
        sd = torch.load(argv[3], weights_only=True)
        names, shards, total = split(sd, int(argv[2]), "model", ".safetensors")
        print("total_size", total)
        for n in names:
            print(n, " ".join(shards[n]))
        return 0
    if len(argv) != 3 or argv[1] not in KINDS:
        sys.stderr.write("usage: make_shards.py KIND DIR | split MAX SET.pth\n"
                         "kinds: %s\n" % " ".join(KINDS))
        return 2
    os.makedirs(argv[2], exist_ok=True)
    KINDS[argv[1]](argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
