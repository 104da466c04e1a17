"""In audit mode the program sees exactly what it sees without the shim: the same return
codes and out-values for a table of good and bad calls, and the same memory."""
import os
from harness import *

outputs = {}
for label, preload, extra in (
    ("without shim", False, {}),
    ("audit", True, {}),
    ("audit, every record on", True, {"ACL_IPC_GUARD_CALLS": "all", "ACL_IPC_GUARD_SHOW_KEYS": "1"}),
    ("off", True, {"ACL_IPC_GUARD_MODE": "off"}),
):
    work = Workdir()
    env = base_env(work, dict(extra, ACL_IPC_GUARD_LOG=work.file("log.json")))
    p = run([prog("transparency")], env, preload=preload, check_rc=0)
    outputs[label] = p.stdout_text
    if label == "off":
        check(not os.path.exists(work.file("log.json")), "off mode writes no records, not even a start")
    if preload and label != "off":
        recs = read_log(work.file("log.json"))
        check(len(violations(recs)) > 10, f"{label}: the bad calls were reported")
        check(all(r["forwarded"] for r in calls(recs)), f"{label}: audit forwards every call")
        # The export outlives the close of its own import: still 'validation-disabled'.
        eq(len(violations(recs, "setpid.validation-disabled")), 3, f"{label}: SetImportPid on the no-validation key")
    work.cleanup()

base = outputs["without shim"]
check(len(base.splitlines()) > 60, "the table ran")
check(" 100000 " in base and " 107000 " in base and " 507899 " in base, "the table has failing calls")
for label, out in outputs.items():
    if out != base:
        import difflib
        diff = "".join(difflib.unified_diff(base.splitlines(True), out.splitlines(True), "without shim", label))
        fail(f"{label} differs from a run without the shim:\n{diff}")
    check(True, label)
done("transparency")
