/*
 * emu.hooks: aclrtDeviceGetBareTgid and its environment switches, the
 * per-function call counter ascendEmuCallCount, and the ASCEND_EMU_TRACE file.
 */
#include "emu_test.h"

static void test_bare_tgid(void)
{
    int32_t pid = 0;
    CHECK_EQ(aclrtDeviceGetBareTgid(NULL), EMU_INVALID);
    CHECK_EQ(aclrtDeviceGetBareTgid(&pid), 0);
    CHECK_EQ(pid, getpid());

    /* the real driver's failure mode: -1 written, success returned */
    CHECK_EQ(setenv("ASCEND_EMU_BARE_TGID_FAIL", "1", 1), 0);
    pid = 0;
    CHECK_EQ(aclrtDeviceGetBareTgid(&pid), 0);
    CHECK_EQ(pid, -1);
    CHECK_EQ(setenv("ASCEND_EMU_BARE_TGID_FAIL", "0", 1), 0);
    CHECK_EQ(aclrtDeviceGetBareTgid(&pid), 0);
    CHECK_EQ(pid, getpid());
    CHECK_EQ(unsetenv("ASCEND_EMU_BARE_TGID_FAIL"), 0);

    /* container: the bare tgid differs from getpid() */
    CHECK_EQ(setenv("ASCEND_EMU_BARE_TGID_OFFSET", "4242", 1), 0);
    CHECK_EQ(aclrtDeviceGetBareTgid(&pid), 0);
    CHECK_EQ(pid, getpid() + 4242);
    /* and the own-pid skip of SetImportPid uses the bare tgid */
    void *p = NULL;
    char key[65];
    CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, key, 65, 0), 0);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, &pid, 1), EMU_PARAM);
    int32_t real = getpid();
    CHECK_EQ(aclrtIpcMemSetImportPid(key, &real, 1), 0);
    CHECK_EQ(unsetenv("ASCEND_EMU_BARE_TGID_OFFSET"), 0);
    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(aclrtFree(p), 0);
}

static void test_call_counts(void)
{
    CHECK_EQ(ascendEmuCallCount(NULL), -1);
    CHECK_EQ(ascendEmuCallCount("noSuchFunction"), -1);
    CHECK_EQ(ascendEmuCallCount("ascendEmuCallCount"), -1);
    int close0 = ascendEmuCallCount("aclrtIpcMemClose");
    int malloc0 = ascendEmuCallCount("aclrtMalloc");
    int set0 = ascendEmuCallCount("aclrtSetDevice");
    int import0 = ascendEmuCallCount("aclrtIpcMemImportByKey");
    int memcpy0 = ascendEmuCallCount("aclrtMemcpy");
    CHECK(close0 >= 0 && malloc0 >= 0 && set0 >= 1);
    CHECK_EQ(aclrtIpcMemClose(NULL), EMU_INVALID);  /* failed calls count too */
    CHECK_EQ(aclrtIpcMemClose("nope"), EMU_DRV);
    void *p = NULL;
    CHECK_EQ(aclrtMalloc(NULL, 1, ACL_MEM_MALLOC_HUGE_FIRST), EMU_INVALID);
    CHECK_EQ(aclrtMalloc(&p, 1, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    char c = 0;
    CHECK_EQ(aclrtMemcpy(p, 1, &c, 1, ACL_MEMCPY_HOST_TO_DEVICE), 0);
    CHECK_EQ(aclrtFree(p), 0);
    CHECK_EQ(ascendEmuCallCount("aclrtIpcMemClose"), close0 + 2);
    CHECK_EQ(ascendEmuCallCount("aclrtMalloc"), malloc0 + 2);
    CHECK_EQ(ascendEmuCallCount("aclrtSetDevice"), set0);
    CHECK_EQ(ascendEmuCallCount("aclrtIpcMemImportByKey"), import0);
    CHECK_EQ(ascendEmuCallCount("aclrtMemcpy"), memcpy0 + 1);
    /* every implemented function has a counter */
    static const char *const names[] = {
        "aclInit", "aclFinalize", "aclrtSetDevice", "aclrtResetDevice", "aclrtResetDeviceForce",
        "aclrtGetDevice", "aclrtCreateStream", "aclrtDestroyStream", "aclrtDestroyStreamForce",
        "aclrtSynchronizeDevice", "aclrtMalloc", "aclrtMallocAlign32", "aclrtMallocCached", "aclrtFree",
        "aclrtMemcpy", "aclrtMemset", "aclrtDeviceGetBareTgid", "aclrtIpcMemGetExportKey",
        "aclrtIpcMemSetImportPid", "aclrtIpcMemImportPidInterServer", "aclrtIpcMemImportByKey",
        "aclrtIpcMemSetAttr", "aclrtIpcMemClose"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK(ascendEmuCallCount(names[i]) >= 0);
    }
    /* a fork child counts on from the parent's values, separately */
    pid_t k = fork();
    CHECK(k >= 0);
    if (k == 0) {
        CHECK_EQ(aclrtIpcMemClose(NULL), EMU_INVALID);
        CHECK_EQ(ascendEmuCallCount("aclrtIpcMemClose"), close0 + 3);
        exit(0);
    }
    CHECK_EQ(wait_child(k), 0);
    CHECK_EQ(ascendEmuCallCount("aclrtIpcMemClose"), close0 + 2);
}

static void test_trace(void)
{
    char path[] = "/tmp/emutrace-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ(setenv("ASCEND_EMU_TRACE", path, 1), 0);
    void *p = NULL;
    char key[65];
    int32_t pid = 0;
    CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, key, 64, 0), EMU_PARAM);
    CHECK_EQ(aclrtDeviceGetBareTgid(&pid), 0);
    CHECK_EQ(aclrtSynchronizeDevice(), 0); /* not traced */
    CHECK_EQ(aclrtFree(p), 0);
    CHECK_EQ(unsetenv("ASCEND_EMU_TRACE"), 0);
    CHECK_EQ(aclrtMallocCached(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0); /* not traced any more */
    CHECK_EQ(aclrtFree(p), 0);

    char expect[512];
    long me = (long)getpid();
    snprintf(expect, sizeof expect,
             "%ld aclrtMalloc 0\n%ld aclrtIpcMemGetExportKey 107000\n%ld aclrtDeviceGetBareTgid 0\n"
             "%ld aclrtFree 0\n",
             me, me, me, me);
    char got[512];
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, got, sizeof got - 1);
    close(fd);
    CHECK(n >= 0);
    got[n] = '\0';
    if (strcmp(got, expect) != 0) {
        fprintf(stderr, "trace:\n%s\nexpected:\n%s\n", got, expect);
        exit(1);
    }
    unlink(path);
}

int main(void)
{
    use_fresh_dir();
    CHECK_EQ(aclrtSetDevice(0), 0);
    test_bare_tgid();
    test_call_counts();
    test_trace();
    remove_dir(emu_test_dir);
    printf("emu.hooks: ok\n");
    return 0;
}
