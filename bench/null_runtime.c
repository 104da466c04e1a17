/*
 * A runtime that does nothing: the benchmark's stand-in for libascendcl.so, so that what
 * is measured is the shim's own cost. Allocation hands out fake page-aligned addresses;
 * export writes a distinct 64-hex-character key; everything returns ACL_SUCCESS.
 */
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <unistd.h>

#define API __attribute__((visibility("default")))

static uintptr_t next_addr = 0x100000000000ULL;
static unsigned long long next_key;

API int aclrtMalloc(void **p, size_t size, int policy) {
    (void)policy;
    *p = (void *)next_addr;
    next_addr += (size + 4095) & ~(uintptr_t)4095;
    return 0;
}
API int aclrtMallocAlign32(void **p, size_t size, int policy) { return aclrtMalloc(p, size, policy); }
API int aclrtMallocCached(void **p, size_t size, int policy) { return aclrtMalloc(p, size, policy); }
API int aclrtFree(void *p) { (void)p; return 0; }
API int aclrtIpcMemGetExportKey(void *p, size_t size, char *key, size_t len, uint64_t flags) {
    (void)p; (void)size; (void)len; (void)flags;
    snprintf(key, 65, "%048llx%016llx", 0xbe4c4ULL, next_key++);
    return 0;
}
API int aclrtIpcMemSetImportPid(const char *key, int32_t *pid, size_t num) { (void)key; (void)pid; (void)num; return 0; }
API int aclrtIpcMemImportPidInterServer(const char *key, void *sp, size_t num) { (void)key; (void)sp; (void)num; return 0; }
API int aclrtIpcMemImportByKey(void **p, const char *key, uint64_t flags) { (void)key; (void)flags; *p = (void *)0x200000000000ULL; return 0; }
API int aclrtIpcMemSetAttr(const char *key, int type, uint64_t attr) { (void)key; (void)type; (void)attr; return 0; }
API int aclrtIpcMemClose(const char *key) { (void)key; return 0; }
API int aclrtDeviceGetBareTgid(int32_t *pid) { *pid = (int32_t)getpid(); return 0; }
