"""The ledger directory removed while the job runs: a process exporting and closing in a
loop (programs/faults.c, `signal`: 2000 rounds) loses its ledger directory (rm -r) in the
middle, and a documented pair started afterwards makes a new one. Everything runs as
without the shim: same results, no crash, no hang, no violation (the ledger rules can only
go blind, never invent a mistake), and at most one `error` record per process."""
import atexit
import os
import shutil
import subprocess
import time
from harness import *
from pairlogs import check_pair_logs

ROUNDS = 2000
work = Workdir()
atexit.register(work.cleanup)
base = run([prog("faults"), "signal", str(ROUNDS)], base_env(work), preload=False, timeout=120, check_rc=0)

env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "LD_PRELOAD": SHIM})
p = subprocess.Popen([prog("faults"), "signal", str(ROUNDS)], env=env, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
atexit.register(lambda: p.poll() is None and p.kill())
deadline = time.monotonic() + 60
while not os.path.exists(os.path.join(work.ledger, "ledger.v5")):
    check(time.monotonic() < deadline and p.poll() is None, "the process opened its ledger")
    time.sleep(0.005)
time.sleep(0.2)
check(p.poll() is None, "still running when the directory goes")
shutil.rmtree(work.ledger)

pw = Workdir()
atexit.register(pw.cleanup)
penv = base_env(pw, {"ACL_IPC_GUARD_LOG": pw.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": work.ledger})
pp = run([prog("pair"), "whitelist"], penv, check_rc=0, timeout=60)
check("bytes shared both ways" in pp.stdout_text, "a pair started after the removal: the bytes arrived")
check_pair_logs(pw, "whitelist", 0, "pair after the removal")

out, err = p.communicate(timeout=120)
eq((p.returncode, out.decode()), (0, base.stdout_text), "the process whose directory went: same results")
rs = read_log(next(work.file(f) for f in os.listdir(work.path) if f.startswith("log.")))
check_seq(rs, "the process whose directory went")
eq(rs[-1]["event"], "summary", "its summary")
eq(violations(rs), [], "no violation")
check(len(events(rs, "error")) <= 1, f"at most one error record: {events(rs, 'error')}")
done("faults.ledger.removed")
