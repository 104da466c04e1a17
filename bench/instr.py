#!/usr/bin/env python3
"""The shim's cost per call in instructions, counted by callgrind: repeatable on any
machine, loaded or not (the timings of scripts/bench.sh are not). Runs bench/instr (built
by CMake) plainly and under LD_PRELOAD of the shim in each mode, counts the instructions of
the measured loop only, and prints per call pair: the calling thread's instructions added
over the direct call, and the log writer thread's.

    bench/instr.py [--build build] [-n 2000] [--only malloc,export,import]
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

MODES = [
    ("off", {"ACL_IPC_GUARD_MODE": "off"}),
    ("audit, log off", {"ACL_IPC_GUARD_MODE": "audit", "ACL_IPC_GUARD_LOG": "off"}),
    ("audit, JSON file", {"ACL_IPC_GUARD_MODE": "audit", "ACL_IPC_GUARD_LOG": "{work}/log.%p.json"}),
    ("enforce, JSON file", {"ACL_IPC_GUARD_MODE": "enforce", "ACL_IPC_GUARD_LOG": "{work}/log.%p.json"}),
]

WORKLOADS = [
    ("malloc", "malloc+free pair", []),
    ("malloc", "malloc+free pair, 100,000 live", ["100000"]),
    ("export", "export+close, 100 live keys", ["100"]),
    ("import", "import+close (2 processes)", []),
]


def totals(path):
    """The instruction count of one callgrind output file."""
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    return 0


def count(binary, argv, env, work):
    """(the calling thread's instructions in the measured loop, the other threads' in the
    whole run)."""
    out = os.path.join(work, "cg")
    for old in glob.glob(out + ".*"):
        os.unlink(old)
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                             f"--callgrind-out-file={out}.%p", binary] + argv,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {err[-2000:]}")
    # The loop's dump is part 1 of the calling thread; the other threads (the log writer)
    # are counted whole, at exit.
    main, others = 0, 0
    for path in glob.glob(f"{out}.{proc.pid}.1-01"):
        main += totals(path)
    for path in glob.glob(f"{out}.{proc.pid}-*"):
        if not path.endswith("-01"):
            others += totals(path)
    return main, others


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        print("instr.py: valgrind is not installed", file=sys.stderr)
        return 77
    build = os.path.abspath(args.build)
    binary = os.path.join(build, "bench", "instr")
    shim = os.path.join(build, "lib", "libacl_ipc_guard.so")
    only = set(filter(None, args.only.split(",")))
    work = tempfile.mkdtemp(prefix="aig-instr.")
    try:
        print(f"instructions per call pair (n={args.n}): calling thread added over direct / writer thread")
        print("| workload | " + " | ".join(m for m, _ in MODES) + " |")
        print("|---|" + "---|" * len(MODES))
        for op, label, extra in WORKLOADS:
            if only and op not in only:
                continue
            base = dict(os.environ)
            for k in list(base):
                if k.startswith("ACL_IPC_GUARD_") or k in ("LD_PRELOAD", "LD_AUDIT"):
                    del base[k]
            direct, _ = count(binary, [op, str(args.n)] + extra, base, work)
            cells = []
            for _, menv in MODES:
                env = dict(base)
                env["LD_PRELOAD"] = shim
                ledger = tempfile.mkdtemp(prefix="ledger.", dir=work)
                env["ACL_IPC_GUARD_LEDGER"] = ledger
                for k, v in menv.items():
                    env[k] = v.format(work=work)
                shimmed, writer = count(binary, [op, str(args.n)] + extra, env, work)
                if writer:
                    # The writer's share of the loop: a run with 3n calls, minus this one.
                    env["ACL_IPC_GUARD_LEDGER"] = tempfile.mkdtemp(prefix="ledger.", dir=work)
                    _, writer3 = count(binary, [op, str(3 * args.n)] + extra, env, work)
                    writer = (writer3 - writer) / 2
                cells.append(f"{(shimmed - direct) / args.n:.0f} / {writer / args.n:.0f}")
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
