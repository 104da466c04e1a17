"""Every record of a two-process run (audit_life: exporter and re-executed importer, with
warnings, errors, a leak and an unusable ledger), parsed as JSON, has the fields
interface.md lists for its event kind, with the values the program's calls imply."""
import atexit
import datetime
import hashlib
import os
import re
import time
from harness import *

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
PTR = re.compile(r"^0x[0-9a-f]+$")
FP = re.compile(r"^fp:[0-9a-f]{16}$")
COMMON = {"ts", "seq", "pid", "tid", "event"}
FIELDS = {
    # `parent` only in a fork child's start (neither process here is one: the importer is
    # a program started by exec).
    "start": {"version", "mode", "exe", "ledger", "host", "bare_tgid"},
    "call": {"fn", "args", "out", "ret", "forwarded", "dur_ns"},
    "summary": {"calls", "violations", "blocked", "leaks", "dropped"},
    "error": {"message"},
}
# The vendor's parameter names (acl-ipc-api.md); a key is recorded as key_fp.
ARGS = {
    "aclrtIpcMemGetExportKey": {"devPtr", "size", "key", "len", "flags"},
    "aclrtIpcMemSetImportPid": {"key_fp", "pid", "num"},
    "aclrtIpcMemImportPidInterServer": {"key_fp", "serverPids", "num"},
    "aclrtIpcMemImportByKey": {"devPtr", "key_fp", "flags"},
    "aclrtIpcMemSetAttr": {"key_fp", "type", "attr"},
    "aclrtIpcMemClose": {"key_fp"},
    "aclrtDeviceGetBareTgid": {"pid"},
    "aclrtMalloc": {"devPtr", "size", "policy"},
    "aclrtMallocAlign32": {"devPtr", "size", "policy"},
    "aclrtMallocCached": {"devPtr", "size", "policy"},
    "aclrtFree": {"devPtr"},
}
OUT = {  # what a successful call writes through its out-pointers
    "aclrtIpcMemGetExportKey": {"key_fp"},
    "aclrtIpcMemImportByKey": {"devPtr"},
    "aclrtDeviceGetBareTgid": {"pid"},
    "aclrtMalloc": {"devPtr"},
    "aclrtMallocAlign32": {"devPtr"},
    "aclrtMallocCached": {"devPtr"},
}


def fp(key):
    return "fp:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_common(r, pid, t0, t1, what):
    check(COMMON <= set(r), f"{what}: common fields in {r}")
    check(isinstance(r["ts"], str) and TS.match(r["ts"]), f"{what}: ts {r['ts']!r} is RFC 3339 UTC with microseconds and Z")
    when = datetime.datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    check(t0 - 1 <= when <= t1 + 1, f"{what}: ts {r['ts']} is UTC wall-clock time of the run ({t0}..{t1})")
    check(is_int(r["seq"]) and is_int(r["tid"]) and r["tid"] > 0, f"{what}: seq and tid are numbers")
    eq(r["pid"], pid, f"{what}: pid")
    check(r["event"] in ("start", "call", "violation", "summary", "error"), f"{what}: event {r['event']}")
    if r["event"] in FIELDS:
        eq(set(r) - COMMON, FIELDS[r["event"]], f"{what}: fields of a {r['event']} record")


def check_call(r, what):
    fn = r["fn"]
    check(fn in ARGS, f"{what}: fn {fn}")
    eq(set(r["args"]), ARGS[fn], f"{what}: args of {fn} keyed by the vendor's names")
    check(is_int(r["ret"]), f"{what}: ret")
    eq(r["forwarded"], True, f"{what}: audit forwards")
    check(is_int(r["dur_ns"]) and r["dur_ns"] >= 0, f"{what}: dur_ns")
    eq(set(r["out"]), OUT.get(fn, set()) if r["ret"] == 0 else set(), f"{what}: out of {fn} (ret {r['ret']})")
    for name in ("devPtr",):
        for v in (r["args"].get(name), r["out"].get(name)):
            if v is not None:
                check(isinstance(v, str) and PTR.match(v), f"{what}: pointer {name} as a 0x string: {v!r}")
    for v in (r["args"].get("key_fp"), r["out"].get("key_fp")):
        if v is not None:
            check(FP.match(v), f"{what}: key_fp {v!r}")


