/* emu.errors: context-null, argument errors, malloc/free/memcpy/memset, streams. */
#include "emu_test.h"

static _Alignas(4096) unsigned char host_page[2 * 4096];

static void test_context_null(void)
{
    void *p = NULL;
    char key[65];
    int32_t pid = 1;
    int32_t dev = 0;
    aclrtStream s = NULL;
    aclrtServerPid sp = {0, &pid, 1};
    const char *k = "0000000000000000000000000000000000000000000000000000000000000000";

    CHECK_EQ(aclInit(NULL), 0);
    CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), EMU_CTX);
    CHECK_EQ(aclrtMallocAlign32(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), EMU_CTX);
    CHECK_EQ(aclrtMallocCached(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), EMU_CTX);
    CHECK_EQ(aclrtFree(host_page), EMU_CTX);
    CHECK_EQ(aclrtIpcMemGetExportKey(host_page, 4096, key, sizeof key, 0), EMU_CTX);
    CHECK_EQ(aclrtIpcMemSetImportPid(k, &pid, 1), EMU_CTX);
    CHECK_EQ(aclrtIpcMemImportByKey(&p, k, 0), EMU_CTX);
    CHECK_EQ(aclrtIpcMemClose(k), EMU_CTX);
    CHECK_EQ(aclrtIpcMemSetAttr(k, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 0), EMU_CTX);
    CHECK_EQ(aclrtIpcMemImportPidInterServer(k, &sp, 1), EMU_CTX);
    CHECK_EQ(aclrtGetDevice(&dev), EMU_CTX);
    CHECK_EQ(aclrtSynchronizeDevice(), EMU_CTX);
    CHECK_EQ(aclrtCreateStream(&s), EMU_CTX);
    CHECK_EQ(aclrtMemcpy(host_page, 16, host_page + 16, 16, ACL_MEMCPY_HOST_TO_HOST), EMU_CTX);
    CHECK_EQ(aclrtMemset(host_page, 16, 0, 16), EMU_CTX);
    CHECK_EQ(aclrtResetDevice(0), EMU_CTX);
    /* needs no device */
    CHECK_EQ(aclrtDeviceGetBareTgid(&pid), 0);
    CHECK_EQ(pid, getpid());

    CHECK_EQ(aclrtSetDevice(-1), EMU_PARAM);
    CHECK_EQ(aclrtSetDevice(0), 0);
    CHECK_EQ(aclrtGetDevice(&dev), 0);
    CHECK_EQ(dev, 0);
    CHECK_EQ(aclrtGetDevice(NULL), EMU_INVALID);
    CHECK_EQ(aclrtSynchronizeDevice(), 0);
    CHECK_EQ(aclrtResetDevice(0), 0);
    CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), EMU_CTX);
    CHECK_EQ(aclrtSetDevice(1), 0);
    CHECK_EQ(aclrtGetDevice(&dev), 0);
    CHECK_EQ(dev, 1);
    CHECK_EQ(aclrtResetDeviceForce(1), 0);
    CHECK_EQ(aclrtSynchronizeDevice(), EMU_CTX);
    CHECK_EQ(aclrtSetDevice(0), 0);
}

