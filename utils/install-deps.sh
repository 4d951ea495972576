#!/usr/bin/env bash
# Installs the Debian packages wopt needs, only those that are missing.
# --fuzz: those `make fuzz` needs instead (clang 19 and its libFuzzer).
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ make python3
  llvm-19-dev llvm-19-tools
  libflatbuffers-dev flatbuffers-compiler
  libgtest-dev
  libdeflate-dev  # libdeflate_crc32: the CRC of the bytes wopt writes
  python3-torch python3-numpy
  time  # /usr/bin/time: peak RSS in test/bench (make bench) and graph-memo-blowup.test
)
if [ "${1:-}" = "--fuzz" ]; then
  PACKAGES=(clang-19 libclang-rt-19-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "wopt: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "wopt: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
