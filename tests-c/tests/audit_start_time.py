"""A process's `start` record is never later than a record after it, however long its
writing waits. When a program's first call asks for the bare tgid itself, the start is
written after that call returned (with the program's own answer in it); on a loaded
machine writing it (the executable's path, the host name, the log) once took 50 ms, the
call record kept its earlier time, and the report, finding a record before its process's
first, read the whole job into memory. Here strace holds the shim's readlink of
/proc/self/exe (made only while writing the start) for 30 ms: the start's time must still
be at or before the first call's, the file in time order, and the report must stream it."""
import atexit
import subprocess
from harness import *

strace = require_tool("strace")

work = Workdir()
atexit.register(work.cleanup)
log = work.file("job.json")
env = base_env(work, {"ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_FORMAT": "json", "LD_PRELOAD": SHIM})
p = subprocess.run([strace, "-f", "-o", "/dev/null", "-e", "trace=readlink,readlinkat",
                    "-e", "inject=readlink,readlinkat:delay_enter=30000",
                    prog("audit_work"), "flood", "5", work.file("done")],
                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120 * TIMEOUT_SCALE)
eq(p.returncode, 0, f"exit status ({p.stderr.decode(errors='replace')})")

rs = read_log(log)
check_seq(rs, "the log")
eq(rs[0]["event"], "start", "the first record")
eq(rs[1].get("fn"), "aclrtDeviceGetBareTgid", "the first call: the program's own bare-tgid question")
check("bare_tgid" in rs[0], "the start names the program's own answer")


def us(r):
    # RFC 3339 UTC, always with six digits of microseconds: text order is time order.
    return r["ts"]


late = [(r["seq"], r["ts"]) for r in rs[1:] if us(r) < us(rs[0])]
eq(late, [], f"records before their process's start at {rs[0]['ts']}")
eq([r["seq"] for r in rs], [r["seq"] for r in sorted(rs, key=lambda r: (us(r), r["seq"]))],
   "the file in time order")

# The report streams such a log (it reads a job into memory only when a file is out of order).
p = subprocess.run([CLI, "report", "-v", "--json", log], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   timeout=60 * TIMEOUT_SCALE)
eq(p.returncode, 0, f"report's exit status ({p.stderr.decode(errors='replace')})")
check("into memory" not in p.stderr.decode(), f"the report streamed the log: {p.stderr.decode()}")
done("audit.start_time")
