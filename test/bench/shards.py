#!/usr/bin/python3
"""Shard-set benchmark: wopt against `cp` and the Python recipe on a
synthetic 4-shard LLaMA-style set (pytorch_model-0000i-of-00004.bin).

    shards.py WOPT [--size tiny,5g] [--runs 3] [--shards-json PATH] [--cache DIR]
              [--keep-outputs]

run.sh (make bench) runs it after bench.py with the same options; sizes it
does not know (vitb, ...) are ignored, and with none left it runs tiny.

Tasks, each against `cp` of the set's bytes and the Python recipe
(shards_python.py: torch.load each shard, work, torch.save):

  merge    wopt SET/ -o merged.safetensors
  reshard  wopt SET/ -o OUT/ -max-shard-size=2GB       (.bin -> safetensors)
           and the same with -j 1 and -j 2
  rename   wopt SET/ -pass-pipeline='rename{rule=model\\.(.*)=>$1}'
                -o OUT/pytorch_model.bin.index.json -max-shard-size=<the set's>

One untimed round first: every run must succeed, and each wopt output is
checked (rename: tensor-identical to the recipe's set, shard by shard;
merge and reshard: the same tensors and bytes as the input, and reshard the
same split as the recipe's). Then --runs rounds, alternating, `sync` before
every run. Every output is deleted as soon as it is measured (or checked),
so the disk holds the input and at most two outputs at once (~15 GB at 5g). Medians, min-max, peak RSS
(/usr/bin/time) and the load average before and after go to the Markdown
tables on stdout and the JSON file.
"""
import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "Inputs"))
import bench  # noqa: E402  (run_once, warm, log, formatting, machine)
import make_shards  # noqa: E402  (Hugging Face's split rule)

PYTHON = bench.PYTHON
GB = 10**9

# LLaMA-7B widths; 11 layers make the set ~5 GB in fp16.
SIZES = {
    "tiny": dict(layers=2, hidden=64, inter=172, vocab=320),
    "5g": dict(layers=11, hidden=4096, inter=11008, vocab=32000),
}
TARGET_VS_CP = 1.25
TARGET_VS_PYTHON = 0.2
TARGET_RSS_MIB = 64


def llama(layers, hidden, inter, vocab):
    """(name, shape) in transformers' LlamaForCausalLM state_dict() order."""
    yield "model.embed_tokens.weight", (vocab, hidden)
    for i in range(layers):
        p = "model.layers.%d." % i
        for n in ["q_proj", "k_proj", "v_proj", "o_proj"]:
            yield p + "self_attn.%s.weight" % n, (hidden, hidden)
        yield p + "mlp.gate_proj.weight", (inter, hidden)
        yield p + "mlp.up_proj.weight", (inter, hidden)
        yield p + "mlp.down_proj.weight", (hidden, inter)
        yield p + "input_layernorm.weight", (hidden,)
        yield p + "post_attention_layernorm.weight", (hidden,)
    yield "model.norm.weight", (hidden,)
    yield "lm_head.weight", (vocab, hidden)


def make_set(size, folder):
    """The set, split by Hugging Face's rule into 4 shards, written shard by
    shard (never the whole state dict in memory). fp16, random."""
    import torch
    shapes = dict(llama(**SIZES[size]))
    nbytes = [2 * torch.Size(s).numel() for s in shapes.values()]
    # The smallest limit (in 1% steps up from a quarter) that gives 4 shards.
    max_size = sum(nbytes) // 4
    while True:
        names, parts, total = split_sizes(list(shapes), nbytes, max_size)
        if len(names) <= 4:
            break
        max_size = int(max_size * 1.01)
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    wm = {}
    for n in names:
        shard = collections.OrderedDict(
            (k, torch.randn(*shapes[k]).to(torch.float16)) for k in parts[n])
        torch.save(shard, os.path.join(folder, n))
        wm.update({k: n for k in parts[n]})
        del shard
    make_shards.write_index(os.path.join(folder, "pytorch_model.bin.index.json"), wm, total)
    return max_size, total


def split_sizes(keys, nbytes, max_size):
    """Hugging Face's rule on sizes alone (no storage is shared here)."""
    return make_shards.split_items(zip(keys, keys, nbytes), max_size, "pytorch_model", ".bin")


