"""The library exports exactly the vendor's eleven functions and its own three."""
import subprocess
from harness import SHIM, eq, done

out = subprocess.run(["nm", "-D", "--defined-only", SHIM], check=True, stdout=subprocess.PIPE, text=True).stdout
symbols = sorted(line.split()[-1] for line in out.splitlines() if line.strip())
eq(symbols, sorted([
    "aclrtIpcMemGetExportKey", "aclrtIpcMemSetImportPid", "aclrtIpcMemImportPidInterServer",
    "aclrtIpcMemImportByKey", "aclrtIpcMemSetAttr", "aclrtIpcMemClose", "aclrtDeviceGetBareTgid",
    "aclrtMalloc", "aclrtMallocAlign32", "aclrtMallocCached", "aclrtFree",
    "aclIpcGuardVersion", "aclIpcGuardGetStats", "aclIpcGuardFlush",
]), "nm -D --defined-only")
soname = subprocess.run(["readelf", "-d", SHIM], check=True, stdout=subprocess.PIPE, text=True).stdout
eq("Library soname: [libacl_ipc_guard.so]" in soname, True, "soname")
done("shim.exports")
