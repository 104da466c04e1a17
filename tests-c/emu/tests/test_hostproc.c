/*
 * emu.hostproc: where the emulator learns this process's host pid (the bare
 * tgid), without namespaces: ASCEND_EMU_HOST_PROC pointing at a fake proc
 * directory whose self/status names another pid, read once per process and
 * again in a fork child; an unreadable one makes the query report -1; the
 * host pid names the process's files and trace lines; a process owns a live
 * file exactly while it owns memory or keys.
 */
#include "emu_test.h"

static char g_fake[256];

/* A fake proc directory whose self/status holds the given text. */
static const char *fake_proc(const char *name, const char *status)
{
    snprintf(g_fake, sizeof g_fake, "/tmp/emuproc-%s-XXXXXX", name);
    CHECK(mkdtemp(g_fake) != NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/self", g_fake);
    CHECK_EQ(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/self/status", g_fake);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fputs(status, f) >= 0);
    CHECK_EQ(fclose(f), 0);
    return g_fake;
}

static void remove_fake(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/self/status", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/self", dir);
    rmdir(path);
    rmdir(dir);
}

static int32_t tgid(void)
{
    int32_t pid = 0;
    CHECK_EQ(aclrtDeviceGetBareTgid(&pid), 0);
    return pid;
}

/* Runs body in a fresh fork child (a new process: it resolves its pid anew). */
static void in_child(void (*body)(const char *), const char *arg)
{
    pid_t k = fork();
    CHECK(k >= 0);
    if (k == 0) {
        body(arg);
        exit(0);
    }
    CHECK_EQ(wait_child(k), 0);
}

/* Whether dir holds an entry starting with "<prefix><pid>-". */
static int has_file_of(const char *dir, const char *prefix, long pid)
{
    char want[64];
    snprintf(want, sizeof want, "%s%ld-", prefix, pid);
    return count_files(dir, want) > 0;
}

static void body_fake_nspid(const char *dir)
{
    CHECK_EQ(setenv("ASCEND_EMU_HOST_PROC", dir, 1), 0);
    CHECK_EQ(tgid(), 4242);
    /* read once per process: changing the switch now changes nothing */
    CHECK_EQ(setenv("ASCEND_EMU_HOST_PROC", "/nonexistent", 1), 0);
    CHECK_EQ(tgid(), 4242);
    /* the container offset still applies, on top of the host pid */
    CHECK_EQ(setenv("ASCEND_EMU_BARE_TGID_OFFSET", "10", 1), 0);
    CHECK_EQ(tgid(), 4252);
    CHECK_EQ(unsetenv("ASCEND_EMU_BARE_TGID_OFFSET"), 0);

    /* the host pid names this process's files and trace lines */
    char trace[] = "/tmp/emutrace-XXXXXX";
    int fd = mkstemp(trace);
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ(setenv("ASCEND_EMU_TRACE", trace, 1), 0);
    void *p = NULL;
    char key[65];
    CHECK_EQ(count_files(emu_test_dir, "live-"), 0);
    CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    CHECK(has_file_of(emu_test_dir, "mem-", 4242));
    CHECK(has_file_of(emu_test_dir, "live-", 4242));
    CHECK(!has_file_of(emu_test_dir, "mem-", (long)getpid()));
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, key, 65, 0), 0);
    /* the own-pid skip of SetImportPid compares with the host pid */
    int32_t self = 4242;
    CHECK_EQ(aclrtIpcMemSetImportPid(key, &self, 1), EMU_PARAM);
    int32_t other = (int32_t)getpid();
    CHECK_EQ(aclrtIpcMemSetImportPid(key, &other, 1), 0);
    CHECK_EQ(aclrtFree(p), 0);
    CHECK(has_file_of(emu_test_dir, "live-", 4242)); /* the key is still ours */
    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(count_files(emu_test_dir, "live-"), 0); /* owns nothing any more */
    CHECK_EQ(unsetenv("ASCEND_EMU_TRACE"), 0);
    char got[512];
    fd = open(trace, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, got, sizeof got - 1);
    close(fd);
    unlink(trace);
    CHECK(n > 0);
    got[n] = '\0';
    const char *expect =
        "4242 aclrtMalloc 0\n4242 aclrtIpcMemGetExportKey 0\n4242 aclrtIpcMemSetImportPid 107000\n"
        "4242 aclrtIpcMemSetImportPid 0\n4242 aclrtFree 0\n4242 aclrtIpcMemClose 0\n";
    if (strcmp(got, expect) != 0) {
        fprintf(stderr, "trace:\n%s\nexpected:\n%s\n", got, expect);
        exit(1);
    }

    /* a fork child is a new process: it reads the switch again */
    const char *second = fake_proc("second", "Name:\tx\nNStgid:\t5151\t7\nNSpid:\t5151\t7\n");
    CHECK_EQ(setenv("ASCEND_EMU_HOST_PROC", second, 1), 0);
    pid_t k = fork();
    CHECK(k >= 0);
    if (k == 0) {
        CHECK_EQ(tgid(), 5151);
        exit(0);
    }
    CHECK_EQ(wait_child(k), 0);
    CHECK_EQ(tgid(), 4242);
    remove_fake(second);
}

