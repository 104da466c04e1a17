"""A relative ACL_IPC_GUARD_LEDGER is the directory seen from where the program started,
even when it changes directory before its first IPC call; job after job the ledger keeps
working (no `error` record) and is cleaned up after a correct job."""
import os
import subprocess
from harness import *

work = Workdir()
elsewhere = work.file("elsewhere")
os.mkdir(elsewhere)
for attempt in range(2):
    env = base_env(work, {"ACL_IPC_GUARD_LEDGER": "job-ledger", "ACL_IPC_GUARD_LOG": work.file(f"log{attempt}.json")})
    p = subprocess.run([prog("chdir_job"), elsewhere], env=dict(env, LD_PRELOAD=SHIM), cwd=work.path,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    eq(p.returncode, 0, f"run {attempt}: exit status ({p.stderr})")
    recs = read_log(work.file(f"log{attempt}.json"))
    eq(events(recs, "error"), [], f"run {attempt}: no error record")
    eq(recs[0]["ledger"], os.path.join(work.path, "job-ledger"), f"run {attempt}: the start record names the anchored ledger")
    check(os.path.isdir(work.file("job-ledger")), f"run {attempt}: the ledger lives where the program started")
    check(not os.path.exists(os.path.join(elsewhere, "job-ledger")), f"run {attempt}: not where it moved to")
    eq(os.listdir(work.file("job-ledger")), [], f"run {attempt}: a correct job leaves no ledger file")
work.cleanup()
done("ledger.relative")
