#!/usr/bin/env python3
"""Checkpoints for CASES.md cases 5 (HF CLIP -> OpenCLIP) and 3 (official
ConvNeXt-V2 -> mmpretrain), and checks of wopt's output with real PyTorch.

    make_clip_cases.py hf-clip DIR            DIR/hf_clip.pth (HF CLIPModel keys)
    make_clip_cases.py check-openclip DIR OUT OUT equals the expected OpenCLIP
                                              dict and loads strict
    make_clip_cases.py convnextv2 DIR         DIR/convnextv2.pth ({'model': sd})
    make_clip_cases.py check-mmpretrain DIR OUT

The expected outputs are computed here, independently of wopt, with
torch.cat / .t() / .reshape and the published key maps (HF's
convert_clip_original_pytorch_to_hf.py read backwards; mmpretrain's
convnext_to_mmpretrain.py). Outputs are loaded with weights_only=True.
"""
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn

# Small dims; the key names are the real ones.
TEXT = dict(width=16, heads=2, layers=2, vocab=50, context=7)
VISION = dict(width=12, heads=3, layers=2, patch=4, image=8)
EMBED = 8


def load_plain(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def rand(gen, *shape):
    return torch.randn(*shape, generator=gen)


# --------------------------------------------------------------------------
# Case 5: HF transformers CLIPModel -> OpenCLIP
# --------------------------------------------------------------------------

def hf_layer(sd, prefix, width, gen, transposed_q):
    # HF's CLIPAttention declares k, v, q, out in this order.
    for name in ["k_proj", "v_proj", "q_proj", "out_proj"]:
        w = rand(gen, width, width)
        if transposed_q and name == "q_proj":
            w = w.t()  # a non-contiguous view: wopt must read via strides
        sd[prefix + "self_attn.%s.weight" % name] = w
        sd[prefix + "self_attn.%s.bias" % name] = rand(gen, width)
    sd[prefix + "layer_norm1.weight"] = rand(gen, width)
    sd[prefix + "layer_norm1.bias"] = rand(gen, width)
    sd[prefix + "mlp.fc1.weight"] = rand(gen, 4 * width, width)
    sd[prefix + "mlp.fc1.bias"] = rand(gen, 4 * width)
    sd[prefix + "mlp.fc2.weight"] = rand(gen, width, 4 * width)
    sd[prefix + "mlp.fc2.bias"] = rand(gen, width)
    sd[prefix + "layer_norm2.weight"] = rand(gen, width)
    sd[prefix + "layer_norm2.bias"] = rand(gen, width)


def make_hf_clip_dict():
    gen = torch.Generator().manual_seed(5)
    sd = OrderedDict()
    t, v = TEXT, VISION
    sd["text_model.embeddings.token_embedding.weight"] = rand(gen, t["vocab"], t["width"])
    sd["text_model.embeddings.position_embedding.weight"] = rand(gen, t["context"], t["width"])
    sd["text_model.embeddings.position_ids"] = torch.arange(t["context"]).unsqueeze(0)
    for i in range(t["layers"]):
        hf_layer(sd, "text_model.encoder.layers.%d." % i, t["width"], gen, i == 0)
    sd["text_model.final_layer_norm.weight"] = rand(gen, t["width"])
    sd["text_model.final_layer_norm.bias"] = rand(gen, t["width"])
    grid = v["image"] // v["patch"]
    sd["vision_model.embeddings.class_embedding"] = rand(gen, v["width"])
    sd["vision_model.embeddings.patch_embedding.weight"] = rand(
        gen, v["width"], 3, v["patch"], v["patch"])
    sd["vision_model.embeddings.position_embedding.weight"] = rand(gen, grid * grid + 1, v["width"])
    sd["vision_model.embeddings.position_ids"] = torch.arange(grid * grid + 1).unsqueeze(0)
    sd["vision_model.pre_layrnorm.weight"] = rand(gen, v["width"])
    sd["vision_model.pre_layrnorm.bias"] = rand(gen, v["width"])
    for i in range(v["layers"]):
        hf_layer(sd, "vision_model.encoder.layers.%d." % i, v["width"], gen, i == 1)
    sd["vision_model.post_layernorm.weight"] = rand(gen, v["width"])
    sd["vision_model.post_layernorm.bias"] = rand(gen, v["width"])
    sd["visual_projection.weight"] = rand(gen, EMBED, v["width"])
    sd["text_projection.weight"] = rand(gen, EMBED, t["width"])
    sd["logit_scale"] = torch.tensor(2.6592)
    return sd


def expected_openclip(hf):
    """The OpenCLIP state dict, built key by key from the HF one."""
    out = OrderedDict()

    def tower(src, dst, layers):
        for i in range(layers):
            s = "%s.encoder.layers.%d." % (src, i)
            d = "%stransformer.resblocks.%d." % (dst, i)
            for kind in ["weight", "bias"]:
                out[d + "attn.in_proj_" + kind] = torch.cat(
                    [hf[s + "self_attn.%s_proj.%s" % (p, kind)] for p in "qkv"], 0)
                out[d + "attn.out_proj." + kind] = hf[s + "self_attn.out_proj." + kind]
                out[d + "ln_1." + kind] = hf[s + "layer_norm1." + kind]
                out[d + "ln_2." + kind] = hf[s + "layer_norm2." + kind]
                out[d + "mlp.c_fc." + kind] = hf[s + "mlp.fc1." + kind]
                out[d + "mlp.c_proj." + kind] = hf[s + "mlp.fc2." + kind]

    out["token_embedding.weight"] = hf["text_model.embeddings.token_embedding.weight"]
    out["positional_embedding"] = hf["text_model.embeddings.position_embedding.weight"]
    tower("text_model", "", TEXT["layers"])
    for kind in ["weight", "bias"]:
        out["ln_final." + kind] = hf["text_model.final_layer_norm." + kind]
    out["text_projection"] = hf["text_projection.weight"].t()
    out["visual.class_embedding"] = hf["vision_model.embeddings.class_embedding"]
    out["visual.conv1.weight"] = hf["vision_model.embeddings.patch_embedding.weight"]
    out["visual.positional_embedding"] = hf["vision_model.embeddings.position_embedding.weight"]
    for kind in ["weight", "bias"]:
        out["visual.ln_pre." + kind] = hf["vision_model.pre_layrnorm." + kind]
        out["visual.ln_post." + kind] = hf["vision_model.post_layernorm." + kind]
    tower("vision_model", "visual.", VISION["layers"])
    out["visual.proj"] = hf["visual_projection.weight"].t()
    out["logit_scale"] = hf["logit_scale"]
    return out


class ResidualAttentionBlock(nn.Module):
    """open_clip.transformer.ResidualAttentionBlock's parameter names."""

    def __init__(self, width, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, 4 * width)), ("gelu", nn.GELU()),
            ("c_proj", nn.Linear(4 * width, width))]))


