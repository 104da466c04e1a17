/*
 * emu.lifecycle: what happens to keys and memory over processes' lifetimes:
 * exporter gone (exited and reaped, or a zombie), memory freed while
 * exported, exporter closing while an importer is mapped, fork children using
 * inherited memory, cleanup at exit and sweeping of stale files.
 */
#include "emu_test.h"

#define SIZE (16u * 4096u)

/* Forks an exporter child that sends a key (flags as given) and waits for a byte. */
static pid_t exporter_child(struct chan *c, uint64_t flags, int how_to_exit)
{
    chan_open(c);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        chan_child(c);
        void *p = NULL;
        char key[65];
        CHECK_EQ(aclrtMalloc(&p, SIZE, ACL_MEM_MALLOC_HUGE_FIRST), 0);
        fill_pattern((unsigned char *)p, SIZE, 40);
        CHECK_EQ(aclrtIpcMemGetExportKey(p, SIZE, key, 65, flags), 0);
        send_all(c->to_parent[1], key, sizeof key);
        char b;
        recv_all(c->to_child[0], &b, 1);
        if (how_to_exit == 0) {
            exit(0); /* runs the library destructor: files removed */
        }
        _exit(0); /* like a crash: files stay behind */
    }
    chan_parent(c);
    return pid;
}

static void test_exporter_gone(const char *dir)
{
    struct chan c;
    char key[65];
    void *p = NULL, *q = NULL;

    /* exited and reaped */
    pid_t e = exporter_child(&c, ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION, 0);
    recv_all(c.to_parent[0], key, sizeof key);
    CHECK_EQ(aclrtIpcMemImportByKey(&p, key, 0), 0);
    CHECK(has_pattern((unsigned char *)p, SIZE, 40));
    CHECK_EQ(count_files(dir, "key-"), 1);
    send_all(c.to_child[1], "x", 1);
    CHECK_EQ(wait_child(e), 0);
    CHECK_EQ(count_files(dir, "key-"), 0); /* removed at the exporter's exit */
    CHECK_EQ(count_files(dir, "mem-"), 0);
    CHECK(has_pattern((unsigned char *)p, SIZE, 40)); /* our mapping lingers */
    CHECK_EQ(aclrtIpcMemImportByKey(&q, key, 0), EMU_DRV);
    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(aclrtIpcMemClose(key), EMU_DRV);
    close(c.to_child[1]);
    close(c.to_parent[0]);

    /* died without cleanup; still a zombie (not reaped) */
    e = exporter_child(&c, ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION, 1);
    recv_all(c.to_parent[0], key, sizeof key);
    send_all(c.to_child[1], "x", 1);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, (id_t)e, &si, WEXITED | WNOWAIT) == 0);
    CHECK_EQ(count_files(dir, "key-"), 1); /* left behind */
    CHECK_EQ(count_files(dir, "mem-"), 1);
    CHECK_EQ(aclrtIpcMemImportByKey(&q, key, 0), EMU_DRV); /* counts as unknown */
    CHECK_EQ(aclrtIpcMemSetAttr(key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 0), EMU_DRV);
    CHECK_EQ(count_files(dir, "key-"), 0); /* the stale key file was dropped */
    CHECK_EQ(wait_child(e), 0);
    close(c.to_child[1]);
    close(c.to_parent[0]);
}

/* The stale backing file is swept by the next process that opens the directory. */
static void test_sweep(const char *dir, const char *self)
{
    CHECK_EQ(count_files(dir, "mem-"), 1);
    pid_t s = fork();
    CHECK(s >= 0);
    if (s == 0) {
        execl(self, self, "--sweep", (char *)NULL);
        _exit(127);
    }
    CHECK_EQ(wait_child(s), 0);
    CHECK_EQ(count_files(dir, "mem-"), 0);
}

