"""Helpers of the rules_* tests: run the `scenario` program (a named scenario, or several
`scenario actor` processes driven step by step) with and without the shim, and judge what
the program saw and what the shim wrote.

Every line the program prints is `LABEL FN RET calls=N [name=value ...]` (see
programs/scenario.c). N counts the emulator's own entries for FN during the call, so
`calls=0` proves the call never reached the runtime."""

import hashlib
import os
import re
import signal
import subprocess
import time

from harness import *

SCENARIO = prog("scenario")
INVALID_PARAM = 100000

# The rule table of the interface (shared/spec/interface.md): id -> (severity, fn of the
# violation record). Kept here, apart from the shim's own table, so the tests check it.
RULES = {}
for _rule, _sev, _fn in (
    ("export.devptr-null", "error", "aclrtIpcMemGetExportKey"),
    ("export.size-zero", "error", "aclrtIpcMemGetExportKey"),
    ("export.key-null", "error", "aclrtIpcMemGetExportKey"),
    ("export.key-len", "error", "aclrtIpcMemGetExportKey"),
    ("export.flags", "error", "aclrtIpcMemGetExportKey"),
    ("export.range", "error", "aclrtIpcMemGetExportKey"),
    ("export.untracked", "warning", "aclrtIpcMemGetExportKey"),
    ("export.unaligned", "error", "aclrtIpcMemGetExportKey"),
    ("export.imported", "error", "aclrtIpcMemGetExportKey"),
    ("setpid.key-null", "error", "aclrtIpcMemSetImportPid"),
    ("setpid.key-unterminated", "error", "aclrtIpcMemSetImportPid"),
    ("setpid.key-unknown", "error", "aclrtIpcMemSetImportPid"),
    ("setpid.pid-null", "error", "aclrtIpcMemSetImportPid"),
    ("setpid.num", "error", "aclrtIpcMemSetImportPid"),
    ("setpid.pid-invalid", "error", "aclrtIpcMemSetImportPid"),
    ("setpid.own-pid", "warning", "aclrtIpcMemSetImportPid"),
    ("setpid.validation-disabled", "error", "aclrtIpcMemSetImportPid"),
    ("import.out-null", "error", "aclrtIpcMemImportByKey"),
    ("import.key-null", "error", "aclrtIpcMemImportByKey"),
    ("import.key-unterminated", "error", "aclrtIpcMemImportByKey"),
    ("import.flags", "error", "aclrtIpcMemImportByKey"),
    ("import.own-export", "error", "aclrtIpcMemImportByKey"),
    ("import.not-whitelisted", "error", "aclrtIpcMemImportByKey"),
    ("import.started-after-whitelist", "warning", "aclrtIpcMemImportByKey"),
    ("import.source-gone", "error", "aclrtIpcMemImportByKey"),
    ("close.key-null", "error", "aclrtIpcMemClose"),
    ("close.key-unterminated", "error", "aclrtIpcMemClose"),
    ("close.unknown", "error", "aclrtIpcMemClose"),
    ("close.exporter-before-importers", "error", "aclrtIpcMemClose"),
    ("free.before-close", "error", "aclrtFree"),
    ("free.imported", "error", "aclrtFree"),
    ("bare-tgid.invalid", "error", "aclrtDeviceGetBareTgid"),
    ("bare-tgid.out-null", "error", "aclrtDeviceGetBareTgid"),
    ("setattr.args", "error", "aclrtIpcMemSetAttr"),
    ("interserver.args", "error", "aclrtIpcMemImportPidInterServer"),
    ("exit.leak", "warning", "exit"),
):
    RULES[_rule] = (_sev, _fn)

LEDGER_RULES = ("import.not-whitelisted", "import.started-after-whitelist", "import.source-gone",
                "close.exporter-before-importers")

# Values that differ from run to run; every other part of a line must match.
VOLATILE = ("key", "tgid", "pid")


def fp_of(raw):
    """The interface's key fingerprint of a raw key."""
    return "fp:" + hashlib.sha256(raw.encode()).hexdigest()[:16]


# ----------------------------------------------------------------- program lines

