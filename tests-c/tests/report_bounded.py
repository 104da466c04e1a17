"""`acl-ipc-guard report` (text and --json) keeps in memory the keys still open and the
processes, not the logs: exporter/importer pairs under the real shim (the bench's
`logpair`: rounds of export, whitelist, import, close, close, free) write real logs, once
of about 6 MiB and once of 4 times that; the report's peak RSS (getrusage of the child)
stays under a fixed ceiling (24 MiB) and grows by at most a quarter while its input grows
4x (the in-memory report needed about 5 bytes per byte of log: 30 and 120 MiB here). Its output
is complete: every key exported is in `keys` once, with its five events, and the text
names each key's timeline once; the same logs given on standard input give the same.
Then 4 times the keys (hand-made logs in the shim's layout, each key named by one record,
each record pair freeing an address of its own): peak RSS may grow by 2 MiB at most (the
report once kept a count per key and every freed address: 9.0 -> 24.6 MiB here)."""
import atexit
import json
import os
import subprocess
import sys
from harness import *

PAIRS = 4
SMALL = 6 << 20
CEILING = 24 << 20  # bytes of peak RSS, at either size
BENCH = os.path.join(BUILD, "bench", "bench")
NULL_RT = os.path.join(BUILD, "bench", "null")

work = Workdir()
atexit.register(work.cleanup)


