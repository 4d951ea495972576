#!/usr/bin/python3
"""Round-trips every kind make_serialization_kinds.py wrote through wopt.

Usage: /usr/bin/python3 run_serialization_kinds.py WOPT KINDSDIR WORKDIR
           [--expect TESTFILE] [--jobs N] [--only GLOB...] [--exclude GLOB...]
           [--keep]
       /usr/bin/python3 run_serialization_kinds.py --measure WOPT IN OUT [IN OUT...]
           [--max-rss-mib N] [--max-bytes N]

For every kind in KINDSDIR/kinds.json, two paths:
  pth:  wopt IN -o out.pth
  wopt: wopt IN -o x.wopt && wopt x.wopt -o out2.pth
If torch loads IN, each path must end in exit 0 with an output that
compare_loaded.py finds equal to IN (structure, values, tensors, storage
sharing and locations, object identity; and weights_only=True loadability is
kept), or in
exit 2 with a one-line message naming the construct, for kinds listed in the
expected-refusals table of TESTFILE:

    # REFUSE: <kind glob> <text the message must contain>  [-- reason]

If torch does not load IN, wopt must exit 2. Exit 2 must leave no output.
wopt runs with 1 GiB of address space, 64 MiB of file size and a 30 s
timeout, so a blow-up cannot hurt the machine; it counts as a wrong exit.

Prints one line per kind, the failures grouped by class, and
  summary: K kinds: E equal, R refused as expected, U unloadable refused, M mismatches, W wrong exits
Exits 1 if there is any mismatch or wrong exit.

--measure runs `/usr/bin/time -f %M wopt IN -o OUT` under the same limits,
for each pair, and prints exit code, output size and peak RSS against the limits (default
64 MiB, 10240 bytes), then compares OUT (a .wopt OUT converted back to .pth
first) with IN; the line ends in OK or FAIL.
"""
import argparse
import collections
import concurrent.futures
import fnmatch
import json
import os
import re
import signal
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_loaded  # noqa: E402

TIMEOUT = 30
LIMIT_AS = 1 << 30
LIMIT_FSIZE = 64 << 20


# Limits through the shell: a preexec_fn would make Python fork its whole
# torch-sized address space for every run (8x slower).
LIMITED = ["/bin/sh", "-c",
           f"ulimit -v {LIMIT_AS >> 10} && ulimit -f {LIMIT_FSIZE >> 9} && ulimit -c 0 && exec \"$@\"", "wopt"]


class Run:
    def __init__(self, cmd, code, err):
        self.cmd, self.code, self.err = cmd, code, err

    def first_error(self):
        lines = [l for l in self.err.splitlines() if l.strip()]
        return lines[0] if lines else ""


