#!/usr/bin/env bash
# Installs what a fresh machine lacks (cmake, from Debian's packages) and builds everything
# into build/: the shim and CLI (through cargo), the emulated runtime, the test programs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cmake >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq cmake >/dev/null
  else
    echo "cmake is missing: run 'apt-get install -y cmake' as root" >&2
    exit 1
  fi
fi
for tool in cargo cc c++ python3 pkg-config; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/$tool" ] || {
    echo "$tool is missing" >&2
    exit 1
  }
done
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
