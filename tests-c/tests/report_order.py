"""`acl-ipc-guard report` over the logs of two and three processes. audit_order: the
exporter closes while a live importer still has the key (bad) or after both importers
(good). The report finds the ordering violation from the records alone when the job ran
with ACL_IPC_GUARD_LEDGER=off (source "recheck"), exits 1 with an error violation and 0
without; --json has `violations` (rule, severity, pid, fn, key_fp, source), `keys`
(fingerprint -> its events in order) and `skipped`."""
import atexit
import glob
import json
import re
import subprocess
from harness import *

RULE = "close.exporter-before-importers"


def new_work():
    w = Workdir()
    atexit.register(w.cleanup)
    return w


def report(paths, json_out=True):
    cmd = [CLI, "report"] + (["--json"] if json_out else []) + paths
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    out = p.stdout.decode()
    if not json_out:
        return p.returncode, out
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as e:
        fail(f"report --json output is not one JSON object ({e}):\n{out}\n{p.stderr.decode()}")
    check(isinstance(doc, dict), "report --json prints an object")
    for field in ("violations", "keys", "skipped"):
        check(field in doc, f"report --json has {field}: {sorted(doc)}")
    check(isinstance(doc["violations"], list) and isinstance(doc["keys"], dict) and isinstance(doc["skipped"], list),
          "violations is an array, keys an object, skipped an array")
    for v in doc["violations"]:
        check({"rule", "severity", "pid", "fn", "key_fp", "source"} <= set(v), f"violation fields: {v}")
        check(v["source"] in ("log", "recheck"), f"violation source: {v}")
    for fp, evs in doc["keys"].items():
        check(re.match(r"^fp:[0-9a-f]{16}$", fp), f"keys are fingerprints: {fp}")
        check(isinstance(evs, list) and evs, f"key {fp}: a list of events")
        ts = [e.get("ts") for e in evs]
        check(all(isinstance(t, str) for t in ts) and ts == sorted(ts), f"key {fp}: events in time order: {ts}")
    return p.returncode, doc


def run_order(kind, ledger):
    work = new_work()
    env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": ledger or work.ledger})
    p = run([prog("audit_order"), kind], env, check_rc=0, timeout=60)
    m = re.search(r"exporter=(\d+) importers=(\d+),(\d+)", p.stdout_text)
    check(m, f"audit_order output: {p.stdout_text}")
    logs = read_logs(work.file("log.*.json"))
    eq(len(logs), 3, f"{kind}: three logs")
    e, i1, i2 = (int(x) for x in m.groups())
    fp = calls(logs[e], "aclrtIpcMemGetExportKey")[0]["out"]["key_fp"]
    return work, logs, e, i1, i2, fp


def first(evs, pid, fn):
    for n, ev in enumerate(evs):
        if ev.get("pid") == pid and ev.get("fn") == fn and ev.get("event") != "violation" and ev.get("rule") is None:
            return n
    fail(f"no {fn} of pid {pid} in the key's events: {evs}")


def logs_of(work):
    return sorted(glob.glob(work.file("log.*.json")))


# A. Bad order, ledger off: found by the re-check.
work, logs, e, i1, i2, fp = run_order("bad", "off")
eq([v["rule"] for rs in logs.values() for v in violations(rs)], [], "ledger off: no violation in the logs themselves")
rc, doc = report(logs_of(work))
eq(rc, 1, "bad order: exit status 1 (an error violation)")
found = [v for v in doc["violations"] if v["rule"] == RULE]
eq(len(found), 1, f"bad order: one {RULE}: {doc['violations']}")
v = found[0]
eq((v["severity"], v["pid"], v["fn"], v["key_fp"], v["source"]), ("error", e, "aclrtIpcMemClose", fp, "recheck"),
   "bad order: the violation names the exporter's close, the key, and comes from the re-check")
eq(doc["skipped"], [], "bad order: nothing skipped")
check(fp in doc["keys"], "bad order: the key has a timeline")
evs = doc["keys"][fp]
eq({ev.get("pid") for ev in evs} >= {e, i1, i2}, True, f"bad order: the timeline merges the three processes: {evs}")
check(first(evs, e, "aclrtIpcMemGetExportKey") < first(evs, i1, "aclrtIpcMemImportByKey"), "timeline: export before import")
check(first(evs, i1, "aclrtIpcMemClose") < first(evs, e, "aclrtIpcMemClose") < first(evs, i2, "aclrtIpcMemClose"),
      "timeline: importer 1 closes, then the exporter, then importer 2")
