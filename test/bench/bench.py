#!/usr/bin/python3
"""wopt against the Python recipe and `cp`, on synthetic DINOv2 checkpoints.

    bench.py WOPT [--size vitb,vitl] [--runs 3] [--cold-runs N] [--json PATH] [--cache DIR] [--no-wopt]

For each size: make the teacher checkpoint once (cached, see make_checkpoint.py),
warm the page cache by reading it, run every contestant once untimed and
check that wopt's output is tensor-identical to the Python recipe's, then run
the contestants alternating (A B C D E, A B C D E, ...) `--runs` times each:

  export  wopt -pass-pipeline=dinov2-eval IN -o OUT
  export  python_recipe.py IN OUT               torch.load -> rename -> torch.save
  export  cp IN OUT                             the physical limit of writing a file
  export  cp --reflink=never IN OUT             cp without copy_file_range (read/write)
  verify  wopt -pass-pipeline='dinov2-eval{manifest=M}' IN     (no output)
  verify  python_verify.py IN M                 torch.load -> rename -> compare

Then `--cold-runs` rounds (default: as many as --runs) of wopt export, cp
and wopt verify with the input evicted from the page cache before every run
(posix_fadvise DONTNEED on the input only: the binary, the manifest and the
output directory stay cached), so each reads the input from disk.

Wall time is measured here (perf_counter around the process); peak RSS comes
from /usr/bin/time (%M, the child's ru_maxrss).  Outputs are deleted and
`sync` runs before every run, outside the timing.  Prints Markdown tables
(medians, ratios, targets) and writes all raw numbers as JSON.
Exit status: 0 when every run succeeded and the outputs were identical.
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCROOT = os.path.dirname(os.path.dirname(HERE))
PYTHON = os.environ.get("WOPT_PYTHON", "/usr/bin/python3")
GNU_TIME = "/usr/bin/time"
MiB = 1 << 20

# Benchmark goals (docs/Performance.md), checked for every size but tiny.
TARGET_EXPORT_VS_CP = 1.10
TARGET_EXPORT_VS_PYTHON = 0.15
TARGET_EXPORT_RSS_MIB = 16
TARGET_VERIFY_S = 0.030
FLAT_RSS_MIB = 4        # peak RSS may change at most this much from the smallest size
FLAT_VERIFY_S = 0.010   # verify time may change at most this much


def default_cache():
    if os.environ.get("WOPT_BENCH_CACHE"):
        return os.environ["WOPT_BENCH_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wopt-bench")


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def file_sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def ensure_input(size, cache):
    """Make (once) the checkpoint and its manifest; regenerate when the
    generator changed since."""
    stem = os.path.join(cache, "dinov2-%s14" % size if size != "tiny" else "dinov2-tiny")
    pth, manifest, stamp = stem + ".pth", stem + ".manifest.json", stem + ".stamp"
    want = file_sha(os.path.join(HERE, "make_checkpoint.py"))
    have = open(stamp).read().strip() if os.path.exists(stamp) else ""
    if have != want or not (os.path.exists(pth) and os.path.exists(manifest)):
        log("generating %s (once; cached in %s)" % (os.path.basename(pth), cache))
        t0 = time.perf_counter()
        subprocess.run([PYTHON, os.path.join(HERE, "make_checkpoint.py"), "--size", size,
                        "--manifest", manifest, pth], check=True)
        log("generated in %.1f s" % (time.perf_counter() - t0))
        with open(stamp, "w") as f:
            f.write(want + "\n")
    return pth, manifest


def warm(path):
    """Read a file once so every contestant starts from a warm page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(16 * MiB):
            pass


