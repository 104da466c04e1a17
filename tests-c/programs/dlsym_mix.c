/*
 * Links the runtime and also finds the same functions every other way a program can:
 * dlsym(handle of "libascendcl.so"), dlsym(RTLD_DEFAULT), dlsym(RTLD_NEXT), and dlsym of
 * a handle from dlopen of the runtime's full path (found with dladdr). Each way makes the
 * same calls; under the shim every call must reach it, and the runtime, exactly once.
 *
 *   dlsym_mix
 *
 * Prints `WAY from FILE` (where that way's aclrtMalloc lives), `WAY FN RET` per call, and
 * at the end the emulator's count of each intercepted function (`end.count FN N`) and,
 * where a library preloaded after the shim defines nextHookCount, its counts
 * (`hook.count FN N`).
 */
#include "../dlopen/dl_runtime.h"

#include <string.h>

#include "test_util.h"

static struct dl_rt rt;
static const char *way;

static aclError show(const char *fn, aclError ret) {
    printf("%s %s %d\n", way, fn, (int)ret);
    return ret;
}

#define CALL(fn, ...) show(#fn, rt.fn(__VA_ARGS__))

static void calls(void) {
    printf("%s from %s\n", way, dl_origin((const void *)rt.aclrtMalloc));
    void *p = NULL, *q = NULL, *r = NULL, *none = NULL;
    char key[65] = {0};
    int32_t tgid = 0, other = 5000001;
    aclrtServerPid server = {0, &other, 1};
    (void)none;
    expect_ret(way, "malloc", CALL(aclrtMalloc, &p, 8192, ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
    expect_ret(way, "export", CALL(aclrtIpcMemGetExportKey, p, 8192, key, sizeof key, 0), ACL_SUCCESS);
    expect_ret(way, "whitelist", CALL(aclrtIpcMemSetImportPid, key, &other, 1), ACL_SUCCESS);
    expect_ret(way, "setattr", CALL(aclrtIpcMemSetAttr, key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK,
                                    ACL_RT_IPC_MEM_ATTR_ACCESS_LINK_HCCS), ACL_SUCCESS);
    expect_ret(way, "interserver", CALL(aclrtIpcMemImportPidInterServer, key, &server, 1), ACL_SUCCESS);
    /* No out pointer: import.out-null, refused by the runtime too. */
    expect_ret(way, "import", CALL(aclrtIpcMemImportByKey, NULL, key, 0), ACL_ERROR_INVALID_PARAM);
    expect_ret(way, "close", CALL(aclrtIpcMemClose, key), ACL_SUCCESS);
    expect_ret(way, "free", CALL(aclrtFree, p), ACL_SUCCESS);
    expect_ret(way, "bare tgid", CALL(aclrtDeviceGetBareTgid, &tgid), ACL_SUCCESS);
    expect_ret(way, "malloc32", CALL(aclrtMallocAlign32, &q, 4096, ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
    expect_ret(way, "free32", CALL(aclrtFree, q), ACL_SUCCESS);
    expect_ret(way, "cached", CALL(aclrtMallocCached, &r, 4096, ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
    expect_ret(way, "free cached", CALL(aclrtFree, r), ACL_SUCCESS);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    expect_ret("dlsym_mix", "aclInit", aclInit(NULL), ACL_SUCCESS);
    expect_ret("dlsym_mix", "aclrtSetDevice", aclrtSetDevice(0), ACL_SUCCESS);

    way = "linked";
#define LINKED(f) rt.f = f;
    DL_INTERCEPTED(LINKED)
    DL_OTHERS(LINKED)
#undef LINKED
    calls();

    way = "handle";
    void *by_name = dl_open("libascendcl.so", RTLD_NOW);
    dl_resolve(by_name, &rt);
    calls();

    way = "default";
    dl_resolve(RTLD_DEFAULT, &rt);
    calls();

    way = "next";
    dl_resolve(RTLD_NEXT, &rt);
    calls();

    way = "path";
    Dl_info info; /* aclrtSetDevice is not intercepted: it lives in the runtime itself */
    if (dladdr((const void *)aclrtSetDevice, &info) == 0 || info.dli_fname[0] != '/') {
        fprintf(stderr, "dladdr(aclrtSetDevice) gave no full path\n");
        return 4;
    }
    printf("runtime path %s\n", info.dli_fname);
    void *by_path = dl_open(info.dli_fname, RTLD_NOW | RTLD_LOCAL);
    dl_resolve(by_path, &rt);
    calls();

    dl_print_counts("end", &rt);
    int (*hook_count)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "nextHookCount");
    if (hook_count != NULL) {
        printf("hook.count aclrtMalloc %d\n", hook_count("aclrtMalloc"));
        printf("hook.count aclrtFree %d\n", hook_count("aclrtFree"));
    }
    dlclose(by_path);
    dlclose(by_name);
    return 0;
}
