"""The shim itself loaded with dlopen (Python's ctypes.CDLL of libacl_ipc_guard.so, no
preload) and called through its handle: its thread-local re-entry flag (initial-exec TLS,
taken from the space glibc keeps spare for libraries loaded later) lets every call in, in
the main thread, in 4 threads at once and in a fork child, and the calls reach the real
runtime (the memory holds what was written) and are counted and recorded once each."""
import os

from harness import *

PROGRAM = r'''
import ctypes, os, sys, threading, time
from ctypes import POINTER, byref, c_int, c_size_t, c_void_p, c_char_p, c_int32

class Stats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("calls", "violations", "blocked", "dropped", "live_exports", "live_imports")]

rt = ctypes.CDLL("libascendcl.so")
shim = ctypes.CDLL(sys.argv[1])
rt.aclInit.argtypes = [c_char_p]
rt.aclrtSetDevice.argtypes = [c_int32]
rt.aclrtMemcpy.argtypes = [c_void_p, c_size_t, c_void_p, c_size_t, c_int]
shim.aclrtMalloc.argtypes = [POINTER(c_void_p), c_size_t, c_int]
shim.aclrtFree.argtypes = [c_void_p]
shim.aclIpcGuardGetStats.argtypes = [POINTER(Stats)]
for f in (rt.aclInit, rt.aclrtSetDevice, rt.aclrtMemcpy, shim.aclrtMalloc, shim.aclrtFree,
          shim.aclIpcGuardGetStats):
    f.restype = c_int
assert rt.aclInit(None) == 0 and rt.aclrtSetDevice(0) == 0

def pairs(n, tag):
    """n malloc+free pairs through the shim; each allocation holds what was copied in."""
    for i in range(n):
        p = c_void_p()
        assert shim.aclrtMalloc(byref(p), 4096, 0) == 0, "malloc"
        text = f"{tag} {i}".encode()
        src = ctypes.create_string_buffer(text, 64)
        back = ctypes.create_string_buffer(64)
        assert rt.aclrtMemcpy(p, 64, src, 64, 1) == 0, "to device"
        assert rt.aclrtMemcpy(back, 64, p, 64, 2) == 0, "from device"
        assert back.value == text, (back.value, text)
        assert shim.aclrtFree(p) == 0, "free"

def calls():
    s = Stats()
    assert shim.aclIpcGuardGetStats(byref(s)) == 0
    return s.calls

pairs(5, "main")
threads = [threading.Thread(target=pairs, args=(25, f"t{i}")) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("parent calls", calls(), flush=True)
pid = os.fork()
if pid == 0:
    pairs(3, "child")
    print("child calls", calls(), flush=True)
    # os._exit skips atexit, so what is still queued at that moment is lost (README,
    # "The log"); wait until the child's own writer thread has written its call records
    # (no flush: that would write them on this thread), as a child that lives on would.
    log = os.environ["ACL_IPC_GUARD_LOG"].replace("%p", str(os.getpid()))
    want = int(sys.argv[2])
    for _ in range(2000):
        with open(log) as f:
            if sum('"event":"call"' in l for l in f) >= want:
                break
        time.sleep(0.005)
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0, status
print("parent after fork calls", calls(), flush=True)
'''

work = Workdir()
try:
    for calls_switch in ("all", "ipc"):
        log = work.file(f"{calls_switch}.%p.json")
        env = base_env(work, {"ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_CALLS": calls_switch})
        p = run([sys.executable, "-c", PROGRAM, SHIM, "6" if calls_switch == "all" else "0"], env,
                preload=False, check_rc=0)
        lines = dict(l.rsplit(" ", 1) for l in p.stdout_text.splitlines())
        what = f"ACL_IPC_GUARD_CALLS={calls_switch}"
        # 5 pairs in the main thread, 25 in each of 4 threads; 3 in the child.
        eq(lines.get("parent calls"), "210", f"{what}: the parent's calls, counted")
        eq(lines.get("child calls"), "6", f"{what}: the fork child's own calls, counted")
        eq(lines.get("parent after fork calls"), "210", f"{what}: the parent's count after the fork")
        logs = read_logs(work.file(f"{calls_switch}.*.json"))
        eq(len(logs), 2, f"{what}: a log per process")
        for pid, recs in logs.items():
            eq(len(events(recs, "start")), 1, f"{what}: {pid} wrote its start")
            eq(events(recs, "error"), [], f"{what}: {pid} wrote no error")
            eq(violations(recs), [], f"{what}: {pid} saw no violation")
        counts = sorted(len(calls(recs)) for recs in logs.values())
        eq(counts, [6, 210] if calls_switch == "all" else [0, 0], f"{what}: call records per process")
        for recs in logs.values():
            check(all(r["ret"] == 0 for r in calls(recs)), f"{what}: every call succeeded")
finally:
    work.cleanup()
done("dlsym.shim.dlopen")
