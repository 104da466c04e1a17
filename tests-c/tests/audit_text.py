"""ACL_IPC_GUARD_FORMAT=text (to a file) and the default text log on stderr: one line per
record, each carrying the same facts as the JSON record of the same workload (event, seq,
pid, tid, timestamp, function, return code, rule, severity, action, message, counts); and
a key with control characters in it, shown raw, reaches the terminal escaped, not obeyed."""
import atexit
import re
import subprocess
import unicodedata
from harness import *
from ruleslib import Actor

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def word(value):
    return re.compile(r"(?<![\w.])" + re.escape(str(value)) + r"(?![\w.])")


def facts(r):
    """What a line must say for JSON record r, leaving out what changes from run to run
    (time, ids, addresses, durations, fingerprints of random keys)."""
    f = [r["event"] if r["event"] != "violation" else r["rule"]]
    if r["event"] == "start":
        f += [r["version"], r["mode"], r["exe"], r["ledger"]]
    elif r["event"] == "call":
        f += [r["fn"], r["ret"]]
        f += [v for k, v in r["args"].items() if isinstance(v, int) and not isinstance(v, bool)]
    elif r["event"] == "violation":
        f += [r["severity"], r["action"], r["fn"], r["message"]]
    elif r["event"] == "summary":
        f += [r["calls"], r["blocked"], r["leaks"], r["dropped"]] + list(r["violations"]) + list(r["violations"].values())
    elif r["event"] == "error":
        f += [r["message"]]
    return f


def check_lines(lines, json_records, label):
    eq(len(lines), len(json_records), f"{label}: one line per record")
    fp_close = None
    for i, (line, r) in enumerate(zip(lines, json_records)):
        what = f"{label} line {i + 1}: {line}"
        check(TS.search(line), f"{what}: RFC 3339 UTC timestamp")
        check(word(i + 1).search(line), f"{what}: seq {i + 1}")
        for fact in facts(r):
            if isinstance(fact, str) and " " in fact:
                check(fact in line, f"{what}: says {fact!r}")
            else:
                check(word(fact).search(line), f"{what}: says {fact!r}")
        if r["event"] == "violation" and r["rule"] == "close.unknown":
            fp_close = r["key_fp"]
            check(r["key_fp"] in line, f"{what}: the key's fingerprint")
    check(fp_close is not None, f"{label}: the violation line was checked")
    return lines


work = Workdir()


atexit.register(work.cleanup)
env = base_env(work, {"ACL_IPC_GUARD_LEDGER": "off", "ACL_IPC_GUARD_CALLS": "all"})
run([prog("audit_work"), "mix"], dict(env, ACL_IPC_GUARD_LOG=work.file("log.json")), check_rc=0)
reference = read_log(work.file("log.json"))
check(len(reference) > 10, "the JSON reference run")

# Text to a file.
p = run([prog("audit_work"), "mix"], dict(env, ACL_IPC_GUARD_LOG=work.file("log.txt"), ACL_IPC_GUARD_FORMAT="text"),
        check_rc=0)
eq(p.stderr_text, "", "text file: nothing on stderr")
with open(work.file("log.txt"), encoding="utf-8") as f:
    text = f.read()
check(text.endswith("\n"), "text file ends with a newline")
lines = check_lines(text.splitlines(), reference, "text file")
for line in lines:
    check(not line.lstrip().startswith("{"), f"text, not JSON: {line}")

# The default: text on stderr (no ACL_IPC_GUARD_LOG), the program's stdout untouched.
proc = subprocess.Popen([prog("audit_work"), "mix"], env=dict(env, LD_PRELOAD=SHIM),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out, err = proc.communicate(timeout=60)
eq(proc.returncode, 0, "stderr log: exit status")
baseline = run([prog("audit_work"), "mix"], env, preload=False, check_rc=0).stdout_text
eq(out.decode(), baseline, "stderr log: stdout untouched")
lines = check_lines(err.decode().splitlines(), reference, "stderr")
for line in lines:
    # Single-threaded: the pid and the tid are the same number, said twice.
    check(len(word(proc.pid).findall(line)) >= 2, f"stderr: pid and tid {proc.pid} on {line}")

# A key the program got wrong (garbage in its buffer: an escape sequence, a BEL, a DEL, a C1
# CSI), shown raw (SHOW_KEYS=1) in the text log on stderr: a terminal must show it, not
# obey it. Every control character but the line ends is written as \xNN; the JSON log
# keeps the key exactly (escaped the JSON way).
raw = "k\x1b[2Jgone\x07\x7f\u009bz"
shown = "key=k\\x1b[2Jgone\\x07\\x7f\\x9bz"
for fmt, log in (("text", None), ("json", work.file("terminal.json"))):
    actor_env = dict(env, ACL_IPC_GUARD_SHOW_KEYS="1")
    if log:
        actor_env["ACL_IPC_GUARD_LOG"] = log
    errfile = work.file(f"terminal.{fmt}.err")
    a = Actor(f"terminal-{fmt}", actor_env, errfile=errfile)
    check(a.do("setkey K " + raw).complete, f"{fmt}: the key set")
    check(a.do("close K").complete, f"{fmt}: the close answered")
    eq(a.finish(), 0, f"{fmt}: the actor's exit status")
    with open(errfile, "rb") as f:
        err = f.read().decode("utf-8")
    if log is None:
        violations = [line for line in err.splitlines() if "VIOLATION error close.unknown" in line]
        eq(len(violations), 1, f"text: one close.unknown line on stderr: {err!r}")
        check(shown in violations[0], f"text: the key shown escaped: {violations[0]!r}")
        obeyed = sorted({c for c in err if unicodedata.category(c) == "Cc" and c != "\n"})
        eq(obeyed, [], "text: no control character but line ends on stderr")
    else:
        eq(err, "", "json file: nothing on stderr")
        v = [r for r in read_log(log) if r.get("rule") == "close.unknown"]
        eq(len(v), 1, "json: one close.unknown record")
        eq(v[0].get("key"), raw, "json: the raw key, exactly")
work.cleanup()
done("audit.text")
