"""The threaded real-path programs under valgrind's helgrind, with the shim preloaded: no
data race, no lock-order inversion, no misuse of the pthread API, in the shim, the emulated
runtime or the program, in the processes and in their fork children (any report fails).

  - audit_work threads: 4 threads calling at once while the log-writer thread writes
    (what audit.threads checks for records).
  - faults threads: 4 exporter threads and their 4 importer peers in a fork child, every
    intercepted IPC function at once, the ledger shared by both processes (what
    faults.threads checks for correctness), in enforce mode.

Helgrind sees pthread locks, thread creation and join, not atomics: std's futex Mutex and
Once look like no synchronisation at all to it. The shim is therefore built a second time
with the cargo feature `checker-annotations` (into `checker-cargo/` in the build directory,
incrementally after the first time), which tells helgrind about its own synchronisation
(src/valgrind.rs: sync::Lock taken and released, the runtime's one-time publication, the
atomics that are benign without ordering); the normal build carries none of it. Only
valgrind's own default suppressions apply (glibc's internals: its mutexes and the thread
stack cache); there is no suppression of ours. Skipped (exit 77) when valgrind or cargo is
missing; with CI=true that is a failure."""
import atexit
import glob
import re
import shutil
import subprocess
from harness import *


def skip(why):
    if os.environ.get("CI") == "true":
        fail(f"{why}, and CI=true")
    print(f"checkers.helgrind: SKIPPED: {why}")
    sys.exit(SKIP)


if "verify_asan_link_order" in os.environ.get("ASAN_OPTIONS", ""):
    # -DAIG_SANITIZE=ON: the programs carry AddressSanitizer, which valgrind cannot run.
    print("checkers.helgrind: SKIPPED: the test programs are built with AddressSanitizer")
    sys.exit(SKIP)
VALGRIND = shutil.which("valgrind") or skip("valgrind is not installed")
CARGO = shutil.which("cargo") or shutil.which(os.path.expanduser("~/.cargo/bin/cargo")) or skip("no cargo")

# The annotated shim: its own target directory, so that the normal build's library (and
# cargo's fingerprints of it) stay as they are.
target = os.path.join(BUILD, "checker-cargo")
build = subprocess.run([CARGO, "build", "--release", "--lib", "-p", "acl-ipc-guard", "--features",
                        "checker-annotations", "--manifest-path", os.path.join(SOURCE, "Cargo.toml")],
                       env=dict(os.environ, CARGO_TARGET_DIR=target), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=1800)
if build.returncode != 0:
    fail(f"building the shim with checker-annotations failed:\n{build.stdout.decode(errors='replace')[-8000:]}")
ANNOTATED = os.path.join(target, "release", "libacl_ipc_guard.so")


def helgrind(work, tag):
    return [VALGRIND, "--tool=helgrind", "--error-exitcode=99", "--trace-children=yes", "--num-callers=30",
            "--track-lockorders=yes", "--history-level=full", f"--log-file={work.file('hg.' + tag + '.%p.log')}"]


def case(tag, argv, mode, expect):
    work = Workdir()
    atexit.register(work.cleanup)
    env = base_env(work, {"ACL_IPC_GUARD_MODE": mode, "ACL_IPC_GUARD_CALLS": "all",
                          "ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "LD_PRELOAD": ANNOTATED})
    p = run(helgrind(work, tag) + argv, env, preload=False, timeout=600)
    reports, processes = [], 0
    for path in sorted(glob.glob(work.file(f"hg.{tag}.*.log"))):
        with open(path) as f:
            text = f.read()
        processes += 1
        summary = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        if summary is None or int(summary.group(1)) != 0:
            reports.append(f"--- {os.path.basename(path)}\n{text}")
    if reports:
        fail(f"{tag}: helgrind found errors (exit {p.returncode}):\n" + "\n".join(reports)[-16000:])
    eq(p.returncode, 0, f"{tag}: exit status under helgrind ({p.stderr_text[-2000:]})")
    for line in expect:
        check(line in p.stdout_text, f"{tag}: {line!r} in the output:\n{p.stdout_text}")
    logs = glob.glob(work.file("log.*.json"))
    eq(len(logs), processes, f"{tag}: every process checked wrote its log")
    for path in logs:
        rs = read_log(path)
        check_seq(rs, f"{tag} {os.path.basename(path)}")
        eq(rs[-1]["event"], "summary", f"{tag}: {os.path.basename(path)} ends with its summary")
        eq(rs[-1]["dropped"], 0, f"{tag}: nothing dropped")
    work.cleanup()


case("audit-threads", [prog("audit_work"), "threads", "4", "100"], "audit", ["calls=100"])
case("faults-threads", [prog("faults"), "threads", "4", "25"], "enforce", ["importer status=0"])
done("checkers.helgrind")
