"""Records are complete when the process ends abruptly: exit() from a non-main thread (the
main thread waiting, or still calling), and abort() in abort mode. Every call that
returned before the end has its record, seq has no gap, the summary (or the aborting
violation) is there, and ending the process is not held up by the log."""
import atexit
import re
import signal
import time
from harness import *


def log_of(work):
    rs = read_log(work.file("log.json"))
    eq(rs[0]["event"], "start", "start first")
    eq([r["seq"] for r in rs], list(range(1, len(rs) + 1)), "seq from 1 without gaps")
    return rs


# exit() from a second thread while the main thread waits in pthread_join.
work = Workdir()
atexit.register(work.cleanup)
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.json"), "ACL_IPC_GUARD_LEDGER": "off"})
p = run([prog("audit_work"), "exit-thread", "5000", "idle"], env, check_rc=0, timeout=60)
m = re.search(r"exiting tid=(\d+) worker_done=(\d+) main_tid=(\d+) main_done=(\d+)", p.stdout_text)
check(m, f"the thread said it exits: {p.stdout_text}")
worker, main = int(m.group(1)), int(m.group(3))
rs = log_of(work)
summaries = events(rs, "summary")
eq(len(summaries), 1, "idle: one summary")
eq(rs[-1]["event"], "summary", "idle: summary last")
eq(len([r for r in calls(rs) if r["tid"] == worker]), 5000, "idle: every call of the exiting thread recorded")
eq(len([r for r in calls(rs) if r["tid"] == main]), 100, "idle: every call of the main thread recorded")
eq((rs[-1]["calls"], rs[-1]["dropped"]), (5100, 0), "idle: summary counts")
work.cleanup()

# abort mode: an error violation after 5000 queued call records.
work = Workdir()
atexit.register(work.cleanup)
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.json"), "ACL_IPC_GUARD_LEDGER": "off",
                      "ACL_IPC_GUARD_MODE": "abort"})
p = run([prog("audit_work"), "abort", "5000"], env, timeout=60)
eq(p.returncode, -signal.SIGABRT, "abort mode ends the process with SIGABRT")
check("calls done=5000" in p.stdout_text and "still alive" not in p.stdout_text, f"aborted at the bad call: {p.stdout_text}")
rs = log_of(work)
eq(rs[0]["mode"], "abort", "start says abort")
eq([r["fn"] for r in calls(rs)], ["aclrtDeviceGetBareTgid"] * 5000, "every call before the abort is recorded; the aborted one is not forwarded")
v = violations(rs)
eq(len(v), 1, "one violation")
eq((v[0]["rule"], v[0]["severity"], v[0]["action"], v[0]["fn"]), ("close.unknown", "error", "aborted", "aclrtIpcMemClose"),
   "the aborting violation")
check(v[0]["seq"] > max(r["seq"] for r in calls(rs)), "the violation follows the calls")
bt = v[0].get("backtrace")
check(isinstance(bt, list) and any("close_unknown" in f for f in bt), f"the aborting violation has a backtrace to the caller: {bt}")
after = [r["event"] for r in rs if r["seq"] > v[0]["seq"]]
check(after in ([], ["summary"]), f"nothing but a summary after the aborting violation: {after}")
work.cleanup()
# exit() from a second thread while the main thread keeps calling (for 3 s at most).
for attempt in range(2):
    work = Workdir()
    atexit.register(work.cleanup)
    env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.json"), "ACL_IPC_GUARD_LEDGER": "off"})
    t0 = time.monotonic()
    p = run([prog("audit_work"), "exit-thread", "2000", "busy"], env, timeout=60)
    took = time.monotonic() - t0
    eq(p.returncode, 0, f"busy: exit status ({p.stderr_text})")
    check("main finished" not in p.stdout_text,
          f"busy: exit() in one thread must end the process while the main thread is still calling; "
          f"it only ended after the main thread stopped ({took:.1f} s): {p.stdout_text.strip()}")
    m = re.search(r"exiting tid=(\d+) worker_done=(\d+) main_tid=(\d+) main_done=(\d+)", p.stdout_text)
    check(m, f"busy: the thread said it exits: {p.stdout_text}")
    worker, main, main_done = int(m.group(1)), int(m.group(3)), int(m.group(4))
    rs = log_of(work)
    summaries = events(rs, "summary")
    eq(len(summaries), 1, "busy: one summary")
    s = summaries[0]
    before = [r for r in calls(rs) if r["seq"] < s["seq"]]
    eq(s["dropped"], 0, "busy: nothing dropped")
    eq(len([r for r in before if r["tid"] == worker]), 2000, "busy: every call of the exiting thread before the summary")
    check(len([r for r in before if r["tid"] == main]) >= main_done,
          f"busy: the {main_done} calls the main thread had finished when exit() began are recorded before the summary")
    check(s["calls"] >= len(before), "busy: the summary counts at least the calls recorded before it")
    work.cleanup()

done("audit.exit")
