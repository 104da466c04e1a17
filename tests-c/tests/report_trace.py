"""`acl-ipc-guard report --trace FILE` over the logs of real programs run under the shim:
the file is Chrome trace-event JSON whose structure follows the format's rules, and it
draws exactly what the logs hold.

The job: audit_order bad (an exporter and two importers; the exporter closes first, which
the re-check finds: the job ran without a ledger) on this host, and demo_misuse (an
exporter and a forked importer that frees the imported pointer: a `free.imported` record
from the shim; every call recorded, malloc and free too) whose logs are rewritten as if
written on node-b by processes with the same pids as audit_order's exporter and first
importer. So two pairs of processes share a pid and must still be told apart.

Checked: one JSON object with `traceEvents`; every event has ph, pid, tid and ts (numbers,
microseconds); one process_name per process, each under its own trace pid, with the real
pid in its args; a complete slice per call record of the logs (its function, its dur_ns,
its process), dur >= 0, slices of a thread not overlapping; an instant per violation, with
its rule, on its process; flows: each id one start and one or more finishes, with one
cat and name (the key), each key's ids its own, each flow event inside a slice of its
thread, one arrow from a key's export to each import and close of that key. And --trace
leaves stdout and the exit status as they were; a FILE that cannot be made is said on
stderr with exit status 2."""
import atexit
import glob
import json
import os
import re
import subprocess
from collections import Counter, defaultdict
from harness import *

RULE = "close.exporter-before-importers"


def new_work():
    w = Workdir()
    atexit.register(w.cleanup)
    return w


