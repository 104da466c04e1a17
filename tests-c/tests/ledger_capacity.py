"""The ledger's capacity, through the real preload: 70,000 live keys across two processes.

Process A exports 70,000 keys (open mode) and keeps them open; process B imports the first
and the last, then A closes both while B still has them open.
- At the default capacity (65,536 keys) the first key is tracked (its early close is a
  close.exporter-before-importers), the last is not: A says so once in an `error` record,
  each export the ledger could not hold is marked "ledger":"untracked" in its call record,
  exactly 70,000 - 65,536 of them, and `acl-ipc-guard report` names those keys.
- With ACL_IPC_GUARD_LEDGER_KEYS=131072 every key is tracked: both early closes are
  violations, and nothing is untracked."""
import json
import subprocess
from ruleslib import *

NAME = "ledger.capacity"
N = 70_000
DEFAULT_KEYS = 65_536


class Proc:
    def __init__(self, env):
        e = dict(env)
        e["LD_PRELOAD"] = SHIM
        self.p = subprocess.Popen([prog("many_keys")], env=e, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)

    def do(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def finish(self):
        self.p.stdin.close()
        return self.p.wait(timeout=120)


def job(extra, what):
    work = Workdir()
    keys = work.file("keys.txt")
    logs = {r: work.file(f"log.{r}.json") for r in "AB"}
    env = {r: base_env(work, dict(extra, ACL_IPC_GUARD_LOG=logs[r])) for r in "AB"}
    a, b = Proc(env["A"]), Proc(env["B"])
    eq(a.do(f"export {N} {keys}"), f"ok {N} ret=0", f"{what}: A exports {N} keys")
    for i in (0, N - 1):
        eq(b.do(f"import {keys} {i}"), f"ok import {i} ret=0", f"{what}: B imports key {i}")
    for i in (0, N - 1):
        eq(a.do(f"close {keys} {i}"), f"ok close {i} ret=0", f"{what}: A closes key {i} first")
    for i in (0, N - 1):
        eq(b.do(f"close {keys} {i}"), f"ok close {i} ret=0", f"{what}: B closes key {i}")
    eq(a.do(f"closeall {keys}"), "ok closeall failed=0 free=0", f"{what}: A closes the rest")
    eq(a.finish(), 0, f"{what}: A exit status")
    eq(b.finish(), 0, f"{what}: B exit status")
    with open(keys) as f:
        raw = [line.strip() for line in f]
    eq(len(raw), N, f"{what}: keys written")
    la, lb = read_log(logs["A"]), read_log(logs["B"])
    exports = calls(la, "aclrtIpcMemGetExportKey")
    eq(len(exports), N, f"{what}: one call record per export")
    p = subprocess.run([CLI, "report", "--json", logs["A"], logs["B"]], capture_output=True, text=True, timeout=300)
    rep = json.loads(p.stdout)
    return work, raw, la, lb, exports, p, rep


# The default capacity: the keys past 65,536 are not tracked, and said so.
what = "default capacity"
work, raw, la, lb, exports, p, rep = job({}, what)
untracked = [e["out"]["key_fp"] for e in exports if e.get("ledger") == "untracked"]
eq(len(untracked), N - DEFAULT_KEYS, f"{what}: exports marked untracked")
eq(untracked[-1], fp_of(raw[N - 1]), f"{what}: the last key is untracked")
check(all(e.get("ledger") is None for e in exports[:DEFAULT_KEYS]), f"{what}: the first {DEFAULT_KEYS} are tracked")
errs = events(la, "error")
eq(len(errs), 1, f"{what}: the ledger being full is said once: {errs}")
check("full" in errs[0]["message"] and "ACL_IPC_GUARD_LEDGER_KEYS" in errs[0]["message"],
      f"{what}: the error says what to do: {errs[0]['message']!r}")
early = violations(la, "close.exporter-before-importers")
eq([v["key_fp"] for v in early], [fp_of(raw[0])], f"{what}: only the tracked key's early close is seen")
# B imported the last key, which the full ledger never held: its shim says, once, that the
# cross-process rules cannot see it.
berrs = events(lb, "error")
eq(len(berrs), 1, f"{what}: B's error records: {berrs}")
check("is not in it" in berrs[0]["message"] and "full" in berrs[0]["message"],
      f"{what}: B's error names the full ledger among the causes: {berrs[0]['message']!r}")
named = rep.get("untracked_keys")
check(isinstance(named, list), f"{what}: report --json lists untracked_keys: {sorted(rep)}")
eq(sorted(named), sorted(untracked), f"{what}: report names every untracked key")
text = subprocess.run([CLI, "report", work.file("log.A.json")], capture_output=True, text=True, timeout=300).stdout
check(f"{N - DEFAULT_KEYS} keys were not tracked" in text and fp_of(raw[N - 1]) in text,
      f"{what}: the text report names the untracked keys")
work.cleanup()

# A larger ledger by the switch: all 70,000 are tracked.
what = "ACL_IPC_GUARD_LEDGER_KEYS=131072"
work, raw, la, lb, exports, p, rep = job({"ACL_IPC_GUARD_LEDGER_KEYS": "131072"}, what)
eq([e for e in exports if e.get("ledger")], [], f"{what}: no export untracked")
eq(events(la, "error"), [], f"{what}: no error record")
early = violations(la, "close.exporter-before-importers")
eq(sorted(v["key_fp"] for v in early), sorted([fp_of(raw[0]), fp_of(raw[N - 1])]),
   f"{what}: both early closes are seen")
eq(rep.get("untracked_keys", []), [], f"{what}: report names no untracked key")
work.cleanup()

done(NAME)
