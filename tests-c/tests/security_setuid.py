"""Switches are ignored in setuid and setgid processes: a copy of a program linked
against the shim (security/setuid_probe.c), made setuid root (and, separately, setgid
root), is run by `nobody` with ACL_IPC_GUARD_MODE=enforce and ACL_IPC_GUARD_LOG naming a
file. The shim keeps its defaults: audit mode (the bad close reaches the runtime and its
answer comes back), records on stderr, no file created at the path the caller chose. The
same copy without the special bits, run by root with the same switches, obeys them (the
close is blocked and the file written), so the test sees the switches work.

Needs root (to make the copy setuid root and to run as nobody); skipped otherwise (a
failure with CI=true)."""
import atexit
import os
import shutil
import subprocess
import tempfile
from harness import *

if os.geteuid() != 0:
    if os.environ.get("CI") == "true":
        fail("security.setuid needs root, and CI=true")
    print("security.setuid: SKIPPED: needs root")
    sys.exit(SKIP)

NOBODY = 65534
BLOCKED, RUNTIME_REFUSAL = 100000, 507899

shared = tempfile.mkdtemp(prefix="aig-setuid-")
atexit.register(shutil.rmtree, shared, True)
os.chmod(shared, 0o755)
probe = os.path.join(shared, "setuid_probe")
shutil.copy(prog("setuid_probe"), probe)
emu = os.path.join(shared, "emu")
os.mkdir(emu, 0o700)
private = os.path.join(shared, "private")  # root's, 0700: only a root-privileged process can write here
os.mkdir(private, 0o700)


def run_probe(mode_bits, user, what):
    os.chown(probe, 0, 0)
    os.chmod(probe, mode_bits)
    log = os.path.join(private, f"log.{what}.json")
    env = {"PATH": "/usr/bin:/bin", "ASCEND_EMU_DIR": emu, "ACL_IPC_GUARD_MODE": "enforce",
           "ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_LEDGER": "off", "ACL_IPC_GUARD_FORMAT": "json",
           "ACL_IPC_GUARD_RULES": "close.unknown=error"}
    kw = {} if user is None else {"user": user, "group": user, "extra_groups": []}
    p = subprocess.run([probe], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, **kw)
    return p.returncode, p.stdout.decode(), p.stderr.decode(), log


# Control: no special bits, run by root: the switches work.
rc, out, err, log = run_probe(0o755, None, "plain")
eq(rc, 0, f"plain: exit status ({err})")
check(out.startswith(f"close {BLOCKED} calls=0 "), f"plain: enforce mode blocked the close: {out}")
check(os.path.exists(log), "plain: the log file was written where the switch said")

rc, out, err, log = run_probe(0o755, NOBODY, "nobody-plain")
if rc != 0 and "error while loading" in err:
    fail(f"the build tree is not usable by nobody: {err}")

for bits, what in ((0o4755, "setuid"), (0o2755, "setgid")):
    rc, out, err, log = run_probe(bits, NOBODY, what)
    eq(rc, 0, f"{what}: exit status ({err})")
    want_ids = "uid=65534 euid=0" if what == "setuid" else "uid=65534 euid=65534"
    eq(out.strip(), f"close {RUNTIME_REFUSAL} calls=1 {want_ids}",
       f"{what}: ACL_IPC_GUARD_MODE ignored: audit mode, the runtime's answer")
    check(not os.path.exists(log), f"{what}: ACL_IPC_GUARD_LOG ignored: no file at {log}")
    check("[acl-ipc-guard]" in err and "close.unknown" in err, f"{what}: records on stderr, as by default: {err}")
    check("mode=audit" in err, f"{what}: the start record says audit mode: {err}")
done("security.setuid")
