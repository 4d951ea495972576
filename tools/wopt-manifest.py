#!/usr/bin/python3
"""Writes the wopt manifest of a model: the keys, dtypes and shapes of its
state_dict(), which `wopt -target=m.json` and `manifest=m.json` hold a
checkpoint to.

usage: wopt-manifest.py MODULE:CALLABLE [KWARGS_JSON] [-o OUT]
                        [--optional GLOB]... [--path DIR]... [--no-meta]

MODULE:CALLABLE is imported and called with the keyword arguments in
KWARGS_JSON (a JSON object), e.g.
    wopt-manifest.py timm:create_model '{"model_name": "vit_small_patch14_dinov2"}'
    wopt-manifest.py mypkg.models:build_vit '{"depth": 12}' -o vit.json
CALLABLE may be dotted (`torchvision.models:resnet.resnet18`) and may be a
class. The model is built on the meta device, so no weight is allocated or
initialised (a few seconds and a few MB even for billions of parameters);
when building it there fails (a constructor that reads tensor values), it
is built again on the CPU, said on stderr. --no-meta builds on the CPU.
--optional marks the entries matching the glob (fnmatch) optional: keys
the model initialises itself. --path adds directories to the import path
(the current directory is on it).

Exit codes: 0 written; 2 bad arguments, an import or build error, or a
callable that does not return a torch.nn.Module (one line, naming it).
Needs Python 3 with torch (Debian: python3-torch).
"""
import argparse
import contextlib
import fnmatch
import importlib
import json
import os
import sys

try:
    import torch
except ImportError:
    sys.exit("wopt-manifest: error: this Python has no torch "
             "(Debian: apt install python3-torch)")


def fail(msg):
    print("wopt-manifest: error: " + msg, file=sys.stderr)
    sys.exit(2)


# The factory functions torch >= 2.0's `with torch.device(...)` redirects;
# torch 1.13 has no such context, so a TorchFunctionMode does the same.
FACTORY_NAMES = [
    "empty", "empty_strided", "empty_like", "zeros", "zeros_like", "ones",
    "ones_like", "full", "full_like", "rand", "rand_like", "randn",
    "randn_like", "randint", "randperm", "arange", "range", "linspace",
    "logspace", "eye", "tensor", "as_tensor", "scalar_tensor",
    "hann_window", "hamming_window", "bartlett_window", "blackman_window",
    "kaiser_window", "tril_indices", "triu_indices", "normal",
]


@contextlib.contextmanager
def on_meta():
    """Tensors created inside have device 'meta' unless a device is given."""
    if hasattr(torch, "get_default_device") or hasattr(torch.utils, "_device"):
        with torch.device("meta"):
            yield
        return
    from torch.overrides import TorchFunctionMode
    factories = {getattr(torch, n) for n in FACTORY_NAMES if hasattr(torch, n)}

    class MetaMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in factories and kwargs.get("device") is None:
                kwargs["device"] = "meta"
            return func(*args, **kwargs)

    with MetaMode():
        yield


def resolve(spec):
    if ":" not in spec:
        fail("'%s': expected MODULE:CALLABLE, e.g. timm:create_model" % spec)
    mod_name, attr = spec.split(":", 1)
    if not mod_name or not attr:
        fail("'%s': expected MODULE:CALLABLE, e.g. timm:create_model" % spec)
    try:
        obj = importlib.import_module(mod_name)
    except Exception as e:  # what the user's module raised
        fail("cannot import '%s': %s: %s" % (mod_name, type(e).__name__, e))
    for part in attr.split("."):
        if not hasattr(obj, part):
            fail("'%s' has no attribute '%s'" % (spec, part))
        obj = getattr(obj, part)
    if not callable(obj):
        fail("'%s' is not callable" % spec)
    return obj


