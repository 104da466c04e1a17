"""A process SIGKILLed while it holds the ledger's lock: a hammer (programs/faults.c,
`hammer`: malloc, export, close, free in a loop, each export and close under the lock) is
stopped (SIGSTOP) at random moments until the lock word of the ledger file says that it
holds the lock, then killed. The kernel marks the robust mutex owner-died. The next
processes of the job (a documented pair, whitelist and open mode) recover: they run as
without the shim, with no violation and no `error` record (a lock that could not be taken
within the ledger's one-second limit would have written one), and the lock word is clean
afterwards. Three rounds on one ledger."""
import atexit
import os
import random
import signal
import struct
import subprocess
import time
from harness import *
from pairlogs import check_pair_logs

# The robust mutex is the last field of the ledger file's header (src/ledger/format.rs
# `Header`), at the start of the file's second cache line (layout v5). glibc keeps the
# owner's tid in its first word, with FUTEX_OWNER_DIED (0x40000000) set by the kernel when
# the owner dies.
LOCK_WORD = 64
OWNER_DIED = 0x40000000
TID_MASK = 0x3FFFFFFF

hammer_work = Workdir()
atexit.register(hammer_work.cleanup)
ledger_file = os.path.join(hammer_work.ledger, "ledger.v5")


def lock_word():
    with open(ledger_file, "rb") as f:
        f.seek(LOCK_WORD)
        return struct.unpack("<I", f.read(4))[0]


def state_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def kill_while_holding(rnd):
    env = base_env(hammer_work, {"ACL_IPC_GUARD_LOG": hammer_work.file(f"hammer.{rnd}.%p.json"), "LD_PRELOAD": SHIM})
    p = subprocess.Popen([prog("faults"), "hammer"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    atexit.register(lambda: p.poll() is None and p.kill())
    eq(p.stdout.readline().strip(), b"hammering", f"round {rnd}: the hammer started")
    deadline = time.monotonic() + 60
    while not os.path.exists(ledger_file):
        check(time.monotonic() < deadline and p.poll() is None, f"round {rnd}: the hammer opened the ledger")
        time.sleep(0.001)
    stops = 0
    while True:
        check(time.monotonic() < deadline, f"round {rnd}: caught the hammer holding the lock within 60 s "
                                           f"({stops} tries)")
        check(p.poll() is None, f"round {rnd}: the hammer is running ({p.returncode})")
        os.kill(p.pid, signal.SIGSTOP)
        while state_of(p.pid) not in ("T", "t"):
            time.sleep(0.0001)
        stops += 1
        if lock_word() & TID_MASK == p.pid:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            break
        os.kill(p.pid, signal.SIGCONT)
        time.sleep(random.uniform(0, 0.0005))
    w = lock_word()
    check(w & OWNER_DIED, f"round {rnd}: the kernel marked the lock owner-died ({w:#x})")
    print(f"round {rnd}: killed holding the lock after {stops} stops")
    return stops


for rnd in range(3):
    kill_while_holding(rnd)
    for mode, flags in (("whitelist", 0), ("open", 1)):
        work = Workdir()
        env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"),
                              "ACL_IPC_GUARD_LEDGER": hammer_work.ledger})
        p = run([prog("pair"), mode, str(flags)], env, check_rc=0, timeout=60)
        check("bytes shared both ways" in p.stdout_text, f"round {rnd} {mode}: the bytes arrived")
        eq(p.stderr_text, "", f"round {rnd} {mode}: nothing on stderr")
        check_pair_logs(work, mode, flags, f"round {rnd} {mode} after the kill")
        work.cleanup()
    if os.path.exists(ledger_file):
        eq(lock_word() & (OWNER_DIED | TID_MASK), 0, f"round {rnd}: the lock is clean again")
done("faults.ledger.kill")
