"""A C++ exporter/importer pair that knows nothing of the shim, under LD_PRELOAD: whitelist
mode, and DISABLE_PID_VALIDATION with import flag 1. The bytes written by one process are
read by the other (the program checks and exits 0), each process writes its own log, and
the records say what happened, with no violation."""
import os
from harness import *
from pairlogs import check_pair_logs


for mode, flags in (("whitelist", 0), ("open", 1)):
    work = Workdir()
    env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json")})
    p = run([prog("pair"), mode, str(flags)], env, check_rc=0)
    check("bytes shared both ways" in p.stdout_text, f"{mode}: program output")
    check_pair_logs(work, mode, flags, f"preload {mode}")
    work.cleanup()

done("pair.preload")
