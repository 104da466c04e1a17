"""The ledger rules across pid namespaces (processes of one job in different containers that
share the ledger directory), through the real preload and the real emulated runtime.

Peers run as pid 1 of their own pid namespaces with their own /proc (ruleslib.NsActor); the
host cannot see them in its /proc, nor they the host. The ledger knows each process by its
bare tgid (the host pid) and tells live from dead by its lock, so:
- correct flows, in whitelist and in open mode, give no violation;
- an importer whitelisted by its in-namespace pid (1) instead of its bare tgid is reported
  (import.not-whitelisted), and the runtime refuses it too;
- an exporter that closes while a live importer in another namespace still has the key open
  is reported (close.exporter-before-importers, naming the importer's bare tgid);
- an importer SIGKILLed in its namespace does not make the exporter's close a violation;
- `acl-ipc-guard report` over all the logs agrees with each verdict."""
import json
import subprocess
from ruleslib import *

NAME = "rules.pidns"
DRV = 507899
SIZE = 8192

require_namespaces(NAME)


class Job:
    """The processes of one job: a host process and peers in their own namespaces, each with
    its own log (inside a namespace every pid is 1, so %p cannot tell them apart)."""

    def __init__(self, what):
        self.what = what
        self.work = Workdir()
        self.logs = {}
        self.actors = {}

    def start(self, name, in_ns):
        self.logs[name] = self.work.file(f"log.{name}.json")
        env = base_env(self.work, {"ACL_IPC_GUARD_LOG": self.logs[name]})
        err = self.work.file(f"err.{name}")
        a = NsActor(name, env, self.work, errfile=err) if in_ns else Actor(name, env, errfile=err)
        self.actors[name] = a
        r = a.do("dev")
        eq(r.ret, 0, f"{self.what}: {name}: set device")
        return a

    def ok(self, name, cmd, ret=0):
        r = self.actors[name].do(cmd)
        check(r is not None and r.complete, f"{self.what}: {name}: {cmd!r}: no answer: {r!r}")
        eq(r.ret, ret, f"{self.what}: {name}: {cmd!r}: return code")
        return r

    def value(self, name, cmd, field):
        r = self.actors[name].do(cmd)
        return r.vals[field]

    def finish(self):
        for name, a in self.actors.items():
            if not a.dead:
                eq(a.finish(), 0, f"{self.what}: {name}: exit status")
        return {name: read_log(path) for name, path in self.logs.items()}

    def report(self):
        p = subprocess.run([CLI, "report", "--json"] + list(self.logs.values()), capture_output=True, text=True,
                           timeout=60)
        return p.returncode, json.loads(p.stdout)


def export(job, name, flags):
    job.ok(name, f"malloc P {SIZE}")
    job.ok(name, "write P 0 shared-across-namespaces")
    return job.ok(name, f"export K P 0 {SIZE} {flags}").vals["key"]


def host_and_peer(what):
    """A job of a host process and one peer, "nsA", in its own namespace."""
    job = Job(what)
    job.start("host", False)
    return job, job.start("nsA", True)


def rules_of(records):
    return [v["rule"] for v in violations(records)]


# ----------------------------------------------------------------- correct flows: no violation

for flags, mode in ((0, "whitelist"), (1, "open")):
    what = f"{mode} mode, host exports to two peers in two namespaces"
    job = Job(what)
    job.start("host", False)
    a, b = job.start("nsA", True), job.start("nsB", True)
    raw = export(job, "host", flags)
    for peer in (a, b):
        tgid = int(job.value(peer.name, "tgid", "tgid"))
        eq(tgid, peer.pid, f"{what}: {peer.name}: the bare tgid is the host pid")
        if flags == 0:
            job.ok("host", f"setpid K {tgid}")
        job.value(peer.name, f"setkey K {raw}", "ok")
        job.ok(peer.name, "import Q K 0")
        eq(job.ok(peer.name, "read Q 0").vals["text"], "shared-across-namespaces", f"{what}: {peer.name}: bytes")
    for peer in (a, b):
        job.ok(peer.name, "close K")
    job.ok("host", "close K")
    job.ok("host", "free P")
    logs = job.finish()
    check_clean_logs(logs, what)
    rc, rep = job.report()
    eq(rc, 0, f"{what}: report exit status")
    eq(rep["violations"], [], f"{what}: report violations")
    job.work.cleanup()

