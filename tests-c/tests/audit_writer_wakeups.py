"""The log writer does not make the program pay a system call per record. A program makes
20,000 recorded calls (aclrtDeviceGetBareTgid, each with a `call` record) 10 us apart,
the pace of a program doing a little work between calls, under strace (counting futex
calls only): the writer writes each record well within that gap, and a writer that slept
as soon as it had caught up (as it once did) had to be woken by the next call, about one
futex wake per record (about 4,000 wakes measured, strace slowing each). Here the program's thread must make fewer than one wake per 20
records (the writer keeps looking for more for 50 us after writing), and every record
must still be written, in order, none dropped."""
import atexit
import re
import subprocess
from harness import *

CALLS = 20000

strace = require_tool("strace")

work = Workdir()
atexit.register(work.cleanup)
log = work.file("log.json")
trace = work.file("strace.txt")
marker = work.file("done")
env = base_env(work, {"ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_FORMAT": "json", "LD_PRELOAD": SHIM})
p = subprocess.run([strace, "-f", "--seccomp-bpf", "-e", "trace=futex", "-o", trace, prog("audit_work"), "flood", str(CALLS), marker, "10"],
                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300 * TIMEOUT_SCALE)
eq(p.returncode, 0, f"exit status ({p.stderr.decode(errors='replace')})")

rs = read_log(log)
eq(rs[0]["event"], "start", "the first record")
eq(rs[-1]["event"], "summary", "the last record")
check_seq(rs, "the log")
eq(len(calls(rs, "aclrtDeviceGetBareTgid")), CALLS, "one call record per call")
eq(rs[-1].get("dropped", 0), 0, "records dropped")

# strace -f -o: each line begins with the pid (the thread id) of the thread that made it.
with open(trace) as f:
    lines = f.read().splitlines()
wakes = {}
for line in lines:
    m = re.match(r"(\d+)\s+futex\(\S+, (FUTEX_\w+)", line)
    if m and m.group(2).startswith("FUTEX_WAKE"):
        wakes[int(m.group(1))] = wakes.get(int(m.group(1)), 0) + 1
main_pid = rs[0]["pid"]
check(any(re.match(rf"{main_pid}\s+futex\(", l) for l in lines) or not wakes,
      "strace's lines name the program's thread by its pid")
mine = wakes.get(main_pid, 0)
check(mine < CALLS // 20, f"{mine} futex wakes on the program's thread for {CALLS} recorded calls: "
      f"the writer is woken per record (all wakes by thread: {wakes})")
print(f"{mine} futex wakes on the program's thread for {CALLS} calls 10 us apart")
done("audit.writer_wakeups")
