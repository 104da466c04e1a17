"""Backtraces: every `error` violation carries a non-empty array of strings that reaches
the program's function that made the call; `warning` violations carry none; with
ACL_IPC_GUARD_BACKTRACE=0 no violation carries one. Also in enforce mode."""
import atexit
from harness import *

CALLERS = {"setpid.pid-null": "audit_bad_whitelist", "close.unknown": "audit_bad_close"}

for setting, mode in ((None, "audit"), ("1", "audit"), ("1", "enforce"), ("0", "audit"), ("0", "enforce")):
    work = Workdir()
    atexit.register(work.cleanup)
    extra = {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": "off", "ACL_IPC_GUARD_MODE": mode}
    if setting is not None:
        extra["ACL_IPC_GUARD_BACKTRACE"] = setting
    label = f"BACKTRACE={setting or '(unset)'} {mode}"
    p = run([prog("audit_life")], base_env(work, extra), timeout=60)
    eq(p.returncode, 0, f"{label}: audit_life ({p.stderr_text})")
    logs = read_logs(work.file("log.*.json"))
    vs = [v for rs in logs.values() for v in violations(rs)]
    eq(sorted({(v["rule"], v["severity"]) for v in vs}),
       [("close.unknown", "error"), ("exit.leak", "warning"), ("setpid.own-pid", "warning"), ("setpid.pid-null", "error")],
       f"{label}: the violations")
    for v in vs:
        what = f"{label}: {v['rule']}"
        if v["severity"] == "error" and setting != "0":
            bt = v.get("backtrace")
            check(isinstance(bt, list) and len(bt) > 0 and all(isinstance(f, str) and f.strip() for f in bt),
                  f"{what}: a backtrace of strings: {bt!r}")
            check(any(CALLERS[v["rule"]] in f for f in bt), f"{what}: the backtrace reaches {CALLERS[v['rule']]}: {bt}")
            check(any("main" in f for f in bt), f"{what}: the backtrace reaches main: {bt}")
        else:
            check("backtrace" not in v, f"{what}: no backtrace: {v}")
        eq(v["action"], "blocked" if mode == "enforce" and v["severity"] == "error" else "reported", f"{what}: action")
done("audit.backtrace")
