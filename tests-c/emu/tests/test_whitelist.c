/*
 * emu.whitelist: pid whitelist across real processes: refusal of processes
 * not on the list, the 31-pid limit, exporter-only calls refused elsewhere,
 * the bare tgid (container) offset, and the started-after-whitelist refusal
 * (through the ASCEND_EMU_START_NS_OFFSET test hook).
 */
#include "emu_test.h"

#define SIZE (64u * 1024u)

enum { CMD_EXIT, CMD_TGID, CMD_IMPORT, CMD_SETPID, CMD_CLOSE, CMD_SETENV, CMD_UNSETENV };

struct cmd {
    int op;
    int arg;
    char name[64];
    char value[64];
};

struct kid {
    pid_t pid;
    struct chan c;
};

static char g_key[65];

/* A child that executes commands from the parent and answers each with an int. */
static void kid_loop(struct chan *c)
{
    for (;;) {
        struct cmd m;
        recv_all(c->to_child[0], &m, sizeof m);
        int r = 0;
        switch (m.op) {
        case CMD_EXIT:
            exit(0);
        case CMD_TGID: {
            int32_t pid = 0;
            CHECK_EQ(aclrtDeviceGetBareTgid(&pid), 0);
            r = pid;
            break;
        }
        case CMD_IMPORT: {
            void *p = NULL;
            r = aclrtIpcMemImportByKey(&p, g_key, ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT);
            if (r == 0) {
                CHECK(has_pattern((unsigned char *)p, SIZE, (unsigned)m.arg));
                fill_pattern((unsigned char *)p, SIZE, (unsigned)m.arg + 1);
                CHECK_EQ(aclrtIpcMemClose(g_key), 0);
            } else {
                CHECK(p == NULL);
            }
            break;
        }
        case CMD_SETPID: {
            int32_t pid = m.arg;
            r = aclrtIpcMemSetImportPid(g_key, &pid, 1);
            break;
        }
        case CMD_CLOSE:
            r = aclrtIpcMemClose(g_key);
            break;
        case CMD_SETENV:
            r = setenv(m.name, m.value, 1);
            break;
        case CMD_UNSETENV:
            r = unsetenv(m.name);
            break;
        default:
            exit(2);
        }
        send_all(c->to_parent[1], &r, sizeof r);
    }
}

static void kid_start(struct kid *k)
{
    chan_open(&k->c);
    k->pid = fork();
    CHECK(k->pid >= 0);
    if (k->pid == 0) {
        chan_child(&k->c);
        kid_loop(&k->c);
    }
    chan_parent(&k->c);
}

static int kid_do(struct kid *k, int op, int arg, const char *name, const char *value)
{
    struct cmd m;
    memset(&m, 0, sizeof m);
    m.op = op;
    m.arg = arg;
    if (name != NULL) {
        snprintf(m.name, sizeof m.name, "%s", name);
    }
    if (value != NULL) {
        snprintf(m.value, sizeof m.value, "%s", value);
    }
    send_all(k->c.to_child[1], &m, sizeof m);
    int r = 0;
    recv_all(k->c.to_parent[0], &r, sizeof r);
    return r;
}

static void kid_stop(struct kid *k)
{
    struct cmd m;
    memset(&m, 0, sizeof m);
    m.op = CMD_EXIT;
    send_all(k->c.to_child[1], &m, sizeof m);
    CHECK_EQ(wait_child(k->pid), 0);
    close(k->c.to_child[1]);
    close(k->c.to_parent[0]);
}

