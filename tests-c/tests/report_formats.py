"""`acl-ipc-guard report` reads the JSON format only. A job whose log was written in the
text format (ACL_IPC_GUARD_FORMAT=text) is not judged: with not one JSON record in all its
inputs the report says so on stderr (how many text-format and other lines it skipped, and
that it reads ACL_IPC_GUARD_FORMAT=json), prints nothing and exits 2, even though the text
log holds an error violation; it used to print "processes: 0 ... verdict: OK" and exit 0.
With one JSON log among the inputs, the text lines are counted and skipped as before, and
a line that is neither a record nor a text-format line is listed with its file and line."""
import atexit
import json
import subprocess
from harness import *

work = Workdir()
atexit.register(work.cleanup)


def job(log, fmt):
    env = base_env(work, {"ACL_IPC_GUARD_LOG": log, "ACL_IPC_GUARD_FORMAT": fmt, "ACL_IPC_GUARD_LEDGER": "off"})
    # Three exports of size 0: three export.size-zero violations, an error.
    run([prog("audit_work"), "repeat", "3"], env, check_rc=0, timeout=60)


def report(*args):
    p = subprocess.run([CLI, "report", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


job(work.file("job.json"), "json")
job(work.file("job.txt"), "text")
text = open(work.file("job.txt")).read().splitlines()
check(len(text) > 5 and all(l.startswith("[acl-ipc-guard] ") for l in text), f"a text-format log: {text[:3]}")
check(any("export.size-zero" in l for l in text), "the text log holds the violations")

# The job in JSON: judged, and it fails.
rc, out, err = report(work.file("job.json"))
eq(rc, 1, f"JSON log: exit 1 ({err!r})")
check("export.size-zero (error): 3" in out, f"JSON log: the violations: {out}")

# The same job in text: not judged, not passed; text and --json alike.
for args in ([], ["--json"]):
    rc, out, err = report(*args, work.file("job.txt"))
    eq((rc, out), (2, ""), f"text log {args}: exit 2, nothing on stdout (stderr {err!r})")
    check(f"not one JSON record in the logs: {len(text)} text-format lines and 0 other lines skipped" in err,
          f"text log {args}: stderr counts the lines: {err!r}")
    check("ACL_IPC_GUARD_FORMAT=json" in err, f"text log {args}: stderr names the format to use: {err!r}")
    check("verdict" not in err and "OK" not in err, f"text log {args}: no verdict: {err!r}")

# Text log, empty file and a file of other lines, from standard input too: still exit 2.
open(work.file("empty.json"), "w").close()
with open(work.file("junk.log"), "w") as f:
    f.write("starting job\n\nPASS\n")
p = subprocess.run([CLI, "report", work.file("empty.json"), "-", work.file("junk.log")],
                   input=open(work.file("job.txt"), "rb").read(),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
err = p.stderr.decode()
eq((p.returncode, p.stdout.decode()), (2, ""), f"text on stdin and other files: exit 2 ({err!r})")
check(f"{len(text)} text-format lines and 2 other lines skipped" in err, f"the lines counted: {err!r}")
for line in (1, 3):
    check(f"{work.file('junk.log')}:{line}: not a JSON record" in err, f"junk.log:{line} named: {err!r}")

# A JSON log among them: the job is judged; the text lines are counted, the other lines
# listed with file and line, not counted as text.
rc, out, err = report("--json", work.file("job.txt"), work.file("job.json"), work.file("junk.log"))
eq(rc, 1, f"with a JSON log: judged, exit 1 ({err!r})")
doc = json.loads(out)
eq(doc["text_lines"], len(text), "with a JSON log: the text-format lines counted")
eq(sorted((s["file"], s["line"]) for s in doc["skipped"]),
   [(work.file("junk.log"), 1), (work.file("junk.log"), 3)], "with a JSON log: the other lines skipped")
eq(sorted({v["rule"] for v in doc["violations"]} & {"export.size-zero"}), ["export.size-zero"],
   "with a JSON log: its violations")
done("report.formats")
