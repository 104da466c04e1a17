/*
 * Another interposer, preloaded after the shim: it defines aclrtMalloc and aclrtFree,
 * counts them and forwards each with dlsym(RTLD_NEXT), as profilers do. The audit module
 * must leave its look-ups alone (redirecting them to the shim would loop).
 */
#include <acl/acl.h>

#include <dlfcn.h>
#include <string.h>

static int mallocs, frees;

__attribute__((visibility("default"))) int nextHookCount(const char *fn) {
    return strcmp(fn, "aclrtMalloc") == 0 ? mallocs : strcmp(fn, "aclrtFree") == 0 ? frees : -1;
}

__attribute__((visibility("default"))) aclError aclrtMalloc(void **devPtr, size_t size,
                                                            aclrtMemMallocPolicy policy) {
    __typeof__(aclrtMalloc) *next = (__typeof__(aclrtMalloc) *)dlsym(RTLD_NEXT, "aclrtMalloc");
    mallocs++;
    return next ? next(devPtr, size, policy) : 200001;
}

__attribute__((visibility("default"))) aclError aclrtFree(void *devPtr) {
    __typeof__(aclrtFree) *next = (__typeof__(aclrtFree) *)dlsym(RTLD_NEXT, "aclrtFree");
    frees++;
    return next ? next(devPtr) : 200001;
}