def run(cmd):
    try:
        p = subprocess.run(LIMITED + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
        return Run(cmd, p.returncode, p.stderr.decode("utf-8", "replace"))
    except subprocess.TimeoutExpired as e:
        return Run(cmd, "timeout", (e.stderr or b"").decode("utf-8", "replace"))


def remove(*paths):
    for p in paths:
        if os.path.lexists(p):
            os.remove(p)


def wopt_paths(wopt, src, work, name):
    """Both paths of one kind; returns {'pth': [runs], 'wopt': [runs]}."""
    out1 = os.path.join(work, name + ".out.pth")
    mid = os.path.join(work, name + ".wopt")
    out2 = os.path.join(work, name + ".out2.pth")
    remove(out1, mid, out2)
    r = {"pth": [run([wopt, src, "-o", out1])], "wopt": [run([wopt, src, "-o", mid])]}
    if r["wopt"][0].code == 0:
        r["wopt"].append(run([wopt, mid, "-o", out2]))
    return r, {"pth": [out1], "wopt": [mid, out2]}


# --- judging ------------------------------------------------------------------

class Verdict:
    """One path's result: status is equal, refused, unloadable, mismatch or wrong-exit."""

    def __init__(self, status, cls="", detail=""):
        self.status, self.cls, self.detail = status, cls, detail

    def __str__(self):
        return self.status if not self.detail else f"{self.status}({self.detail})"


def exit_text(code):
    if code == "timeout":
        return f"timeout after {TIMEOUT} s"
    if isinstance(code, int) and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def message_class(line, src):
    """A refusal message with the file and the numbers taken out, for grouping."""
    line = line.replace(src, "IN")
    line = re.sub(r"^wopt: error: [^:]*: ", "", line)
    line = re.sub(r"\b\d+\b", "N", line)
    return line[:110]


def mismatch_class(msg):
    msg = re.sub(r"^[^:]*: ", "", msg, count=1)  # the path
    msg = re.sub(r"met at [^,\s]+", "met at P", msg)
    msg = re.sub(r"\b\d+\b", "N", msg)
    return msg[:110]


def judge_refusal(kind, runs, outs, src, expect):
    last = runs[-1]
    leftover = [o for o in outs[len(runs) - 1:] if os.path.lexists(o)]
    if leftover:
        return Verdict("wrong-exit", "exit 2 left an output file", os.path.basename(leftover[0]))
    if not kind["torch_loads"]:
        return Verdict("unloadable")
    for glob, text in expect:
        if fnmatch.fnmatch(kind["name"], glob) and text.lower() in last.err.lower():
            return Verdict("refused")
    step = "reading its own .wopt: " if len(runs) == 2 else ""
    return Verdict("wrong-exit", "refused: " + step + message_class(last.first_error(), src),
                   last.first_error()[:160])


def judge(kind, path, runs, outs, src, original, wo_original, state):
    last = runs[-1]
    if last.code == 2:
        return judge_refusal(kind, runs, outs, src, state["expect"])
    if last.code != 0:
        why = exit_text(last.code)
        return Verdict("wrong-exit", why if not last.first_error() else f"{why}: "
                       + message_class(last.first_error(), src), last.first_error()[:160])
    if not kind["torch_loads"]:
        return Verdict("wrong-exit", "exit 0 on a file torch does not load",
                       kind["error"])
    if path == "wopt" and len(runs) == 1:
        return Verdict("wrong-exit", "no second step")
    out = outs[-1]
    if not os.path.exists(out):
        return Verdict("wrong-exit", "exit 0 without an output")
    size, in_size = os.path.getsize(out), os.path.getsize(src)
    if size > 16 * in_size + (1 << 20):
        return Verdict("mismatch", "output blow-up", f"{size} bytes from {in_size}")
    where = {}
    try:
        got = compare_loaded.load(out, locations=where)
    except Exception as e:
        return Verdict("mismatch", "output does not load: " + mismatch_class(f"x: {type(e).__name__}: {e}"),
                       f"{type(e).__name__}: {str(e)[:120]}")
    diff = compare_loaded.compare(original, got, locations=(state["locations"], where))
    if diff:
        return Verdict("mismatch", mismatch_class(diff), diff[:200])
    if wo_original:
        try:
            compare_loaded.load(out, weights_only=True)
        except Exception as e:
            return Verdict("mismatch", "weights_only=True load lost", f"{type(e).__name__}")
    return Verdict("equal")


RANK = {"mismatch": 4, "wrong-exit": 3, "refused": 2, "unloadable": 1, "equal": 0}


def parse_expect(path):
    table = []
    if path:
        with open(path) as f:
            for line in f:
                m = re.match(r"\s*#\s*REFUSE:\s*(\S+)\s+(.*?)\s*(--.*)?$", line)
                if m:
                    table.append((m.group(1), m.group(2)))
    return table


def run_kinds(args):
    with open(os.path.join(args.kinds, "kinds.json")) as f:
        manifest = json.load(f)
    kinds = [k for k in manifest["kinds"] if k["file"]
             and any(fnmatch.fnmatch(k["name"], g) for g in args.only)
             and not any(fnmatch.fnmatch(k["name"], g) for g in args.exclude)]
    if not kinds:
        print("no kinds selected")
        return 1
    os.makedirs(args.work, exist_ok=True)
    state = {"expect": parse_expect(args.expect)}
    counts = collections.Counter()
    classes = collections.defaultdict(list)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(wopt_paths, args.wopt, os.path.join(args.kinds, k["file"]),
                               args.work, k["name"]) for k in kinds]
        for kind, fut in zip(kinds, futures):
            src = os.path.join(args.kinds, kind["file"])
            runs, outs = fut.result()
            original = None
            if kind["torch_loads"] and any(r[-1].code == 0 for r in runs.values()):
                state["locations"] = {}
                original = compare_loaded.load(src, locations=state["locations"])
            verdicts = {}
            for path in ("pth", "wopt"):
                try:
                    verdicts[path] = compare_loaded.run_with_big_stack(
                        judge, kind, path, runs[path], outs[path], src, original,
                        kind["weights_only"], state)
                except Exception as e:  # the comparer itself failed
                    verdicts[path] = Verdict("mismatch", "comparer error: " + type(e).__name__, str(e)[:120])
            worst = max(verdicts.values(), key=lambda v: RANK[v.status]).status
            counts[worst] += 1
            for path, v in verdicts.items():
                if v.status in ("mismatch", "wrong-exit"):
                    classes[(v.status, v.cls)].append((kind["name"], path))
            print(f"{kind['name']}: pth={verdicts['pth']} wopt={verdicts['wopt']}", flush=True)
            if not args.keep:
                remove(*outs["pth"], *outs["wopt"])
    print_classes(classes)
    bad = counts["mismatch"] + counts["wrong-exit"]
    print(f"summary: {len(kinds)} kinds: {counts['equal']} equal, {counts['refused']} refused as "
          f"expected, {counts['unloadable']} unloadable refused, {counts['mismatch']} mismatches, "
          f"{counts['wrong-exit']} wrong exits")
    return 1 if bad else 0


