#!/usr/bin/python3
"""Generates the seed corpora of the fuzz targets (they are not committed).

Usage: /usr/bin/python3 fuzz/make_seeds.py WOPT OUTDIR

WOPT is a built wopt (it converts the torch fixtures into .safetensors,
.wopt, text IR and manifests); OUTDIR/<target>/ gets one directory per
target of fuzz/CMakeLists.txt. The torch files come from the lit suite's
fixture generator (test/Inputs/make_fixtures.py, real torch.save), the text
IR, pipelines and manifests from the suite's own inputs, so the seeds grow
with the tests.
"""
import collections
import glob
import io
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "Inputs"))

import make_fixtures  # noqa: E402  (imports torch)
import make_safetensors  # noqa: E402

import torch  # noqa: E402


def put(outdir, target, name, data):
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def extra_torch_objects():
    """Small values the fixtures lack: what pickles must cover."""
    t = torch.arange(6, dtype=torch.float32)
    return {
        "empty": collections.OrderedDict(),
        "scalars": {"i": 1 << 40, "neg": -7, "f": 1.5, "s": "ünï", "b": b"\x00\xff",
                    "t": (1, 2), "l": [None, True, False], "n": None},
        "int-keys": {0: t[:2], 1: {"x": t[2:]}},
        "strided": {"a": t.reshape(2, 3).t(), "b": t[::2], "c": t.expand(3, 6)},
        "big-shape": {"z": torch.zeros(0, 1 << 20), "s": torch.tensor(3.0)},
        "half": {"h": t.half(), "bf": t.bfloat16(), "b": t > 2, "c": t.to(torch.complex64)},
    }


def torch_seeds(outdir, tmp):
    make_fixtures.main(["make_fixtures.py", tmp, "all"])
    for name, obj in extra_torch_objects().items():
        path = os.path.join(tmp, name + ".pth")
        torch.save(obj, path)
        torch.save(obj, os.path.join(tmp, name + "-legacy.pth"),
                   _use_new_zipfile_serialization=False)
    files = sorted(glob.glob(os.path.join(tmp, "*.pth")))
    for path in files:
        data = open(path, "rb").read()
        base = os.path.basename(path)
        if data.startswith(b"PK"):
            put(outdir, "zip", base, data)
            put(outdir, "pth", base, data)
            with zipfile.ZipFile(path) as z:
                for n in z.namelist():
                    if n.endswith("data.pkl"):
                        put(outdir, "pickle", base + ".pkl", z.read(n))
        else:
            put(outdir, "legacy", base, data)
    return files


def python_pickles(outdir):
    values = [None, True, 0, -1, 255, 65536, 1 << 70, -(1 << 70), 1.25, "", "a\nb",
              "\u20ac", b"", b"\x80", (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), [], [[]],
              {}, {"a": [1, {"b": (2, 3)}]}, {1: "x", 2: "y"}, set(), frozenset([1]),
              bytearray(b"ab"), collections.OrderedDict(a=1)]
    shared = [1, 2]
    values.append([shared, shared, {"s": shared}])
    for proto in range(0, 6):
        for i, v in enumerate(values):
            try:
                data = pickle.dumps(v, protocol=proto)
            except Exception:
                continue
            put(outdir, "pickle", "py-p%d-%02d.pkl" % (proto, i), data)


def wopt_conversions(wopt, outdir, files, tmp):
    """Each torch seed as safetensors, .wopt, text IR with data, manifest."""
    for path in files:
        base = os.path.splitext(os.path.basename(path))[0]
        for target, args, ext in [
            ("safetensors", ["-o"], ".safetensors"),
            ("wopt", ["-o"], ".wopt"),
            ("wir", ["-print-data", "-print-provenance", "-o"], ".wir"),
            ("manifest", ["-emit=manifest", "-o"], ".json"),
        ]:
            out = os.path.join(tmp, base + ext)
            r = subprocess.run([wopt, path] + args + [out], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                put(outdir, target, base + ext, open(out, "rb").read())


def safetensors_seeds(outdir):
    for kind, fn in make_safetensors.KINDS.items():
        put(outdir, "safetensors", "hand-" + kind + ".safetensors", fn())


def text_seeds(outdir):
    """Every .wir part of the lit suite, split at '// -----'."""
    for path in sorted(glob.glob(os.path.join(ROOT, "test", "**", "*.wir"), recursive=True)):
        text = open(path, "rb").read()
        parts = re.split(rb"\n//\s*-{5,}\s*\n", text)
        rel = os.path.relpath(path, ROOT).replace("/", "_")
        for i, part in enumerate(parts):
            put(outdir, "wir", "%s-%d.wir" % (rel, i), part)


def pipeline_seeds(wopt, outdir):
    """The pipelines wopt ships and those the lit suite runs."""
    texts = set()
    help_text = subprocess.run([wopt, "--help"], capture_output=True, text=True).stdout
    names = re.findall(r"^  ([a-z0-9-]+)\s", help_text.split("PASSES")[1], re.M)
    for name in names:
        texts.add(name)
        out = subprocess.run([wopt, "--help-pass=" + name], capture_output=True,
                             text=True).stdout
        m = re.search(r"Pipeline:\n  (.*)\n", out)
        if m:
            texts.add(m.group(1))
        opts = re.findall(r"^  ([a-z-]+)=<(\w+)>", out, re.M)
        if opts:
            sample = {"string": "x", "list": "a,b", "int": "1", "bool": "true"}
            texts.add(name + "{" + " ".join("%s=%s" % (o, sample.get(t, "1"))
                                             for o, t in opts) + "}")
    for path in glob.glob(os.path.join(ROOT, "test", "**", "*.*"), recursive=True):
        try:
            text = open(path, encoding="utf-8").read()
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        for m in re.finditer(r"-pass-pipeline='([^']*)'", text):
            texts.add(m.group(1))
    for i, t in enumerate(sorted(texts)):
        put(outdir, "pipeline", "p%03d.txt" % i, t.encode())


def manifest_seeds(outdir):
    put(outdir, "manifest", "hand-1.json", b'{"source": "x", "entries": ['
        b'{"name": "a.0.w", "dtype": "f32", "shape": [2, 3]},'
        b'{"name": "a.1.w", "dtype": "float16", "shape": [], "optional": true}]}')


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    wopt, outdir = argv[1], argv[2]
    tmp = os.path.join(outdir, ".work")
    os.makedirs(tmp, exist_ok=True)
    files = torch_seeds(outdir, tmp)
    python_pickles(outdir)
    wopt_conversions(wopt, outdir, files, tmp)
    safetensors_seeds(outdir)
    text_seeds(outdir)
    pipeline_seeds(wopt, outdir)
    manifest_seeds(outdir)
    for f in glob.glob(os.path.join(tmp, "*")):
        os.remove(f)
    os.rmdir(tmp)
    for t in sorted(os.listdir(outdir)):
        print("%-12s %d seeds" % (t, len(os.listdir(os.path.join(outdir, t)))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