def cli(*args):
    p = subprocess.run([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


# audit_order bad, ledger off: the re-check's violation.
wa = new_work()
env = base_env(wa, {"ACL_IPC_GUARD_LOG": wa.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": "off"})
p = run([prog("audit_order"), "bad"], env, check_rc=0, timeout=60)
m = re.search(r"exporter=(\d+) importers=(\d+),(\d+)", p.stdout_text)
check(m, f"audit_order output: {p.stdout_text}")
order_pids = [int(x) for x in m.groups()]

# demo_misuse, every call recorded: the shim's own free.imported record.
wb = new_work()
env = base_env(wb, {"ACL_IPC_GUARD_LOG": wb.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": "off",
                    "ACL_IPC_GUARD_CALLS": "all"})
run([prog("demo_misuse")], env, check_rc=0, timeout=60)
demo = read_logs(wb.file("log.*.json"))
eq(len(demo), 2, "demo_misuse: two logs")
exporter = next(pid for pid, rs in demo.items() if calls(rs, "aclrtIpcMemGetExportKey"))
importer = next(pid for pid in demo if pid != exporter)
# As if on node-b, with audit_order's exporter's and first importer's pids.
onto = {exporter: order_pids[0], importer: order_pids[1]}
for path in glob.glob(wb.file("log.*.json")):
    os.unlink(path)
for pid, rs in demo.items():
    with open(wb.file(f"log.{onto[pid]}.json"), "w") as f:
        for r in rs:
            r["pid"] = onto[pid]
            r["tid"] = onto.get(r["tid"], r["tid"])
            if r["event"] == "start":
                r["host"] = "node-b"
                if "parent" in r:
                    r["parent"] = onto[r["parent"]]
            f.write(json.dumps(r) + "\n")

files = sorted(glob.glob(wa.file("log.*.json"))) + sorted(glob.glob(wb.file("log.*.json")))
eq(len(files), 5, "five logs")
logs = {}  # (host, pid) -> records
for path in files:
    rs = read_log(path)
    logs[(rs[0]["host"], rs[0]["pid"])] = rs
check(len({pid for _, pid in logs}) == 3, f"two pairs of processes share a pid: {sorted(logs)}")
log_calls = [(h, pid, r["seq"], r["fn"], r["dur_ns"]) for (h, pid), rs in logs.items() for r in calls(rs)]
log_violations = [(h, pid, r["rule"]) for (h, pid), rs in logs.items() for r in violations(rs)]
check(log_calls and ("node-b", order_pids[1], "free.imported") in log_violations,
      f"the logs have calls and the shim's free.imported: {log_violations}")

# --trace beside the usual output: stdout and the status unchanged.
trace = wa.file("t.json")
for fmt in ([], ["--json"]):
    plain = cli("report", *fmt, *files)
    traced = cli("report", *fmt, "--trace", trace, *files)
    eq(traced, plain, f"report {fmt}: --trace leaves stdout, stderr and the status as they were")
    eq(plain[0], 1, f"report {fmt}: error violations found")
doc_report = json.loads(cli("report", "--json", *files)[1])
procs = doc_report["processes"]
eq(len(procs), 5, "the report sees five processes")

with open(trace, encoding="utf-8") as f:
    try:
        doc = json.load(f)
    except json.JSONDecodeError as e:
        fail(f"the trace is not JSON: {e}")
check(isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list), "an object with a traceEvents array")
evs = doc["traceEvents"]
PHASES = {"M", "X", "i", "I", "s", "t", "f"}


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


for e in evs:
    check(isinstance(e, dict) and e.get("ph") in PHASES, f"a known phase: {e}")
    for k in ("pid", "tid", "ts"):
        check(number(e.get(k)), f"{k} is a number: {e}")
    check(e["ts"] >= 0, f"ts >= 0: {e}")
    check(isinstance(e.get("name"), str), f"a name: {e}")


def ns(us):
    return round(us * 1000)


by_ph = defaultdict(list)
for e in evs:
    by_ph[e["ph"]].append(e)

# One process_name per process, each its own trace pid, the real pid in its args.
names = [e for e in by_ph["M"] if e["name"] == "process_name"]
eq(len(names), len(procs), "one process_name per process")
eq(len({e["pid"] for e in names}), len(procs), "each process its own trace pid")
host_of = {}  # trace pid -> (host, real pid)
for e in names:
    a = e["args"]
    host_of[e["pid"]] = (a["host"], a["pid"])
    check(str(a["pid"]) in a["name"] and os.path.basename(a["exe"]) in a["name"], f"process name: {a}")
eq(sorted(host_of.values()), sorted(logs), "the processes are the logs' (host, pid)")
threads = {(e["pid"], e["tid"]) for e in by_ph["M"] if e["name"] == "thread_name"}

# A slice per call record: function, dur_ns, process.
slices = by_ph["X"]
eq(len(slices), len(log_calls), "a slice per call record")
got = sorted((*host_of[e["pid"]], e["args"]["seq"], e["name"], e["args"]["dur_ns"]) for e in slices)
eq(got, sorted(log_calls), "slices: (host, pid, seq, fn, dur_ns) of the call records")
spans = defaultdict(list)
for e in slices:
    check(number(e.get("dur")) and e["dur"] >= 0, f"X dur >= 0: {e}")
    check(e["dur"] * 1000 + 0.5 >= e["args"]["dur_ns"], f"a slice is as long as the call: {e}")
    check((e["pid"], e["tid"]) in threads, f"the slice's thread is named: {e}")
    spans[(e["pid"], e["tid"])].append((ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])))
for t, s in spans.items():
    s.sort()
    check(all(a[1] <= b[0] for a, b in zip(s, s[1:])), f"thread {t}: slices do not overlap: {s}")

# An instant per violation (the shim's and the re-check's), with its rule, on its process.
inst = [e for e in by_ph["i"] + by_ph["I"] if e.get("cat") == "violation"]
for e in inst:
    check(e.get("s") in ("t", "p", "g"), f"instant scope: {e}")
    check(e["name"] == e["args"]["rule"] and {"rule", "message", "key_fp", "severity"} <= set(e["args"]),
          f"instant args: {e}")
got = Counter((*host_of[e["pid"]], e["name"]) for e in inst)
for v in log_violations:
    check(got[v] >= 1, f"the violation record {v} has an instant")
want = Counter((v["host"], v["pid"], v["rule"]) for v in doc_report["violations"])
eq(got, want, "an instant per violation of the report")
check(want[("node-b", order_pids[1], "free.imported")] == 1 and
      any(rule == RULE and host != "node-b" for host, _, rule in want), f"both kinds of violation: {want}")

# Flows: each id one start and one or more finishes (or steps), one cat and name, inside
# a slice of its thread.
flows = defaultdict(list)
for e in by_ph["s"] + by_ph["t"] + by_ph["f"]:
    check("id" in e and isinstance(e.get("cat"), str), f"a flow event has id and cat: {e}")
    flows[e["id"]].append(e)
    check(any(a <= ns(e["ts"]) <= b for a, b in spans[(e["pid"], e["tid"])]),
          f"the flow event lies inside a slice of its thread: {e}")
check(flows, "flows were drawn")
key_of_id = {}
for i, fe in flows.items():
    phs = Counter(e["ph"] for e in fe)
    check(phs["s"] == 1 and phs["t"] + phs["f"] >= 1, f"flow {i}: one start and a finish: {phs}")
    eq(len({(e["cat"], e["name"]) for e in fe}), 1, f"flow {i}: one cat and name")
    start = next(e for e in fe if e["ph"] == "s")
    check(all(ns(e["ts"]) >= ns(start["ts"]) for e in fe), f"flow {i}: nothing before its start")
    key_of_id[i] = start["name"]


def slice_at(e):
    return next(s for s in slices if s["pid"] == e["pid"] and s["tid"] == e["tid"]
                and ns(s["ts"]) <= ns(e["ts"]) <= ns(s["ts"]) + ns(s["dur"]))


# Per key: arrows from its export to each import and close of it.
arrows = defaultdict(list)
for i, fe in flows.items():
    start = next(e for e in fe if e["ph"] == "s")
    eq(slice_at(start)["name"], "aclrtIpcMemGetExportKey", f"flow {i} starts at the export")
    for e in fe:
        if e["ph"] != "s":
            arrows[key_of_id[i]].append(slice_at(e)["name"])
keys = doc_report["keys"]
eq(sorted(arrows), sorted(keys), "each key has its flows")
for fp, events in keys.items():
    want = sorted(e["fn"] for e in events if e["event"] in ("import", "close"))
    eq(sorted(arrows[fp]), want, f"key {fp}: an arrow to each import and close")
eq(len(set(key_of_id)), len(key_of_id), "flow ids are unique")

# The time origin is said.
check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", doc["otherData"]["time_origin"]),
      f"otherData.time_origin: {doc.get('otherData')}")

# A FILE that cannot be made: stderr, status 2, nothing on stdout.
for bad in (wa.file("no/such/dir/t.json"), wa.path):
    rc, out, err = cli("report", "--trace", bad, *files)
    eq((rc, out), (2, ""), f"--trace {bad}: status 2, nothing on stdout")
    check(err.startswith("acl-ipc-guard report: cannot create trace file") and bad in err,
          f"--trace {bad}: said on stderr: {err}")
done("report.trace")
