"""A violation names its key by fingerprint even when another thread closes the key while
the violation is being recorded: free_close_race frees memory on one thread while another
closes the memory's key, round after round. Every free.before-close record (JSON file, and
the text log on stderr with SHOW_KEYS) carries the round's "fp:" fingerprint in key_fp and
in its message, never a null key_fp nor the shim's internal "key#" identity. (Before the
keys were taken while the checks held the process's tables, some 3 to 11 records per
20,000 rounds came out with key_fp null.)"""
import atexit
import hashlib
import re
from harness import *

ROUNDS = 20000


def fp(key):
    return "fp:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def round_keys(stdout, rounds):
    keys = [line[4:] for line in stdout.splitlines() if line.startswith("key=")]
    eq(len(keys), rounds, "the program printed one key per round")
    return {fp(k): k for k in keys}


work = Workdir()
atexit.register(work.cleanup)
quiet = {"ACL_IPC_GUARD_REPEAT_LIMIT": "1000000", "ACL_IPC_GUARD_BACKTRACE": "0"}

# JSON file.
p = run([prog("free_close_race"), str(ROUNDS)],
        base_env(work, dict(quiet, ACL_IPC_GUARD_LOG=work.file("log.%p.json"))), check_rc=0)
fps = round_keys(p.stdout_text, ROUNDS)
records = [r for rs in read_logs(work.file("log.*.json")).values() for r in rs]
found = violations(records, "free.before-close")
check(len(found) > ROUNDS // 10, f"the free came first in some rounds: {len(found)} of {ROUNDS}")
bad = [r for r in found if r.get("key_fp") not in fps or r["key_fp"] not in r["message"]]
eq(bad[:3], [], "every free.before-close names its round's key by fingerprint, in key_fp and message")
check(not any("key#" in r.get("message", "") for r in records), "no internal key identity in any message")

# Text on stderr, raw keys shown.
work.cleanup()
work = Workdir()
p = run([prog("free_close_race"), str(ROUNDS // 2)],
        base_env(work, dict(quiet, ACL_IPC_GUARD_FORMAT="text", ACL_IPC_GUARD_SHOW_KEYS="1")), check_rc=0)
fps = round_keys(p.stdout_text, ROUNDS // 2)
lines = [l for l in p.stderr_text.splitlines() if " VIOLATION " in l and "free.before-close" in l]
check(len(lines) > ROUNDS // 20, f"text: the free came first in some rounds: {len(lines)}")
for line in lines:
    m = re.search(r"key_fp=(\S+)", line)
    named = m.group(1) if m else None
    if named not in fps or f"key={fps[named]}" not in line or "key#" in line:
        fail(f"text: a free.before-close line without its round's fingerprint and raw key: {line}")
check("key#" not in p.stderr_text, "text: no internal key identity")
work.cleanup()
done("audit.keys.race")
