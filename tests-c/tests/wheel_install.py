"""`pip install` of the wheel into a fresh venv, then nothing but the venv: scripts/wheel.sh
builds the wheel (maturin from PyPI into build/py-tools, once), the wheel holds the command,
both libraries and the Python package, and once installed, with the venv's bin/ first on
PATH and nothing of the build tree on any search path (the emulated runtime alone stands
in for the vendor's install):
- `acl-ipc-guard --version`, and acl_ipc_guard.library_path() / audit_library_path() /
  bin_path() naming the venv's files;
- `acl-ipc-guard run -- python app.py`, `python -m acl_ipc_guard run -- python app.py`, and
  LD_PRELOAD + LD_AUDIT set from those paths by hand: a two-process ctypes flow with one
  mistake, every call recorded once in each process, the mistake caught, and the venv's
  copies of the libraries the ones mapped in both processes;
- LD_PRELOAD=library_path() under a linked C++ pair; `acl-ipc-guard report` on the logs;
- `pip uninstall` leaves nothing behind.
Skipped without network to PyPI for maturin (failed with CI=true)."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

from dlsymlib import check_once
from harness import *
from pairlogs import check_pair_logs

APP = os.path.join(SOURCE, "tests-c", "dlopen", "ctypes_pair.py")
with open(os.path.join(SOURCE, "Cargo.toml"), encoding="utf-8") as f:
    VERSION = re.search(r'(?m)^\[workspace\.package\][^\[]*?^version = "([^"]+)"', f.read()).group(1)


def sh(cmd, what, env=None, timeout=300):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    check(p.returncode == 0, f"{what}: {cmd} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p.stdout


# ------------------------------------------------------------------ the wheel and what it holds
build = subprocess.run([os.path.join(SOURCE, "scripts", "wheel.sh"), BUILD], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=1500)
if build.returncode == 3:
    if os.environ.get("CI") == "true":
        fail(f"maturin could not be installed from PyPI, and CI=true:\n{build.stderr}")
    print(f"wheel.install: SKIPPED: maturin could not be installed from PyPI:\n{build.stderr}")
    sys.exit(SKIP)
check(build.returncode == 0, f"scripts/wheel.sh exited {build.returncode}:\n{build.stderr}")
wheel = build.stdout.split()[-1]
eq(glob.glob(os.path.join(os.path.dirname(wheel), "acl_ipc_guard-*.whl")), [wheel], "the wheels directory holds this one")
tag = re.fullmatch(rf"acl_ipc_guard-{re.escape(VERSION)}-py3-none-(manylinux_(\d+)_(\d+)|linux)_x86_64\.whl",
                   os.path.basename(wheel))
check(tag is not None, f"the wheel's name: {os.path.basename(wheel)}")

data = f"acl_ipc_guard-{VERSION}.data"
info = f"acl_ipc_guard-{VERSION}.dist-info"
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    for name in ("acl_ipc_guard/__init__.py", "acl_ipc_guard/__main__.py", "acl_ipc_guard/libacl_ipc_guard.so",
                 "acl_ipc_guard/libacl_ipc_guard_audit.so", f"{data}/scripts/acl-ipc-guard", f"{info}/METADATA",
                 f"{info}/WHEEL", f"{info}/RECORD"):
        check(name in names, f"the wheel holds {name}: {sorted(names)}")
    eq(sorted(n for n in names if n.endswith(".so") or "/scripts/" in n),
       sorted(["acl_ipc_guard/libacl_ipc_guard.so", "acl_ipc_guard/libacl_ipc_guard_audit.so",
               f"{data}/scripts/acl-ipc-guard"]), "the wheel's native files")
    check(z.getinfo(f"{data}/scripts/acl-ipc-guard").external_attr >> 16 & 0o111, "the command is executable")
    # The wheel carries exactly what this build built.
    for member, built in (("acl_ipc_guard/libacl_ipc_guard.so", SHIM),
                          ("acl_ipc_guard/libacl_ipc_guard_audit.so", os.path.join(LIB_DIR, "libacl_ipc_guard_audit.so")),
                          (f"{data}/scripts/acl-ipc-guard", CLI)):
        with open(built, "rb") as f:
            check(z.read(member) == f.read(), f"{member} is the build's {built}")
    meta = z.read(f"{info}/METADATA").decode()
    headers = meta.split("\n\n", 1)[0].splitlines()
    for line in ("Name: acl-ipc-guard", f"Version: {VERSION}", "License-Expression: Apache-2.0",
                 "Requires-Python: >=3.8"):
        check(line in headers, f"METADATA has {line!r}:\n{meta}")
    check(any(h.startswith("Description-Content-Type: text/markdown") for h in headers), "METADATA: markdown readme")
    check("pip install acl-ipc-guard" in meta.split("\n\n", 1)[1], "METADATA carries the readme")
    check(f"Tag: py3-none-{tag.group(1)}_x86_64" in z.read(f"{info}/WHEEL").decode(), "WHEEL: the tag of its name")

if tag.group(2):
    # maturin checked the command against the manylinux tag; the libraries it did not.
    want = (int(tag.group(2)), int(tag.group(3)))
    for path in (SHIM, os.path.join(LIB_DIR, "libacl_ipc_guard_audit.so")):
        needs = {tuple(map(int, v)) for v in re.findall(r"Name: GLIBC_(\d+)\.(\d+)", sh(["readelf", "-V", "-W", path], path))}
        check(needs and max(needs) <= want, f"{path} needs glibc {max(needs)}, more than the tag's {want}")

# ------------------------------------------------------------------ a fresh venv
work = Workdir()
venv = work.file("venv")
sh([sys.executable, "-m", "venv", venv], "python3 -m venv")
vbin = os.path.join(venv, "bin")
vpython = os.path.join(vbin, "python")
sh([vpython, "-m", "pip", "install", "--no-index", "--no-deps", wheel], "pip install the wheel")
site = sh([vpython, "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"], "platlib").strip()
check(os.path.realpath(site).startswith(os.path.realpath(venv) + os.sep), f"the venv's site-packages {site}")

# The vendor's install, as far as the runtime goes: the emulated libascendcl.so alone.
cann = work.file("cann")
os.mkdir(cann)
os.symlink(os.path.join(LIB_DIR, "libascendcl.so"), os.path.join(cann, "libascendcl.so"))


def venv_env(extra=None):
    env = base_env(work)
    env["PATH"] = os.pathsep.join([vbin, "/usr/bin", "/bin"])
    env["LD_LIBRARY_PATH"] = cann
    for k in ("LD_PRELOAD", "LD_AUDIT", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(k, None)
    env.update(extra or {})
    return env


eq(shutil.which("acl-ipc-guard", path=venv_env()["PATH"]), os.path.join(vbin, "acl-ipc-guard"),
   "acl-ipc-guard on PATH is the venv's")
p = run(["acl-ipc-guard", "--version"], venv_env(), preload=False, check_rc=0)
eq(p.stdout_text, f"acl-ipc-guard {VERSION}\n", "acl-ipc-guard --version")
p = run(["python", "-m", "acl_ipc_guard", "--version"], venv_env(), preload=False, check_rc=0)
eq(p.stdout_text, f"acl-ipc-guard {VERSION}\n", "python -m acl_ipc_guard --version")

p = run(["python", "-c", "import acl_ipc_guard as g; print(g.library_path()); print(g.audit_library_path()); "
                         "print(g.bin_path()); print(g.__version__)"], venv_env(), preload=False, check_rc=0)
lib, audit, cmd, version = p.stdout_text.split("\n")[:4]
pkg = os.path.join(os.path.realpath(site), "acl_ipc_guard")
eq(os.path.realpath(lib), os.path.join(pkg, "libacl_ipc_guard.so"), "library_path() is in the venv's site-packages")
eq(os.path.realpath(audit), os.path.join(pkg, "libacl_ipc_guard_audit.so"), "audit_library_path()")
eq(os.path.realpath(cmd), os.path.realpath(os.path.join(vbin, "acl-ipc-guard")), "bin_path()")
eq(version, VERSION, "acl_ipc_guard.__version__")
for path, symbol in ((lib, "aclrtIpcMemGetExportKey"), (audit, "la_version")):
    with open(path, "rb") as f:
        eq(f.read(4), b"\x7fELF", f"{path} is an ELF file")
    exported = [l.split()[-1] for l in sh(["nm", "-D", "--defined-only", path], path).splitlines() if l.strip()]
    check(symbol in exported, f"{path} exports {symbol}")

# ------------------------------------------------------------------ the ctypes pair, three ways
EXPORTER = [("aclrtMalloc", 0), ("aclrtIpcMemGetExportKey", 107000), ("aclrtIpcMemGetExportKey", 0),
            ("aclrtIpcMemSetImportPid", 0), ("aclrtIpcMemClose", 0), ("aclrtFree", 0)]
IMPORTER = [("aclrtDeviceGetBareTgid", 0), ("aclrtIpcMemImportByKey", 0), ("aclrtIpcMemClose", 0)]


def lines(p, role):
    return [l.split()[1:] for l in (p.stdout_text + p.stderr_text).splitlines() if l.split()[:1] == [role]]


def check_app(how, cmd, extra=None):
    """Runs the pair as cmd (LOG in it: work/HOW.%p.json, where its logs go) and checks it."""
    pattern = work.file(f"{how}.%p.json")
    env = venv_env(dict({"ACL_IPC_GUARD_CALLS": "all"}, **(extra or {})))
    p = run([w.replace("LOG", pattern) for w in cmd], env, preload=False, check_rc=0)
    check("importer said read written by the ctypes exporter" in p.stdout_text, f"{how}: bytes exporter -> importer")
    check("exporter read and answered by the ctypes importer" in p.stdout_text, f"{how}: bytes importer -> exporter")
    logs = read_logs(work.file(f"{how}.*.json"))
    pids = {}
    for role, made in (("exporter", EXPORTER), ("importer", IMPORTER)):
        eq([(w[0], int(w[1])) for w in lines(p, role) if len(w) == 2 and w[0].startswith("aclrt")], made,
           f"{how} {role}: the calls it made")
        eq(sorted(os.path.realpath(w[1]) for w in lines(p, role) if w[0] == "maps"),
           sorted(os.path.realpath(x) for x in (lib, audit)), f"{how} {role}: the venv's libraries are the ones mapped")
        pids[role] = int(next(w[1] for w in lines(p, role) if w[0] == "pid"))
        recs = logs.get(pids[role], [])
        starts = events(recs, "start")
        check(starts, f"{how} {role}: a start record")
        eq(starts[0]["version"], VERSION, f"{how} {role}: the shim's version")
        check_once(recs, made, f"{how} {role}")
        eq(events(recs, "error"), [], f"{how} {role}: no error records")
    eq(sorted(logs), sorted(pids.values()), f"{how}: a log from each process, none from another")
    ex, im = logs[pids["exporter"]], logs[pids["importer"]]
    eq([(v["rule"], v["fn"], v["action"]) for v in violations(ex)],
       [("export.key-len", "aclrtIpcMemGetExportKey", "reported")], f"{how}: the exporter's violation")
    eq(violations(im), [], f"{how}: the importer broke no rule")
    eq(events(ex, "summary")[-1]["violations"], {"export.key-len": 1}, f"{how}: the exporter's summary")
    key_fp = calls(ex, "aclrtIpcMemGetExportKey")[1]["out"]["key_fp"]
    eq(calls(im, "aclrtIpcMemImportByKey")[0]["args"]["key_fp"], key_fp, f"{how}: the importer imported the key")


check_app("run", ["acl-ipc-guard", "run", "--log", "LOG", "--", "python", APP, "--misuse"])
check_app("module", ["python", "-m", "acl_ipc_guard", "run", "--log", "LOG", "--", "python", APP, "--misuse"])
check_app("manual", ["python", APP, "--misuse"], {"LD_PRELOAD": lib, "LD_AUDIT": audit, "ACL_IPC_GUARD_LOG": work.file("manual.%p.json")})

# The report of the installed command over the logs of the run: the mistake is an error.
logs = sorted(read_logs(work.file("run.*.json")))
paths = [work.file(f"run.{pid}.json") for pid in logs]
p = run(["acl-ipc-guard", "report", "--json", *paths], venv_env(), preload=False, check_rc=1)
eq([v["rule"] for v in json.loads(p.stdout_text)["violations"]], ["export.key-len"], "acl-ipc-guard report")

# ------------------------------------------------------------------ LD_PRELOAD=library_path(), a linked program
pair_work = Workdir()
env = base_env(pair_work, {"ACL_IPC_GUARD_LOG": pair_work.file("log.%p.json"), "LD_PRELOAD": lib})
env.update(PATH=venv_env()["PATH"], LD_LIBRARY_PATH=cann)
p = run([prog("pair"), "whitelist", "0"], env, preload=False, check_rc=0)
check("bytes shared both ways" in p.stdout_text, f"LD_PRELOAD=library_path(): program output\n{p.stdout_text}")
for recs in check_pair_logs(pair_work, "whitelist", 0, "LD_PRELOAD=library_path()").values():
    eq(recs[0]["version"], VERSION, "LD_PRELOAD=library_path(): the shim's version")
pair_work.cleanup()

# ------------------------------------------------------------------ pip uninstall
sh([vpython, "-m", "pip", "uninstall", "-y", "acl-ipc-guard"], "pip uninstall")
check(not os.path.exists(os.path.join(vbin, "acl-ipc-guard")), "uninstall removed the command")
check(not os.path.exists(pkg), f"uninstall removed {pkg}")
work.cleanup()
done("wheel.install")
