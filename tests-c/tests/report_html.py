"""`acl-ipc-guard report --html FILE` loaded in a real browser (headless Debian chromium,
driven by playwright-core).

A. Three real processes under the shim: an exporter whose program file has a hostile name
   (markup and quotes), two importers; one importer is SIGKILLed (no summary), the exporter
   closes while the other still holds the key (close.exporter-before-importers) and closes
   once more (close.unknown). The page loads with no console or page error and no request
   but itself, has one lane per process, marks the killed one, carries every logged
   violation's rule and message in the hover title of a red mark in its process's lane, and
   shows the hostile name as text (no element, no script from it). The text report still
   goes to stdout with its exit status; an unwritable FILE is exit 2.
B. A generated job of 64 processes and 10,000 keys (JSON-lines logs written here in the
   interface's record format): the page loads, has 64 lanes, draws the keys aggregated,
   and answers when zoomed in (single keys drawn) and when a key is picked."""
import atexit
import datetime
import os
import time
import shutil
import subprocess
import sys

from harness import *
from ruleslib import Actor, env_for

sys.path.insert(0, os.path.join(SOURCE, "tests-c", "browser"))
import browser  # noqa: E402

why = browser.missing(BUILD)
if why:
    if os.environ.get("CI") == "true":
        fail(f"report.html: cannot run the browser, and CI=true: {why}")
    print(f"report.html: SKIPPED: {why}")
    sys.exit(SKIP)

work = Workdir()
atexit.register(work.cleanup)


