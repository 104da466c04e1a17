#!/usr/bin/env bash
# Builds everything, then runs two processes sharing device memory under the shim (the
# emulated runtime stands in for the device) and shows the audit trail.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
# The logs are kept (build/demo-logs/, emptied at each run) to try the report on them.
logs=build/demo-logs
rm -rf "$logs"
mkdir -p "$logs"
guard=build/bin/acl-ipc-guard

echo "== 1. A correct exporter/importer pair, records as text on stderr"
"$guard" run -- build/tests-bin/pair whitelist

echo
echo "== 2. The vendor sample's mistake: the importer frees the imported pointer (JSON logs, one per process)"
"$guard" run --log "$logs/demo.%p.json" -- build/tests-bin/demo_misuse || true
for f in "$logs"/demo.*.json; do
  echo "-- $f"
  cat "$f"
done

echo
echo "== 3. acl-ipc-guard report over those logs"
"$guard" report --html build/demo-report.html "$logs"/demo.*.json || echo "(report exit status $?: an error violation was found)"
echo "(the same job drawn as a page: build/demo-report.html, open it in a browser)"

echo
echo "== 4. A Python program that finds the runtime itself (ctypes: dlopen + dlsym), as torch_npu does"
echo "   (the launcher sets LD_AUDIT too, so these calls reach the shim; a bare LD_PRELOAD would see none)"
LD_LIBRARY_PATH="$PWD/build/lib" "$guard" run --log "$logs/ctypes.%p.json" -- python3 tests-c/dlopen/ctypes_pair.py
for f in "$logs"/ctypes.*.json; do
  echo "-- $f: $(grep -c '"event":"call"' "$f") call records"
done
"$guard" report "$logs"/ctypes.*.json | tail -n 1
echo
echo "The logs are in $logs/: try 'build/bin/acl-ipc-guard report --trace build/demo-trace.json $logs/demo.*.json'"
echo "(the trace opens in ui.perfetto.dev or chrome://tracing)."
