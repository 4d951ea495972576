"""Fixtures for the manifest end-to-end tests, made with real PyTorch.

usage: make_manifest_cases.py OUTDIR CASE

  gdino    gdino.pth: a Grounding-DINO-shaped state dict (small dims) with the
           keys MMDetection's converted checkpoints really carry: the BERT
           pooler and embeddings.position_ids extra, cls_branches.<k>.log_scale
           (k = 0..6) and dn_query_generator.label_embedding.weight missing.
           gdino-manifest.json: what the target model wants, written by the
           recipe in docs/Formats.md (a live state dict -> manifest).
  dinov2   dinov2-chunked.pth: {'teacher': ...} with BlockChunk keys
           backbone.blocks.<c>.<g>.*; dinov2-eval.json: the eval layout
           (blocks.<g>.*), from the same recipe; the same target as
           checkpoints: dinov2-eval.pth (the state dict), dinov2-eval-wrapped.pth
           ({'model': sd, 'epoch': 3}).
  wide     wide.pth: a 119-tensor ConvNeXt-shaped state dict with BatchNorm
           (stages.<s>.<b>.{depthwise_conv,norm}.*, num_batches_tracked), the
           checkpoint the manifest-slow findings were checked against.
"""
import json
import sys

import torch


def manifest_of(state_dict):
    # The recipe of docs/Formats.md, "Manifest" (keep the two in step).
    entries = [{"name": k, "dtype": str(v.dtype).replace("torch.", ""),
                "shape": list(v.shape)} for k, v in state_dict.items()]
    return {"format": "wopt-manifest", "version": 1, "entries": entries}


def write_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


def gdino_common(d):
    sd = {}
    sd["backbone.patch_embed.projection.weight"] = torch.randn(d, 3, 4, 4)
    sd["backbone.patch_embed.projection.bias"] = torch.randn(d)
    bert = "language_model.language_backbone.body.model."
    sd[bert + "embeddings.word_embeddings.weight"] = torch.randn(30, d)
    sd[bert + "encoder.layer.0.attention.self.query.weight"] = torch.randn(d, d)
    for k in range(7):
        sd["bbox_head.cls_branches.%d.bias" % k] = torch.zeros(1)
    sd["bbox_head.reg_branches.0.0.weight"] = torch.randn(d, d)
    return sd


def gdino(outdir):
    d = 8
    ckpt = gdino_common(d)
    bert = "language_model.language_backbone.body.model."
    ckpt[bert + "embeddings.position_ids"] = torch.arange(16).expand(1, -1).clone()
    ckpt[bert + "pooler.dense.weight"] = torch.randn(d, d)
    ckpt[bert + "pooler.dense.bias"] = torch.randn(d)
    torch.save({"state_dict": ckpt, "meta": {"epoch": 12}}, outdir + "/gdino-wrapped.pth")
    torch.save(ckpt, outdir + "/gdino.pth")

    target = gdino_common(d)
    for k in range(7):
        target["bbox_head.cls_branches.%d.log_scale" % k] = torch.zeros(1)
    target["dn_query_generator.label_embedding.weight"] = torch.randn(5, d)
    write_json(manifest_of(target), outdir + "/gdino-manifest.json")


def dinov2(outdir):
    depth, chunks, d = 4, 2, 8
    per = depth // chunks
    teacher, target = {}, {}
    for name, t in [("cls_token", torch.randn(1, 1, d)),
                    ("pos_embed", torch.randn(1, 5, d)),
                    ("patch_embed.proj.weight", torch.randn(d, 3, 2, 2))]:
        teacher["backbone." + name] = t
        target[name] = t
    for g in range(depth):
        for p, shape in [("norm1.weight", (d,)), ("attn.qkv.weight", (3 * d, d)),
                         ("mlp.fc1.weight", (2 * d, d))]:
            t = torch.randn(*shape)
            teacher["backbone.blocks.%d.%d.%s" % (g // per, g, p)] = t
            target["blocks.%d.%s" % (g, p)] = t
    teacher["dino_head.last_layer.weight"] = torch.randn(4, d)
    torch.save({"teacher": teacher}, outdir + "/dinov2-chunked.pth")
    write_json(manifest_of(target), outdir + "/dinov2-eval.json")
    torch.save(target, outdir + "/dinov2-eval.pth")
    torch.save({"model": target, "epoch": 3}, outdir + "/dinov2-eval-wrapped.pth")



def wide(outdir):
    sd = {}
    block = 0
    while len(sd) < 119:
        p = "stages.%d.%d." % divmod(block, 3)
        sd[p + "depthwise_conv.weight"] = torch.randn(4, 1, 7, 7)
        sd[p + "depthwise_conv.bias"] = torch.randn(4)
        sd[p + "norm.weight"] = torch.randn(4)
        sd[p + "norm.running_var"] = torch.rand(4)
        sd[p + "norm.num_batches_tracked"] = torch.tensor(7)
        block += 1
    keys = list(sd)[:119]
    torch.save({k: sd[k] for k in keys}, outdir + "/wide.pth")


if __name__ == "__main__":
    outdir, case = sys.argv[1], sys.argv[2]
    {"gdino": gdino, "dinov2": dinov2, "wide": wide}[case](outdir)
