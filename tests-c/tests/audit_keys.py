"""Raw keys stay out of the logs: the keys audit_life prints are nowhere in its JSON logs
nor in the default text log on stderr; each key is named by "fp:" + the first 16 hex
digits of its SHA-256, the same in both processes. With ACL_IPC_GUARD_SHOW_KEYS=1 a `key`
field with the raw key stands beside every key_fp."""
import atexit
import glob
import hashlib
from harness import *


def fp(key):
    return "fp:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def printed_keys(stdout):
    keys = {}
    for line in stdout.splitlines():
        if line.startswith(("key=", "key2=")):
            name, value = line.split("=", 1)
            keys[name] = value
    eq(sorted(keys), ["key", "key2"], "the program printed its keys")
    for v in keys.values():
        eq(len(v), 64, "a key is 64 characters")
    return keys


def key_fields(obj, path="record"):
    """Every (path, object) in a record that holds a key_fp."""
    found = []
    if isinstance(obj, dict):
        if "key_fp" in obj:
            found.append((path, obj))
        for k, v in obj.items():
            found += key_fields(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += key_fields(v, f"{path}[{i}]")
    return found


# Fingerprints only, in JSON files and in the default text on stderr.
for label, log in (("json file", "log.%p.json"), ("text on stderr", None)):
    work = Workdir()
    atexit.register(work.cleanup)
    extra = {"ACL_IPC_GUARD_CALLS": "all", "ACL_IPC_GUARD_LEDGER": "off"}
    if log:
        extra["ACL_IPC_GUARD_LOG"] = work.file(log)
    p = run([prog("audit_life")], base_env(work, extra), check_rc=0)
    keys = printed_keys(p.stdout_text)
    texts = [open(f, encoding="utf-8").read() for f in glob.glob(work.file("log.*.json"))] if log else [p.stderr_text]
    eq(len(texts), 2 if log else 1, f"{label}: logs written")
    for text in texts:
        for name, key in keys.items():
            check(key not in text, f"{label}: raw {name} is not in the log")
            check(key[:16] not in text, f"{label}: no part of the raw {name} is in the log")
        check(fp(keys["key"]) in text, f"{label}: the key's fingerprint {fp(keys['key'])} is in each process's log")
    if log:
        logs = read_logs(work.file("log.*.json"))
        for pid, rs in logs.items():
            for r in rs:
                for path, obj in key_fields(r):
                    check("key" not in obj, f"{label}: no raw key beside {path}.key_fp without SHOW_KEYS")
        fps = [{o["key_fp"] for r in rs for _, o in key_fields(r)} for rs in logs.values()]
        check(fp(keys["key"]) in fps[0] and fp(keys["key"]) in fps[1], f"{label}: the same fingerprint in both processes: {fps}")
        check(fp(keys["key2"]) in set.union(*fps), f"{label}: second key's fingerprint")
        # Violations (exit.leak included) name their key by the same fingerprint in the
        # field and in the message, though the shim knows keys by another hash inside and
        # keeps no raw key for the log without SHOW_KEYS.
        named = [r for rs in logs.values() for r in rs if r["event"] == "violation" and "key_fp" in r]
        check(any(r["rule"] == "exit.leak" for r in named), f"{label}: an exit.leak names its key: {named}")
        for r in named:
            known = {fp(k) for k in list(keys.values()) + ["feedbeef"]}
            check(r["key_fp"] in known, f"{label}: {r['rule']}'s key_fp {r['key_fp']} is one of {known}")
            if r["rule"] == "exit.leak":
                check(r["key_fp"] in r["message"], f"{label}: exit.leak's message names key_fp {r['key_fp']}: {r['message']}")
    for text in texts:
        check("key#" not in text, f"{label}: no internal key identity in the log")
    work.cleanup()

# SHOW_KEYS=1: the raw key beside every key_fp (args, out and violations, leaks included).
work = Workdir()
atexit.register(work.cleanup)
env = base_env(work, {"ACL_IPC_GUARD_CALLS": "all", "ACL_IPC_GUARD_LEDGER": "off",
                      "ACL_IPC_GUARD_SHOW_KEYS": "1", "ACL_IPC_GUARD_LOG": work.file("log.%p.json")})
p = run([prog("audit_life")], env, check_rc=0)
keys = printed_keys(p.stdout_text)
logs = read_logs(work.file("log.*.json"))
eq(len(logs), 2, "SHOW_KEYS: two logs")
seen = set()
missing = []
for pid, rs in logs.items():
    for r in rs:
        for path, obj in key_fields(r):
            if obj["key_fp"] is None:
                continue
            if "key" not in obj:
                missing.append(f"pid {pid} seq {r['seq']} {r['event']} {r.get('rule', r.get('fn'))}: {path}")
                continue
            eq(obj["key_fp"], fp(obj["key"]), f"SHOW_KEYS: {path}.key_fp is the fingerprint of {path}.key")
            seen.add(obj["key"])
check(keys["key"] in seen and keys["key2"] in seen and "feedbeef" in seen, f"SHOW_KEYS: raw keys written: {seen}")
eq(missing, [], "SHOW_KEYS: a raw key beside every key_fp")
work.cleanup()
done("audit.keys")
