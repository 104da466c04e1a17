"""Checks of the logs the exporter/importer pair writes, shared by the pair tests."""
from harness import *


def check_pair_logs(work, mode, import_flags, what):
    logs = read_logs(work.file("log.*.json"))
    eq(len(logs), 2, f"{what}: one log per process")
    exporter = next(p for p, rs in logs.items() if calls(rs, "aclrtIpcMemGetExportKey"))
    importer = next(p for p in logs if p != exporter)
    for pid, rs in logs.items():
        eq(rs[0]["event"], "start", f"{what}: first record")
        eq(rs[0]["seq"], 1, f"{what}: start seq")
        eq(rs[0]["mode"], "audit", f"{what}: mode")
        check_seq(rs, what)
        eq(violations(rs), [], f"{what}: violations of pid {pid}")
        eq(events(rs, "error"), [], f"{what}: error records of pid {pid}")
        eq(rs[-1]["event"], "summary", f"{what}: last record")
        eq(rs[-1]["leaks"], 0, f"{what}: leaks")
        for r in rs:
            eq(r["pid"], pid, f"{what}: pid field")
            check(r["ts"].endswith("Z") and len(r["ts"]) == 27, f"{what}: ts format {r['ts']}")
    ex, im = logs[exporter], logs[importer]
    fns = [r["fn"] for r in calls(ex)]
    want = ["aclrtIpcMemGetExportKey"] + (["aclrtIpcMemSetImportPid"] if mode == "whitelist" else []) + ["aclrtIpcMemClose"]
    eq(fns, want, f"{what}: exporter's recorded calls")
    eq([r["fn"] for r in calls(im)], ["aclrtDeviceGetBareTgid", "aclrtIpcMemImportByKey", "aclrtIpcMemClose"],
       f"{what}: importer's recorded calls")
    export = calls(ex, "aclrtIpcMemGetExportKey")[0]
    eq(export["args"]["len"], 65, f"{what}: export len")
    eq(export["args"]["flags"], 0 if mode == "whitelist" else 1, f"{what}: export flags")
    fp = export["out"]["key_fp"]
    check(fp.startswith("fp:") and len(fp) == 19, f"{what}: key_fp {fp}")
    imp = calls(im, "aclrtIpcMemImportByKey")[0]
    eq(imp["args"]["key_fp"], fp, f"{what}: same fingerprint in both processes")
    eq(imp["args"]["flags"], import_flags, f"{what}: import flags")
    check(imp["out"]["devPtr"].startswith("0x"), f"{what}: imported address recorded")
    if mode == "whitelist":
        tgid = calls(im, "aclrtDeviceGetBareTgid")[0]["out"]["pid"]
        eq(calls(ex, "aclrtIpcMemSetImportPid")[0]["args"]["pid"], [tgid], f"{what}: whitelisted pid")
    for r in calls(ex) + calls(im):
        eq(r["ret"], 0, f"{what}: ret of {r['fn']}")
        eq(r["forwarded"], True, f"{what}: forwarded")
        check(isinstance(r["dur_ns"], int) and r["dur_ns"] >= 0, f"{what}: dur_ns")
    return logs
