/*
 * emu.ns: processes in other pid namespaces (containers), for real: each peer
 * runs as pid 1 of its own pid namespace with its own /proc (and a private
 * mount namespace holding a bind mount of the host's /proc). The emulator
 * must know them by their host pids: the bare tgid, the whitelist, exporter
 * identity and liveness all work across namespaces, and two peers that are
 * both pid 1 are told apart.
 *
 * Needs root (unshare). Where namespaces cannot be created the test says so
 * and exits 77 (CTest: skipped); with CI=true that is a failure instead.
 */
#include <sched.h>
#include <sys/mount.h>

#include "emu_test.h"

#define SIZE (8u * 4096u)
#define SKIPPED 77

enum { OP_EXIT, OP_IDS, OP_EXPORT, OP_SETPID, OP_IMPORT, OP_CLOSE };

struct cmd {
    int op;
    int32_t pid;
    uint64_t flags;
    unsigned seed;
    char key[65];
};

struct reply {
    int32_t ret;
    int32_t getpid;
    int32_t tgid;
    char key[65];
};

struct peer {
    pid_t host_pid; /* of the process that runs the commands */
    pid_t helper;   /* our child; the peer is its child (or itself, outside namespaces) */
    struct chan c;
};

static char g_hostproc[64]; /* where the peers see the host's /proc */

/* ------------------------------------------------------------------ peers */

static void peer_loop(struct chan *c)
{
    void *mem = NULL;
    for (;;) {
        struct cmd m;
        recv_all(c->to_child[0], &m, sizeof m);
        struct reply r;
        memset(&r, 0, sizeof r);
        switch (m.op) {
        case OP_EXIT:
            exit(0);
        case OP_IDS:
            r.getpid = (int32_t)getpid();
            r.ret = aclrtDeviceGetBareTgid(&r.tgid);
            break;
        case OP_EXPORT:
            r.ret = aclrtMalloc(&mem, SIZE, ACL_MEM_MALLOC_HUGE_FIRST);
            if (r.ret == 0) {
                fill_pattern((unsigned char *)mem, SIZE, m.seed);
                r.ret = aclrtIpcMemGetExportKey(mem, SIZE, r.key, sizeof r.key, m.flags);
            }
            break;
        case OP_SETPID:
            r.ret = aclrtIpcMemSetImportPid(m.key, &m.pid, 1);
            break;
        case OP_IMPORT: {
            void *p = NULL;
            r.ret = aclrtIpcMemImportByKey(&p, m.key, ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT);
            if (r.ret == 0) {
                CHECK(has_pattern((unsigned char *)p, SIZE, m.seed));
                fill_pattern((unsigned char *)p, SIZE, m.seed + 1);
                CHECK_EQ(aclrtIpcMemClose(m.key), 0);
            } else {
                CHECK(p == NULL);
            }
            break;
        }
        case OP_CLOSE:
            r.ret = aclrtIpcMemClose(m.key);
            break;
        default:
            exit(2);
        }
        send_all(c->to_parent[1], &r, sizeof r);
    }
}

static struct reply peer_do(struct peer *p, int op, const char *key, int32_t pid, uint64_t flags, unsigned seed)
{
    struct cmd m;
    memset(&m, 0, sizeof m);
    m.op = op;
    m.pid = pid;
    m.flags = flags;
    m.seed = seed;
    if (key != NULL) {
        snprintf(m.key, sizeof m.key, "%s", key);
    }
    send_all(p->c.to_child[1], &m, sizeof m);
    struct reply r;
    recv_all(p->c.to_parent[0], &r, sizeof r);
    return r;
}

/* What the helper reports: the peer's host pid, or where setting up failed. */
struct report {
    int stage; /* 0: ok; 1: unshare refused; 2: other setup failure */
    int err;
    pid_t pid;
};

/*
 * Starts a peer as pid 1 of a new pid namespace with its own /proc.
 * with_switch: the peer gets ASCEND_EMU_HOST_PROC (the host's /proc, bind
 * mounted); otherwise it has only its own /proc. Returns 0, or the failed
 * report's stage.
 */
