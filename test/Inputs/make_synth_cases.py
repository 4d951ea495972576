"""Targets and wrapped checkpoints for the synthesis tests (wopt -target=
without a pipeline), made with real PyTorch.

usage: make_synth_cases.py OUTDIR CASE
       make_synth_cases.py OUTDIR check-CASE OUT

  targets   The state dicts of the models the real-world fixtures must load
            into (the reference models of make_cases.py and
            make_clip_cases.py, freshly built): dinov2-target.pth (eval ViT,
            block_chunks=0), swin-target.pth (timm >= 0.9),
            mmengine-target.pth (the ConvNeXt-V2 backbone),
            openclip-target.pth, mmpretrain-target.pth.
  wrappers  The text encoder of make_target_cases.py as the wrappers save
            it: orig-mod.pth (torch.compile's _orig_mod.), lightning.pth
            (PyTorch Lightning: {'state_dict': model.*, 'optimizer_states',
            ...}), averaged.pth (torch.optim.swa_utils.AveragedModel, the
            EMA wrapper: module.* and n_averaged), timm-ema.pth (timm's
            train.py: {'state_dict', 'state_dict_ema', ...}); wrap-target.pth
            the model's own state dict, wrap-weights.pth the weights each
            must give.
  fp16      fp16.pth: the encoder's state dict in half precision; the model
            (wrap-target.pth) is fp32.
  ambiguous two.pth: {'teacher': sd, 'student': sd2}, both the model's
            layout: no rule picks one.
  mismatch  narrow.pth: a DDP checkpoint whose projection is 8x8 where the
            model (wrap-target.pth) has 4x8: no pass can fix that.
  big       big.pth (5000 tensors under module., chunked blocks and derived
            buffers) and big-target.json, for the timing in docs.

  check-wrap OUT     OUT loads strict into the encoder and equals
                     wrap-weights.pth bit for bit.
  check-fp16 OUT     OUT loads strict, every float is f32 and equals the
                     fp16 value widened (what torch's .float() gives).
"""
import json
import os
import sys

import torch
import torch.nn as nn

import make_cases
import make_clip_cases
from make_cases import load_plain, randomize
from make_target_cases import TextEncoder


def save(obj, d, name):
    torch.save(obj, os.path.join(d, name))


def targets(d):
    torch.manual_seed(0)
    save(make_cases.DinoVisionTransformer(block_chunks=0).state_dict(), d,
         "dinov2-target.pth")
    save(make_cases.Swin(timm=True).state_dict(), d, "swin-target.pth")
    save(make_cases.ConvNeXtBackbone().state_dict(), d, "mmengine-target.pth")
    save(make_clip_cases.OpenCLIP().state_dict(), d, "openclip-target.pth")
    save(make_clip_cases.ImageClassifier().state_dict(), d,
         "mmpretrain-target.pth")


def encoder(seed):
    torch.manual_seed(0)
    m = TextEncoder()
    randomize(m, seed)
    return m


def wrappers(d):
    m = encoder(21)
    save(m.state_dict(), d, "wrap-target.pth")
    opt = torch.optim.Adam(m.parameters())
    m.proj(torch.randn(2, 8)).sum().backward()
    opt.step()
    sd = m.state_dict()
    save(sd, d, "wrap-weights.pth")
    save({"_orig_mod." + k: v for k, v in sd.items()}, d, "orig-mod.pth")
    save({"epoch": 3, "global_step": 300, "pytorch-lightning_version": "2.1.0",
          "state_dict": {"model." + k: v for k, v in sd.items()},
          "optimizer_states": [opt.state_dict()], "lr_schedulers": [],
          "callbacks": {}}, d, "lightning.pth")
    ema = torch.optim.swa_utils.AveragedModel(m)
    ema.update_parameters(m)
    save(ema.state_dict(), d, "averaged.pth")
    other = encoder(22)
    save({"epoch": 3, "arch": "text_encoder", "state_dict": sd,
          "state_dict_ema": other.state_dict(), "optimizer": opt.state_dict(),
          "version": 2}, d, "timm-ema.pth")


def fp16(d):
    m = encoder(23)
    save(m.state_dict(), d, "wrap-target.pth")
    save({k: v.half() if v.is_floating_point() else v
          for k, v in m.state_dict().items()}, d, "fp16.pth")


def ambiguous(d):
    save(encoder(24).state_dict(), d, "wrap-target.pth")
    save({"teacher": encoder(25).state_dict(),
          "student": encoder(26).state_dict()}, d, "two.pth")


def mismatch(d):
    m = encoder(27)
    save(m.state_dict(), d, "wrap-target.pth")
    m.proj = nn.Linear(8, 4)
    save({"module." + k: v for k, v in m.state_dict().items()}, d,
         "narrow.pth")


def big(d):
    """A ViT-shaped state dict of 5000 tensors: DDP's module., DINOv2's
    chunked blocks, derived buffers; the target is the flat eval layout."""
    sd, target = {}, []
    per_block = ["norm1.weight", "norm1.bias", "attn.qkv.weight",
                 "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
                 "norm2.weight", "norm2.bias", "mlp.fc1.weight",
                 "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"]
    blocks, chunks = 400, 4
    chunk = blocks // chunks
    # One tensor per key: a tensor object shared by many keys is one node
    # in wopt's IR, which is not what this measures.
    for g in range(blocks):
        for name in per_block:
            sd["module.blocks.%d.%d.%s" % (g // chunk, g, name)] = torch.zeros(1)
            target.append({"name": "blocks.%d.%s" % (g, name), "dtype": "float32",
                           "shape": [1]})
    for g in range(blocks):
        if len(sd) >= 5000:
            break
        sd["module.blocks.%d.%d.attn.relative_position_index" % (g // chunk, g)] = \
            torch.zeros(1, dtype=torch.long)
    save(sd, d, "big.pth")
    with open(os.path.join(d, "big-target.json"), "w") as f:
        json.dump({"format": "wopt-manifest", "version": 1, "entries": target}, f)
    print("big: %d tensors, target %d" % (len(sd), len(target)))


def check_wrap(d, out):
    sd = load_plain(out)
    m = TextEncoder()
    m.load_state_dict(sd, strict=True)
    want = load_plain(os.path.join(d, "wrap-weights.pth"))
    same = list(sd) == list(want) and all(
        sd[k].dtype == want[k].dtype and torch.equal(sd[k], want[k]) for k in want)
    print("strict load: ok; same keys and values: %s" % same)


def check_fp16(d, out):
    sd = load_plain(out)
    TextEncoder().load_state_dict(sd, strict=True)
    half = load_plain(os.path.join(d, "fp16.pth"))
    floats = [k for k in half if half[k].is_floating_point()]
    ok = all(sd[k].dtype == torch.float32 and torch.equal(sd[k], half[k].float())
             for k in floats)
    print("strict load: ok; %d tensors f32 and equal to .float(): %s"
          % (len(floats), ok))


if __name__ == "__main__":
    outdir, case = sys.argv[1], sys.argv[2]
    makers = {"targets": targets, "wrappers": wrappers, "fp16": fp16,
              "ambiguous": ambiguous, "mismatch": mismatch, "big": big}
    checks = {"check-wrap": check_wrap, "check-fp16": check_fp16}
    if case in makers:
        makers[case](outdir)
    else:
        checks[case](outdir, sys.argv[3])
