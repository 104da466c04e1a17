"""abort mode always writes the record that explains the abort, with its backtrace, even
past the repeat limit and with backtraces otherwise off."""
from harness import *

work = Workdir()
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.json"), "ACL_IPC_GUARD_MODE": "abort",
                      "ACL_IPC_GUARD_REPEAT_LIMIT": "0", "ACL_IPC_GUARD_BACKTRACE": "0"})
p = run([prog("transparency")], env)
eq(p.returncode, -6, "SIGABRT")
recs = read_log(work.file("log.json"))
v = violations(recs)
eq(len(v), 1, "one violation record")
eq((v[0]["rule"], v[0]["action"]), ("bare-tgid.out-null", "aborted"), "the aborting violation")
check(isinstance(v[0].get("backtrace"), list) and v[0]["backtrace"], "with a backtrace")
eq(recs[-1]["event"], "summary", "then the summary")
work.cleanup()
done("audit.abort.limit")