def print_classes(classes):
    """Failures grouped by class: the kinds, and on which paths they fail."""
    if not classes:
        return
    print("failure classes (status: class: kinds [paths]: examples):")
    rows = []
    for (status, cls), hits in classes.items():
        names = list(dict.fromkeys(n for n, _ in hits))
        paths = "+".join(sorted({p for _, p in hits}, key=["pth", "wopt"].index))
        rows.append((status, cls, names, paths))
    for status, cls, names, paths in sorted(rows, key=lambda r: (r[0], -len(r[2]), r[1])):
        shown = " ".join(names[:5]) + (f" (+{len(names) - 5})" if len(names) > 5 else "")
        print(f"  {status}: {cls}: {len(names)} [{paths}]: {shown}")


# --- --measure ------------------------------------------------------------------

def measure(args):
    wopt, pairs = args.measure[0], args.measure[1:]
    if not pairs or len(pairs) % 2:
        raise SystemExit("--measure WOPT IN OUT [IN OUT ...]")
    bad = 0
    for i in range(0, len(pairs), 2):
        bad += measure_one(args, wopt, pairs[i], pairs[i + 1])
    return 1 if bad else 0


def measure_one(args, wopt, src, out):
    remove(out)
    r = run(["/usr/bin/time", "-f", "%M", wopt, src, "-o", out])
    lines = r.err.strip().splitlines()
    try:
        rss_kib = int(lines[-1])
    except (IndexError, ValueError):
        rss_kib = None
    size = os.path.getsize(out) if os.path.exists(out) else None
    ok = (r.code == 0 and rss_kib is not None and rss_kib < args.max_rss_mib * 1024
          and size is not None and size < args.max_bytes)
    note = ""
    if ok:
        back = out
        if not out.endswith(".pth"):  # torch reads .pth: convert back, unmeasured
            back = out + ".pth"
            r2 = run([wopt, out, "-o", back])
            if r2.code != 0:
                ok, note = False, f", reading it back: {exit_text(r2.code)}: {r2.first_error()}"
        if ok:
            diff = compare_loaded.run_with_big_stack(
                lambda: compare_loaded.compare(compare_loaded.load(src), compare_loaded.load(back)))
            if diff:
                ok, note = False, f", output differs: {diff}"
    rss = f"{rss_kib / 1024:.1f} MiB" if rss_kib is not None else "unknown"
    how = exit_text(r.code)
    if isinstance(r.code, int) and r.code > 128:  # /usr/bin/time: 128 + the signal
        how += f" ({signal.Signals(r.code - 128).name})"
    print(f"{os.path.basename(src)} -> {os.path.basename(out)}: {how}, output {size} bytes "
          f"(limit {args.max_bytes}), peak RSS {rss} (limit {args.max_rss_mib} MiB){note}: "
          + ("OK" if ok else "FAIL"))
    if r.code != 0 and lines[:-1]:
        print("  " + lines[0][:200])
    return 0 if ok else 1


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("wopt", nargs="?")
    p.add_argument("kinds", nargs="?")
    p.add_argument("work", nargs="?")
    p.add_argument("--expect")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--only", nargs="*", default=["*"])
    p.add_argument("--exclude", nargs="*", default=[])
    p.add_argument("--keep", action="store_true")
    p.add_argument("--measure", nargs="+", metavar="WOPT IN OUT")
    p.add_argument("--max-rss-mib", type=int, default=64)
    p.add_argument("--max-bytes", type=int, default=10240)
    args = p.parse_args(argv[1:])
    torch.set_num_threads(1)
    if args.measure:
        return measure(args)
    if not (args.wopt and args.kinds and args.work):
        p.error("WOPT KINDSDIR WORKDIR are required")
    return run_kinds(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
