#!/usr/bin/python3
"""Global names as an attacker writes them, through wopt, then into torch.

Usage: /usr/bin/python3 hostile_globals.py WOPT WORKDIR

For each name, a torch zip holds {'w': tensor, 'meta': <global>} with the
global spelled by STACK_GLOBAL (any string) and, where the name has no
newline, by GLOBAL. wopt must refuse every name find_class could not resolve
(exit 2, one line naming the byte, no output). For every file wopt accepts,
the output is loaded with torch.load(weights_only=False) through an
unpickler that records each global it is asked for and resolves only inert
ones: the output may ask for nothing the input did not. Prints one line per
case and a closing count; exits 1 on any violation.
"""
import io
import os
import pickle
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bad_inputs import U, pid, tensor, torch_zip  # noqa: E402

HOSTILE = [
    ("newline-injection", "builtins\nprint\n(X\x05\x00\x00\x00PWNEDtR0cbuiltins", "len"),
    ("newline-in-name", "builtins", "print\nx"),
    ("memo-collision", "collections\nOrderedDict", "x"),
    ("space", "os system", "x"),
    ("space-in-name", "builtins", "eval x"),
    ("tab", "builtins\t", "len"),
    ("empty-module", "", "len"),
    ("empty-name", "builtins", ""),
    ("nul", "builtins\x00", "len"),
    ("nul-in-name", "builtins", "len\x00"),
    ("leading-digit", "9lives", "x"),
    ("leading-digit-name", "builtins", "1len"),
    ("double-dot", "os..path", "join"),
    ("trailing-dot", "builtins.", "len"),
    ("leading-dot", ".builtins", "len"),
    ("dot-only-name", "builtins", "."),
    ("semicolon", "builtins;import os", "len"),
    ("parenthesis", "builtins", "len()"),
    ("carriage-return", "builtins\r", "len"),
    ("unicode-line-separator", "builtins\u2028", "len"),
    ("nbsp", "builtins\u00a0", "len"),
    ("very-long-bad", "m" * 100000 + " x", "x"),
]
# Names find_class could resolve: accepted, written back, asked for again.
VALID = [
    ("namespace", "argparse", "Namespace"),
    ("dotted-module", "torch.nn.modules.linear", "Linear"),
    ("underscore", "_codecs", "encode"),
    ("unicode-letters", "m\u00f3dulo", "Cl\u00e4sse"),
    # Python puts no limit on a name's length; neither does wopt.
    ("very-long", "m" * 100000, "x"),
    ("very-long-name", "builtins", "n" * 100000),
]


def stack_global(module, name):
    """SHORT_BINUNICODE/BINUNICODE twice, then STACK_GLOBAL (any bytes)."""
    return U(module) + U(name) + b"\x93"


def text_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def checkpoint(global_bytes):
    pkl = (b"\x80\x02}(" + U("w") + tensor(pid()) + U("meta") + global_bytes
           + b"u.")
    return torch_zip(pkl)


class Recorder(pickle.Unpickler):
    """Records every global asked for; resolves only torch's own rebuild
    machinery and plain containers, so nothing from the file can run."""

    asked = None
    SAFE = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
            ("torch", "FloatStorage")}

    def find_class(self, module, name):
        Recorder.asked.add((module, name))
        if (module, name) in self.SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError("refused %r.%r" % (module, name))


class RecorderModule:
    Unpickler = Recorder
    load = pickle.load
    __name__ = "recorder"


def globals_asked(path):
    import torch

    Recorder.asked = set()
    try:
        torch.load(path, weights_only=False, pickle_module=RecorderModule)
    except Exception:
        pass  # the refusal ends the load; what was asked is recorded
    return Recorder.asked


def run_wopt(wopt, src, dst):
    if os.path.exists(dst):
        os.remove(dst)
    p = subprocess.run([wopt, src, "-o", dst], capture_output=True, text=True)
    return p.returncode, p.stderr


def main():
    wopt, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    failures = 0
    cases = []
    for label, module, name in HOSTILE:
        cases.append((label + "/stack", stack_global(module, name), False))
        if "\n" not in module + name:
            cases.append((label + "/global", text_global(module, name), False))
    for label, module, name in VALID:
        cases.append((label + "/stack", stack_global(module, name), True))
        cases.append((label + "/global", text_global(module, name), True))
    for label, gbytes, valid in cases:
        src = os.path.join(work, label.replace("/", "-") + ".pth")
        dst = src + ".out.pth"
        with open(src, "wb") as f:
            f.write(checkpoint(gbytes))
        code, err = run_wopt(wopt, src, dst)
        lines = err.strip().splitlines()
        if not valid:
            ok = (code == 2 and not os.path.exists(dst) and len(lines) == 1
                  and "is not a dotted Python identifier at byte" in lines[0])
            verdict = "refused" if ok else "NOT REFUSED (exit %d): %s" % (code, err.strip()[:200])
        else:
            before, after = globals_asked(src), globals_asked(dst) if code == 0 else None
            ok = code == 0 and after is not None and after <= before
            verdict = ("accepted, asks for nothing new" if ok else
                       "BAD (exit %d, new globals %r): %s" % (
                           code, (after or set()) - before, err.strip()[:200]))
        failures += not ok
        print("%s: %s" % (label, verdict))
    print("%d cases, %d failures" % (len(cases), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
