/* emu.ipc_local: the IPC functions' argument checks and single-process semantics. */
#include "emu_test.h"

static _Alignas(4096) unsigned char host_page[4096];
static const char *unknown_key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void test_export(void)
{
    void *p = NULL, *imp = NULL;
    char key[300], key2[65];
    CHECK_EQ(aclrtMalloc(&p, 3 * 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);

    CHECK_EQ(aclrtIpcMemGetExportKey(NULL, 4096, key, 65, 0), EMU_INVALID);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, NULL, 65, 0), EMU_INVALID);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 0, key, 65, 0), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, key, 0, 0), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, key, 64, 0), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, key, 65, 2), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, key, 65, (uint64_t)-1), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemGetExportKey((char *)p + 1, 4095, key, 65, 0), EMU_DRV);  /* unaligned */
    CHECK_EQ(aclrtIpcMemGetExportKey((char *)p + 64, 64, key, 65, 0), EMU_DRV);
    CHECK_EQ(aclrtIpcMemGetExportKey(host_page, 4096, key, 65, 0), EMU_DRV);      /* not device memory */
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 3 * 4096 + 1, key, 65, 0), EMU_DRV);      /* past the end */
    CHECK_EQ(aclrtIpcMemGetExportKey((char *)p + 4096, 2 * 4096 + 1, key, 65, 0), EMU_DRV);
    CHECK_EQ(aclrtIpcMemGetExportKey((char *)p + 3 * 4096, 4096, key, 65, 0), EMU_DRV); /* just past */

    /* len larger than 65 is accepted; exactly 65 bytes are written */
    memset(key, 'Z', sizeof key);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 3 * 4096, key, sizeof key, 0), 0);
    CHECK(is_key(key));
    CHECK(key[65] == 'Z' && key[299] == 'Z');
    /* the same memory again: a second, different key */
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 3 * 4096, key2, sizeof key2, 0), 0);
    CHECK(is_key(key2));
    CHECK(strcmp(key, key2) != 0);
    /* a page-aligned sub-range */
    char sub[65];
    CHECK_EQ(aclrtIpcMemGetExportKey((char *)p + 4096, 2 * 4096, sub, 65, ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION), 0);
    fill_pattern((unsigned char *)p, 3 * 4096, 3);
    CHECK_EQ(aclrtIpcMemImportByKey(&imp, sub, 0), 0);
    CHECK(imp != (char *)p + 4096);
    CHECK(memcmp(imp, (char *)p + 4096, 2 * 4096) == 0);
    /* imported memory cannot be re-exported */
    char again[65];
    CHECK_EQ(aclrtIpcMemGetExportKey(imp, 4096, again, 65, 0), EMU_DRV);
    CHECK_EQ(aclrtIpcMemGetExportKey(imp, 4096, again, 65, 1), EMU_DRV);
    /* an imported address cannot be freed */
    CHECK_EQ(aclrtFree(imp), EMU_DRV);
    CHECK_EQ(aclrtIpcMemClose(sub), 0);  /* import */
    CHECK_EQ(aclrtIpcMemClose(sub), 0);  /* export */
    CHECK_EQ(aclrtFree(imp), EMU_DRV);   /* closed import: still not freeable */
    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(aclrtIpcMemClose(key2), 0);
    CHECK_EQ(aclrtFree(p), 0);
}

