#!/usr/bin/env python3
"""Runs the whole benchmark and prints one table with each figure beside its budget
(the budgets of the interface's "Budgets" section).

    bench/run_bench.py [--build DIR] [--quick] [--no-report] [--no-ltrace] [--raw]

Latency rows: build/bench/bench under plain LD_PRELOAD of the shim (never LD_AUDIT: its
module would turn the direct calls into shim calls), one process per mode and measure, a
fresh ledger directory each (in /dev/shm, where the default ledger lives). Memory per live
allocation: `bench mem`. ltrace: the same export+close loop (build/bench/ipc_loop, linked
against the null runtime) plain, under ltrace, and under the shim. Report: 32
exporter/importer pairs (64 processes) of `bench logpair` write real logs under the shim,
then `acl-ipc-guard report --json` reads them: 64 MiB, 256 MiB, 1 GiB and 4 GiB of logs,
each size skipped when the disk lacks room or the report's memory, predicted from the size
before, would not fit. Everything it writes is removed at exit.

--quick: fewer samples and small logs, for the smoke test; the same rows.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

MODES = [
    # (label, environment)
    ("off", {"ACL_IPC_GUARD_MODE": "off", "ACL_IPC_GUARD_LOG": "{work}/off.%p.json"}),
    ("audit, log off", {"ACL_IPC_GUARD_MODE": "audit", "ACL_IPC_GUARD_LOG": "off"}),
    ("audit, JSON file", {"ACL_IPC_GUARD_MODE": "audit", "ACL_IPC_GUARD_LOG": "{work}/audit.%p.json",
                          "ACL_IPC_GUARD_FORMAT": "json"}),
    ("enforce, JSON file", {"ACL_IPC_GUARD_MODE": "enforce", "ACL_IPC_GUARD_LOG": "{work}/enforce.%p.json",
                            "ACL_IPC_GUARD_FORMAT": "json"}),
]
OFF_NS = 3.0  # off, any call
PAIR_NS = 30.0  # audit, malloc+free pair
PAIR_LIVE_NS = 60.0  # the same with 1,000,000 live allocations
BYTES_PER_ALLOC = 64.0
IPC_MED_NS = 500.0
IPC_P99_NS = 3000.0
THREADS_FACTOR = 2.0
REPORT_MBS = 100.0
PAIRS = 32  # exporter/importer pairs: 64 processes


def parse_row(line):
    fields = {}
    for part in line.split()[1:]:
        k, _, v = part.partition("=")
        fields[k] = v
    return fields


def fmt_ns(ns):
    if abs(ns) >= 10000:
        return f"{ns / 1000:.1f} µs"
    if abs(ns) >= 100:
        return f"{ns:.0f} ns"
    return f"{ns:.1f} ns"


def fmt_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def verdict(ok):
    return "ok" if ok else "**over**"


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.bench = os.path.join(self.build, "bench", "bench")
        self.loop = os.path.join(self.build, "bench", "ipc_loop")
        self.null = os.path.join(self.build, "bench", "null")
        self.shim = os.path.join(self.build, "lib", "libacl_ipc_guard.so")
        self.cli = self.find_cli()
        for path in (self.bench, self.loop, self.shim, os.path.join(self.null, "libascendcl.so")):
            if not os.path.exists(path):
                sys.exit(f"run_bench: {path} is missing: build first (scripts/setup.sh)")
        self.work = tempfile.mkdtemp(prefix="aig-bench.")
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.ledgers = tempfile.mkdtemp(prefix="aig-bench.", dir=shm) if shm else self.work
        self.rows = []  # (measure, mode, threads, live, direct, added_med, added_p99, budget, verdict)
        self.latencies = {}  # (measure, mode, threads, live) -> (added median, added p99, verdict)
        self.extras = {}  # name -> text, for the README's summary
        self.quick = args.quick

    def find_cli(self):
        bindir = os.path.join(self.build, "bin")
        path = os.path.join(bindir, "acl-ipc-guard")
        if os.access(path, os.X_OK):
            return path
        if os.path.isdir(bindir):
            for name in sorted(os.listdir(bindir)):
                if name.startswith("acl-ipc-guard") and os.access(os.path.join(bindir, name), os.X_OK):
                    return os.path.join(bindir, name)
        return None

    def env(self, extra, ledger=None):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("ACL_IPC_GUARD_") or k == "LD_AUDIT":
                del env[k]
        env["LD_LIBRARY_PATH"] = self.null
        env["LD_PRELOAD"] = self.shim
        env["ACL_IPC_GUARD_LEDGER"] = ledger or "off"
        for k, v in extra.items():
            env[k] = v.format(work=self.work)
        return env

    def fresh_ledger(self):
        return tempfile.mkdtemp(prefix="ledger.", dir=self.ledgers)

    def run(self, argv, env, timeout=1800):
        out = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             timeout=timeout)
        if self.args.raw:
            sys.stdout.write(out.stdout)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.strip()[-2000:]}")
        return out.stdout

    def clean_logs(self):
        for name in os.listdir(self.work):
            if name.endswith(".json"):
                os.unlink(os.path.join(self.work, name))

    # ------------------------------------------------------------ latency rows

    def latency(self):
        samples_pair = "2000" if self.quick else "50000"
        samples_ipc = "2000" if self.quick else "100000"
        plans = [
            ("malloc+free", ["malloc", "--threads", "1,8", "--live", "1000,1000000", "--samples", samples_pair]),
            ("export+close", ["export", "--threads", "1,8", "--keys", "100,65000", "--samples", samples_ipc]),
            ("import+close", ["import", "--threads", "1,8", "--keys", "100,65000", "--samples", samples_ipc]),
        ]
        for label, extra in MODES:
            for measure, argv in plans:
                out = self.run([self.bench] + argv, self.env(extra, self.fresh_ledger()))
                one_thread = {}
                for line in out.splitlines():
                    if line.startswith("row "):
                        self.add_latency_row(label, parse_row(line), one_thread)
                self.clean_logs()

    def add_latency_row(self, mode, r, one_thread):
        measure, threads = r["measure"], int(r["threads"])
        live_kind = "live" if "live" in r else "keys"
        live = int(r[live_kind])
        med, p99, direct = float(r["added_med"]), float(r["added_p99"]), float(r["direct_med"])
        pair = measure == "malloc+free"
        unit = "pair" if pair else "call"
        live_text = f"{live:,} allocations" if live_kind == "live" else f"{live:,} keys"
        notes = []
        if int(r.get("dropped", "0")):
            notes.append(f"{int(r['dropped']):,} records dropped")
        if int(r.get("violations", "0")):
            notes.append(f"{int(r['violations']):,} violations")
        p99_text = fmt_ns(p99)
        if threads == 1:
            one_thread[live] = med
        if threads > 1 and live in one_thread:
            limit = THREADS_FACTOR * max(one_thread[live], 0.0)
            budget = f"≤ 2x 1 thread ({fmt_ns(limit)})"
            if mode == "off":
                # `off` has a budget of its own for any call, 8 threads included; the ratio
                # of two figures of 1-3 ns is the clock's noise, not contention
                off_limit = OFF_NS * (2 if pair else 1)
                budget += f" or ≤ {fmt_ns(off_limit)}"
                limit = max(limit, off_limit)
            ok = med <= limit
        elif mode == "off":
            limit = OFF_NS * (2 if pair else 1)
            budget = f"≤ {fmt_ns(limit)}" + (" (3 ns a call)" if pair else "")
            ok = med <= limit
        elif pair:
            limit = PAIR_LIVE_NS if live >= 1000000 else PAIR_NS
            budget = f"≤ {fmt_ns(limit)}" + (" (2x at 1M live)" if live >= 1000000 else "")
            if mode.startswith("enforce"):
                budget += ", audit's"
            ok = med <= limit
        else:
            budget = f"≤ {fmt_ns(IPC_MED_NS)}, p99 ≤ {fmt_ns(IPC_P99_NS)}"
            if mode.startswith("enforce"):
                budget += ", audit's"
            ok = med <= IPC_MED_NS and p99 <= IPC_P99_NS
        self.rows.append((f"{measure}, per {unit}", mode, str(threads), live_text, fmt_ns(direct), fmt_ns(med),
                          p99_text, budget, verdict(ok) + ("; " + ", ".join(notes) if notes else "")))
        self.latencies[(measure, mode, threads, live)] = (med, p99, ok)

    # ------------------------------------------------------------ memory per live allocation

    def memory(self):
        live = 1000000
        for label, extra in (MODES[0], MODES[2]):
            out = self.run([self.bench, "mem", "--live", str(live)], self.env(extra))
            self.clean_logs()
            r = parse_row(next(line for line in out.splitlines() if line.startswith("mem ")))
            rss, heap = float(r["rss_per_alloc"]), float(r["heap_per_alloc"])
            self.extras[f"mem {label}"] = f"{rss:.0f} B"
            self.rows.append(("shim memory per live allocation (RssAnon; malloc heap)", label, "1",
                              f"{live:,} allocations", "-", f"{rss:.1f} B (heap {heap:.1f} B)", "-",
                              f"≤ {BYTES_PER_ALLOC:.0f} B", verdict(rss <= BYTES_PER_ALLOC)))

    # ------------------------------------------------------------ ltrace

    def ltrace(self):
        label = "ltrace -e 'aclrtIpcMem*' vs the shim, export+close, per call"
        ltrace = shutil.which("ltrace")
        if not ltrace and not self.args.no_install and os.geteuid() == 0 and shutil.which("apt-get"):
            print("run_bench: installing ltrace (apt-get install ltrace)", file=sys.stderr)
            subprocess.run(["apt-get", "install", "-y", "-qq", "ltrace"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            ltrace = shutil.which("ltrace")
        if not ltrace or self.args.no_ltrace:
            why = "skipped (--no-ltrace)" if self.args.no_ltrace else "skipped: ltrace not installed (apt-get install ltrace)"
            self.rows.append((label, "audit, JSON file", "1", "-", "-", why, "-", "-", "-"))
            self.extras["ltrace skipped"] = why
            return
        # The same loop, the same length, for all three: 10,000 calls fit in the shim's record
        # queue, so its writer keeps up as with any real program, and ltrace writes each call.
        n = 200 if self.quick else 5000
        plain_env = self.env({})
        del plain_env["LD_PRELOAD"]

        def per_call(argv, env):
            out = self.run(argv + [self.loop, str(n)], env)
            return float(parse_row("x " + out.strip().splitlines()[-1])["ns_per_call"])

        base = min(per_call([], plain_env) for _ in range(3))
        ours = min(per_call([], self.env(MODES[2][1], self.fresh_ledger())) for _ in range(3)) - base
        trace = os.path.join(self.work, "ltrace.out")
        try:
            theirs = per_call([ltrace, "-o", trace, "-e", "aclrtIpcMem*"], plain_env) - base
        except RuntimeError as e:
            self.rows.append((label, "audit, JSON file", "1", "-", fmt_ns(base), f"ltrace failed: {e}"[:120], "-",
                              "-", "-"))
            self.extras["ltrace skipped"] = f"ltrace failed: {e}"[:200]
            return
        traced = sum(1 for line in open(trace) if "aclrtIpcMem" in line) if os.path.exists(trace) else 0
        self.clean_logs()
        ratio = theirs / ours if ours > 0 else float("inf")
        ok_trace = traced >= 2 * n
        self.extras["ltrace"] = f"ltrace adds {fmt_ns(theirs)} per call, the shim {fmt_ns(ours)}: {ratio:.0f}x"
        self.rows.append((label, "audit, JSON file", "1", "-", fmt_ns(base),
                          f"ltrace +{fmt_ns(theirs)}, shim +{fmt_ns(ours)}: ltrace {ratio:.0f}x ours", "-", "-",
                          "-" if ok_trace else f"ltrace traced only {traced} calls"))

    # ------------------------------------------------------------ acl-ipc-guard report

    def report(self):
        """`acl-ipc-guard report --json` over 64 processes' logs of growing size. Before each
        size the memory the report will need is predicted from the size before (bytes of peak
        RSS per byte of log); a size that would not fit in half the memory available is
        skipped, and the report runs with an address-space limit of 75% of it, so a report
        that needs more fails alone instead of pushing the machine into swap or the OOM
        killer."""
        label = "`acl-ipc-guard report --json`, 64 processes"
        budget = f"≥ {REPORT_MBS:.0f} MB/s; peak RSS not growing with the logs"
        sizes = [8 << 20, 32 << 20] if self.quick else [64 << 20, 256 << 20, 1 << 30, 4 << 30]
        if not self.cli:
            self.rows.append((label, "-", "1", "-", "-", f"skipped: no acl-ipc-guard in {self.build}/bin", "-",
                              budget, "-"))
            return
        rss_per_byte, before = None, None  # before: (bytes, rss) of the size before
        for target in sizes:
            free = shutil.disk_usage(self.work).free
            need = int(target * 1.2) + (256 << 20)
            avail = mem_available()
            if free < need:
                self.rows.append((label, "audit, JSON file", "1", f"64 logs, {fmt_bytes(target)}", "-",
                                  f"skipped: {fmt_bytes(free)} free on the disk of {self.work}, "
                                  f"{fmt_bytes(need)} needed", "-", budget, "-"))
                continue
            if rss_per_byte is not None and avail is not None and rss_per_byte * target > 0.5 * avail:
                self.extras.setdefault("report", []).append(
                    f"{fmt_bytes(target)}: not run, it would need {fmt_bytes(int(rss_per_byte * target))} of memory")
                self.rows.append((label, "audit, JSON file", "1", f"64 logs, {fmt_bytes(target)}", "-",
                                  f"skipped: at {rss_per_byte:.1f} B of peak RSS per B of log (the size before) it "
                                  f"would need {fmt_bytes(int(rss_per_byte * target))}; {fmt_bytes(avail)} available",
                                  "-", budget, "**over**"))
                continue
            logs = tempfile.mkdtemp(prefix="logs.", dir=self.work)
            t0 = time.monotonic()
            files, total = self.make_logs(logs, target)
            made = time.monotonic() - t0
            limit = int(0.75 * avail) if avail else None
            wall, rss, code = self.time_report(files, limit)
            shutil.rmtree(logs)
            mbs = total / 1e6 / wall
            if self.args.raw:
                print(f"report bytes={total} files={len(files)} wall={wall:.2f} rss={rss} exit={code} "
                      f"generated_in={made:.1f}s")
            live = f"{len(files)} logs, {fmt_bytes(total)}"
            if code not in (0, 1):
                why = "killed at the time limit" if code == "timeout" else f"exit {code}"
                if limit and code != "timeout":
                    why += f" (address space limited to {fmt_bytes(limit)})"
                self.rows.append((label, "audit, JSON file", "1", live, "-", f"failed: {why} after {wall:.1f} s",
                                  "-", budget, "**over**"))
                continue
            rss_per_byte = max(rss_per_byte or 0, rss / total)
            figure = f"{mbs:.0f} MB/s ({wall:.1f} s), peak RSS {fmt_bytes(rss)} ({rss / total:.1f}x the logs)"
            ok = mbs >= REPORT_MBS
            if before:
                grew = rss / before[1]
                figure += f"; {total / before[0]:.1f}x the logs of the row above, {grew:.1f}x its RSS"
                ok = ok and grew <= 1.25
            before = (total, rss)
            self.extras.setdefault("report", []).append(f"{fmt_bytes(total)}: {mbs:.0f} MB/s, peak RSS {fmt_bytes(rss)}")
            self.rows.append((label, "audit, JSON file", "1", live, "-", figure, "-", budget, verdict(ok)))

    def time_report(self, files, limit):
        """wall time, peak RSS (bytes) and exit status of one report"""

        def cap():
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        t0 = time.monotonic()
        proc = subprocess.Popen([self.cli, "report", "--json"] + files, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=cap)
        timer = threading.Timer(self.args.report_timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        timed_out = not timer.is_alive()
        timer.cancel()
        if timed_out:
            proc.returncode = -9
            return wall, usage.ru_maxrss * 1024, "timeout"
        proc.returncode = os.waitstatus_to_exitcode(status)
        return wall, usage.ru_maxrss * 1024, proc.returncode

    def make_logs(self, logs, target):
        """32 exporter/importer pairs under the shim, concurrently, until their logs hold
        `target` bytes in all."""
        extra = {"ACL_IPC_GUARD_MODE": "audit", "ACL_IPC_GUARD_LOG": os.path.join(logs, "job.%p.json"),
                 "ACL_IPC_GUARD_FORMAT": "json"}
        env = self.env(extra, self.fresh_ledger())
        per_pair = str(-(-target // PAIRS))
        procs = [subprocess.Popen([self.bench, "logpair", "--bytes", per_pair], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE) for _ in range(PAIRS)]
        for p in procs:
            _, err = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"bench logpair exited {p.returncode}: {err.decode()[-500:]}")
        files = sorted(os.path.join(logs, f) for f in os.listdir(logs) if f.endswith(".json"))
        return files, sum(os.path.getsize(f) for f in files)

    # ------------------------------------------------------------ the table

    def summary(self):
        """The README's table: one line per measure and live size, one column per mode,
        added median / p99 (1 thread unless said)."""
        plan = [("malloc+free pair, 1,000 live allocations", "malloc+free", 1, 1000, "≤ 30 ns (`off` ≤ 6 ns)"),
                ("malloc+free pair, 1,000,000 live allocations", "malloc+free", 1, 1000000, "≤ 60 ns"),
                ("malloc+free pair, 8 threads, 1,000 live", "malloc+free", 8, 1000, "≤ 2x 1 thread"),
                ("IPC call (export+close), 100 live keys", "export+close", 1, 100, "≤ 500 ns / 3 µs (`off` ≤ 3 ns)"),
                ("IPC call (export+close), 65,000 live keys", "export+close", 1, 65000, "≤ 500 ns / 3 µs"),
                ("IPC call (export+close), 8 threads, 100 live keys", "export+close", 8, 100, "≤ 2x 1 thread"),
                ("IPC call (import+close, 2 processes), 100 live keys", "import+close", 1, 100, "≤ 500 ns / 3 µs"),
                ("IPC call (import+close), 65,000 live keys", "import+close", 1, 65000, "≤ 500 ns / 3 µs"),
                ("IPC call (import+close), 8 threads, 100 live keys", "import+close", 8, 100, "≤ 2x 1 thread")]
        modes = [m for m, _ in MODES]
        lines = ["| added time, median / p99 | budget | " + " | ".join(f"`{m.split(',')[0]}`" +
                                                                    (m[len(m.split(',')[0]):]) for m in modes) + " |",
                 "|---|---|" + "---|" * len(modes)]
        for title, measure, threads, live, budget in plan:
            cells = []
            for mode in modes:
                v = self.latencies.get((measure, mode, threads, live))
                if v is None:
                    cells.append("-")
                    continue
                med, p99, ok = v
                # malloc+free has no p99 budget; `off` has none either, and its p99 is below the
                # clock's resolution
                text = fmt_ns(med) if measure == "malloc+free" or mode == "off" else f"{fmt_ns(med)} / {fmt_ns(p99)}"
                cells.append(text if ok else f"**{text}**")
            lines.append(f"| {title} | {budget} | " + " | ".join(cells) + " |")
        notes = []
        if "mem audit, JSON file" in self.extras:
            notes.append(f"shim memory per live allocation (`audit`, 1,000,000 live): {self.extras['mem audit, JSON file']} "
                         f"(budget ≤ 64 B)")
        if "ltrace" in self.extras:
            notes.append(f"ltrace -e 'aclrtIpcMem*' on the same export+close loop: {self.extras['ltrace']} the shim's "
                         f"(`audit`, JSON file)")
        elif "ltrace skipped" in self.extras:
            notes.append(f"ltrace -e 'aclrtIpcMem*' on the same export+close loop: {self.extras['ltrace skipped']}")
        if "report" in self.extras:
            notes.append("`acl-ipc-guard report --json`, 64 processes' logs (budget ≥ 100 MB/s, memory bounded): "
                         + "; ".join(self.extras["report"]))
        return "\n".join(lines + [""] + [f"- {n}" for n in notes])

    def table(self):
        head = ("measure", "mode", "threads", "live", "direct median", "added median", "added p99", "budget", "")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.rows:
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)


def mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    ap.add_argument("--quick", action="store_true", help="few samples, small logs: checks that it all runs")
    ap.add_argument("--no-report", action="store_true", help="leave out the report's throughput")
    ap.add_argument("--no-ltrace", action="store_true", help="leave out the ltrace comparison")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install ltrace")
    ap.add_argument("--raw", action="store_true", help="also print the benchmark's own lines")
    ap.add_argument("--report-timeout", type=float, default=1800, help="seconds one report may take")
    ap.add_argument("--instr", action="store_true",
                    help="also count the shim's instructions per call with callgrind (bench/instr.py)")
    args = ap.parse_args()
    b = Bench(args)
    try:
        started = time.monotonic()
        b.latency()
        b.memory()
        b.ltrace()
        if args.no_report:
            b.rows.append(("`acl-ipc-guard report --json`, 64 processes", "-", "-", "-", "-", "skipped (--no-report)",
                           "-", f"≥ {REPORT_MBS:.0f} MB/s", "-"))
        else:
            b.report()
        print()
        print(f"acl-ipc-guard benchmark ({'quick' if args.quick else 'full'}): added time over a direct call into a "
              f"do-nothing runtime, same run; {os.cpu_count()} CPUs; {time.monotonic() - started:.0f} s")
        print()
        print(b.table())
        print()
        print("Summary (the README's form; bold: over its budget):")
        print()
        print(b.summary())
        if args.instr:
            print()
            sys.stdout.flush()
            subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "instr.py"),
                            "--build", b.build], check=False)
    finally:
        shutil.rmtree(b.work, ignore_errors=True)
        shutil.rmtree(b.ledgers, ignore_errors=True)


if __name__ == "__main__":
    main()
