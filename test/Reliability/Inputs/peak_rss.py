#!/usr/bin/env python3
"""Checks every "Maximum resident set size" of /usr/bin/time -v output.

    peak_rss.py TIME_OUTPUT LIMIT_MIB
"""
import re
import sys

text = open(sys.argv[1]).read()
limit = int(sys.argv[2]) * 1024
peaks = [int(k) for k in re.findall(r"Maximum resident set size \(kbytes\): (\d+)", text)]
if not peaks:
    sys.exit("no /usr/bin/time -v output in " + sys.argv[1])
bad = [k for k in peaks if k > limit]
print("peak RSS %s: %d runs, %s KiB (limit %d KiB)"
      % ("TOO HIGH" if bad else "OK", len(peaks), ", ".join(map(str, peaks)), limit))
