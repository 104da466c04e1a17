"""Arbitrary bytes as the ledger file (`ledger.v2` in a private 0700 directory, 0600): each
process of a two-process play (the exporter closes while its importer still has the key
open, which only the ledger can see) carries on with every call returning what the
runtime says, the damage is said once per process in one `error` record naming the file,
and the cross-process rules are off (no violation is made up from the garbage).

A head that does not match (random bytes, zeros, an empty file, a flipped magic or
version, a file shorter than its header says) makes the ledger unusable; a valid head
over a garbage table reads as a table with no free key: the export is untracked (said
once), so the key is not judged across processes. The coverage-guided `ledger_file`
fuzz target (fuzz/) feeds the same reader many more files."""
import os
import random
import tempfile
from ruleslib import *

SCRIPT = exporter() + importer() + [("A", "close k"), ("B", "close k"), ("A", "free m")]
work = Workdir()

# A real ledger file (64 keys) left by a process that exited with a key exported.
real_dir = work.file("real")
os.mkdir(real_dir, 0o700)
env = base_env(work, {"ACL_IPC_GUARD_LEDGER": real_dir, "ACL_IPC_GUARD_LEDGER_KEYS": "64", "ACL_IPC_GUARD_LOG": "off"})
run([CLI, "run", "--", prog("scenario"), "exit.leak"], env, preload=False, check_rc=0)
with open(os.path.join(real_dir, "ledger.v2"), "rb") as f:
    real = f.read()
check(len(real) > 8192, f"a real ledger file was left: {len(real)} bytes")

rnd = random.Random(20261201)
noise = lambda n: bytes(rnd.getrandbits(8) for _ in range(n))
UNUSABLE = {
    "random": noise(8192),
    "zeros": bytes(8192),
    "empty": b"",
    "truncated": real[:100],
    "header only": real[:4096],
    "magic flipped": bytes([real[0] ^ 0xFF]) + real[1:],
    "version flipped": real[:8] + bytes([real[8] ^ 1]) + real[9:],
}
cases = [(name, data, True) for name, data in UNUSABLE.items()]
cases.append(("garbage table", real[:4096] + noise(len(real) - 4096), False))

for name, data, unusable in cases:
    d = tempfile.mkdtemp(prefix="ledger-", dir=work.path)
    os.chmod(d, 0o700)
    path = os.path.join(d, "ledger.v2")
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    p = Play(SCRIPT, "audit", extra={"ACL_IPC_GUARD_LEDGER": d})
    what = f"ledger file: {name}"
    for role in "AB":
        eq(p.rc(role), 0, f"{what}: {role} carries on")
        check_seq(p.logs[role], f"{what}: {role}")
    for role, cmd, r in p.steps:
        if r is not None and r.call is not None:
            eq(r.call.ret, 0, f"{what}: {role} {cmd}")
    eq(violations(p.logs["A"]), [], f"{what}: no cross-process verdict from a damaged ledger")
    said = 0
    for role in "AB":
        errs = events(p.logs[role], "error")
        check(len(errs) <= 1, f"{what}: {role}: said at most once: {errs}")
        for e in errs:
            check(path in e["message"], f"{what}: {role}: the error names the file: {e['message']!r}")
            if unusable:
                check("ledger unusable, cross-process rules are off" in e["message"],
                      f"{what}: {role}: the error says the rules are off: {e['message']!r}")
        said += len(errs)
    if unusable:
        eq(said, 2, f"{what}: each process says it once")
    else:
        check(said >= 1, f"{what}: the damage is said")
work.cleanup()
done("faults.ledger.garbage")
