"""The rule table the shim ships (`acl-ipc-guard rules --json`) is the interface's: the
same 36 ids with the same default severities and the ledger flag on exactly the four
cross-process rules. Every one of them is broken by a scenario of the rules_* tests
(named scenarios of programs/scenario.c, multi-process scenarios of ruleslib.ACTOR, and
exit.leak), and every named scenario the tests use exists in the program."""
import json
from ruleslib import *

out = subprocess.run([CLI, "rules", "--json"], stdout=subprocess.PIPE, check=True).stdout
table = json.loads(out)
eq(len(table), 36, "36 rules")
eq({r["id"]: r["severity"] for r in table}, {k: v[0] for k, v in RULES.items()}, "ids and default severities")
eq(sorted(r["id"] for r in table if r["ledger"]), sorted(LEDGER_RULES), "the ledger rules")

covered = {rule_of(n) for n, _, _ in NAMED} | {d["rule"] for d in ACTOR.values()} | {"exit.leak"}
eq(sorted(set(RULES) - covered), [], "every rule has a scenario that breaks it")
eq(sorted(covered - set(RULES)), [], "no scenario for an unknown rule")

work = Workdir()
names = set(run([SCENARIO, "list"], base_env(work), preload=False, check_rc=0).stdout_text.split())
work.cleanup()
used = {n for n, _, _ in NAMED} | {"exit.leak", "clean-local"}
eq(sorted(used - names), [], "every named scenario the tests use exists")
eq(sorted(names - used), [], "every named scenario is used")
done("rules.coverage")
