"""The log's disk fills up mid-run, then has room again: the program runs with a file size
limit (RLIMIT_FSIZE, SIGXFSZ ignored, as a full disk: writes fail, the last one in part),
makes 2000 calls, reports its counters, raises the limit (room again) and makes 100 more.

The program's results are those without the shim and it is never held up; one line on
stderr says that records are being lost; every line of the log is a whole JSON record
except at most one torn line per filling (the record cut off when the space ran out, which
the next record no longer swallows: it starts on a new line); `seq` increases, its gaps add
up exactly to the summary's `dropped`, which aclIpcGuardGetStats also reported, and the
start and summary records are there.

Regression (found by this test): after a write cut off in mid-record, the next record was
appended to the torn line, so one more record was lost to readers than `dropped` said."""
import atexit
import json
import os
import resource
import signal
import subprocess
import time
from harness import *

N, M = 2000, 100
LIMIT = 24 * 1024  # bytes: about 100 records, then the "disk" is full

for fmt in ("json", "text"):
    work = Workdir()
    atexit.register(work.cleanup)
    log, go, marker = work.file("log"), work.file("go"), work.file("marker")
    env = base_env(work, {"ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_FORMAT": fmt, "ACL_IPC_GUARD_LEDGER": "off",
                          "LD_PRELOAD": SHIM})

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.RLIM_INFINITY))

    p = subprocess.Popen([prog("faults"), "fill", str(N), go, str(M), marker], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=limited)
    atexit.register(lambda: p.poll() is None and p.kill())
    deadline = time.monotonic() + 60
    while not os.path.exists(marker):
        check(time.monotonic() < deadline and p.poll() is None, f"{fmt}: the program made its first calls")
        time.sleep(0.01)
    with open(marker) as f:
        stats = dict(kv.split("=") for kv in f.read().split())
    eq(int(stats["calls"]), N, f"{fmt}: calls counted while the disk was full")
    check(int(stats["dropped"]) > 0, f"{fmt}: records were dropped while the disk was full")
    check(os.path.getsize(log) <= LIMIT, f"{fmt}: the log stopped at the limit")
    open(go, "w").close()
    out, err = p.communicate(timeout=60)
    eq((p.returncode, out.decode().strip()), (0, f"fill made={N + M}"), f"{fmt}: the program's results")
    lines = [l for l in err.decode().splitlines() if l.strip()]
    eq(len(lines), 1, f"{fmt}: one line on stderr: {lines}")
    check("cannot write the log" in lines[0], f"{fmt}: it says the log cannot be written: {lines[0]}")
    with open(log, "rb") as f:
        text = f.read().decode()
    check(text.endswith("\n"), f"{fmt}: the log ends with a whole line")
    if fmt == "text":
        rows = text.splitlines()
        torn = [l for l in rows if not l.startswith("[acl-ipc-guard] ")]
        check(len(torn) <= 1, f"{fmt}: at most one torn line: {torn}")
        check(rows[-1].split()[5] == "summary" if len(rows[-1].split()) > 5 else False,
              f"{fmt}: the summary is the last line: {rows[-1][:200]}")
        continue
    rs, torn = [], []
    for l in text.splitlines():
        try:
            rs.append(json.loads(l))
        except json.JSONDecodeError:
            torn.append(l)
    check(len(torn) <= 1, f"{fmt}: at most one torn line: {[t[:80] for t in torn]}")
    if torn:
        check(text.splitlines().index(torn[0]) < len(text.splitlines()) - 1, f"{fmt}: the torn line is not the last")
    eq(rs[0]["event"], "start", f"{fmt}: start record")
    s = rs[-1]
    eq(s["event"], "summary", f"{fmt}: the summary is written once there is room")
    eq(s["calls"], N + M, f"{fmt}: summary calls")
    seqs = [r["seq"] for r in rs]
    check(all(b > a for a, b in zip(seqs, seqs[1:])), f"{fmt}: seq increases")
    gaps = sum(b - a - 1 for a, b in zip(seqs, seqs[1:]))
    eq(gaps, s["dropped"], f"{fmt}: seq gaps = summary dropped")
    eq(s["seq"], len(rs) + s["dropped"], f"{fmt}: every record written whole or counted dropped")
    check(s["dropped"] >= int(stats["dropped"]), f"{fmt}: the stats saw the drops as they happened")
    eq(len(calls(rs)), N + M - s["dropped"], f"{fmt}: written calls + dropped = calls made")
    work.cleanup()
done("faults.log.full")
