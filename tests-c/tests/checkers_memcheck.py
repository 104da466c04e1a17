"""Representative real-path programs under valgrind memcheck, with the shim preloaded:
no invalid read or write, no use of uninitialised memory, no definite leak (in the shim,
the emulated runtime or the program), in the processes and in their fork children. Each
program's output (and exit status) under valgrind is the same as without it, so a fork
child that valgrind fails (its exit status is printed by the fuzz driver) shows too.

Suppressions (tests-c/checkers/valgrind.supp) cover only the Rust standard library's and
glibc's own patterns, each explained there. Skipped (exit 77) when valgrind is not
installed; with CI=true that is a failure."""
import atexit
import glob
import os
import re
import shutil
from harness import *

VALGRIND = shutil.which("valgrind")
if VALGRIND is None:
    if os.environ.get("CI") == "true":
        fail("valgrind is not installed, and CI=true")
    print("checkers.memcheck: SKIPPED: valgrind is not installed")
    sys.exit(SKIP)
if "verify_asan_link_order" in os.environ.get("ASAN_OPTIONS", ""):
    # -DAIG_SANITIZE=ON: the programs carry AddressSanitizer, which valgrind cannot run.
    print("checkers.memcheck: SKIPPED: the test programs are built with AddressSanitizer")
    sys.exit(SKIP)
SUPP = os.path.join(SOURCE, "tests-c", "checkers", "valgrind.supp")


def memcheck(work, tag):
    return [VALGRIND, "-q", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite", "--error-exitcode=99", "--trace-children=yes",
            "--track-fds=no", f"--suppressions={SUPP}", f"--log-file={work.file('vg.' + tag + '.%p.log')}"]


def same_text(text):
    """Output without the values that change from run to run (ids, keys), lines sorted
    (threads finish in any order)."""
    return sorted(re.sub(r"\b(tid|pid|tgid|key)=\S+", r"\1=N", text).splitlines())


def case(tag, argv, mode="audit", extra=None):
    work = Workdir()
    atexit.register(work.cleanup)
    env = base_env(work, dict({"ACL_IPC_GUARD_MODE": mode, "ACL_IPC_GUARD_CALLS": "all",
                               "ACL_IPC_GUARD_LOG": work.file("log.%p.json")}, **(extra or {})))
    plain = run(argv, env, timeout=120)
    shutil.rmtree(work.emu)
    os.mkdir(work.emu, 0o700)
    checked = run(memcheck(work, tag) + argv, env, timeout=600)
    reports = []
    for path in sorted(glob.glob(work.file(f"vg.{tag}.*.log"))):
        with open(path) as f:
            text = f.read()
        if text.strip():
            reports.append(f"--- {os.path.basename(path)}\n{text}")
    if reports:
        fail(f"{tag}: memcheck found errors (exit {checked.returncode}):\n" + "\n".join(reports)[-12000:])
    eq(checked.returncode, plain.returncode, f"{tag}: exit status under memcheck")
    eq(same_text(checked.stdout_text), same_text(plain.stdout_text), f"{tag}: output under memcheck")
    eq(plain.returncode, 0, f"{tag}: the program succeeded")
    logs = glob.glob(work.file("log.*.json"))
    check(logs, f"{tag}: the shim wrote its logs")
    for path in logs:
        rs = read_log(path)
        eq(rs[-1]["event"], "summary", f"{tag}: {os.path.basename(path)} ends with its summary")
    work.cleanup()


# Good and bad calls of every intercepted function, one process.
case("transparency", [prog("transparency")])
# Random calls with hostile arguments, 3 fork children importing the parent's keys.
case("fuzz-audit", [prog("aig_fuzz"), "1", "300"])
case("fuzz-enforce", [prog("aig_fuzz"), "2", "300"], mode="enforce")
# Threads calling at once while the writer thread writes.
case("threads", [prog("audit_work"), "threads", "4", "200"])
# Violations with backtraces, blocked in enforce mode, and leaks reported at exit.
for name in ("export.range", "free.before-close", "import.own-export", "exit.leak", "clean-local"):
    case(f"scenario-{name}", [prog("scenario"), name], mode="enforce")
done("checkers.memcheck")
