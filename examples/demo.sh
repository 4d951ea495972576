#!/usr/bin/env bash
# make demo: repair a DINOv2 teacher checkpoint into an eval backbone.
#
#   bash examples/demo.sh path/to/wopt
#
# examples/dinov2_teacher.pth (made by examples/make_example.py) is shaped
# like the file DINOv2 writes: {'teacher': {backbone.*, dino_head.*,
# ibot_head.*}} with the blocks in 4 BlockChunks. An eval model
# (block_chunks=0) cannot load it: every block key reads
# blocks.<chunk>.<block>.* instead of blocks.<block>.*.
set -euo pipefail

WOPT=${1:?usage: bash examples/demo.sh path/to/wopt}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IN=$HERE/dinov2_teacher.pth
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/backbone.pth

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }

step "The input: $(basename "$IN")"
"$WOPT" "$IN" -emit=summary

step "The pipeline dinov2-eval expands to"
"$WOPT" -pass-pipeline=dinov2-eval -dump-pass-pipeline "$IN" -emit=summary \
  2>&1 >/dev/null | head -n 1

step "wopt -pass-pipeline=dinov2-eval $(basename "$IN") -o backbone.pth"
"$WOPT" -pass-pipeline=dinov2-eval "$IN" -o "$OUT" -remarks \
  -pass-statistics -print-rename-table 2>"$TMP/report.txt"
# The remarks and statistics in full, the rename table shortened.
awk '/Rename table/ { table = 1; n = 0 }
     table && n++ > 12 { if (n == 14) print "  ..."; next }
     { print }' "$TMP/report.txt"

step "The result: backbone.pth"
"$WOPT" "$OUT" -emit=summary

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  step "Loading it with PyTorch"
  /usr/bin/python3 "$HERE/make_example.py" --check "$IN" "$OUT"
else
  step "No torch in /usr/bin/python3: skipping the PyTorch load"
fi
