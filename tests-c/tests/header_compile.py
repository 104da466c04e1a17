"""include/acl_ipc_guard.h compiles alone and with the vendor headers in either order, as
C11, C17, C++11 and C++17 under -Wall -Wextra -Werror -pedantic, and declares what it
should whether or not the vendor headers are on the include path."""
import os
import subprocess
from harness import *

INCLUDE = os.path.join(SOURCE, "include")
VENDOR = os.path.join(SOURCE, "tests-c", "emu", "include")

BODY = r"""
#include <string.h>
int use_everything(void) {
    AclIpcGuardStats s;
    unsigned long long flags = ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT + ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION
        + ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT + ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS
        + ACL_RT_IPC_MEM_ATTR_ACCESS_LINK_SIO + ACL_RT_IPC_MEM_ATTR_ACCESS_LINK_HCCS;
    aclrtServerPid sp;
    aclrtIpcMemAttrType t = ACL_RT_IPC_MEM_ATTR_ACCESS_LINK;
    memset(&sp, 0, sizeof sp);
    /* Each function has the vendor's exact signature. */
    aclError (*f1)(void *, size_t, char *, size_t, uint64_t) = aclrtIpcMemGetExportKey;
    aclError (*f2)(const char *, int32_t *, size_t) = aclrtIpcMemSetImportPid;
    aclError (*f3)(const char *, aclrtServerPid *, size_t) = aclrtIpcMemImportPidInterServer;
    aclError (*f4)(void **, const char *, uint64_t) = aclrtIpcMemImportByKey;
    aclError (*f5)(const char *, aclrtIpcMemAttrType, uint64_t) = aclrtIpcMemSetAttr;
    aclError (*f6)(const char *) = aclrtIpcMemClose;
    aclError (*f7)(int32_t *) = aclrtDeviceGetBareTgid;
    aclError (*f8)(void **, size_t, aclrtMemMallocPolicy) = aclrtMalloc;
    aclError (*f9)(void **, size_t, aclrtMemMallocPolicy) = aclrtMallocAlign32;
    aclError (*f10)(void **, size_t, aclrtMemMallocPolicy) = aclrtMallocCached;
    aclError (*f11)(void *) = aclrtFree;
    (void)f1; (void)f2; (void)f3; (void)f4; (void)f5; (void)f6; (void)f7; (void)f8; (void)f9; (void)f10; (void)f11;
    (void)sp; (void)t;
    s.calls = flags;
    return (int)s.calls + aclIpcGuardGetStats(&s) + aclIpcGuardFlush() + (aclIpcGuardVersion() != 0);
}
"""

cases = [
    ("alone, no vendor headers on the path", ["acl_ipc_guard.h"], False),
    ("found vendor headers", ["acl_ipc_guard.h"], True),
    ("ours, then vendor", ["acl_ipc_guard.h", "acl/acl.h"], True),
    ("vendor, then ours", ["acl/acl.h", "acl_ipc_guard.h"], True),
    ("vendor rt header only, then ours", ["acl/acl_rt.h", "acl_ipc_guard.h"], True),
]
work = Workdir()
for std, compiler, ext in (("c11", "cc", "c"), ("c17", "cc", "c"), ("c++11", "c++", "cpp"), ("c++17", "c++", "cpp")):
    for what, includes, vendor in cases:
        src = work.file(f"use.{ext}")
        with open(src, "w") as f:
            f.write("".join(f"#include <{h}>\n" for h in includes) + BODY)
        cmd = [compiler, f"-std={std}", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", src, "-o", work.file("use.o"), "-I", INCLUDE]
        if vendor:
            cmd += ["-I", VENDOR]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check(p.returncode == 0, f"{std}, {what}: {' '.join(cmd)}\n{p.stdout}")
work.cleanup()
done("header.compile")
