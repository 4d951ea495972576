"""Models for the wopt-manifest.py tests, importable as a module."""
import torch
import torch.nn as nn


class TinyViT(nn.Module):
    """Parameters, a persistent and a non-persistent buffer, a scalar."""

    def __init__(self, depth=2, dim=8, heads=2):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, 4, 4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, 2 * dim, batch_first=True)
            for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("position_ids", torch.arange(16).expand(1, -1))
        self.register_buffer("attn_mask", torch.ones(4, 4), persistent=False)
        self.head = nn.Linear(dim, 10).half()


def build_vit(**kwargs):
    return TinyViT(**kwargs)


class ReadsValues(nn.Module):
    """Its constructor reads a tensor's value: no meta device for it."""

    def __init__(self, n=3):
        super().__init__()
        size = int(torch.tensor([n]).sum().item())
        self.weight = nn.Parameter(torch.randn(size, 2))


def not_a_model():
    return {"weight": torch.zeros(2)}


def save_vit(path, **kwargs):
    torch.manual_seed(0)
    torch.save(TinyViT(**kwargs).state_dict(), path)


if __name__ == "__main__":
    import json
    import sys
    save_vit(sys.argv[1], **json.loads(sys.argv[2]))
