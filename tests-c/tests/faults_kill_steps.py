"""The exporter or the importer killed with SIGKILL after each step of the flow (malloc,
export, setpid, import, close, free), the survivor going on with the rest of its own
steps (a correct program: it closes only what it imported). What the survivor gets:

- the exporter killed before it exported: the importer never gets a key, and has nothing
  to report;
- the exporter killed after the export and before the import (whitelisted or not yet):
  the runtime fails the import, and the importer's only record of it is
  `import.source-gone` (true: the memory's owner is gone), nothing else;
- the exporter killed after the import: the importer reads and closes its import cleanly;
- the importer killed at any point: the exporter whitelists, closes and frees with no
  violation (a dead importer holds nothing);
- every step returns, the killed process dies of SIGKILL, the survivor's log has `seq`
  without gaps, no `error` record and one summary."""
from ruleslib import *

FLOW = [("A", "malloc m 8192"), ("A", "export k m 0 8192 0"), ("A", "setpid k {B.tgid}"),
        ("B", "setkey k {A.k}"), ("B", "import q k 0"), ("B", "close k"), ("A", "close k"), ("A", "free m")]
START = [("A", "dev"), ("B", "dev"), ("B", "tgid")]
EXPORTED = 2   # FLOW[:2] ends with the export
IMPORTED = 5   # FLOW[:5] ends with the import
SOURCE_GONE = "import.source-gone"

for victim, survivor in (("A", "B"), ("B", "A")):
    for i in range(len(FLOW) + 1):
        what = f"{victim} killed after {FLOW[i - 1][1].split()[0] if i else 'start'} (step {i})"
        rest = [s for s in FLOW[i:] if s[0] != victim]
        if victim == "A" and i < EXPORTED:
            rest = []  # no key was ever handed out
        elif victim == "A" and i < IMPORTED:
            rest = [s for s in rest if s[1] != "close k"]  # the import fails: nothing to close
        p = Play(START + FLOW[:i] + [(victim, "KILL")] + rest, "audit")
        eq(p.rc(victim), -signal.SIGKILL, f"{what}: the victim died of SIGKILL")
        eq(p.rc(survivor), 0, f"{what}: the survivor exited normally")
        recs = p.logs[survivor]
        check(recs, f"{what}: the survivor wrote its log")
        check_seq(recs, what)
        eq(events(recs, "error"), [], f"{what}: no error records")
        eq(len(events(recs, "summary")), 1, f"{what}: one summary")
        imports = [r.call.ret for r in answers(p, survivor, "import")]
        if victim == "A" and EXPORTED <= i < IMPORTED:
            check(len(imports) == 1 and imports[0] != 0, f"{what}: the runtime failed the import: {imports}")
            eq([v["rule"] for v in violations(recs)], [SOURCE_GONE], f"{what}: the importer's violations")
        else:
            for role, cmd, r in p.steps:
                if role == survivor and r is not None and r.call is not None:
                    eq(r.call.ret, 0, f"{what}: {role} {cmd}")
            eq([v["rule"] for v in violations(recs)], [], f"{what}: the survivor's violations\n{p.describe()}")
done("faults.kill.steps")
