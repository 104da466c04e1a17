"""`-v`/`-vv`, through the real binary: the command's own diagnostics on stderr (files read,
records, time per stage; what `run` sets), before or after the command's name; without it
stderr is exactly as before, and stdout and the exit status never change. A `-v` after
`run`'s `--` belongs to the program."""
import atexit
import glob
import subprocess
from harness import *


def cli(*args, env=None):
    p = subprocess.run([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, env=env)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


work = Workdir()
atexit.register(work.cleanup)
env = base_env(work, {"ACL_IPC_GUARD_LEDGER": "off"})

# Logs of a real job, made through the launcher: without -v it says nothing on stderr.
rc, out, err = cli("run", "--log", work.file("log.%p.json"), "--", prog("demo_misuse"), env=env)
eq((rc, err), (0, ""), "run without -v: status 0, stderr empty")
logs = sorted(glob.glob(work.file("log.*.json")))
eq(len(logs), 2, "two logs")
records = sum(len(read_log(p)) for p in logs)

# run -v: what it sets, on stderr; the program's output unchanged.
rc, vout, verr = cli("run", "-v", "--mode", "audit", "--log", work.file("v.%p.json"), "--",
                     prog("demo_misuse"), env=env)
eq((rc, vout), (0, out), "run -v: the program's status and stdout unchanged")
for said in ["INFO", "library: ", "set LD_PRELOAD=", "set LD_AUDIT=", "set ACL_IPC_GUARD_MODE=audit",
             f"set ACL_IPC_GUARD_LOG={work.file('v.%p.json')}", f"exec {prog('demo_misuse')}"]:
    check(said in verr, f"run -v says {said!r}:\n{verr}")
check("DEBUG" not in verr, f"run -v: no debug lines:\n{verr}")
# -vv: also the switches kept from the environment.
rc, _, verr = cli("-vv", "run", "--", "/bin/true", env={**env, "ACL_IPC_GUARD_MODE": "enforce"})
eq(rc, 0, "-vv run: status")
check("DEBUG" in verr and "kept from the environment: ACL_IPC_GUARD_MODE=enforce" in verr,
      f"-vv run names a switch it kept:\n{verr}")
# After `--`, -v is the program's.
rc, pout, perr = cli("run", "--", "/bin/sh", "-c", 'echo "$1"', "sh", "-v", env=env)
eq((rc, pout, perr), (0, "-v\n", ""), "run -- PROG -v: the program's argument")

# report: stderr empty without -v; with it, what was read and each stage; stdout and the
# status the same either way.
for fmt in ([], ["--json"]):
    plain = cli("report", *fmt, *logs)
    eq((plain[0], plain[2]), (1, ""), f"report {fmt}: status 1 (free.imported), stderr empty")
    for flags in (["-v"], ["--verbose"]):
        for before in (True, False):
            args = [*flags, "report", *fmt, *logs] if before else ["report", *flags, *fmt, *logs]
            rc, vout, verr = cli(*args)
            eq((rc, vout), plain[:2], f"{args[:3]}: stdout and status unchanged")
            for p in logs:
                check(f"read {p}: " in verr, f"{flags} report says it read {p}:\n{verr}")
            for said in [f"parsing: {records} records from 2 files in ", "ordering: 2 processes",
                         "re-check: 1 keys, 1 violations in ", "rendering: "]:
                check(said in verr, f"{flags} report says {said!r}:\n{verr}")
            check("DEBUG" not in verr, f"-v: no debug lines:\n{verr}")
rc, _, verr = cli("report", "-vv", *logs)
eq(rc, 1, "report -vv: status")
check("DEBUG" in verr and f"{logs[0]}: " in verr and "records, 0 text lines, 0 malformed lines" in verr,
      f"-vv: per-file detail:\n{verr}")
rc, _, verr = cli("report", "-v", "--trace", work.file("t.json"), *logs)
check("trace written: 2 processes" in verr, f"report -v --trace says what it drew:\n{verr}")
# Usage errors and help are as they were.
rc, out, err = cli("-v")
eq((rc, out), (2, ""), "-v alone: a usage error")
check(err.startswith("error:") and "Usage: acl-ipc-guard [OPTIONS] <COMMAND>" in err, f"-v alone: stderr:\n{err}")
check("-v, --verbose" in cli("--help")[1], "--help names -v, --verbose")
check("--trace <FILE>" in cli("report", "--help")[1], "report --help names --trace")
eq(cli("rules", "-v"), cli("rules"), "rules -v: same output (nothing to say)")
done("cli.verbose")
