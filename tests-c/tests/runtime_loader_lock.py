"""An IPC call never holds the shim's process-wide lock while the shim calls into the
runtime or the dynamic loader. With a runtime that lacks aclrtDeviceGetBareTgid (an older
one), the shim looks for it again, with dlopen, at each import; a preloaded dlopen()
(tests-c/dlopen/loader_hook.c) then runs another thread's aclrtIpcMemClose and waits for
it, as a library's constructor that calls into the runtime can. An import that asked while
holding the lock every IPC call takes kept that close waiting (and a loader lock taken
the other way round would deadlock the program)."""
import atexit
import os
from harness import *

work = Workdir()
atexit.register(work.cleanup)
log = work.file("job.json")
older = os.path.join(TEST_BIN, "without-bare-tgid")
check(os.path.exists(os.path.join(older, "libascendcl.so")), "the runtime without aclrtDeviceGetBareTgid is built")

for ledger in ("on", "off"):
    extra = {"ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_FORMAT": "json"}
    if ledger == "off":
        extra["ACL_IPC_GUARD_LEDGER"] = "off"
    env = base_env(work, extra)
    env["LD_LIBRARY_PATH"] = older + ":" + LIB_DIR
    env["LD_PRELOAD"] = prog("libloader_hook.so") + ":" + SHIM
    if os.path.exists(log):
        os.unlink(log)
    p = run([prog("import_while_loading")], env, preload=False, timeout=60)
    eq(p.returncode, 0, f"exit status, ledger {ledger} ({p.stderr_text})")
    out = p.stdout_text.strip()
    check(out.startswith("imports="), f"the program's answer, ledger {ledger}: {out!r}")
    check(" hook=-1" not in out, f"the shim called dlopen during the second import (ledger {ledger}): {out!r}")
    eq(out.split(" hook=")[1], "0", f"another thread's close while the shim was in dlopen (ledger {ledger}; 1: it waited 5 s)")
    rs = read_log(log)
    eq([r["fn"] for r in calls(rs)].count("aclrtIpcMemImportByKey"), 2, f"both imports recorded (ledger {ledger})")
    eq([r["fn"] for r in calls(rs)].count("aclrtIpcMemClose"), 1, f"the other thread's close recorded (ledger {ledger})")

done("runtime.loader.lock")
