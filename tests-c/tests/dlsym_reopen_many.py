"""dlopen, calls, dlclose of the runtime 1,000 times in one process, through `acl-ipc-guard
run` (the preload and the LD_AUDIT module both active), RTLD_LOCAL and RTLD_GLOBAL: no
crash, no file descriptor left open by the loads and unloads (the count after the last
round is the count after the first), every call of every round recorded once, in order,
and reaching the runtime once."""
from dlsymlib import *

REOPEN = prog("dl_reopen")
ROUNDS = 1000
ROUND = [("aclrtMalloc", 0), ("aclrtIpcMemGetExportKey", 0), ("aclrtIpcMemClose", 0), ("aclrtFree", 0),
         ("aclrtDeviceGetBareTgid", 0), ("aclrtMallocAlign32", 0), ("aclrtFree", 0)]

for flags in ("local", "global"):
    what = f"run {flags} x{ROUNDS}"
    r = Run([REOPEN, flags, str(ROUNDS)], "launcher")
    check(r.out.rstrip().endswith("done"), f"{what}: every round finished:\n{r.out[-2000:]}\n{r.err[-2000:]}")
    per_round = {}
    for w in r.lines():
        if len(w) == 3 and w[1] in INTERCEPTED and "." not in w[0]:
            per_round.setdefault(w[0], []).append((w[1], int(w[2])))
    missing = {f"r{n}" for n in range(1, ROUNDS + 1)} ^ set(per_round)
    eq(sorted(missing)[:10], [], f"{what}: rounds missing or unexpected")
    bad = [k for k, made in per_round.items() if made != ROUND]
    eq(bad, [], f"{what}: rounds whose calls differ from {ROUND}")
    eq(r.value("r1000", "aclrtMalloc", "from"), "libacl_ipc_guard.so", f"{what}: dlsym still gives the shim")
    check_emu_once(r.emu_counts(f"r{ROUNDS}.after"), ROUND * ROUNDS, what)
    eq(r.value("fds.end"), r.value("fds.after1"), f"{what}: open descriptors after the last round")
    eq(len(r.logs), 1, f"{what}: one log")
    recs = next(iter(r.logs.values()))
    check_once(recs, ROUND * ROUNDS, what)
    eq(violations(recs), [], f"{what}: no violations")
    eq(events(recs, "error"), [], f"{what}: no error records")
done("dlsym.reopen.many")
