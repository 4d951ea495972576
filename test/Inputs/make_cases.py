#!/usr/bin/env python3
"""Checkpoints shaped like the real-world cases of CASES.md, and the checks
that load wopt's repaired output into the target model with real PyTorch.

    make_cases.py dinov2 DIR            DIR/dinov2_train.pth (+ input, reference)
    make_cases.py check-dinov2 DIR OUT  OUT loads strict into the eval model
    make_cases.py swin DIR              DIR/swin_original.pth (original layout)
    make_cases.py check-swin DIR OUT    OUT loads strict into a timm>=0.9 model
    make_cases.py check-mmdet-swin DIR OUT  OUT equals mmdet's swin_converter
    make_cases.py mmengine DIR          DIR/mmengine_ckpt.pth (DDP keys, framework objects)
    make_cases.py check-mmengine DIR OUT

Every model is small and seeded, so a check rebuilds the reference model
from the same seed instead of trusting anything wopt wrote. Checks load with
torch.load(weights_only=True): the output must be plain tensors.
"""
import math
import os
import pickle
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.use_deterministic_algorithms(True)


def load_plain(path):
    # weights_only exists from torch 1.13 on.
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:
        return torch.load(path, map_location="cpu")


def report_strict(model, sd):
    result = model.load_state_dict(sd, strict=True)
    print("strict load: ok (missing %d, unexpected %d)"
          % (len(result.missing_keys), len(result.unexpected_keys)))


def compare(name, ref, out):
    diff = (ref - out).abs().max().item()
    print("%s: max abs diff %g" % (name, diff))
    if not torch.equal(ref, out):
        sys.exit("%s: outputs differ" % name)


# --------------------------------------------------------------------------
# DINOv2: a minimal ViT whose key names match dinov2/models/vision_transformer.py
# --------------------------------------------------------------------------

class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(1e-1 * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        x = (a.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)
        self.ls2 = LayerScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class BlockChunk(nn.ModuleList):
    def forward(self, x):
        for b in self:
            x = b(x)
        return x


class DinoVisionTransformer(nn.Module):
    def __init__(self, depth=10, dim=16, heads=2, patch=4, img=16,
                 block_chunks=0):
        super().__init__()
        n = (img // patch) ** 2
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        blocks = [Block(dim, heads) for _ in range(depth)]
        if block_chunks > 0:
            # As DINOv2 does it: Identity placeholders keep the global index.
            chunks = []
            size = depth // block_chunks
            for i in range(0, depth, size):
                chunks.append([nn.Identity()] * i + blocks[i:i + size])
            self.blocks = nn.ModuleList([BlockChunk(c) for c in chunks])
        else:
            self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Identity()
        self.mask_token = nn.Parameter(torch.zeros(1, dim))

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        x = x + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.norm(x)[:, 0]


class DinoHead(nn.Module):
    def __init__(self, dim, out):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, 32), nn.GELU(), nn.Linear(32, 8))
        self.last_layer = nn.utils.weight_norm(nn.Linear(8, out, bias=False))


class SSLMetaArch(nn.Module):
    """The teacher/student dicts of DINOv2 training: backbone + heads."""

    def __init__(self, block_chunks):
        super().__init__()
        self.backbone = DinoVisionTransformer(block_chunks=block_chunks)
        self.dino_head = DinoHead(16, 64)
        self.ibot_head = DinoHead(16, 64)


def randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


DINOV2_CHUNKS = 3  # depth 10 // 3 = 3: chunks of 3, 3, 3 and 1 (4 chunks)


def make_dinov2(d):
    torch.manual_seed(0)
    teacher = SSLMetaArch(DINOV2_CHUNKS)
    randomize(teacher, 1)
    student = SSLMetaArch(DINOV2_CHUNKS)
    randomize(student, 2)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3)
    student.backbone(torch.randn(1, 3, 16, 16)).sum().backward()
    opt.step()
    torch.save({"teacher": teacher.state_dict(), "student": student.state_dict(),
                "optimizer": opt.state_dict(), "iteration": 12499},
               os.path.join(d, "dinov2_train.pth"))
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = teacher.backbone.eval()(x)
    torch.save({"x": x, "ref": ref}, os.path.join(d, "dinov2_io.pth"))
    keys = [k for k in teacher.state_dict() if k.startswith("backbone.blocks.")]
    print("dinov2: %d teacher keys, %d chunked block keys, chunks %s"
          % (len(teacher.state_dict()), len(keys),
             sorted({int(k.split(".")[2]) for k in keys})))


