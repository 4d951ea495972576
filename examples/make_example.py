#!/usr/bin/env python3
"""Makes examples/dinov2_teacher.pth, the checkpoint `make demo` repairs, and
checks a repaired file against it.

    python3 examples/make_example.py [OUT.pth]      write the example
    python3 examples/make_example.py --check IN OUT  OUT (wopt's result) loads
                                                     strict into the eval model
                                                     and matches IN's teacher

The checkpoint is shaped like the one DINOv2 writes at eval time,
{'teacher': state_dict}, with keys `backbone.*`, `dino_head.*`,
`ibot_head.*`, from a ViT with block_chunks=4 (depth 8, width 16): block
keys read `backbone.blocks.<chunk>.<block>.*`. An eval model
(block_chunks=0) wants `blocks.<block>.*`, and nothing else.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

DEPTH, DIM, HEADS, PATCH, IMG, CHUNKS = 8, 16, 2, 4, 16, 4


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(DIM, 3 * DIM)
        self.attn.proj = nn.Linear(DIM, DIM)
        self.ls1 = nn.Module()
        self.ls1.gamma = nn.Parameter(torch.full((DIM,), 0.1))
        self.norm2 = nn.LayerNorm(DIM)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(DIM, 4 * DIM)
        self.mlp.fc2 = nn.Linear(4 * DIM, DIM)
        self.ls2 = nn.Module()
        self.ls2.gamma = nn.Parameter(torch.full((DIM,), 0.1))

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.attn.qkv(self.norm1(x)).reshape(
            b, n, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) / math.sqrt(c // HEADS)).softmax(-1)
        x = x + self.ls1.gamma * self.attn.proj(
            (a @ v).transpose(1, 2).reshape(b, n, c))
        h = self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))
        return x + self.ls2.gamma * h


class BlockChunk(nn.ModuleList):
    def forward(self, x):
        for b in self:
            x = b(x)
        return x


class ViT(nn.Module):
    """Key names as in DINOv2's vision_transformer.py."""

    def __init__(self, block_chunks):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, DIM, PATCH, PATCH)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, (IMG // PATCH) ** 2 + 1, DIM))
        self.mask_token = nn.Parameter(torch.zeros(1, DIM))
        blocks = [Block() for _ in range(DEPTH)]
        if block_chunks:
            size = DEPTH // block_chunks
            self.blocks = nn.ModuleList(
                [BlockChunk([nn.Identity()] * i + blocks[i:i + size])
                 for i in range(0, DEPTH, size)])
        else:
            self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(DIM)

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1)
        x = x + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.norm(x)[:, 0]


def head():
    h = nn.Module()
    h.mlp = nn.Sequential(nn.Linear(DIM, 32), nn.GELU(), nn.Linear(32, 8))
    h.last_layer = nn.utils.weight_norm(nn.Linear(8, 64, bias=False))
    return h


def teacher():
    torch.manual_seed(0)
    t = nn.Module()
    t.backbone = ViT(CHUNKS)
    t.dino_head = head()
    t.ibot_head = head()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return t


def check(src, out):
    sd = torch.load(out, map_location="cpu", weights_only=True)
    model = ViT(0).eval()
    model.load_state_dict(sd, strict=True)
    print("torch: load_state_dict(strict=True) into the eval model "
          "(block_chunks=0): ok, %d tensors" % len(sd))
    ref = ViT(CHUNKS).eval()
    orig = torch.load(src, map_location="cpu")["teacher"]
    ref.load_state_dict({k[len("backbone."):]: v for k, v in orig.items()
                         if k.startswith("backbone.")})
    x = torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        same = torch.equal(model(x), ref(x))
    print("torch: outputs identical to the chunked teacher: %s" % same)
    return 0 if same else 1


def main(argv):
    if len(argv) == 4 and argv[1] == "--check":
        return check(argv[2], argv[3])
    out = argv[1] if len(argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "dinov2_teacher.pth")
    torch.save({"teacher": teacher().state_dict()}, out)
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