static int peer_start_ns(struct peer *p, int with_switch, struct report *out)
{
    int rep[2];
    CHECK_EQ(pipe(rep), 0);
    chan_open(&p->c);
    p->helper = fork();
    CHECK(p->helper >= 0);
    if (p->helper == 0) {
        chan_child(&p->c);
        close(rep[0]);
        struct report r = {0, 0, 0};
        if (unshare(CLONE_NEWNS) != 0) {
            r.stage = 1;
        } else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
                   mount("/proc", g_hostproc, NULL, MS_BIND, NULL) != 0) {
            r.stage = 2;
        } else if (unshare(CLONE_NEWPID) != 0) {
            r.stage = 1;
        }
        if (r.stage != 0) {
            r.err = errno;
            send_all(rep[1], &r, sizeof r);
            _exit(SKIPPED);
        }
        pid_t k = fork();
        if (k == 0) {
            close(rep[1]);
            /* pid 1 of the new namespace: its own /proc, as in a container */
            if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
                perror("mount /proc");
                _exit(3);
            }
            if (with_switch) {
                CHECK_EQ(setenv("ASCEND_EMU_HOST_PROC", g_hostproc, 1), 0);
            } else {
                CHECK_EQ(unsetenv("ASCEND_EMU_HOST_PROC"), 0);
            }
            peer_loop(&p->c);
        }
        r.stage = k < 0 ? 2 : 0;
        r.err = k < 0 ? errno : 0;
        r.pid = k; /* we are still in the host's namespace: a host pid */
        send_all(rep[1], &r, sizeof r);
        close(rep[1]);
        close(p->c.to_child[0]); /* the peer holds its own copies */
        close(p->c.to_parent[1]);
        _exit(k < 0 ? 2 : wait_child(k)); /* 128+N when the peer was killed by signal N */
    }
    chan_parent(&p->c);
    close(rep[1]);
    recv_all(rep[0], out, sizeof *out);
    close(rep[0]);
    if (out->stage != 0) {
        wait_child(p->helper);
        return out->stage;
    }
    p->host_pid = out->pid;
    return 0;
}

/* A peer in our own namespace (a plain fork child). */
static void peer_start_plain(struct peer *p)
{
    chan_open(&p->c);
    p->helper = fork();
    CHECK(p->helper >= 0);
    if (p->helper == 0) {
        chan_child(&p->c);
        peer_loop(&p->c);
    }
    chan_parent(&p->c);
    p->host_pid = p->helper;
}

static void peer_ns(struct peer *p, int with_switch)
{
    struct report r;
    int stage = peer_start_ns(p, with_switch, &r);
    if (stage == 0) {
        return;
    }
    const char *ci = getenv("CI");
    int must = ci != NULL && strcmp(ci, "true") == 0;
    fprintf(stderr, "emu.ns: %s: cannot create a pid and mount namespace (%s: %s)%s\n",
            must ? "FAIL" : "SKIPPED", stage == 1 ? "unshare" : "mount", strerror(r.err),
            must ? " and CI=true" : "; needs root (or CAP_SYS_ADMIN)");
    rmdir(g_hostproc);
    remove_dir(emu_test_dir);
    exit(must ? 1 : SKIPPED);
}

static void peer_stop(struct peer *p)
{
    struct cmd m;
    memset(&m, 0, sizeof m);
    m.op = OP_EXIT;
    send_all(p->c.to_child[1], &m, sizeof m);
    CHECK_EQ(wait_child(p->helper), 0);
    close(p->c.to_child[1]);
    close(p->c.to_parent[0]);
}

static void peer_kill(struct peer *p)
{
    CHECK_EQ(kill(p->host_pid, SIGKILL), 0);
    int st = wait_child(p->helper);
    CHECK_EQ(st, 128 + SIGKILL); /* the peer itself, or its helper's report of it */
    close(p->c.to_child[1]);
    close(p->c.to_parent[0]);
}

/* The last NSpid entry of a host process: its pid in its own namespace. */
static long inner_pid(pid_t host_pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)host_pid);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0);
    buf[n] = '\0';
    char *line = strstr(buf, "\nNSpid:");
    CHECK(line != NULL);
    char *end = strchr(line + 1, '\n');
    if (end != NULL) {
        *end = '\0';
    }
    char *last = strrchr(line, '\t');
    CHECK(last != NULL);
    return strtol(last + 1, NULL, 10);
}

