"""A stalled log: the log is a FIFO whose reader does not read until the program has made
200000 calls and written a marker file (so the program was never held up by the log).
Then the reader drains it: the summary's `dropped` is > 0, the gaps in `seq` add up to
exactly `dropped`, and aclIpcGuardGetStats (read by the program before the marker) says
the same."""
import atexit
import json
import os
import re
import subprocess
import time
from harness import *

CALLS = 200000
STALL_LIMIT = 25  # seconds the program may take for its calls while nobody reads

work = Workdir()
atexit.register(work.cleanup)
fifo = work.file("log.fifo")
marker = work.file("done")
os.mkfifo(fifo, 0o600)
# Open the reading end now (without blocking) so that the shim's open succeeds; read nothing.
rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
env = base_env(work, {"ACL_IPC_GUARD_LOG": fifo, "ACL_IPC_GUARD_LEDGER": "off", "LD_PRELOAD": SHIM})
out_path = work.file("stdout")
with open(out_path, "wb") as out:
    proc = subprocess.Popen([prog("audit_work"), "flood", str(CALLS), marker], env=env, stdout=out, stderr=subprocess.STDOUT)
atexit.register(lambda: proc.poll() is None and proc.kill())
t0 = time.monotonic()
while not os.path.exists(marker):
    if time.monotonic() - t0 > STALL_LIMIT:
        fail(f"the program did not finish {CALLS} calls within {STALL_LIMIT} s while the log was not read: "
             "the calling thread waited on the log")
    if proc.poll() is not None:
        fail(f"the program ended before writing the marker: {proc.returncode}, {open(out_path).read()}")
    time.sleep(0.01)
stalled_for = time.monotonic() - t0
with open(marker) as f:
    m = re.match(r"calls=(\d+) dropped=(\d+)", f.read())
check(m, "marker holds the counters")
stats_calls, stats_dropped = int(m.group(1)), int(m.group(2))
eq(stats_calls, CALLS, "aclIpcGuardGetStats: calls")

# Now drain.
os.set_blocking(rfd, True)
chunks = []
deadline = time.monotonic() + 60
while True:
    b = os.read(rfd, 1 << 20)
    if not b:
        break
    chunks.append(b)
    check(time.monotonic() < deadline, "draining the log took too long")
os.close(rfd)
eq(proc.wait(timeout=60), 0, f"exit status: {open(out_path).read()}")
data = b"".join(chunks).decode()
check(data.endswith("\n"), "the log ends with a whole line")
rs = [json.loads(l) for l in data.splitlines()]
eq(rs[0]["event"], "start", "start record")
eq(rs[0]["seq"], 1, "start seq")
s = rs[-1]
eq(s["event"], "summary", "the summary is written after the drain")
eq(s["calls"], CALLS, "summary calls")
check(s["dropped"] > 0, f"records were dropped while the reader stalled: {s['dropped']}")
seqs = [r["seq"] for r in rs]
check(all(b > a for a, b in zip(seqs, seqs[1:])), "seq increases along the file")
gaps = sum(b - a - 1 for a, b in zip(seqs, seqs[1:]))
eq(gaps, s["dropped"], "the seq gaps add up to the dropped count")
eq(s["seq"], len(rs) + s["dropped"], "every seq is either written or counted as dropped")
eq(stats_dropped, s["dropped"], "aclIpcGuardGetStats saw the same dropped count")
eq({r["event"] for r in rs}, {"start", "call", "summary"}, "only calls were dropped: start and summary are there")
check(len(calls(rs)) == CALLS - s["dropped"], "written + dropped calls = calls made")
print(f"note: {CALLS} calls in {stalled_for:.2f} s with a stalled reader; {s['dropped']} records dropped")
done("audit.drops")
