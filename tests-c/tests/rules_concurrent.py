"""The ledger under concurrency: many processes of one job sharing one ledger directory at
the same time.

- 8 documented pairs (16 processes) at once: no violation, no error record anywhere;
- one exporter and 8 importers importing, reading and closing at the same moment, then the
  exporter's close: clean; and with one importer holding on: exactly one violation,
  naming it;
- 8 exporter/importer pairs at once, each exporter closing while its importer holds the key:
  exactly 8 violations, one in each exporter, each naming its own key and importer."""
import threading
from ruleslib import *

N = 8


def spawn(work, mode, role):
    env = env_for(work, mode, None, "all")
    return Actor(role, env, True, work.file(f"err.{role}"))


def ok(actor, cmd, what):
    r = actor.do(cmd)
    check(r is not None and r.complete, f"{what}: {actor.name} {cmd} answered: {r}")
    if r.call is not None:
        eq(r.call.ret, 0, f"{what}: {actor.name} {cmd}")
    return r


def run_threads(fns):
    errors = []

    def wrap(f):
        try:
            f()
        except SystemExit as e:  # a failed check inside a thread
            errors.append(e)
        except Exception as e:  # noqa: BLE001 - report anything
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(f,)) for f in fns]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    check(not errors and not any(t.is_alive() for t in ts), f"threads finished cleanly: {errors}")


# ---- 8 pairs at once
work = Workdir()
env = env_for(work, "audit")
env["LD_PRELOAD"] = SHIM
procs = [subprocess.Popen([prog("pair")] + (["whitelist"] if i % 2 == 0 else ["open", "1"]), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(N)]
for i, pr in enumerate(procs):
    out, err = pr.communicate(timeout=60)
    eq(pr.returncode, 0, f"pair {i}: exit status ({err.decode(errors='replace')})")
    check(b"bytes shared both ways" in out, f"pair {i}: the bytes arrived")
logs = read_logs(work.file("log.*.json"))
eq(len(logs), 2 * N, "16 processes wrote logs")
check_clean_logs(logs, "8 pairs at once")
work.cleanup()


# ---- one exporter, 8 importers at once
def fan_out(holdout):
    what = f"fan-out (holdout {holdout})"
    work = Workdir()
    a = spawn(work, "audit", "A")
    ims = [spawn(work, "audit", f"I{i}") for i in range(N)]
    try:
        for x in [a] + ims:
            ok(x, "dev", what)
        ok(a, "malloc m 65536", what)
        ok(a, "write m 0 shared-by-the-exporter", what)
        key = ok(a, "export k m 0 65536 0", what).vals["key"]
        tgids = [ok(im, "tgid", what).vals["tgid"] for im in ims]
        ok(a, "setpid k " + " ".join(tgids), what)
        barrier = threading.Barrier(N)

        def importer(im, close):
            def f():
                ok(im, f"setkey k {key}", what)
                barrier.wait()
                ok(im, "import q k 0", what)
                eq(ok(im, "read q 0", what).vals.get("text"), "shared-by-the-exporter", f"{what}: {im.name} read")
                if close:
                    ok(im, "close k", what)
            return f

        run_threads([importer(im, i != holdout) for i, im in enumerate(ims)])
        ok(a, "close k", what)
        if holdout is not None:
            ok(ims[holdout], "close k", what)
        ok(a, "free m", what)
        for x in [a] + ims:
            eq(x.finish(), 0, f"{what}: {x.name} exits 0")
        logs = {x.name: log_of(work, x.pid) for x in [a] + ims}
        if holdout is None:
            check_clean_logs(logs, what)
        else:
            vs = violations(logs["A"])
            eq([v["rule"] for v in vs], ["close.exporter-before-importers"], f"{what}: the exporter's violations")
            check_violation(vs[0], "close.exporter-before-importers", "reported", what, fp_of(key))
            check(str(ims[holdout].pid) in vs[0]["message"], f"{what}: names the holdout: {vs[0]['message']}")
            for i, im in enumerate(ims):
                if i != holdout:
                    check(str(im.pid) not in vs[0]["message"], f"{what}: does not name {im.name}, who closed")
            for name, recs in logs.items():
                if name != "A":
                    eq(violations(recs), [], f"{what}: {name} is clean")
    finally:
        for x in [a] + ims:
            if x.returncode is None:
                x.kill()
        work.cleanup()


fan_out(None)
fan_out(5)


# ---- 8 pairs at once, each with the ordering mistake
work = Workdir()
pairs = [(spawn(work, "audit", f"A{i}"), spawn(work, "audit", f"B{i}")) for i in range(N)]
keys = {}
barrier = threading.Barrier(N)


def mistaken_pair(i, a, b):
    def f():
        what = f"pair {i} with the mistake"
        ok(a, "dev", what)
        ok(b, "dev", what)
        ok(a, "malloc m 8192", what)
        keys[i] = ok(a, "export k m 0 8192 0", what).vals["key"]
        ok(a, "setpid k " + ok(b, "tgid", what).vals["tgid"], what)
        ok(b, f"setkey k {keys[i]}", what)
        barrier.wait()
        ok(b, "import q k 0", what)
        ok(a, "close k", what)  # the mistake
        ok(b, "close k", what)
        ok(a, "free m", what)
    return f


try:
    run_threads([mistaken_pair(i, a, b) for i, (a, b) in enumerate(pairs)])
    for a, b in pairs:
        eq((a.finish(), b.finish()), (0, 0), f"{a.name}, {b.name}: exit 0")
    for i, (a, b) in enumerate(pairs):
        what = f"pair {i} with the mistake"
        vs = violations(log_of(work, a.pid))
        eq([v["rule"] for v in vs], ["close.exporter-before-importers"], f"{what}: the exporter's violations")
        check_violation(vs[0], "close.exporter-before-importers", "reported", what, fp_of(keys[i]))
        check(str(b.pid) in vs[0]["message"], f"{what}: names its own importer: {vs[0]['message']}")
        for j, (_, other) in enumerate(pairs):
            if j != i:
                check(str(other.pid) not in vs[0]["message"], f"{what}: does not name another pair's importer")
        eq(violations(log_of(work, b.pid)), [], f"{what}: the importer is clean")
finally:
    for a, b in pairs:
        for x in (a, b):
            if x.returncode is None:
                x.kill()
    work.cleanup()

done("rules.concurrent")
