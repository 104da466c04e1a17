"""Shared helpers for the tests in tests-c/: run real programs under the real shim and the
emulated runtime, and read back the records they wrote. Every test is a plain script that
exits non-zero on the first failed assertion; CTest runs them."""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

BUILD = os.environ.get("AIG_BUILD_DIR") or sys.exit("AIG_BUILD_DIR is not set (run through ctest)")
SOURCE = os.environ.get("AIG_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_DIR = os.path.join(BUILD, "lib")
BIN_DIR = os.path.join(BUILD, "bin")
TEST_BIN = os.path.join(BUILD, "tests-bin")
SHIM = os.path.join(LIB_DIR, "libacl_ipc_guard.so")
CLI = os.path.join(BIN_DIR, "acl-ipc-guard")

PASSED = 0


def prog(name):
    return os.path.join(TEST_BIN, name)


class Workdir:
    """A private temporary directory for logs, a ledger and the emulator's files."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="aig-test-")
        os.chmod(self.path, 0o700)
        self.emu = self.file("emu")
        self.ledger = self.file("ledger")
        os.mkdir(self.emu, 0o700)

    def file(self, name):
        return os.path.join(self.path, name)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def base_env(work, extra=None):
    """An environment with no stray switches: the emulator in work's directory, the shim's
    ledger there too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACL_IPC_GUARD_", "ASCEND_EMU_"))}
    env.pop("LD_PRELOAD", None)
    env["LD_LIBRARY_PATH"] = LIB_DIR
    env["ASCEND_EMU_DIR"] = work.emu
    env["ACL_IPC_GUARD_LEDGER"] = work.ledger
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


def run(cmd, env, preload=True, timeout=120, check_rc=None):
    env = dict(env)
    if preload:
        env["LD_PRELOAD"] = SHIM
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    p.stdout_text = p.stdout.decode(errors="replace")
    p.stderr_text = p.stderr.decode(errors="replace")
    if check_rc is not None and p.returncode != check_rc:
        fail(f"{cmd} exited {p.returncode}, expected {check_rc}\nstdout:\n{p.stdout_text}\nstderr:\n{p.stderr_text}")
    return p


def read_log(path):
    """Every line of a JSON-lines log, parsed (a line that is not JSON fails the test)."""
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                fail(f"{path}:{n}: not JSON ({e}): {line!r}")
    return records


def read_logs(pattern):
    """{pid: [records]} for every file matching pattern."""
    out = {}
    for path in sorted(glob.glob(pattern)):
        for r in read_log(path):
            out.setdefault(r["pid"], []).append(r)
    return out


def events(records, event):
    return [r for r in records if r["event"] == event]


def calls(records, fn=None):
    return [r for r in records if r["event"] == "call" and (fn is None or r["fn"] == fn)]


def violations(records, rule=None):
    return [r for r in records if r["event"] == "violation" and (rule is None or r["rule"] == rule)]


def check(cond, message):
    global PASSED
    if not cond:
        fail(message)
    PASSED += 1


def eq(actual, expected, what):
    check(actual == expected, f"{what}: got {actual!r}, expected {expected!r}")


def fail(message):
    print("FAIL:", message, file=sys.stderr)
    sys.exit(1)


def check_seq(records, what):
    """seq counts from 1 with no gap (or from the first record, for a fork child)."""
    seqs = [r["seq"] for r in records]
    eq(seqs, list(range(seqs[0], seqs[0] + len(seqs))), f"{what}: seq without gaps")


def done(name):
    print(f"{name}: {PASSED} checks passed")
