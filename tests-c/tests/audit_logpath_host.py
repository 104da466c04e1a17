"""`%h` in the log path becomes the host name. Two "containers" (each with its own pid and
UTS namespaces, so each program is pid 1 under its own host name) share one log directory
and one path template: with `%h.%p` each writes its own file, whose records are its own;
`%p` alone would have given both one file (`job.1.json`), which no reader can split."""
import atexit
import os
import subprocess
from harness import *

require_namespaces("audit.logpath.host")
work = Workdir()
atexit.register(work.cleanup)
env = base_env(work, {"ACL_IPC_GUARD_LEDGER": "off", "ACL_IPC_GUARD_LOG": work.file("job.%h.%p.json")})
baseline = run([prog("audit_work"), "mix"], env, preload=False, check_rc=0).stdout_text

# The wrappers (unshare, sh, hostname) run without the shim; env(1) preloads it into the
# program alone.
SCRIPT = 'hostname "$0" && exec env LD_PRELOAD="$1" "$2" mix'
for name in ("ctr-a", "ctr-b"):
    p = subprocess.run(["unshare", "--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", SCRIPT, name, SHIM,
                        prog("audit_work")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    eq(p.returncode, 0, f"{name}: exit status ({p.stderr.decode()})")
    eq(p.stdout.decode(), baseline, f"{name}: program output as without the shim")

eq(sorted(f for f in os.listdir(work.path) if f.startswith("job.")), ["job.ctr-a.1.json", "job.ctr-b.1.json"],
   "one file per container, named by host and pid")
for name in ("ctr-a", "ctr-b"):
    rs = read_log(work.file(f"job.{name}.1.json"))
    eq((rs[0]["event"], rs[0]["host"], rs[0]["pid"]), ("start", name, 1), f"{name}: its own start first")
    eq([r["event"] for r in rs].count("start"), 1, f"{name}: one process in the file")
    eq(rs[-1]["event"], "summary", f"{name}: its summary last")
    check_seq(rs, name)
done("audit.logpath.host")
