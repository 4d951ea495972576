#!/usr/bin/env bash
# Runs fuzz targets with libFuzzer, one at a time, and prints one line of
# statistics per target (the numbers docs/Reliability.md records).
#
#   fuzz/run.sh BIN SEEDS WORK [TARGET...]
#
# BIN holds wopt-fuzz-<target> built by `make fuzz` (WOPT_FUZZ=ON), SEEDS
# the generated seed corpora (fuzz/make_seeds.py), WORK receives the growing
# corpus (WORK/corpus/<target>), anything that failed
# (WORK/findings/<target>/) and the logs. No TARGET: every target.
# Environment: FUZZ_TIME seconds per target (default 60), or FUZZ_RUNS
# executions per target (overrides FUZZ_TIME); FUZZ_KEEP_GOING=1 runs
# libFuzzer in fork mode, which records every crash, timeout or OOM and
# goes on (a long run should not stop at a known open bug); FUZZ_FLAGS
# extra libFuzzer flags.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
BIN=$1 SEEDS=$2 WORK=$3
shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  for exe in "$BIN"/wopt-fuzz-*; do TARGETS+=("${exe##*/wopt-fuzz-}"); done
fi

# The limits are what a finding is: a crash or sanitizer report, an input
# that takes more than 10 s, or more than 2 GiB.
LIMITS=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1)
if [ -n "${FUZZ_KEEP_GOING:-}" ]; then
  LIMITS+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi
if [ -n "${FUZZ_RUNS:-}" ]; then
  BUDGET=(-runs="$FUZZ_RUNS")
else
  BUDGET=(-max_total_time="${FUZZ_TIME:-60}")
fi

status=0
for t in "${TARGETS[@]}"; do
  exe=$BIN/wopt-fuzz-$t
  [ -x "$exe" ] || { echo "fuzz: $exe is missing (make fuzz builds it)" >&2; exit 2; }
  mkdir -p "$WORK/corpus/$t" "$WORK/findings/$t"
  dict=()
  [ -f "$HERE/dicts/$t.dict" ] && dict=(-dict="$HERE/dicts/$t.dict")
  log=$WORK/$t.log
  seeds=()
  [ -d "$SEEDS/$t" ] && seeds=("$SEEDS/$t")
  set +e
  "$exe" "${LIMITS[@]}" "${BUDGET[@]}" "${dict[@]}" \
    -artifact_prefix="$WORK/findings/$t/" ${FUZZ_FLAGS:-} \
    "$WORK/corpus/$t" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  set -e
  # (|| true: under pipefail a grep that finds nothing would end the script.)
  execs=$(grep -a '^stat::number_of_executed_units:' "$log" | tail -1 | tr -dc 0-9 || true)
  # Fork mode prints no final stats: its last "#N: cov: ..." line has them.
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -1)
  cov=$(grep -aoE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  found=$(find "$WORK/findings/$t" -type f | wc -l)
  printf '%-12s execs %-10s %-22s corpus %-6s findings %s%s\n' "$t" "${execs:-?}" \
    "${cov:-cov: ?}" "$(ls "$WORK/corpus/$t" | wc -l)" "$found" \
    "$([ $rc -ne 0 ] && echo " (exit $rc, see $log)")"
  [ $rc -eq 0 ] || status=1
done
exit $status