static void test_set_import_pid(void)
{
    void *p = NULL;
    char key[65], open_key[65];
    int32_t self = 0;
    CHECK_EQ(aclrtDeviceGetBareTgid(&self), 0);
    CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, key, 65, ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT), 0);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, open_key, 65, ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION), 0);

    int32_t pids[40];
    for (int i = 0; i < 40; i++) {
        pids[i] = 4000000 + i;
    }
    CHECK_EQ(aclrtIpcMemSetImportPid(NULL, pids, 1), EMU_INVALID);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, NULL, 1), EMU_INVALID);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, pids, 0), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, pids, 32), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, pids, 40), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, pids, 31), 0);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, pids, 1), 0);
    CHECK_EQ(aclrtIpcMemSetImportPid(unknown_key, pids, 1), EMU_DRV);
    CHECK_EQ(aclrtIpcMemSetImportPid("not-a-key", pids, 1), EMU_DRV);
    CHECK_EQ(aclrtIpcMemSetImportPid("", pids, 1), EMU_DRV);
    /* pid 0 and the caller's own pid are skipped; all skipped fails */
    int32_t skipped[3] = {0, self, 0};
    CHECK_EQ(aclrtIpcMemSetImportPid(key, skipped, 3), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, skipped, 1), EMU_PARAM);
    int32_t mixed[3] = {0, self, 4100000};
    CHECK_EQ(aclrtIpcMemSetImportPid(key, mixed, 3), 0);
    /* 207006 on a key exported without pid validation (even with skipped pids) */
    CHECK_EQ(aclrtIpcMemSetImportPid(open_key, pids, 1), EMU_NOPERM);
    CHECK_EQ(aclrtIpcMemSetImportPid(open_key, skipped, 1), EMU_NOPERM);

    /* the exporter cannot import its own key in whitelist mode */
    void *imp = NULL;
    CHECK_EQ(aclrtIpcMemImportByKey(&imp, key, 0), EMU_DRV);
    CHECK_EQ(aclrtIpcMemImportByKey(&imp, key, 1), EMU_DRV);
    CHECK(imp == NULL);
    /* ... not even with its own pid on the list (smuggled in while the
     * reported bare tgid differed, so the own-pid skip did not apply) */
    CHECK_EQ(setenv("ASCEND_EMU_BARE_TGID_OFFSET", "7", 1), 0);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, &self, 1), 0);
    CHECK_EQ(unsetenv("ASCEND_EMU_BARE_TGID_OFFSET"), 0);
    CHECK_EQ(aclrtIpcMemImportByKey(&imp, key, 0), EMU_DRV);
    CHECK(imp == NULL);

    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, pids, 1), EMU_DRV);   /* destroyed */
    CHECK_EQ(aclrtIpcMemClose(key), EMU_DRV);
    CHECK_EQ(aclrtIpcMemClose(open_key), 0);
    CHECK_EQ(aclrtFree(p), 0);
}

static void test_import_close(void)
{
    void *p = NULL, *a = NULL, *b = NULL, *c = NULL;
    char key[65];
    CHECK_EQ(aclrtMalloc(&p, 2 * 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 2 * 4096, key, 65, ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION), 0);

    CHECK_EQ(aclrtIpcMemImportByKey(NULL, key, 0), EMU_INVALID);
    CHECK_EQ(aclrtIpcMemImportByKey(&a, NULL, 0), EMU_INVALID);
    CHECK_EQ(aclrtIpcMemImportByKey(&a, key, 2), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemImportByKey(&a, unknown_key, 0), EMU_DRV);
    CHECK_EQ(aclrtIpcMemImportByKey(&a, "../../etc/passwd", 0), EMU_DRV);
    CHECK(a == NULL);

    /* no validation: anyone imports, the exporter included; flag 1 accepted */
    CHECK_EQ(aclrtIpcMemImportByKey(&a, key, ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS), 0);
    CHECK(a != NULL && a != p && (uintptr_t)a % 4096 == 0);
    CHECK_EQ(aclrtIpcMemImportByKey(&b, key, 0), 0);
    CHECK_EQ(aclrtIpcMemImportByKey(&c, key, 1), 0);
    CHECK(a == b && b == c); /* same address, refcount 3 */
    fill_pattern((unsigned char *)p, 2 * 4096, 11);
    CHECK(has_pattern((unsigned char *)a, 2 * 4096, 11));
    fill_pattern((unsigned char *)a, 2 * 4096, 12);
    CHECK(has_pattern((unsigned char *)p, 2 * 4096, 12));

    CHECK_EQ(aclrtIpcMemClose(NULL), EMU_INVALID);
    CHECK_EQ(aclrtIpcMemClose(unknown_key), EMU_DRV);
    CHECK_EQ(aclrtIpcMemClose("short"), EMU_DRV);
    CHECK_EQ(aclrtIpcMemClose(key), 0); /* refs 2 */
    CHECK_EQ(aclrtIpcMemClose(key), 0); /* refs 1 */
    CHECK(has_pattern((unsigned char *)a, 2 * 4096, 12)); /* still mapped */
    CHECK_EQ(aclrtIpcMemClose(key), 0); /* unmapped */
    CHECK_EQ(aclrtIpcMemImportByKey(&a, key, 0), 0); /* key still exported */
    CHECK_EQ(aclrtIpcMemClose(key), 0); /* import */
    CHECK_EQ(aclrtIpcMemClose(key), 0); /* export destroyed */
    CHECK_EQ(aclrtIpcMemClose(key), EMU_DRV);
    CHECK_EQ(aclrtIpcMemImportByKey(&a, key, 0), EMU_DRV);

    /* freed memory: the key can no longer be imported; the exporter may still close it */
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, key, 65, 1), 0);
    CHECK_EQ(aclrtIpcMemImportByKey(&a, key, 0), 0);
    CHECK_EQ(aclrtFree(p), 0);
    CHECK_EQ(aclrtIpcMemImportByKey(&b, key, 0), EMU_DRV); /* even a repeated import */
    CHECK_EQ(aclrtIpcMemClose(key), 0); /* import */
    CHECK_EQ(aclrtIpcMemClose(key), 0); /* export */
}

