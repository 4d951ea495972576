#!/usr/bin/env bash
# `make bench`: wopt against the Python recipe and cp on synthetic DINOv2
# checkpoints (see bench.py and docs/Performance.md).
#   bash test/bench/run.sh path/to/wopt [--size vitb,vitl] [--runs 3] [--json PATH] ...
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 path/to/wopt [bench.py options]" >&2; exit 2; }
"${WOPT_PYTHON:-/usr/bin/python3}" "$(dirname "$0")/bench.py" "$@"
# Then the shard-set benchmark (shards.py), unless WOPT_BENCH_SHARDS=0.
[ "${WOPT_BENCH_SHARDS:-1}" = 0 ] || exec "${WOPT_PYTHON:-/usr/bin/python3}" "$(dirname "$0")/shards.py" "$@"
