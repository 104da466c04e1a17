"""8 threads x 200 documented cycles across two processes at once (programs/faults.c,
`threads`): each exporter thread mallocs, exports, hands the key to its peer thread in a
fork child, which imports, checks the bytes, closes and answers; then the exporter closes
and frees. In `audit` and `enforce`: no crash, no deadlock, every byte arrives; each
process's `call` records are exactly the calls it made (per function), its summary and
aclIpcGuardGetStats count them all, nothing is left open, and there is no violation.

Regression (found by this test): a free was accounted after the call, so when another
thread got the freed address from its next allocation and exported it in between, the
free was charged to the new key: the ledger marked it freed and its importer got a false
`import.source-gone` (blocked in enforce mode)."""
import atexit
import re
from harness import *

THREADS, CYCLES = 8, 200
FNS = ("aclrtMalloc", "aclrtIpcMemGetExportKey", "aclrtFree", "aclrtIpcMemImportByKey", "aclrtIpcMemClose")

work = Workdir()
atexit.register(work.cleanup)
p = run([prog("faults"), "threads", str(THREADS), str(CYCLES)], base_env(work), preload=False, timeout=300, check_rc=0)
check("importer status=0" in p.stdout_text, "without the shim: the importer succeeded")

for mode in ("audit", "enforce"):
    work = Workdir()
    atexit.register(work.cleanup)
    env = base_env(work, {"ACL_IPC_GUARD_MODE": mode, "ACL_IPC_GUARD_CALLS": "all",
                          "ACL_IPC_GUARD_LOG": work.file("log.%p.json")})
    p = run([prog("faults"), "threads", str(THREADS), str(CYCLES)], env, timeout=300)
    eq(p.returncode, 0, f"{mode}: exit status ({p.stderr_text[-2000:]})")
    eq([l for l in p.stderr_text.splitlines() if l.strip()], [], f"{mode}: nothing on stderr")
    made = {}
    for role, pid, counts in re.findall(r"^(exporter|importer) pid=(\d+) (.*)$", p.stdout_text, re.M):
        made[role] = (int(pid), {k: int(v) for k, v in (c.split("=") for c in counts.split())})
    eq(sorted(made), ["exporter", "importer"], f"{mode}: both processes reported")
    eq(made["exporter"][1]["aclrtMalloc"], THREADS * CYCLES, f"{mode}: exporter cycles")
    eq(made["importer"][1]["aclrtIpcMemImportByKey"], THREADS * CYCLES, f"{mode}: importer cycles")
    for role, (pid, counts) in made.items():
        what = f"{mode} {role}"
        rs = read_log(work.file(f"log.{pid}.json"))
        check_seq(rs, what)
        s = rs[-1]
        eq(s["event"], "summary", f"{what}: summary last")
        eq(s["dropped"], 0, f"{what}: nothing dropped")
        per_fn = {fn: 0 for fn in FNS}
        for r in calls(rs):
            per_fn[r["fn"]] += 1
            check(r["ret"] == 0 and r["forwarded"], f"{what}: every call forwarded and succeeded: {r}")
        eq(per_fn, counts, f"{what}: call records per function = calls made")
        eq(s["calls"], sum(counts.values()), f"{what}: summary calls")
        eq(violations(rs), [], f"{what}: no violation")
        eq(events(rs, "error"), [], f"{what}: no error record")
        eq((s["violations"], s["blocked"], s["leaks"]), ({}, 0, 0), f"{what}: summary clean")
        stats = re.search(rf"^{role} stats (.*)$", p.stdout_text, re.M).group(1)
        st = {k: int(v) for k, v in (c.split("=") for c in stats.split())}
        eq(st, {"calls": sum(counts.values()), "violations": 0, "blocked": 0, "dropped": 0, "live_exports": 0,
                "live_imports": 0}, f"{what}: aclIpcGuardGetStats after the threads joined")
    work.cleanup()
done("faults.threads")
