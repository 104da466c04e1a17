"""The exporter's liveness as an importer is told it, through the real preload, the real
ledger and real processes: the liveness word (a robust mutex a thread of the exporter
keeps locked; no system call) and the liveness lock behind it (one fcntl F_OFD_GETLK).

The importer B runs under strace (its main thread), which counts its F_OFD_GETLK calls
between markers (a `sleep 0` command: one clock_nanosleep each), so that each verdict is
checked together with the way it was reached:
  - exporter A (log off: no writer thread) exports from a thread that then exits; A
    lives: B's import is no `import.source-gone`, told by the lock (the word went with its
    thread);
  - A exports again from its main thread, which takes the word: B's import is told
    "alive" without a system call;
  - A is SIGKILLed: B's import of another of its keys IS `import.source-gone` (the word
    says nothing after the kernel released it; the lock says gone);
  - A forks; the child exports and is SIGKILLed while A lives: the child's key is gone,
    A's keys are not (the child never speaks through its parent's word); then A is
    SIGKILLed while the child of a second fork lives: A's key is gone;
  - A execs itself (same pid, new program): its key exported before the exec is gone, the
    one exported after is alive.
  - A with a log exports from a thread that then exits and makes no further call: within
    about 250 ms its log writer thread (which lives as long as A) takes the word again,
    so B's import, two seconds later, is told "alive" without a system call; once A is
    SIGKILLed the word says nothing and B's next import is `import.source-gone`.
The same first three steps run with A in its own pid namespace in
ledger_liveness_pidns.py."""
import os
import re
import signal
import subprocess
import tempfile
import time
from ruleslib import *

NAME = "ledger.liveness"
SIZE = 8192


class Traced(Actor):
    """An actor whose main thread runs under strace: its F_OFD_GETLK calls, counted
    between the clock_nanosleep of its `sleep 0` commands."""

    def __init__(self, name, env, work, errfile=None):
        self.trace = work.file(f"strace.{name}")
        self.name = name
        self.err = open(errfile or os.devnull, "wb")
        argv = [require_tool("strace"), "-qq", "-e", "trace=fcntl,nanosleep,clock_nanosleep", "-o", self.trace,
                "-E", f"LD_PRELOAD={SHIM}", SCENARIO, "actor"]
        self.p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)
        self.pid = None
        self.dead = False
        self.returncode = None

    def getlk_between_markers(self):
        """F_OFD_GETLK calls between consecutive markers."""
        counts, n = [], None
        with open(self.trace) as f:
            for line in f:
                if re.search(r"\b(clock_)?nanosleep\(", line):
                    if n is not None:
                        counts.append(n)
                    n = 0
                elif "F_OFD_GETLK" in line and n is not None:
                    n += 1
        return counts


def export(a, what, key, thread=False):
    r = a.do(("thread " if thread else "") + f"export {key} m 0 {SIZE} 1")
    check(r is not None and r.complete, f"{what}: export {key}: no answer")
    v = r.vals
    check(v.get("key"), f"{what}: export {key} gave a key: {r.lines}")
    return v["key"]


def start(job_env, name, ns=None, work=None):
    a = NsActor(name, job_env(name), work) if ns else Actor(name, job_env(name))
    eq(a.do("dev").ret, 0, f"{name}: set device")
    eq(a.do(f"malloc m {SIZE * 8}").ret, 0, f"{name}: malloc")
    return a


class Case:
    def __init__(self, what):
        self.what = what
        self.work = Workdir()
        self.logs = {}
        self.imports = []  # (key, expected gone, expected F_OFD_GETLK calls or None)
        self.b = None

    def env(self, name, log=True):
        self.logs[name] = self.work.file(f"log.{name}.json")
        return base_env(self.work, {"ACL_IPC_GUARD_LOG": self.logs[name] if log else "off",
                                    "ACL_IPC_GUARD_MODE": "audit"})

    def importer(self):
        self.b = Traced("B", self.env("B"), self.work, errfile=self.work.file("err.B"))
        eq(self.b.do("dev").ret, 0, f"{self.what}: B: set device")
        self.b.do("tgid")  # the ledger is open from here on
        self.b.do("sleep 0")  # the first marker
        return self.b

    def expect_import(self, key, gone, getlk):
        """B imports `key`; the verdict `gone` and, when not None, the number of F_OFD_GETLK
        calls it took are checked at the end."""
        n = len(self.imports)
        self.b.do(f"setkey i{n} {key}")
        r = self.b.do(f"import q{n} i{n} 0")
        check(r is not None and r.complete, f"{self.what}: B: import {n}: no answer")
        self.b.do("sleep 0")
        self.imports.append((key, gone, getlk))

    def finish(self, others):
        for a in others:
            if not a.dead:
                a.finish()
        eq(self.b.finish(), 0, f"{self.what}: B's exit status")
        records = read_log(self.logs["B"])
        imports = [r for r in records if r["event"] == "call" and r.get("fn") == "aclrtIpcMemImportByKey"]
        eq(len(imports), len(self.imports), f"{self.what}: B's import records")
        gone = violations(records, "import.source-gone")
        counts = self.b.getlk_between_markers()
        for n, (key, want_gone, want_getlk) in enumerate(self.imports):
            said = [v for v in gone if v.get("key_fp") == imports[n]["args"]["key_fp"]]
            eq(bool(said), want_gone, f"{self.what}: import {n}: import.source-gone ({gone})")
            if want_getlk is not None:
                eq(counts[n], want_getlk, f"{self.what}: import {n}: F_OFD_GETLK calls (all: {counts})")
        eq(len(gone), sum(1 for _, g, _ in self.imports if g), f"{self.what}: source-gone verdicts in all")
        self.work.cleanup()


