"""No false positives: documented, correct use gives no violation and no error record in
any process, in audit and in enforce mode (where nothing may be blocked), and every call
succeeds as it does without the shim.

- one process: 200 allocations of the three kinds, 50 exports (whole allocations and
  page-aligned sub-ranges, both flags), whitelists, attributes, the inter-server whitelist,
  the same memory exported twice, every key closed and every allocation freed;
- the documented two-process flows, whitelist and no-validation (the `pair` program, and
  the same flow step by step with the bytes checked both ways);
- one key imported three times in one process (same address), closed three times;
- two importers of one key whitelisted in one call;
- a page-aligned sub-range exported and imported;
- bare tgids that are not pids (a container): whitelisting the tgid is right;
- two keys for the same memory, both imported;
- an import closed and its address handed out again by aclrtMalloc: freeing that is right."""
from ruleslib import *


# One process, many allocations and keys.
base = Named("clean-local", preload=False)
eq(base.returncode, 0, "clean-local without the shim")
summary = [l for l in base.lines if l.label == "clean"]
eq([(l.ret, l.vals) for l in summary], [(0, {"allocs": "200", "exports": "50"})], "clean-local: every call succeeded")
for mode in ("audit", "enforce"):
    r = Named("clean-local", mode, calls="all")
    eq(r.returncode, 0, f"clean-local {mode}: exit status")
    eq(stable(r.lines), stable(base.lines), f"clean-local {mode}: same answers as without the shim")
    check_clean_logs(r.logs, f"clean-local {mode}")
    recs = r.records()
    eq(len(calls(recs, "aclrtIpcMemGetExportKey")), 51, f"clean-local {mode}: every export recorded")
    eq(len(calls(recs, "aclrtFree")), 201, f"clean-local {mode}: every free recorded")

# The documented pair, in both modes of the key.
for args in (["whitelist"], ["open", "1"], ["whitelist", "1"]):
    for mode in ("audit", "enforce"):
        work = Workdir()
        env = env_for(work, mode)
        pr = run([prog("pair")] + args, env, check_rc=0)
        check("bytes shared both ways" in pr.stdout_text, f"pair {args} {mode}: the bytes arrived")
        logs = read_logs(work.file("log.*.json"))
        eq(len(logs), 2, f"pair {args} {mode}: two logs")
        check_clean_logs(logs, f"pair {args} {mode}")
        work.cleanup()

FLOWS = {
    "whitelist flow": exporter(0) + whitelisted_importer() + [
        ("B", "read q 0"), ("B", "write q 4096 answer-from-the-importer"), ("B", "close k"),
        ("A", "read m 4096"), ("A", "close k"), ("A", "free m")],
    "no-validation flow": exporter(1) + importer(flags=1) + [
        ("B", "read q 0"), ("B", "write q 4096 answer-from-the-importer"), ("B", "close k"),
        ("A", "read m 4096"), ("A", "close k"), ("A", "free m")],
    "three imports, three closes": exporter(1) + importer() + [
        ("B", "import q k 0"), ("B", "import q k 1"), ("B", "read q 0"),
        ("B", "close k"), ("B", "close k"), ("B", "close k"), ("A", "close k"), ("A", "free m")],
    "two importers": exporter(0) + [
        ("B", "dev"), ("C", "dev"), ("B", "tgid"), ("C", "tgid"), ("A", "setpid k {B.tgid} {C.tgid}"),
        ("B", "setkey k {A.k}"), ("C", "setkey k {A.k}"), ("B", "import q k 0"), ("C", "import q k 0"),
        ("B", "read q 0"), ("C", "read q 0"), ("C", "close k"), ("B", "close k"), ("A", "close k"), ("A", "free m")],
    "sub-range": [("A", "dev"), ("A", "malloc m 16384 align32"), ("A", "write m 8192 shared-by-the-exporter"),
                  ("A", "export k m 8192 4096 1")] + importer() + [
        ("B", "read q 0"), ("B", "close k"), ("A", "close k"), ("A", "free m")],
    "two keys for one allocation": exporter(1) + [
        ("A", "export k2 m 0 8192 1"), ("B", "dev"), ("B", "setkey k {A.k}"), ("B", "setkey k2 {A.k2}"),
        ("B", "import q k 0"), ("B", "import q2 k2 0"), ("B", "read q2 0"), ("B", "close k2"), ("B", "close k"),
        ("A", "close k"), ("A", "close k2"), ("A", "free m")],
    "address handed out again": exporter(1) + importer() + [
        ("B", "read q 0"), ("B", "close k"), ("B", "malloc r 8192"), ("B", "same q r"), ("B", "write r 0 mine"),
        ("B", "free r"), ("A", "close k"), ("A", "free m")],
}
CONTAINER = {"ASCEND_EMU_BARE_TGID_OFFSET": "1000000"}

for name, script in list(FLOWS.items()) + [("whitelist flow in a container", FLOWS["whitelist flow"])]:
    extra = CONTAINER if "container" in name else None
    base = Play(script, preload=False, extra=extra)
    for role, cmd, r in base.steps:
        check(r is not None and r.complete, f"{name}: {role} {cmd} answered")
        if r.call is not None:
            eq(r.call.ret, 0, f"{name} without the shim: {role} {cmd}\n{base.describe()}")
    for mode in ("audit", "enforce"):
        p = Play(script, mode, extra=extra, calls="all")
        what = f"{name} {mode}"
        eq(p.stable(), base.stable(), f"{what}: same answers as without the shim\n{p.describe()}")
        for role in p.actors:
            eq(p.rc(role), 0, f"{what}: {role} exits 0")
        check_clean_logs(p.logs, what)
        reads = [r.vals.get("text") for role, cmd, r in p.steps if cmd.startswith("read")]
        check(all(t in ("shared-by-the-exporter", "answer-from-the-importer") for t in reads),
              f"{what}: the bytes arrived: {reads}")
        if name == "address handed out again":
            eq(answers(p, "B", "same")[0].vals["same"], "1", f"{what}: the import's address was handed out again")
        if "container" in name:
            tg = int(p.key("B", "tgid"))
            eq(tg, p.pid("B") + 1000000, f"{what}: the bare tgid is not the pid")
            setpid = calls(p.logs["A"], "aclrtIpcMemSetImportPid")
            eq(setpid[0]["args"]["pid"], [tg], f"{what}: the tgid was whitelisted")

done("rules.clean")
