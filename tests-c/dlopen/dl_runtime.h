/*
 * The runtime as programs that find it themselves see it: a table of function pointers
 * filled by dlsym, the way torch_npu and Python's ctypes do it. Only the declarations of
 * the vendor headers are used; nothing here links the runtime.
 */
#ifndef AIG_DL_RUNTIME_H
#define AIG_DL_RUNTIME_H

#include <acl/acl.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The eleven functions the shim intercepts. */
#define DL_INTERCEPTED(X)                                                                       \
    X(aclrtIpcMemGetExportKey) X(aclrtIpcMemSetImportPid) X(aclrtIpcMemImportPidInterServer)    \
    X(aclrtIpcMemImportByKey) X(aclrtIpcMemSetAttr) X(aclrtIpcMemClose) X(aclrtDeviceGetBareTgid) \
    X(aclrtMalloc) X(aclrtMallocAlign32) X(aclrtMallocCached) X(aclrtFree)
/* Those it does not. */
#define DL_OTHERS(X) X(aclInit) X(aclrtSetDevice) X(aclrtMemcpy)

struct dl_rt {
#define DL_MEMBER(f) __typeof__(f) *f;
    DL_INTERCEPTED(DL_MEMBER)
    DL_OTHERS(DL_MEMBER)
#undef DL_MEMBER
    /* The emulator's count of calls that reached it (ascend_emu.h). */
    int (*count)(const char *fn);
};

/* Fills rt from dlsym(handle, name) (handle may be RTLD_DEFAULT or RTLD_NEXT); exits 3
 * when a name is missing. */
static inline void dl_resolve(void *handle, struct dl_rt *rt) {
#define DL_RESOLVE(f)                                                                 \
    rt->f = (__typeof__(f) *)dlsym(handle, #f);                                         \
    if (rt->f == NULL) {                                                              \
        fprintf(stderr, "dlsym(%s): %s\n", #f, dlerror());                            \
        exit(3);                                                                      \
    }
    DL_INTERCEPTED(DL_RESOLVE)
    DL_OTHERS(DL_RESOLVE)
#undef DL_RESOLVE
    rt->count = (int (*)(const char *))dlsym(handle, "ascendEmuCallCount");
    if (rt->count == NULL) {
        fprintf(stderr, "dlsym(ascendEmuCallCount): %s\n", dlerror());
        exit(3);
    }
}

/* dlopen that exits 3 on failure. */
static inline void *dl_open(const char *name, int flags) {
    void *h = dlopen(name, flags);
    if (h == NULL) {
        fprintf(stderr, "dlopen(%s): %s\n", name, dlerror());
        exit(3);
    }
    return h;
}

/* The file the function at addr comes from, without its directory. */
static inline const char *dl_origin(const void *addr) {
    Dl_info info;
    if (dladdr(addr, &info) == 0 || info.dli_fname == NULL) return "?";
    const char *slash = info.dli_fname;
    for (const char *p = info.dli_fname; *p; p++)
        if (*p == '/') slash = p + 1;
    return slash;
}

/* Prints the emulator's count of each intercepted function: `LABEL.count FN N`. */
static inline void dl_print_counts(const char *label, const struct dl_rt *rt) {
#define DL_COUNT(f) printf("%s.count %s %d\n", label, #f, rt->count(#f));
    DL_INTERCEPTED(DL_COUNT)
#undef DL_COUNT
}

#endif /* AIG_DL_RUNTIME_H */
