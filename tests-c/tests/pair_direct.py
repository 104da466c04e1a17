"""The same pair linked directly against the shim (-lacl_ipc_guard -lascendcl), no preload."""
import subprocess
from harness import *
from pairlogs import check_pair_logs

deps = subprocess.run(["readelf", "-d", prog("pair_direct")], check=True, stdout=subprocess.PIPE, text=True).stdout
needed = [l.split("[")[1].rstrip("]") for l in deps.splitlines() if "(NEEDED)" in l]
check(needed.index("libacl_ipc_guard.so") < needed.index("libascendcl.so"), f"shim linked first: {needed}")
for mode, flags in (("whitelist", 0), ("open", 1)):
    work = Workdir()
    env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json")})
    run([prog("pair_direct"), mode, str(flags)], env, preload=False, check_rc=0)
    check_pair_logs(work, mode, flags, f"direct {mode}")
    work.cleanup()
done("pair.direct")
