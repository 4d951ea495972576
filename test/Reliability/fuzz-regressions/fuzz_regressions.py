"""The lit test format that replays fuzz/regressions/: one test per file,
named Reliability/fuzz-regressions/<target>/<file>.

Each file is first given to its fuzz target, built with the normal compiler
(wopt-fuzz-<target> FILE, fuzz/ReplayMain.cpp): no crash, no broken
property, within 10 s. Then wopt itself is judged on it, as a user would
run it (each run within 10 s, 1 GiB of address space and 1 GiB of file):
- every checkpoint input: each export either refuses (exit 2, one line) or
  writes a file wopt reads back; a torch zip exported again names no global
  its data.pkl did not (no code injection through export);
- a pickle: wrapped as the data.pkl of a torch archive and exported, it
  must come back the same value for Python's own unpickler (pickle_oracle);
- a manifest: verify-against-manifest with it, on a 119-tensor checkpoint,
  ends (well within 5 s) with exit 0, 1 or 2.
Files listed in fuzz/regressions/KNOWN fail today because of an open issue
(the reason names it): they are expected failures, and an unexpected pass
says the line can go.
"""
import os
import shutil
import subprocess
import sys

import lit.formats
import lit.Test

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "malformed"))
import builders  # noqa: E402
import pickle_oracle  # noqa: E402

CHECKPOINT_TARGETS = {"pth", "legacy", "safetensors", "wopt", "zip"}
EXPORTS = [("torch", ".pth"), ("safetensors", ".safetensors"), ("flatbuffers", ".wopt")]
# What wopt's torch export may name besides the input's own globals.
EXPORT_GLOBALS = {
    ("collections", "OrderedDict"), ("_codecs", "encode"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"), ("torch", "Tensor"),
    ("torch.nn.parameter", "Parameter"), ("__builtin__", "set"), ("__builtin__", "frozenset"),
    ("__builtin__", "bytearray"), ("__builtin__", "complex"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "complex"),
}
ELEMENT_SIZE = {"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2,
                "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1,
                "ByteStorage": 1, "BoolStorage": 1, "UntypedStorage": 1}


def limit_resources():
    # A blow-up (an export that materialises terabytes) must fail here, not
    # take the machine: 1 GiB of address space, 1 GiB files.
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30, 1 << 30))


def run(cmd, timeout):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           preexec_fn=limit_resources)
        return p.returncode, p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % timeout


def refused_cleanly(rc, err):
    lines = [l for l in err.rstrip("\n").split("\n") if l and not l.startswith("wopt: warning:")]
    return rc == 2 and len(lines) == 1 and lines[0].startswith("wopt: error: ")


def judge_exports(wopt, inp, tmp):
    problems = []
    for emit, ext in EXPORTS:
        out = os.path.join(tmp, "out" + ext)
        rc, err = run([wopt, inp, "-emit=" + emit, "-o", out], 10)
        if rc == 0:
            rc2, err2 = run([wopt, out, "-emit=summary"], 10)
            if rc2 != 0:
                problems.append("wopt -emit=%s wrote a file wopt refuses: %s" % (emit, err2.strip()))
            elif emit == "torch" and open(inp, "rb").read(2) == b"PK":
                problems += judge_globals(inp, out)
        elif not refused_cleanly(rc, err):
            problems.append("wopt -emit=%s: exit %s: %s" % (emit, rc, err.strip()[:300]))
    return problems


def data_pkl(path):
    import zipfile
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        return z.read(name)


def judge_globals(inp, out):
    """A torch zip exported again names no global its data.pkl did not,
    but for the rebuild functions and storage classes wopt writes."""
    before = pickle_oracle.globals_named(data_pkl(inp))
    after = pickle_oracle.globals_named(data_pkl(out))
    new = sorted(g for g in after - before - EXPORT_GLOBALS
                 if not (g[0] == "torch" and g[1].endswith("Storage")))
    return ["the torch export names globals the input does not: %s" % new] if new else []


