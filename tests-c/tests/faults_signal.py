"""A signal handler calling an intercepted function while its thread is inside one
(programs/faults.c, `signal`): a timer fires every 100 us during 2000 rounds of malloc,
export, close, free and aclrtDeviceGetBareTgid, and the handler asks
aclrtDeviceGetBareTgid. With the shim (audit and enforce) the program sees what it sees
without it: every call succeeds, every answer in the handler is right, nothing hangs. The
main thread's calls are all recorded; a handler's call that interrupts the shim itself is
forwarded only (the re-entry guard), so it is neither recorded nor counted, and one that
interrupts the program's own code is handled like any call. The log stays whole."""
import atexit
import re
from harness import *

ROUNDS = 2000
work = Workdir()
atexit.register(work.cleanup)
base = run([prog("faults"), "signal", str(ROUNDS)], base_env(work), preload=False, timeout=120, check_rc=0)
want = f"signal rounds={ROUNDS} main_calls={ROUNDS * 5} handler_bad=0 handler_calls_seen=1"
eq(base.stdout_text.strip(), want, "without the shim")

for mode in ("audit", "enforce"):
    w = Workdir()
    atexit.register(w.cleanup)
    env = base_env(w, {"ACL_IPC_GUARD_MODE": mode, "ACL_IPC_GUARD_LOG": w.file("log.%p.json")})
    p = run([prog("faults"), "signal", str(ROUNDS)], env, timeout=120)
    eq((p.returncode, p.stdout_text.strip()), (0, want), f"{mode}: same results as without the shim")
    handler = int(re.search(r"handler calls=(\d+)", p.stderr_text).group(1))
    check(handler > 0, f"{mode}: the handler ran ({handler} calls)")
    rs = read_logs(w.file("log.*.json"))
    eq(len(rs), 1, f"{mode}: one process")
    rs = next(iter(rs.values()))
    check_seq(rs, mode)
    eq(rs[0]["event"], "start", f"{mode}: start first")
    s = rs[-1]
    eq(s["event"], "summary", f"{mode}: summary last")
    eq((s["violations"], s["blocked"], s["dropped"], s["leaks"]), ({}, 0, 0, 0), f"{mode}: summary clean")
    eq(events(rs, "error"), [], f"{mode}: no error record")
    eq(len(calls(rs, "aclrtIpcMemGetExportKey")), ROUNDS, f"{mode}: every export recorded")
    eq(len(calls(rs, "aclrtIpcMemClose")), ROUNDS, f"{mode}: every close recorded")
    tgid = len(calls(rs, "aclrtDeviceGetBareTgid"))
    check(ROUNDS + 1 <= tgid <= ROUNDS + 1 + handler, f"{mode}: the main thread's aclrtDeviceGetBareTgid calls "
                                                      f"recorded, handler calls at most once ({tgid})")
    check(all(r["ret"] == 0 and r["forwarded"] for r in calls(rs)), f"{mode}: every recorded call succeeded")
    made = 1 + ROUNDS * 5
    check(made <= s["calls"] <= made + handler, f"{mode}: summary counts the main thread's calls ({s['calls']})")
    print(f"note: {mode}: {handler} handler calls, {s['calls'] - made} of them counted by the shim")
    w.cleanup()
done("faults.signal")
