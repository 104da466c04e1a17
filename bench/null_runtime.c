/*
 * A runtime that does nothing: the benchmark's stand-in for libascendcl.so, so that what
 * is measured is the shim's own cost. Everything returns ACL_SUCCESS.
 *
 * - Allocation hands out fake page-aligned addresses from a range of the calling thread's
 *   own (no shared counter, so threads calling at once do not contend here).
 * - Export writes a distinct 64-hex-character key: the exporting process's pid, the
 *   thread's number and a counter.
 * - Import hands back a fake address derived from the key, distinct for distinct keys,
 *   so an importer's shim sees a new mapping per key, as with a real runtime.
 * - The bare tgid is the pid (no pid namespaces here).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define API __attribute__((visibility("default")))

static atomic_uint thread_count;
static _Thread_local unsigned thread_no; /* 0: not numbered yet */
static _Thread_local uintptr_t next_addr;
static _Thread_local unsigned long long next_key;

static unsigned this_thread(void) {
    if (thread_no == 0) {
        thread_no = atomic_fetch_add_explicit(&thread_count, 1, memory_order_relaxed) + 1;
        /* 16 TiB of fake addresses per thread, from 0x100000000000 on */
        next_addr = 0x100000000000ULL + ((uintptr_t)thread_no << 44);
    }
    return thread_no;
}

API int aclrtMalloc(void **p, size_t size, int policy) {
    (void)policy;
    this_thread();
    *p = (void *)next_addr;
    next_addr += (size + 4095) & ~(uintptr_t)4095;
    return 0;
}
API int aclrtMallocAlign32(void **p, size_t size, int policy) { return aclrtMalloc(p, size, policy); }
API int aclrtMallocCached(void **p, size_t size, int policy) { return aclrtMalloc(p, size, policy); }
API int aclrtFree(void *p) { (void)p; return 0; }

/* getpid() is a system call; the pid is kept and renewed in a fork child */
static pid_t my_pid;
static void renew_pid(void) { my_pid = getpid(); }
__attribute__((constructor)) static void start(void) {
    renew_pid();
    pthread_atfork(NULL, NULL, renew_pid);
}

static const char hex[] = "0123456789abcdef";

static void put_hex(char *out, unsigned long long v) {
    for (int i = 15; i >= 0; i--, v >>= 4) out[i] = hex[v & 15];
}

/* key: 16 digits of pid, 16 of thread number, 16 zeros, 16 of counter (no snprintf: the
 * direct call stays cheap, so the shim's share is what the difference shows) */
API int aclrtIpcMemGetExportKey(void *p, size_t size, char *key, size_t len, uint64_t flags) {
    (void)p; (void)size; (void)flags;
    if (!key || len < 65) return 107000;
    unsigned t = this_thread();
    put_hex(key, (unsigned long long)my_pid);
    put_hex(key + 16, t);
    memset(key + 32, '0', 16);
    put_hex(key + 48, next_key++);
    key[64] = 0;
    return 0;
}
API int aclrtIpcMemSetImportPid(const char *key, int32_t *pid, size_t num) { (void)key; (void)pid; (void)num; return 0; }
API int aclrtIpcMemImportPidInterServer(const char *key, void *sp, size_t num) { (void)key; (void)sp; (void)num; return 0; }

/* FNV-1a of the key, shifted to a page: distinct keys land on distinct pages (collisions
 * are possible in principle; the benchmark's keys differ in their low digits) */
API int aclrtIpcMemImportByKey(void **p, const char *key, uint64_t flags) {
    (void)flags;
    if (!p || !key) return 100000;
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 64 && key[i]; i++) h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    *p = (void *)(0x500000000000ULL + ((h & 0xffffffffULL) << 12));
    return 0;
}
API int aclrtIpcMemSetAttr(const char *key, int type, uint64_t attr) { (void)key; (void)type; (void)attr; return 0; }
API int aclrtIpcMemClose(const char *key) { (void)key; return 0; }
API int aclrtDeviceGetBareTgid(int32_t *out) { *out = (int32_t)my_pid; return 0; }
