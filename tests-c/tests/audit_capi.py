"""The library's own C API, found by the program with dlsym: aclIpcGuardVersion is "0.1.0";
aclIpcGuardGetStats(NULL) is 100000; the counters follow what the program did (calls,
violations, blocked in enforce mode, live exports and imports) and agree with the
summary; aclIpcGuardFlush returns with every queued record in the file. Without the
shim the same program runs and says the API is absent."""
import atexit
import re
from harness import *

# (label, calls, violations, live_exports, live_imports), blocked added per mode
STEPS = [("initial", 0, 0, 0, 0), ("exported2", 4, 0, 2, 0), ("closed1", 6, 0, 1, 0), ("imported1", 7, 0, 1, 1),
         ("violated", 9, 2, 1, 1), ("closed_all", 13, 2, 0, 0), ("final", 3013, 2, 0, 0)]
STATS = re.compile(r"^(\w+) ret=(\d+) calls=(\d+) violations=(\d+) blocked=(\d+) dropped=(\d+) "
                   r"live_exports=(\d+) live_imports=(\d+)$", re.M)

for mode in ("audit", "enforce"):
    work = Workdir()
    atexit.register(work.cleanup)
    log = work.file("log.%p.json")
    env = base_env(work, {"ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_LEDGER": "off", "ACL_IPC_GUARD_MODE": mode})
    p = run([prog("audit_work"), "capi", log], env, check_rc=0, timeout=60)
    out = p.stdout_text
    check("version=0.1.0\n" in out, f"{mode}: aclIpcGuardVersion: {out}")
    check("null=100000\n" in out, f"{mode}: aclIpcGuardGetStats(NULL)")
    got = {m.group(1): tuple(int(x) for x in m.groups()[1:]) for m in STATS.finditer(out)}
    eq(sorted(got), sorted(s[0] for s in STEPS), f"{mode}: every step printed")
    for label, n_calls, n_viol, exports, imports in STEPS:
        blocked = 1 if mode == "enforce" and n_viol else 0
        eq(got[label], (0, n_calls, n_viol, blocked, 0, exports, imports),
           f"{mode} {label}: (ret, calls, violations, blocked, dropped, live_exports, live_imports)")
    m = re.search(r"bad_close=(\d+) own_pid=(\d+)", out)
    eq(int(m.group(1)) == 100000, mode == "enforce", f"{mode}: the bad close is blocked only in enforce mode")
    m = re.search(r"flush=(-?\d+) tgid_records_before=(-?\d+) after=(-?\d+)", out)
    check(m, f"{mode}: flush step printed")
    eq(int(m.group(1)), 0, f"{mode}: aclIpcGuardFlush returns 0")
    eq(int(m.group(3)), 3001, f"{mode}: when aclIpcGuardFlush returns, the file holds every call record queued before it")
    logs = read_logs(work.file("log.*.json"))
    eq(len(logs), 2, f"{mode}: the program and the exporter it started")
    main = next(pid for pid, rs in logs.items() if calls(rs, "aclrtIpcMemImportByKey"))
    s = logs[main][-1]
    eq(s["event"], "summary", f"{mode}: summary")
    final = got["final"]
    eq((s["calls"], sum(s["violations"].values()), s["blocked"], s["dropped"], s["leaks"]),
       (final[1], final[2], final[3], final[4], 0), f"{mode}: the summary agrees with the last stats")
    eq(sorted(v["action"] for v in violations(logs[main])),
       sorted(["blocked" if mode == "enforce" else "reported", "reported"]), f"{mode}: violation actions")

work = Workdir()
atexit.register(work.cleanup)
p = run([prog("audit_work"), "capi", work.file("x")], base_env(work), preload=False, check_rc=0)
eq(p.stdout_text, "shim=absent\n", "without the shim the program runs and finds no API")
done("audit.capi")
