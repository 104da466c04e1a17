"""`cmake --install` into a temporary prefix gives the library, header, CLI (with its shell
completions), a CMake package and a pkg-config file; a small C consumer builds and runs
against each."""
import os
import subprocess
from harness import *

work = Workdir()
prefix = work.file("prefix")


def sh(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    check(p.returncode == 0, f"{' '.join(cmd)} failed:\n{p.stdout}")
    return p.stdout


sh(["cmake", "--install", BUILD, "--prefix", prefix])
for rel in ("lib/libacl_ipc_guard.so", "lib/libacl_ipc_guard_audit.so", "include/acl_ipc_guard.h", "bin/acl-ipc-guard",
            "lib/cmake/AclIpcGuard/AclIpcGuardConfig.cmake", "lib/pkgconfig/acl-ipc-guard.pc"):
    check(os.path.isfile(os.path.join(prefix, rel)), f"installed {rel}")
# The shell completions, where bash-completion, zsh and fish look, the same as the
# installed command prints.
for shell, rel in (("bash", "share/bash-completion/completions/acl-ipc-guard"),
                   ("zsh", "share/zsh/site-functions/_acl-ipc-guard"),
                   ("fish", "share/fish/vendor_completions.d/acl-ipc-guard.fish")):
    path = os.path.join(prefix, rel)
    check(os.path.isfile(path), f"installed {rel}")
    with open(path, encoding="utf-8") as f:
        eq(f.read(), sh([os.path.join(prefix, "bin/acl-ipc-guard"), "completions", shell]), f"installed {rel} is current")

consumer = work.file("consumer")
os.mkdir(consumer)
with open(os.path.join(consumer, "main.c"), "w") as f:
    f.write(r"""
#include <acl_ipc_guard.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    AclIpcGuardStats s;
    memset(&s, 0xff, sizeof s);
    if (aclIpcGuardGetStats(NULL) != 100000) return 3;
    if (aclIpcGuardGetStats(&s) != 0) return 4;
    int32_t pid = 0;
    aclError r = aclrtDeviceGetBareTgid(&pid);
    printf("version=%s ret=%d stats_calls=%llu\n", aclIpcGuardVersion(), r, (unsigned long long)s.calls);
    return 0;
}
""")
with open(os.path.join(consumer, "CMakeLists.txt"), "w") as f:
    f.write("""cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(AclIpcGuard CONFIG REQUIRED)
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE AclIpcGuard::acl_ipc_guard)
message(STATUS "audit module: ${AclIpcGuard_AUDIT_LIBRARY}")
""")

env = base_env(work)
env["ACL_IPC_GUARD_LOG"] = "off"
lib = os.path.join(prefix, "lib")
# Through the CMake package.
configured = sh(["cmake", "-S", consumer, "-B", work.file("cb"), f"-DCMAKE_PREFIX_PATH={prefix}"])
audit_var = [l.split("audit module: ", 1)[1].strip() for l in configured.splitlines() if "audit module: " in l]
check(len(audit_var) == 1 and os.path.realpath(audit_var[0]) == os.path.realpath(os.path.join(prefix, "lib/libacl_ipc_guard_audit.so")),
      f"AclIpcGuard_AUDIT_LIBRARY names the installed audit module: {audit_var}")
sh(["cmake", "--build", work.file("cb")])
env["LD_LIBRARY_PATH"] = f"{lib}:{LIB_DIR}"
p = run([work.file("cb/consumer")], env, preload=False, check_rc=0)
check(p.stdout_text.startswith("version=0.1.0 ret=0"), f"cmake consumer output: {p.stdout_text}")

# Through pkg-config.
pc_env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(lib, "pkgconfig"))
flags = sh(["pkg-config", "--cflags", "--libs", "acl-ipc-guard"], env=pc_env).split()
sh(["cc", "-std=c11", "-Wall", "-Werror", os.path.join(consumer, "main.c"), "-o", work.file("pc_consumer")] + flags)
p = run([work.file("pc_consumer")], env, preload=False, check_rc=0)
check(p.stdout_text.startswith("version=0.1.0 ret=0"), f"pkg-config consumer output: {p.stdout_text}")

# The installed CLI finds the installed library in ../lib.
p = run([os.path.join(prefix, "bin/acl-ipc-guard"), "run", "--", "/bin/sh", "-c", "echo $LD_PRELOAD"], env, preload=False, check_rc=0)
eq(p.stdout_text.strip(), os.path.realpath(os.path.join(lib, "libacl_ipc_guard.so")), "installed run preloads the installed library")
# ... and the installed audit module beside it.
p = run([os.path.join(prefix, "bin/acl-ipc-guard"), "run", "--", "/bin/sh", "-c", "echo $LD_AUDIT"], env, preload=False, check_rc=0)
eq(p.stdout_text.strip(), os.path.realpath(os.path.join(lib, "libacl_ipc_guard_audit.so")), "installed run audits with the installed module")
eq(p.stderr_text, "", "no warning when the audit module is found")
work.cleanup()
done("install.consumers")
