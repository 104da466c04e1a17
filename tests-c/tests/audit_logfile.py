"""The log file: created 0600 (whatever the umask); a symlink at the log path is not
followed (its target stays untouched, or is not created), the program runs with the same
results and one line on stderr says so; a log that cannot be opened (missing directory,
a file where a directory should be, no permission) or written (a full device) changes
nothing for the program and says so in exactly one line on stderr."""
import atexit
import os
import shutil
import subprocess
from harness import *


def new_work():
    w = Workdir()
    atexit.register(w.cleanup)
    return w


def run_mix(env, preload=True, user=None, umask=None):
    env = dict(env)
    if preload:
        env["LD_PRELOAD"] = SHIM
    kw = {}
    if user is not None:
        kw.update(user=user, group=user, extra_groups=[])
    if umask is not None:
        kw["umask"] = umask
    p = subprocess.run([prog("audit_work"), "mix"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, **kw)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def one_line_and_same_results(env, baseline, label, **kw):
    rc, out, err = run_mix(env, **kw)
    eq((rc, out), baseline, f"{label}: same status and output as without the shim")
    lines = [l for l in err.splitlines() if l.strip()]
    eq(len(lines), 1, f"{label}: exactly one line on stderr: {lines}")
    check("acl-ipc-guard" in lines[0], f"{label}: the line says who speaks: {lines[0]}")
    return lines[0]


work = new_work()
base = base_env(work, {"ACL_IPC_GUARD_LEDGER": "off"})
baseline = run_mix(base, preload=False)[:2]
eq(baseline[0], 0, "baseline run")

# 0600 whatever the umask, for every process's file.
for umask in (0o000, 0o022):
    w = new_work()
    env = base_env(w, {"ACL_IPC_GUARD_LEDGER": "off", "ACL_IPC_GUARD_LOG": w.file("log.%p.json")})
    p = subprocess.run([prog("audit_life")], env=dict(env, LD_PRELOAD=SHIM), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, umask=umask, timeout=60)
    eq(p.returncode, 0, f"umask {umask:o}: audit_life")
    files = [f for f in os.listdir(w.path) if f.startswith("log.")]
    eq(len(files), 2, f"umask {umask:o}: two logs")
    for f in files:
        eq(oct(os.stat(w.file(f)).st_mode & 0o7777), oct(0o600), f"umask {umask:o}: mode of {f}")

# A symlink at the log path, to an existing file: not followed.
target = work.file("precious.txt")
with open(target, "w") as f:
    f.write("do not touch\n")
os.chmod(target, 0o644)
before = os.stat(target)
link = work.file("log.json")
os.symlink(target, link)
line = one_line_and_same_results(dict(base, ACL_IPC_GUARD_LOG=link), baseline, "symlink to a file")
with open(target) as f:
    eq(f.read(), "do not touch\n", "symlink: the target's contents are untouched")
after = os.stat(target)
eq((after.st_size, after.st_mtime_ns, after.st_mode), (before.st_size, before.st_mtime_ns, before.st_mode), "symlink: target not written")
check(os.path.islink(link), "symlink: still a symlink")

# A dangling symlink: the target is not created through it.
dangling_target = work.file("created-through-link.json")
dangling = work.file("dangling.json")
os.symlink(dangling_target, dangling)
one_line_and_same_results(dict(base, ACL_IPC_GUARD_LOG=dangling), baseline, "dangling symlink")
check(not os.path.exists(dangling_target), "dangling symlink: no file created at its target")

# A directory that does not exist.
missing = work.file("no/such/dir/log.json")
one_line_and_same_results(dict(base, ACL_IPC_GUARD_LOG=missing), baseline, "missing directory")
check(not os.path.exists(work.file("no")), "missing directory: not created")

# A file where a directory should be.
with open(work.file("plain"), "w") as f:
    f.write("x")
one_line_and_same_results(dict(base, ACL_IPC_GUARD_LOG=work.file("plain/log.json")), baseline, "not a directory")

# Written but failing: every write to /dev/full fails; one line, not one per record.
line = one_line_and_same_results(dict(base, ACL_IPC_GUARD_LOG="/dev/full"), baseline, "full device")

# No permission: a directory the program may not write into. Root may write anywhere, so
# as root the program runs as nobody.
if os.geteuid() != 0:
    w = new_work()
    locked = w.file("locked")
    os.mkdir(locked, 0o500)
    env = base_env(w, {"ACL_IPC_GUARD_LEDGER": "off", "ACL_IPC_GUARD_LOG": os.path.join(locked, "log.json")})
    one_line_and_same_results(env, run_mix(base_env(w), preload=False)[:2], "no permission")
    check(os.listdir(locked) == [], "no permission: nothing created")
else:
    shared = os.path.join(os.path.dirname(work.path), os.path.basename(work.path) + "-nobody")
    os.mkdir(shared, 0o755)
    atexit.register(shutil.rmtree, shared, True)
    emu = os.path.join(shared, "emu")
    os.mkdir(emu, 0o700)
    os.chown(emu, 65534, 65534)
    locked = os.path.join(shared, "locked")
    os.mkdir(locked, 0o755)  # root's, not writable by nobody
    env = dict(base, ASCEND_EMU_DIR=emu)
    nobody_baseline = run_mix(env, preload=False, user=65534)
    if nobody_baseline[0] in (126, 127) or "error while loading" in nobody_baseline[2]:
        print(f"note: the build tree is not usable by nobody; no-permission case not run ({nobody_baseline[2].strip()})")
    else:
        eq(nobody_baseline[:2], baseline, "as nobody, without the shim: the same results")
        one_line_and_same_results(dict(env, ACL_IPC_GUARD_LOG=os.path.join(locked, "log.json")), baseline,
                                  "no permission", user=65534)
        eq(os.listdir(locked), [], "no permission: nothing created")
done("audit.logfile")
