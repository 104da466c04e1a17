"""Close ordering across processes, judged through the ledger: the exporter must close a
key last, after every importing process that is still alive.

- three processes (one exporter, two importers): a violation naming exactly the importer
  that still holds the key when the exporter closes; none when both closed first;
- an importer holding three references (three imports of one key) still holds it after two
  closes;
- ordering is per key: of two keys, only the one still imported is a violation;
- an importer killed with SIGKILL, or one that exits without closing, holds nothing: the
  exporter's close afterwards is no violation;
- a process importing after the exporter closed is told the source is gone, while the
  correct pair before it stays clean."""
from ruleslib import *


def rules_of(recs):
    return [v["rule"] for v in violations(recs or [])]


def ordering_violation(p, what, holder, not_holders=(), key="k"):
    vs = violations(p.logs["A"])
    eq([v["rule"] for v in vs], ["close.exporter-before-importers"], f"{what}: the exporter's violations\n{p.describe()}")
    check_violation(vs[0], "close.exporter-before-importers", "reported", what, fp_of(p.key("A", key)))
    check(str(p.pid(holder)) in vs[0]["message"], f"{what}: the message names {holder} ({p.pid(holder)}): {vs[0]['message']}")
    for r in not_holders:
        check(str(p.pid(r)) not in vs[0]["message"], f"{what}: the message does not name {r}, who closed: {vs[0]['message']}")


def all_returned_zero(p, what):
    for role, cmd, r in p.steps:
        if r is not None and r.call is not None:
            eq(r.call.ret, 0, f"{what}: {role} {cmd}")


three = exporter(0) + [("B", "dev"), ("C", "dev"), ("B", "tgid"), ("C", "tgid"),
                       ("A", "setpid k {B.tgid} {C.tgid}"), ("B", "setkey k {A.k}"), ("C", "setkey k {A.k}"),
                       ("B", "import q k 0"), ("C", "import q k 1"), ("B", "read q 0"), ("C", "read q 0")]

# C closes late.
p = Play(three + [("B", "close k"), ("A", "close k"), ("C", "close k"), ("A", "free m")], "audit")
all_returned_zero(p, "three, C late")
ordering_violation(p, "three, C late", "C", ["B"])
eq(rules_of(p.logs["B"]), [], "three, C late: B is clean")
eq(rules_of(p.logs["C"]), [], "three, C late: C is clean")

# Both close first.
p = Play(three + [("C", "close k"), ("B", "close k"), ("A", "close k"), ("A", "free m")], "audit")
all_returned_zero(p, "three, both first")
check_clean_logs({r: recs for r, recs in p.logs.items()}, "three, both first")

# Both still hold it: one violation, naming both.
p = Play(three + [("A", "close k"), ("B", "close k"), ("C", "close k"), ("A", "free m")], "audit")
ordering_violation(p, "three, both hold", "B")
ordering_violation(p, "three, both hold", "C")

# Three references in one importer: two closes are not enough.
refs = exporter(1) + [("B", "dev"), ("B", "setkey k {A.k}"), ("B", "import q k 0"), ("B", "import q k 0"),
                      ("B", "import q k 0"), ("B", "close k"), ("B", "close k")]
p = Play(refs + [("A", "close k"), ("B", "close k"), ("A", "free m")], "audit")
eq([r.vals["ptr"] for r in answers(p, "B", "import")], ["new", "same", "same"], "refs: one address, counted")
all_returned_zero(p, "refs")
ordering_violation(p, "refs, one left", "B")
eq(rules_of(p.logs["B"]), [], "refs: the importer is clean")
p = Play(refs + [("B", "close k"), ("A", "close k"), ("A", "free m")], "audit")
all_returned_zero(p, "refs, all closed")
check_clean_logs(p.logs, "refs, all closed")

# Per key: B still holds k2 only.
two = [("A", "dev"), ("A", "malloc m 8192"), ("A", "export k m 0 4096 1"), ("A", "export k2 m 4096 4096 1"),
       ("B", "dev"), ("B", "setkey k {A.k}"), ("B", "setkey k2 {A.k2}"), ("B", "import q k 0"),
       ("B", "import q2 k2 0"), ("B", "close k"), ("A", "close k"), ("A", "close k2"), ("B", "close k2"),
       ("A", "free m")]
p = Play(two, "audit")
all_returned_zero(p, "two keys")
ordering_violation(p, "two keys", "B", key="k2")

# The importer is killed while it holds the key: it holds nothing any more.
p = Play(exporter(0) + whitelisted_importer() + [("B", "read q 0"), ("B", "KILL"), ("A", "close k"), ("A", "free m")],
         "audit")
eq(p.rc("B"), -signal.SIGKILL, "killed importer")
all_returned_zero(p, "killed importer")
eq(rules_of(p.logs["A"]), [], "killed importer: the exporter's close is no violation")
check_clean_logs({"A": p.logs["A"]}, "killed importer")

# The importer exits without closing: its own exit.leak, and no violation for the exporter.
p = Play(exporter(0) + whitelisted_importer() + [("B", "EXIT"), ("A", "close k"), ("A", "free m")], "audit")
eq(p.rc("B"), 0, "importer exited")
eq(rules_of(p.logs["B"]), ["exit.leak"], "importer exited: its own leak")
eq(rules_of(p.logs["A"]), [], "importer exited: the exporter's close is no violation")

# A correct pair, then a latecomer after the exporter closed.
p = Play(exporter(1) + importer() + [("B", "close k"), ("A", "close k"), ("C", "dev"), ("C", "setkey k {A.k}"),
                                      ("C", "import q k 0"), ("A", "free m")], "audit")
eq(answers(p, "C", "import")[0].call.ret, 507899, "latecomer: the runtime refuses it")
eq(rules_of(p.logs["A"]), [], "latecomer: the exporter is clean")
eq(rules_of(p.logs["B"]), [], "latecomer: the first importer is clean")
vs = violations(p.logs["C"])
eq([v["rule"] for v in vs], ["import.source-gone"], "latecomer: source gone")
check_violation(vs[0], "import.source-gone", "reported", "latecomer", fp_of(p.key("A", "k")))

done("rules.ordering")