class Transformer(nn.Module):
    def __init__(self, width, heads, layers):
        super().__init__()
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads) for _ in range(layers)])


class VisionTransformer(nn.Module):
    def __init__(self, width, heads, layers, patch, image):
        super().__init__()
        grid = image // patch
        self.conv1 = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, heads, layers)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, EMBED))


class OpenCLIP(nn.Module):
    """open_clip.model.CLIP's parameter names (attn_mask is not persistent)."""

    def __init__(self):
        super().__init__()
        t = TEXT
        self.visual = VisionTransformer(**VISION)
        self.transformer = Transformer(t["width"], t["heads"], t["layers"])
        self.token_embedding = nn.Embedding(t["vocab"], t["width"])
        self.positional_embedding = nn.Parameter(torch.zeros(t["context"], t["width"]))
        self.ln_final = nn.LayerNorm(t["width"])
        self.text_projection = nn.Parameter(torch.zeros(t["width"], EMBED))
        self.logit_scale = nn.Parameter(torch.ones([]))
        self.register_buffer("attn_mask", torch.zeros(t["context"], t["context"]),
                             persistent=False)


def make_hf_clip(d):
    torch.save(make_hf_clip_dict(), os.path.join(d, "hf_clip.pth"))


def check_equal(name, expected, out):
    if set(expected) != set(out):
        print("missing:", sorted(set(expected) - set(out)))
        print("unexpected:", sorted(set(out) - set(expected)))
        sys.exit("%s: keys differ" % name)
    bad = [k for k in expected
           if expected[k].dtype != out[k].dtype or not torch.equal(expected[k], out[k])]
    if bad:
        sys.exit("%s: values differ for %s" % (name, bad))
    print("%s: %d keys, same keys and values: True" % (name, len(expected)))


def check_openclip(d, path):
    out = load_plain(path)
    check_equal("openclip", expected_openclip(make_hf_clip_dict()), out)
    model = OpenCLIP()
    result = model.load_state_dict(out, strict=True)
    print("strict load: ok (missing %d, unexpected %d)"
          % (len(result.missing_keys), len(result.unexpected_keys)))
    # The fused projection must act like HF's three: compare q k v on input.
    blk = model.transformer.resblocks[0].attn
    hf = make_hf_clip_dict()
    x = rand(torch.Generator().manual_seed(9), 3, TEXT["width"])
    fused = nn.functional.linear(x, blk.in_proj_weight, blk.in_proj_bias)
    split = torch.cat([nn.functional.linear(
        x, hf["text_model.encoder.layers.0.self_attn.%s_proj.weight" % p],
        hf["text_model.encoder.layers.0.self_attn.%s_proj.bias" % p])
        for p in "qkv"], -1)
    print("in_proj acts as q,k,v: %s" % torch.allclose(fused, split))
    print("text_projection contiguous: %s" % out["text_projection"].is_contiguous())


# --------------------------------------------------------------------------
# Case 3: official ConvNeXt-V2 -> mmpretrain ImageClassifier
# --------------------------------------------------------------------------

