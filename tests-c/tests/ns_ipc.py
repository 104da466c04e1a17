"""IPC memory across pid namespaces (containers), through the real emulated runtime, without
and with the shim preloaded (audit mode: the program must see the same results).

Peers run as pid 1 of their own pid namespaces with their own /proc (harness.NsPeer,
ruleslib.NsActor), sharing the emulator directory, as processes of one job in different
containers do. The bare tgid a peer reads inside is its host pid; whitelisting it lets the
import in and the bytes cross both ways; whitelisting the peer's own getpid() (1) gets
507899; DISABLE_PID_VALIDATION lets anyone in; two peers that are both pid 1 are told apart,
as importers and as exporters; a peer killed in its namespace takes its keys with it. Under
the preload every process writes its `start` record and one `call` record per call, with
the return code the program saw. (The shim's ledger rules across namespaces are judged
elsewhere.)"""
import os
from ruleslib import *

NAME = "ns.ipc"
DRV = 507899
SIZE = 8192
# The calls the shim records by default (ACL_IPC_GUARD_CALLS leaves the malloc family out).
TRACKED = ("aclrtDeviceGetBareTgid", "aclrtIpcMemGetExportKey", "aclrtIpcMemSetImportPid",
           "aclrtIpcMemImportByKey", "aclrtIpcMemClose")

require_namespaces(NAME)


class Peer:
    """An actor and the calls it made, as the program saw them."""

    def __init__(self, actor, mode):
        self.actor = actor
        self.name = actor.name
        self.pid = actor.pid
        self.mode = mode
        self.seen = []  # (fn, ret) of every call of TRACKED functions, in order

    def do(self, cmd):
        r = self.actor.do(cmd)
        check(r is not None and r.complete, f"{self.mode}: {self.name}: {cmd!r}: no complete answer: {r!r}")
        for line in r.lines:
            if line.fn in TRACKED:
                self.seen.append((line.fn, line.ret))
        return r

    def ok(self, cmd, ret=0):
        """One command whose call must return ret, having reached the runtime once."""
        r = self.do(cmd)
        eq(r.ret, ret, f"{self.mode}: {self.name}: {cmd!r}: return code")
        eq(r.call.calls, 1, f"{self.mode}: {self.name}: {cmd!r}: calls of the runtime")
        return r

    def value(self, cmd, name):
        r = self.do(cmd)
        check(name in r.vals, f"{self.mode}: {self.name}: {cmd!r}: no {name}= in {r!r}")
        return r.vals[name]

    def text(self, ptr):
        return self.ok(f"read {ptr} 0").vals["text"]

    def export(self, key, ptr, flags):
        return self.ok(f"export {key} {ptr} 0 {SIZE} {flags}").vals["key"]


