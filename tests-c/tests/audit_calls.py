"""ACL_IPC_GUARD_CALLS: `ipc` (the default) records IPC calls and aclrtDeviceGetBareTgid but
no malloc/free; `all` records the malloc family and aclrtFree too; `none` writes only
start, violation, summary and error records. The program's results never change."""
import atexit
from harness import *

IPC = ["aclrtIpcMemGetExportKey", "aclrtDeviceGetBareTgid", "aclrtIpcMemClose", "aclrtIpcMemClose"]
ALL = ["aclrtMalloc", "aclrtMallocAlign32", "aclrtMallocCached"] + IPC + ["aclrtFree"] * 4

work = Workdir()

atexit.register(work.cleanup)
baseline = run([prog("audit_work"), "mix"], base_env(work), preload=False, check_rc=0).stdout_text
work.cleanup()
check("memory intact" in baseline and "Close(unknown) 0" not in baseline, f"the workload ran: {baseline}")

for value, want in ((None, IPC), ("ipc", IPC), ("all", ALL), ("none", [])):
    work = Workdir()
    atexit.register(work.cleanup)
    extra = {"ACL_IPC_GUARD_LOG": work.file("log.json"),
             # The ledger's parent does not exist: one error record, which `none` still writes.
             "ACL_IPC_GUARD_LEDGER": work.file("missing/ledger")}
    if value:
        extra["ACL_IPC_GUARD_CALLS"] = value
    p = run([prog("audit_work"), "mix"], base_env(work, extra), check_rc=0)
    label = f"CALLS={value or '(unset)'}"
    eq(p.stdout_text, baseline, f"{label}: program output as without the shim")
    # Only the shim's line that the ledger cannot be made (the rules it serves are off).
    said = p.stderr_text.splitlines()
    check(len(said) == 1 and "missing/ledger" in said[0] and "cross-process rules are off" in said[0],
          f"{label}: one line on stderr, the ledger's: {said}")
    rs = read_log(work.file("log.json"))
    eq([r["fn"] for r in calls(rs)], want, f"{label}: recorded calls")
    kinds = [r["event"] for r in rs]
    eq(kinds[0], "start", f"{label}: start")
    eq(kinds[-1], "summary", f"{label}: summary")
    eq(kinds.count("error"), 1, f"{label}: the error record is written")
    eq([v["rule"] for v in violations(rs)], ["close.unknown"], f"{label}: the violation is written")
    eq(rs[-1]["calls"], len(ALL), f"{label}: the summary counts every intercepted call")
    if value == "none":
        eq(set(kinds), {"start", "violation", "summary", "error"}, f"{label}: only start, violation, summary, error")
    check_seq(rs, label)
    work.cleanup()
done("audit.calls")
