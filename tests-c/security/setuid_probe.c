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
#include <unistd.h>

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
