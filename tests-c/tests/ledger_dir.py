"""The ledger directory rules, through the real preload: a directory the user made with
mkdir (0755, 0750) works, cross-process rules included; a symbolic link, one writable by
group or others, one owned by another user, and one that cannot be made are refused: the
cross-process rules are off, an `error` record says why, and one line on stderr says how
to fix it. Each case runs
the same two-process play: the exporter closes while its importer still has the key open,
which only the ledger can see."""
import os
import tempfile
from ruleslib import *

NAME = "ledger.dir"
RULE = "close.exporter-before-importers"
SCRIPT = exporter() + importer() + [("A", "close k"), ("B", "close k"), ("A", "free m")]

base = tempfile.mkdtemp(prefix="aig-ledgerdir-")
os.chmod(base, 0o755)


def play(ledger):
    return Play(SCRIPT, "audit", extra={"ACL_IPC_GUARD_LEDGER": ledger})


def accepted(ledger, what):
    p = play(ledger)
    eq([v["rule"] for v in violations(p.logs["A"])], [RULE], f"{what}: the early close is seen")
    for role in "AB":
        eq(events(p.logs[role], "error"), [], f"{what}: {role}: no error record")
        eq(p.stderr[role], "", f"{what}: {role}: nothing on stderr")
    check(os.path.exists(os.path.join(ledger, "ledger.v5")) or not os.listdir(ledger),
          f"{what}: only the ledger file in the directory: {os.listdir(ledger)}")


def refused(ledger, what, reason, fix):
    p = play(ledger)
    for role in "AB":
        errs = events(p.logs[role], "error")
        eq(len(errs), 1, f"{what}: {role}: one error record: {errs}")
        m = errs[0]["message"]
        check("ledger unusable" in m and reason in m, f"{what}: {role}: the error says why: {m!r}")
        lines = [line for line in p.stderr[role].splitlines() if line.strip()]
        eq(len(lines), 1, f"{what}: {role}: one line on stderr: {lines}")
        check(ledger in lines[0] and fix in lines[0], f"{what}: {role}: the line says how to fix it: {lines[0]!r}")
    eq(violations(p.logs["A"]), [], f"{what}: the cross-process rule is off")
    eq(p.rc("A"), 0, f"{what}: the program carries on")


for mode in (0o755, 0o750, 0o700):
    d = os.path.join(base, f"made-{mode:o}")
    os.mkdir(d)
    os.chmod(d, mode)
    accepted(d, f"a directory with mode {mode:04o}")
    eq(os.stat(d).st_mode & 0o7777, mode, f"mode {mode:04o}: left as the user made it")

missing = os.path.join(base, "missing")
accepted(missing, "a missing directory")
eq(os.stat(missing).st_mode & 0o777, 0o700, "a missing directory is created 0700")

# A directory that cannot be made (its parent does not exist): the same as a refused one,
# an error record and one line on stderr, so that the user learns the rules are off.
refused(os.path.join(base, "no", "such", "dir"), "a directory whose parent is missing", "No such file",
        "ACL_IPC_GUARD_LEDGER")

target = os.path.join(base, "target")
os.mkdir(target, 0o700)
link = os.path.join(base, "link")
os.symlink(target, link)
refused(link, "a symbolic link", "symbolic link", "not a symbolic link")

for mode in (0o775, 0o757, 0o777, 0o1777):
    d = os.path.join(base, f"open-{mode:o}")
    os.mkdir(d)
    os.chmod(d, mode)
    refused(d, f"mode {mode:04o}", f"mode {mode:04o}", "chmod go-w")
    eq(os.listdir(d), [], f"mode {mode:04o}: nothing written into it")

if os.geteuid() == 0:
    theirs = os.path.join(base, "theirs")
    os.mkdir(theirs, 0o700)
    os.chown(theirs, 12345, 12345)
    refused(theirs, "a directory of another user", "owned by uid 12345", "owned by you")
else:
    print("ledger.dir: not root: the other-owner case is covered by the ledger unit tests only")

import shutil
shutil.rmtree(base, ignore_errors=True)
done(NAME)