static void test_attr_interserver(void)
{
    void *p = NULL;
    char key[65];
    int32_t pids[2] = {12345, 12346};
    CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, key, 65, 0), 0);

    CHECK_EQ(aclrtIpcMemSetAttr(NULL, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 0), EMU_INVALID);
    CHECK_EQ(aclrtIpcMemSetAttr(key, (aclrtIpcMemAttrType)1, 0), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemSetAttr(key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 4), EMU_PARAM);
    for (uint64_t v = 0; v <= 3; v++) {
        CHECK_EQ(aclrtIpcMemSetAttr(key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, v), 0);
    }
    CHECK_EQ(aclrtIpcMemSetAttr(key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK_HCCS), 0);
    CHECK_EQ(aclrtIpcMemSetAttr(unknown_key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 0), EMU_DRV);

    aclrtServerPid sp[2] = {{0, pids, 2}, {1, pids, 1}};
    aclrtServerPid bad_null[2] = {{0, pids, 2}, {1, NULL, 1}};
    aclrtServerPid bad_zero[2] = {{0, pids, 2}, {1, pids, 0}};
    CHECK_EQ(aclrtIpcMemImportPidInterServer(NULL, sp, 2), EMU_INVALID);
    CHECK_EQ(aclrtIpcMemImportPidInterServer(key, NULL, 2), EMU_INVALID);
    CHECK_EQ(aclrtIpcMemImportPidInterServer(key, sp, 0), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemImportPidInterServer(key, bad_null, 2), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemImportPidInterServer(key, bad_zero, 2), EMU_PARAM);
    CHECK_EQ(aclrtIpcMemImportPidInterServer(unknown_key, sp, 2), EMU_DRV);
    CHECK_EQ(aclrtIpcMemImportPidInterServer(key, sp, 2), 0);

    /* A2: both are A3-only */
    CHECK_EQ(setenv("ASCEND_EMU_CHIP", "A2", 1), 0);
    CHECK_EQ(aclrtIpcMemSetAttr(key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 0), EMU_NOFEAT);
    CHECK_EQ(aclrtIpcMemImportPidInterServer(key, sp, 2), EMU_NOFEAT);
    CHECK_EQ(unsetenv("ASCEND_EMU_CHIP"), 0);
    CHECK_EQ(aclrtIpcMemSetAttr(key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 0), 0);

    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(aclrtIpcMemSetAttr(key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 0), EMU_DRV);
    CHECK_EQ(aclrtIpcMemImportPidInterServer(key, sp, 2), EMU_DRV);
    CHECK_EQ(aclrtFree(p), 0);
}

int main(void)
{
    use_fresh_dir();
    CHECK_EQ(aclrtSetDevice(0), 0);
    test_export();
    test_set_import_pid();
    test_import_close();
    test_attr_interserver();
    /* everything was closed and freed: no files left */
    CHECK_EQ(count_files(emu_test_dir, ""), 0);
    remove_dir(emu_test_dir);
    printf("emu.ipc_local: ok\n");
    return 0;
}
