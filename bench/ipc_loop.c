/*
 * The IPC workload for the comparison with ltrace: export and close one allocation's key
 * `n` times through the runtime's functions as a program linked against it calls them
 * (through the PLT, which is what ltrace traces and LD_PRELOAD interposes), and print the
 * mean ns per IPC call. Linked against the null runtime (bench/null_runtime.c).
 *
 *   ipc_loop [n]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int aclrtMalloc(void **p, size_t size, int policy);
int aclrtIpcMemGetExportKey(void *p, size_t size, char *key, size_t len, uint64_t flags);
int aclrtIpcMemClose(const char *key);

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    void *mem;
    char key[65];
    if (aclrtMalloc(&mem, 4096, 0) != 0) return 2;
    for (int i = 0; i < 16; i++) { /* warm up: the shim starts, ltrace binds */
        aclrtIpcMemGetExportKey(mem, 4096, key, sizeof key, 0);
        aclrtIpcMemClose(key);
    }
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (aclrtIpcMemGetExportKey(mem, 4096, key, sizeof key, 0) != 0) return 2;
        aclrtIpcMemClose(key);
    }
    printf("ns_per_call=%.1f calls=%ld\n", (now_ns() - t0) / (double)(2 * n), 2 * n);
    return 0;
}