DIMS = [4, 8, 8, 16]
DEPTHS = [1, 1, 2, 1]
CLASSES = 10


def make_convnextv2_dict():
    """Key names and shapes of facebookresearch/ConvNeXt-V2 models/convnextv2.py."""
    gen = torch.Generator().manual_seed(3)
    sd = OrderedDict()
    sd["downsample_layers.0.0.weight"] = rand(gen, DIMS[0], 3, 4, 4)
    sd["downsample_layers.0.0.bias"] = rand(gen, DIMS[0])
    sd["downsample_layers.0.1.weight"] = rand(gen, DIMS[0])
    sd["downsample_layers.0.1.bias"] = rand(gen, DIMS[0])
    for i in range(1, 4):
        sd["downsample_layers.%d.0.weight" % i] = rand(gen, DIMS[i - 1])
        sd["downsample_layers.%d.0.bias" % i] = rand(gen, DIMS[i - 1])
        sd["downsample_layers.%d.1.weight" % i] = rand(gen, DIMS[i], DIMS[i - 1], 2, 2)
        sd["downsample_layers.%d.1.bias" % i] = rand(gen, DIMS[i])
    for i, (dim, depth) in enumerate(zip(DIMS, DEPTHS)):
        for j in range(depth):
            p = "stages.%d.%d." % (i, j)
            sd[p + "dwconv.weight"] = rand(gen, dim, 1, 7, 7)
            sd[p + "dwconv.bias"] = rand(gen, dim)
            sd[p + "norm.weight"] = rand(gen, dim)
            sd[p + "norm.bias"] = rand(gen, dim)
            sd[p + "pwconv1.weight"] = rand(gen, 4 * dim, dim)
            sd[p + "pwconv1.bias"] = rand(gen, 4 * dim)
            sd[p + "grn.gamma"] = rand(gen, 1, 1, 1, 4 * dim)
            sd[p + "grn.beta"] = rand(gen, 1, 1, 1, 4 * dim)
            sd[p + "pwconv2.weight"] = rand(gen, dim, 4 * dim)
            sd[p + "pwconv2.bias"] = rand(gen, dim)
    sd["norm.weight"] = rand(gen, DIMS[-1])
    sd["norm.bias"] = rand(gen, DIMS[-1])
    sd["head.weight"] = rand(gen, CLASSES, DIMS[-1])
    sd["head.bias"] = rand(gen, CLASSES)
    return sd


def expected_mmpretrain(sd):
    """mmpretrain's convnext_to_mmpretrain.py rules, plus GRN as (C,)."""
    out = OrderedDict()
    for k, v in sd.items():
        if k.startswith("head."):
            out["head.fc." + k[len("head."):]] = v
            continue
        if k.startswith("stages."):
            k = k.replace("dwconv", "depthwise_conv").replace("pwconv", "pointwise_conv")
            if ".grn." in k:
                v = v.reshape(-1)
        elif k.startswith("norm."):
            k = "norm3." + k[len("norm."):]
        out["backbone." + k] = v
    return out


class GRN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(c))
        self.beta = nn.Parameter(torch.zeros(c))


class Block(nn.Module):
    """mmpretrain.models.backbones.convnext.ConvNeXtBlock (use_grn=True)."""

    def __init__(self, dim):
        super().__init__()
        self.depthwise_conv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pointwise_conv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pointwise_conv2 = nn.Linear(4 * dim, dim)


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, DIMS[0], 4, stride=4), nn.LayerNorm(DIMS[0]))]
        for i in range(1, 4):
            layers.append(nn.Sequential(nn.LayerNorm(DIMS[i - 1]),
                                        nn.Conv2d(DIMS[i - 1], DIMS[i], 2, stride=2)))
        self.downsample_layers = nn.ModuleList(layers)
        self.stages = nn.ModuleList(
            [nn.Sequential(*[Block(dim) for _ in range(depth)])
             for dim, depth in zip(DIMS, DEPTHS)])
        self.norm3 = nn.LayerNorm(DIMS[-1])


class LinearClsHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(DIMS[-1], CLASSES)


class ImageClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        self.head = LinearClsHead()


def make_convnextv2(d):
    torch.save({"model": make_convnextv2_dict()}, os.path.join(d, "convnextv2.pth"))


def check_mmpretrain(d, path):
    out = load_plain(path)
    check_equal("mmpretrain", expected_mmpretrain(make_convnextv2_dict()), out)
    result = ImageClassifier().load_state_dict(out, strict=True)
    print("strict load: ok (missing %d, unexpected %d)"
          % (len(result.missing_keys), len(result.unexpected_keys)))


def main(argv):
    makers = {"hf-clip": make_hf_clip, "convnextv2": make_convnextv2}
    checks = {"check-openclip": check_openclip, "check-mmpretrain": check_mmpretrain}
    if len(argv) == 3 and argv[1] in makers:
        os.makedirs(argv[2], exist_ok=True)
        makers[argv[1]](argv[2])
    elif len(argv) == 4 and argv[1] in checks:
        checks[argv[1]](argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
