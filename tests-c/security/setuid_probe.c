/*
 * Linked against the shim directly (shim first), for the setuid/setgid test
 * (tests/security_setuid.py): a close of a key nobody exported (rule close.unknown, an
 * error), then prints what came back and whether the runtime saw the call. Under
 * ACL_IPC_GUARD_MODE=enforce the shim blocks it (100000, calls=0) unless it ignores its
 * switches, as it must in a setuid or setgid process.
 */
#include <acl/acl.h>
#include <ascend_emu.h>

#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Read by AddressSanitizer as it starts (-DAIG_SANITIZE=ON; unused otherwise). A set-id
 * process run by another user is not dumpable: LeakSanitizer cannot stop it with ptrace
 * ("LeakSanitizer has encountered a fatal error", exit 1), and ASAN_OPTIONS cannot reach
 * it either (ASan reads /proc/self/environ, which is then root's). Leak checking is off
 * in that case only; the probe's plain runs keep it. Asked with syscall(2): ASan
 * intercepts prctl(2) and cannot forward it yet when it reads its options.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return syscall(SYS_prctl, PR_GET_DUMPABLE, 0L, 0L, 0L, 0L) == 1 ? "" : "detect_leaks=0";
}

int main(void)
{
    static const char key[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    if (aclrtSetDevice(0) != ACL_SUCCESS) {
        return 3;
    }
    int before = ascendEmuCallCount("aclrtIpcMemClose");
    aclError r = aclrtIpcMemClose(key);
    printf("close %d calls=%d uid=%d euid=%d\n", (int)r, ascendEmuCallCount("aclrtIpcMemClose") - before,
           (int)getuid(), (int)geteuid());
    return 0;
}