class Line:
    def __init__(self, text):
        parts = text.split()
        if len(parts) < 4 or not parts[3].startswith("calls="):
            fail(f"unexpected line from scenario: {text!r}")
        self.text = text
        self.label, self.fn = parts[0], parts[1]
        self.ret = int(parts[2])
        self.calls = int(parts[3][len("calls="):])
        self.vals = dict(p.split("=", 1) for p in parts[4:])

    def stable(self):
        vals = tuple(sorted((k, v) for k, v in self.vals.items() if k not in VOLATILE))
        return (self.label, self.fn, self.ret, self.calls, vals)

    def is_call(self):
        return self.fn != "-"

    def __repr__(self):
        return f"Line({self.text!r})"


def parse_lines(text):
    return [Line(t) for t in text.splitlines() if t.strip()]


def stable(lines):
    return [l.stable() for l in lines]


def check_violation(v, rule, action, what, key_fp=None, fn=None, severity=None):
    sev, rfn = RULES[rule]
    eq(v["rule"], rule, f"{what}: rule")
    eq(v["severity"], severity or sev, f"{what}: severity")
    eq(v["action"], action, f"{what}: action")
    eq(v["fn"], fn or rfn, f"{what}: fn")
    check(isinstance(v.get("message"), str) and v["message"], f"{what}: message")
    if key_fp is not None:
        eq(v.get("key_fp"), key_fp, f"{what}: key_fp")
    check("key" not in v, f"{what}: no raw key without ACL_IPC_GUARD_SHOW_KEYS")
    if (severity or sev) == "error":
        bt = v.get("backtrace")
        check(isinstance(bt, list) and bt and all(isinstance(f, str) for f in bt),
              f"{what}: an error violation carries a backtrace: {bt!r}")


def env_for(work, mode, extra=None, calls=None):
    e = {"ACL_IPC_GUARD_LOG": work.file("log.%p.json")}
    if mode is not None:
        e["ACL_IPC_GUARD_MODE"] = mode
    if calls is not None:
        e["ACL_IPC_GUARD_CALLS"] = calls
    e.update(extra or {})
    return base_env(work, e)


def log_of(work, pid):
    path = work.file(f"log.{pid}.json")
    return read_log(path) if os.path.exists(path) else None


# ----------------------------------------------------------------- named scenarios

# Each named scenario of programs/scenario.c that breaks one rule: (scenario, key label,
# extra environment). The rule is the name up to "~"; the key label names the printed key
# the violation must carry (None: no key is involved).
NAMED = [
    ("export.devptr-null", None, None),
    ("export.size-zero", None, None),
    ("export.key-null", None, None),
    ("export.key-len", None, None),
    ("export.key-len~256", None, None),
    ("export.flags", None, None),
    ("export.range", None, None),
    ("export.range~offset", None, None),
    ("export.untracked", None, None),
    ("export.unaligned", None, None),
    ("setpid.key-null", None, None),
    ("setpid.key-unterminated", None, None),
    ("setpid.key-unknown", "export", None),
    ("setpid.key-unknown~never", "fake", None),
    ("setpid.pid-null", "export", None),
    ("setpid.num", "export", None),
    ("setpid.num~32", "export", None),
    ("setpid.pid-invalid", "export", None),
    ("setpid.pid-invalid~negative", "export", None),
    ("setpid.own-pid", "export", None),
    ("setpid.validation-disabled", "export", None),
    ("import.out-null", "fake", None),
    ("import.key-null", None, None),
    ("import.key-unterminated", None, None),
    ("import.flags", "fake", None),
    ("import.own-export", "export", None),
    ("import.own-export~whitelist", "export", None),
    ("close.key-null", None, None),
    ("close.key-unterminated", None, None),
    ("close.unknown", "export", None),
    ("close.unknown~never", "fake", None),
    ("free.before-close", "export", None),
    ("bare-tgid.invalid", None, {"ASCEND_EMU_BARE_TGID_FAIL": "1"}),
    ("bare-tgid.out-null", None, None),
    ("setattr.args", "export", None),
    ("setattr.args~attr", "export", None),
    ("setattr.args~null", None, None),
    ("setattr.args~unterminated", None, None),
    ("interserver.args", "export", None),
    ("interserver.args~num0", "export", None),
    ("interserver.args~nullpid", "export", None),
    ("interserver.args~entrynum0", "export", None),
    ("interserver.args~keynull", None, None),
    ("interserver.args~unterminated", None, None),
]


def rule_of(scenario):
    return scenario.split("~")[0]


def check_named_group(prefixes):
    for name, key_label, extra in NAMED:
        if rule_of(name).startswith(prefixes):
            check_named(name, rule_of(name), key_label, extra)