# A peer in a namespace exports in whitelist mode; the host and another peer import.
what = "a peer in a namespace exports, the host and another peer import"
job = Job(what)
job.start("host", False)
a, b = job.start("nsA", True), job.start("nsB", True)
raw = export(job, "nsA", 0)
for name in ("host", "nsB"):
    tgid = job.value(name, "tgid", "tgid")
    job.ok("nsA", f"setpid K {tgid}")
    job.value(name, f"setkey K {raw}", "ok")
    job.ok(name, "import Q K 0")
for name in ("host", "nsB"):
    job.ok(name, "close K")
job.ok("nsA", "close K")
job.ok("nsA", "free P")
logs = job.finish()
check_clean_logs(logs, what)
rc, rep = job.report()
eq((rc, rep["violations"]), (0, []), f"{what}: report")
job.work.cleanup()

# ----------------------------------------------------------------- getpid() instead of the bare tgid

what = "whitelisting the peer's getpid() (1) instead of its bare tgid"
job, a = host_and_peer(what)
raw = export(job, "host", 0)
eq(job.value("nsA", "pid", "pid"), "1", f"{what}: getpid() inside")
job.ok("host", "setpid K 1")
job.value("nsA", f"setkey K {raw}", "ok")
job.ok("nsA", "import Q K 0", DRV)
job.ok("host", "close K")
job.ok("host", "free P")
logs = job.finish()
eq(rules_of(logs["nsA"]), ["import.not-whitelisted"], f"{what}: the importer's violations")
v = violations(logs["nsA"])[0]
check(str(a.pid) in v["message"], f"{what}: the message names the bare tgid {a.pid}: {v['message']!r}")
check("its list holds 1, this process's pid in its own pid namespace (getpid())" in v["message"]
      and "aclrtDeviceGetBareTgid" in v["message"], f"{what}: the message names the mistake: {v['message']!r}")
eq(rules_of(logs["host"]), [], f"{what}: the exporter's violations")
rc, rep = job.report()
eq(rc, 1, f"{what}: report exit status")
eq(sorted({x["rule"] for x in rep["violations"]}), ["import.not-whitelisted"], f"{what}: report rules")
job.work.cleanup()

# ----------------------------------------------------------------- the close order

def host_exports_peer_imports(what):
    """The host exports in open mode; a peer in its own namespace imports."""
    job, peer = host_and_peer(what)
    raw = export(job, "host", 1)
    job.value("nsA", f"setkey K {raw}", "ok")
    job.ok("nsA", "import Q K 0")
    return job, peer


what = "the exporter closes while a live importer in another namespace has the key open"
job, a = host_exports_peer_imports(what)
job.ok("host", "close K")
job.ok("nsA", "close K")
job.ok("host", "free P")
logs = job.finish()
eq(rules_of(logs["host"]), ["close.exporter-before-importers"], f"{what}: the exporter's violations")
v = violations(logs["host"])[0]
check(str(a.pid) in v["message"], f"{what}: the message names the importer's bare tgid {a.pid}: {v['message']!r}")
eq(rules_of(logs["nsA"]), [], f"{what}: the importer's violations")
rc, rep = job.report()
eq(rc, 1, f"{what}: report exit status")
check("close.exporter-before-importers" in {x["rule"] for x in rep["violations"]}, f"{what}: report: {rep['violations']}")
job.work.cleanup()

what = "the importer in another namespace is SIGKILLed before the exporter closes"
job, a = host_exports_peer_imports(what)
a.kill()
job.ok("host", "close K")
job.ok("host", "free P")
logs = job.finish()
eq(rules_of(logs["host"]), [], f"{what}: the exporter's violations")
rc, rep = job.report()
eq([x for x in rep["violations"] if x["rule"] == "close.exporter-before-importers"], [],
   f"{what}: report finds no close-order violation")
job.work.cleanup()

# The exporter in a namespace is SIGKILLed: a later importer on the host learns it is gone.
what = "the exporter in a namespace is SIGKILLed before the host imports"
job, a = host_and_peer(what)
raw = export(job, "nsA", 1)
a.kill()
job.value("host", f"setkey K {raw}", "ok")
job.ok("host", "import Q K 0", DRV)
logs = job.finish()
eq(rules_of(logs["host"]), ["import.source-gone"], f"{what}: the importer's violations")
job.work.cleanup()

done(NAME)
