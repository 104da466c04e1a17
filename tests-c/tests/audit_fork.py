"""fork and exec: with `%p` in the log path a fork child writes its own records, under its
own pid and tid, to its own file, continuing `seq` from its parent's count without a new
start record; a program started by exec begins again with a start record at seq 1.
Without `%p` parent and child share the file, each pid's records still without gaps."""
import atexit
import os
import re
from harness import *


def new_work():
    w = Workdir()
    atexit.register(w.cleanup)
    return w


work = new_work()
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": "off"})
p = run([prog("audit_work"), "fork"], env, check_rc=0, timeout=60)
m = re.search(r"fork child=(\d+) exec_child=(\d+)", p.stdout_text)
check(m, f"program output: {p.stdout_text}")
child, exec_child = int(m.group(1)), int(m.group(2))
files = sorted(f for f in os.listdir(work.path) if f.startswith("log."))
logs = read_logs(work.file("log.*.json"))
eq(len(files), 3, f"three files: {files}")
parent = next(pid for pid in logs if pid not in (child, exec_child))
eq(sorted(files), sorted(f"log.{pid}.json" for pid in (parent, child, exec_child)), "each process in its own file")
for pid, rs in logs.items():
    eq({r["pid"] for r in rs}, {pid}, f"pid {pid}: only its own records in its file")
    eq({r["tid"] for r in rs}, {pid}, f"pid {pid}: tid of its only thread")
    check_seq(rs, f"pid {pid}")
    eq(rs[-1]["event"], "summary", f"pid {pid}: summary last")

pr, cr, er = logs[parent], logs[child], logs[exec_child]
# Parent: start, 3 calls, (fork), 1 call, (fork+exec), summary.
eq([r["event"] for r in pr], ["start", "call", "call", "call", "call", "summary"], "parent's records")
eq([r["seq"] for r in pr], [1, 2, 3, 4, 5, 6], "parent's seq")
# Child: no start, continues at the parent's count at the fork (4 records before it).
eq([r["event"] for r in cr], ["call", "call", "summary"], "fork child: its own calls and summary, no start record")
eq([r["seq"] for r in cr], [5, 6, 7], "fork child continues seq from the parent's count")
eq([r["out"]["pid"] for r in calls(cr)], [child, child], "fork child's calls are its own")
eq(cr[-1]["calls"], 2, "fork child's summary counts its own calls")
# exec'd program: a new start at seq 1.
eq([r["event"] for r in er], ["start", "call", "summary"], "exec'd program's records")
eq(er[0]["seq"], 1, "exec'd program starts at seq 1")
eq(er[0]["exe"], os.path.realpath(prog("audit_work")), "exec'd program's exe")

# Without %p: one file, each pid's records in order without gaps.
work = new_work()
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("one.json"), "ACL_IPC_GUARD_LEDGER": "off"})
p = run([prog("audit_work"), "fork"], env, check_rc=0, timeout=60)
m = re.search(r"fork child=(\d+) exec_child=(\d+)", p.stdout_text)
child, exec_child = int(m.group(1)), int(m.group(2))
rs = read_log(work.file("one.json"))
by_pid = {}
for r in rs:
    by_pid.setdefault(r["pid"], []).append(r)
eq(len(by_pid), 3, "shared file: three processes")
eq([r["seq"] for r in by_pid[child]], [5, 6, 7], "shared file: fork child's seq")
eq([r["seq"] for r in by_pid[exec_child]], [1, 2, 3], "shared file: exec'd program's seq")
parent = next(pid for pid in by_pid if pid not in (child, exec_child))
eq([r["seq"] for r in by_pid[parent]], [1, 2, 3, 4, 5, 6], "shared file: parent's seq")

# Many fork children that call while the parent's log writer is idle: every child lives,
# and writes its two calls and its summary, continuing seq from the parent's count.
N = 50
work = new_work()
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("forks.json"), "ACL_IPC_GUARD_LEDGER": "off"})
p = run([prog("audit_work"), "forks", str(N)], env, check_rc=0, timeout=120)
m = re.search(r"forks=(\d+) failed=(\d+) first_status=(\S+)", p.stdout_text)
check(m, f"forks: program output {p.stdout_text}")
eq(int(m.group(2)), 0, f"forks: fork children that did not exit 0 (first wait status {m.group(3)}; 0xb is SIGSEGV)")
by_pid = {}
for r in read_log(work.file("forks.json")):
    by_pid.setdefault(r["pid"], []).append(r)
parent = next(pid for pid, rs in by_pid.items() if rs[0]["event"] == "start")
children = [rs for pid, rs in by_pid.items() if pid != parent]
eq(len(children), N, "forks: every child wrote records")
for rs in children:
    eq([r["event"] for r in rs], ["call", "call", "summary"], f"forks: child {rs[0]['pid']}'s records")
    check_seq(rs, f"forks: child {rs[0]['pid']}")
parent_calls = [r["seq"] for r in calls(by_pid[parent])]
eq(sorted(rs[0]["seq"] for rs in children), [s + 1 for s in parent_calls[1:]],
   "forks: each child continues from the parent's count at its fork")
done("audit.fork")
