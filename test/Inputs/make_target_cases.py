"""Fixtures for the -target tests, made with real PyTorch: a checkpoint and
the model it must load into, whose own state_dict() is the target.

usage: make_target_cases.py OUTDIR CASE
       make_target_cases.py OUTDIR check-CASE OUT

The targets of the real-world cases whose checkpoints make_cases.py and
make_clip_cases.py write (the state dict of the model that must load the
result, its own random values: only keys, dtypes and shapes matter), and
the wrapper and dtype cases. Reused by the -target tests with and without
an explicit pipeline.

  target-dinov2      dinov2-target.pth: the eval ViT (block_chunks=0)
  target-swin        swin-target.pth: timm >= 0.9's Swin layout
  target-mmengine    mmengine-target.pth: the ConvNeXt backbone
  target-clip        clip-target.pth: OpenCLIP
  target-convnextv2  convnextv2-target.pth: mmpretrain's ImageClassifier
  wrappers  one text encoder (persistent position_ids) saved as DDP does
            (wrap-ddp.pth, module.*), as torch.compile does
            (wrap-compiled.pth, _orig_mod.*), as Lightning does
            (wrap-lightning.pth: state_dict with model.*, loops, optimizer
            states, hyper-parameters) and with EMA weights
            (wrap-ema.pth: timm's state_dict + state_dict_ema);
            wrap-target.pth is the model's state dict.
          check-wrap OUT [ema]: OUT loads strict and equals the model's
            weights (the EMA weights with ema).
  fp16    fp16.pth: the encoder saved after .half(); fp16-target.pth: the
          f32 model. check-fp16 OUT: strict load, every tensor f32 and
          equal to the f16 value widened.

  gdino   Grounding DINO as MMDetection converts it: an mmdet Swin backbone
          whose relative_position_index buffers are *persistent* (the model
          lists them), a BERT language model whose position_ids became
          non-persistent and whose pooler the target config lacks, and a
          head that gained 7 cls_branches.<k>.log_scale and a denoising
          label_embedding the model initialises itself.
          gdino.pth (the old checkpoint), gdino-target.pth (the new model's
          state_dict), gdino-target.json (its manifest).
          check: OUT loads into the new model with exactly those 8 keys
          missing, nothing unexpected, relative_position_index bit-equal.
  ddp     A DDP checkpoint (module.*) of a text encoder whose position_ids
          buffer is persistent in the model: ddp.pth, ddp-target.pth.
          check: OUT loads strict and equals the unwrapped weights.
  diff    diff-ref.pth (a model's state dict) and diff-conv.pth, a
          conversion of it: most keys equal (one a transposed view of the
          same values), three blocks' fc.weight with a known perturbation
          (max abs difference 0.125, at blocks.2.fc.weight), norm weights
          in f16, a reshaped gamma, a missing and an extra key.
"""
import sys

import torch
import torch.nn as nn

from make_cases import load_plain, randomize, relative_position_index


class WindowAttention(nn.Module):
    def __init__(self, dim, heads, grid):
        super().__init__()
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * grid - 1) ** 2, heads))
        # mmdet's Swin registers it persistent: the model expects the key.
        self.register_buffer("relative_position_index",
                             relative_position_index(grid, grid))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)


class SwinBlock(nn.Module):
    def __init__(self, dim, grid):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.Module()
        self.attn.w_msa = WindowAttention(dim, 2, grid)