def check_dinov2(d, out):
    sd = load_plain(out)
    model = DinoVisionTransformer(block_chunks=0).eval()
    report_strict(model, sd)
    io = torch.load(os.path.join(d, "dinov2_io.pth"))
    with torch.no_grad():
        compare("dinov2 eval vs chunked teacher", io["ref"], model(io["x"]))
    # What the folk recipe would have loaded (upstream loads strict=False).
    teacher = torch.load(os.path.join(d, "dinov2_train.pth"))["teacher"]
    folk = {k.replace("backbone.", "", 1).replace(".0.", "."): v
            for k, v in teacher.items() if k.startswith("backbone.")}
    r = DinoVisionTransformer(block_chunks=0).load_state_dict(folk, strict=False)
    print("folk .replace('.0.', '.'): %d missing, %d unexpected keys"
          % (len(r.missing_keys), len(r.unexpected_keys)))


# --------------------------------------------------------------------------
# Swin: original (Microsoft / timm < 0.9) layout vs timm >= 0.9 layout
# --------------------------------------------------------------------------

def relative_position_index(h, w):
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w),
                                        indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    rel[:, :, 0] += h - 1
    rel[:, :, 1] += w - 1
    rel[:, :, 0] *= 2 * w - 1
    return rel.sum(-1)