def ensure_set(size, cache):
    folder = os.path.join(cache, "llama-%s-bin" % size)
    stamp = os.path.join(folder, "stamp.json")
    want = bench.file_sha(__file__) + bench.file_sha(os.path.join(HERE, "..", "Inputs",
                                                                  "make_shards.py"))
    if os.path.exists(stamp):
        s = json.load(open(stamp))
        if s.get("sha") == want:
            return folder, s["max_size"], s["total"]
    shutil.rmtree(folder, ignore_errors=True)
    bench.log("generating the %s set (once; cached in %s)" % (size, folder))
    t0 = time.perf_counter()
    max_size, total = make_set(size, folder)
    bench.log("generated in %.1f s" % (time.perf_counter() - t0))
    json.dump({"sha": want, "max_size": max_size, "total": total}, open(stamp, "w"))
    return folder, max_size, total


def shard_files(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".bin"))


def contestants(wopt, src, max_size, reshard_size, out):
    """(name, task, command, output folder)"""
    index = os.path.join(src, "pytorch_model.bin.index.json")
    o = lambda n: os.path.join(out, n)  # noqa: E731
    rename = "rename{rule=model\\.(.*)=>$1}"
    cp = lambda d: ["sh", "-c", 'mkdir -p "$1" && shift && cp "$@"', "cp", d]  # noqa: E731
    files = shard_files(src)
    return [
        ("wopt", "merge", [wopt, src + "/", "-o", o("m-wopt") + "/merged.safetensors"],
         o("m-wopt")),
        ("python", "merge", [PYTHON, os.path.join(HERE, "shards_python.py"), "merge", index,
                             o("m-py") + "/merged.bin"], o("m-py")),
        ("cp", "merge", cp(o("m-cp")) + files + [o("m-cp")], o("m-cp")),
        ("wopt", "reshard", [wopt, src + "/", "-o", o("r-wopt") + "/",
                             "-max-shard-size=%d" % reshard_size], o("r-wopt")),
        ("wopt -j 1", "reshard", [wopt, src + "/", "-o", o("r-wopt1") + "/", "-j", "1",
                                  "-max-shard-size=%d" % reshard_size], o("r-wopt1")),
        ("wopt -j 2", "reshard", [wopt, src + "/", "-o", o("r-wopt2") + "/", "-j", "2",
                                  "-max-shard-size=%d" % reshard_size], o("r-wopt2")),
        ("python", "reshard", [PYTHON, os.path.join(HERE, "shards_python.py"), "reshard", index,
                               o("r-py"), str(reshard_size)], o("r-py")),
        ("cp", "reshard", cp(o("r-cp")) + files + [o("r-cp")], o("r-cp")),
        ("wopt", "rename", [wopt, src + "/", "-pass-pipeline=" + rename, "-o",
                            o("n-wopt") + "/pytorch_model.bin.index.json",
                            "-max-shard-size=%d" % max_size], o("n-wopt")),
        ("python", "rename", [PYTHON, os.path.join(HERE, "shards_python.py"), "rename", index,
                              o("n-py")], o("n-py")),
        ("cp", "rename", cp(o("n-cp")) + files + [o("n-cp")], o("n-cp")),
    ]


def folder_bytes(d):
    if not os.path.isdir(d):
        return None
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def run(cmd, outdir, errfile):
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    sample = dict(bench.run_once(cmd, None, errfile))
    sample["output_bytes"] = folder_bytes(outdir)
    return sample


def summary_of(wopt, path):
    p = subprocess.run([wopt, path, "-emit=summary"], stdout=subprocess.PIPE, text=True)
    lines = [x for x in p.stdout.splitlines() if x.startswith(("tensors:", "tensor bytes:"))]
    return p.returncode, lines


