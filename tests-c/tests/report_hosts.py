"""`acl-ipc-guard report` over the logs of one job run on two "hosts" whose pids collide:
a process is host + pid + start, so the report keeps them apart and judges each one for
what it did.

The two hosts are made for real where the machine allows it: each run of audit_order
(one exporter, two importers started by fork + exec) gets a UTS namespace with its own
host name and a pid namespace of its own, so both runs have the same pids (the exporter
is pid 1) and the shim writes the namespace's host name into every start record. The
emulator's bare tgids are moved apart (ASCEND_EMU_BARE_TGID_OFFSET), as a host's pids
differ from a container's. Where namespaces cannot be made, both runs go plainly and the
second set of logs is rewritten instead: its host field becomes node-b and its pids are
mapped onto the first run's (each role's pid onto the same role's), which is what the
namespaces would have given.

node-a runs the correct order (both importers close, then the exporter); node-b runs the
bad one (the exporter closes while an importer still has the key)."""
import atexit
import glob
import json
import os
import re
import subprocess
from harness import *

RULE = "close.exporter-before-importers"


def new_work():
    w = Workdir()
    atexit.register(w.cleanup)
    return w


def namespaces_work():
    p = subprocess.run(["unshare", "--uts", "--pid", "--fork", "--mount-proc", "true"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p.returncode == 0


NS = namespaces_work()


def run_job(kind, host, offset):
    """One run of audit_order on `host`: its logs {pid: records} and (exporter, importers)."""
    work = new_work()
    env = base_env(work, {"ACL_IPC_GUARD_LOG": work.file("log.%p.json"), "ACL_IPC_GUARD_LEDGER": "off",
                          "ASCEND_EMU_BARE_TGID_OFFSET": offset})
    cmd = [prog("audit_order"), kind]
    if NS:
        cmd = ["unshare", "--uts", "--pid", "--fork", "--mount-proc",
               "sh", "-c", f'hostname {host} && exec "$0" "$@"'] + cmd
    p = run(cmd, env, check_rc=0, timeout=60)
    m = re.search(r"exporter=(\d+) importers=(\d+),(\d+)", p.stdout_text)
    check(m, f"{host}: audit_order output: {p.stdout_text}")
    roles = [int(x) for x in m.groups()]
    return work, roles


def rewrite(work, roles, onto, host):
    """The fallback: the logs of `work` as if written on `host` with the pids of `onto`."""
    to = dict(zip(roles, onto))
    for path in glob.glob(work.file("log.*.json")):
        out = []
        for r in read_log(path):
            r["pid"] = to[r["pid"]]
            r["tid"] = to.get(r["tid"], r["tid"])
            if r["event"] == "start":
                r["host"] = host  # bare tgids stay apart: the emulator's offsets differ
            out.append(json.dumps(r))
        os.unlink(path)
        with open(work.file(f"log.{r['pid']}.json"), "w") as f:
            f.write("\n".join(out) + "\n")


def report(paths, json_out=True):
    p = subprocess.run([CLI, "report"] + (["--json"] if json_out else []) + paths,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    out = p.stdout.decode()
    return p.returncode, (json.loads(out) if json_out else out)


wa, ra = run_job("good", "node-a", 0)
wb, rb = run_job("bad", "node-b", 100000)
if not NS:
    rewrite(wb, rb, ra, "node-b")
    rb = ra
    host_a = os.uname().nodename
else:
    host_a = "node-a"
eq(ra, rb, f"the two hosts' pids collide (namespaces: {NS})")
files_a = sorted(glob.glob(wa.file("log.*.json")))
files_b = sorted(glob.glob(wb.file("log.*.json")))
eq(len(files_a), 3, "node-a: three logs")
eq(len(files_b), 3, "node-b: three logs")
for host, files in ((host_a, files_a), ("node-b", files_b)):
    for f in files:
        rs = read_log(f)
        eq((rs[0]["event"], rs[0]["host"]), ("start", host), f"{f}: start names host {host}")

# Each host alone: node-a is correct, node-b has the close-order violation.
code_a, doc_a = report(files_a)
code_b, doc_b = report(files_b)
eq((code_a, doc_a["violations"]), (0, []), "node-a alone: no violation")
eq(code_b, 1, "node-b alone: an error violation")
eq([(v["rule"], v["pid"], v["source"]) for v in doc_b["violations"]], [(RULE, rb[0], "recheck")],
   "node-b alone: the exporter's close")

# Together: six processes, node-b's exporter alone is at fault, each key on its own host.
code, doc = report(files_a + files_b)
eq(code, 1, "both hosts: exit status 1")
procs = doc["processes"]
eq(len(procs), 6, f"both hosts: six processes: {[(p['host'], p['pid']) for p in procs]}")
eq(sorted((p["host"], p["pid"]) for p in procs), sorted([(host_a, x) for x in ra] + [("node-b", x) for x in rb]),
   "both hosts: processes by host and pid")
eq(len({p["tag"] for p in procs}), 6, "both hosts: six distinct tags")
eq([(v["rule"], v["pid"], v["host"], v["source"]) for v in doc["violations"]], [(RULE, rb[0], "node-b", "recheck")],
   "both hosts: only node-b's exporter broke the order")
culprit = procs[doc["violations"][0]["process"]]
eq((culprit["host"], culprit["pid"]), ("node-b", rb[0]), "both hosts: the violation's process")
check(re.search(r"importing process\(es\) \[\d+@node-b\]", doc["violations"][0]["message"]),
      f"both hosts: the importer named with its host: {doc['violations'][0]['message']}")
eq(len(doc["keys"]), 2, "both hosts: two keys")
for fp, evs in doc["keys"].items():
    hosts = {e["host"] for e in evs}
    eq(len(hosts), 1, f"key {fp}: events of one host only ({hosts})")
eq(doc["gaps"], [], "both hosts: no gap")
# The importers' bare tgids come from their start records (emulator offset on node-b).
for p in procs:
    off = 100000 if p["host"] == "node-b" else 0
    if NS:
        eq(p["bare_tgid"], p["pid"] + off, f"{p['tag']}: bare tgid of its start record")
code, text = report(files_a + files_b, json_out=False)
check(f"processes:          6 on 2 hosts ({', '.join(sorted([host_a, 'node-b']))})" in text, f"text header:\n{text}")
check(f"pid {rb[0]}@node-b" in text and f"pid {ra[0]}@{host_a}" in text, f"text names processes by host:\n{text}")
done("report.hosts")
