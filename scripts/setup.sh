#!/usr/bin/env bash
# Installs what a fresh machine lacks (from Debian's packages) and builds everything
# into build/: the shim and CLI (through cargo), the emulated runtime, the test programs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's packages for what a fresh machine may lack: cmake, and pkg-config (the install
# test builds a consumer through it), and what the tests below need.
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# venv with pip (ensurepip), for the wheel's test and scripts/wheel.sh.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# rsyslog: the syslog sink's test (tests-c/tests/audit_syslog.py) runs a real rsyslogd.
command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
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
