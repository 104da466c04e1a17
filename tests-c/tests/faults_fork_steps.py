"""fork() after each step of the flow, in the exporter and in the importer: the child
works, and the parent's state is intact.

The flow: A allocates, writes and exports m as k (whitelist mode), whitelists B, B imports
k and reads A's bytes, B closes, A closes and frees. In each case one of them forks right
after one of its steps (`scenario actor`'s `fork IN OUT`: the child goes on as an actor
of its own, driven through two FIFOs). The child then does real work while its parent
waits:

- it reads the bytes it inherited (A's memory, or B's import of it) when they are still
  mapped;
- it allocates, writes and exports memory of its own (no whitelist); a helper process H
  imports that key and reads the child's bytes;
- H exports a key whitelisting the child; the child imports it, reads H's bytes and
  closes it; H closes, the child closes its export after H's import and frees, and exits.

Then the parent finishes the flow. What must hold:

- A's and B's records (every call with the return the program saw, no violation, no
  error) are the same as in the run without a fork, and their summaries agree;
- the child exits 0; its log starts with its own `start` naming its parent, `seq` counts
  from 1 without gaps, it has a call record per call it made with the returns it saw, no
  violation, no error, no leak;
- the bytes everybody reads are the bytes that were written."""
import os
from ruleslib import *

FLOW = [("A", "dev"), ("B", "dev"), ("B", "tgid"),
        ("A", "malloc m 8192"), ("A", "write m 0 shared-by-the-exporter"), ("A", "export k m 0 8192 0"),
        ("A", "setpid k {B.tgid}"), ("B", "setkey k {A.k}"), ("B", "import q k 0"), ("B", "read q 0"),
        ("B", "close k"), ("A", "close k"), ("A", "free m")]
A_TEXT = "shared-by-the-exporter"
# Where a fork goes: (role, the step of that role it follows, what the child inherited
# that it can read: (variable, text) or None).
CASES = [("A", "malloc m 8192", None), ("A", "export k m 0 8192 0", ("m", A_TEXT)),
         ("A", "setpid k {B.tgid}", ("m", A_TEXT)), ("A", "close k", ("m", A_TEXT)), ("A", "free m", None),
         ("B", "import q k 0", ("q", A_TEXT)), ("B", "close k", None)]


class Child(ForkChild):
    """A fork child that ends at the end of its input, reaped by its parent."""

    def finish(self, timeout=30):
        """End of input: the child exits; its parent reaps it and says how it ended."""
        self.stdin.close()
        rest = self.stdout.read()
        self.stdout.close()
        eq(rest, b"", f"{self.name}: nothing after its last answer")
        r = self.parent.do("reap")
        self.returncode = 0 if (r.vals.get("ok"), r.vals.get("bad")) == ("1", "0") else r.vals
        return self.returncode


