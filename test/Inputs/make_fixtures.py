#!/usr/bin/python3
"""Writes torch.save checkpoints for the lit tests, with real PyTorch.

Usage: /usr/bin/python3 make_fixtures.py OUTDIR NAME...   (NAME 'all' = every fixture)
       /usr/bin/python3 make_fixtures.py --list

Each fixture is OUTDIR/NAME.pth. Values are deterministic (no RNG), so tests
can check bytes. To add a fixture, write a function below and decorate it
with @fixture; it returns the object to save, or saves it itself when it
needs special torch.save arguments (then it returns None).

Fixtures:
  dtypes        one 1-D tensor per dtype torch 1.13 can save
  shapes        0-dim, empty, 2-D contiguous, transposed (non-contiguous)
  views         views with storage offsets into one storage, plus the base
  tied          nn.Module state_dict with tied weights (same storage)
  nested        dicts/lists/tuples nested, str/int/float/bool/None leaves
  state_dict    nn.Sequential state_dict() (OrderedDict with _metadata)
  training      {'model', 'optimizer' (int keys), 'epoch', 'args' Namespace}
  namespace     argparse.Namespace at the root with a tensor inside
  numpy         numpy scalars, arrays and dtypes next to a tensor
  parameter     bare nn.Parameter values (requires_grad True/False)
  proto4        state dict saved with pickle_protocol=4
  legacy        state dict saved with _use_new_zipfile_serialization=False
  legacy_nested legacy file with views, tied storages and a namespace
  prefix        saved to a path, so the record folder is 'prefix', not 'archive'
  bytes         bytes values (_codecs.encode in protocol 2)
"""
import argparse
import collections
import io
import os
import sys

import torch

FIXTURES = collections.OrderedDict()


def fixture(fn):
    FIXTURES[fn.__name__] = fn
    return fn


def ramp(n, dtype=torch.float32):
    return torch.arange(n, dtype=torch.float64).to(dtype)


@fixture
def dtypes(path):
    return collections.OrderedDict(
        [
            ("f32", ramp(3)),
            ("f64", ramp(3, torch.float64)),
            ("f16", ramp(3, torch.float16)),
            ("bf16", ramp(3, torch.bfloat16)),
            ("c64", torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)),
            ("c128", torch.tensor([1 + 2j], dtype=torch.complex128)),
            ("bool", torch.tensor([True, False, True])),
            ("u8", ramp(4, torch.uint8)),
            ("i8", torch.tensor([-1, 2], dtype=torch.int8)),
            ("i16", torch.tensor([-3, 4], dtype=torch.int16)),
            ("i32", torch.tensor([-5, 6], dtype=torch.int32)),
            ("i64", torch.tensor([-7, 8], dtype=torch.int64)),
        ]
    )


@fixture
def shapes(path):
    m = ramp(6).reshape(2, 3)
    return {
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
        "matrix": m,
        "transposed": ramp(6).reshape(2, 3).t(),
    }


@fixture
def views(path):
    base = ramp(10)
    return {"base": base, "tail": base[4:], "row": base.view(2, 5)[1], "col": base.view(2, 5)[:, 2]}


@fixture
def tied(path):
    emb = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    with torch.no_grad():
        emb.weight.copy_(ramp(15).reshape(5, 3))
    return torch.nn.ModuleDict({"emb": emb, "head": head}).state_dict()


@fixture
def nested(path):
    return {
        "a": {"b": {"c": ramp(2)}},
        "list": [ramp(1), 2, "three", None],
        "tuple": (1.5, True, (ramp(2, torch.int64),)),
        "neg": -123456789012,
        "big": 2**70,
    }


def _seq():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(ramp(p.numel()).reshape(p.shape))
    return net


@fixture
def state_dict(path):
    return _seq().state_dict()


@fixture
def training(path):
    net = _seq()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.ones(4, 2)).sum().backward()
    opt.step()
    ns = argparse.Namespace(lr=0.1, epochs=3, name="run")
    return {"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "args": ns}


@fixture
def namespace(path):
    return argparse.Namespace(weight=ramp(2), depth=12)


@fixture
def numpy(path):
    import numpy as np

    return {
        "tensor": ramp(2),
        "np_array": np.arange(3, dtype=np.float32),
        "np_scalar": np.float64(2.5),
        "np_int": np.int64(7),
        "np_dtype": np.dtype("int32"),
    }


@fixture
def parameter(path):
    return {"p": torch.nn.Parameter(ramp(2)), "frozen": torch.nn.Parameter(ramp(2), requires_grad=False)}


@fixture
def proto4(path):
    torch.save(_seq().state_dict(), path, pickle_protocol=4)


@fixture
def legacy(path):
    torch.save(_seq().state_dict(), path, _use_new_zipfile_serialization=False)


@fixture
def legacy_nested(path):
    base = ramp(6)
    obj = {"base": base, "tail": base[2:], "t": base.view(2, 3).t(), "h": ramp(3, torch.float16),
           "ns": argparse.Namespace(k=1)}
    torch.save(obj, path, _use_new_zipfile_serialization=False)


@fixture
def prefix(path):
    # Saved to a path: torch names the folder after the file ("prefix/").
    torch.save({"w": ramp(4)}, path)


@fixture
def bytes(path):
    return {"blob": b"\x00\x01\xffabc", "empty": b"", "w": ramp(1)}


def write(name, outdir):
    path = os.path.join(outdir, name + ".pth")
    obj = FIXTURES[name](path)
    if obj is not None:
        # Through a buffer, so the record folder is 'archive/'.
        buf = io.BytesIO()
        torch.save(obj, buf)
        with open(path, "wb") as f:
            f.write(buf.getvalue())


def main(argv):
    if argv[1:] == ["--list"]:
        print("\n".join(FIXTURES))
        return 0
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    outdir, names = argv[1], argv[2:]
    if names == ["all"]:
        names = list(FIXTURES)
    os.makedirs(outdir, exist_ok=True)
    for name in names:
        if name not in FIXTURES:
            sys.stderr.write("unknown fixture %r; try --list\n" % name)
            return 2
        write(name, outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
