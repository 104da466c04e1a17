"""dlopen, calls, dlclose, dlopen again, calls (RTLD_LOCAL and RTLD_GLOBAL): through
`acl-ipc-guard run` every call of both rounds is recorded once and reaches the runtime
once, nothing crashes, and the runtime the shim used stays loaded (so its cached pointers
stay valid). Without the shim the runtime really is unloaded between the rounds, so the
program's trap for a dangling pointer is armed."""
from dlsymlib import *

REOPEN = prog("dl_reopen")
ROUND = [("aclrtMalloc", 0), ("aclrtIpcMemGetExportKey", 0), ("aclrtIpcMemClose", 0), ("aclrtFree", 0),
         ("aclrtDeviceGetBareTgid", 0), ("aclrtMallocAlign32", 0), ("aclrtFree", 0)]

for flags in ("local", "global"):
    what = f"run {flags}"
    r = Run([REOPEN, flags], "launcher")
    check(r.out.rstrip().endswith("done"), f"{what}: both rounds finished:\n{r.out}\n{r.err}")
    eq(r.made("r1"), ROUND, f"{what}: round 1 calls")
    eq(r.made("r2"), ROUND, f"{what}: round 2 calls")
    for rnd in ("r1", "r2"):
        eq(r.value(rnd, "aclrtMalloc", "from"), "libacl_ipc_guard.so", f"{what}: {rnd} dlsym gives the shim")
        check_emu_once(r.emu_counts(rnd + ".after"), ROUND, f"{what} {rnd}", before=r.emu_counts(rnd + ".before"))
    eq(r.value("occupied"), "0", f"{what}: the runtime stayed loaded after dlclose")
    eq(r.emu_counts("r2.before"), r.emu_counts("r1.after"), f"{what}: round 2 talks to the same runtime")
    eq(len(r.logs), 1, f"{what}: one log")
    recs = next(iter(r.logs.values()))
    check_once(recs, ROUND + ROUND, what)
    eq(violations(recs), [], f"{what}: no violations")
    eq(events(recs, "error"), [], f"{what}: no error records")

    r = Run([REOPEN, flags], "none")
    check(r.out.rstrip().endswith("done"), f"{flags} without the shim: both rounds finished")
    eq(r.value("occupied"), "1", f"{flags} without the shim: dlclose unloaded the runtime")
    eq(r.logs, {}, f"{flags} without the shim: no logs")
done("dlsym.reopen")
