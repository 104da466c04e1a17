"""A bad value of a switch is reported once on stderr (naming the variable and the value),
the default is used, and the program is unharmed: same output and status as without the
shim."""
import atexit
from harness import *

work = Workdir()

atexit.register(work.cleanup)
baseline = run([prog("audit_work"), "mix"], base_env(work), preload=False, check_rc=0).stdout_text
work.cleanup()

# (variable, bad value, check of the default on the records)
CASES = [
    ("ACL_IPC_GUARD_MODE", "loud", lambda rs: rs[0]["mode"] == "audit" and violations(rs)[0]["action"] == "reported"),
    ("ACL_IPC_GUARD_CALLS", "some", lambda rs: "aclrtMalloc" not in [r["fn"] for r in calls(rs)]
        and "aclrtIpcMemGetExportKey" in [r["fn"] for r in calls(rs)]),
    ("ACL_IPC_GUARD_FORMAT", "xml", lambda rs: rs[0]["event"] == "start"),  # a file log stays JSON
    ("ACL_IPC_GUARD_BACKTRACE", "yes", lambda rs: bool(violations(rs)[0].get("backtrace"))),
    ("ACL_IPC_GUARD_SHOW_KEYS", "maybe", lambda rs: all("key" not in d for r in calls(rs) for d in (r["args"], r["out"])
                                                            if "key_fp" in d)),
    ("ACL_IPC_GUARD_REPEAT_LIMIT", "-1", lambda rs: len(violations(rs)) == 1),
    ("ACL_IPC_GUARD_EXITCODE", "x", lambda rs: True),  # the status is checked below: unset
    ("ACL_IPC_GUARD_RULES", "close.unknown=loud", lambda rs: violations(rs)[0]["severity"] == "error"),
    ("ACL_IPC_GUARD_RULES", "no.such-rule=off", lambda rs: violations(rs)[0]["rule"] == "close.unknown"),
]


def guard_lines(stderr):
    return [l for l in stderr.splitlines() if l.strip()]


for var, value, default_used in CASES:
    work = Workdir()
    atexit.register(work.cleanup)
    env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.json"), "ACL_IPC_GUARD_LEDGER": "off", var: value})
    p = run([prog("audit_work"), "mix"], env)
    label = f"{var}={value}"
    eq(p.returncode, 0, f"{label}: exit status unchanged")
    eq(p.stdout_text, baseline, f"{label}: program output unchanged")
    lines = guard_lines(p.stderr_text)
    eq(len(lines), 1, f"{label}: exactly one line on stderr: {lines}")
    check(var in lines[0] and value in lines[0], f"{label}: the line names the variable and the value: {lines[0]}")
    rs = read_log(work.file("log.json"))
    check(default_used(rs), f"{label}: the default is used")
    work.cleanup()

# Several bad values at once: one line each, the log on stderr (the default) still works.
work = Workdir()
atexit.register(work.cleanup)
bad = {"ACL_IPC_GUARD_MODE": "loud", "ACL_IPC_GUARD_CALLS": "some", "ACL_IPC_GUARD_BACKTRACE": "yes",
       "ACL_IPC_GUARD_REPEAT_LIMIT": "lots"}
env = base_env(work, dict(bad, ACL_IPC_GUARD_LEDGER="off"))
p = run([prog("audit_work"), "mix"], env, check_rc=0)
eq(p.stdout_text, baseline, "several bad values: program output unchanged")
for var, value in bad.items():
    eq(len([l for l in p.stderr_text.splitlines() if var in l]), 1, f"{var} reported once among several")
records = [l for l in p.stderr_text.splitlines() if "ACL_IPC_GUARD_" not in l and l.strip()]
check(any("close.unknown" in l for l in records) and any("aclrtIpcMemGetExportKey" in l for l in records),
      f"the text log on stderr carries on with the defaults: {records}")

# Read once: a forked child does not say it again; an exec'd program is a new start and may.
p = run([prog("audit_work"), "fork"], base_env(work, {"ACL_IPC_GUARD_MODE": "loud", "ACL_IPC_GUARD_LEDGER": "off",
                                                      "ACL_IPC_GUARD_LOG": work.file("f.%p.json")}), check_rc=0)
eq(len([l for l in p.stderr_text.splitlines() if "ACL_IPC_GUARD_MODE" in l]), 2,
   f"MODE=loud said by the parent and the exec'd program, not by the fork child:\n{p.stderr_text}")
work.cleanup()
# `syslog:` without a socket path is a bad value like any other: said once, records on
# stderr, and no file called "syslog:" where the program runs.
work = Workdir()
atexit.register(work.cleanup)
env = base_env(work, {"ACL_IPC_GUARD_LOG": "syslog:", "ACL_IPC_GUARD_LEDGER": "off"})
p = subprocess.run([prog("audit_work"), "mix"], env=dict(env, LD_PRELOAD=SHIM), cwd=work.path,
                   capture_output=True, text=True, timeout=60)
eq((p.returncode, p.stdout), (0, baseline), "LOG=syslog:: program unchanged")
said = [l for l in p.stderr.splitlines() if "ACL_IPC_GUARD_LOG" in l]
eq(len(said), 1, f"LOG=syslog:: said once: {p.stderr}")
check("unix socket" in said[0], f"LOG=syslog:: the line says why: {said[0]}")
check(any("aclrtIpcMemGetExportKey" in l for l in p.stderr.splitlines()), "LOG=syslog:: records on stderr")
check(not any(f.startswith("syslog") for f in os.listdir(work.path)), f"LOG=syslog:: no file: {os.listdir(work.path)}")
work.cleanup()
done("audit.config")