def make_logs(name, size):
    d = work.file(name)
    os.mkdir(d)
    env = base_env(work, {"ACL_IPC_GUARD_LOG": os.path.join(d, "job.%p.json"), "ACL_IPC_GUARD_LEDGER": "off",
                          "ACL_IPC_GUARD_FORMAT": "json", "ACL_IPC_GUARD_MODE": "audit"})
    env["LD_LIBRARY_PATH"] = NULL_RT
    env["LD_PRELOAD"] = SHIM
    procs = [subprocess.Popen([BENCH, "logpair", "--bytes", str(size // PAIRS)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(PAIRS)]
    for p in procs:
        _, err = p.communicate(timeout=240 * TIMEOUT_SCALE)
        eq(p.returncode, 0, f"bench logpair ({err.decode()[-300:]})")
    files = sorted(os.path.join(d, f) for f in os.listdir(d))
    eq(len(files), 2 * PAIRS, f"{name}: one log per process")
    return files


# A child's peak RSS counts what it had before its exec: a copy of its parent, this
# script, which grows as it reads the logs. So the report is started by a fresh, small
# Python that only forks, execs and tells the child's getrusage (its own few MiB are the
# floor of what is measured).
RUNNER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("peak %d\\n" % (usage.ru_maxrss * 1024))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def report(args, stdin=None):
    """exit status, standard output and peak RSS (bytes) of one report"""
    out = open(work.file("out"), "w+b")
    p = subprocess.run([sys.executable, "-I", "-S", "-c", RUNNER, CLI, "report"] + args, stdin=stdin, stdout=out,
                       stderr=subprocess.PIPE, timeout=300 * TIMEOUT_SCALE)
    err = p.stderr.decode()
    out.seek(0)
    text = out.read().decode()
    out.close()
    lines = err.splitlines()
    check(lines and lines[-1].startswith("peak "), f"the runner's answer: {err!r}")
    eq(lines[:-1], [], "nothing on standard error")
    return p.returncode, text, int(lines[-1].split()[1])


def exports(files):
    n = 0
    for f in files:
        n += sum(1 for r in read_log(f) if r.get("fn") == "aclrtIpcMemGetExportKey" and r.get("ret") == 0)
    return n


rss = {}
for name, size in (("small", SMALL), ("large", 4 * SMALL)):
    files = make_logs(name, size)
    total = sum(os.path.getsize(f) for f in files)
    check(total >= size, f"{name}: {total} bytes of logs")
    code, out, peak = report(["--json"] + files)
    eq(code, 0, f"{name}: a correct job, exit 0")
    doc = json.loads(out)
    n = exports(files)
    eq(len(doc["keys"]), n, f"{name}: every exported key in `keys`")
    eq(sorted({len(evs) for evs in doc["keys"].values()}), [5], f"{name}: each key's five events")
    eq(doc["records"], sum(len(read_log(f)) for f in files), f"{name}: every record counted")
    check(peak < CEILING, f"{name}: --json peak RSS {peak >> 20} MiB (< {CEILING >> 20} MiB) for {total >> 20} MiB of logs")
    code, text, peak_text = report(files)
    eq(code, 0, f"{name}: text, exit 0")
    eq(text.count("  fp:"), n, f"{name}: a timeline per key in the text")
    check(peak_text < CEILING, f"{name}: text peak RSS {peak_text >> 20} MiB (< {CEILING >> 20} MiB)")
    rss[name] = max(peak, peak_text)
    print(f"{name}: {total / 2**20:.1f} MiB of logs, {n} keys: peak RSS {peak / 2**20:.1f} MiB (--json), "
          f"{peak_text / 2**20:.1f} MiB (text)")
    if name == "small":
        # Standard input is read twice too (spooled to an unlinked file): the same report.
        with open(files[0], "rb") as f:
            code, piped, _ = report(["--json", "-"] + files[1:], stdin=f)
        doc_piped = json.loads(piped)
        eq(doc_piped["keys"], doc["keys"], "small: a log on standard input, the same keys")
        eq(sum(p["files"] == ["-"] for p in doc_piped["processes"]), 1, "small: standard input named -")
check(rss["large"] <= rss["small"] * 1.25 + (1 << 20),
      f"peak RSS {rss['small'] >> 20} MiB for the small logs, {rss['large'] >> 20} MiB for 4x their size")


def one_file(path, pairs):
    """One process's log of `pairs` malloc+free call records, each carrying a long
    member the report ignores: a file the merge takes faster than the parser reads it."""
    pad = "[" + ",".join(['{"a":[1,2,{"b":3}]}'] * 500) + "]"
    with open(path, "w") as out:
        out.write('{"ts":"2026-12-01T20:00:00.000000Z","seq":1,"pid":500,"tid":500,"event":"start",'
                  '"version":"0.1.0","mode":"audit","exe":"/x","ledger":"off","host":"vm","bare_tgid":500}\n')
        for i in range(pairs):
            for j, call in enumerate(('"fn":"aclrtMalloc","args":{"size":4096,"policy":0},'
                                      '"out":{"devPtr":"0x200000000000"}',
                                      '"fn":"aclrtFree","args":{"devPtr":"0x200000000000"}')):
                seq = 2 + 2 * i + j
                out.write('{"ts":"2026-12-01T20:%02d:%02d.%06dZ","seq":%d,"pid":500,"tid":500,"event":"call",%s,'
                          '"ret":0,"forwarded":true,"dur_ns":100,"pad":%s}\n'
                          % (seq // 60_000_000, seq // 1_000_000 % 60, seq % 1_000_000, seq, call, pad))
        seq = 2 + 2 * pairs
        out.write('{"ts":"2026-12-01T20:%02d:%02d.%06dZ","seq":%d,"pid":500,"tid":500,"event":"summary","calls":%d,'
                  '"violations":{},"blocked":0,"leaks":0,"dropped":0}\n'
                  % (seq // 60_000_000, seq // 1_000_000 % 60, seq % 1_000_000, seq, 2 * pairs))


# One file alone (the merge never waits for another): the batches the merge hands back
# must not pile up while the parser reads on (they once did: 5 MiB for 24 MB, 24 MiB for
# 781 MB of such a file).
single = {}
for name, pairs in (("one small", 1000), ("one large", 8000)):
    path = work.file(name.replace(" ", "_") + ".json")
    one_file(path, pairs)
    code, out, peak = report(["--json", path])
    eq(code, 0, f"{name}: exit 0")
    eq(json.loads(out)["records"], 2 * pairs + 2, f"{name}: every record counted")
    single[name] = peak
    print(f"{name}: {os.path.getsize(path) / 2**20:.0f} MiB in one file: peak RSS {peak / 2**20:.1f} MiB")
    os.unlink(path)
check(single["one large"] <= single["one small"] * 1.25 + (1 << 20),
      f"peak RSS {single['one small'] >> 20} MiB for one file, {single['one large'] >> 20} MiB for 8x its size")

def many_keys(path, pid, keys):
    """One process's log in the shim's layout where each key is named by one record (an
    `aclrtIpcMemClose`) and each record after it frees an address of its own: the fewest
    bytes per key and per freed address, so that what the report keeps per key of the job
    (rather than per key in flight) shows in its peak RSS long before its bytes do."""
    with open(path, "w") as out:
        out.write('{"ts":"2026-12-01T20:00:00.000000Z","seq":1,"pid":%d,"tid":%d,"event":"start",'
                  '"version":"0.1.0","mode":"audit","exe":"/x","ledger":"off","host":"vm","bare_tgid":%d}\n'
                  % (pid, pid, pid))
        head = '{"ts":"2026-12-01T%02d:%02d:%02d.%06dZ","seq":%d,"pid":' + str(pid) + ',"tid":' + str(pid) + \
               ',"event":"call",'
        seq = 1
        lines = []
        for i in range(keys):
            for call in ('"fn":"aclrtIpcMemClose","args":{"key_fp":"fp:%016x"},"out":{}' % (pid << 40 | i),
                         '"fn":"aclrtFree","args":{"devPtr":"0x%x"}' % (0x200000000000 + (i << 12))):
                seq += 1
                us = seq * 3
                lines.append(head % (20 + us // 3_600_000_000, us // 60_000_000 % 60, us // 1_000_000 % 60,
                                     us % 1_000_000, seq) + call + ',"ret":0,"forwarded":true,"dur_ns":100}\n')
            if len(lines) >= 20000:
                out.write("".join(lines))
                lines.clear()
        seq += 1
        us = seq * 3
        lines.append(head.replace('"event":"call",', '"event":"summary",') % (
            20 + us // 3_600_000_000, us // 60_000_000 % 60, us // 1_000_000 % 60, us % 1_000_000, seq) +
            '"calls":%d,"violations":{},"blocked":0,"leaks":0,"dropped":0}\n' % (2 * keys))
        out.write("".join(lines))


def no_temp(paths, doc):
    """No temporary file can be made (TMPDIR names no directory): the report reads the
    logs into memory instead, says so with -v, and gives the same verdicts and keys. Its
    census threads once wrote that trouble to stderr while the main thread held it: -v
    then hung for good."""
    env = dict(os.environ, TMPDIR=work.file("no-such-dir"))
    p = subprocess.run([CLI, "-v", "report", "--json"] + paths, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=300 * TIMEOUT_SCALE)
    eq(p.returncode, 0, "no temporary file: exit 0")
    check(b"reading the logs into memory" in p.stderr, f"no temporary file: -v says so: {p.stderr[-500:]!r}")
    mem = json.loads(p.stdout)
    eq(sorted(mem["keys"]), sorted(doc["keys"]), "no temporary file: the same keys")
    eq(mem["violations"], doc["violations"], "no temporary file: the same violations")


# Memory for the keys in flight, not for every key of the job: 4 times the keys (each
# named once, each freeing an address once) must not cost more than a small margin (the
# count per key fingerprint and the freed addresses per process were once kept for the
# whole run: about 13 MiB more here).
MANY = 30_000
many = {}
for name, keys in (("keys", MANY), ("4x keys", 4 * MANY)):
    paths = []
    for pid in (700, 701):
        paths.append(work.file("%s.%d.json" % (name.replace(" ", "_"), pid)))
        many_keys(paths[-1], pid, keys)
    code, out, peak = report(["--json"] + paths)
    eq(code, 0, f"{name}: exit 0")
    doc = json.loads(out)
    eq(len(doc["keys"]), 2 * keys, f"{name}: every key in `keys`")
    eq(doc["records"], 2 * (2 * keys + 2), f"{name}: every record counted")
    code, text, peak_text = report(paths)
    eq(code, 0, f"{name}: text, exit 0")
    eq(text.count("  fp:"), 2 * keys, f"{name}: a timeline per key in the text")
    many[name] = max(peak, peak_text)
    print(f"{name}: {2 * keys} keys in {sum(os.path.getsize(p) for p in paths) / 2**20:.0f} MiB: peak RSS "
          f"{peak / 2**20:.1f} MiB (--json), {peak_text / 2**20:.1f} MiB (text)")
    if name == "keys":
        no_temp(paths, doc)
    for p in paths:
        os.unlink(p)
check(many["4x keys"] <= many["keys"] + (2 << 20),
      f"peak RSS {many['keys'] / 2**20:.1f} MiB for {2 * MANY} keys, {many['4x keys'] / 2**20:.1f} MiB for 4x as many")
done("report.bounded")
