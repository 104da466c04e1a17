"""The liveness words where they could go wrong, through the real preload, the real
ledger file and real processes (found by review):

  - an importer B whose thread holding its liveness word then installs a robust list of
    its own (`set_robust_list`, as some runtimes do) and is SIGKILLed: the kernel does
    not clear B's word, which keeps saying "alive". The exporter A's close must still
    find B gone (no `close.exporter-before-importers`, and in `enforce` the close is not
    blocked): only the question of an import trusts the word;
  - the list links glibc keeps inside A's held word (bytes of the shared ledger file) are
    overwritten by another process while A runs: A must still end normally (exit 0), as
    it must with any bytes in the file. The shim never unlocks the word from user space,
    which would make glibc follow those links."""
import os
import struct
from ruleslib import *

NAME = "ledger.liveness.faults"
SIZE = 8192
FUTEX_TID_MASK = 0x3FFFFFFF


def job(mode):
    work = Workdir()
    logs = {}

    def env(name):
        logs[name] = work.file(f"log.{name}.json")
        return base_env(work, {"ACL_IPC_GUARD_LOG": logs[name], "ACL_IPC_GUARD_MODE": mode})

    return work, logs, env


def exporter(env, what):
    a = Actor("A", env("A"))
    eq(a.do("dev").ret, 0, f"{what}: A set device")
    eq(a.do(f"malloc m {SIZE * 8}").ret, 0, f"{what}: A malloc")
    r = a.do(f"export k1 m 0 {SIZE} 1")
    check(r.complete and r.vals.get("key"), f"{what}: A exports: {r.lines}")
    return a, r.vals["key"]


def importer_with_own_robust_list(mode):
    what = f"importer with its own robust list, SIGKILLed ({mode})"
    work, logs, env = job(mode)
    try:
        a, key = exporter(env, what)
        b = Actor("B", env("B"))
        eq(b.do("dev").ret, 0, f"{what}: B set device")
        b.do(f"setkey i0 {key}")
        eq(b.do("import q0 i0 0").ret, 0, f"{what}: B imports")
        r = b.do("own-robust-list")
        eq(r.vals.get("r"), "0", f"{what}: B's thread has a robust list of its own: {r.lines}")
        b.kill()
        r = a.do("close k1")
        eq(r.ret, 0, f"{what}: A's close is forwarded and succeeds")
        eq(a.finish(), 0, f"{what}: A exits")
        got = [v["rule"] for v in violations(read_log(logs["A"]))]
        eq(got.count("close.exporter-before-importers"), 0,
           f"{what}: B is gone, so A's close is in order: {got}")
    finally:
        work.cleanup()


def held_word_offset(path, tid):
    """Offset of the robust mutex in the ledger file that thread `tid` holds: glibc keeps
    the owner's thread id in both `__lock` (offset 0) and `__owner` (offset 8)."""
    data = open(path, "rb").read()
    found = [o for o in range(0, len(data) - 40, 8)
             if struct.unpack_from("<I", data, o)[0] & FUTEX_TID_MASK == tid
             and struct.unpack_from("<i", data, o + 8)[0] == tid]
    return found


def damaged_links_of_a_held_word():
    what = "list links of A's held word overwritten"
    work, logs, env = job("audit")
    try:
        a, _ = exporter(env, what)
        path = os.path.join(work.ledger, "ledger.v5")
        at = held_word_offset(path, a.pid)
        eq(len(at), 1, f"{what}: A's main thread holds one mutex in the file: {at}")
        with open(path, "r+b") as f:
            f.seek(at[0] + 24)  # glibc's __list (x86_64, aarch64): next and prev
            f.write(b"\x41" * 16)
        eq(a.do("close k1").ret, 0, f"{what}: A closes")
        eq(a.do("free m").ret, 0, f"{what}: A frees")
        eq(a.finish(), 0, f"{what}: A ends normally")
    finally:
        work.cleanup()


if __name__ == "__main__":
    importer_with_own_robust_list("audit")
    importer_with_own_robust_list("enforce")
    damaged_links_of_a_held_word()
    done(NAME)