def check_violation(r, what):
    eq(set(r) - COMMON - {"key_fp", "backtrace"}, {"rule", "severity", "action", "fn", "message"}, f"{what}: violation fields")
    check(r["severity"] in ("warning", "error"), f"{what}: severity")
    eq(r["action"], "reported", f"{what}: audit mode only reports")
    check(isinstance(r["message"], str) and r["message"], f"{what}: message")
    if r["severity"] == "error":
        bt = r.get("backtrace")
        check(isinstance(bt, list) and bt and all(isinstance(f, str) and f for f in bt),
              f"{what}: an error violation has a backtrace of strings: {bt!r}")
    else:
        check("backtrace" not in r, f"{what}: no backtrace on a warning")


work = Workdir()


atexit.register(work.cleanup)
ledger = work.file("no-such-parent/ledger")  # its parent does not exist: unusable, one error record each
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_CALLS": "all",
                      "ACL_IPC_GUARD_LEDGER": ledger, "TZ": "Asia/Tokyo"})
t0 = time.time()
p = run([prog("audit_life")], env, check_rc=0)
t1 = time.time()
out = dict(l.split("=", 1) for l in p.stdout_text.splitlines() if "=" in l and not l.startswith("importer:"))
key, key2, importer_pid = out["key"], out["key2"], int(out["importer pid"])
unknown_close_ret = int(re.search(r"unknown close returned (\d+)", p.stdout_text).group(1))
logs = read_logs(work.file("log.*.json"))
eq(len(logs), 2, "one log per process")
check(importer_pid in logs, f"importer's log is under its pid {importer_pid}")
exporter_pid = next(pid for pid in logs if pid != importer_pid)
eq(sorted(os.path.basename(f) for f in os.listdir(work.path) if f.startswith("log.")),
   sorted(f"log.{pid}.json" for pid in logs), "%p became each pid")

for pid, rs in logs.items():
    what = f"pid {pid}"
    for r in rs:
        check_common(r, pid, t0, t1, f"{what} seq {r.get('seq')}")
        if r["event"] == "call":
            check_call(r, f"{what} seq {r['seq']}")
        elif r["event"] == "violation":
            check_violation(r, f"{what} seq {r['seq']}")
    eq([r["seq"] for r in rs], list(range(1, len(rs) + 1)), f"{what}: seq from 1 without gaps")
    eq([r["event"] for r in rs].count("start"), 1, f"{what}: one start record")
    start = rs[0]
    eq(start["event"], "start", f"{what}: first record")
    eq(start["version"], "0.1.0", f"{what}: version")
    eq(start["mode"], "audit", f"{what}: mode")
    eq(start["exe"], os.path.realpath(prog("audit_life")), f"{what}: exe")
    eq(start["ledger"], ledger, f"{what}: ledger")
    eq(start["host"], os.uname().nodename, f"{what}: host")
    # The emulator's bare tgid is the pid: asked at start (the exporter), or the program's
    # own answer when its first call asked for it (the importer).
    eq(start["bare_tgid"], pid, f"{what}: bare_tgid")
    eq(rs[-1]["event"], "summary", f"{what}: last record")
    eq([r["event"] for r in rs].count("summary"), 1, f"{what}: one summary")
    errors = events(rs, "error")
    eq(len(errors), 1, f"{what}: the unusable ledger is said once")
    check(isinstance(errors[0]["message"], str) and errors[0]["message"], f"{what}: error message")
    # Single-threaded: every record comes from the main thread.
    eq({r["tid"] for r in rs}, {pid}, f"{what}: tid of the main thread")
    s = rs[-1]
    eq(s["calls"], len(calls(rs)), f"{what}: summary counts the calls (CALLS=all records each one)")
    counted = {}
    for v in violations(rs):
        counted[v["rule"]] = counted.get(v["rule"], 0) + 1
    eq(s["violations"], counted, f"{what}: summary violations by rule")
    eq(s["blocked"], 0, f"{what}: nothing blocked in audit mode")
    eq(s["dropped"], 0, f"{what}: nothing dropped")

ex, im = logs[exporter_pid], logs[importer_pid]
# The exporter's calls, in order, with their arguments.
eq([r["fn"] for r in calls(ex)], [
    "aclrtMalloc", "aclrtMallocAlign32", "aclrtIpcMemGetExportKey", "aclrtIpcMemGetExportKey",
    "aclrtDeviceGetBareTgid", "aclrtIpcMemSetImportPid", "aclrtIpcMemSetImportPid", "aclrtIpcMemSetAttr",
    "aclrtIpcMemImportPidInterServer", "aclrtIpcMemSetImportPid", "aclrtIpcMemClose", "aclrtFree"], "exporter's calls")