/* Start time (field 22 of /proc/<pid>/stat) of a host process, as the host sees it. */
static unsigned long long host_start_ticks(pid_t host_pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)host_pid);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    CHECK(p != NULL);
    unsigned long long start = 0;
    int field = 2;
    for (char *save = NULL, *tok = strtok_r(p + 1, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        if (++field == 22) {
            start = strtoull(tok, NULL, 10);
            break;
        }
    }
    CHECK(start > 0);
    return start;
}

/* ------------------------------------------------------------------ tests */

/* Inside: getpid() is 1; the bare tgid is the host pid (with the switch), or
 * 1 when the peer can only see its own /proc. */
static void test_identity(void)
{
    struct peer a, b;
    peer_ns(&a, 1);
    peer_ns(&b, 0);
    CHECK(a.host_pid != b.host_pid);
    CHECK_EQ(inner_pid(a.host_pid), 1);
    CHECK_EQ(inner_pid(b.host_pid), 1);
    struct reply r = peer_do(&a, OP_IDS, NULL, 0, 0, 0);
    CHECK_EQ(r.ret, 0);
    CHECK_EQ(r.getpid, 1);
    CHECK_EQ(r.tgid, a.host_pid);
    r = peer_do(&b, OP_IDS, NULL, 0, 0, 0);
    CHECK_EQ(r.ret, 0);
    CHECK_EQ(r.getpid, 1);
    CHECK_EQ(r.tgid, 1);
    peer_stop(&a);
    peer_stop(&b);
}

/* Exporter on the host, importers in two namespaces, both pid 1 there. */
static void test_host_exports(void)
{
    struct peer a, b;
    peer_ns(&a, 1);
    peer_ns(&b, 1);
    void *mem = NULL;
    char key[65];
    CHECK_EQ(aclrtMalloc(&mem, SIZE, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    fill_pattern((unsigned char *)mem, SIZE, 10);
    CHECK_EQ(aclrtIpcMemGetExportKey(mem, SIZE, key, sizeof key, 0), 0);

    /* whitelisting the pid a container sees for itself does not let it in */
    int32_t inside = 1;
    CHECK_EQ(aclrtIpcMemSetImportPid(key, &inside, 1), 0);
    CHECK_EQ(peer_do(&a, OP_IMPORT, key, 0, 0, 10).ret, EMU_DRV);
    CHECK_EQ(peer_do(&b, OP_IMPORT, key, 0, 0, 10).ret, EMU_DRV);

    /* its bare tgid does, and only for that one of the two pid-1 processes */
    int32_t tgid_a = peer_do(&a, OP_IDS, NULL, 0, 0, 0).tgid;
    CHECK_EQ(tgid_a, a.host_pid);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, &tgid_a, 1), 0);
    CHECK_EQ(peer_do(&a, OP_IMPORT, key, 0, 0, 10).ret, 0);
    CHECK(has_pattern((unsigned char *)mem, SIZE, 11)); /* a's bytes, seen here */
    CHECK_EQ(peer_do(&b, OP_IMPORT, key, 0, 0, 11).ret, EMU_DRV);
    /* not the exporter: neither may whitelist or destroy the key */
    CHECK_EQ(peer_do(&b, OP_SETPID, key, b.host_pid, 0, 0).ret, EMU_DRV);
    CHECK_EQ(peer_do(&a, OP_CLOSE, key, 0, 0, 0).ret, EMU_DRV);
    CHECK_EQ(aclrtIpcMemClose(key), 0);

    /* open mode: both */
    CHECK_EQ(aclrtIpcMemGetExportKey(mem, SIZE, key, sizeof key, ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION), 0);
    CHECK_EQ(peer_do(&a, OP_IMPORT, key, 0, 0, 11).ret, 0);
    CHECK_EQ(peer_do(&b, OP_IMPORT, key, 0, 0, 12).ret, 0);
    CHECK(has_pattern((unsigned char *)mem, SIZE, 13));
    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(aclrtFree(mem), 0);
    peer_stop(&a);
    peer_stop(&b);
}

