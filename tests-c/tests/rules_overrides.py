"""Per-rule overrides (ACL_IPC_GUARD_RULES) and ACL_IPC_GUARD_EXITCODE, under the real
preload: a rule set to off writes nothing and is forwarded even in enforce mode; a warning
raised to error blocks in enforce and aborts in abort; an error lowered to warning is only
reported; exit.leak stays reported whatever its severity; a bad override is said on stderr
and the default kept. EXITCODE=42 makes a process with an error violation (reported,
blocked, or raised from a warning) exit 42 after running to its end, and leaves one without
an error violation alone, also across processes."""
from ruleslib import *


def target(r):
    return (r.target().ret, r.target().calls)


def rules_of(r):
    return [(v["rule"], v["severity"], v["action"]) for v in violations(r.records())]


OFF_UNTRACKED_ERROR = {"ACL_IPC_GUARD_RULES": "export.key-len=off,export.untracked=error"}

# export.key-len off: no record, forwarded in enforce (the runtime refuses len 64 itself,
# and accepts the 256-byte buffer).
for name in ("export.key-len", "export.key-len~256"):
    base = Named(name, preload=False)
    r = Named(name, "enforce", extra=OFF_UNTRACKED_ERROR)
    eq(target(r), (base.target().ret, 1), f"{name}, key-len off, enforce: forwarded")
    eq(stable(r.lines), stable(base.lines), f"{name}, key-len off, enforce: as without the shim")
    eq(violations(r.records()), [], f"{name}, key-len off: no record")
    eq(r.records()[-1]["violations"], {}, f"{name}, key-len off: not counted either")

# export.untracked raised to error, in the same setting: blocked, aborted.
base = Named("export.untracked", preload=False)
r = Named("export.untracked", "enforce", extra=OFF_UNTRACKED_ERROR)
eq(target(r), (INVALID_PARAM, 0), "untracked=error, enforce: blocked before the runtime")
eq(rules_of(r), [("export.untracked", "error", "blocked")], "untracked=error, enforce: the record")
check(violations(r.records())[0].get("backtrace"), "untracked=error: an error carries a backtrace")
r = Named("export.untracked", "abort", extra=OFF_UNTRACKED_ERROR)
eq(r.returncode, -signal.SIGABRT, "untracked=error, abort: SIGABRT")
eq(rules_of(r), [("export.untracked", "error", "aborted")], "untracked=error, abort: the record")
r = Named("export.untracked", "audit", extra=OFF_UNTRACKED_ERROR)
eq(stable(r.lines), stable(base.lines), "untracked=error, audit: forwarded unchanged")
eq(rules_of(r), [("export.untracked", "error", "reported")], "untracked=error, audit: the record")

# setpid.own-pid raised to error.
r = Named("setpid.own-pid", "enforce", extra={"ACL_IPC_GUARD_RULES": "setpid.own-pid=error"})
eq(target(r), (INVALID_PARAM, 0), "own-pid=error, enforce: blocked")
eq(rules_of(r), [("setpid.own-pid", "error", "blocked")], "own-pid=error, enforce: the record")

# free.before-close lowered to warning: forwarded in enforce, no abort in abort mode.
WARN = {"ACL_IPC_GUARD_RULES": "free.before-close=warning"}
base = Named("free.before-close", preload=False)
for mode in ("enforce", "abort"):
    r = Named("free.before-close", mode, extra=WARN)
    eq(r.returncode, 0, f"free.before-close=warning, {mode}: exit status")
    eq(stable(r.lines), stable(base.lines), f"free.before-close=warning, {mode}: forwarded, as without the shim")
    eq(rules_of(r), [("free.before-close", "warning", "reported")], f"free.before-close=warning, {mode}: the record")

# An error rule turned off in enforce: forwarded, nothing written.
r = Named("import.own-export", "enforce", extra={"ACL_IPC_GUARD_RULES": "import.own-export=off"})
eq(target(r), (0, 1), "import.own-export=off, enforce: forwarded, the runtime lets it through")
eq(violations(r.records()), [], "import.own-export=off: no record")