class Named:
    """One run of `scenario NAME`."""

    def __init__(self, name, mode=None, preload=True, extra=None, calls=None):
        work = Workdir()
        try:
            env = env_for(work, mode, extra, calls)
            self.proc = run([SCENARIO, name], env, preload=preload, timeout=60)
            self.returncode = self.proc.returncode
            self.lines = parse_lines(self.proc.stdout_text)
            self.logs = read_logs(work.file("log.*.json")) if preload else {}
        finally:
            work.cleanup()
        self.name, self.mode = name, mode

    def records(self):
        """The records of the one process that ran."""
        eq(len(self.logs), 1 if self.mode != "off" else 0, f"{self.name} {self.mode}: one log")
        return next(iter(self.logs.values()))

    def target_index(self):
        for i, l in enumerate(self.lines):
            if l.label == "target" and l.is_call():
                return i
        return None

    def target(self):
        i = self.target_index()
        if i is None:
            fail(f"{self.name} {self.mode}: no target line in\n{self.proc.stdout_text}\n{self.proc.stderr_text}")
        return self.lines[i]

    def key(self, label):
        for l in self.lines:
            if l.label == label + ".out" and "key" in l.vals:
                return l.vals["key"]
        fail(f"{self.name}: no key printed for {label}")


def check_named(name, rule, key_label=None, extra=None):
    """One named scenario that breaks `rule` at its `target` call, judged in every mode.
    key_label: the label of the printed key the violation must name (None: no key)."""
    sev, fn = RULES[rule]
    after = rule == "bare-tgid.invalid"  # judged after the call
    what = f"{name}"
    base = Named(name, preload=False, extra=extra)
    eq(base.returncode, 0, f"{what} without the shim: exit status")
    t0 = base.target()
    eq(t0.calls, 1, f"{what} without the shim: the runtime was called")
    eq(t0.fn, fn, f"{what}: the target calls {fn}")

    def expected_fp(r):
        return fp_of(r.key(key_label)) if key_label else None

    def only_violation(r, action):
        recs = r.records()
        vs = violations(recs)
        eq([v["rule"] for v in vs], [rule], f"{what} {r.mode}: the violations")
        check_violation(vs[0], rule, action, f"{what} {r.mode}", expected_fp(r))
        if key_label is None:
            check(vs[0].get("key_fp") is None, f"{what} {r.mode}: no key_fp when no key is involved")
        return recs, vs[0]

    # audit: reported, and the program sees exactly what it sees without the shim
    a = Named(name, "audit", extra=extra, calls="all")
    eq(a.returncode, 0, f"{what} audit: exit status")
    eq(stable(a.lines), stable(base.lines), f"{what} audit: every call returns as without the shim")
    recs, v = only_violation(a, "reported")
    summary = events(recs, "summary")
    eq(len(summary), 1, f"{what} audit: one summary")
    eq(summary[0]["violations"], {rule: 1}, f"{what} audit: summary counts the violation")
    target_calls = calls(recs, fn)
    check(any(c["ret"] == t0.ret and c["forwarded"] for c in target_calls),
          f"{what} audit: the target's call record is forwarded with ret {t0.ret}: {target_calls}")

    # enforce: error rules block without calling the runtime, warnings only report
    e = Named(name, "enforce", extra=extra, calls="all")
    eq(e.returncode, 0, f"{what} enforce: exit status")
    ti = e.target_index()
    eq(stable(e.lines[:ti]), stable(base.lines[:base.target_index()]), f"{what} enforce: calls before the target")
    t = e.target()
    if sev == "error" and after:
        eq((t.ret, t.calls), (INVALID_PARAM, 1), f"{what} enforce: judged after the call: runtime called, 100000")
        recs, v = only_violation(e, "blocked")
        eq([c["ret"] for c in calls(recs, fn)], [INVALID_PARAM], f"{what} enforce: the call record has 100000")
        eq(events(recs, "summary")[0]["blocked"], 1, f"{what} enforce: summary blocked")
    elif sev == "error":
        eq((t.ret, t.calls), (INVALID_PARAM, 0), f"{what} enforce: blocked call returns 100000, runtime not called")
        recs, v = only_violation(e, "blocked")
        blocked = [c for c in calls(recs, fn) if not c["forwarded"]]
        eq([(c["ret"], c["forwarded"]) for c in blocked], [(INVALID_PARAM, False)], f"{what} enforce: call record")
        eq(events(recs, "summary")[0]["blocked"], 1, f"{what} enforce: summary blocked")
    else:
        eq((t.ret, t.calls), (t0.ret, 1), f"{what} enforce: a warning is forwarded")
        eq(stable(e.lines), stable(base.lines), f"{what} enforce: a warning changes nothing")
        only_violation(e, "reported")

    # abort: error rules end the process with SIGABRT after a complete log
    ab = Named(name, "abort", extra=extra, calls="all")
    if sev == "error":
        eq(ab.returncode, -signal.SIGABRT, f"{what} abort: killed by SIGABRT")
        before = base.lines[:base.target_index()]
        eq(stable(ab.lines), stable(before), f"{what} abort: the program got as far as the target, no further")
        recs, v = only_violation(ab, "aborted")
        check_seq(recs, f"{what} abort")
        eq(recs[0]["event"], "start", f"{what} abort: start record")
        eq(recs[0]["mode"], "abort", f"{what} abort: mode")
        made = [(c["fn"], c["ret"]) for c in calls(recs)]
        eq(made, [(l.fn, l.ret) for l in ab.lines if l.is_call()],
           f"{what} abort: every call made before the abort has its record")
        check(recs.index(v) > max([recs.index(c) for c in calls(recs)], default=-1),
              f"{what} abort: the violation comes after the earlier calls")
        check(any(f.split(" ")[0] == "main" for f in v["backtrace"]),
              f"{what} abort: the backtrace reaches the program's main: {v['backtrace']}")
    else:
        eq(ab.returncode, 0, f"{what} abort: a warning does not abort")
        only_violation(ab, "reported")


