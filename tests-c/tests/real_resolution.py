"""Finding the real runtime: dlsym(RTLD_NEXT) first, then dlopen(ACL_IPC_GUARD_REAL_LIB,
default libascendcl.so); never the shim itself; a runtime the program loads late is found;
a missing one gives 200001 and one `error` record per function, and the program goes on."""
import os
from harness import *

EMU = os.path.join(LIB_DIR, "libascendcl.so")


def attempt(extra, args=(), ld_path=LIB_DIR):
    work = Workdir()
    env = base_env(work, dict(extra, ACL_IPC_GUARD_LOG=work.file("log.json")))
    env["LD_LIBRARY_PATH"] = ld_path
    p = run([prog("lazy_runtime"), *args], env, preload=False, check_rc=0)
    recs = read_log(work.file("log.json")) if os.path.exists(work.file("log.json")) else []
    work.cleanup()
    return p.stdout_text, recs


# Not found anywhere: 200001, one error record per missing function, no crash.
out, recs = attempt({"ACL_IPC_GUARD_REAL_LIB": "/nonexistent/libascendcl.so"}, ld_path="")
check("aclrtDeviceGetBareTgid 200001" in out and "aclrtMalloc 200001" in out and "aclrtIpcMemClose 200001" in out, f"200001 returned:\n{out}")
errors = events(recs, "error")
eq(len(errors), 3, "one error record per function (the bare tgid call was made twice)")
check(all("/nonexistent/libascendcl.so" in e["message"] and "200001" in e["message"] for e in errors), f"error messages say why: {errors}")
eq(sorted(e["message"].split()[1] for e in errors), ["aclrtDeviceGetBareTgid", "aclrtIpcMemClose", "aclrtMalloc"], "error names the function")
eq(recs[0]["event"], "start", "the start record comes first, before the error records")
summary = events(recs, "summary")
eq([s["calls"] for s in summary], [4], "the summary counts the 4 calls the runtime never got")
check("bare_tgid" not in recs[0] and recs[0]["host"], f"no runtime: the start names no bare tgid: {recs[0]}")

# The real library named is the shim itself: refused, not recursed into.
out, recs = attempt({"ACL_IPC_GUARD_REAL_LIB": SHIM}, ld_path="")
check("aclrtDeviceGetBareTgid 200001" in out, f"the shim is not its own runtime:\n{out}")
eq(len(events(recs, "error")), 3, "error records when the real lib is the shim")

# Found by dlopen of the default name through the library path.
out, recs = attempt({})
check("aclrtDeviceGetBareTgid 0 pid_set=1" in out, f"found libascendcl.so by dlopen:\n{out}")
eq(events(recs, "error"), [], "no error records when found")
eq(calls(recs, "aclrtDeviceGetBareTgid")[0]["ret"], 0, "recorded call")
eq(recs[0]["bare_tgid"], calls(recs, "aclrtDeviceGetBareTgid")[0]["out"]["pid"], "the start names the runtime's bare tgid")

# Found by an explicit path.
out, recs = attempt({"ACL_IPC_GUARD_REAL_LIB": EMU}, ld_path="")
check("aclrtDeviceGetBareTgid 0 pid_set=1" in out, f"found ACL_IPC_GUARD_REAL_LIB:\n{out}")

# Loaded late by the program itself, after the shim: found.
out, recs = attempt({"ACL_IPC_GUARD_REAL_LIB": "/nonexistent/libascendcl.so"}, args=[EMU], ld_path="")
check("aclrtDeviceGetBareTgid 0 pid_set=1" in out, f"runtime loaded late is found:\n{out}")
eq(events(recs, "error"), [], "no error records for a late-loaded runtime")
done("real.resolution")