# exit.leak: off writes nothing (the summary still counts the open key); as an error it is
# still only reported, never aborted.
r = Named("exit.leak", "audit", extra={"ACL_IPC_GUARD_RULES": "exit.leak=off"})
eq(violations(r.records()), [], "exit.leak=off: no record")
eq(r.records()[-1]["leaks"], 1, "exit.leak=off: the summary counts the open key")
r = Named("exit.leak", "abort", extra={"ACL_IPC_GUARD_RULES": "exit.leak=error"})
eq(r.returncode, 0, "exit.leak=error, abort: not aborted")
eq(rules_of(r), [("exit.leak", "error", "reported")], "exit.leak=error: reported")

# Several overrides at once, with spaces-free list syntax, other rules keep their severity.
r = Named("setpid.pid-invalid", "enforce",
          extra={"ACL_IPC_GUARD_RULES": "export.flags=off,setpid.pid-invalid=warning,setpid.num=off"})
eq(target(r), (Named("setpid.pid-invalid", preload=False).target().ret, 1), "pid-invalid=warning: forwarded")
eq(rules_of(r), [("setpid.pid-invalid", "warning", "reported")], "pid-invalid=warning: the record")
r = Named("setpid.key-null", "enforce", extra={"ACL_IPC_GUARD_RULES": "export.flags=off,setpid.num=off"})
eq(target(r), (INVALID_PARAM, 0), "other rules keep their severity")

# A bad override: said on stderr, the default kept.
for spec in ("no.such-rule=off", "export.key-len=loud"):
    r = Named("export.key-len", "enforce", extra={"ACL_IPC_GUARD_RULES": spec})
    check("acl-ipc-guard" in r.proc.stderr_text and "ACL_IPC_GUARD_RULES" in r.proc.stderr_text,
          f"bad override {spec!r}: said on stderr: {r.proc.stderr_text!r}")
    eq(target(r), (INVALID_PARAM, 0), f"bad override {spec!r}: the default severity is used")
    eq(rules_of(r), [("export.key-len", "error", "blocked")], f"bad override {spec!r}: the record")

# ---- ACL_IPC_GUARD_EXITCODE
EXIT42 = {"ACL_IPC_GUARD_EXITCODE": "42"}
for name, mode, extra, want in (
    ("export.key-len", "audit", {}, 42),           # an error violation, reported
    ("export.key-len", "enforce", {}, 42),         # blocked
    ("bare-tgid.invalid", "enforce", {"ASCEND_EMU_BARE_TGID_FAIL": "1"}, 42),
    ("export.untracked", "audit", {}, 0),          # a warning only
    ("export.untracked", "audit", {"ACL_IPC_GUARD_RULES": "export.untracked=error"}, 42),
    ("export.key-len", "audit", {"ACL_IPC_GUARD_RULES": "export.key-len=warning"}, 0),
    ("export.key-len", "audit", {"ACL_IPC_GUARD_RULES": "export.key-len=off"}, 0),
    ("exit.leak", "audit", {}, 0),
    ("exit.leak", "audit", {"ACL_IPC_GUARD_RULES": "exit.leak=error"}, 42),
    ("clean-local", "audit", {}, 0),
    ("clean-local", "enforce", {}, 0),
    ("export.key-len", "off", {}, 0),              # no checks at all
):
    base = Named(name, preload=False, extra=extra)
    r = Named(name, mode, extra=dict(EXIT42, **extra))
    what = f"EXITCODE=42, {name} {mode} {extra}"
    eq(r.returncode, want, what)
    if mode == "audit":
        eq(stable(r.lines), stable(base.lines), f"{what}: the program ran to its end")
    if mode != "off":
        eq(r.records()[-1]["event"], "summary", f"{what}: the summary was written before the exit")

# Across processes: only the process with the error exits 42.
p = Play(ACTOR["free.imported"]["script"], "audit", extra=EXIT42)
eq((p.rc("A"), p.rc("B")), (0, 42), "EXITCODE=42: the importer that freed exits 42, the exporter 0")
work = Workdir()
run([prog("pair"), "whitelist"], env_for(work, "audit", EXIT42), check_rc=0)
work.cleanup()

done("rules.overrides")
