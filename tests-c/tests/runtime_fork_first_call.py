"""A fork that comes while another thread of the process is making the shim's first call:
fork-heavy launchers start workers from one thread while others are already calling. The
preloaded tests-c/dlopen/fork_hook.c stops that thread (1) while the shim makes its runtime
("making"), or (2) after the runtime is made, while its start record is being written under
the start lock, the fork's prepare handlers having already run ("made"). Either way the
child inherits a runtime that a thread it does not have was working on. The child must
then use the runtime on its own (allocate, export, close, free) without hanging, write a
log of its own that names its parent, and the parent's calls must succeed as well. Before
the fix, the child waited for good (the first case on the runtime's one-time making, the
second on the start lock) and the program's alarm ended it."""
import atexit
import glob
import os
from harness import *

NAME = "runtime.fork.first.call"
work = Workdir()
atexit.register(work.cleanup)
hook = prog("libfork_hook.so")
check(os.path.exists(hook), "the fork hook is built")
IPC = ["aclrtIpcMemGetExportKey", "aclrtIpcMemClose"]

for stage in ("making", "made"):
    for old in glob.glob(work.file("log.*.json")):
        os.unlink(old)
    env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_FORMAT": "json"})
    env["LD_PRELOAD"] = SHIM + ":" + hook
    p = run([prog("fork_during_first_call"), stage], env, preload=False, timeout=60)
    eq(p.returncode, 0, f"{stage}: exit status (stdout {p.stdout_text!r}, stderr {p.stderr_text[-500:]!r})")
    eq(p.stdout_text.strip(), "child=0 parent_calls=1", f"{stage}: the child's status and the parent's calls")
    logs = read_logs(work.file("log.*.json"))
    eq(len(logs), 2, f"{stage}: a log for the parent and one for the child")
    starts = {pid: rs[0] for pid, rs in logs.items()}
    for pid, rs in logs.items():
        eq(rs[0]["event"], "start", f"{stage}: process {pid}: first record")
        eq(rs[-1]["event"], "summary", f"{stage}: process {pid}: last record")
        eq(events(rs, "error"), [], f"{stage}: process {pid}: no error records")
        eq(violations(rs), [], f"{stage}: process {pid}: no violations")
        eq([(r["fn"], r["ret"]) for r in calls(rs)], [(f, 0) for f in IPC], f"{stage}: process {pid}: its own calls, all succeeded")
        check_seq(rs, f"{stage}: process {pid}")
    children = [pid for pid, s in starts.items() if s.get("parent")]
    eq(len(children), 1, f"{stage}: one start names a parent")
    child = children[0]
    (parent,) = [pid for pid in logs if pid != child]
    eq(starts[child]["parent"], parent, f"{stage}: the child's start names the parent")
    check("parent" not in starts[parent], f"{stage}: the parent's start names no parent")

done(NAME)