# ----------------------------------------------------------------- actors

class Resp:
    def __init__(self, lines, complete):
        self.lines = lines
        self.complete = complete

    @property
    def call(self):
        cs = [l for l in self.lines if l.is_call()]
        return cs[0] if cs else None

    @property
    def ret(self):
        return self.call.ret

    @property
    def vals(self):
        out = {}
        for l in self.lines:
            out.update(l.vals)
        return out

    def stable(self):
        return (stable(self.lines), self.complete)

    def __repr__(self):
        return f"Resp({[l.text for l in self.lines]}, complete={self.complete})"


def read_answer(stream):
    """An actor's answer from stream: its lines up to the `.` line (complete), or up to
    the end of the stream (not complete: it died)."""
    lines = []
    while True:
        raw = stream.readline()
        if not raw:
            return Resp(lines, False)
        text = raw.decode().rstrip("\n")
        if text == ".":
            return Resp(lines, True)
        lines.append(Line(text))


class Actor:
    """A `scenario actor` process: one command in, its answer lines out."""

    def __init__(self, name, env, preload=True, errfile=None):
        env = dict(env)
        if preload:
            env["LD_PRELOAD"] = SHIM
        self.name = name
        self.err = open(errfile or os.devnull, "wb")
        self.p = subprocess.Popen([SCENARIO, "actor"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err)
        self.pid = self.p.pid
        self.dead = False
        self.returncode = None

    def do(self, cmd):
        if self.dead:
            return None
        try:
            self.p.stdin.write((cmd + "\n").encode())
            self.p.stdin.flush()
        except BrokenPipeError:
            self.finish()
            return Resp([], False)
        r = read_answer(self.p.stdout)
        if not r.complete:
            # It died (abort mode): reap it now, so that no other process sees a zombie.
            self.finish()
        return r

    def finish(self, timeout=30):
        """Ends the actor (end of input: it exits 0) and returns its exit status."""
        if self.returncode is None:
            try:
                self.p.stdin.close()
            except BrokenPipeError:
                pass
            self.returncode = self.p.wait(timeout=timeout)
            self.p.stdout.close()
            self.err.close()
            self.dead = True
        return self.returncode

    def kill(self):
        self.p.send_signal(signal.SIGKILL)
        return self.finish()


class ForkChild(Actor):
    """A fork child of a `scenario actor` (its `fork IN OUT` command), talking through the
    FIFOs IN and OUT. How it ends (finish, kill) is the test's."""

    def __init__(self, parent, work, tag):
        fin, fout = work.file(f"in.{tag}"), work.file(f"out.{tag}")
        os.mkfifo(fin, 0o600)
        os.mkfifo(fout, 0o600)
        r = parent.do(f"fork {fin} {fout}")
        check(r.complete and r.vals.get("child", "").isdigit(), f"{tag}: fork answered: {r}")
        self.name, self.parent, self.pid = tag, parent, int(r.vals["child"])
        # The child opens IN, then OUT: the same order here, so neither open waits forever.
        self.stdin = open(fin, "wb")
        self.stdout = open(fout, "rb")
        self.dead = False
        self.returncode = None

    def do(self, cmd):
        self.stdin.write((cmd + "\n").encode())
        self.stdin.flush()
        r = read_answer(self.stdout)
        self.dead = not r.complete
        return r


class NsActor(Actor):
    """An actor running as pid 1 of its own pid namespace, with its own /proc (see
    harness.NsPeer). self.pid is its host pid (its bare tgid with host_proc=True);
    kill() SIGKILLs the actor itself, so it is gone when kill() returns."""

    def __init__(self, name, env, work, preload=True, errfile=None, host_proc=True):
        self.name = name
        self.err = open(errfile or os.devnull, "wb")
        self.peer = NsPeer([SCENARIO, "actor"], env, work, preload=preload, host_proc=host_proc,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)
        self.p = self.peer.p
        self.pid = self.peer.host_pid
        self.dead = False
        self.returncode = None

    def kill(self):
        self.peer.kill()
        return self.finish()


_PLACEHOLDER = re.compile(r"\{(\w+)\.(\w+)\}")


class Play:
    """Runs a script of steps over named actors, spawned at their first step.

    A step is (ROLE, COMMAND), (ROLE, COMMAND, "target"), (ROLE, "EXIT") (end of input:
    the actor exits), (ROLE, "KILL") (SIGKILL), ("sleep", MS) or ("spawn", ROLE).
    In COMMAND, {ROLE.VAR} is replaced by what that actor printed: its exported key VAR,
    or `tgid`/`pid`."""

    def __init__(self, script, mode=None, preload=True, extra=None, role_extra=None, calls=None):
        self.work = Workdir()
        self.mode = mode
        self.actors = {}
        self.known = {}
        self.steps = []
        self.target = None
        try:
            for step in script:
                if step[0] == "sleep":
                    time.sleep(step[1] / 1000.0)
                    continue
                role, cmd = step[0], step[1]
                a = self.actors.get(role)
                if a is None:
                    e = dict(extra or {})
                    e.update((role_extra or {}).get(role, {}))
                    env = env_for(self.work, e.pop("ACL_IPC_GUARD_MODE", mode), e, calls)
                    a = self.actors[role] = Actor(role, env, preload, self.work.file(f"err.{role}"))
                    self.known[(role, "pid")] = str(a.pid)
                if cmd == "spawn":
                    continue
                if cmd == "EXIT":
                    a.finish()
                    continue
                if cmd == "KILL":
                    a.kill()
                    continue
                cmd = _PLACEHOLDER.sub(lambda m: self.known[(m.group(1), m.group(2))], cmd)
                r = a.do(cmd)
                if r is not None:
                    vals = r.vals
                    words = cmd.split()
                    if words[0] == "export" and "key" in vals:
                        self.known[(role, words[1])] = vals["key"]
                    if "tgid" in vals:
                        self.known[(role, "tgid")] = vals["tgid"]
                self.steps.append((role, cmd, r))
                if len(step) > 2 and step[2] == "target":
                    self.target = (role, len(self.steps) - 1)
            for a in self.actors.values():
                a.finish()
            self.logs = {role: log_of(self.work, a.pid) for role, a in self.actors.items()}
            self.stderr = {}
            for role in self.actors:
                with open(self.work.file(f"err.{role}"), "rb") as f:
                    self.stderr[role] = f.read().decode(errors="replace")
        finally:
            for a in self.actors.values():
                if a.returncode is None:
                    a.kill()
            self.work.cleanup()

    def rc(self, role):
        return self.actors[role].returncode

    def pid(self, role):
        return self.actors[role].pid

    def key(self, role, var):
        return self.known[(role, var)]

    def target_resp(self):
        role, i = self.target
        return self.steps[i][2]

    def stable(self):
        return [(role, cmd.split()[0], r.stable() if r else None) for role, cmd, r in self.steps]

    def before_target(self, role):
        """The answers `role` gave before the target step."""
        _, ti = self.target
        return [r for rl, _, r in self.steps[:ti] if rl == role]

    def describe(self):
        out = []
        for role, cmd, r in self.steps:
            out.append(f"  {role}: {cmd} -> {[l.text for l in r.lines] if r else None}")
        for role, err in self.stderr.items():
            if err.strip():
                out.append(f"  stderr of {role}: {err.strip()}")
        return "\n".join(out)


def check_play_rule(name, script, rule, key_ref=None, extra=None, role_extra=None,
                    others=None, modes=("audit", "enforce", "abort"), post=None):
    """A multi-process scenario whose target step breaks `rule`, judged in every mode.
    key_ref: (ROLE, VAR), the exported key the violation names. others: {ROLE: [rules]},
    the violations other roles are expected to have (default none)."""
    sev, fn = RULES[rule]
    base = Play(script, preload=False, extra=extra, role_extra=role_extra)
    trole, ti = base.target
    t0 = base.target_resp()
    check(t0.complete and t0.call is not None, f"{name}: target answered without the shim\n{base.describe()}")
    eq((t0.call.fn, t0.call.calls), (fn, 1), f"{name}: target calls {fn} once without the shim")
    for role in base.actors:
        eq(base.rc(role), 0, f"{name} without the shim: {role} exits 0\n{base.describe()}")

    def judge(p, action):
        what = f"{name} {p.mode}"
        recs = p.logs[trole]
        check(recs is not None, f"{what}: {trole} wrote a log")
        vs = violations(recs)
        eq([v["rule"] for v in vs], [rule], f"{what}: violations of {trole}\n{p.describe()}")
        check_violation(vs[0], rule, action, what, fp_of(p.key(*key_ref)) if key_ref else None)
        for role, recs2 in p.logs.items():
            if role == trole:
                continue
            want = sorted((others or {}).get(role, []))
            eq(sorted(v["rule"] for v in violations(recs2 or [])), want, f"{what}: violations of {role}")
        return recs, vs[0]

    if "audit" in modes:
        a = Play(script, "audit", extra=extra, role_extra=role_extra)
        eq(a.stable(), base.stable(), f"{name} audit: every step answers as without the shim\n{a.describe()}")
        for role in a.actors:
            eq(a.rc(role), 0, f"{name} audit: {role} exits 0")
        judge(a, "reported")
        if post:
            post(a, "audit")

    if "enforce" in modes:
        e = Play(script, "enforce", extra=extra, role_extra=role_extra)
        t = e.target_resp()
        eq([r.stable() for r in e.before_target(trole)], [r.stable() for r in base.before_target(trole)],
           f"{name} enforce: {trole}'s answers before the target")
        if sev == "error":
            eq((t.call.ret, t.call.calls), (INVALID_PARAM, 0),
               f"{name} enforce: blocked, 100000, runtime not called\n{e.describe()}")
            judge(e, "blocked")
        else:
            eq((t.call.ret, t.call.calls), (t0.call.ret, 1), f"{name} enforce: a warning is forwarded")
            judge(e, "reported")
        for role in e.actors:
            eq(e.rc(role), 0, f"{name} enforce: {role} exits 0")
        if post:
            post(e, "enforce")

    if "abort" in modes:
        ab = Play(script, "abort", extra=extra, role_extra=role_extra, calls="all")
        t = ab.target_resp()
        if sev == "error":
            eq(ab.rc(trole), -signal.SIGABRT, f"{name} abort: {trole} killed by SIGABRT\n{ab.describe()}")
            check(not t.complete and t.call is None, f"{name} abort: the target call never returned: {t}")
            recs, v = judge(ab, "aborted")
            check_seq(recs, f"{name} abort")
            answered = [r.call for r in ab.before_target(trole) if r.call is not None and r.call.fn.startswith("acl")
                        and r.call.fn not in ("aclrtSetDevice", "aclrtMemcpy")]
            eq([(c["fn"], c["ret"]) for c in calls(recs)], [(c.fn, c.ret) for c in answered],
               f"{name} abort: every call {trole} made before the abort has its record")
            check(any(f.split(" ")[0] == "actor_command" for f in v["backtrace"]),
                  f"{name} abort: the backtrace names the calling function: {v['backtrace']}")
        else:
            eq(ab.rc(trole), 0, f"{name} abort: a warning does not abort")
            judge(ab, "reported")
        if post:
            post(ab, "abort")


# ----------------------------------------------------------------- clean runs

def check_clean_logs(logs, what, allow_leaks=False):
    """No violation, no error record, seq without gaps, a summary with no leak."""
    check(logs, f"{what}: logs were written")
    for pid, recs in logs.items():
        eq(violations(recs), [], f"{what}: violations of pid {pid}")
        eq(events(recs, "error"), [], f"{what}: error records of pid {pid}")
        check_seq(recs, f"{what}: pid {pid}")
        s = events(recs, "summary")
        eq(len(s), 1, f"{what}: one summary for pid {pid}")
        eq(s[0]["violations"], {}, f"{what}: summary violations of pid {pid}")
        eq(s[0]["blocked"], 0, f"{what}: nothing blocked in pid {pid}")
        if not allow_leaks:
            eq(s[0]["leaks"], 0, f"{what}: leaks of pid {pid}")
        for c in calls(recs):
            check(c["forwarded"], f"{what}: call forwarded: {c}")


# ----------------------------------------------------------------- multi-process scenarios

def exporter(flags=1, size=8192, role="A"):
    """ROLE allocates SIZE bytes, writes a text into them and exports them as key k."""
    return [(role, "dev"), (role, f"malloc m {size}"), (role, "write m 0 shared-by-the-exporter"),
            (role, f"export k m 0 {size} {flags}")]


def importer(flags=0, target=False, role="B", src="A"):
    """ROLE receives SRC's key k and imports it as q."""
    return [(role, "dev"), (role, f"setkey k {{{src}.k}}"),
            (role, f"import q k {flags}") + (("target",) if target else ())]


def whitelisted_importer(role="B", src="A", flags=0):
    """ROLE sends its bare tgid, SRC whitelists it, then ROLE imports."""
    return [(role, "dev"), (role, "tgid"), (src, f"setpid k {{{role}.tgid}}"), (role, f"setkey k {{{src}.k}}"),
            (role, f"import q k {flags}")]


def answers(p, role, verb):
    """The answers `role` gave to the commands starting with `verb`, in order."""
    return [r for rl, cmd, r in p.steps if rl == role and cmd.split()[0] == verb]


# A bare tgid the runtime is made to report for two processes (no real pid is this large).
LATE_TGID = 2000000001

# Multi-process scenarios that break one rule at their target step:
# name -> dict(rule, script, key_ref, role_extra, others, post).
ACTOR = {}


def _post_read_ok(role):
    def post(p, mode):
        reads = answers(p, role, "read")
        check(reads and reads[0].call.ret == 0 and reads[0].vals.get("text") == "shared-by-the-exporter",
              f"{mode}: {role} read the exporter's bytes: {reads}")
    return post


ACTOR["export.imported"] = dict(
    rule="export.imported", key_ref=("A", "k"), post=_post_read_ok("B"),
    script=exporter() + importer() + [("B", "read q 0"), ("B", "export k2 q 0 4096 0", "target"),
                                       ("B", "cleanup"), ("A", "cleanup")])
# An address inside the import, not its start: the shim must know the import's size.
ACTOR["export.imported~inside"] = dict(
    rule="export.imported", key_ref=("A", "k"),
    script=exporter() + importer() + [("B", "export k2 q 4096 4096 0", "target"),
                                       ("B", "cleanup"), ("A", "cleanup")])
# The vendor sample's mistake: the importer frees the imported pointer after closing it.
# The violation names the key the memory was imported with (closed or still open), so that
# it stands on that key's timeline.
ACTOR["free.imported"] = dict(
    rule="free.imported", key_ref=("A", "k"), post=_post_read_ok("B"),
    script=exporter() + importer() + [("B", "read q 0"), ("B", "close k"), ("B", "free q", "target"),
                                       ("B", "cleanup"), ("A", "cleanup")])
ACTOR["free.imported~open"] = dict(
    rule="free.imported", key_ref=("A", "k"),
    script=exporter() + importer() + [("B", "free q", "target"), ("B", "cleanup"), ("A", "cleanup")])

# Only the exporter may whitelist: the importer tries it on the key it imported.
ACTOR["setpid.key-unknown~importer"] = dict(
    rule="setpid.key-unknown", key_ref=("A", "k"),
    script=exporter(0) + whitelisted_importer() + [("B", "setpid k 5000001", "target"),
                                                    ("B", "cleanup"), ("A", "cleanup")])
# Two imports of one key, three closes.
ACTOR["close.unknown~extra-close"] = dict(
    rule="close.unknown", key_ref=("A", "k"),
    script=exporter() + importer() + [("B", "import q k 0"), ("B", "close k"), ("B", "close k"),
                                       ("B", "close k", "target"), ("B", "cleanup"), ("A", "cleanup")])


def _post_not_whitelisted(p, mode):
    eq(answers(p, "A", "setpid")[0].call.ret, 0, f"{mode}: the exporter whitelisted another pid")


ACTOR["import.not-whitelisted"] = dict(
    rule="import.not-whitelisted", key_ref=("A", "k"), post=_post_not_whitelisted,
    script=exporter(0) + [("A", "setpid k 5000001")] + importer(target=True) + [("B", "cleanup"), ("A", "cleanup")])
ACTOR["import.not-whitelisted~nolist"] = dict(
    rule="import.not-whitelisted", key_ref=("A", "k"),
    script=exporter(0) + importer(target=True) + [("B", "cleanup"), ("A", "cleanup")])


def _post_started_after(p, mode):
    # C has the same bare tgid but started before it was whitelisted: the runtime lets it
    # in and the shim says nothing about it (checked by `others`).
    c = answers(p, "C", "import")[0]
    eq(c.call.ret, 0, f"{mode}: the importer started before the whitelist is let in")
    b = answers(p, "B", "import")[0]
    if b.complete:
        eq(b.call.ret, 507899, f"{mode}: the importer started after the whitelist is refused by the runtime")


# The pid-reuse case: the runtime reports bare tgid LATE_TGID for both C and B (as in a
# container); the exporter whitelists it after C started and before B started.
ACTOR["import.started-after-whitelist"] = dict(
    rule="import.started-after-whitelist", key_ref=("A", "k"), post=_post_started_after,
    script=[("C", f"tgidas {LATE_TGID}"), ("C", "dev")] + exporter(0)
    + [("A", f"setpid k {LATE_TGID}"), ("sleep", 60), ("B", f"tgidas {LATE_TGID}")]
    + importer(target=True)
    + [("C", "setkey k {A.k}"), ("C", "import q k 0"), ("C", "read q 0"),
       ("C", "cleanup"), ("B", "cleanup"), ("A", "cleanup")])

ACTOR["import.source-gone"] = dict(
    rule="import.source-gone", key_ref=("A", "k"),
    script=exporter() + [("B", "dev"), ("B", "setkey k {A.k}"), ("A", "close k"),
                         ("B", "import q k 0", "target"), ("B", "cleanup"), ("A", "cleanup")])
# The exporter frees the memory with its key open (its own free.before-close, kept in
# audit mode so that the memory really goes).
ACTOR["import.source-gone~freed"] = dict(
    rule="import.source-gone", key_ref=("A", "k"), others={"A": ["free.before-close"]},
    role_extra={"A": {"ACL_IPC_GUARD_MODE": "audit"}},
    script=exporter() + [("B", "dev"), ("B", "setkey k {A.k}"), ("A", "free m"),
                         ("B", "import q k 0", "target"), ("B", "cleanup"), ("A", "cleanup")])
ACTOR["import.source-gone~exited"] = dict(
    rule="import.source-gone", key_ref=("A", "k"), others={"A": ["exit.leak"]},
    script=exporter() + [("B", "dev"), ("B", "setkey k {A.k}"), ("A", "EXIT"),
                         ("B", "import q k 0", "target"), ("B", "cleanup")])


def _post_names_importer(p, mode):
    if mode is None:
        return
    v = violations(p.logs["A"])
    check(v and str(p.pid("B")) in v[0]["message"], f"{mode}: the message names the importer {p.pid('B')}: {v}")


ACTOR["close.exporter-before-importers"] = dict(
    rule="close.exporter-before-importers", key_ref=("A", "k"), post=_post_names_importer,
    script=exporter(0) + whitelisted_importer() + [("A", "close k", "target"), ("B", "cleanup"), ("A", "cleanup")])


def check_actor_group(names):
    for name in names:
        d = ACTOR[name]
        check_play_rule(name, d["script"], d["rule"], d.get("key_ref"), role_extra=d.get("role_extra"),
                        others=d.get("others"), post=d.get("post"))
