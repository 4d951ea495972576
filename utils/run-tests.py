#!/usr/bin/env python3
"""Runs the lit suites given on the command line and closes with one line,
"N passed, N failed", whatever lit printed before it."""
import re
import subprocess
import sys


def main():
    lit, suites = sys.argv[1], sys.argv[2:]
    cmd = [sys.executable, lit, "-sv", "--time-tests"] + suites
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    counts = {}
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        m = re.match(r"\s+(Passed|Failed|Unsupported|Unresolved|Timed Out|Expectedly Failed|Unexpectedly Passed)\s*:\s*(\d+)", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    rc = proc.wait()
    passed = counts.get("Passed", 0) + counts.get("Expectedly Failed", 0)
    failed = (counts.get("Failed", 0) + counts.get("Unresolved", 0)
              + counts.get("Timed Out", 0) + counts.get("Unexpectedly Passed", 0))
    skipped = counts.get("Unsupported", 0)
    if rc != 0 and failed == 0:
        failed = 1  # lit itself failed (bad config): never report a clean run
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
