/*
 * Exports, closes and frees like a correct job, but changes directory in between: a
 * relative ACL_IPC_GUARD_LEDGER must still mean the directory the program started in.
 *
 *   chdir_job DIR
 */
#include "test_util.h"

int main(int argc, char **argv) {
    void *dev = NULL;
    char key[65];
    expect_ret("chdir_job", "aclrtSetDevice", aclrtSetDevice(0), 0);
    expect_ret("chdir_job", "aclrtMalloc", aclrtMalloc(&dev, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    if (argc > 1 && chdir(argv[1]) != 0) return 2;
    expect_ret("chdir_job", "export", aclrtIpcMemGetExportKey(dev, 4096, key, sizeof key, 1), 0);
    expect_ret("chdir_job", "close", aclrtIpcMemClose(key), 0);
    expect_ret("chdir_job", "free", aclrtFree(dev), 0);
    return 0;
}
