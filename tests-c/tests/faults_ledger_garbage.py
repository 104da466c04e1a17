"""Arbitrary bytes as the ledger file (`ledger.v5` in a private 0700 directory, 0600): each
process of a two-process play (the exporter closes while its importer still has the key
open, which only the ledger can see) carries on with every call returning what the
runtime says, the damage is said once per process in one `error` record naming the file,
and the cross-process rules are off (no violation is made up from the garbage).

A head that does not match (random bytes, zeros, an empty file, a flipped magic or
version, a file shorter than its header says) makes the ledger unusable. A valid head
over a garbage table (or over counters no ledger can hold) is a damaged ledger, never a
full one: each process says so once in its `error` record naming the file and in one
line on stderr, and goes on with the cross-process rules off. The coverage-guided
`ledger_file` fuzz target (fuzz/) feeds the same reader many more files."""
import os
import random
import struct
import tempfile
from ruleslib import *

SCRIPT = exporter() + importer() + [("A", "close k"), ("B", "close k"), ("A", "free m")]
work = Workdir()

# A real ledger file (64 keys) left by a process that exited with a key exported.
real_dir = work.file("real")
os.mkdir(real_dir, 0o700)
env = base_env(work, {"ACL_IPC_GUARD_LEDGER": real_dir, "ACL_IPC_GUARD_LEDGER_KEYS": "64", "ACL_IPC_GUARD_LOG": "off"})
run([CLI, "run", "--", prog("scenario"), "exit.leak"], env, preload=False, check_rc=0)
with open(os.path.join(real_dir, "ledger.v5"), "rb") as f:
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
# The counters follow the header, at the first 64-byte boundary after it (format.rs):
# retired, attach_overflow, used, next_fresh, backed, ... (u32 each).
CTL = 128
used, next_fresh, backed = struct.unpack_from("<III", real, CTL + 8)
check(0 < used <= next_fresh <= backed <= 64, f"the real file's counters: used={used} next_fresh={next_fresh} backed={backed}")
DAMAGED = {
    "garbage table": real[:4096] + noise(len(real) - 4096),
    # A head and counters that are right, an index entry naming a slot past the table.
    "index entry out of range": None,
    # Counters no ledger of 64 keys can hold.
    "counter out of range": real[:CTL + 8] + struct.pack("<I", 1000) + real[CTL + 12:],
}
# The index follows the counters (128 bytes), the attach table (4096 entries of 24
# bytes) and the attach entries' liveness words (4096 of 64 bytes): its first empty entry
# (fingerprint 8 bytes, slot + 1 as u32, padding) is made to name slot 65 of 64.
INDEX = CTL + 128 + 4096 * 24 + 4096 * 64
pos = next(INDEX + 16 * i for i in range(128) if real[INDEX + 16 * i + 8:INDEX + 16 * i + 12] == bytes(4))
DAMAGED["index entry out of range"] = real[:pos] + b"\x01" * 8 + struct.pack("<I", 66) + real[pos + 12:]
cases = [(name, data, "unusable") for name, data in UNUSABLE.items()]
cases += [(name, data, "damaged") for name, data in DAMAGED.items()]

for name, data, unusable in cases:
    d = tempfile.mkdtemp(prefix="ledger-", dir=work.path)
    os.chmod(d, 0o700)
    path = os.path.join(d, "ledger.v5")
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    p = Play(SCRIPT, "audit", extra={"ACL_IPC_GUARD_LEDGER": d}, calls="all")
    what = f"ledger file: {name}"
    for role in "AB":
        eq(p.rc(role), 0, f"{what}: {role} carries on")
        check_seq(p.logs[role], f"{what}: {role}")
    for role, cmd, r in p.steps:
        if r is not None and r.call is not None:
            eq(r.call.ret, 0, f"{what}: {role} {cmd}")
    eq(violations(p.logs["A"]), [], f"{what}: no cross-process verdict from a damaged ledger")
    for role in "AB":
        errs = events(p.logs[role], "error")
        eq(len(errs), 1, f"{what}: {role} says it once: {errs}")
        message = errs[0]["message"]
        check(path in message, f"{what}: {role}: the error names the file: {message!r}")
        check("ledger unusable, cross-process rules are off" in message,
              f"{what}: {role}: the error says the rules are off: {message!r}")
        check("full" not in message, f"{what}: {role}: a damaged ledger is not called full: {message!r}")
        told = [l for l in p.stderr[role].splitlines() if "is damaged" in l]
        if unusable == "damaged":
            check(": damaged (" in message, f"{what}: {role}: the error says the file is damaged: {message!r}")
            eq(len(told), 1, f"{what}: {role}: one line on stderr says it:\n{p.stderr[role]}")
            check(path in told[0] and "cross-process rules are off" in told[0],
                  f"{what}: {role}: the stderr line names the file and what it means: {told[0]!r}")
        else:
            eq(told, [], f"{what}: {role}: nothing on stderr calls it damaged")
    exports = [c for c in calls(p.logs["A"], "aclrtIpcMemGetExportKey")]
    eq([c.get("ledger") for c in exports], [None], f"{what}: the export is not called untracked (no full table)")
work.cleanup()
done("faults.ledger.garbage")
