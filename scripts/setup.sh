#!/usr/bin/env bash
# Installs what a fresh machine lacks (from Debian's packages) and builds everything
# into build/: the shim and CLI (through cargo), the emulated runtime, the test programs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's packages for what a fresh machine may lack: cmake, and pkg-config (the install
# test builds a consumer through it); and the tools some tests need.
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# Only tests need these (each is skipped without its tool, a failure with CI=true): as
# root they are installed with the rest, otherwise their absence is only said.
optional=()
# venv with pip (ensurepip): tests/wheel_install.py and scripts/wheel.sh.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || optional+=(python3-venv)
# rsyslog: tests/audit_syslog.py runs a real rsyslogd.
command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ] || optional+=(rsyslog)
# chromium: tests/report_html.py loads the report's page in it, headless.
command -v chromium >/dev/null 2>&1 || optional+=(chromium)
# valgrind: tests/checkers_memcheck.py and tests/checkers_helgrind.py.
command -v valgrind >/dev/null 2>&1 || optional+=(valgrind)
# strace: tests/audit_start_time.py holds the shim's readlink while it writes the start.
command -v strace >/dev/null 2>&1 || optional+=(strace)
# ltrace: the benchmark's smoke test (tests/bench_smoke.py) runs its ltrace comparison.
command -v ltrace >/dev/null 2>&1 || optional+=(ltrace)
if [ ${#optional[@]} -gt 0 ] && [ "$(id -u)" != 0 ]; then
  echo "note: ${optional[*]} missing (the tests that need them will be skipped): 'apt-get install -y ${optional[*]}' as root" >&2
  optional=()
fi
missing+=("${optional[@]}")
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]}: run 'apt-get install -y ${missing[*]}' as root" >&2
    exit 1
  fi
fi
export PATH="$HOME/.cargo/bin:$PATH"
for tool in cargo cc c++ python3 nm readelf; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "$tool is missing" >&2
    exit 1
  }
done
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
