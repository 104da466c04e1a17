"""Several threads calling at once: `seq` counts from 1 without a gap or a repeat, the
file is in `seq` order, every thread's calls are recorded under its own tid, and the
summary counts them all."""
import atexit
import re
from harness import *

THREADS, N = 4, 3000  # 12000 call records: below the writer's queue, so none may be dropped
for round_ in range(2):
    work = Workdir()
    atexit.register(work.cleanup)
    env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.json"), "ACL_IPC_GUARD_LEDGER": "off"})
    p = run([prog("audit_work"), "threads", str(THREADS), str(N)], env, check_rc=0, timeout=60)
    tids = sorted(int(t) for t in re.findall(r"thread tid=(\d+) calls=", p.stdout_text))
    eq(len(tids), THREADS, "every thread reported")
    rs = read_log(work.file("log.json"))
    pid = rs[0]["pid"]
    eq([r["seq"] for r in rs], list(range(1, len(rs) + 1)), f"round {round_}: seq 1..n in file order, no gap, no repeat")
    eq(rs[0]["event"], "start", "start first")
    eq(rs[-1]["event"], "summary", "summary last")
    eq({r["pid"] for r in rs}, {pid}, "one pid")
    per_tid = {}
    for r in calls(rs):
        eq(r["fn"], "aclrtDeviceGetBareTgid", "only the threads' calls")
        eq(r["out"]["pid"], pid, "each call's out pid")
        per_tid[r["tid"]] = per_tid.get(r["tid"], 0) + 1
    eq(sorted(per_tid), tids, f"round {round_}: one tid per calling thread, the threads' own ids")
    eq(sorted(per_tid.values()), [N] * THREADS, f"round {round_}: every call of every thread recorded")
    eq(rs[-1]["calls"], THREADS * N, "summary calls")
    eq(rs[-1]["dropped"], 0, "nothing dropped")
    work.cleanup()
done("audit.threads")
