"""fork and exec: every process writes its own `start` record before any other, and its
`seq` counts from 1 with no gap. A fork child's start names its parent (`parent`) and its own
bare tgid; a program started by exec writes a start of its own (no `parent`: it is a new
program). With `%p` in the log path each process has its own file, complete on its own;
without it (a file, or stderr in the text format) they share one, each pid's records still
complete and counted on their own."""
import atexit
import os
import re
import json
from harness import *

HOST = os.uname().nodename


def check_start(rs, pid, parent, what):
    """rs begins with pid's own start record, at seq 1, naming its host, its bare tgid (the
    emulator's is the pid) and its parent (None: no `parent` field)."""
    s = rs[0]
    eq((s["event"], s["seq"], s["pid"]), ("start", 1, pid), f"{what}: first record is its own start")
    eq(s["host"], HOST, f"{what}: start names the host")
    eq(s["bare_tgid"], pid, f"{what}: start names the bare tgid")
    eq(s.get("parent"), parent, f"{what}: start's parent")
    eq([r["event"] for r in rs].count("start"), 1, f"{what}: one start record")


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
    eq(rs[0]["seq"], 1, f"pid {pid}: its file begins at seq 1")
    eq(rs[-1]["event"], "summary", f"pid {pid}: summary last")

pr, cr, er = logs[parent], logs[child], logs[exec_child]
# Parent: start, 3 calls, (fork), 1 call, (fork+exec), summary.
eq([r["event"] for r in pr], ["start", "call", "call", "call", "call", "summary"], "parent's records")
eq([r["seq"] for r in pr], [1, 2, 3, 4, 5, 6], "parent's seq")
check_start(pr, parent, None, "parent")
# Child: its own start naming the parent, then its own calls from seq 2. (Before, the child
# wrote no start and went on with its parent's count, so its file began at seq 5.)
eq([r["event"] for r in cr], ["start", "call", "call", "summary"], "fork child: its own start, calls and summary")
eq([r["seq"] for r in cr], [1, 2, 3, 4], "fork child counts seq from 1")
check_start(cr, child, parent, "fork child")
eq(cr[0]["exe"], pr[0]["exe"], "fork child: the same program")
eq(cr[0]["ledger"], "off", "fork child: its ledger setting")
eq([r["out"]["pid"] for r in calls(cr)], [child, child], "fork child's calls are its own")
eq(cr[-1]["calls"], 2, "fork child's summary counts its own calls")
# exec'd program: a new start at seq 1, a new program (no parent).
eq([r["event"] for r in er], ["start", "call", "summary"], "exec'd program's records")
check_start(er, exec_child, None, "exec'd program")
eq(er[0]["exe"], os.path.realpath(prog("audit_work")), "exec'd program's exe")

# The report tells the three apart and links the fork child to its parent.
rp = run([CLI, "report", "--json"] + [work.file(f) for f in files], env, preload=False, check_rc=0)
rep_json = json.loads(rp.stdout_text)
procs = {p["pid"]: p for p in rep_json["processes"]}
eq(sorted(procs), sorted([parent, child, exec_child]), "report: three processes")
eq(procs[child]["parent"], parent, "report: the fork child's parent pid")
eq(rep_json["processes"][procs[child]["parent_process"]]["pid"], parent, "report: fork child linked to its parent")
eq(procs[exec_child]["parent_process"], None, "report: the exec'd program is linked to none")
for p in rep_json["processes"]:
    eq((p["host"], p["bare_tgid"]), (HOST, p["pid"]), f"report: pid {p['pid']}'s host and bare tgid")
eq(rep_json["gaps"], [], "report: no gap")
rt = run([CLI, "report"] + [work.file(f) for f in files], env, preload=False, check_rc=0)
check(f"pid {child}: started" in rt.stdout_text and f"child of pid {parent}" in rt.stdout_text,
      f"report text links the child:\n{rt.stdout_text}")

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
parent = next(pid for pid in by_pid if pid not in (child, exec_child))
eq([r["seq"] for r in by_pid[child]], [1, 2, 3, 4], "shared file: fork child's seq is its own")
check_start(by_pid[child], child, parent, "shared file: fork child")
eq([r["seq"] for r in by_pid[exec_child]], [1, 2, 3], "shared file: exec'd program's seq")
check_start(by_pid[exec_child], exec_child, None, "shared file: exec'd program")
eq([r["seq"] for r in by_pid[parent]], [1, 2, 3, 4, 5, 6], "shared file: parent's seq")
check_start(by_pid[parent], parent, None, "shared file: parent")
rp = run([CLI, "report", "--json", work.file("one.json")], env, preload=False, check_rc=0)
rep_json = json.loads(rp.stdout_text)
procs = {p["pid"]: p for p in rep_json["processes"]}
eq(rep_json["processes"][procs[child]["parent_process"]]["pid"], parent, "shared file: report links the fork child")
eq(rep_json["gaps"], [], "shared file: report finds no gap")

