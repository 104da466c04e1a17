/*
 * Linked against the shim only, not the runtime: the shim must find the real runtime by
 * itself (dlopen of ACL_IPC_GUARD_REAL_LIB), after the program loads it late, or not at
 * all (200001 and one error record per function, never a crash).
 *
 *   lazy_runtime [dlopen-path]   with a path: dlopen it (RTLD_GLOBAL) before the calls
 */
#include <acl_ipc_guard.h>

#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    printf("version %s\n", aclIpcGuardVersion());
    if (argc > 1 && !dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL)) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 3;
    }
    int32_t pid = 0;
    for (int i = 0; i < 2; i++) {
        aclError r = aclrtDeviceGetBareTgid(&pid);
        printf("aclrtDeviceGetBareTgid %d pid_set=%d\n", r, pid > 0);
    }
    void *p = NULL;
    printf("aclrtMalloc %d\n", aclrtMalloc(&p, 4096, 0));
    printf("aclrtIpcMemClose %d\n", aclrtIpcMemClose("0123"));
    return 0;
}
