"""ACL_IPC_GUARD_REPEAT_LIMIT: a rule broken 10 times writes only the first LIMIT
violation records (per rule), but the summary and aclIpcGuardGetStats count all 10."""
import atexit
import re
from harness import *

RULES = ("close.unknown", "export.size-zero")
for limit, written in (("3", 3), (None, 10), ("0", 0), ("10", 10)):
    work = Workdir()
    atexit.register(work.cleanup)
    extra = {"ACL_IPC_GUARD_LOG": work.file("log.json"), "ACL_IPC_GUARD_LEDGER": "off"}
    if limit is not None:
        extra["ACL_IPC_GUARD_REPEAT_LIMIT"] = limit
    label = f"REPEAT_LIMIT={limit or '(unset)'}"
    p = run([prog("audit_work"), "repeat", "10"], base_env(work, extra), check_rc=0, timeout=60)
    eq(p.stderr_text, "", f"{label}: nothing on stderr")
    rs = read_log(work.file("log.json"))
    check_seq(rs, label)
    for rule in RULES:
        vs = violations(rs, rule)
        eq(len(vs), written, f"{label}: {rule} records written")
        # The ones written are the first ones: each precedes the matching call record.
        fn = "aclrtIpcMemClose" if rule == "close.unknown" else "aclrtIpcMemGetExportKey"
        call_seqs = [r["seq"] for r in calls(rs, fn)]
        eq(len(call_seqs), 10, f"{label}: every {fn} call is still recorded")
        for i, v in enumerate(vs):
            check((call_seqs[i - 1] if i else 0) < v["seq"] < call_seqs[i], f"{label}: {rule} record {i + 1} belongs to call {i + 1}")
    s = rs[-1]
    eq(s["event"], "summary", f"{label}: summary")
    eq(s["violations"], {rule: 10 for rule in RULES}, f"{label}: the summary counts every violation")
    m = re.search(r"repeat ret=0 calls=(\d+) violations=(\d+)", p.stdout_text)
    check(m, f"{label}: stats printed: {p.stdout_text}")
    eq(int(m.group(2)), 20, f"{label}: aclIpcGuardGetStats counts every violation")
    eq(int(m.group(1)), s["calls"], f"{label}: stats and summary agree on calls")
done("audit.repeat")