def build(fn, kwargs, spec, meta):
    if meta:
        try:
            with on_meta():
                model = fn(**kwargs)
            return model, "meta"
        except Exception as e:
            why = (str(e).splitlines() or [""])[0].split(". ")[0][:160]
            print("wopt-manifest: note: %s could not be built on the meta "
                  "device (%s: %s); building it on the CPU"
                  % (spec, type(e).__name__, why), file=sys.stderr)
    try:
        model = fn(**kwargs)
    except Exception as e:
        fail("%s(**%s) raised %s: %s" % (spec, json.dumps(kwargs),
                                         type(e).__name__, e))
    return model, "cpu"


def write_file(path, text):
    """Replaces path atomically; never writes through a symlink or onto a
    device, and keeps an existing file's permissions."""
    import stat
    mode = None
    if os.path.lexists(path):
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            fail("%s: not a regular file (a symlink, directory or device); "
                 "not replacing it" % path)
        mode = stat.S_IMODE(st.st_mode)
    tmp = os.path.join(os.path.dirname(path) or ".",
                       ".%s.tmp%d" % (os.path.basename(path), os.getpid()))
    try:
        with open(tmp, "w") as f:
            f.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        fail("%s: %s" % (path, e.strerror))


def main():
    p = argparse.ArgumentParser(
        prog="wopt-manifest.py",
        description="Write the wopt manifest (keys, dtypes, shapes) of the "
                    "model MODULE:CALLABLE(**KWARGS) builds.")
    p.add_argument("spec", metavar="MODULE:CALLABLE")
    p.add_argument("kwargs", metavar="KWARGS_JSON", nargs="?", default="{}",
                   help="keyword arguments as a JSON object")
    p.add_argument("-o", dest="out", default="-",
                   help="output file (default: stdout)")
    p.add_argument("--optional", action="append", default=[],
                   metavar="GLOB", help="mark matching entries optional")
    p.add_argument("--path", action="append", default=[], metavar="DIR",
                   help="add DIR to the import path")
    p.add_argument("--no-meta", action="store_true",
                   help="build on the CPU, not on the meta device")
    a = p.parse_args()

    try:
        kwargs = json.loads(a.kwargs)
    except json.JSONDecodeError as e:
        fail("KWARGS_JSON is not JSON: %s" % e)
    if not isinstance(kwargs, dict):
        fail("KWARGS_JSON must be a JSON object, got %s" % type(kwargs).__name__)
    sys.path[:0] = a.path + [os.getcwd()]

    fn = resolve(a.spec)
    model, device = build(fn, kwargs, a.spec, not a.no_meta)
    if not isinstance(model, torch.nn.Module):
        fail("%s returned %s, not a torch.nn.Module"
             % (a.spec, type(model).__name__))

    entries, used = [], set()
    for name, t in model.state_dict().items():
        if not isinstance(t, torch.Tensor):
            continue
        e = {"name": name, "dtype": str(t.dtype).replace("torch.", ""),
             "shape": list(t.shape)}
        hits = [g for g in a.optional if fnmatch.fnmatchcase(name, g)]
        if hits:
            e["optional"] = True
            used.update(hits)
        entries.append(e)
    for g in a.optional:
        if g not in used:
            fail("--optional '%s' matched no key of %s" % (g, a.spec))

    source = a.spec + ("(**%s)" % json.dumps(kwargs, sort_keys=True)
                       if kwargs else "()")
    # One entry a line, as docs/Formats.md shows manifests.
    text = ('{\n "format": "wopt-manifest",\n "version": 1,\n "source": %s,\n'
            ' "entries": [\n%s\n ]\n}\n'
            % (json.dumps(source),
               ",\n".join("  " + json.dumps(e) for e in entries)))
    if a.out == "-":
        sys.stdout.write(text)
    else:
        write_file(a.out, text)
    print("wopt-manifest: %s: %d entries, built on %s"
          % ("stdout" if a.out == "-" else a.out, len(entries), device),
          file=sys.stderr)


if __name__ == "__main__":
    main()