static void test_freed_and_early_close(void)
{
    void *p = NULL;
    char key[65], key2[65];
    CHECK_EQ(aclrtMalloc(&p, SIZE, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    fill_pattern((unsigned char *)p, SIZE, 50);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, SIZE, key, 65, 1), 0);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, SIZE, key2, 65, 1), 0);

    /* exporter closes while an importer is still mapped: allowed */
    struct chan c;
    chan_open(&c);
    pid_t imp = fork();
    CHECK(imp >= 0);
    if (imp == 0) {
        chan_child(&c);
        void *q = NULL;
        CHECK_EQ(aclrtIpcMemImportByKey(&q, key, 1), 0);
        send_all(c.to_parent[1], "i", 1);
        char b;
        recv_all(c.to_child[0], &b, 1);
        CHECK(has_pattern((unsigned char *)q, SIZE, 51)); /* written after the exporter's close */
        fill_pattern((unsigned char *)q, SIZE, 52);
        CHECK_EQ(aclrtIpcMemClose(key), 0);
        exit(0);
    }
    chan_parent(&c);
    char b;
    recv_all(c.to_parent[0], &b, 1);
    CHECK_EQ(aclrtIpcMemClose(key), 0);
    fill_pattern((unsigned char *)p, SIZE, 51);
    send_all(c.to_child[1], "c", 1);
    /* wait for the child's write before freeing */
    CHECK_EQ(wait_child(imp), 0);
    CHECK(has_pattern((unsigned char *)p, SIZE, 52));
    close(c.to_child[1]);
    close(c.to_parent[0]);

    /* freed while key2 is still open: nobody can import key2 any more */
    CHECK_EQ(aclrtFree(p), 0);
    pid_t k = fork();
    CHECK(k >= 0);
    if (k == 0) {
        void *q = NULL;
        CHECK_EQ(aclrtIpcMemImportByKey(&q, key2, 0), EMU_DRV);
        exit(0);
    }
    CHECK_EQ(wait_child(k), 0);
    CHECK_EQ(aclrtIpcMemClose(key2), 0); /* the exporter may still close it */
}

static void test_fork_inherit(const char *dir)
{
    void *p = NULL, *imp = NULL;
    char key[65];
    CHECK_EQ(aclrtMalloc(&p, SIZE, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    fill_pattern((unsigned char *)p, SIZE, 60);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, SIZE, key, 65, 1), 0);
    CHECK_EQ(aclrtIpcMemImportByKey(&imp, key, 0), 0);

    pid_t k = fork();
    CHECK(k >= 0);
    if (k == 0) {
        /* the child keeps using the memory it inherited */
        CHECK(has_pattern((unsigned char *)p, SIZE, 60));
        CHECK(has_pattern((unsigned char *)imp, SIZE, 60));
        fill_pattern((unsigned char *)p, SIZE, 61);
        CHECK(has_pattern((unsigned char *)imp, SIZE, 61));
        /* but it is not the child's allocation or export */
        char k2[65];
        CHECK_EQ(aclrtFree(p), EMU_DRV);
        CHECK_EQ(aclrtIpcMemGetExportKey(p, SIZE, k2, 65, 1), EMU_DRV);
        /* the inherited import is its own to close (its own reference count) */
        void *again = NULL;
        CHECK_EQ(aclrtIpcMemImportByKey(&again, key, 0), 0);
        CHECK(again == imp);
        CHECK_EQ(aclrtIpcMemClose(key), 0);
        CHECK_EQ(aclrtIpcMemClose(key), 0);
        CHECK_EQ(aclrtIpcMemClose(key), EMU_DRV); /* not the exporter */
        exit(0); /* must not remove the parent's files */
    }
    CHECK_EQ(wait_child(k), 0);
    CHECK(has_pattern((unsigned char *)p, SIZE, 61));
    CHECK(has_pattern((unsigned char *)imp, SIZE, 61));
    CHECK_EQ(count_files(dir, "key-"), 1);
    CHECK_EQ(count_files(dir, "mem-"), 1);
    void *again = NULL;
    CHECK_EQ(aclrtIpcMemImportByKey(&again, key, 0), 0);
    CHECK(again == imp);
    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(aclrtIpcMemClose(key), 0); /* the export */
    CHECK_EQ(aclrtFree(p), 0);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--sweep") == 0) {
        void *p = NULL;
        CHECK_EQ(aclrtSetDevice(0), 0);
        CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
        CHECK_EQ(aclrtFree(p), 0);
        return 0;
    }
    const char *dir = use_fresh_dir();
    CHECK_EQ(aclrtSetDevice(0), 0);
    test_exporter_gone(dir);
    test_sweep(dir, "/proc/self/exe");
    test_freed_and_early_close();
    test_fork_inherit(dir);
    CHECK_EQ(count_files(dir, ""), 0);
    remove_dir(dir);
    printf("emu.lifecycle: ok\n");
    return 0;
}