def check_task(task, wopt, src, out):
    """Problems found in the wopt outputs of one task's check round."""
    problems = []
    _, want = summary_of(wopt, src + "/")
    got_path = {"merge": "m-wopt/merged.safetensors", "reshard": "r-wopt",
                "rename": "n-wopt"}[task]
    rc, got = summary_of(wopt, os.path.join(out, got_path))
    if rc != 0 or got != want:
        problems.append("%s: wopt's output holds %s, the input %s" % (task, got, want))
    if task == "reshard":
        # The same split as the recipe's (file names differ by extension).
        a = json.load(open(os.path.join(out, "r-wopt", "model.safetensors.index.json")))
        b = json.load(open(os.path.join(out, "r-py", "pytorch_model.bin.index.json")))
        norm = lambda wm: {k: v.split("-", 1)[1].split(".")[0]  # noqa: E731
                           for k, v in wm.items()}
        if norm(a["weight_map"]) != norm(b["weight_map"]) or a["metadata"] != b["metadata"]:
            problems.append("reshard: wopt's split differs from the recipe's")
    if task == "rename":
        # Tensor-identical to the recipe's set, shard by shard.
        p = subprocess.run([PYTHON, "-c", COMPARE_SETS, os.path.join(out, "n-wopt"),
                            os.path.join(out, "n-py")], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        bench.log("rename: " + p.stdout.strip().splitlines()[-1])
        if p.returncode != 0:
            problems.append("rename: " + p.stdout.strip())
    return problems


COMPARE_SETS = r"""
import json, os, sys, torch
a, b = sys.argv[1], sys.argv[2]
ia = json.load(open(os.path.join(a, "pytorch_model.bin.index.json")))
ib = json.load(open(os.path.join(b, "pytorch_model.bin.index.json")))
assert ia == ib, "indexes differ"
n = 0
for f in sorted(set(ia["weight_map"].values())):
    x = torch.load(os.path.join(a, f), weights_only=True)
    y = torch.load(os.path.join(b, f), weights_only=True)
    assert list(x) == list(y), f
    for k in x:
        assert torch.equal(x[k], y[k]), k
        n += 1
    del x, y
print("identical: %d tensors" % n)
"""


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def bench_size(size, args, cache):
    src, max_size, total = ensure_set(size, cache)
    reshard_size = 2 * GB if size != "tiny" else max(total // 3, 1)
    out = os.path.join(cache, "shards-out")
    os.makedirs(out, exist_ok=True)
    errfile = os.path.join(out, "stderr.txt")
    rows = contestants(args.wopt, src, max_size, reshard_size, out)
    for f in shard_files(src):
        bench.warm(f)
    res = {"size": size, "input": src, "input_bytes": folder_bytes(src), "runs": args.runs,
           "tensor_bytes": total, "shards": len(shard_files(src)), "failures": [],
           "load_before": loadavg(), "contestants": []}
    samples = {(n, t): [] for n, t, _, _ in rows}
    # Check round, task by task; each task's outputs are deleted once
    # checked (a 5 GB set times eleven contestants would not fit the disk).
    bench.log("shards %s: check round" % size)
    for task in ["merge", "reshard", "rename"]:
        failed = False
        for name, t, cmd, d in rows:
            if t != task:
                continue
            s = run(cmd, d, errfile)
            if args.runs == 0:
                samples[(name, task)].append(s)
            if s["rc"] != 0:
                msg = "%s %s exited %d: %s\n%s" % (name, task, s["rc"], " ".join(cmd),
                                                   bench.tail(errfile))
                bench.log("FAILED: " + msg)
                res["failures"].append(msg)
                failed = True
        if not failed:
            res["failures"] += check_task(task, args.wopt, src, out)
        for _, t, _, d in rows:
            if t == task and not (args.keep_outputs and args.runs == 0):
                shutil.rmtree(d, ignore_errors=True)
    res["checked"] = not res["failures"]
    for r in range(args.runs):
        bench.log("shards %s: round %d/%d (load %s)" % (size, r + 1, args.runs, loadavg()))
        for name, task, cmd, d in rows:
            samples[(name, task)].append(run(cmd, d, errfile))
            if not args.keep_outputs:
                shutil.rmtree(d, ignore_errors=True)
    res["load_after"] = loadavg()
    for name, task, cmd, d in rows:
        s = samples[(name, task)]
        rss = [x["maxrss_kib"] for x in s if x["maxrss_kib"] is not None]
        res["contestants"].append({
            "name": name, "task": task, "command": cmd, "samples": s,
            "ok": all(x["rc"] == 0 for x in s),
            "median_s": statistics.median(x["wall_s"] for x in s) if s else None,
            "min_s": min(x["wall_s"] for x in s) if s else None,
            "max_s": max(x["wall_s"] for x in s) if s else None,
            "peak_rss_mib": max(rss) / 1024 if rss else None,
            "median_user_s": bench.median_of(s, "user_s"),
            "median_sys_s": bench.median_of(s, "sys_s"),
            "output_bytes": next((x["output_bytes"] for x in s if x["output_bytes"]), None),
        })
    return res


def find(res, name, task):
    return next((c for c in res["contestants"] if c["name"] == name and c["task"] == task),
                None)


def table(res):
    out = ["#### shards %s: %d shards, %s, %s runs each (alternating), warm cache, load %s -> %s"
           % (res["size"], res["shards"], bench.fmt_bytes(res["input_bytes"]), res["runs"],
              res["load_before"], res["load_after"]), "",
           "| task | contestant | median wall | min – max | user / sys CPU | peak RSS | output "
           "| vs cp | vs Python |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in res["contestants"]:
        cp, py = find(res, "cp", c["task"]), find(res, "python", c["task"])
        out.append("| %s | %s | %s | %s – %s | %s / %s | %s | %s | %s | %s |" % (
            c["task"], c["name"], bench.fmt_s(c["median_s"]), bench.fmt_s(c["min_s"]),
            bench.fmt_s(c["max_s"]), bench.fmt_cpu(c["median_user_s"]),
            bench.fmt_cpu(c["median_sys_s"]), bench.fmt_mib(c["peak_rss_mib"]),
            bench.fmt_bytes(c["output_bytes"]),
            bench.fmt_x(bench.ratio(c, cp)), bench.fmt_x(bench.ratio(c, py))))
    out.append("")
    return "\n".join(out)


def targets(results):
    """The goals, checked on every size but tiny."""
    lines, rows = [], [r for r in results if r["size"] != "tiny"]
    for r in rows:
        for task in ["merge", "reshard", "rename"]:
            w, cp, py = find(r, "wopt", task), find(r, "cp", task), find(r, "python", task)
            vcp, vpy = bench.ratio(w, cp), bench.ratio(w, py)
            lines.append("| %s %s | ≤ %.2f× cp | %s | %s |" % (
                r["size"], task, TARGET_VS_CP, bench.fmt_x(vcp),
                "met" if vcp is not None and vcp <= TARGET_VS_CP else "missed"))
            lines.append("| %s %s | ≤ %.1f× Python | %s | %s |" % (
                r["size"], task, TARGET_VS_PYTHON, bench.fmt_x(vpy),
                "met" if vpy is not None and vpy <= TARGET_VS_PYTHON else "missed"))
        rss = max(c["peak_rss_mib"] or 0 for c in r["contestants"] if c["name"].startswith("wopt"))
        lines.append("| %s | peak RSS ≤ %d MiB | %s | %s |" % (
            r["size"], TARGET_RSS_MIB, bench.fmt_mib(rss), "met" if rss <= TARGET_RSS_MIB
            else "missed"))
        j1, j2 = find(r, "wopt -j 1", "reshard"), find(r, "wopt -j 2", "reshard")
        lines.append("| %s reshard | -j 2 faster than -j 1 | %s vs %s | %s |" % (
            r["size"], bench.fmt_s(j2["median_s"]), bench.fmt_s(j1["median_s"]),
            "met" if j2["median_s"] < j1["median_s"] else "missed"))
    tiny = [r for r in results if r["size"] == "tiny"]
    if tiny and rows:
        a = max(c["peak_rss_mib"] or 0 for c in tiny[0]["contestants"] if c["name"] == "wopt")
        b = max(c["peak_rss_mib"] or 0 for c in rows[-1]["contestants"] if c["name"] == "wopt")
        lines.append("| tiny → %s | peak RSS flat (≤ 8 MiB more) | %s → %s | %s |" % (
            rows[-1]["size"], bench.fmt_mib(a), bench.fmt_mib(b),
            "met" if b - a <= 8 else "missed"))
    if not lines:
        return ""
    return "\n".join(["| goal | target | measured | |", "|---|---|---:|---|"] + lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wopt")
    ap.add_argument("--size", default="tiny,5g")
    ap.add_argument("--runs", type=int, default=3)
    # Not --json: run.sh passes its options to bench.py and to this script.
    ap.add_argument("--shards-json")
    ap.add_argument("--cache", default=bench.default_cache())
    ap.add_argument("--keep-outputs", action="store_true")
    args, _ = ap.parse_known_args()
    args.wopt = os.path.abspath(args.wopt)
    os.makedirs(args.cache, exist_ok=True)
    sizes = [s for s in args.size.split(",") if s in SIZES] or ["tiny"]
    results = [bench_size(s, args, args.cache) for s in sizes]
    print("## wopt shard-set benchmark\n")
    for r in results:
        print(table(r))
        print("wopt outputs checked: **%s**\n" % ("yes" if r.get("checked") else "NO"))
    t = targets(results)
    if t:
        print(t)
    path = args.shards_json or os.path.join(args.cache, "shards-results.json")
    json.dump({"results": results, "failures": [f for r in results for f in r["failures"]]},
              open(path, "w"), indent=1)
    bench.log("raw samples: " + path)
    return 1 if any(r["failures"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
