"""The log writer does not make the program pay a system call per record. A program makes
20,000 recorded calls (aclrtDeviceGetBareTgid, each with a `call` record) 10 us apart,
the pace of a program doing a little work between calls. The writer writes each record
well within that gap; a writer that went to sleep as soon as it had caught up (as it once
did) had to be woken by the next call, a futex wake (a system call) on the program's
thread for nearly every record. Here the writer keeps looking for more for 50 us after
writing, so it must sleep fewer than once per 20 records, beside once for each time the
program's thread stopped running (preempted on a loaded machine: a gap the look cannot
bridge). The program counts its other threads' voluntary context switches
(/proc/self/task/*/status; the writer is the only other thread), which is how often the
writer slept, each sleep ended by a wake or by its 200 ms timeout, and its own. (Counted by strace, which stops the program at each wake and so makes the
next one more likely on a loaded machine, the wakes were 0 on an idle machine and 1,776
under CI's load; about 4,000 without the look, on an idle one.) Every record must still
be written, in order, none dropped."""
import atexit
import re
from harness import *

CALLS = 20000

work = Workdir()
atexit.register(work.cleanup)
log = work.file("log.json")
marker = work.file("done")
env = base_env(work, {"ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_FORMAT": "json"})
p = run([prog("audit_work"), "flood", str(CALLS), marker, "10"], env, timeout=300, check_rc=0)

rs = read_log(log)
eq(rs[0]["event"], "start", "the first record")
eq(rs[-1]["event"], "summary", "the last record")
check_seq(rs, "the log")
eq(len(calls(rs, "aclrtDeviceGetBareTgid")), CALLS, "one call record per call")
eq(rs[-1].get("dropped", 0), 0, "records dropped")

with open(marker) as f:
    counters = f.read()
m = re.search(r"writer_sleeps=(\d+) caller_stops=(\d+)", counters)
check(m, f"the program's counters: {counters!r}")
sleeps, stops = int(m.group(1)), int(m.group(2))
# A gap of over 50 us between two records needs the program's thread to stop running
# (preempted on a loaded machine, or waiting): each such stop may let the writer sleep once.
check(sleeps < CALLS // 20 + 2 * stops,
      f"the log writer slept {sleeps} times for {CALLS} records 10 us apart, the program's "
      f"thread stopped {stops} times: it is woken per record")
print(f"the log writer slept {sleeps} times for {CALLS} records 10 us apart; the program's thread stopped {stops} times")
done("audit.writer_wakeups")
