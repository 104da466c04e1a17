/*
 * Transparency table: a fixed sequence of good and bad calls, each printed as one line
 * "name ret [out-values]" with out-values made independent of addresses and random keys.
 * Run with and without the shim in audit mode, the two outputs must be identical.
 */
#include <acl/acl.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void line(const char *name, aclError ret, const char *extra) {
    printf("%-40s %6d %s\n", name, (int)ret, extra ? extra : "");
}

static const char *key_shape(const char *key) {
    static char buf[64];
    size_t n = strnlen(key, 65);
    int hex = 1;
    for (size_t i = 0; i < n; i++) hex &= isxdigit((unsigned char)key[i]) != 0;
    snprintf(buf, sizeof buf, "keylen=%zu hex=%d", n, hex);
    return buf;
}

static const char *ptr_shape(void *p) {
    static char buf[64];
    snprintf(buf, sizeof buf, "ptr=%s aligned=%d", p ? "set" : "null", p ? ((uintptr_t)p % 4096 == 0) : 0);
    return buf;
}

int main(void) {
    void *p = NULL, *p32 = NULL, *pc = NULL, *q = NULL;
    int32_t me = 0, pids[40];
    char key[65] = {0}, key_open[65] = {0}, big[256], k2[65] = {0};
    char unterminated[80];
    memset(unterminated, 'a', sizeof unterminated);
    char pidbuf[32];

    line("GetBareTgid(NULL)", aclrtDeviceGetBareTgid(NULL), NULL);
    aclError r = aclrtDeviceGetBareTgid(&me);
    line("GetBareTgid", r, me == getpid() ? "pid=self" : "pid=other");
    line("Malloc before SetDevice", aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), NULL);
    line("SetDevice", aclrtSetDevice(0), NULL);
    line("Malloc(NULL out)", aclrtMalloc(NULL, 4096, ACL_MEM_MALLOC_HUGE_FIRST), NULL);
    line("Malloc(size 0)", aclrtMalloc(&q, 0, ACL_MEM_MALLOC_HUGE_FIRST), NULL);
    r = aclrtMalloc(&p, 4 * 4096, ACL_MEM_MALLOC_HUGE_FIRST);
    line("Malloc", r, ptr_shape(p));
    r = aclrtMallocAlign32(&p32, 4096, ACL_MEM_MALLOC_NORMAL_ONLY);
    line("MallocAlign32", r, ptr_shape(p32));
    r = aclrtMallocCached(&pc, 4096, ACL_MEM_MALLOC_HUGE_ONLY);
    line("MallocCached", r, ptr_shape(pc));
    memset(big, 0x5a, sizeof big);
    line("Memcpy H2D", aclrtMemcpy(p, 4 * 4096, big, sizeof big, ACL_MEMCPY_HOST_TO_DEVICE), NULL);

    line("Export(NULL devPtr)", aclrtIpcMemGetExportKey(NULL, 4096, key, 65, 0), NULL);
    line("Export(size 0)", aclrtIpcMemGetExportKey(p, 0, key, 65, 0), NULL);
    line("Export(NULL key)", aclrtIpcMemGetExportKey(p, 4096, NULL, 65, 0), NULL);
    line("Export(len 64)", aclrtIpcMemGetExportKey(p, 4096, key, 64, 0), NULL);
    line("Export(flags 2)", aclrtIpcMemGetExportKey(p, 4096, key, 65, 2), NULL);
    line("Export(unaligned)", aclrtIpcMemGetExportKey((char *)p + 16, 4096, key, 65, 0), NULL);
    line("Export(past end)", aclrtIpcMemGetExportKey(p, 5 * 4096, key, 65, 0), NULL);
    r = aclrtIpcMemGetExportKey(p, 4 * 4096, big, sizeof big, 0);
    line("Export(len 256)", r, r == 0 ? key_shape(big) : NULL);
    line("Close(len-256 key)", aclrtIpcMemClose(big), NULL);
    r = aclrtIpcMemGetExportKey((char *)p + 4096, 4096, k2, 65, 0);
    line("Export(sub-range)", r, r == 0 ? key_shape(k2) : NULL);
    r = aclrtIpcMemGetExportKey(p, 4 * 4096, key, 65, 0);
    line("Export", r, r == 0 ? key_shape(key) : NULL);
    r = aclrtIpcMemGetExportKey(p32, 4096, key_open, 65, 1);
    line("Export(no validation)", r, r == 0 ? key_shape(key_open) : NULL);

    pids[0] = 12345;
    line("SetImportPid(NULL key)", aclrtIpcMemSetImportPid(NULL, pids, 1), NULL);
    line("SetImportPid(unterminated)", aclrtIpcMemSetImportPid(unterminated, pids, 1), NULL);
    line("SetImportPid(NULL pid)", aclrtIpcMemSetImportPid(key, NULL, 1), NULL);
    line("SetImportPid(num 0)", aclrtIpcMemSetImportPid(key, pids, 0), NULL);
    for (int i = 0; i < 40; i++) pids[i] = 1000 + i;
    line("SetImportPid(num 32)", aclrtIpcMemSetImportPid(key, pids, 32), NULL);
    pids[0] = 0;
    line("SetImportPid(only pid 0)", aclrtIpcMemSetImportPid(key, pids, 1), NULL);
    pids[0] = me;
    line("SetImportPid(only own pid)", aclrtIpcMemSetImportPid(key, pids, 1), NULL);
    line("SetImportPid(unknown key)", aclrtIpcMemSetImportPid("0123456789abcdef", pids, 1), NULL);
    pids[0] = 12345;
    line("SetImportPid(no-validation key)", aclrtIpcMemSetImportPid(key_open, pids, 1), NULL);
    /* Garbage pid pointers where the runtime refuses before reading them. */
    line("SetImportPid(NULL key, bad pid ptr)", aclrtIpcMemSetImportPid(NULL, (int32_t *)0x10, 1), NULL);
    line("SetImportPid(unknown key, bad pid ptr)", aclrtIpcMemSetImportPid("0123456789abcdef", (int32_t *)0x10, 1), NULL);
    line("SetImportPid(no-validation key, bad ptr)", aclrtIpcMemSetImportPid(key_open, (int32_t *)0x10, 1), NULL);
    line("InterServer(NULL key, bad array)", aclrtIpcMemImportPidInterServer(NULL, (aclrtServerPid *)0x10, 1), NULL);
    line("SetImportPid", aclrtIpcMemSetImportPid(key, pids, 1), NULL);
    line("SetImportPid(31 pids)", aclrtIpcMemSetImportPid(key, pids + 1, 31), NULL);

    line("Import(NULL out)", aclrtIpcMemImportByKey(NULL, key, 0), NULL);
    line("Import(NULL key)", aclrtIpcMemImportByKey(&q, NULL, 0), NULL);
    line("Import(unterminated)", aclrtIpcMemImportByKey(&q, unterminated, 0), NULL);
    line("Import(flags 2)", aclrtIpcMemImportByKey(&q, key, 2), NULL);
    line("Import(unknown key)", aclrtIpcMemImportByKey(&q, "feedbeef", 0), NULL);
    line("Import(own whitelist key)", aclrtIpcMemImportByKey(&q, key, 0), NULL);

    line("SetAttr(NULL key)", aclrtIpcMemSetAttr(NULL, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 0), NULL);
    line("SetAttr(type 1)", aclrtIpcMemSetAttr(key, (aclrtIpcMemAttrType)1, 0), NULL);
    line("SetAttr(attr 9)", aclrtIpcMemSetAttr(key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 9), NULL);
    line("SetAttr", aclrtIpcMemSetAttr(key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK_HCCS), NULL);
    aclrtServerPid sp = {1, pids, 1}, sp_bad = {1, NULL, 1};
    line("InterServer(NULL serverPids)", aclrtIpcMemImportPidInterServer(key, NULL, 1), NULL);
    line("InterServer(num 0)", aclrtIpcMemImportPidInterServer(key, &sp, 0), NULL);
    line("InterServer(NULL pid entry)", aclrtIpcMemImportPidInterServer(key, &sp_bad, 1), NULL);
    line("InterServer", aclrtIpcMemImportPidInterServer(key, &sp, 1), NULL);

    /* A process importing its own no-validation key: the first close ends the import,
     * the export stays (SetImportPid still says 207006), the second close ends it. */
    void *own = NULL;
    r = aclrtIpcMemImportByKey(&own, key_open, 0);
    line("Import(own no-validation key)", r, ptr_shape(own));
    line("Close(own import)", aclrtIpcMemClose(key_open), NULL);
    line("SetImportPid(no-validation, after own close)", aclrtIpcMemSetImportPid(key_open, pids, 1), NULL);
    line("Free(with open key)", aclrtFree(p32), NULL);
    line("Close(NULL)", aclrtIpcMemClose(NULL), NULL);
    line("Close(unterminated)", aclrtIpcMemClose(unterminated), NULL);
    line("Close(unknown)", aclrtIpcMemClose("feedbeef"), NULL);
    line("Close", aclrtIpcMemClose(key), NULL);
    line("Close(again)", aclrtIpcMemClose(key), NULL);
    line("Close(sub-range)", aclrtIpcMemClose(k2), NULL);
    line("Close(no validation)", aclrtIpcMemClose(key_open), NULL);

    memset(big, 0, sizeof big);
    line("Memcpy D2H", aclrtMemcpy(big, sizeof big, p, sizeof big, ACL_MEMCPY_DEVICE_TO_HOST), NULL);
    snprintf(pidbuf, sizeof pidbuf, "byte0=%#x byte255=%#x", (unsigned char)big[0], (unsigned char)big[255]);
    line("memory contents", 0, pidbuf);
    line("Free(NULL)", aclrtFree(NULL), NULL);
    line("Free(inside)", aclrtFree((char *)p + 4096), NULL);
    line("Free", aclrtFree(p), NULL);
    line("Free(again)", aclrtFree(p), NULL);
    line("Free(cached)", aclrtFree(pc), NULL);
    line("ResetDevice", aclrtResetDevice(0), NULL);
    return 0;
}