(m1, m2, e1, e2, tg, own, null, attr, inter, wl, close, free) = calls(ex)
eq((m1["args"]["size"], m1["args"]["policy"], m1["ret"]), (3 * 4096, 0, 0), "Malloc args")
eq((m2["args"]["size"], m2["args"]["policy"]), (4096, 2), "MallocAlign32 args")
eq((e1["args"]["devPtr"], e1["args"]["size"], e1["args"]["len"], e1["args"]["flags"]),
   (m1["out"]["devPtr"], 3 * 4096, 65, 0), "export args")
check(PTR.match(e1["args"]["key"]), "export's key buffer recorded as a pointer")
eq(e1["out"]["key_fp"], fp(key), "export's out key_fp is the SHA-256 prefix of the key")
eq((e2["args"]["devPtr"], e2["args"]["flags"], e2["out"]["key_fp"]), (m2["out"]["devPtr"], 1, fp(key2)), "second export")
eq(tg["out"]["pid"], exporter_pid, "GetBareTgid's out pid")
eq((own["args"]["key_fp"], own["args"]["pid"], own["args"]["num"]), (fp(key), [99999, exporter_pid], 2), "SetImportPid with own pid")
eq((null["args"]["key_fp"], null["args"]["pid"], null["args"]["num"], null["ret"]), (fp(key), None, 1, 100000), "SetImportPid(NULL)")
eq((attr["args"]["key_fp"], attr["args"]["type"], attr["args"]["attr"]), (fp(key), 0, 1), "SetAttr args")
eq((inter["args"]["serverPids"], inter["args"]["num"]), ([{"sdid": 7, "pid": [4242, 4343], "num": 2}], 1), "InterServer args")
eq((close["args"]["key_fp"], close["ret"]), (fp(key), 0), "exporter's close")
eq(free["args"]["devPtr"], m1["out"]["devPtr"], "free of the exported memory")
eq([(v["rule"], v["severity"], v["fn"], v.get("key_fp")) for v in violations(ex)], [
    ("setpid.own-pid", "warning", "aclrtIpcMemSetImportPid", fp(key)),
    ("setpid.pid-null", "error", "aclrtIpcMemSetImportPid", fp(key)),
    ("exit.leak", "warning", violations(ex)[-1]["fn"], fp(key2))], "exporter's violations")
check(isinstance(violations(ex)[-1]["fn"], str), "exit.leak has a fn string")
check(any("audit_bad_whitelist" in f for f in violations(ex, "setpid.pid-null")[0]["backtrace"]),
      f"the backtrace shows the program's function that made the call: {violations(ex, 'setpid.pid-null')[0]['backtrace']}")
eq(ex[-1]["leaks"], 1, "exporter leaks the second key")

# The importer: the same fingerprint, whitelisted by its bare tgid.
eq([r["fn"] for r in calls(im)], ["aclrtDeviceGetBareTgid", "aclrtIpcMemImportByKey", "aclrtIpcMemClose", "aclrtIpcMemClose"],
   "importer's calls")
itg, imp, iclose, bad = calls(im)
eq(wl["args"]["pid"], [itg["out"]["pid"]], "exporter whitelisted the importer's bare tgid")
eq((imp["args"]["key_fp"], imp["args"]["flags"], imp["ret"]), (fp(key), 0, 0), "import args: same fingerprint in both processes")
check(PTR.match(imp["args"]["devPtr"]) and PTR.match(imp["out"]["devPtr"]), "import's out-pointer and address")
eq((iclose["args"]["key_fp"], iclose["ret"]), (fp(key), 0), "importer's close")
eq((bad["args"]["key_fp"], bad["ret"]), (fp("feedbeef"), unknown_close_ret), "close of an unknown key")
eq([(v["rule"], v["severity"], v["fn"], v.get("key_fp")) for v in violations(im)],
   [("close.unknown", "error", "aclrtIpcMemClose", fp("feedbeef"))], "importer's violations")
check(any("audit_bad_close" in f for f in violations(im)[0]["backtrace"]), "importer's backtrace shows audit_bad_close")
eq(im[-1]["leaks"], 0, "importer leaks nothing")
work.cleanup()

# With the ledger off: the start record says so and nothing is in trouble.
work = Workdir()
atexit.register(work.cleanup)
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": "off"})
run([prog("audit_life")], env, check_rc=0)
logs = read_logs(work.file("log.*.json"))
eq(len(logs), 2, "ledger off: two logs")
for pid, rs in logs.items():
    eq(rs[0]["ledger"], "off", "ledger off in the start record")
    eq(events(rs, "error"), [], "ledger off: no error record")
work.cleanup()
done("audit.records")
