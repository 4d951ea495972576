"""Follows a verify report's allow-missing hint as a user would paste it.

usage: apply_hints.py WOPT INPUT MANIFEST

Runs verify-against-manifest, takes the `add allow-missing=...` text of the
allow-missing hint verbatim, and runs again with it plus
prune-unexpected=true, until the check passes or no such hint is left: the
hints are right (and pasteable) when that ends in a pass.
Prints each run's exit code and verdict line.
"""
import subprocess
import sys


def run(wopt, inp, options):
    pipeline = "verify-against-manifest{%s}" % options
    p = subprocess.run([wopt, inp, "-pass-pipeline=" + pipeline, "-emit=summary"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    return p.returncode, p.stderr.splitlines()


def main(wopt, inp, manifest):
    code, lines = run(wopt, inp, "manifest=" + manifest)
    print("first run: exit %d: %s" % (code, lines[0] if lines else ""))
    marker = "add allow-missing="
    allowed = []
    # The hint lists at most a few globs (then ",..."): paste, rerun, repeat.
    for _ in range(5):
        hints = [l for l in lines if l.startswith("hint:") and marker in l]
        if code != 1 or not hints:
            break
        allow = hints[0][hints[0].index(marker) + len(marker):]
        if allow.endswith(",..."):
            allow = allow[:-4]
        allowed.append(allow)
        code, lines = run(wopt, inp, "manifest=%s prune-unexpected=true allow-missing=%s"
                          % (manifest, ",".join(allowed)))
    print("with %d hints: exit %d" % (len(allowed), code))
    for l in lines:
        print(l)


if __name__ == "__main__":
    main(*sys.argv[1:])