def scenario(preload):
    mode = "preload" if preload else "plain"
    work = Workdir()
    logs = {}

    def start(name, in_ns):
        # One log per process, by name: inside their namespaces the peers are all pid 1.
        logs[name] = work.file(f"log.{name}.json")
        env = base_env(work, {"ACL_IPC_GUARD_LOG": logs[name]})
        err = work.file(f"err.{name}")
        actor = NsActor(name, env, work, preload=preload, errfile=err) if in_ns else \
            Actor(name, env, preload=preload, errfile=err)
        return Peer(actor, mode)

    host, a, b = start("host", False), start("nsA", True), start("nsB", True)
    for x in (host, a, b):
        x.ok("dev")

    # Who is who: both peers are pid 1 inside; their bare tgids are their host pids.
    for x in (a, b):
        eq(x.value("pid", "pid"), "1", f"{mode}: {x.name}: getpid() inside its namespace")
        eq(int(x.value("tgid", "tgid")), x.pid, f"{mode}: {x.name}: bare tgid = host pid")
    check(a.pid != b.pid, f"{mode}: two pid-1 peers, two host pids")
    eq(int(host.value("tgid", "tgid")), host.pid, f"{mode}: host: bare tgid = pid")

    # The host exports in whitelist mode.
    host.ok(f"malloc P {SIZE}")
    host.ok("write P 0 from-the-host")
    raw = host.export("K", "P", 0)
    for x in (a, b):
        x.value(f"setkey K {raw}", "ok")
    host.ok("setpid K 1")  # the pid the peers see for themselves: not what the driver checks
    a.ok("import Q K 0", DRV)
    b.ok("import Q K 0", DRV)
    host.ok(f"setpid K {a.pid}")  # a's bare tgid
    a.ok("import Q K 0")
    eq(a.text("Q"), "from-the-host", f"{mode}: bytes host -> nsA")
    a.ok("write Q 0 from-nsA")
    eq(host.text("P"), "from-nsA", f"{mode}: bytes nsA -> host")
    b.ok("import Q K 0", DRV)  # also pid 1 inside, not whitelisted
    b.ok(f"setpid K {b.pid}", DRV)  # not the exporter
    a.ok("close K")  # a's import
    a.ok("close K", DRV)  # a never exported it
    host.ok("close K")

    # Open mode: both peers get in.
    raw = host.export("O", "P", 1)
    for x in (a, b):
        x.value(f"setkey O {raw}", "ok")
        x.ok("import R O 0")
        eq(x.text("R"), "from-nsA", f"{mode}: {x.name}: open-mode bytes")
        x.ok("close O")
    host.ok("close O")
    host.ok("free P")

    # The reverse: a peer in a namespace exports; the host and the other peer import.
    a.ok(f"malloc S {SIZE}")
    a.ok("write S 0 from-inside-A")
    raw = a.export("E", "S", 0)
    for x in (host, b):
        x.value(f"setkey E {raw}", "ok")
    host.ok("import T E 0", DRV)
    a.ok(f"setpid E {host.pid}")
    host.ok("import T E 0")
    eq(host.text("T"), "from-inside-A", f"{mode}: bytes nsA -> host (nsA exports)")
    host.ok("write T 0 host-wrote-back")
    eq(a.text("S"), "host-wrote-back", f"{mode}: bytes host -> nsA (nsA exports)")
    a.ok("setpid E 1")  # b's getpid(): no use
    b.ok("import U E 0", DRV)
    a.ok(f"setpid E {b.pid}")
    b.ok("import U E 0")
    eq(b.text("U"), "host-wrote-back", f"{mode}: bytes nsA -> nsB")
    b.ok("close E")  # b's import
    b.ok("close E", DRV)  # b is pid 1 as well, but not E's exporter
    host.ok("close E")
    a.ok("close E")
    a.ok("free S")

    # A peer killed in its namespace: its key is gone for everyone.
    b.ok(f"malloc V {SIZE}")
    raw = b.export("D", "V", 1)
    for x in (host, a):
        x.value(f"setkey D {raw}", "ok")
    a.ok("import W D 0")
    a.ok("close D")
    b.actor.kill()
    host.ok("import X D 0", DRV)
    a.ok("import W D 0", DRV)

    for x in (host, a):
        eq(x.actor.finish(), 0, f"{mode}: {x.name}: exit status")

    if preload:
        for x in (host, a, b):
            path = logs[x.name]
            check(os.path.exists(path), f"{mode}: {x.name}: log written")
            records = read_log(path)
            eq(records[0]["event"], "start", f"{mode}: {x.name}: first record")
            got = [(r["fn"], r["ret"]) for r in calls(records)]
            check(all(r["forwarded"] is True for r in calls(records)), f"{mode}: {x.name}: all forwarded")
            if x is b:  # killed: what it wrote before
                eq(got, x.seen[:len(got)], f"{mode}: {x.name}: recorded calls and returns (killed)")
            else:
                eq(got, x.seen, f"{mode}: {x.name}: recorded calls and returns")
            # the values crossing the shim are the runtime's
            for r in calls(records, "aclrtDeviceGetBareTgid"):
                eq(r["out"]["pid"], x.pid, f"{mode}: {x.name}: recorded bare tgid")
        whitelisted = [r["args"]["pid"] for r in calls(read_log(logs["host"]), "aclrtIpcMemSetImportPid")]
        eq(whitelisted[:2], [[1], [a.pid]], f"{mode}: host's recorded whitelists")
    else:
        for name, path in logs.items():
            check(not os.path.exists(path), f"{mode}: {name}: no log without the shim")
    work.cleanup()


def pair_inside(preload, host_proc):
    """The vendor's two-process flow (programs/pair.cpp: the exporter forks and re-executes
    the importer, which sends its bare tgid) wholly inside one namespace: the fork child
    finds its own bare tgid; with the host's /proc that is its host pid, without it its pid
    inside, and either way the runtime checks the whitelist against the same value."""
    what = f"pair in a namespace, {'preload' if preload else 'plain'}, host_proc={host_proc}"
    for mode, flags in (("whitelist", 0), ("open", 1)):
        work = Workdir()
        env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json")})
        p = run_in_pidns([prog("pair"), mode, str(flags)], env, work, preload=preload, host_proc=host_proc,
                         check_rc=0)
        check("bytes shared both ways" in p.stdout_text, f"{what}, {mode}: program output: {p.stdout_text!r}")
        logs = read_logs(work.file("log.*.json"))
        if preload:
            eq(len(logs), 2, f"{what}, {mode}: one log per process")
            for rs in logs.values():
                eq(rs[0]["event"], "start", f"{what}, {mode}: first record")
                check(all(r["ret"] == 0 and r["forwarded"] is True for r in calls(rs)),
                      f"{what}, {mode}: every call forwarded and succeeded")
        else:
            eq(logs, {}, f"{what}, {mode}: no log without the shim")
        work.cleanup()


for preload in (False, True):
    scenario(preload)
    for host_proc in (True, False):
        pair_inside(preload, host_proc)
done(NAME)
