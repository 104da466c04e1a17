"""free.before-close, bare-tgid.*, setattr.args, interserver.args (every way of breaking
them) in audit, enforce and abort mode; bare-tgid.invalid is judged after the call, so in
enforce the runtime was called and the program still gets 100000. exit.leak: a key left
open is reported at exit (fn "exit") in every mode, never blocked or aborted."""
from ruleslib import *

check_named_group(("free.", "bare-tgid.", "setattr.", "interserver."))

base = Named("exit.leak", preload=False)
eq(base.returncode, 0, "exit.leak without the shim")
for mode in ("audit", "enforce", "abort"):
    r = Named("exit.leak", mode)
    what = f"exit.leak {mode}"
    eq(r.returncode, 0, f"{what}: exit status")
    eq(stable(r.lines), stable(base.lines), f"{what}: the calls return as without the shim")
    recs = r.records()
    vs = violations(recs)
    eq([v["rule"] for v in vs], ["exit.leak"], f"{what}: violations")
    check_violation(vs[0], "exit.leak", "reported", what, fp_of(r.key("export")))
    check(recs.index(vs[0]) > max(recs.index(c) for c in calls(recs)), f"{what}: reported after the last call")
    eq(recs[-1]["event"], "summary", f"{what}: summary last")
    eq(recs[-1]["leaks"], 1, f"{what}: summary leaks")
    eq(recs[-1]["violations"], {"exit.leak": 1}, f"{what}: summary violations")
    eq(recs[-1]["blocked"], 0, f"{what}: nothing blocked")
done("rules.misc")