/* Exporters in namespaces: exporter identity and liveness by host pid. */
static void test_ns_exports(void)
{
    struct peer a, b, h;
    peer_ns(&a, 1);
    peer_ns(&b, 1);
    peer_start_plain(&h);
    struct reply ra = peer_do(&a, OP_EXPORT, NULL, 0, 0, 20);
    CHECK_EQ(ra.ret, 0);
    struct reply rb = peer_do(&b, OP_EXPORT, NULL, 0, 0, 30);
    CHECK_EQ(rb.ret, 0);
    /* each is known by its host pid and the start time the host sees for it */
    char live[600];
    snprintf(live, sizeof live, "%s/live-%ld-%llu", emu_test_dir, (long)a.host_pid, host_start_ticks(a.host_pid));
    CHECK_EQ(access(live, F_OK), 0);
    snprintf(live, sizeof live, "%s/live-%ld-%llu", emu_test_dir, (long)b.host_pid, host_start_ticks(b.host_pid));
    CHECK_EQ(access(live, F_OK), 0);

    /* b is pid 1 too, but not a's key's exporter */
    CHECK_EQ(peer_do(&b, OP_SETPID, ra.key, h.host_pid, 0, 0).ret, EMU_DRV);
    CHECK_EQ(peer_do(&b, OP_CLOSE, ra.key, 0, 0, 0).ret, EMU_DRV);
    CHECK_EQ(peer_do(&h, OP_IMPORT, ra.key, 0, 0, 20).ret, EMU_DRV);
    /* a whitelists the host process's bare tgid (which a cannot see in its /proc) */
    CHECK_EQ(peer_do(&a, OP_SETPID, ra.key, h.host_pid, 0, 0).ret, 0);
    CHECK_EQ(peer_do(&h, OP_IMPORT, ra.key, 0, 0, 20).ret, 0);
    CHECK_EQ(peer_do(&b, OP_IMPORT, ra.key, 0, 0, 21).ret, EMU_DRV);
    /* and a namespace peer whitelists another namespace peer */
    CHECK_EQ(peer_do(&b, OP_SETPID, rb.key, a.host_pid, 0, 0).ret, 0);
    CHECK_EQ(peer_do(&a, OP_IMPORT, rb.key, 0, 0, 30).ret, 0);

    /* a dies without cleanup: its key is gone for everyone, in every namespace */
    peer_kill(&a);
    CHECK_EQ(peer_do(&h, OP_IMPORT, ra.key, 0, 0, 21).ret, EMU_DRV);
    /* b's key is alive and still importable by a whitelisted host process */
    CHECK_EQ(peer_do(&b, OP_SETPID, rb.key, h.host_pid, 0, 0).ret, 0);
    CHECK_EQ(peer_do(&h, OP_IMPORT, rb.key, 0, 0, 31).ret, 0);
    CHECK_EQ(peer_do(&b, OP_CLOSE, rb.key, 0, 0, 0).ret, 0);
    peer_stop(&b);
    peer_stop(&h);
}

/* A host exporter dies: an importer in a namespace (it cannot see the
 * exporter in its /proc) learns it is gone; its files are swept. */
static void test_host_exporter_dies(void)
{
    struct peer a, e;
    peer_ns(&a, 1);
    peer_start_plain(&e);
    struct reply re = peer_do(&e, OP_EXPORT, NULL, 0, ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION, 40);
    CHECK_EQ(re.ret, 0);
    CHECK_EQ(peer_do(&a, OP_IMPORT, re.key, 0, 0, 40).ret, 0);
    peer_kill(&e);
    CHECK_EQ(peer_do(&a, OP_IMPORT, re.key, 0, 0, 41).ret, EMU_DRV);
    peer_stop(&a);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--open-dir") == 0) {
        void *p = NULL;
        CHECK_EQ(aclrtSetDevice(0), 0);
        CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
        CHECK_EQ(aclrtFree(p), 0);
        return 0;
    }
    use_fresh_dir();
    snprintf(g_hostproc, sizeof g_hostproc, "/tmp/emuhostproc-XXXXXX");
    CHECK(mkdtemp(g_hostproc) != NULL);
    CHECK_EQ(aclrtSetDevice(0), 0);

    test_identity();
    test_host_exports();
    test_ns_exports();
    test_host_exporter_dies();

    /* the killed processes' files are swept by the next process that opens the directory */
    pid_t s = fork();
    CHECK(s >= 0);
    if (s == 0) {
        execl("/proc/self/exe", "emu_test_ns", "--open-dir", (char *)NULL);
        _exit(127);
    }
    CHECK_EQ(wait_child(s), 0);
    CHECK_EQ(count_files(emu_test_dir, ""), 0);
    remove_dir(emu_test_dir);
    CHECK_EQ(rmdir(g_hostproc), 0);
    printf("emu.ns: ok\n");
    return 0;
}
