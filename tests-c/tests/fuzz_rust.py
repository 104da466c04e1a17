"""Smoke run of the coverage-guided Rust fuzz targets in fuzz/ (cargo-fuzz, libFuzzer):
each target for AIG_FUZZ_RUST_SECONDS (default 15) from its seeds in fuzz/corpus/<target>.

- rules: the rule checks over arbitrary arguments, process state and ledger facts;
- config: the switch parser over arbitrary environments;
- ledger_file: arbitrary bytes as the ledger file, opened and used;
- report_line, report_logs: the report's line parser and whole analysis over arbitrary logs.

A crash, a panic, a failed assertion in a target, an input that runs 10 s (a hang) or an
out-of-memory ends libFuzzer with a non-zero status: the test fails and prints where
libFuzzer saved the input (replay: `cargo +nightly fuzz run TARGET FILE` in fuzz/).
Needs `cargo +nightly` (skipped without it, failed with CI=true); installs cargo-fuzz
from crates.io if missing. The corpus grown by the run goes to a temporary directory;
the source tree is not written to (the build goes to <build>/fuzz-target, crash
inputs to <build>/fuzz-artifacts/<target>/)."""
import os
import re
import shutil
import subprocess
import tempfile
from harness import *

TARGETS = ["rules", "config", "ledger_file", "report_line", "report_logs"]
SECONDS = int(os.environ.get("AIG_FUZZ_RUST_SECONDS", "15"))
FUZZ_DIR = os.path.join(SOURCE, "fuzz")


def cargo():
    found = shutil.which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
    return found if os.path.exists(found) else None


def skip(why):
    if os.environ.get("CI") == "true":
        fail(why)
    print(f"fuzz.rust: SKIPPED: {why}")
    sys.exit(SKIP)


CARGO = cargo() or skip("no cargo")
ENV = dict(os.environ, CARGO_TARGET_DIR=os.path.join(BUILD, "fuzz-target"))
ENV["PATH"] = os.path.dirname(CARGO) + os.pathsep + ENV.get("PATH", "")
if subprocess.run([CARGO, "+nightly", "--version"], env=ENV, capture_output=True).returncode:
    skip("no nightly toolchain (cargo +nightly)")
if subprocess.run([CARGO, "fuzz", "--version"], env=ENV, capture_output=True).returncode:
    print("installing cargo-fuzz from crates.io")
    r = subprocess.run([CARGO, "install", "cargo-fuzz", "--locked"], env=ENV,
                       capture_output=True, text=True, timeout=400)
    check(r.returncode == 0, f"cargo install cargo-fuzz: {r.stderr[-2000:]}")

# One build of all targets (release, debug assertions and overflow checks on, ASan).
FLAGS = ["-O", "-a"]
r = subprocess.run([CARGO, "+nightly", "fuzz", "build", *FLAGS], cwd=FUZZ_DIR, env=ENV,
                   capture_output=True, text=True, timeout=600)
check(r.returncode == 0, f"cargo fuzz build: {r.stderr[-3000:]}")

with tempfile.TemporaryDirectory(prefix="aig-fuzz-") as work:
    for target in TARGETS:
        seeds = os.path.join(FUZZ_DIR, "corpus", target)
        check(len(os.listdir(seeds)) > 0, f"{target}: seeds in {seeds}")
        grown = os.path.join(work, target)
        os.mkdir(grown)
        # Crash inputs outlive the run (the temporary directory does not).
        artifacts = os.path.join(BUILD, "fuzz-artifacts", target) + "/"
        shutil.rmtree(artifacts, ignore_errors=True)
        os.makedirs(artifacts)
        # The first corpus directory receives the new inputs; the seeds are only read.
        cmd = [CARGO, "+nightly", "fuzz", "run", *FLAGS, target, grown, seeds, "--",
               f"-max_total_time={SECONDS}", "-timeout=10", "-rss_limit_mb=2048",
               f"-artifact_prefix={artifacts}", "-print_final_stats=1"]
        r = subprocess.run(cmd, cwd=FUZZ_DIR, env=ENV, capture_output=True, text=True,
                           timeout=SECONDS + 120)
        if r.returncode != 0:
            print(r.stderr[-6000:], file=sys.stderr)
            saved = os.listdir(artifacts)
            fail(f"{target}: libFuzzer exited {r.returncode}; input(s) kept: "
                 f"{[os.path.join(artifacts, s) for s in saved]}")
        m = re.search(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
        check(m is not None, f"{target}: libFuzzer's final stats")
        runs = int(m.group(1))
        check(runs > 0, f"{target}: some inputs ran")
        print(f"{target}: {runs} executions in {SECONDS} s, no crash")
        check(os.listdir(artifacts) == [], f"{target}: no crash input saved")

done("fuzz.rust")
