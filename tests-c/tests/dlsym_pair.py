"""A program that never links the runtime (dlopen("libascendcl.so") + dlsym(handle)) and
makes two mistakes, exporter and importer in two processes: through `acl-ipc-guard run`
(and with LD_PRELOAD + LD_AUDIT set by hand) every call is recorded once and both
mistakes are caught; with LD_PRELOAD alone nothing is seen, so it is the audit module that
sees them."""
from dlsymlib import *

PAIR = prog("dl_pair")
ROLES = ("exporter", "importer")


def check_program(r, what):
    """What the program itself reports: the runtime's answers, the bytes, both ways."""
    check("importer read 8192 bytes as written" in r.out, f"{what}: the importer read the exporter's bytes:\n{r.out}")
    check("exporter read the answer" in r.out, f"{what}: the exporter read the importer's answer:\n{r.out}")
    eq(r.made("exporter"), [("aclrtMalloc", 0), ("aclrtIpcMemGetExportKey", 107000), ("aclrtIpcMemGetExportKey", 0),
                            ("aclrtIpcMemSetImportPid", 0), ("aclrtIpcMemClose", 0), ("aclrtFree", 0)],
       f"{what}: the exporter's calls and returns")
    eq(r.made("importer"), [("aclrtDeviceGetBareTgid", 0), ("aclrtIpcMemImportByKey", 0), ("aclrtIpcMemClose", 0),
                            ("aclrtFree", 507899)], f"{what}: the importer's calls and returns")


def check_seen(r, what):
    check_program(r, what)
    pids = {role: int(r.value(role, "pid")) for role in ROLES}
    eq(sorted(r.logs), sorted(pids.values()), f"{what}: a log from each process")
    for role, pid in pids.items():
        recs = r.logs[pid]
        check_once(recs, r.made(role), f"{what} {role}")
        check_emu_once(r.emu_counts(role), r.made(role), f"{what} {role}")
        eq(events(recs, "error"), [], f"{what} {role}: no error records")
    ex, im = r.logs[pids["exporter"]], r.logs[pids["importer"]]
    eq([v["rule"] for v in violations(ex)], ["export.key-len"], f"{what}: the exporter's violations")
    v = violations(ex)[0]
    eq((v["fn"], v["action"]), ("aclrtIpcMemGetExportKey", "reported"), f"{what}: export.key-len record")
    short = calls(ex, "aclrtIpcMemGetExportKey")[0]
    eq((short["args"]["len"], short["ret"]), (64, 107000), f"{what}: the short export's call record")
    check(ex.index(v) < ex.index(calls(ex, "aclrtIpcMemGetExportKey")[1]), f"{what}: violation before the second export")
    eq([v["rule"] for v in violations(im)], ["free.imported"], f"{what}: the importer's violations")
    imported = calls(im, "aclrtIpcMemImportByKey")[0]["out"]["devPtr"]
    eq(calls(im, "aclrtFree")[0]["args"]["devPtr"], imported, f"{what}: the free names the imported pointer")
    export_fp = calls(ex, "aclrtIpcMemGetExportKey")[1]["out"]["key_fp"]
    eq(calls(im, "aclrtIpcMemImportByKey")[0]["args"]["key_fp"], export_fp, f"{what}: the importer imported the exported key")
    for role, recs in ((r, x) for r, x in zip(ROLES, (ex, im))):
        eq(events(recs, "summary")[-1]["violations"], {"exporter": {"export.key-len": 1},
                                                       "importer": {"free.imported": 1}}[role], f"{what} {role}: summary")


check_seen(Run([PAIR], "launcher"), "run")
check_seen(Run([PAIR], "manual"), "LD_PRELOAD + LD_AUDIT")

# The same program preloaded only: the runtime's answers are the same, the shim sees nothing.
r = Run([PAIR], "preload")
check_program(r, "LD_PRELOAD only")
no_calls(r, "LD_PRELOAD only")
for role in ROLES:
    eq(violations(r.logs.get(int(r.value(role, "pid")), [])), [], f"LD_PRELOAD only {role}: no violations")
done("dlsym.pair")
