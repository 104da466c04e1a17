#!/usr/bin/env python3
"""Measures `acl-ipc-guard report` alone, for working on it (not the bench's table):

    bench/report_scale.py [--build DIR] [--pairs N] [--keep DIR] [--args "..."] SIZE_MIB...

For each size, N exporter/importer pairs of `bench logpair` (the bench's report logs, 32
pairs by default) write that many MiB of JSON logs under the shim; then the report reads
them and the line printed gives MB/s (wall clock) and the peak RSS (getrusage of the child).
With --keep DIR the logs of each size stay in DIR/SIZE (and are reused when present)."""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
ap.add_argument("--pairs", type=int, default=32)
ap.add_argument("--keep")
ap.add_argument("--args", default="--json")
ap.add_argument("sizes", type=int, nargs="+")
a = ap.parse_args()
build = os.path.abspath(a.build)
cli = os.path.join(build, "cargo", "release", "acl-ipc-guard")  # what cargo built last
if not os.path.exists(cli):
    cli = os.path.join(build, "bin", "acl-ipc-guard")
bench = os.path.join(build, "bench", "bench")
shim = os.path.join(build, "cargo", "release", "libacl_ipc_guard.so")


def make(dirname, size):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACL_IPC_GUARD_") and k != "LD_AUDIT"}
    env.update(LD_LIBRARY_PATH=os.path.join(build, "bench", "null"), LD_PRELOAD=shim, ACL_IPC_GUARD_LEDGER="off",
               ACL_IPC_GUARD_MODE="audit", ACL_IPC_GUARD_FORMAT="json",
               ACL_IPC_GUARD_LOG=os.path.join(dirname, "job.%p.json"))
    per = str(-(-(size << 20) // a.pairs))
    procs = [subprocess.Popen([bench, "logpair", "--bytes", per], env=env, stdout=subprocess.DEVNULL)
             for _ in range(a.pairs)]
    for p in procs:
        if p.wait() != 0:
            sys.exit(f"bench logpair exited {p.returncode}")


for size in a.sizes:
    d = os.path.join(a.keep, str(size)) if a.keep else tempfile.mkdtemp(prefix="report-scale.")
    if not (a.keep and os.path.isdir(d) and os.listdir(d)):
        os.makedirs(d, exist_ok=True)
        make(d, size)
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".json"))
    total = sum(os.path.getsize(f) for f in files)
    t0 = time.monotonic()
    p = subprocess.Popen([cli, "report"] + a.args.split() + files, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    print(f"{total / 2**20:.1f} MiB in {len(files)} files: {total / 1e6 / wall:.0f} MB/s ({wall:.2f} s wall, "
          f"{usage.ru_utime + usage.ru_stime:.2f} s CPU), peak RSS {usage.ru_maxrss / 1024:.1f} MiB, "
          f"exit {os.waitstatus_to_exitcode(status)}", flush=True)
    if not a.keep:
        shutil.rmtree(d)
