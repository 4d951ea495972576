#!/usr/bin/env python3
"""SIGKILLs wopt exports at random moments and checks what is left on disk.

    crash_injection.py WOPT WORKDIR KILLS

For every kill: an export (torch, safetensors, .wopt or text) starts, to a
path that either holds a previous complete output or does not exist; it is
SIGKILLed after a random delay drawn over its measured duration. Then:

- the output is absent (no previous file) or the previous file byte for
  byte, or, when the kill came after the export finished, the complete new
  output byte for byte;
- the input is unchanged;
- no other file is in the output's directory (no temporary file), with one
  exception Linux forces: a file replacing an existing one is linked under a
  hidden name and renamed over it, and a kill between those two syscalls
  leaves the hidden name; the next export to the same output must remove it
  (checked at once).

Prints one summary line; exits 1 on the first violation. The seed is fixed
(WOPT_CRASH_SEED overrides it) so that a failure can be replayed.
"""
import hashlib
import os
import random
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_big_safetensors  # noqa: E402

KINDS = [  # (emit, extra flags, input)
    ("torch", [], "big"),
    ("safetensors", [], "big"),
    ("flatbuffers", [], "big"),
    ("text", ["-print-data-limit=100000000"], "small"),
]


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(wopt, args):
    return subprocess.run([wopt] + args, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE).returncode


def fail(msg):
    print("crash injection FAILED:", msg)
    sys.exit(1)


def main(wopt, work, kills):
    kills = int(kills)
    rng = random.Random(int(os.environ.get("WOPT_CRASH_SEED", "14")))
    inputs = {"big": os.path.join(work, "big.safetensors"),
              "small": os.path.join(work, "small.safetensors")}
    make_big_safetensors.main(inputs["big"], 24)
    make_big_safetensors.main(inputs["small"], 1)
    input_digest = {k: digest(p) for k, p in inputs.items()}
    out_dir = os.path.join(work, "out")
    os.makedirs(out_dir, exist_ok=True)

    # A reference output and the duration of each export.
    reference, duration, previous = {}, {}, {}
    for emit, flags, inp in KINDS:
        # The same base name as the output: a torch export names its
        # records after it.
        os.makedirs(os.path.join(work, "ref-" + emit))
        os.makedirs(os.path.join(work, "prev-" + emit))
        ref = os.path.join(work, "ref-" + emit, "out.bin")
        start = time.monotonic()
        if run(wopt, [inputs[inp], "-emit=" + emit, "-o", ref] + flags) != 0:
            fail("the reference %s export failed" % emit)
        duration[emit] = time.monotonic() - start
        reference[emit] = open(ref, "rb").read()
        # A "previous complete file": a different, complete output.
        prev = os.path.join(work, "prev-" + emit, "out.bin")
        if run(wopt, [inputs["small"], "-emit=" + emit, "-o", prev]) != 0:
            fail("the previous-file %s export failed" % emit)
        previous[emit] = open(prev, "rb").read()

    out = os.path.join(out_dir, "out.bin")
    outcomes = {"absent": 0, "previous": 0, "complete": 0}
    killed_running = 0
    swept = 0
    for i in range(kills):
        emit, flags, inp = KINDS[i % len(KINDS)]
        had_previous = rng.random() < 0.5
        if os.path.exists(out):
            os.remove(out)
        if had_previous:
            with open(out, "wb") as f:
                f.write(previous[emit])
        delay = rng.uniform(0, duration[emit] * 1.2)
        proc = subprocess.Popen([wopt, inputs[inp], "-emit=" + emit, "-o", out] + flags,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait()
        if rc == -signal.SIGKILL:
            killed_running += 1
        elif rc != 0:
            fail("kill %d (%s): wopt exited %d without being killed" % (i, emit, rc))
        left = sorted(os.listdir(out_dir))
        hidden = [n for n in left if n.startswith(".out.bin.tmp-")]
        left = [n for n in left if n not in hidden]
        if hidden:
            # Only a process killed between two syscalls leaves one (Linux
            # cannot link an unnamed file over an existing name).
            if len(hidden) > 1 or not had_previous:
                fail("kill %d (%s, %.3f s): files left: %s" % (i, emit, delay, hidden))
            swept += 1
        if left not in ([], ["out.bin"]):
            fail("kill %d (%s, %.3f s): files left: %s" % (i, emit, delay, left))
        if not left:
            if had_previous:
                fail("kill %d (%s): the previous output vanished" % (i, emit))
            outcomes["absent"] += 1
            continue
        data = open(out, "rb").read()
        if data == reference[emit]:
            outcomes["complete"] += 1
        elif had_previous and data == previous[emit]:
            outcomes["previous"] += 1
        else:
            fail("kill %d (%s, %.3f s): the output is neither the previous nor "
                 "the complete file (%d bytes)" % (i, emit, delay, len(data)))
        if hidden:
            # The next export to the same name removes it (its writer's
            # lock died with the process).
            if run(wopt, [inputs["small"], "-emit=" + emit, "-o", out]) != 0:
                fail("kill %d: the export after a leftover failed" % i)
            if any(n in os.listdir(out_dir) for n in hidden):
                fail("kill %d (%s): the next export left the hidden file %s"
                     % (i, emit, hidden))
        if i % 25 == 0:
            for k, p in inputs.items():
                if digest(p) != input_digest[k]:
                    fail("kill %d: the input %s changed" % (i, k))
    for k, p in inputs.items():
        if digest(p) != input_digest[k]:
            fail("the input %s changed" % k)
    print("crash injection OK: %d kills (%d while running): %d absent, %d previous, "
          "%d complete; inputs unchanged, no temporary file but %d hidden names left "
          "between link and rename, each removed by the next export"
          % (kills, killed_running, outcomes["absent"], outcomes["previous"],
             outcomes["complete"], swept))


if __name__ == "__main__":
    main(*sys.argv[1:])