def report(args, logs):
    p = subprocess.run([CLI, "report"] + args + logs, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def page_errors(out, what):
    eq(out["console_errors"], [], f"{what}: console errors and warnings")
    eq(out["page_errors"], [], f"{what}: uncaught page errors")
    eq(out["dialogs"], [], f"{what}: dialogs")
    eq(out["requests"], [out["url"]], f"{what}: the page requested nothing but itself")
    eq(out["duplicate_ids"], [], f"{what}: element ids are unique")


# ----------------------------------------------------------------- A. a real job
HOSTILE = 'x"><img id=pwned src=x onerror=window.__pwned=1>'
exe = work.file(HOSTILE)
shutil.copy(prog("scenario"), exe)
env = env_for(work, "audit")


class ExeActor(Actor):
    """An actor run from another program file (the same scenario program, copied)."""

    def __init__(self, name, path):
        self.name = name
        self.err = open(os.devnull, "wb")
        self.p = subprocess.Popen([path, "actor"], env=dict(env, LD_PRELOAD=SHIM), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.err)
        self.pid = self.p.pid
        self.dead = False
        self.returncode = None


def ok(resp, what):
    check(resp is not None and resp.complete, f"{what}: answered: {resp}")
    return resp


a = ExeActor("A", exe)
b = ExeActor("B", prog("scenario"))
c = ExeActor("C", prog("scenario"))
try:
    for cmd in ("dev", "malloc m 8192", "write m 0 shared"):
        ok(a.do(cmd), f"A {cmd}")
    key = ok(a.do("export k m 0 8192 1"), "A export").vals.get("key")
    check(key, "A exported a key")
    for actor in (b, c):
        for cmd in ("dev", f"setkey k {key}", "import q k 0"):
            ok(actor.do(cmd), f"{actor.name} {cmd}")
    # C's call records go to its log through the shim's writer thread: wait until its
    # import is on disk before killing it, so that the kill takes nothing the test counts.
    deadline = time.monotonic() + 30
    c_log = work.file(f"log.{c.pid}.json")
    while not (os.path.exists(c_log) and '"aclrtIpcMemImportByKey"' in open(c_log).read()):
        check(time.monotonic() < deadline, "C's import record reached its log")
        time.sleep(0.02)
    c.kill()
    check(c.returncode == -9, f"C was killed: {c.returncode}")
    ok(a.do("close k"), "A closes while B holds the key")
    ok(b.do("close k"), "B closes")
    eq(b.finish(), 0, "B exits 0")
    ok(a.do("cleanup"), "A cleanup")
    ok(a.do("close k"), "A closes once more")
    eq(a.finish(), 0, "A exits 0")
finally:
    for actor in (a, b, c):
        if actor.returncode is None:
            actor.kill()

logs = read_logs(work.file("log.*.json"))
eq(sorted(logs), sorted([a.pid, b.pid, c.pid]), "one log per process")
eq(events(logs[c.pid], "summary"), [], "the killed importer has no summary")
eq(len(events(logs[a.pid], "summary")), 1, "the exporter has its summary")
eq(logs[a.pid][0]["exe"], exe, "the exporter's start record names the hostile program file")
logged = [(pid, v["rule"], v["message"]) for pid, rs in logs.items() for v in violations(rs)]
eq(sorted(r for _, r, _ in logged), ["close.exporter-before-importers", "close.unknown"], "the violations in the logs")
paths = sorted(work.file(f"log.{pid}.json") for pid in logs)

page = work.file("page.html")
rc, out, err = report(["--html", page], paths)
eq(rc, 1, f"report --html: the exit status of the report (error violations)\n{err}")
check("verdict: FAIL" in out and "close.exporter-before-importers" in out, f"the text report still goes to stdout:\n{out}")
eq(err, "", "report --html: nothing on stderr")
check(os.path.getsize(page) > 0, "the page was written")
rc, out, err = report(["--html", work.file("no-such-dir/page.html")], paths)
eq((rc, out), (2, ""), "an unwritable FILE: exit 2, no report")
check("cannot write" in err and "no-such-dir/page.html" in err, f"an unwritable FILE is named: {err}")

res = browser.load(BUILD, page, steps=["window.aclIpcGuardReport.selectKey(0, true)"])
page_errors(res, "real job")
eq(sorted(l["pid"] for l in res["lanes"]), sorted(logs), "one lane per process in the logs")
eq([l["pid"] for l in res["lanes"] if l["dead"]], [c.pid], "the killed process's lane is marked")
eq([res["lanes"][i]["pid"] for i in res["dead_marks"]], [c.pid], "a no-summary mark in the killed process's lane")
check("no summary" in next(l["label"] for l in res["lanes"] if l["pid"] == c.pid), "the killed lane says so")
for pid, rule, message in logged:
    marks = [m for m in res["viols"] if m["rule"] == rule and m["pid"] == pid]
    check(any(rule in m["title"] and message in m["title"] for m in marks),
          f"{rule} of pid {pid}: a red mark in its lane with its rule and message on hover: {res['viols']}")
    check(any(rule in row and message in row for row in res["viol_rows"]), f"{rule}: listed in the table")
eq(res["verdict"], "FAIL", "the verdict")
check(not res["injected"], "the hostile program name made no element and ran nothing")
lane_a = next(l for l in res["lanes"] if l["pid"] == a.pid)
check(exe in lane_a["title"] and HOSTILE[:30] in lane_a["label"], f"the hostile name is shown as text: {lane_a}")
check(any(row[3] == exe for row in res["proc_rows"]), "the process table shows the program file as text")
eq(res["chart"]["mode"], "detail", "one key: drawn in detail")
eq(res["chart"]["key_bars"], 1, "one key: one bar")
eq(res["chart"]["arrows"], 2, "arrows from the exporter to each of its two importers")
eq(res["steps"][0]["chart"]["arrows"], 2, "the picked key keeps its arrows")

# ----------------------------------------------------------------- B. 64 processes x 10,000 keys
NPROC, NKEYS = 64, 10_000
T0 = datetime.datetime(2026, 11, 23, 21, 7, 5, tzinfo=datetime.timezone.utc)


def ts(us):
    return (T0 + datetime.timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


pids = [40000 + i for i in range(NPROC)]
recs = []  # (time, pid, fields)
for i, pid in enumerate(pids):
    recs.append((i, pid, {"event": "start", "version": "0.1.0", "mode": "audit", "exe": f"/opt/job/rank{i}",
                          "ledger": "off", "host": "node1"}))
bad = 0
for k in range(NKEYS):
    fp = f"fp:{k:016x}"
    ex, im = pids[k % NPROC], pids[(k * 7 + 1 + k // NPROC) % NPROC]
    if im == ex:
        im = pids[(k + 1) % NPROC]
    t = 1000 + k * 900
    life = 2000 + (k * 7919) % 400_000
    early = k % 500 == 0  # the exporter closes first: the re-check finds it
    bad += early
    call = lambda f, args, out: {"event": "call", "fn": f, "args": args, "out": out, "ret": 0, "forwarded": True,
                                 "dur_ns": 100}
    recs.append((t, ex, call("aclrtIpcMemGetExportKey", {"devPtr": f"{0x10000000 + k * 0x10000:#x}", "size": 8192,
                                                          "key": "0x7ffd0000", "len": 65, "flags": 1},
                             {"key_fp": fp})))
    recs.append((t + 100, im, call("aclrtIpcMemImportByKey", {"devPtr": "0x7ffd3000", "key_fp": fp, "flags": 0},
                                   {"devPtr": f"{0x90000000 + k * 0x10000:#x}"})))
    close_im, close_ex = (t + life, t + life + 50) if not early else (t + life + 50, t + life)
    recs.append((close_im, im, call("aclrtIpcMemClose", {"key_fp": fp}, {})))
    recs.append((close_ex, ex, call("aclrtIpcMemClose", {"key_fp": fp}, {})))
end = max(r[0] for r in recs) + 1000
for i, pid in enumerate(pids[:-1]):  # the last one ends without a summary
    recs.append((end + i, pid, {"event": "summary", "calls": 1, "violations": {}, "blocked": 0, "leaks": 0,
                                "dropped": 0}))
recs.sort(key=lambda r: (r[0], r[1]))
seq = {}
files = {pid: open(work.file(f"big.{pid}.json"), "w") for pid in pids}
for t, pid, fields in recs:
    seq[pid] = seq.get(pid, 0) + 1
    rec = {"ts": ts(t), "seq": seq[pid], "pid": pid, "tid": pid}
    rec.update(fields)
    files[pid].write(json.dumps(rec, separators=(",", ":")) + "\n")
for f in files.values():
    f.close()
big_logs = sorted(work.file(f"big.{pid}.json") for pid in pids)

big = work.file("big.html")
rc, out, err = report(["--json", "--html", big], big_logs)
eq(rc, 1, f"64 x 10,000: exit status 1 (the early closes)\n{err}")
doc = json.loads(out)
eq(len(doc["keys"]), NKEYS, "64 x 10,000: every key has a timeline")
eq(len(doc["violations"]), bad, "64 x 10,000: one violation per early close")

steps = [
    "window.aclIpcGuardReport.zoomTo(0, 20000)",
    "window.aclIpcGuardReport.selectKey(5000, true)",
    "window.aclIpcGuardReport.fit()",
    "document.querySelectorAll('[data-lane]').length",
]
res = browser.load(BUILD, big, steps=steps)
page_errors(res, "64 x 10,000")
eq(len(res["lanes"]), NPROC, "64 x 10,000: 64 lanes")
eq(sorted(l["pid"] for l in res["lanes"]), pids, "64 x 10,000: one lane per process")
eq([l["pid"] for l in res["lanes"] if l["dead"]], [pids[-1]], "64 x 10,000: the process without a summary is marked")
eq((res["chart"]["mode"], res["chart"]["visible_keys"]), ("aggregate", NKEYS),
   "64 x 10,000: the whole job drawn aggregated")
check(res["chart"]["densities"] > 0 and res["chart"]["key_bars"] == 0, f"64 x 10,000: densities, no single bars: {res['chart']}")
zoomed = res["steps"][0]["chart"]
check(zoomed["mode"] == "detail" and 0 < zoomed["key_bars"] <= 500 and zoomed["arrows"] > 0,
      f"64 x 10,000: zoomed in, single keys and arrows: {zoomed}")
picked = res["steps"][1]["chart"]
check(picked["key_bars"] >= 1 and picked["arrows"] >= 1, f"64 x 10,000: a picked key is drawn with its arrow: {picked}")
eq(res["steps"][2]["chart"]["mode"], "aggregate", "64 x 10,000: back to the whole job")
eq(res["steps"][3]["value"], NPROC, "64 x 10,000: the page answers after all that")
eq(len({m["rule"] for m in res["viols"]}), 1, "64 x 10,000: the violations are marked")
eq(sum(m["count"] for m in res["viols"]), bad, "64 x 10,000: every violation marked")
done("report.html")