class SwinBackbone(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.stages = nn.ModuleList()
        for s in range(4):
            st = nn.Module()
            st.blocks = nn.ModuleList([SwinBlock(dim, 2) for _ in range(2)])
            self.stages.append(st)


class Bert(nn.Module):
    def __init__(self, dim=8, pooler=False, persistent_ids=True):
        super().__init__()
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(30, dim)
        self.embeddings.register_buffer(
            "position_ids", torch.arange(16).expand(1, -1).clone(),
            persistent=persistent_ids)
        self.encoder = nn.Linear(dim, dim)
        if pooler:
            self.pooler = nn.Module()
            self.pooler.dense = nn.Linear(dim, dim)


class Head(nn.Module):
    def __init__(self, dim=8, new=True):
        super().__init__()
        self.cls_branches = nn.ModuleList()
        for _ in range(7):
            b = nn.Module()
            b.bias = nn.Parameter(torch.zeros(1))
            if new:
                b.log_scale = nn.Parameter(torch.zeros(1))
            self.cls_branches.append(b)


class GroundingDINO(nn.Module):
    def __init__(self, new):
        super().__init__()
        self.backbone = SwinBackbone()
        lm = nn.Module()
        lm.language_backbone = nn.Module()
        lm.language_backbone.body = nn.Module()
        lm.language_backbone.body.model = Bert(pooler=not new,
                                               persistent_ids=not new)
        self.language_model = lm
        self.bbox_head = Head(new=new)
        if new:
            self.dn_query_generator = nn.Module()
            self.dn_query_generator.label_embedding = nn.Embedding(5, 8)


def gdino(outdir):
    torch.manual_seed(0)
    old = GroundingDINO(new=False)
    randomize(old, 11)
    torch.save(old.state_dict(), outdir + "/gdino.pth")
    new = GroundingDINO(new=True)
    randomize(new, 12)
    torch.save(new.state_dict(), outdir + "/gdino-target.pth")


def check_gdino(outdir, out):
    sd = load_plain(out)
    model = GroundingDINO(new=True)
    r = model.load_state_dict(sd, strict=False)
    print("missing %d: %s" % (len(r.missing_keys), " ".join(sorted(r.missing_keys))))
    print("unexpected %d" % len(r.unexpected_keys))
    src = torch.load(outdir + "/gdino.pth")
    rpi = [k for k in sd if k.endswith("relative_position_index")]
    same = all(torch.equal(sd[k], src[k]) for k in rpi)
    print("relative_position_index kept: %d, equal: %s" % (len(rpi), same))
    others = [k for k in sd if k in src and not torch.equal(sd[k], src[k])]
    print("changed values: %d" % len(others))


class TextEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = nn.Module()
        self.embeddings.token = nn.Embedding(20, 8)
        self.embeddings.register_buffer("position_ids",
                                        torch.arange(12).expand(1, -1).clone())
        self.proj = nn.Linear(8, 8)


class DDP(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module


def ddp(outdir):
    torch.manual_seed(0)
    m = TextEncoder()
    randomize(m, 13)
    torch.save(DDP(m).state_dict(), outdir + "/ddp.pth")
    torch.save(m.state_dict(), outdir + "/ddp-target.pth")


def check_ddp(outdir, out):
    sd = load_plain(out)
    model = TextEncoder()
    model.load_state_dict(sd, strict=True)
    ref = torch.load(outdir + "/ddp-target.pth")
    print("strict load: ok; same keys and values: %s"
          % (list(sd) == list(ref) and all(torch.equal(sd[k], ref[k]) for k in ref)))


def save_target(outdir, name, model, seed):
    randomize(model, seed)
    torch.save(model.state_dict(), "%s/%s-target.pth" % (outdir, name))


def target_dinov2(outdir):
    import make_cases
    save_target(outdir, "dinov2", make_cases.DinoVisionTransformer(block_chunks=0), 21)


def target_swin(outdir):
    import make_cases
    save_target(outdir, "swin", make_cases.Swin(timm=True), 22)


def target_mmengine(outdir):
    import make_cases
    save_target(outdir, "mmengine", make_cases.ConvNeXtBackbone(), 23)


def target_clip(outdir):
    import make_clip_cases
    save_target(outdir, "clip", make_clip_cases.OpenCLIP(), 24)


def target_convnextv2(outdir):
    import make_clip_cases
    save_target(outdir, "convnextv2", make_clip_cases.ImageClassifier(), 25)


def wrap_models():
    torch.manual_seed(0)
    m = TextEncoder()
    randomize(m, 14)
    ema = TextEncoder()
    randomize(ema, 15)
    return m, ema


def wrappers(outdir):
    m, ema = wrap_models()
    sd = m.state_dict()
    torch.save(DDP(m).state_dict(), outdir + "/wrap-ddp.pth")
    torch.save({"_orig_mod." + k: v for k, v in sd.items()},
               outdir + "/wrap-compiled.pth")
    opt = torch.optim.Adam(m.parameters())
    torch.save({"epoch": 4, "global_step": 1000,
                "pytorch-lightning_version": "2.1.0",
                "state_dict": {"model." + k: v for k, v in sd.items()},
                "loops": {"fit_loop": {"epoch_progress": {"current": 4}}},
                "callbacks": {}, "optimizer_states": [opt.state_dict()],
                "lr_schedulers": [], "hparams_name": "kwargs",
                "hyper_parameters": {"lr": 0.001, "dim": 8}},
               outdir + "/wrap-lightning.pth")
    torch.save({"epoch": 10, "arch": "text_encoder", "state_dict": sd,
                "state_dict_ema": ema.state_dict(),
                "optimizer": opt.state_dict()}, outdir + "/wrap-ema.pth")
    save_target(outdir, "wrap", TextEncoder(), 16)


def check_wrap(outdir, out, which="model"):
    m, ema = wrap_models()
    ref = (ema if which == "ema" else m).state_dict()
    sd = load_plain(out)
    TextEncoder().load_state_dict(sd, strict=True)
    print("strict load: ok; same keys and values: %s"
          % (list(sd) == list(ref) and all(torch.equal(sd[k], ref[k]) for k in ref)))


def fp16(outdir):
    m, _ = wrap_models()
    torch.save(m.half().state_dict(), outdir + "/fp16.pth")
    save_target(outdir, "fp16", TextEncoder(), 17)


def check_fp16(outdir, out):
    src = torch.load(outdir + "/fp16.pth")
    sd = load_plain(out)
    TextEncoder().load_state_dict(sd, strict=True)
    dtypes = sorted({str(v.dtype)[6:] for v in sd.values()})
    same = all(torch.equal(sd[k], src[k].float() if src[k].is_floating_point()
                           else src[k]) for k in src)
    print("strict load: ok; dtypes %s; values are the f16 ones widened: %s"
          % (",".join(dtypes), same))


def diff(outdir):
    torch.manual_seed(0)
    ref = {}
    for b in range(4):
        ref["blocks.%d.fc.weight" % b] = torch.randn(6, 4)
        ref["blocks.%d.fc.bias" % b] = torch.randn(6)
        ref["blocks.%d.norm.weight" % b] = torch.randn(4)
    ref["gamma"] = torch.randn(8)
    ref["proj"] = torch.randn(5, 3)
    ref["head.weight"] = torch.randn(3, 4)
    torch.save(ref, outdir + "/diff-ref.pth")
    conv = {}
    for k, v in ref.items():
        if k == "head.weight":
            continue                       # missing
        conv[k] = v.clone()
    for b, d in [(0, 0.001), (1, 0.01), (2, 0.125)]:
        conv["blocks.%d.fc.weight" % b][1, 2] += d
    for b in range(4):
        k = "blocks.%d.norm.weight" % b
        conv[k] = conv[k].half()
    conv["gamma"] = conv["gamma"].view(1, 8)
    conv["proj"] = ref["proj"].t().contiguous().t()   # same values, a view
    conv["extra.bias"] = torch.zeros(2)
    torch.save(conv, outdir + "/diff-conv.pth")


if __name__ == "__main__":
    outdir, case = sys.argv[1], sys.argv[2]
    makers = {"gdino": gdino, "ddp": ddp, "diff": diff,
              "target-dinov2": target_dinov2, "target-swin": target_swin,
              "target-mmengine": target_mmengine, "target-clip": target_clip,
              "target-convnextv2": target_convnextv2,
              "wrappers": wrappers, "fp16": fp16}
    checks = {"check-gdino": check_gdino, "check-ddp": check_ddp,
              "check-wrap": check_wrap, "check-fp16": check_fp16}
    if case in makers:
        makers[case](outdir)
    elif case in checks and len(sys.argv) >= 4:
        checks[case](outdir, *sys.argv[3:])
    else:
        sys.exit(__doc__)