/* NStgid (the thread group's pids) wins over NSpid; the first entry counts. */
static void body_fake_nstgid(const char *dir)
{
    CHECK_EQ(setenv("ASCEND_EMU_HOST_PROC", dir, 1), 0);
    CHECK_EQ(tgid(), 777);
}

/* An unreadable host /proc: the driver query "fails" (-1, success). */
static void body_unreadable(const char *dir)
{
    CHECK_EQ(setenv("ASCEND_EMU_HOST_PROC", dir, 1), 0);
    int32_t pid = 0;
    CHECK_EQ(aclrtDeviceGetBareTgid(&pid), 0);
    CHECK_EQ(pid, -1);
    /* the process still works, under its own pid */
    void *p = NULL;
    CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    CHECK(has_file_of(emu_test_dir, "mem-", (long)getpid()));
    CHECK_EQ(aclrtFree(p), 0);
}

/* Without the switch: the host pid of a process in the host's namespace. */
static void body_no_switch(const char *unused)
{
    (void)unused;
    CHECK_EQ(unsetenv("ASCEND_EMU_HOST_PROC"), 0);
    CHECK_EQ(tgid(), getpid());
    /* the real host /proc given explicitly says the same */
    pid_t k = fork();
    CHECK(k >= 0);
    if (k == 0) {
        CHECK_EQ(setenv("ASCEND_EMU_HOST_PROC", "/proc", 1), 0);
        CHECK_EQ(tgid(), getpid());
        exit(0);
    }
    CHECK_EQ(wait_child(k), 0);
}

/* The live file: held while the process owns something, gone at exit. */
static void test_live_file(void)
{
    struct chan c;
    chan_open(&c);
    pid_t k = fork();
    CHECK(k >= 0);
    if (k == 0) {
        chan_child(&c);
        void *p = NULL;
        CHECK_EQ(aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
        send_all(c.to_parent[1], "m", 1);
        char b;
        recv_all(c.to_child[0], &b, 1);
        if (b == 'k') {
            _exit(0); /* like a crash: the kernel drops the lock, the files stay */
        }
        exit(0);
    }
    chan_parent(&c);
    char b;
    recv_all(c.to_parent[0], &b, 1);
    CHECK(has_file_of(emu_test_dir, "live-", (long)k));
    /* the live file is locked: nobody may take it */
    char name[600];
    DIR *d = opendir(emu_test_dir);
    CHECK(d != NULL);
    struct dirent *e;
    char want[64];
    snprintf(want, sizeof want, "live-%ld-", (long)k);
    name[0] = '\0';
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, want, strlen(want)) == 0) {
            snprintf(name, sizeof name, "%s/%s", emu_test_dir, e->d_name);
        }
    }
    closedir(d);
    CHECK(name[0] != '\0');
    int fd = open(name, O_RDWR);
    CHECK(fd >= 0);
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    CHECK_EQ(fcntl(fd, F_GETLK, &fl), 0);
    CHECK(fl.l_type != F_UNLCK);
    send_all(c.to_child[1], "k", 1);
    CHECK_EQ(wait_child(k), 0);
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    CHECK_EQ(fcntl(fd, F_GETLK, &fl), 0);
    CHECK_EQ(fl.l_type, F_UNLCK); /* released by the kernel at the crash */
    close(fd);
    CHECK(has_file_of(emu_test_dir, "live-", (long)k));
    CHECK(has_file_of(emu_test_dir, "mem-", (long)k));
    close(c.to_child[1]);
    close(c.to_parent[0]);

    /* the next process that opens the directory sweeps both */
    pid_t s = fork();
    CHECK(s >= 0);
    if (s == 0) {
        execl("/proc/self/exe", "emu_test_hostproc", "--open-dir", (char *)NULL);
        _exit(127);
    }
    CHECK_EQ(wait_child(s), 0);
    CHECK_EQ(count_files(emu_test_dir, ""), 0);
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
    CHECK_EQ(aclrtSetDevice(0), 0);

    const char *dir = fake_proc("nspid", "Name:\tfake\nPid:\t1\nNSpid:\t4242\t1\n");
    in_child(body_fake_nspid, dir);
    remove_fake(dir);

    dir = fake_proc("nstgid", "Name:\tfake\nNStgid:\t777\t1\nNSpid:\t778\t2\n");
    in_child(body_fake_nstgid, dir);
    remove_fake(dir);

    dir = fake_proc("nothing", "Name:\tfake\nPid:\t1\n");
    in_child(body_unreadable, dir);
    remove_fake(dir);
    in_child(body_unreadable, "/nonexistent-emu-host-proc");

    in_child(body_no_switch, NULL);
    test_live_file();

    CHECK_EQ(count_files(emu_test_dir, ""), 0);
    remove_dir(emu_test_dir);
    printf("emu.hostproc: ok\n");
    return 0;
}
