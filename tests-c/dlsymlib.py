"""Helpers of the dlsym_* tests: programs that find the runtime with dlopen + dlsym, run
through the launcher (LD_PRELOAD + LD_AUDIT), by hand, or with neither, and the records
compared call by call with what the program says it called."""
import os
from collections import Counter

from harness import *

AUDIT = os.path.join(LIB_DIR, "libacl_ipc_guard_audit.so")
DLOPEN_DIR = os.path.join(SOURCE, "tests-c", "dlopen")
INTERCEPTED = ("aclrtIpcMemGetExportKey", "aclrtIpcMemSetImportPid", "aclrtIpcMemImportPidInterServer",
               "aclrtIpcMemImportByKey", "aclrtIpcMemSetAttr", "aclrtIpcMemClose", "aclrtDeviceGetBareTgid",
               "aclrtMalloc", "aclrtMallocAlign32", "aclrtMallocCached", "aclrtFree")


class Run:
    """One run of cmd with every call recorded (ACL_IPC_GUARD_CALLS=all) into work/log.%p.json.
    how: "launcher" (acl-ipc-guard run), "manual" (LD_PRELOAD + LD_AUDIT set by hand),
    "preload" (LD_PRELOAD only), "audit-only" (LD_AUDIT only) or "none"."""

    def __init__(self, cmd, how, extra=None, check_rc=0, env_extra=None):
        work = Workdir()
        try:
            env = base_env(work, dict({"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_CALLS": "all"},
                                      **(extra or {})))
            env.pop("LD_AUDIT", None)
            env.update(env_extra or {})
            if how == "launcher":
                cmd = [CLI, "run", "--", *cmd]
            elif how == "manual":
                env.update(LD_PRELOAD=SHIM, LD_AUDIT=AUDIT)
            elif how == "preload":
                env["LD_PRELOAD"] = SHIM
            elif how == "audit-only":
                env["LD_AUDIT"] = AUDIT
            else:
                assert how == "none", how
            self.proc = run(cmd, env, preload=False, check_rc=check_rc)
            self.out = self.proc.stdout_text
            self.err = self.proc.stderr_text
            self.logs = read_logs(work.file("log.*.json"))
        finally:
            work.cleanup()
        self.how = how

    def lines(self, prefix=None):
        """The printed lines split in words (those whose first word is prefix)."""
        words = [l.split() for l in (self.out + self.err).splitlines() if l.strip()]
        return [w for w in words if prefix is None or w[0] == prefix]

    def made(self, role):
        """[(fn, ret)] of the intercepted calls `role` says it made (`ROLE FN RET` lines)."""
        return [(w[1], int(w[2])) for w in self.lines(role) if len(w) == 3 and w[1] in INTERCEPTED]

    def emu_counts(self, label):
        """{fn: n} from the program's `LABEL.count FN N` lines."""
        return {w[1]: int(w[2]) for w in self.lines(label + ".count")}

    def value(self, *words):
        """The word after the printed line that starts with words."""
        for w in self.lines(words[0]):
            if tuple(w[:len(words)]) == words:
                return w[len(words)]
        fail(f"{self.how}: no line {' '.join(words)!r} in\n{self.out}\n{self.err}")


def recorded(records):
    """[(fn, ret)] of the call records, in order."""
    return [(r["fn"], r["ret"]) for r in calls(records)]


def check_once(records, made, what):
    """One call record per call, in order, with the return the program saw."""
    eq(Counter(fn for fn, _ in recorded(records)), Counter(fn for fn, _ in made), f"{what}: call records per function")
    eq(recorded(records), made, f"{what}: call records in order, with the returns the program saw")
    check(all(c["forwarded"] for c in calls(records)), f"{what}: every call forwarded")
    check_seq(records, what)


def check_emu_once(counts, made, what, before=None):
    """The runtime got each call once: its count grew by the calls made (the bare tgid may
    be one more: the shim asks for it itself once per process)."""
    before = before or {}
    n = Counter(fn for fn, _ in made)
    for fn in INTERCEPTED:
        got = counts.get(fn, -1) - before.get(fn, 0)
        if fn == "aclrtDeviceGetBareTgid":
            check(got in (n[fn], n[fn] + 1), f"{what}: the runtime's count of {fn}: {got}, made {n[fn]}")
        else:
            eq(got, n[fn], f"{what}: the runtime's count of {fn}")


def no_calls(run, what):
    eq(sum(len(calls(rs)) for rs in run.logs.values()), 0, f"{what}: no call records")
