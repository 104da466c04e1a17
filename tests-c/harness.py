"""Shared helpers for the tests in tests-c/: run real programs under the real shim and the
emulated runtime, and read back the records they wrote. Every test is a plain script that
exits non-zero on the first failed assertion; CTest runs them."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("AIG_BUILD_DIR") or sys.exit("AIG_BUILD_DIR is not set (run through ctest)")
SOURCE = os.environ.get("AIG_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_DIR = os.path.join(BUILD, "lib")
BIN_DIR = os.path.join(BUILD, "bin")
TEST_BIN = os.path.join(BUILD, "tests-bin")
SHIM = os.path.join(LIB_DIR, "libacl_ipc_guard.so")
CLI = os.path.join(BIN_DIR, "acl-ipc-guard")

PASSED = 0

# Timeouts of the programs the tests run are multiplied by this. -DAIG_SANITIZE=ON sets it
# (tests-c/CMakeLists.txt): there every process that exits with memory it cannot reach
# (a fork child, holding its parent's log-writer thread's blocks) has LeakSanitizer start
# llvm-symbolizer to match them against the suppressions, about a second per process.
TIMEOUT_SCALE = float(os.environ.get("AIG_TIMEOUT_SCALE") or 1)


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
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout * TIMEOUT_SCALE)
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


# ----------------------------------------------------------------- other pid namespaces
#
# Processes of one job often run in different containers: each in its own pid namespace
# with its own /proc, sharing /dev/shm or a volume. A test peer gets the same: it runs as
# pid 1 of a new pid namespace with its own /proc, inside a private mount namespace in
# which the host's /proc is bind-mounted at work.file("hostproc"), and ASCEND_EMU_HOST_PROC
# names that mount so the emulator can report the peer's host pid as its bare tgid. The
# mounts vanish with the namespaces; the host sees only an empty directory. Needs root
# (CAP_SYS_ADMIN); require_namespaces() skips the test (or fails it, with CI=true) if not.

SKIP = 77  # CTest's SKIP_RETURN_CODE for the tests in tests/

_NS_SHELL = 'mount --bind /proc "$0" && exec unshare --pid --fork --kill-child --mount-proc -- "$@"'


def pidns_argv(argv, host_proc, program_env=None):
    """The command line that runs argv as pid 1 of a new pid namespace with its own /proc,
    the host's /proc bind-mounted at host_proc (an existing directory) in a new private
    mount namespace. program_env (dict) is set for argv alone, through env(1), so that the
    wrappers (unshare, sh, mount) never load a preloaded library."""
    assigns = [f"{k}={v}" for k, v in (program_env or {}).items()]
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _NS_SHELL, host_proc,
            "env", *assigns, *argv]


def _ns_children(pid):
    """Host pids of pid's children that live in a pid namespace below ours."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:
        return []
    found = []
    for k in kids:
        try:
            with open(f"/proc/{k}/status") as f:
                nspid = next((l.split()[1:] for l in f if l.startswith("NSpid:")), [])
        except OSError:
            continue
        if len(nspid) >= 2:
            found.append(int(k))
    return found


