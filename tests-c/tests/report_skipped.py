"""`acl-ipc-guard report` survives damaged input: a truncated last line (a process killed
mid-write) and a cut line in the middle are listed in `skipped` with their file and line
number, text lines (a text-format log, a stray line) do not stop it, and what can be read
still gives the same verdict and the same ordering violation."""
import atexit
import glob
import json
import os
import re
import subprocess
from harness import *

RULE = "close.exporter-before-importers"

work = Workdir()
atexit.register(work.cleanup)
env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": "off"})
p = run([prog("audit_order"), "bad"], env, check_rc=0, timeout=60)
e, i1, i2 = (int(x) for x in re.search(r"exporter=(\d+) importers=(\d+),(\d+)", p.stdout_text).groups())
paths = {pid: work.file(f"log.{pid}.json") for pid in (e, i1, i2)}
fp = calls(read_log(paths[e]), "aclrtIpcMemGetExportKey")[0]["out"]["key_fp"]


def report(files):
    p = subprocess.run([CLI, "report", "--json"] + files, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    try:
        doc = json.loads(p.stdout.decode())
    except json.JSONDecodeError as err:
        fail(f"report --json output is not JSON ({err}): {p.stdout.decode()!r} {p.stderr.decode()!r}")
    return p.returncode, doc


def ordering(doc):
    return [(v["rule"], v["pid"], v["key_fp"], v["source"]) for v in doc["violations"] if v["rule"] == RULE]


def same_file(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


rc, clean = report(sorted(paths.values()))
eq(rc, 1, "undamaged logs: exit 1")
eq(ordering(clean), [(RULE, e, fp, "recheck")], "undamaged logs: the ordering violation")
eq(clean["skipped"], [], "undamaged logs: nothing skipped")

# The exporter's last record (its summary) cut in the middle, without its newline.
with open(paths[e]) as f:
    lines = f.read().splitlines(True)
n_lines = len(lines)
with open(paths[e], "w") as f:
    f.write("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
# An importer's log with a line cut in the middle of the file (not its last line).
with open(paths[i1]) as f:
    ilines = f.read().splitlines(True)
cut_at = 2  # 1-based line number of the damaged line: the importer's GetBareTgid call
ilines[cut_at - 1] = ilines[cut_at - 1][:25] + "\n"
with open(paths[i1], "w") as f:
    f.write("".join(ilines))
# A stray text line in the other importer's log.
with open(paths[i2]) as f:
    jlines = f.read().splitlines(True)
jlines.insert(1, "importer says hello (not a record)\n")
with open(paths[i2], "w") as f:
    f.write("".join(jlines))
# A text-format log of another run among the inputs.
tenv = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("other.txt"), "ACL_IPC_GUARD_FORMAT": "text",
                       "ACL_IPC_GUARD_LEDGER": "off"})
run([prog("audit_work"), "mix"], tenv, check_rc=0, timeout=60)
text_lines = open(work.file("other.txt")).read().splitlines()
check(len(text_lines) > 5, "a text log to mix in")

rc, doc = report(sorted(paths.values()) + [work.file("other.txt")])
eq(rc, 1, "damaged logs: still exit 1")
eq(ordering(doc), [(RULE, e, fp, "recheck")], "damaged logs: the ordering violation is still found")
skipped = doc["skipped"]
for s in skipped:
    check({"file", "line"} <= set(s), f"a skipped entry has file and line: {s}")
check(any(same_file(s["file"], paths[e]) and s["line"] == n_lines for s in skipped),
      f"the truncated last line is skipped with its file and line {n_lines}: {skipped}")
check(any(same_file(s["file"], paths[i1]) and s["line"] == cut_at for s in skipped),
      f"the cut line in the middle is skipped with its file and line {cut_at}: {skipped}")
check(not any(same_file(s["file"], paths[i1]) and s["line"] != cut_at for s in skipped),
      f"the importer's other lines are read: {skipped}")
eq(doc["keys"][fp], clean["keys"][fp], "the key's timeline is unchanged by the damage")

# The stray line in the importer's log is no text-format line: it is listed, with its line.
check(any(same_file(s["file"], paths[i2]) and s["line"] == 2 for s in skipped),
      f"the stray line is skipped with its file and line 2: {skipped}")
eq(doc["text_lines"], len(text_lines), "the text-format log's lines are counted as text lines, and only they")

# A file that holds only a truncated line, and an empty file: no crash, and no pass either:
# not one record was read, so there is no job to judge (status 2, as for logs that cannot
# be read; it was 0, "no violation", before). The cut line is named on stderr.
with open(work.file("cut.json"), "w") as f:
    f.write('{"ts":"2026-01-01T00:00:00.000000Z","seq":1,"pid":1,')
open(work.file("empty.json"), "w").close()
p = subprocess.run([CLI, "report", "--json", work.file("cut.json"), work.file("empty.json")],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
err = p.stderr.decode()
eq((p.returncode, p.stdout.decode()), (2, ""), f"only damage: exit 2, nothing on stdout ({err!r})")
check("not one JSON record in the logs: 0 text-format lines and 1 other line skipped" in err,
      f"only damage: stderr says what was skipped: {err!r}")
check(f"{work.file('cut.json')}:1: invalid JSON" in err, f"only damage: the cut line is named: {err!r}")
done("report.skipped")