int main(void)
{
    const char *dir = use_fresh_dir();
    CHECK_EQ(aclrtSetDevice(0), 0);
    void *p = NULL;
    CHECK_EQ(aclrtMalloc(&p, SIZE, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    fill_pattern((unsigned char *)p, SIZE, 10);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, SIZE, g_key, 65, ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT), 0);

    struct kid a, b, c, d;
    kid_start(&a);
    kid_start(&b);
    kid_start(&c);
    int32_t pa = kid_do(&a, CMD_TGID, 0, NULL, NULL);
    int32_t pb = kid_do(&b, CMD_TGID, 0, NULL, NULL);
    CHECK_EQ(pa, a.pid);
    CHECK_EQ(pb, b.pid);

    /* nobody whitelisted yet */
    CHECK_EQ(kid_do(&a, CMD_IMPORT, 10, NULL, NULL), EMU_DRV);
    CHECK_EQ(aclrtIpcMemSetImportPid(g_key, &pa, 1), 0);
    /* B is not on the list; A is and shares memory both ways */
    CHECK_EQ(kid_do(&b, CMD_IMPORT, 10, NULL, NULL), EMU_DRV);
    CHECK_EQ(kid_do(&a, CMD_IMPORT, 10, NULL, NULL), 0);
    CHECK(has_pattern((unsigned char *)p, SIZE, 11));

    /* only the exporter may whitelist or destroy the key */
    CHECK_EQ(kid_do(&b, CMD_SETPID, pb, NULL, NULL), EMU_DRV);
    CHECK_EQ(kid_do(&a, CMD_SETPID, pb, NULL, NULL), EMU_DRV);
    CHECK_EQ(kid_do(&b, CMD_CLOSE, 0, NULL, NULL), EMU_DRV);
    CHECK_EQ(kid_do(&a, CMD_CLOSE, 0, NULL, NULL), EMU_DRV); /* its import is already closed */
    CHECK_EQ(kid_do(&b, CMD_IMPORT, 11, NULL, NULL), EMU_DRV); /* B's SetImportPid had no effect */

    /* a later call adds to the list */
    CHECK_EQ(aclrtIpcMemSetImportPid(g_key, &pb, 1), 0);
    CHECK_EQ(kid_do(&b, CMD_IMPORT, 11, NULL, NULL), 0);
    CHECK(has_pattern((unsigned char *)p, SIZE, 12));

    /* started after it was whitelisted (test hook shifts A's start one hour later) */
    CHECK_EQ(kid_do(&a, CMD_SETENV, 0, "ASCEND_EMU_START_NS_OFFSET", "3600000000000"), 0);
    CHECK_EQ(kid_do(&a, CMD_IMPORT, 12, NULL, NULL), EMU_DRV);
    /* whitelisting again now does not help a process that "starts" in an hour */
    CHECK_EQ(aclrtIpcMemSetImportPid(g_key, &pa, 1), 0);
    CHECK_EQ(kid_do(&a, CMD_IMPORT, 12, NULL, NULL), EMU_DRV);
    CHECK_EQ(kid_do(&a, CMD_SETENV, 0, "ASCEND_EMU_START_NS_OFFSET", "-1000000000"), 0);
    CHECK_EQ(kid_do(&a, CMD_IMPORT, 12, NULL, NULL), 0);
    CHECK_EQ(kid_do(&a, CMD_UNSETENV, 0, "ASCEND_EMU_START_NS_OFFSET", NULL), 0);
    CHECK_EQ(kid_do(&a, CMD_IMPORT, 13, NULL, NULL), 0);
    CHECK(has_pattern((unsigned char *)p, SIZE, 14));

    /* container: the bare tgid differs from getpid(); whitelisting getpid() is wrong */
    CHECK_EQ(kid_do(&c, CMD_SETENV, 0, "ASCEND_EMU_BARE_TGID_OFFSET", "1000000"), 0);
    int32_t pc_bare = kid_do(&c, CMD_TGID, 0, NULL, NULL);
    CHECK_EQ(pc_bare, c.pid + 1000000);
    int32_t pc_wrong = c.pid;
    CHECK_EQ(aclrtIpcMemSetImportPid(g_key, &pc_wrong, 1), 0);
    CHECK_EQ(kid_do(&c, CMD_IMPORT, 14, NULL, NULL), EMU_DRV);
    CHECK_EQ(aclrtIpcMemSetImportPid(g_key, &pc_bare, 1), 0);
    CHECK_EQ(kid_do(&c, CMD_IMPORT, 14, NULL, NULL), 0);
    CHECK(has_pattern((unsigned char *)p, SIZE, 15));

    /* 31 pids per call at most; the 31st entry is honoured */
    kid_start(&d);
    int32_t pd = kid_do(&d, CMD_TGID, 0, NULL, NULL);
    int32_t list[32];
    for (int i = 0; i < 32; i++) {
        list[i] = 3000000 + i;
    }
    list[30] = pd;
    list[31] = pd;
    CHECK_EQ(aclrtIpcMemSetImportPid(g_key, list, 32), EMU_PARAM);
    CHECK_EQ(kid_do(&d, CMD_IMPORT, 15, NULL, NULL), EMU_DRV);
    CHECK_EQ(aclrtIpcMemSetImportPid(g_key, list, 31), 0);
    CHECK_EQ(kid_do(&d, CMD_IMPORT, 15, NULL, NULL), 0);
    CHECK(has_pattern((unsigned char *)p, SIZE, 16));

    /* after the exporter closed the key nobody can import it */
    CHECK_EQ(aclrtIpcMemClose(g_key), 0);
    CHECK_EQ(kid_do(&a, CMD_IMPORT, 16, NULL, NULL), EMU_DRV);
    CHECK_EQ(kid_do(&d, CMD_IMPORT, 16, NULL, NULL), EMU_DRV);
    CHECK_EQ(aclrtIpcMemSetImportPid(g_key, &pa, 1), EMU_DRV);

    kid_stop(&a);
    kid_stop(&b);
    kid_stop(&c);
    kid_stop(&d);
    CHECK_EQ(aclrtFree(p), 0);
    CHECK_EQ(count_files(dir, ""), 0);
    remove_dir(dir);
    printf("emu.whitelist: ok\n");
    return 0;
}
