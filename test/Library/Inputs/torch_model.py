#!/usr/bin/python3
"""The model of the LibTorch bridge test, in Python (test/Library/TorchModel.cpp
defines the same model in C++), and the checks on what the C++ side wrote.

    torch_model.py train DIR        DIR/train.pth: a DDP-style training checkpoint
                                    {'model': 'module.'-prefixed state_dict,
                                     'optimizer', 'epoch', 'args': Namespace};
                                    DIR/io.pth: {'x', 'tokens', 'y'}, y the
                                    trained model's output (eval mode);
                                    DIR/params.pth: state_dict(keep_vars=True),
                                    the tied Parameter one object
    torch_model.py check DIR SAVED  SAVED (written by C++) loads with
                                    weights_only=True and strict=True, equals
                                    the trained weights bit for bit, keeps the
                                    tie, and gives y again

The model: conv + BatchNorm + a linear head tied to an embedding (the head's
weight is the embedding's), so the state dict holds one storage under two
names. Both sides run one thread, so the kernels reduce in the same order.
"""
import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)

VOCAB, DIM = 16, 8


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, DIM, 3, padding=1)
        self.bn = nn.BatchNorm2d(DIM)
        self.embed = nn.Embedding(VOCAB, DIM)
        self.head = nn.Linear(DIM, VOCAB, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, x, tokens):
        h = F.relu(self.bn(self.conv(x)))
        h = h.mean(dim=(2, 3))
        h = h + self.embed(tokens).mean(dim=1)
        return self.head(h)


def batch(gen):
    x = torch.randn(4, 3, 6, 6, generator=gen)
    tokens = torch.randint(0, VOCAB, (4, 5), generator=gen)
    return x, tokens


def train(out_dir):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = Net()
    # DataParallel without GPUs only wraps: its state_dict has the 'module.'
    # prefix DistributedDataParallel gives, without a process group.
    wrapped = nn.DataParallel(model)
    opt = torch.optim.Adam(wrapped.parameters(), lr=0.05)
    for step in range(4):
        x, tokens = batch(gen)
        loss = F.cross_entropy(wrapped(x, tokens), tokens[:, 0])
        opt.zero_grad()
        loss.backward()
        opt.step()
    args = argparse.Namespace(lr=0.05, steps=4, arch="net", ddp=True)
    torch.save({"model": wrapped.state_dict(), "optimizer": opt.state_dict(),
                "epoch": 4, "args": args}, out_dir + "/train.pth")

    model.eval()
    x, tokens = batch(gen)
    with torch.no_grad():
        y = model(x, tokens)
    torch.save({"x": x, "tokens": tokens, "y": y}, out_dir + "/io.pth")
    sd = wrapped.state_dict()
    print("train: %d keys, tied %s, num_batches_tracked %d"
          % (len(sd), sd["module.head.weight"].data_ptr() == sd["module.embed.weight"].data_ptr(),
             sd["module.bn.num_batches_tracked"].item()))

    # keep_vars=True: the Parameters themselves, so the tied weight is one
    # object under two keys (pickled once, one node in wopt's graph).
    torch.save(model.state_dict(keep_vars=True), out_dir + "/params.pth")
    params = torch.load(out_dir + "/params.pth", weights_only=True)
    print("params: %d keys, head.weight is embed.weight: %s, %s"
          % (len(params), params["head.weight"] is params["embed.weight"],
             type(params["head.weight"]).__name__))


def check(out_dir, saved):
    sd = torch.load(saved, weights_only=True)
    print("weights_only load: %d keys, %s" % (len(sd), type(sd).__name__))
    model = Net()
    result = model.load_state_dict(sd, strict=True)
    print("strict load: missing %d, unexpected %d"
          % (len(result.missing_keys), len(result.unexpected_keys)))

    trained = torch.load(out_dir + "/train.pth", weights_only=False)["model"]
    for key, ref in trained.items():
        got = sd[key[len("module."):]]
        if got.dtype != ref.dtype or got.shape != ref.shape or not torch.equal(got, ref):
            sys.exit("tensor %s differs from the trained one" % key)
    print("tensors: all %d equal the trained ones bit for bit" % len(trained))
    print("tie kept: %s" % (sd["head.weight"].data_ptr() == sd["embed.weight"].data_ptr()))

    io = torch.load(out_dir + "/io.pth", weights_only=True)
    model.eval()
    with torch.no_grad():
        y = model(io["x"], io["tokens"])
    diff = (y - io["y"]).abs().max().item()
    print("python forward: max abs diff %g, bit-exact %s" % (diff, torch.equal(y, io["y"])))


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2])
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: torch_model.py train DIR | check DIR SAVED")
