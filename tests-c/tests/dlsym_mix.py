"""One program that links the runtime and also finds the same functions by dlsym(handle),
dlsym(RTLD_DEFAULT), dlsym(RTLD_NEXT) and dlsym of a handle from dlopen of the runtime's
full path: under `acl-ipc-guard run` each way gives the shim's function and every call is
recorded once, never twice, and reaches the runtime once. Another interposer preloaded
after the shim, forwarding with dlsym(RTLD_NEXT), still sees each call once (no loop)."""
from dlsymlib import *

MIX = prog("dlsym_mix")
HOOK = os.path.join(TEST_BIN, "libnext_hook.so")
WAYS = ("linked", "handle", "default", "next", "path")


def check_run(r, what):
    made = [c for way in WAYS for c in r.made(way)]
    for way in WAYS:
        eq(r.value(way, "from"), "libacl_ipc_guard.so", f"{what}: {way} finds the shim's aclrtMalloc")
        eq(len(r.made(way)), 13, f"{what}: {way} made its calls")
    eq(len(r.logs), 1, f"{what}: one process, one log")
    recs = next(iter(r.logs.values()))
    check_once(recs, made, what)
    check_emu_once(r.emu_counts("end"), made, what)
    eq(Counter(v["rule"] for v in violations(recs)), Counter({"import.out-null": 5, "import.own-export": 5}),
       f"{what}: one violation per way for the bad import, no more")
    eq(events(recs, "error"), [], f"{what}: no error records")
    return made


r = Run([MIX], "launcher")
check(r.value("runtime", "path").endswith("/libascendcl.so"), "the runtime's full path from dladdr")
made = check_run(r, "run")

# Another interposer after ours: the launcher keeps it, each call passes the shim, the
# hook and the runtime once.
r = Run([MIX], "launcher", env_extra={"LD_PRELOAD": HOOK})
check_run(r, "run with a second interposer")
n = Counter(fn for fn, _ in made)
eq(int(r.value("hook.count", "aclrtMalloc")), n["aclrtMalloc"], "the second interposer saw each aclrtMalloc once")
eq(int(r.value("hook.count", "aclrtFree")), n["aclrtFree"], "the second interposer saw each aclrtFree once")

# LD_PRELOAD alone: the ways that ask the runtime's own handle bypass the shim; those
# calls reach the runtime unseen.
r = Run([MIX], "preload")
for way, origin in zip(WAYS, ("libacl_ipc_guard.so", "libascendcl.so", "libacl_ipc_guard.so", "libacl_ipc_guard.so",
                              "libascendcl.so")):
    eq(r.value(way, "from"), origin, f"LD_PRELOAD only: where {way} finds aclrtMalloc")
recs = next(iter(r.logs.values()))
eq(recorded(recs), r.made("linked") + r.made("default") + r.made("next"), "LD_PRELOAD only: only the global look-ups are seen")
done("dlsym.mix")