class NsPeer:
    """A program started as pid 1 of its own pid namespace (see pidns_argv); the wrapper is
    the subprocess self.p, the program's pid in our (the host's) namespace is self.host_pid.

    env is the program's whole environment (base_env(...)); with preload=True the shim is
    preloaded into the program only. With host_proc=True the program gets
    ASCEND_EMU_HOST_PROC (its bare tgid is then its host pid); with False it sees only its
    own /proc (its bare tgid is then 1, like code in a container without the host's view).
    stdin/stdout/stderr are passed to Popen and reach the program.

    With find_pid=True the constructor waits until the program shows up as the wrapper's
    child, for self.host_pid; that suits programs that wait for commands. A program that may
    finish within milliseconds must be started with find_pid=False (self.host_pid is then
    None): it can be gone before it is ever seen."""

    def __init__(self, argv, env, work, preload=True, host_proc=True, stdin=None, stdout=None, stderr=None,
                 timeout=20, find_pid=True):
        host = work.file("hostproc")
        os.makedirs(host, exist_ok=True)
        env = dict(env)
        env.pop("LD_PRELOAD", None)
        env.pop("ASCEND_EMU_HOST_PROC", None)
        program_env = {}
        if host_proc:
            program_env["ASCEND_EMU_HOST_PROC"] = host
        if preload:
            program_env["LD_PRELOAD"] = SHIM
        self.argv = list(argv)
        self.p = subprocess.Popen(pidns_argv(argv, host, program_env), env=env, stdin=stdin, stdout=stdout,
                                  stderr=stderr)
        self.host_pid = None
        deadline = time.monotonic() + timeout
        while find_pid and self.host_pid is None:
            kids = _ns_children(self.p.pid)
            if kids:
                self.host_pid = kids[0]
            elif self.p.poll() is not None:
                fail(f"{argv}: its pid namespace wrapper exited {self.p.returncode} before starting it")
            elif time.monotonic() > deadline:
                self.p.kill()
                self.p.wait()
                fail(f"{argv}: not started in its pid namespace within {timeout} s")
            else:
                time.sleep(0.01)

    def kill(self):
        """SIGKILLs the program (and with it its namespace), waits for the wrapper. The
        wrapper's status then says nothing about the program (util-linux unshare may exit 1
        and complain on stderr), so this returns nothing. Without a host pid (find_pid=False)
        the wrapper is killed; unshare --kill-child takes the program with it."""
        try:
            os.kill(self.host_pid if self.host_pid is not None else self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()

    def wait(self, timeout=60):
        """The program's exit status (the wrapper passes a normal exit on)."""
        return self.p.wait(timeout=timeout)


def run_in_pidns(cmd, env, work, preload=True, host_proc=True, timeout=120, check_rc=None):
    """Like run(), with cmd as pid 1 of its own pid namespace (see NsPeer). cmd may finish at
    once, so its host pid is not looked for."""
    peer = NsPeer(cmd, env, work, preload=preload, host_proc=host_proc, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, find_pid=False)
    try:
        out, err = peer.p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peer.kill()
        fail(f"{cmd} in its pid namespace: no exit within {timeout} s")
    p = peer.p
    p.stdout_text = out.decode(errors="replace")
    p.stderr_text = err.decode(errors="replace")
    if check_rc is not None and p.returncode != check_rc:
        fail(f"{cmd} in its pid namespace exited {p.returncode}, expected {check_rc}\n"
             f"stdout:\n{p.stdout_text}\nstderr:\n{p.stderr_text}")
    return p


_NS_PROBE = None


def namespaces_usable():
    """None if peers can run in their own pid namespaces here (see NsPeer), else why not.
    Probed once: a shell must come up as pid 1 and read its host pid through the bind mount."""
    global _NS_PROBE
    if _NS_PROBE is None:
        probe = tempfile.mkdtemp(prefix="aig-nsprobe-")
        script = 'test "$$" = 1 && test -r "$ASCEND_EMU_HOST_PROC/self/status" && echo ok'
        try:
            p = subprocess.run(pidns_argv(["sh", "-c", script], probe, {"ASCEND_EMU_HOST_PROC": probe}),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            if p.returncode == 0 and p.stdout.strip() == b"ok":
                _NS_PROBE = ""
            else:
                _NS_PROBE = f"unshare exited {p.returncode}: {p.stderr.decode(errors='replace').strip()}"
        except (OSError, subprocess.TimeoutExpired) as e:
            _NS_PROBE = f"unshare: {e}"
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    return _NS_PROBE or None


def require_tool(name):
    """The path of the tool `name`; the test is skipped (77, a failure with CI=true) when
    the machine lacks it (scripts/setup.sh installs the tests' tools as root)."""
    path = shutil.which(name)
    if not path:
        print(f"{name} missing: skipped (scripts/setup.sh installs it as root)")
        sys.exit(SKIP)
    return path


def require_namespaces(name):
    """Skips the test (exit SKIP, CTest reports it skipped) when peers cannot run in their own
    pid namespaces here; with CI=true that is a failure instead."""
    why = namespaces_usable()
    if why is None:
        return
    if os.environ.get("CI") == "true":
        fail(f"{name}: cannot create pid and mount namespaces, and CI=true: {why}")
    print(f"{name}: SKIPPED: cannot create pid and mount namespaces (needs root): {why}")
    sys.stdout.flush()
    sys.exit(SKIP)