rc, text = report(logs_of(work), json_out=False)
eq(rc, 1, "bad order, text report: exit status 1")
check(RULE in text and str(e) in text, f"bad order, text report names the rule and the exporter:\n{text}")

# B. Good order, ledger off: nothing to report.
work, logs, e, i1, i2, fp = run_order("good", "off")
rc, doc = report(logs_of(work))
eq(rc, 0, f"good order: exit status 0: {doc['violations']}")
eq([v for v in doc["violations"] if v["severity"] == "error"], [], "good order: no error violation")
evs = doc["keys"][fp]
check(max(first(evs, i1, "aclrtIpcMemClose"), first(evs, i2, "aclrtIpcMemClose")) < first(evs, e, "aclrtIpcMemClose"),
      "good order timeline: both importers close before the exporter")
rc, text = report(logs_of(work), json_out=False)
eq(rc, 0, "good order, text report: exit status 0")

# C. The pair (two processes, one exec'd), ledger off: clean.
work = new_work()
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": "off"})
run([prog("pair"), "whitelist"], env, check_rc=0, timeout=60)
logs = read_logs(work.file("log.*.json"))
eq(len(logs), 2, "pair: two logs")
rc, doc = report(logs_of(work))
eq((rc, doc["violations"], doc["skipped"]), (0, [], []), "pair: exit 0, no violation, nothing skipped")
exporter = next(pid for pid, rs in logs.items() if calls(rs, "aclrtIpcMemGetExportKey"))
fp = calls(logs[exporter], "aclrtIpcMemGetExportKey")[0]["out"]["key_fp"]
eq({ev.get("pid") for ev in doc["keys"].get(fp, [])}, set(logs), "pair: one timeline with both processes")

# D. Violations written in the logs are listed with source "log".
work = new_work()
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": "off"})
p = run([prog("audit_life")], env, check_rc=0, timeout=60)
logs = read_logs(work.file("log.*.json"))
rc, doc = report(logs_of(work))
eq(rc, 1, "audit_life: error violations in the logs: exit 1")
in_logs = sorted((v["rule"], v["severity"], v["pid"], v["fn"], v.get("key_fp")) for rs in logs.values() for v in violations(rs))
listed = sorted((v["rule"], v["severity"], v["pid"], v["fn"], v["key_fp"]) for v in doc["violations"] if v["source"] == "log")
eq(listed, in_logs, "audit_life: every logged violation listed with its rule, severity, pid, fn and key_fp")

# E. Only warnings: exit 0, the warning still listed.
work = new_work()
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": "off",
                      "ACL_IPC_GUARD_RULES": "close.unknown=warning"})
run([prog("audit_work"), "mix"], env, check_rc=0, timeout=60)
rc, doc = report(logs_of(work))
eq(rc, 0, "warnings only: exit status 0")
eq([(v["rule"], v["severity"], v["source"]) for v in doc["violations"]], [("close.unknown", "warning", "log")],
   "warnings only: the warning is listed")

# F. Bad order with the ledger on: the exporter's own log has the violation, and the report
# lists it once (depends on the cross-process ledger).
work, logs, e, i1, i2, fp = run_order("bad", None)
rc, doc = report(logs_of(work))
eq(rc, 1, "ledger on, bad order: exit status 1")
found = [v for v in doc["violations"] if v["rule"] == RULE]
check(found and all((v["pid"], v["fn"], v["key_fp"]) == (e, "aclrtIpcMemClose", fp) for v in found),
      f"ledger on: the ordering violation is reported: {doc['violations']}")
logged = violations(logs[e], RULE)
eq([(v["severity"], v["fn"], v.get("key_fp")) for v in logged], [("error", "aclrtIpcMemClose", fp)],
   "ledger on: the exporter's log has the ordering violation (needs the cross-process ledger)")
eq([v["source"] for v in found], ["log"], "ledger on: listed once, from the log")
done("report.order")