def evict(path):
    """Drops path's pages from the page cache, and only its: the input is
    never written, so its pages are clean and DONTNEED discards them."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def contestants(wopt, inp, manifest, outdir, with_wopt):
    """(name, task, command, output path or None)."""
    out = lambda n: os.path.join(outdir, n + ".pth")  # noqa: E731
    rows = []
    if with_wopt:
        rows.append(("wopt", "export", [wopt, "-pass-pipeline=dinov2-eval", inp, "-o", out("wopt")],
                     out("wopt")))
    rows.append(("python", "export", [PYTHON, os.path.join(HERE, "python_recipe.py"), inp,
                                      out("python")], out("python")))
    # The floor: coreutils 9 copies with copy_file_range (page cache to page
    # cache in the kernel; a reflink on btrfs/XFS, which the output would
    # show as ~0 s). --reflink=never makes it read/write through a 128 KiB
    # buffer instead: a real copy everywhere, and slower than the kernel's.
    rows.append(("cp", "export", ["cp", inp, out("cp")], out("cp")))
    rows.append(("cp-never", "export", ["cp", "--reflink=never", inp, out("cp-never")],
                 out("cp-never")))
    if with_wopt:
        rows.append(("wopt", "verify",
                     [wopt, "-pass-pipeline=dinov2-eval{manifest=%s}" % manifest, inp], None))
    rows.append(("python", "verify", [PYTHON, os.path.join(HERE, "python_verify.py"), inp,
                                      manifest], None))
    return rows


def run_once(cmd, out, errfile, cold_input=None):
    """Run cmd; return a sample: wall s, peak RSS KiB, user s, sys s, exit
    code, output bytes, and the 1-minute load average when it ended (how
    busy the machine was). CPU times come from wait4 (microseconds, for the
    whole process tree; /usr/bin/time's own share is ~1 ms); RSS is None
    without /usr/bin/time. cold_input: evict this file from the page cache
    first."""
    if out and os.path.exists(out):
        os.unlink(out)
    os.sync()
    if cold_input:
        evict(cold_input)
    timed = cmd
    rssfile = None
    if os.access(GNU_TIME, os.X_OK):
        fd, rssfile = tempfile.mkstemp(prefix="rss-")
        os.close(fd)
        timed = [GNU_TIME, "-f", "%M", "-o", rssfile] + cmd
    with open(errfile, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(timed, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    p.returncode = rc  # reaped by wait4 above, not by Popen
    user, sys_ = usage.ru_utime, usage.ru_stime
    rss = None
    if rssfile:
        # The last line; a failing command adds "Command exited ..." before it.
        lines = open(rssfile).read().strip().split("\n")
        os.unlink(rssfile)
        try:
            rss = int(lines[-1].split()[0])
        except (ValueError, IndexError):
            pass
    size = os.path.getsize(out) if out and os.path.exists(out) else None
    return {"wall_s": wall, "maxrss_kib": rss, "user_s": user, "sys_s": sys_, "rc": rc,
            "output_bytes": size, "load1": round(os.getloadavg()[0], 2)}


def tail(path, n=8):
    try:
        return "".join(open(path, errors="replace").readlines()[-n:]).rstrip()
    except OSError:
        return ""


def bench_size(size, args, cache):
    inp, manifest = ensure_input(size, cache)
    outdir = os.path.join(cache, "out")
    os.makedirs(outdir, exist_ok=True)
    errfile = os.path.join(outdir, "stderr.txt")
    rows = contestants(args.wopt, inp, manifest, outdir, not args.no_wopt)
    warm(inp)
    warm(manifest)
    if not args.no_wopt:
        warm(args.wopt)
    res = {"input": inp, "input_bytes": os.path.getsize(inp), "manifest": manifest,
           "runs": args.runs, "contestants": [], "failures": []}

    # Untimed round: every contestant must succeed; wopt == Python, bit for bit.
    # With --runs 0 (the smoke test) its timings are what gets reported.
    log("%s: check round" % size)
    samples = {(n, t): [] for n, t, _, _ in rows}
    for name, task, cmd, out in rows:
        x = run_once(cmd, out, errfile)
        if args.runs == 0:
            samples[(name, task)].append(x)
        if x["rc"] != 0:
            msg = "%s %s exited %d: %s\n%s" % (name, task, x["rc"], " ".join(cmd), tail(errfile))
            log("FAILED: " + msg)
            res["failures"].append(msg)
    if not args.no_wopt:
        a, b = os.path.join(outdir, "wopt.pth"), os.path.join(outdir, "python.pth")
        if os.path.exists(a) and os.path.exists(b):
            p = subprocess.run([PYTHON, os.path.join(HERE, "compare_outputs.py"), a, b],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            res["identical"] = p.returncode == 0
            res["compare"] = p.stdout.strip()
            log(p.stdout.strip())
        else:
            res["identical"] = False
            res["compare"] = "no output to compare"
        if not res["identical"]:
            res["failures"].append("wopt and Python outputs differ: " + res["compare"])

    # Timed rounds, alternating.
    for r in range(args.runs):
        log("%s: round %d/%d" % (size, r + 1, args.runs))
        for name, task, cmd, out in rows:
            samples[(name, task)].append(timed_run(res, name, task, cmd, out, errfile))
    res["contestants"] = summarize(rows, samples)

    # Cold rounds: the input comes from disk every time (not Python's: its
    # ratio is a warm-cache claim, and a cold torch.load only loses more).
    cold_rows = [r for r in rows if r[0] != "python"]
    cold = {(n, t): [] for n, t, _, _ in cold_rows}
    for r in range(args.cold_runs):
        log("%s: cold round %d/%d" % (size, r + 1, args.cold_runs))
        for name, task, cmd, out in cold_rows:
            cold[(name, task)].append(timed_run(res, name, task, cmd, out, errfile, inp))
    res["cold_runs"] = args.cold_runs
    res["cold"] = summarize(cold_rows, cold) if args.cold_runs else []
    for name, task, cmd, out in rows:
        if out and os.path.exists(out) and not args.keep_outputs:
            os.unlink(out)
    return res


def timed_run(res, name, task, cmd, out, errfile, cold_input=None):
    """run_once, keeping the stderr of a failed run (the next run overwrites it)."""
    x = run_once(cmd, out, errfile, cold_input)
    if x["rc"] != 0:
        msg = "%s %s exited %d%s: %s\n%s" % (name, task, x["rc"], " (cold)" if cold_input else "",
                                            " ".join(cmd), tail(errfile))
        log("FAILED: " + msg)
        res["failures"].append(msg)
    return x


def summarize(rows, samples):
    out = []
    for name, task, cmd, _ in rows:
        s = samples[(name, task)]
        ok = [x for x in s if x["rc"] == 0]
        rss = [x["maxrss_kib"] for x in s if x["maxrss_kib"] is not None]
        out.append({
            "name": name, "task": task, "command": cmd, "samples": s,
            "ok": len(ok) == len(s),
            "median_s": statistics.median(x["wall_s"] for x in s) if s else None,
            "min_s": min(x["wall_s"] for x in s) if s else None,
            "max_s": max(x["wall_s"] for x in s) if s else None,
            "peak_rss_mib": max(rss) / 1024 if rss else None,
            "median_user_s": median_of(s, "user_s"),
            "median_sys_s": median_of(s, "sys_s"),
            "output_bytes": next((x["output_bytes"] for x in s if x["output_bytes"]), None),
        })
    return out


def median_of(samples, key):
    xs = [x[key] for x in samples if x[key] is not None]
    return statistics.median(xs) if xs else None


def find(res, name, task, which="contestants"):
    return next((c for c in res[which] if c["name"] == name and c["task"] == task), None)


def ratio(a, b):
    if not a or not b or not a["ok"] or not b["ok"]:
        return None
    return a["median_s"] / b["median_s"]


def fmt_s(s):
    return "—" if s is None else ("%.0f ms" % (s * 1e3) if s < 1 else "%.2f s" % s)


def fmt_cpu(s):
    return "—" if s is None else "%.3f s" % s


def fmt_x(x):
    return "—" if x is None else "%.2f×" % x


def fmt_mib(m):
    return "—" if m is None else "%.1f MiB" % m


def fmt_bytes(b):
    return "—" if b is None else ("%.2f GB" % (b / 1e9) if b >= 1e8 else "%.1f MB" % (b / 1e6))


LABELS = {
    ("wopt", "export"): "`wopt -pass-pipeline=dinov2-eval in.pth -o out.pth`",
    ("python", "export"): "Python recipe (`python_recipe.py`)",
    ("cp", "export"): "`cp in.pth out.pth`",
    ("cp-never", "export"): "`cp --reflink=never in.pth out.pth`",
    ("wopt", "verify"): "`wopt -pass-pipeline='dinov2-eval{manifest=M}' in.pth`",
    ("python", "verify"): "Python verify (`python_verify.py`)",
}


def table(size, res, which="contestants"):
    cold = which == "cold"
    n = res["cold_runs"] if cold else res["runs"]
    runs = ("%d runs each (alternating)" % n) if n else "check round only"
    lines = ["### %s: %s, input %s, %s, %s" % (
        size, os.path.basename(res["input"]), fmt_bytes(res["input_bytes"]), runs,
        "cold cache (input evicted before every run)" if cold else "warm cache"), "",
        "| task | contestant | median wall | min – max | user / sys CPU | peak RSS | output | vs cp | vs Python |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in res[which]:
        key = (c["name"], c["task"])
        vs_cp = ratio(c, find(res, "cp", "export", which)) if c["task"] == "export" else None
        vs_py = (ratio(c, find(res, "python", c["task"])) if c["name"] != "python" and not cold
                 else None)
        wall = fmt_s(c["median_s"]) if c["ok"] else "FAILED"
        lines.append("| %s | %s | %s | %s – %s | %s / %s | %s | %s | %s | %s |" % (
            c["task"], LABELS[key], wall, fmt_s(c["min_s"]), fmt_s(c["max_s"]),
            fmt_cpu(c["median_user_s"]), fmt_cpu(c["median_sys_s"]),
            fmt_mib(c["peak_rss_mib"]), fmt_bytes(c["output_bytes"]),
            "1.00×" if key == ("cp", "export") else fmt_x(vs_cp),
            "1.00×" if c["name"] == "python" else fmt_x(vs_py)))
    if "identical" in res and not cold:
        lines += ["", "wopt output vs Python recipe output: " +
                  ("**tensor-identical** (%s)" % res["compare"].replace("compare_outputs: ", "")
                   if res["identical"] else "**DIFFERENT**: " + res["compare"])]
    return "\n".join(lines)


def targets(results):
    """[(goal, measured, met)] for the sizes that count (not tiny)."""
    out = []
    real = [(s, r) for s, r in results if s != "tiny"]
    for size, res in real:
        we, wv = find(res, "wopt", "export"), find(res, "wopt", "verify")
        if not we:
            continue
        x = ratio(we, find(res, "cp", "export"))
        out.append(("%s export ≤ %.2f× cp" % (size, TARGET_EXPORT_VS_CP), fmt_x(x),
                    x is not None and x <= TARGET_EXPORT_VS_CP))
        x = ratio(we, find(res, "python", "export"))
        out.append(("%s export ≤ %.2f× Python" % (size, TARGET_EXPORT_VS_PYTHON), fmt_x(x),
                    x is not None and x <= TARGET_EXPORT_VS_PYTHON))
        m = we["peak_rss_mib"]
        out.append(("%s export peak RSS ≤ %d MiB" % (size, TARGET_EXPORT_RSS_MIB), fmt_mib(m),
                    m is not None and m <= TARGET_EXPORT_RSS_MIB))
        ce = find(res, "wopt", "export", "cold")
        for base, label in (("cp-never", "cp --reflink=never"), ("cp", "cp")):
            if ce:
                x = ratio(ce, find(res, base, "export", "cold"))
                out.append(("%s export ≤ %.2f× %s, cold cache" % (size, TARGET_EXPORT_VS_CP, label),
                            fmt_x(x), x is not None and x <= TARGET_EXPORT_VS_CP))
        if wv:
            out.append(("%s verify-only ≤ %d ms" % (size, TARGET_VERIFY_S * 1e3),
                        fmt_s(wv["median_s"]) if wv["ok"] else "FAILED",
                        wv["ok"] and wv["median_s"] <= TARGET_VERIFY_S))
    if len(real) >= 2:
        ex = [(s, find(r, "wopt", "export")) for s, r in real]
        ex = [(s, c) for s, c in ex if c and c["peak_rss_mib"] is not None]
        if len(ex) >= 2:
            lo, hi = ex[0], ex[-1]
            d = hi[1]["peak_rss_mib"] - lo[1]["peak_rss_mib"]
            out.append(("export peak RSS flat (%s → %s changes ≤ %d MiB)" % (lo[0], hi[0], FLAT_RSS_MIB),
                        "%+.1f MiB" % d, abs(d) <= FLAT_RSS_MIB))
        vf = [(s, find(r, "wopt", "verify")) for s, r in real]
        vf = [(s, c) for s, c in vf if c and c["ok"]]
        if len(vf) >= 2:
            d = vf[-1][1]["median_s"] - vf[0][1]["median_s"]
            out.append(("verify-only flat (%s → %s changes ≤ %d ms)" % (vf[0][0], vf[-1][0], FLAT_VERIFY_S * 1e3),
                        "%+.1f ms" % (d * 1e3), abs(d) <= FLAT_VERIFY_S))
    return out


def machine():
    def cmd(c):
        try:
            return subprocess.run(c, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True).stdout.strip()
        except OSError:
            return ""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30), 1),
            "torch": cmd([PYTHON, "-c", "import importlib.metadata as m; print(m.version('torch'))"]),
            "cp": cmd(["cp", "--version"]).split("\n")[0],
            # The source tree's HEAD; the binary may be older.
            "wopt_commit": cmd(["git", "-C", SRCROOT, "rev-parse", "--short", "HEAD"]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wopt", help="path to the wopt binary")
    ap.add_argument("--size", default="vitb,vitl",
                    help="comma-separated: tiny, vitb, vitl, vitg (default vitb,vitl)")
    ap.add_argument("--runs", type=int, default=3,
                    help="timed runs per contestant (default 3); 0: report the untimed check round")
    ap.add_argument("--cold-runs", type=int,
                    help="runs with the input evicted from the page cache (default: --runs)")
    ap.add_argument("--cache", default=default_cache(), help="checkpoints and outputs (default %(default)s)")
    ap.add_argument("--json", help="write results here (default CACHE/results.json)")
    ap.add_argument("--no-wopt", action="store_true", help="baselines only (cp, Python)")
    ap.add_argument("--keep-outputs", action="store_true", help="keep the last outputs in CACHE/out")
    args = ap.parse_args()
    if args.cold_runs is None:
        args.cold_runs = args.runs
    sizes = [s for s in args.size.split(",") if s]
    for s in sizes:
        if s not in ("tiny", "vitb", "vitl", "vitg"):
            ap.error("unknown size '%s'" % s)
    if not args.no_wopt:
        if not os.access(args.wopt, os.X_OK):
            ap.error("%s is not an executable wopt (build it first, or pass --no-wopt)" % args.wopt)
        args.wopt = os.path.abspath(args.wopt)
    os.makedirs(args.cache, exist_ok=True)
    args.json = args.json or os.path.join(args.cache, "results.json")

    info = machine()
    info["loadavg_start"] = os.getloadavg()
    t0 = time.perf_counter()
    results = [(s, bench_size(s, args, args.cache)) for s in sizes]
    info["loadavg_end"] = os.getloadavg()
    info["bench_seconds"] = round(time.perf_counter() - t0, 1)

    print("## wopt benchmark (%s, %d CPUs, %s GiB, Linux %s, torch %s, tree at %s)" % (
        info["cpu"], info["cpus"], info["mem_gib"], info["kernel"], info["torch"], info["wopt_commit"]))
    print()
    loads = [x["load1"] for _, r in results for w in ("contestants", "cold")
             for c in r[w] for x in c["samples"]]
    info["load1_min_max"] = [min(loads), max(loads)] if loads else None
    print("Load average %.2f at start, %.2f at end (1 min)%s; benchmark took %.0f s." % (
        info["loadavg_start"][0], info["loadavg_end"][0],
        ", %.1f–%.1f during the runs" % tuple(info["load1_min_max"]) if loads else "",
        info["bench_seconds"]))
    for size, res in results:
        print()
        print(table(size, res))
        if res["cold"]:
            print()
            print(table(size, res, "cold"))
    goals = targets(results)
    if goals:
        print()
        print("### Targets")
        print()
        print("| goal | measured | |")
        print("|---|---:|---|")
        for goal, measured, met in goals:
            print("| %s | %s | %s |" % (goal, measured, "met" if met else "**missed**"))
    failures = [f for _, r in results for f in r["failures"]]
    failures += ["%s %s %s: a timed run failed" % (s, c["name"], c["task"])
                 for s, r in results for c in r["contestants"] if not c["ok"]]
    for f in failures:
        print("\nFAILURE: " + f)
    with open(args.json, "w") as f:
        json.dump({"machine": info, "sizes": dict(results),
                   "targets": [{"goal": g, "measured": m, "met": ok} for g, m, ok in goals],
                   "failures": failures}, f, indent=1)
    log("results written to " + args.json)
    if not os.access(GNU_TIME, os.X_OK):
        log("note: %s missing (Debian package `time`): no peak RSS" % GNU_TIME)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
