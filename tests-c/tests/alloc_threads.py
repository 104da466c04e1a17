"""The table of live allocations under threads (it is split by address, each part with a
lock of its own, and keeps a part's newest allocations apart from the older ones): after
8 threads allocated and freed at once, every allocation is still known to the rules,
whichever thread made it and however many came after it. Exports of each thread's oldest
allocation fire nothing (a lost allocation would be export.untracked), a range past an
allocation's end fires export.range, a free while exported fires free.before_close, and
the summary counts every call exactly once (the quiet allocation calls are counted in
the table's parts, the others in the process's counter)."""
import atexit
import re
from harness import *

THREADS, KEEP, PAIRS = 8, 40, 150

for mode in ("audit", "enforce"):
    work = Workdir()
    atexit.register(work.cleanup)
    env = base_env(work, {"ACL_IPC_GUARD_MODE": mode, "ACL_IPC_GUARD_LOG": work.file("log.json")})
    p = run([prog("alloc_threads"), str(THREADS), str(KEEP), str(PAIRS)], env, check_rc=0, timeout=240)
    check(p.stdout_text.endswith("ok\n"), f"{mode}: the program finished: {p.stdout_text}")
    want_calls = int(re.search(r"calls=(\d+)", p.stdout_text).group(1))
    rs = read_log(work.file("log.json"))
    check_seq(rs, mode)
    eq([v["rule"] for v in violations(rs)], ["export.range", "free.before-close"],
       f"{mode}: exactly the two misuses are found")
    if mode == "enforce":
        check("range export ret=100000\n" in p.stdout_text, f"{mode}: the range export blocked: {p.stdout_text}")
        check("free while exported ret=100000\n" in p.stdout_text,
              f"{mode}: the free while exported blocked: {p.stdout_text}")
    summary = rs[-1]
    eq(summary["event"], "summary", f"{mode}: summary last")
    eq(summary["calls"], want_calls, f"{mode}: every call counted once")
    eq(summary["leaks"], 0, f"{mode}: no key left open")
    work.cleanup()
done("alloc.threads")
