"""Threads call while the main thread forks: no child crashes, and every record is written
once, by the process that made it (a child never writes what its parent had queued)."""
from harness import *

work = Workdir()
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("shared.json")})
p = run([prog("fork_storm"), "60"], env, check_rc=0, timeout=120)
eq(p.stdout_text.strip(), "children failed: 0", "children")
recs = read_log(work.file("shared.json"))
pairs = [(r["pid"], r["seq"]) for r in recs]
dups = len(pairs) - len(set(pairs))
eq(dups, 0, "records written twice")
by_pid = {}
for r in recs:
    by_pid.setdefault(r["pid"], []).append(r)
eq(len(by_pid), 61, "the parent and its 60 children wrote")
for pid, rs in by_pid.items():
    rs.sort(key=lambda r: r["seq"])
    summary = events(rs, "summary")
    eq(len(summary), 1, f"pid {pid}: one summary")
    gaps = rs[-1]["seq"] - rs[0]["seq"] + 1 - len(rs)
    eq(gaps, summary[0]["dropped"], f"pid {pid}: gaps are exactly the dropped records")
work.cleanup()
done("audit.fork.storm")
