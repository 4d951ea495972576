#!/usr/bin/python3
"""Export then import gives the same IR, for every exporter.

Usage: export_property.py WOPT WORKDIR FILE|DIR...   (a DIR: its .wir and .pth files)

Each FILE (.wir, split at '// -----' lines, or any file wopt reads) that
wopt accepts is printed with its data; then it is exported to .pth, .wopt
and .safetensors. An exporter may refuse (exit 2, one error line, no file);
if it writes a file, wopt must read it back to the same IR: the same text
for .pth and .wopt (but for the header, which names the format), the same
tensor lines for safetensors (which holds named tensors only). Prints one
line per failure and a closing count; exits 1 on any failure.
"""
import os
import re
import subprocess
import sys

SPLIT = re.compile(r"^\s*//\s*-{5,}\s*$", re.M)
KINDS = [".wopt", ".pth", ".safetensors"]


def run(args):
    p = subprocess.run(args, capture_output=True)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def body(text):
    """The IR without its header attributes (format, version, prefix)."""
    return re.sub(r"^checkpoint attributes \{[^}]*\}", "checkpoint", text, count=1, flags=re.M)


def parts(path):
    if not path.endswith(".wir"):
        yield path, None
        return
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        chunks = SPLIT.split(f.read())
    for i, chunk in enumerate(chunks):
        yield "%s#%d" % (path, i), chunk


def export(wopt, src, out):
    if os.path.exists(out):
        os.remove(out)
    return run([wopt, src, "-o", out])


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def check(wopt, work, label, src):
    failures = []
    fail = lambda ext, msg: failures.append("%s -> %s: %s" % (label, ext, msg))
    code, canon, _ = run([wopt, src, "-print-data-limit=1000000"])
    if code != 0:
        return None  # an error case of its own test, not an IR
    # Values in logical order, views materialised: what safetensors holds.
    ref = os.path.join(work, "ref.safetensors")
    has_ref = export(wopt, src, ref)[0] == 0
    for ext in KINDS:
        out = os.path.join(work, "out" + ext)
        code, _, err = export(wopt, src, out)
        if code != 0:
            lines = err.strip().splitlines()
            if code != 2 or os.path.exists(out) or not lines or "error:" not in lines[0]:
                fail(ext, "exit %d, %s" % (code, err.strip()[:300]))
            continue
        code, back, err = run([wopt, out, "-print-data-limit=1000000"])
        if code != 0:
            fail(ext, "wopt cannot read its own output: " + err.strip()[:300])
            continue
        if ext == ".wopt":
            # wopt's own format holds the IR itself.
            if body(back) != body(canon):
                fail(ext, "IR differs after the round trip")
            continue
        # A format may spell the IR its own way (an untyped storage, a view
        # made contiguous) but a second trip changes nothing, and the values
        # are the input's.
        again = os.path.join(work, "again" + ext)
        code, _, err = export(wopt, out, again)
        if code != 0:
            fail(ext, "cannot export its own output again: " + err.strip()[:300])
            continue
        if body(run([wopt, again, "-print-data-limit=1000000"])[1]) != body(back):
            fail(ext, "a second round trip changes the IR")
        if has_ref:
            cmp = os.path.join(work, "cmp.safetensors")
            if export(wopt, out, cmp)[0] != 0 or not same_bytes(ref, cmp):
                fail(ext, "tensor values differ after the round trip")
    return failures


def main():
    wopt, work, files = sys.argv[1], sys.argv[2], []
    for arg in sys.argv[3:]:
        if not os.path.isdir(arg):
            files.append(arg)
            continue
        for root, _, names in sorted(os.walk(arg)):
            files += [os.path.join(root, n) for n in sorted(names) if n.endswith((".wir", ".pth"))]
    os.makedirs(work, exist_ok=True)
    checked, failures = 0, []
    for path in files:
        for label, chunk in parts(path):
            src = path
            if chunk is not None:
                src = os.path.join(work, "part.wir")
                with open(src, "w", encoding="utf-8", errors="surrogateescape") as f:
                    f.write(chunk)
            result = check(wopt, work, label, src)
            if result is None:
                continue
            checked += 1
            failures += result
    for f in failures:
        print("FAIL: " + f)
    print("%d inputs, %d failures" % (checked, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
