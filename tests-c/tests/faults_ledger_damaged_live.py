"""A ledger file damaged while a process uses it: the process has the ledger open (it
exported a key), then something else overwrites a counter of the file (`used`, far above
the file's capacity). The next call that takes the ledger's lock finds the damage; from
then on the process's calls no longer reach that ledger (they reach it without a lock
of the process once it is open, so the handle is given up without being freed). What
must hold: every call returns what the runtime says, the process exits 0 with its
summary, the damage is said once, in one `error` record naming the file and one line on
stderr, and no violation is made up."""
import os
import struct
from ruleslib import *

work = Workdir()
log = work.file("log.json")
errfile = work.file("stderr.txt")
env = base_env(work, {"ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_LEDGER_KEYS": "64"})
a = Actor("A", env, errfile=errfile)
steps = [("dev", 0), ("malloc m 8192", 0), ("write m 0 written-before-the-damage", 0),
         ("export k m 0 8192 1", 0)]
for cmd, want in steps:
    r = a.do(cmd)
    check(r.complete and (r.call is None or r.ret == want), f"{cmd}: {r}")

path = os.path.join(work.ledger, "ledger.v5")
check(os.path.exists(path), "the ledger file exists once a key is exported")
with open(path, "r+b") as f:
    head = f.read(16)
    check(head[:8] == b"AIGLEDGR", f"a ledger file: {head!r}")
    header_size = struct.unpack_from("<I", head, 12)[0]
    # The counters follow the header, 64-byte aligned: retired, attach_overflow, used.
    ctl = (header_size + 63) // 64 * 64
    f.seek(ctl + 8)
    f.write(struct.pack("<I", 0xFFFF_FFF0))

# The second export takes the lock and finds the damage; the calls after it carry on.
after = [("export k2 m 0 4096 1", 0), ("read m 0", 0), ("close k", 0), ("close k2", 0), ("free m", 0)]
for cmd, want in after:
    r = a.do(cmd)
    check(r.complete and (r.call is None or r.ret == want), f"{cmd} after the damage: {r}")
eq(a.finish(), 0, "exit status")

rs = read_log(log)
check_seq(rs, "the process whose ledger was damaged")
eq(rs[-1]["event"], "summary", "its summary")
eq(violations(rs), [], "no violation")
errors = events(rs, "error")
eq(len(errors), 1, f"one error record: {errors}")
msg = errors[0].get("message", "") + str(errors[0])
check("damaged" in msg and path in msg, f"the error names the damage and the file: {errors[0]}")
calls = [r for r in rs if r.get("event") == "call"]
fns = [c.get("fn") for c in calls]
eq((fns.count("aclrtIpcMemGetExportKey"), fns.count("aclrtIpcMemClose")), (2, 2), f"the IPC calls' records: {fns}")
check(all(c.get("ret") == 0 for c in calls), f"every call returned 0: {[(c.get('fn'), c.get('ret')) for c in calls]}")
with open(errfile) as f:
    err = f.read()
eq(sum(1 for line in err.splitlines() if "damaged" in line), 1, f"one line on stderr: {err!r}")
work.cleanup()
done("faults.ledger.damaged.live")