# stderr, in the text format: the same records, one line each, with pid and seq.
work = new_work()
env = base_env(work, {"ACL_IPC_GUARD_LOG": "stderr", "ACL_IPC_GUARD_LEDGER": "off"})
p = run([prog("audit_work"), "fork"], env, check_rc=0, timeout=60)
m = re.search(r"fork child=(\d+) exec_child=(\d+)", p.stdout_text)
child, exec_child = int(m.group(1)), int(m.group(2))
text = {}
for l in p.stderr_text.splitlines():
    t = re.match(r"\[acl-ipc-guard\] \S+ pid=(\d+) tid=\d+ seq=(\d+) (\S+)(.*)", l)
    if t:
        text.setdefault(int(t.group(1)), []).append((int(t.group(2)), t.group(3), t.group(4)))
eq(len(text), 3, f"stderr: three processes\n{p.stderr_text}")
parent = next(pid for pid in text if pid not in (child, exec_child))
eq([(s, e) for s, e, _ in text[child]], [(1, "start"), (2, "call"), (3, "call"), (4, "summary")],
   "stderr: fork child's records")
check(f" host={HOST} bare_tgid={child} parent={parent}" in text[child][0][2],
      f"stderr: fork child's start names host, bare tgid and parent: {text[child][0][2]}")
eq([s for s, _, _ in text[exec_child]], [1, 2, 3], "stderr: exec'd program's seq")
check(" parent=" not in text[exec_child][0][2] and f" bare_tgid={exec_child}" in text[exec_child][0][2],
      f"stderr: exec'd program's start: {text[exec_child][0][2]}")
eq([s for s, _, _ in text[parent]], [1, 2, 3, 4, 5, 6], "stderr: parent's seq")

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
parent = next(pid for pid, rs in by_pid.items() if "parent" not in rs[0])
children = [rs for pid, rs in by_pid.items() if pid != parent]
eq(len(children), N, "forks: every child wrote records")
for rs in children:
    eq([r["event"] for r in rs], ["start", "call", "call", "summary"], f"forks: child {rs[0]['pid']}'s records")
    eq(rs[0]["seq"], 1, f"forks: child {rs[0]['pid']} counts from 1")
    check_seq(rs, f"forks: child {rs[0]['pid']}")
    check_start(rs, rs[0]["pid"], parent, f"forks: child {rs[0]['pid']}")

# Fork children that call and leave at once with _exit(0), as Python multiprocessing workers
# do (no atexit, no summary): each child's call records are written before its calls return,
# so none is lost. (Queued for a writer thread, nine in ten children lost theirs.)
work = new_work()
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("fexit.%p.json"), "ACL_IPC_GUARD_LEDGER": "off"})
p = run([prog("audit_work"), "forks-exit", str(N)], env, check_rc=0, timeout=120)
m = re.search(r"forks=(\d+) failed=(\d+)", p.stdout_text)
check(m and int(m.group(2)) == 0, f"forks-exit: every child exited 0: {p.stdout_text}")
logs = read_logs(work.file("fexit.*.json"))
parent = next(pid for pid, rs in logs.items() if "parent" not in rs[0])
children = {pid: rs for pid, rs in logs.items() if pid != parent}
eq(len(children), N, "forks-exit: every child wrote a log")
for pid, rs in children.items():
    eq([(r["event"], r.get("fn")) for r in rs],
       [("start", None), ("call", "aclrtDeviceGetBareTgid"), ("call", "aclrtDeviceGetBareTgid")],
       f"forks-exit: child {pid}: its start and both calls, no summary (_exit)")
    check_seq(rs, f"forks-exit: child {pid}")
eq(logs[parent][-1]["event"], "summary", "forks-exit: the parent ends with its summary")
done("audit.fork")