class WindowAttention(nn.Module):
    """Attention over one window (the whole grid here) with a relative
    position bias table indexed by a derived buffer."""

    def __init__(self, dim, heads, grid, persistent):
        super().__init__()
        self.heads = heads
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * grid - 1) ** 2, heads))
        self.register_buffer("relative_position_index",
                             relative_position_index(grid, grid),
                             persistent=persistent)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        bias = self.relative_position_bias_table[
            self.relative_position_index.view(-1)].view(n, n, -1)
        a = a + bias.permute(2, 0, 1) + mask
        return self.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class SwinBlock(nn.Module):
    def __init__(self, dim, heads, grid, shifted, persistent):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, grid, persistent)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 2 * dim)
        n = grid * grid
        mask = torch.zeros(1, n, n)
        if shifted:
            mask[:, : n // 2, n // 2:] = -100.0
            mask[:, n // 2:, : n // 2] = -100.0
        self.register_buffer("attn_mask", mask if shifted else None,
                             persistent=persistent)

    def forward(self, x):
        mask = self.attn_mask if self.attn_mask is not None else 0.0
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x, grid):
        b, _, c = x.shape
        x = x.view(b, grid, grid, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2],
                       x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class SwinStage(nn.Module):
    def __init__(self, dim, grid, downsample_after, downsample_before,
                 persistent):
        super().__init__()
        if downsample_before:  # timm >= 0.9: merge first, then blocks
            self.downsample = PatchMerging(dim // 2)
        self.blocks = nn.ModuleList(
            [SwinBlock(dim, 2, grid, i % 2 == 1, persistent) for i in range(2)])
        if downsample_after:  # original: blocks, then merge
            self.downsample = PatchMerging(dim)
        self.after = downsample_after
        self.before = downsample_before
        self.grid = grid

    def forward(self, x):
        if self.before:
            x = self.downsample(x, self.grid * 2)
        for b in self.blocks:
            x = b(x)
        if self.after:
            x = self.downsample(x, self.grid)
        return x


class ClassifierHead(nn.Module):
    def __init__(self, dim, classes):
        super().__init__()
        self.fc = nn.Linear(dim, classes)

    def forward(self, x):
        return self.fc(x)


class Swin(nn.Module):
    """timm=False: the original layout (buffers persistent, head.*);
    timm=True: timm >= 0.9 (buffers non-persistent, head.fc.*)."""

    def __init__(self, timm, dim=8, grids=(4, 2, 1), classes=10):
        super().__init__()
        self.patch_embed = PatchEmbed(2, dim)
        stages, d = [], dim
        for i, g in enumerate(grids):
            last = i == len(grids) - 1
            stages.append(SwinStage(d, g, downsample_after=not timm and not last,
                                    downsample_before=timm and i > 0,
                                    persistent=not timm))
            if not last:
                d *= 2
        self.layers = nn.ModuleList(stages)
        self.norm = nn.LayerNorm(d)
        self.head = ClassifierHead(d, classes) if timm else nn.Linear(d, classes)

    def forward(self, x):
        x = self.patch_embed(x)
        for s in self.layers:
            x = s(x)
        return self.head(self.norm(x).mean(1))


def make_swin(d):
    torch.manual_seed(0)
    m = Swin(timm=False)
    randomize(m, 4)
    # Microsoft's release: {'model': state_dict}.
    torch.save({"model": m.state_dict()}, os.path.join(d, "swin_original.pth"))
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = m.eval()(x)
    torch.save({"x": x, "ref": ref}, os.path.join(d, "swin_io.pth"))
    want, have = set(Swin(timm=True).state_dict()), set(m.state_dict())
    print("swin: as saved, a timm>=0.9 model misses %d and rejects %d keys"
          % (len(want - have), len(have - want)))


def check_swin(d, out):
    sd = load_plain(out)
    model = Swin(timm=True).eval()
    report_strict(model, sd)
    io = torch.load(os.path.join(d, "swin_io.pth"))
    with torch.no_grad():
        compare("swin timm>=0.9 vs original", io["ref"], model(io["x"]))


def mmdet_swin_converter(ckpt):
    """What mmdet's tools/model_converters/swin2mmdet.py does, restated: the
    reference wopt's mmdet-swin pipeline is checked against."""
    def unfold_reduction(x):
        out, c4 = x.shape
        x = x.reshape(out, 4, c4 // 4)
        return x[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(out, c4)

    def unfold_norm(x):
        c4 = x.shape[0]
        x = x.reshape(4, c4 // 4)
        return x[[0, 2, 1, 3], :].transpose(0, 1).reshape(c4)

    new = {}
    for k, v in ckpt.items():
        if k.startswith("head"):
            continue
        if k.startswith("layers"):
            nk = k
            if "attn." in k:
                nk = k.replace("attn.", "attn.w_msa.")
            elif "mlp.fc1." in k:
                nk = k.replace("mlp.fc1.", "ffn.layers.0.0.")
            elif "mlp.fc2." in k:
                nk = k.replace("mlp.fc2.", "ffn.layers.1.")
            elif "downsample" in k:
                if "reduction." in k:
                    v = unfold_reduction(v)
                elif "norm." in k:
                    v = unfold_norm(v)
            nk = nk.replace("layers", "stages", 1)
        elif k.startswith("patch_embed"):
            nk = k.replace("proj", "projection") if "proj" in k else k
        else:
            nk = k
        new["backbone." + nk] = v
    return new


def check_mmdet_swin(d, out):
    got = {k: v for k, v in load_plain(out).items() if not k.startswith("head")}
    src = torch.load(os.path.join(d, "swin_original.pth"))["model"]
    want = mmdet_swin_converter(src)
    same_keys = list(got) == list(want)
    same_values = same_keys and all(torch.equal(got[k], want[k]) for k in want)
    moved = sum(1 for k in want if "downsample" in k)
    print("mmdet-swin: %d keys, same keys and order as swin2mmdet: %s, "
          "same values: %s (%d downsample tensors)"
          % (len(got), same_keys, same_values, moved))
    if not same_values:
        sys.exit("mmdet-swin: differs from the reference converter")


# --------------------------------------------------------------------------
# mmengine: {'meta', 'state_dict' (DDP keys), 'optimizer', 'message_hub', ...}
# --------------------------------------------------------------------------

def install_fake_mmengine():
    """A stand-in for mmengine.logging.history_buffer.HistoryBuffer, so that
    pickle records that global exactly as real mmengine checkpoints do."""
    names = ["mmengine", "mmengine.logging", "mmengine.logging.history_buffer"]
    for n in names:
        sys.modules.setdefault(n, types.ModuleType(n))
    mod = sys.modules["mmengine.logging.history_buffer"]

    class HistoryBuffer:
        def __init__(self, log_history, count_history, max_length=1000000):
            self._log_history = log_history
            self._count_history = count_history
            self.max_length = max_length

    HistoryBuffer.__module__ = mod.__name__
    HistoryBuffer.__qualname__ = "HistoryBuffer"
    mod.HistoryBuffer = HistoryBuffer
    return HistoryBuffer


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.depthwise_conv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pointwise_conv1 = nn.Linear(dim, 4 * dim)
        self.pointwise_conv2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        y = self.depthwise_conv(x).permute(0, 2, 3, 1)
        y = self.pointwise_conv2(F.gelu(self.pointwise_conv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtBackbone(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dim, 4, stride=4), nn.BatchNorm2d(dim))])
        self.stages = nn.ModuleList([nn.Sequential(ConvNeXtBlock(dim),
                                                   ConvNeXtBlock(dim))])
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.stages[0](self.downsample_layers[0](x))
        return self.norm3(x.mean((2, 3)))


class ImageClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = ConvNeXtBackbone()
        self.head = ClassifierHead(8, 10)


class DDPWrapper(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module


def make_mmengine(d):
    import numpy as np
    HistoryBuffer = install_fake_mmengine()
    torch.manual_seed(0)
    model = DDPWrapper(ImageClassifier())
    randomize(model, 6)
    model.train()
    model.module.backbone(torch.randn(2, 3, 16, 16))  # BN statistics move
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.module.backbone(torch.randn(2, 3, 16, 16)).sum().backward()
    opt.step()
    hub = {"log_scalars": {
        "train/loss": HistoryBuffer(np.array([2.3, 2.1]), np.array([1, 1])),
        "train/lr": HistoryBuffer(np.array([0.1]), np.array([1]))},
        "runtime_info": {"epoch": 3, "iter": 300}, "resumed_keys": {"epoch": True}}
    ckpt = {"meta": {"epoch": 3, "iter": 300, "mmengine_version": "0.10.0",
                     "dataset_meta": {"classes": ["a", "b"]}},
            "state_dict": model.state_dict(),
            "optimizer": opt.state_dict(),
            "param_schedulers": [{"base_lrs": [0.1], "last_step": 300}],
            "message_hub": hub}
    torch.save(ckpt, os.path.join(d, "mmengine_ckpt.pth"))
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = model.module.backbone.eval()(x)
    torch.save({"x": x, "ref": ref}, os.path.join(d, "mmengine_io.pth"))
    try:
        torch.load(os.path.join(d, "mmengine_ckpt.pth"), weights_only=True)
        print("mmengine: weights_only load unexpectedly worked")
    except (pickle.UnpicklingError, RuntimeError, TypeError):
        print("mmengine: torch.load(weights_only=True) refuses the file")


def check_mmengine(d, out):
    sd = load_plain(out)
    model = ConvNeXtBackbone().eval()
    report_strict(model, sd)
    io = torch.load(os.path.join(d, "mmengine_io.pth"))
    with torch.no_grad():
        compare("mmpretrain backbone vs wrapped model", io["ref"], model(io["x"]))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, d = argv[1], argv[2]
    os.makedirs(d, exist_ok=True)
    makers = {"dinov2": make_dinov2, "swin": make_swin, "mmengine": make_mmengine}
    checks = {"check-dinov2": check_dinov2, "check-swin": check_swin,
              "check-mmdet-swin": check_mmdet_swin,
              "check-mmengine": check_mmengine}
    if cmd in makers:
        makers[cmd](d)
    elif cmd in checks and len(argv) == 4:
        checks[cmd](d, argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
