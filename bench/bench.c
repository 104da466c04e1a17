/*
 * The shim's own cost, in ns per call, against a direct call into the same do-nothing
 * runtime in the same run. Run under the shim (LD_PRELOAD) with the mode to measure;
 * "direct" calls go through dlsym on the runtime's own handle, which the preload does not
 * interpose.
 *
 *   bench [iterations]
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef int (*malloc_fn)(void **, size_t, int);
typedef int (*free_fn)(void *);
typedef int (*export_fn)(void *, size_t, char *, size_t, uint64_t);
typedef int (*setpid_fn)(const char *, int32_t *, size_t);
typedef int (*close_fn)(const char *);
typedef int (*tgid_fn)(int32_t *);

struct api {
    malloc_fn malloc_;
    free_fn free_;
    export_fn export_;
    setpid_fn setpid;
    close_fn close_;
    tgid_fn tgid;
};

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void load(struct api *a, void *handle) {
    a->malloc_ = (malloc_fn)dlsym(handle, "aclrtMalloc");
    a->free_ = (free_fn)dlsym(handle, "aclrtFree");
    a->export_ = (export_fn)dlsym(handle, "aclrtIpcMemGetExportKey");
    a->setpid = (setpid_fn)dlsym(handle, "aclrtIpcMemSetImportPid");
    a->close_ = (close_fn)dlsym(handle, "aclrtIpcMemClose");
    a->tgid = (tgid_fn)dlsym(handle, "aclrtDeviceGetBareTgid");
    if (!a->malloc_ || !a->free_ || !a->export_ || !a->setpid || !a->close_ || !a->tgid) {
        fprintf(stderr, "bench: missing symbol: %s\n", dlerror());
        exit(2);
    }
}

/* ns per malloc+free pair, with `live` allocations kept alive around it. */
static double malloc_free(const struct api *a, long n) {
    void *p;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        a->malloc_(&p, 4096, 0);
        a->free_(p);
    }
    return (now_ns() - t0) / n;
}

static double bare_tgid(const struct api *a, long n) {
    int32_t pid;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) a->tgid(&pid);
    return (now_ns() - t0) / n;
}

/* ns per IPC call, averaged over export + whitelist + close of one key. */
static double ipc_cycle(const struct api *a, long n, void *mem) {
    char key[65];
    int32_t peer = 1;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        a->export_(mem, 4096, key, sizeof key, 0);
        a->setpid(key, &peer, 1);
        a->close_(key);
    }
    return (now_ns() - t0) / n / 3;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    long n_ipc = n / 20 > 1000 ? n / 20 : 1000;
    void *runtime = dlopen("libascendcl.so", RTLD_NOW | RTLD_NOLOAD);
    if (!runtime) runtime = dlopen("libascendcl.so", RTLD_NOW);
    if (!runtime) { fprintf(stderr, "bench: %s\n", dlerror()); return 2; }
    struct api direct, shim;
    load(&direct, runtime);
    load(&shim, RTLD_DEFAULT);
    void *mem;
    shim.malloc_(&mem, 1 << 20, 0); /* seen by the shim: exports of it are tracked */

    const char *mode = getenv("ACL_IPC_GUARD_MODE");
    printf("mode=%s preload=%s iterations=%ld\n", mode ? mode : "audit", getenv("LD_PRELOAD") ? "yes" : "no", n);
    /* warm up: first calls initialise the shim and resolve the real functions */
    malloc_free(&shim, 1000); bare_tgid(&shim, 1000); ipc_cycle(&shim, 100, mem);
    malloc_free(&direct, 1000); bare_tgid(&direct, 1000); ipc_cycle(&direct, 100, mem);

    double d_mf = malloc_free(&direct, n), s_mf = malloc_free(&shim, n);
    double d_tg = bare_tgid(&direct, n), s_tg = bare_tgid(&shim, n);
    double d_ipc = ipc_cycle(&direct, n_ipc, mem), s_ipc = ipc_cycle(&shim, n_ipc, mem);
    printf("%-34s %10s %10s %10s\n", "measure", "direct ns", "shim ns", "added ns");
    printf("%-34s %10.1f %10.1f %10.1f\n", "malloc+free pair", d_mf, s_mf, s_mf - d_mf);
    printf("%-34s %10.1f %10.1f %10.1f\n", "aclrtDeviceGetBareTgid call", d_tg, s_tg, s_tg - d_tg);
    printf("%-34s %10.1f %10.1f %10.1f\n", "IPC call (export/setpid/close)", d_ipc, s_ipc, s_ipc - d_ipc);
    return 0;
}