def play(case):
    """The flow with A, B (and, with a case, a fork child and its helper H). Returns the
    logs {role: records}, the answers {role: [(cmd, Resp)]} and the child's pid."""
    work = Workdir()
    env = env_for(work, "audit", calls="all")
    actors = {}
    known = {}
    said = {}
    child = None
    try:
        def act(role, cmd):
            a = actors.get(role)
            if a is None:
                a = actors[role] = Actor(role, env, True, work.file(f"err.{role}"))
            r = a.do(re.sub(r"\{(\w+)\.(\w+)\}", lambda m: known[(m.group(1), m.group(2))], cmd))
            check(r.complete, f"{role}: {cmd}: answered: {r}")
            words = cmd.split()
            if words[0] == "export" and "key" in r.vals:
                known[(role, words[1])] = r.vals["key"]
            if "tgid" in r.vals:
                known[(role, "tgid")] = r.vals["tgid"]
            said.setdefault(role, []).append((cmd, r))
            return r

        for role, cmd in FLOW:
            act(role, cmd)
            if case is None or (role, cmd) != case[:2]:
                continue
            inherited = case[2]
            child = actors["C"] = Child(actors[role], work, f"{role}-after-{cmd.split()[0]}")
            if inherited is not None:
                r = act("C", f"read {inherited[0]} 0")
                eq((r.call.ret, r.vals.get("text")), (0, inherited[1]), f"{child.name}: reads what it inherited")
            for step in [("C", "tgid"), ("C", "malloc c 4096"), ("C", "write c 0 written-by-the-child"),
                         ("C", "export ck c 0 4096 1"),
                         ("H", "dev"), ("H", "malloc hm 4096"), ("H", "write hm 0 written-by-the-helper"),
                         ("H", "export hk hm 0 4096 0"), ("H", "setpid hk {C.tgid}"),
                         ("H", "setkey ck {C.ck}"), ("H", "import hq ck 0"), ("H", "read hq 0"),
                         ("C", "setkey hk {H.hk}"), ("C", "import cq hk 0"), ("C", "read cq 0"),
                         ("C", "close hk"), ("H", "close ck"), ("C", "close ck"), ("C", "free c"),
                         ("H", "close hk"), ("H", "free hm")]:
                act(*step)
            rh = [r for c, r in said["H"] if c == "read hq 0"][0]
            eq((rh.call.ret, rh.vals.get("text")), (0, "written-by-the-child"), f"{child.name}: H reads the child's bytes")
            rc = [r for c, r in said["C"] if c == "read cq 0"][0]
            eq((rc.call.ret, rc.vals.get("text")), (0, "written-by-the-helper"), f"{child.name}: the child reads H's bytes")
            eq(child.finish(), 0, f"{child.name}: the child exits 0")
        for a in actors.values():
            if a.returncode is None:
                a.finish()
        for role, a in actors.items():
            eq(a.returncode, 0, f"{case}: {role} exits 0")
        logs = {role: log_of(work, a.pid) for role, a in actors.items()}
        return logs, said, child
    finally:
        for a in actors.values():
            if a.returncode is None and isinstance(a, Child):
                a.stdin.close()
            elif a.returncode is None:
                a.kill()
        work.cleanup()


def shape(records):
    """What a process did, without what differs from run to run (pids, times, keys)."""
    out = []
    for r in records:
        if r["event"] == "call":
            out.append(("call", r["fn"], r["ret"], r["forwarded"]))
        elif r["event"] == "summary":
            out.append(("summary", r["calls"], r["violations"], r["blocked"], r["leaks"], r["dropped"]))
        else:
            out.append((r["event"], r.get("rule")))
    return out


base_logs, base_said, _ = play(None)
for role in "AB":
    eq([v["rule"] for v in violations(base_logs[role])], [], f"without a fork: {role}'s violations")
    eq(events(base_logs[role], "error"), [], f"without a fork: {role}'s errors")
read_b = [r for c, r in base_said["B"] if c == "read q 0"][0]
eq((read_b.call.ret, read_b.vals.get("text")), (0, A_TEXT), "without a fork: B reads A's bytes")

for case in CASES:
    logs, said, child = play(case)
    what = child.name
    for role in "AB":
        eq(shape(logs[role]), shape(base_logs[role]), f"{what}: {role}'s records are those of the run without a fork")
        check_seq(logs[role], f"{what}: {role}")
        eq([(c, r.stable()) for c, r in said[role]], [(c, r.stable()) for c, r in base_said[role]],
           f"{what}: {role}'s answers are those of the run without a fork")
    parent_pid = logs[case[0]][0]["pid"]
    recs = logs["C"]
    check(recs, f"{what}: the child wrote its own log")
    eq((recs[0]["event"], recs[0]["seq"], recs[0]["pid"], recs[0].get("parent")), ("start", 1, child.pid, parent_pid),
       f"{what}: the child's log starts with its own start, naming its parent")
    eq({r["pid"] for r in recs}, {child.pid}, f"{what}: the child's log holds its own records only")
    check_seq(recs, f"{what}: child")
    eq(recs[0]["seq"], 1, f"{what}: the child counts seq from 1")
    made = [(r.call.fn, r.call.ret) for c, r in said["C"] if r.call is not None and r.call.fn.startswith("aclrt")
            and r.call.fn != "aclrtMemcpy"]
    eq([(r["fn"], r["ret"]) for r in calls(recs)], made, f"{what}: a call record per call the child made")
    check(all(ret == 0 for _, ret in made), f"{what}: every call of the child succeeded: {made}")
    for role in ("C", "H"):
        eq([v["rule"] for v in violations(logs[role])], [], f"{what}: {role}'s violations")
        eq(events(logs[role], "error"), [], f"{what}: {role}'s errors")
        s = events(logs[role], "summary")
        eq(len(s), 1, f"{what}: {role}: one summary")
        eq(s[0]["leaks"], 0, f"{what}: {role}: no leak")
done("faults.fork.steps")
