"""Two containers, each with its own /dev/shm, name the same ledger path but use two files:
the importer's shim finds that a key it imported (the runtime accepted it) is not in its
ledger, and says so once, in an `error` record and on stderr; `report`, which leaves the
close order to the shim's live verdict when every process names one ledger, takes that
record as the job not sharing one, and judges the order from the logs: the exporter's
early close fails the job. (Before, nothing was said and the report's verdict was OK.)
The importer runs in its own mount namespace with another directory bind-mounted over
the ledger path."""
import atexit
import json
import os
import subprocess
from harness import *
from ruleslib import Actor

require_namespaces("ledger.split")
work = Workdir()
atexit.register(work.cleanup)
ledger, other = work.file("shared-ledger"), work.file("container-shm")
os.mkdir(ledger, 0o700)
os.mkdir(other, 0o700)
env = base_env(work, {"ACL_IPC_GUARD_LEDGER": ledger, "ACL_IPC_GUARD_LOG": work.file("log.%p.json")})


class MountedActor(Actor):
    """An actor whose ledger path is `other` underneath (a container with its own /dev/shm);
    only the actor itself loads the shim."""

    def __init__(self, name, env, errfile):
        self.name = name
        self.err = open(errfile, "wb")
        script = 'mount --bind "$0" "$1" && exec env LD_PRELOAD="$2" "$3" actor'
        self.p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script,
                                   other, ledger, SHIM, prog("scenario")],
                                  env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)
        self.pid = self.p.pid
        self.dead = False
        self.returncode = None


a = Actor("A", env, errfile=work.file("a.err"))
b = MountedActor("B", env, work.file("b.err"))
for cmd in ("dev", "malloc m 8192"):
    check(a.do(cmd).complete, f"A: {cmd}")
key = a.do("export k m 0 8192 1")  # pid validation off: no whitelist needed
check(key.complete and key.vals.get("key"), f"A: the key: {key.lines}")
r = b.do("dev")
r = b.do("setkey k " + key.vals["key"])
r = b.do("import q k 0")
eq(r.ret, 0, "B: the runtime accepts the import (the memory is really shared)")
r = a.do("close k")
eq(r.ret, 0, "A: closes while B still holds the key")
b.do("close k")
eq((a.finish(), b.finish()), (0, 0), "both exit 0")

logs = read_logs(work.file("log.*.json"))
bpid = next(pid for pid, rs in logs.items() if any(r.get("fn") == "aclrtIpcMemImportByKey" for r in rs))
apid = next(pid for pid in logs if pid != bpid)
errs = events(logs[bpid], "error")
eq(len(errs), 1, f"B: one error record: {errs}")
check("is not in it" in errs[0]["message"] and ledger in errs[0]["message"], f"B: it says why: {errs[0]}")
with open(work.file("b.err")) as f:
    said = [l for l in f.read().splitlines() if "acl-ipc-guard:" in l]
eq(len(said), 1, f"B: one line on stderr: {said}")
check("is not in it" in said[0], f"B: the stderr line says it: {said[0]}")
eq(violations(logs[apid]), [], "A: the live check is blind here (its ledger never saw B)")
eq(events(logs[apid], "error"), [], "A: its own ledger works")
eq({r["ledger"] for rs in logs.values() for r in rs if r["event"] == "start"}, {ledger},
   "both starts name one ledger path")

files = sorted(work.file(f) for f in os.listdir(work.path) if f.startswith("log."))
p = subprocess.run([CLI, "report", "--json", *files], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
eq(p.returncode, 1, f"report: the early close fails the job ({p.stderr.decode()})")
doc = json.loads(p.stdout)
found = [(v["rule"], v["source"], v["pid"]) for v in doc["violations"]]
check(("close.exporter-before-importers", "recheck", apid) in found, f"report: judged from the logs: {found}")
done("ledger.split")
