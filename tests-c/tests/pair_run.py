"""The pair through the launcher: `acl-ipc-guard run --log ... -- pair`, which preloads the
library in front of an existing LD_PRELOAD and exits with the program's status."""
import os
from harness import *
from pairlogs import check_pair_logs

work = Workdir()
env = base_env(work)
run([CLI, "run", "--log", work.file("log.%p.json"), "--", prog("pair"), "whitelist"], env, preload=False, check_rc=0)
check_pair_logs(work, "whitelist", 0, "run whitelist")

# The exit status is the program's; a bad usage of the program exits 2.
p = run([CLI, "run", "--", prog("pair")], env, preload=False)
eq(p.returncode, 2, "program's exit status passed through")

# An existing LD_PRELOAD stays, after ours: the program sees both.
env2 = dict(env)
env2["LD_PRELOAD"] = "libc.so.6"
p = run([CLI, "run", "--mode", "off", "--", "/bin/sh", "-c", 'echo "$LD_PRELOAD $ACL_IPC_GUARD_MODE"'], env2, preload=False, check_rc=0)
eq(p.stdout_text.strip(), f"{os.path.realpath(SHIM)}:libc.so.6 off", "LD_PRELOAD and switches set by run")

# A program that cannot be run: 127, and a message.
p = run([CLI, "run", "--", work.file("no-such-program")], env, preload=False)
eq(p.returncode, 127, "missing program")
check("cannot run" in p.stderr_text, "message for a missing program")
work.cleanup()
done("pair.run")