def thread_exit_then_kill(what, ns):
    c = Case(what)
    # No log: no writer thread that would take the word again (writer_holds_word).
    a = start(lambda n: c.env(n, log=False), "A", ns, c.work)
    # Every ledger operation of A in a thread that exits: nobody holds A's word after it.
    k1 = export(a, what, "k1", thread=True)
    b = c.importer()
    c.expect_import(k1, gone=False, getlk=1)
    # A's main thread exports: it takes the word again.
    k2 = export(a, what, "k2")
    k3 = export(a, what, "k3")
    c.expect_import(k2, gone=False, getlk=0)
    a.kill()
    c.expect_import(k3, gone=True, getlk=1)
    c.finish([a])


def writer_holds_word(what):
    c = Case(what)
    a = start(c.env, "A", None, c.work)
    k1 = export(a, what, "k1", thread=True)
    k2 = export(a, what, "k2", thread=True)
    c.importer()
    # A makes no call from here on; its writer wakes at least every 200 ms and takes the
    # word when it finds nobody holding it (50 ms apart at most): 2 s leave it ample room.
    time.sleep(2)
    c.expect_import(k1, gone=False, getlk=0)
    a.kill()
    c.expect_import(k2, gone=True, getlk=1)
    c.finish([a])


class Child(ForkChild):
    """A fork child that the tests kill (its parent reaps it) or leave to end with it."""

    def kill(self):
        """SIGKILL; its parent reaps it (a zombie has already let go of everything)."""
        os.kill(self.pid, signal.SIGKILL)
        self.close()
        if not self.parent.dead:
            self.parent.do("reap")

    def close(self):
        for f in (self.stdin, self.stdout):
            try:
                f.close()
            except BrokenPipeError:
                pass
        self.dead = True

    def finish(self, timeout=30):
        self.close()
        return 0


def fork_cases(what):
    c = Case(what)
    a = start(c.env, "A", None, c.work)
    ka = export(a, what, "ka")
    child = Child(a, c.work, "C1")
    eq(child.do(f"malloc m2 {SIZE}").ret, 0, f"{what}: C1: malloc")
    kc = child.do(f"export kc m2 0 {SIZE} 1").vals.get("key")
    check(kc, f"{what}: C1 exported")
    child.kill()
    c.importer()
    # The child is gone while its parent, whose word is held, lives.
    c.expect_import(kc, gone=True, getlk=1)
    c.expect_import(ka, gone=False, getlk=0)
    # Now the parent goes while a child of it lives: neither the descriptor nor the memory
    # the child inherited keeps the parent alive.
    ka2 = export(a, what, "ka2")
    child2 = Child(a, c.work, "C2")
    eq(child2.do("tgid").vals.get("tgid", "0") != "0", True, f"{what}: C2 answers")
    a.kill()
    c.expect_import(ka2, gone=True, getlk=1)
    eq(child2.do("pid").complete, True, f"{what}: C2 still runs")
    child2.finish()
    c.finish([a])


def exec_case(what):
    c = Case(what)
    a = start(c.env, "A", None, c.work)
    k1 = export(a, what, "k1")
    c.importer()
    r = a.do("exec")
    check(r.complete and r.vals.get("pid") == str(a.pid), f"{what}: A execs itself: {r}")
    # It answers before execv: wait for the new program's first answer.
    r = a.do("pid")
    check(r.complete, f"{what}: A's new program answers: {r}")
    # The same pid, a new program: the process that exported k1 is gone.
    c.expect_import(k1, gone=True, getlk=1)
    eq(a.do("dev").ret, 0, f"{what}: A after exec: set device")
    eq(a.do(f"malloc m {SIZE}").ret, 0, f"{what}: A after exec: malloc")
    k2 = export(a, what, "k2")
    c.expect_import(k2, gone=False, getlk=0)
    c.finish([a])


if __name__ == "__main__":
    thread_exit_then_kill("thread exit, then SIGKILL", ns=False)
    writer_holds_word("thread exit, the writer takes the word")
    fork_cases("fork")
    exec_case("exec")
    done(NAME)
