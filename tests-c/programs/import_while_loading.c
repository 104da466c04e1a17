/*
 * Two imports of keys nobody exported, the second with tests-c/dlopen/loader_hook.c
 * armed: run with a runtime that lacks aclrtDeviceGetBareTgid, the shim looks for it again
 * (dlopen of the runtime) on each import. Prints the imports' codes and what the hook saw
 * ("hook=0": another thread's IPC call went through while the shim was in dlopen).
 */
#include <acl/acl.h>

#include <dlfcn.h>
#include <stdio.h>

int main(void) {
    if (aclrtSetDevice(0) != ACL_SUCCESS) {
        return 2;
    }
    void *p = NULL;
    aclError r1 = aclrtIpcMemImportByKey(&p, "import-while-loading-1", 0);
    int *armed = (int *)dlsym(RTLD_DEFAULT, "loaderHookArmed");
    int *result = (int *)dlsym(RTLD_DEFAULT, "loaderHookResult");
    if (!armed || !result) {
        fprintf(stderr, "loader_hook.so is not preloaded\n");
        return 3;
    }
    __atomic_store_n(armed, 1, __ATOMIC_RELEASE);
    aclError r2 = aclrtIpcMemImportByKey(&p, "import-while-loading-2", 0);
    printf("imports=%d,%d hook=%d\n", (int)r1, (int)r2, *result);
    return 0;
}
