"""`acl-ipc-guard report` and ACL_IPC_GUARD_REPEAT_LIMIT: a process that broke two rules
150 times each writes 100 violation records per rule (the default limit) and a summary
that counts all 150. The report's count per rule (text and --json) and its verdict say
150, as the summary does (they said 101: the records plus one entry standing for the
rest); --json keeps that one entry (fn "summary", count 50), no invented records. Without
its summary (a killed process) the process counts the records it wrote."""
import atexit
import json
import os
import re
import subprocess
import sys
from harness import *

N, LIMIT = 150, 100
RULES = ("close.unknown", "export.size-zero")
work = Workdir()
atexit.register(work.cleanup)
log = work.file("log.json")
env = base_env(work, {"ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_LEDGER": "off"})
env.pop("ACL_IPC_GUARD_REPEAT_LIMIT", None)
run([prog("audit_work"), "repeat", str(N)], env, check_rc=0, timeout=60)
rs = read_log(log)
summary = rs[-1]
eq(summary["event"], "summary", "the log ends with its summary")
eq({r: summary["violations"][r] for r in RULES}, {r: N for r in RULES}, "the summary counts every violation")
severity = {}
for rule in RULES:
    vs = violations(rs, rule)
    eq(len(vs), LIMIT, f"{rule}: the limit's worth of records written")
    severity[rule] = vs[0]["severity"]
check("error" in severity.values(), f"an error rule among them: {severity}")
# The error violations the summary counts, by the rule table's severities.
table = json.loads(subprocess.run([CLI, "rules", "--json"], stdout=subprocess.PIPE, check=True).stdout)
sev_of = {r["id"]: r["severity"] for r in table}
errors = sum(n for r, n in summary["violations"].items() if sev_of[r] == "error")
check(errors >= N, f"the summary's error violations: {summary['violations']}")


def report(*args):
    p = subprocess.run([CLI, "report", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


# Text: each rule's count is the summary's; so is the verdict.
rc, out, err = report(log)
eq(rc, 1, f"text: exit 1 ({err!r})")
for rule in RULES:
    check(f"  {rule} ({severity[rule]}): {N}\n" in out, f"text: {rule} counted {N}:\n{out}")
    check(f"{N - LIMIT} more {rule} violation(s) counted in the summary but not written" in out,
          f"text: the unwritten {rule} violations are said as such")
m = re.search(r"verdict: FAIL: (\d+) error violations \((\d+) from the logs, 0 from the re-check\)", out)
check(m, f"text: a FAIL verdict: {out[-400:]}")
eq(int(m.group(1)), int(m.group(2)), "text: every error is from the logs")
eq(int(m.group(1)), errors, "text: the FAIL line counts the summary's errors")

# JSON: one entry for the unwritten ones, with their number; counts agree.
rc, out, err = report("--json", log)
eq(rc, 1, f"--json: exit 1 ({err!r})")
doc = json.loads(out)
for rule in RULES:
    vs = [v for v in doc["violations"] if v["rule"] == rule]
    eq(len(vs), LIMIT + 1, f"--json: {rule}: the records written and one entry for the rest")
    eq(sorted(v["count"] for v in vs), [1] * LIMIT + [N - LIMIT], f"--json: {rule}: the counts")
    eq([v["fn"] for v in vs if v["count"] != 1], ["summary"], f"--json: {rule}: the entry for the rest")
    eq(sum(v["count"] for v in vs), N, f"--json: {rule}: counted as the summary does")
eq(doc["verdict"]["errors"], errors, "--json: verdict.errors as the summary")

# Without the summary (killed): what was written.
with open(log) as f:
    lines = f.read().splitlines(True)
with open(work.file("killed.json"), "w") as f:
    f.write("".join(lines[:-1]))
rc, out, err = report("--json", work.file("killed.json"))
eq(rc, 1, f"killed: exit 1 ({err!r})")
doc = json.loads(out)
for rule in RULES:
    vs = [v for v in doc["violations"] if v["rule"] == rule]
    eq((len(vs), sum(v["count"] for v in vs)), (LIMIT, LIMIT), f"killed: {rule}: the records written")

# The page counts them as the verdict does: "Violations (300)", though it lists 202 entries
# (the records written and one per rule for the rest).
sys.path.insert(0, os.path.join(SOURCE, "tests-c", "browser"))
import browser  # noqa: E402

why = browser.missing(BUILD)
if why and os.environ.get("CI") == "true":
    fail(f"report.repeat: cannot run the browser, and CI=true: {why}")
if why:
    print(f"report.repeat: the page's part SKIPPED: {why}")
else:
    page = work.file("page.html")
    rc, out, err = report("--html", page, log)
    eq(rc, 1, f"--html: exit 1 ({err!r})")
    res = browser.load(BUILD, page)
    eq(res["console_errors"] + res["page_errors"], [], "the page loads without errors")
    eq(res["viol_title"], f"Violations ({N * len(RULES)})", "the page's count is the summary's")
    check(f"{errors} error violations" in res["summary"], f"the page's summary counts as the verdict: {res['summary']}")
done("report.repeat")
