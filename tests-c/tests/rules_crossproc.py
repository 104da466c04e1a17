"""The rules that take two processes but no ledger: export.imported (the importer
re-exports what it imported), free.imported (the vendor sample's mistake: the importer
frees the imported pointer after closing it, or while it is still open), setpid.key-unknown
for an importer that tries to whitelist, close.unknown for an importer that closes once
more than it imported, and exit.leak of an import never closed. Each in audit, enforce and
abort mode."""
from ruleslib import *

check_actor_group(["export.imported", "free.imported", "free.imported~open", "setpid.key-unknown~importer",
                   "close.unknown~extra-close"])

# An importer that exits without closing: exit.leak at its exit, in every mode.
script = exporter() + importer() + [("B", "read q 0"), ("B", "EXIT"), ("A", "cleanup")]
base = Play(script, preload=False)
for mode in ("audit", "enforce", "abort"):
    p = Play(script, mode)
    what = f"exit.leak of an import, {mode}"
    eq(p.stable(), base.stable(), f"{what}: the calls answer as without the shim")
    for role in ("A", "B"):
        eq(p.rc(role), 0, f"{what}: {role} exits 0")
    vs = violations(p.logs["B"])
    eq([v["rule"] for v in vs], ["exit.leak"], f"{what}: the importer's violations")
    check_violation(vs[0], "exit.leak", "reported", what, fp_of(p.key("A", "k")))
    eq(p.logs["B"][-1]["leaks"], 1, f"{what}: the importer's summary counts the leak")
    eq(violations(p.logs["A"]), [], f"{what}: the exporter closed after its importer exited")
done("rules.crossproc")
