"""Python through ctypes (dlopen + dlsym of libascendcl.so), a correct two-process flow
under `acl-ipc-guard run -- python3 app.py`: the calls of both processes recorded once
each, no violation, the bytes arrive both ways. With LD_PRELOAD alone nothing is seen."""
import shutil
import sys

from dlsymlib import *
from ruleslib import check_clean_logs

PYTHON = shutil.which("python3") or sys.executable
APP = [PYTHON, os.path.join(DLOPEN_DIR, "ctypes_pair.py")]


def check_program(r, what):
    check("importer said read written by the ctypes exporter" in r.out, f"{what}: the importer read the exporter's text:\n{r.out}")
    check("exporter read and answered by the ctypes importer" in r.out, f"{what}: the exporter read the answer:\n{r.out}")
    eq(r.made("exporter"), [("aclrtMalloc", 0), ("aclrtIpcMemGetExportKey", 0), ("aclrtIpcMemSetImportPid", 0),
                            ("aclrtIpcMemClose", 0), ("aclrtFree", 0)], f"{what}: the exporter's calls")
    eq(r.made("importer"), [("aclrtDeviceGetBareTgid", 0), ("aclrtIpcMemImportByKey", 0), ("aclrtIpcMemClose", 0)],
       f"{what}: the importer's calls")


r = Run(APP, "launcher")
check_program(r, "run")
pids = {"exporter": int(r.value("exporter", "pid")), "importer": int(r.value("importer", "pid"))}
eq(sorted(r.logs), sorted(pids.values()), "run: a log from each process")
check_clean_logs(r.logs, "run")
for role, pid in pids.items():
    check_once(r.logs[pid], r.made(role), f"run {role}")
ex, im = r.logs[pids["exporter"]], r.logs[pids["importer"]]
tgid = calls(im, "aclrtDeviceGetBareTgid")[0]["out"]["pid"]
eq(calls(ex, "aclrtIpcMemSetImportPid")[0]["args"]["pid"], [tgid], "the exporter whitelisted the importer's bare tgid")
key_fp = calls(ex, "aclrtIpcMemGetExportKey")[0]["out"]["key_fp"]
eq([c["args"]["key_fp"] for c in calls(im) if c["fn"] != "aclrtDeviceGetBareTgid"], [key_fp, key_fp],
   "the importer imported and closed the exported key")

r = Run(APP, "preload")
check_program(r, "LD_PRELOAD only")
no_calls(r, "LD_PRELOAD only")
done("dlsym.ctypes")