static void test_malloc_free(void)
{
    void *p = NULL, *q = NULL, *r = NULL;
    CHECK_EQ(aclrtMalloc(NULL, 4096, ACL_MEM_MALLOC_HUGE_FIRST), EMU_INVALID);
    CHECK_EQ(aclrtMalloc(&p, 0, ACL_MEM_MALLOC_HUGE_FIRST), EMU_INVALID);
    CHECK_EQ(aclrtMallocAlign32(NULL, 64, ACL_MEM_MALLOC_NORMAL_ONLY), EMU_INVALID);
    CHECK_EQ(aclrtMallocCached(&p, 0, ACL_MEM_MALLOC_NORMAL_ONLY), EMU_INVALID);
    CHECK_EQ(aclrtMalloc(&p, (size_t)-1, ACL_MEM_MALLOC_HUGE_FIRST), 207001);

    CHECK_EQ(aclrtMalloc(&p, 1, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    CHECK_EQ(aclrtMallocAlign32(&q, 10000, ACL_MEM_MALLOC_HUGE_ONLY_P2P), 0);
    CHECK_EQ(aclrtMallocCached(&r, 4096, (aclrtMemMallocPolicy)(ACL_MEM_MALLOC_NORMAL_ONLY | ACL_MEM_TYPE_HIGH_BAND_WIDTH)), 0);
    CHECK(p != NULL && q != NULL && r != NULL && p != q && q != r);
    CHECK((uintptr_t)p % 4096 == 0 && (uintptr_t)q % 4096 == 0 && (uintptr_t)r % 4096 == 0);
    unsigned char *b = (unsigned char *)q;
    for (size_t i = 0; i < 10000; i++) {
        CHECK(b[i] == 0);
    }
    memset(q, 0x5a, 10000);

    CHECK_EQ(aclrtFree(NULL), EMU_INVALID);
    CHECK_EQ(aclrtFree((char *)q + 4096), EMU_DRV);   /* not the start */
    CHECK_EQ(aclrtFree((char *)q + 1), EMU_DRV);
    CHECK_EQ(aclrtFree(host_page), EMU_DRV);          /* not device memory */
    CHECK_EQ(aclrtFree(&p), EMU_DRV);                 /* stack */
    CHECK_EQ(aclrtFree(p), 0);
    CHECK_EQ(aclrtFree(p), EMU_DRV);                  /* double free */
    CHECK_EQ(aclrtFree(q), 0);
    CHECK_EQ(aclrtFree(r), 0);
}

static void test_memcpy_memset(void)
{
    void *p = NULL;
    CHECK_EQ(aclrtMalloc(&p, 8192, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    unsigned char src[100];
    fill_pattern(src, sizeof src, 7);
    CHECK_EQ(aclrtMemcpy(p, 50, src, 100, ACL_MEMCPY_HOST_TO_DEVICE), EMU_PARAM);
    CHECK_EQ(aclrtMemcpy(p, 100, src, 100, (aclrtMemcpyKind)5), EMU_PARAM);
    CHECK_EQ(aclrtMemcpy(NULL, 100, src, 100, ACL_MEMCPY_HOST_TO_DEVICE), EMU_INVALID);
    CHECK_EQ(aclrtMemcpy(p, 100, NULL, 100, ACL_MEMCPY_HOST_TO_DEVICE), EMU_INVALID);
    CHECK_EQ(aclrtMemcpy(p, 8192, src, 100, ACL_MEMCPY_HOST_TO_DEVICE), 0);
    CHECK(has_pattern((unsigned char *)p, 100, 7));
    unsigned char back[100];
    CHECK_EQ(aclrtMemcpy(back, sizeof back, p, 100, ACL_MEMCPY_DEVICE_TO_HOST), 0);
    CHECK(has_pattern(back, 100, 7));
    CHECK_EQ(aclrtMemcpy((char *)p + 4096, 4096, p, 100, ACL_MEMCPY_DEVICE_TO_DEVICE), 0);
    CHECK(has_pattern((unsigned char *)p + 4096, 100, 7));
    CHECK_EQ(aclrtMemcpy(back, sizeof back, src, 0, ACL_MEMCPY_DEFAULT), 0);

    CHECK_EQ(aclrtMemset(p, 10, 0xab, 11), EMU_PARAM);
    CHECK_EQ(aclrtMemset(NULL, 10, 0xab, 10), EMU_INVALID);
    CHECK_EQ(aclrtMemset(p, 8192, 0xab, 8192), 0);
    for (size_t i = 0; i < 8192; i++) {
        CHECK(((unsigned char *)p)[i] == 0xab);
    }
    CHECK_EQ(aclrtFree(p), 0);
}

static void test_streams(void)
{
    aclrtStream s = NULL, t = NULL;
    CHECK_EQ(aclrtCreateStream(NULL), EMU_INVALID);
    CHECK_EQ(aclrtCreateStream(&s), 0);
    CHECK_EQ(aclrtCreateStream(&t), 0);
    CHECK(s != NULL && t != NULL && s != t);
    CHECK_EQ(aclrtDestroyStream(NULL), EMU_INVALID);
    CHECK_EQ(aclrtDestroyStream(s), 0);
    CHECK_EQ(aclrtDestroyStream(s), EMU_PARAM);
    CHECK_EQ(aclrtDestroyStreamForce(t), 0);
}

int main(void)
{
    test_context_null();
    test_malloc_free();
    test_memcpy_memset();
    test_streams();
    CHECK_EQ(aclrtResetDevice(0), 0);
    CHECK_EQ(aclFinalize(), 0);
    printf("emu.errors: ok\n");
    return 0;
}