def judge_pickle(wopt, inp, tmp):
    data = open(inp, "rb").read()
    try:
        want = pickle_oracle.load(data)
        pids = pickle_oracle.persistent_ids(data)
    except Exception:
        return []  # Python refuses it too: nothing to compare
    records = {}
    for key, cls, numel in pids:
        if isinstance(numel, int) and 0 <= numel < 1 << 20:
            records[str(key)] = b"\0" * (numel * ELEMENT_SIZE.get(cls, 1))
    wrapped = os.path.join(tmp, "wrapped.pth")
    with open(wrapped, "wb") as f:
        f.write(builders.torch_zip(data, records=records))
    out = os.path.join(tmp, "out.pth")
    rc, err = run([wopt, wrapped, "-o", out], 10)
    if rc != 0:
        return [] if refused_cleanly(rc, err) else ["wopt -o out.pth: exit %s: %s" % (rc, err.strip())]
    try:
        got = pickle_oracle.load(data_pkl(out))
    except Exception as e:
        return ["Python cannot unpickle wopt's export: %s" % e]
    if got != want:
        return ["wopt's export is another value for Python:\n  input:  %.600r\n  output: %.600r"
                % (want, got)]
    return []


def manifest_checkpoint(path):
    """A ConvNeXt-like state dict of 119 tensors (data elided)."""
    lines = ["checkpoint odict {"]
    t = lambda name, shape: lines.append('  tensor "%s" : f32[%s]' % (name, ", ".join(map(str, shape))))
    dims = [96, 192, 384, 768]
    for s, d in enumerate(dims):
        t("downsample_layers.%d.0.weight" % s, [d, 3 if s == 0 else dims[s - 1], 4, 4])
        t("downsample_layers.%d.0.bias" % s, [d])
        for b in range(3 if s < 3 else 2):
            p = "stages.%d.%d." % (s, b)
            for name, shape in [("dwconv.weight", [d, 1, 7, 7]), ("dwconv.bias", [d]),
                                ("norm.weight", [d]), ("norm.bias", [d]),
                                ("pwconv1.weight", [4 * d, d]), ("pwconv1.bias", [4 * d]),
                                ("grn.gamma", [1, 1, 1, 4 * d]), ("grn.beta", [1, 1, 1, 4 * d]),
                                ("pwconv2.weight", [d, 4 * d]), ("pwconv2.bias", [d])]:
                t(p + name, shape)
    t("norm.weight", [768])
    t("norm.bias", [768])
    t("head.weight", [1000, 768])
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def judge_manifest(wopt, inp, tmp):
    ck = os.path.join(tmp, "convnext.wir")
    manifest_checkpoint(ck)
    rc, err = run([wopt, ck, "-pass-pipeline=verify-against-manifest{manifest=%s}" % inp], 5)
    if rc not in (0, 1, 2):
        return ["verify-against-manifest: exit %s: %s" % (rc, err.strip()[-300:])]
    return []


def known_failures(root):
    known = {}
    path = os.path.join(root, "KNOWN")
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                known[name] = reason.strip()
    return known


class RegressionFormat(lit.formats.TestFormat):
    def __init__(self, root):
        self.root = root

    def getTestsInDirectory(self, testSuite, path_in_suite, litConfig, localConfig):
        known = known_failures(self.root)
        for target in sorted(os.listdir(self.root)):
            folder = os.path.join(self.root, target)
            if not os.path.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                test = lit.Test.Test(testSuite, path_in_suite + (target, name), localConfig)
                if target + "/" + name in known:
                    test.xfails = ["*"]
                yield test

    def execute(self, test, litConfig):
        target, name = test.path_in_suite[-2:]
        inp = os.path.join(self.root, target, name)
        tmp = test.getExecPath() + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        bindir = test.config.wopt_tools_dir
        wopt = os.path.join(bindir, "wopt")
        problems = []
        rc, err = run([os.path.join(bindir, "wopt-fuzz-" + target), inp], 10)
        if rc != 0:
            problems.append("wopt-fuzz-%s: exit %s\n%s" % (target, rc, err.strip()[-2000:]))
        elif target in CHECKPOINT_TARGETS:
            problems += judge_exports(wopt, inp, tmp)
        elif target == "pickle":
            problems += judge_pickle(wopt, inp, tmp)
        elif target == "manifest":
            problems += judge_manifest(wopt, inp, tmp)
        reason = known_failures(self.root).get(target + "/" + name)
        head = "known failure: %s\n" % reason if reason else ""
        if problems:
            return lit.Test.FAIL, head + "\n".join(problems)
        shutil.rmtree(tmp, ignore_errors=True)
        return lit.Test.PASS, head
