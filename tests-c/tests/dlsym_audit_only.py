"""The audit module on its own: it exports only the rtld-audit entry points; with LD_AUDIT
set and no shim loaded, programs run exactly as without it (same output, same runtime
counts, nothing logged). The launcher puts it in front of an existing LD_AUDIT, and
without it still runs the program, saying once that dlsym-resolved calls go unseen."""
import shutil
import subprocess
import sys

from dlsymlib import *

out = subprocess.run(["nm", "-D", "--defined-only", AUDIT], check=True, stdout=subprocess.PIPE, text=True).stdout
eq(sorted(l.split()[-1] for l in out.splitlines() if l.strip()),
   ["la_objclose", "la_objopen", "la_symbind64", "la_version"], "the audit module's exports")
soname = subprocess.run(["readelf", "-d", AUDIT], check=True, stdout=subprocess.PIPE, text=True).stdout
check("Library soname: [libacl_ipc_guard_audit.so]" in soname, "the audit module's soname")


def normal(r):
    """The program's output, sorted (two processes share the pipe) and without pid lines."""
    return sorted(l for l in (r.out + r.err).splitlines() if " pid " not in l)


PYTHON = shutil.which("python3") or sys.executable
for cmd in ([prog("dlsym_mix")], [prog("dl_pair")], [prog("pair"), "whitelist"],
            [PYTHON, os.path.join(DLOPEN_DIR, "ctypes_pair.py")], [prog("dl_reopen"), "global"]):
    name = os.path.basename(cmd[-1] if cmd[0] == PYTHON else cmd[0])
    plain = Run(cmd, "none")
    audited = Run(cmd, "audit-only")
    check(plain.out, f"{name}: the program printed something")
    eq(normal(audited), normal(plain), f"{name}: LD_AUDIT without the shim changes nothing")
    eq(audited.logs, {}, f"{name}: nothing logged without the shim")
mix = Run([prog("dlsym_mix")], "audit-only")
for way in ("linked", "handle", "default", "next", "path"):
    eq(mix.value(way, "from"), "libascendcl.so", f"LD_AUDIT only: {way} finds the runtime's own function")

work = Workdir()
env = base_env(work)
# An existing LD_AUDIT stays, after ours, without a second copy of ours.
other = work.file("other_audit.so")
shutil.copy(AUDIT, other)
env2 = dict(env, LD_AUDIT=f"{other}:{os.path.realpath(AUDIT)}")
p = run([CLI, "run", "--", "/bin/sh", "-c", 'echo "$LD_AUDIT"'], env2, preload=False, check_rc=0)
eq(p.stdout_text.strip(), f"{os.path.realpath(AUDIT)}:{other}", "LD_AUDIT set by run")
eq(p.stderr_text, "", "run: no warning when the audit module is found")

# A launcher and library without the audit module beside them: one line of warning, the
# program runs as without it, its dlsym-resolved calls unseen.
os.mkdir(work.file("bin"))
os.mkdir(work.file("lib"))
shutil.copy(CLI, work.file("bin"))
shutil.copy(SHIM, work.file("lib"))
env3 = dict(env, ACL_IPC_GUARD_LOG=work.file("log.%p.json"), ACL_IPC_GUARD_CALLS="all")
p = run([work.file("bin/acl-ipc-guard"), "run", "--", prog("dl_pair")], env3, preload=False, check_rc=0)
warning = [l for l in p.stderr_text.splitlines() if l.startswith("acl-ipc-guard:")]
eq(len(warning), 1, f"one line of warning:\n{p.stderr_text}")
check("libacl_ipc_guard_audit.so not found" in warning[0] and "dlsym" in warning[0] and "will not be seen" in warning[0],
      f"the warning says what is missing and what it means: {warning[0]}")
check("exporter read the answer" in p.stdout_text, f"the program ran:\n{p.stdout_text}")
eq(sum(len(calls(rs)) for rs in read_logs(work.file("log.*.json")).values()), 0, "no call records without the module")
p = run([work.file("bin/acl-ipc-guard"), "run", "--", "/bin/sh", "-c", 'echo "[$LD_AUDIT]"'], env, preload=False, check_rc=0)
eq(p.stdout_text.strip(), "[]", "no LD_AUDIT without the module")
work.cleanup()
done("dlsym.audit.only")
