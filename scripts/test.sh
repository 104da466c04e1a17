#!/usr/bin/env bash
# Builds everything and runs every test: cargo test (unit tests, header freshness) and the
# real-path C/C++ tests, all through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
