/*
 * Emulated Ascend runtime (libascendcl.so) for acl-ipc-guard's tests and demo.
 *
 * There is no Ascend device here. "Device memory" is host memory that really
 * is shared between processes: every allocation is a file in the emulator
 * directory, mmap'ed MAP_SHARED. The IPC key registry lives in the same
 * directory, one file per key, so that every process of a job sees it.
 *
 * Emulator directory: $ASCEND_EMU_DIR if set (created with mode 0700 if it
 * does not exist; its parent must exist), else /dev/shm/ascendemu-<uid>
 * (or $TMPDIR/ascendemu-<uid>, /tmp/... when /dev/shm is missing).
 *   mem-<hostpid>-<starttick>-<rand>  backing file of one allocation
 *   key-<64 hex>                      one exported key: struct key_hdr followed
 *                                     by the whitelist (struct wl_entry each)
 *   tmp-<hostpid>-<starttick>-<rand>  a key file being written (then renamed)
 *   live-<hostpid>-<starttick>        POSIX-locked by its process while that
 *                                     process owns files here
 * Cross-process updates of a key file are serialised with flock() on it.
 *
 * Processes are known as the driver knows them, by their pid in the host's
 * pid namespace (the bare tgid) and their start time in clock ticks since
 * boot (field 22 of /proc/self/stat, the same in every pid namespace), so
 * processes of one job in different containers (pid namespaces, each with
 * its own /proc) that share the directory never collide, even when both are
 * pid 1 inside. A process is alive while the kernel keeps its lock on its
 * live file (nobody needs to see it in /proc). Files of processes that are
 * gone are removed by the next process that opens the directory, and count
 * as unknown.
 *
 * The host pid: in the host's namespace, or in a pid namespace whose /proc
 * is still the host's, it is the first NStgid/NSpid entry of
 * /proc/self/status. A process in a pid namespace with its own /proc cannot
 * see it there: give it a bind mount of the host's /proc in
 * ASCEND_EMU_HOST_PROC. Read once per process (a fork child reads again).
 *
 * Environment switches (read at call time unless noted):
 *   ASCEND_EMU_DIR                 emulator directory (read once per process)
 *   ASCEND_EMU_HOST_PROC=DIR       the host's /proc mounted at DIR: the host
 *                                  pid is the first NStgid/NSpid entry of
 *                                  DIR/self/status (read once per process);
 *                                  if that cannot be read, one line on stderr
 *                                  and aclrtDeviceGetBareTgid reports -1
 *   ASCEND_EMU_TRACE=FILE          append "<hostpid> <fn> <ret>" per IPC, bare
 *                                  tgid, malloc-family and free call
 *   ASCEND_EMU_BARE_TGID_FAIL=1    aclrtDeviceGetBareTgid writes -1, returns 0
 *   ASCEND_EMU_BARE_TGID_OFFSET=N  the bare tgid is the host pid + N (a
 *                                  container simulated without namespaces)
 *   ASCEND_EMU_CHIP=A2             SetAttr/ImportPidInterServer return 207000
 *   ASCEND_EMU_START_NS_OFFSET=N   test hook: add N ns to this process's start
 *                                  time when ImportByKey checks it against the
 *                                  time its pid was whitelisted, so a test can
 *                                  make an importer look started later
 *
 * Test hook: int ascendEmuCallCount(const char *fnName) (see ascend_emu.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "acl/acl.h"
#include "ascend_emu.h"

#define EMU_PAGE ((size_t)4096)
#define EMU_KEY_HEX 64
#define EMU_KEY_LEN 65
#define EMU_MAX_PIDS_PER_CALL 31
#define EMU_MAX_WL_ENTRIES 65536
#define EMU_DEVICE_COUNT 8
#define EMU_NAME_MAX 96

/* ------------------------------------------------------------------------ */
/* Call counting and tracing                                                */

#define EMU_FUNCTIONS(X)                                                                     \
    X(aclInit) X(aclFinalize) X(aclrtSetDevice) X(aclrtResetDevice) X(aclrtResetDeviceForce) \
    X(aclrtGetDevice) X(aclrtCreateStream) X(aclrtDestroyStream) X(aclrtDestroyStreamForce)  \
    X(aclrtSynchronizeDevice) X(aclrtMalloc) X(aclrtMallocAlign32) X(aclrtMallocCached)      \
    X(aclrtFree) X(aclrtMemcpy) X(aclrtMemset) X(aclrtDeviceGetBareTgid)                     \
    X(aclrtIpcMemGetExportKey) X(aclrtIpcMemSetImportPid) X(aclrtIpcMemImportPidInterServer) \
    X(aclrtIpcMemImportByKey) X(aclrtIpcMemSetAttr) X(aclrtIpcMemClose)

#define EMU_ENUM(name) FN_##name,
enum emu_fn { EMU_FUNCTIONS(EMU_ENUM) FN_COUNT };
#undef EMU_ENUM

#define EMU_NAME(name) #name,
static const char *const g_fn_names[FN_COUNT] = {EMU_FUNCTIONS(EMU_NAME)};
#undef EMU_NAME

static int g_fn_counts[FN_COUNT];

static void count_call(enum emu_fn fn)
{
    __atomic_fetch_add(&g_fn_counts[fn], 1, __ATOMIC_RELAXED);
}

int ascendEmuCallCount(const char *fnName)
{
    if (fnName == NULL) {
        return -1;
    }
    for (int i = 0; i < FN_COUNT; i++) {
        if (strcmp(g_fn_names[i], fnName) == 0) {
            return __atomic_load_n(&g_fn_counts[i], __ATOMIC_RELAXED);
        }
    }
    return -1;
}

/* One line per call, one write() on an O_APPEND descriptor; pid is the
 * caller's host pid. */
static aclError traced(enum emu_fn fn, aclError ret, long pid)
{
    int saved = errno;
    const char *path = getenv("ASCEND_EMU_TRACE");
    if (path != NULL && path[0] != '\0') {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char line[128];
            int n = snprintf(line, sizeof line, "%ld %s %d\n", pid, g_fn_names[fn], ret);
            if (n > 0 && (size_t)n < sizeof line) {
                ssize_t w = write(fd, line, (size_t)n);
                (void)w;
            }
            close(fd);
        }
    }
    errno = saved;
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Process-local state (guarded by g_mu)                                    */

struct alloc_rec {
    uintptr_t base;
    size_t size;   /* requested size */
    size_t maplen; /* page rounded */
    pid_t owner;
    char name[EMU_NAME_MAX];
};

struct import_rec {
    char key[EMU_KEY_LEN];
    uintptr_t addr;
    size_t maplen;
    unsigned long refs;
};

struct export_rec {
    char key[EMU_KEY_LEN];
    pid_t owner;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_device = -1;

static struct alloc_rec *g_allocs;
static size_t g_nallocs, g_capallocs;
static struct import_rec *g_imports;
static size_t g_nimports, g_capimports;
static struct export_rec *g_exports;
static size_t g_nexports, g_capexports;
static void **g_streams;
static size_t g_nstreams, g_capstreams;

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL) {
        return -1;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

static void lock(void)
{
    pthread_mutex_lock(&g_mu);
}

static void unlock(void)
{
    pthread_mutex_unlock(&g_mu);
}

static void atfork_prepare(void)
{
    pthread_mutex_lock(&g_mu);
}

static void atfork_release(void)
{
    pthread_mutex_unlock(&g_mu);
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        return dflt;
    }
    char *end = NULL;
    errno = 0;
    long r = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0') {
        return dflt;
    }
    return r;
}

static int chip_is_a2(void)
{
    const char *v = getenv("ASCEND_EMU_CHIP");
    return v != NULL && (strcmp(v, "A2") == 0 || strcmp(v, "a2") == 0);
}

static uint64_t now_boottime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        got += (size_t)r;
    }
    if (got == n) {
        return 0;
    }
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    return 0;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

/* Reads a whole small file (a /proc text file) into buf, NUL-terminated. */
static int read_small_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    size_t got = 0;
    while (got < len - 1) {
        ssize_t r = read(fd, buf + got, len - 1 - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    return got > 0 ? 0 : -1;
}

/* Field 22 of a /proc/<pid>/stat file: start time in clock ticks since boot. */
static int read_start_ticks(const char *path, unsigned long long *start)
{
    char buf[1024];
    if (read_small_file(path, buf, sizeof buf) != 0) {
        return -1;
    }
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and ')' */
    if (p == NULL) {
        return -1;
    }
    p++;
    /* p now points at " S ppid ...": field 3 is the first token. */
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        if (++field == 22) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(tok, &end, 10);
            if (errno != 0 || end == tok) {
                return -1;
            }
            *start = v;
            return 0;
        }
    }
    return -1;
}

/*
 * The outermost pid of a /proc/<pid>/status file: the first number of its
 * NStgid: line (NSpid: on kernels or fakes without it). A proc file system
 * lists a process's pids from its own pid namespace inwards, so read through
 * the host's /proc this is the pid in the host's namespace.
 */
static pid_t read_outer_pid(const char *path)
{
    char buf[4096];
    if (read_small_file(path, buf, sizeof buf) != 0) {
        return -1;
    }
    static const char *const tags[] = {"\nNStgid:", "\nNSpid:"};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        const char *at = strstr(buf, tags[i]);
        if (at == NULL) {
            continue;
        }
        at += strlen(tags[i]);
        char *end = NULL;
        errno = 0;
        long v = strtol(at, &end, 10);
        if (errno == 0 && end != at && v > 0 && v <= INT32_MAX) {
            return (pid_t)v;
        }
    }
    return -1;
}

/*
 * Who this process is, as the driver knows it: its pid in the host's pid
 * namespace and its start time (clock ticks since boot, the same in every pid
 * namespace). Everything that names a process across processes uses these two.
 * Resolved once per process: a fork child resolves again (atfork handler, and
 * a change of getpid() for children made without fork()).
 * aclrtDeviceGetBareTgid reads these without the lock, so every access to them
 * is atomic (ID_LOAD, ID_SET; a plain read beside another thread's atomic
 * write is a data race in C11, however harmless on x86). Writes are exchanges:
 * valgrind's helgrind, which cannot tell an atomic load or store from a plain
 * one, takes a locked read-modify-write for a read, so it sees readers only.
 */
#define ID_LOAD(v) __atomic_load_n(&(v), __ATOMIC_ACQUIRE)
#define ID_SET(v, x) ((void)__atomic_exchange_n(&(v), (x), __ATOMIC_ACQ_REL))
static pid_t g_id_for;            /* getpid() when resolved; 0: not yet */
static pid_t g_host_pid;          /* pid in the host's namespace (best known) */
static int g_host_pid_known;      /* 0: ASCEND_EMU_HOST_PROC given but unreadable */
static unsigned long long g_self_start;

static void resolve_identity(void)
{
    pid_t me = getpid();
    if (ID_LOAD(g_id_for) == me) {
        return;
    }
    char path[PATH_MAX];
    const char *host_proc = getenv("ASCEND_EMU_HOST_PROC");
    pid_t host = -1;
    int known = 1;
    if (host_proc != NULL && host_proc[0] != '\0') {
        int n = snprintf(path, sizeof path, "%s/self/status", host_proc);
        if (n > 0 && (size_t)n < sizeof path) {
            host = read_outer_pid(path);
        }
        if (host <= 0) {
            known = 0;
            fprintf(stderr,
                    "ascendemu: ASCEND_EMU_HOST_PROC=%s: no pid in %s/self/status; "
                    "aclrtDeviceGetBareTgid reports -1\n",
                    host_proc, host_proc);
        }
    }
    if (host <= 0) {
        host = read_outer_pid("/proc/self/status");
    }
    if (host <= 0) {
        host = me;
    }
    unsigned long long start = 0;
    if (read_start_ticks("/proc/self/stat", &start) != 0) {
        int n = host_proc != NULL && host_proc[0] != '\0' ? snprintf(path, sizeof path, "%s/self/stat", host_proc) : -1;
        if (n <= 0 || (size_t)n >= sizeof path || read_start_ticks(path, &start) != 0) {
            start = 0;
        }
    }
    ID_SET(g_host_pid, host);
    ID_SET(g_host_pid_known, known);
    ID_SET(g_self_start, start);
    ID_SET(g_id_for, me);
}

/* This process's pid in the host's namespace. */
static pid_t self_host_pid(void)
{
    resolve_identity();
    return ID_LOAD(g_host_pid);
}

/* Start time of this process in clock ticks since boot. */
static unsigned long long self_start_ticks(void)
{
    resolve_identity();
    return ID_LOAD(g_self_start);
}

/* The bare tgid as the driver would report it: the host pid (plus the test
 * offset). Whitelist checks use it even when the query would report -1. */
static int32_t bare_tgid(void)
{
    return (int32_t)((long)self_host_pid() + env_long("ASCEND_EMU_BARE_TGID_OFFSET", 0));
}

/* ------------------------------------------------------------------------ */
/* Emulator directory                                                        */

static char g_dir[PATH_MAX];
static int g_dir_state; /* 0 not resolved, 1 usable, -1 unusable */

struct key_hdr {
    char magic[8];
    int32_t exporter_pid;   /* host pid of the exporting process */
    int32_t exporter_tgid;  /* its bare tgid */
    uint64_t exporter_start; /* its start, clock ticks since boot */
    uint64_t flags;
    uint64_t offset; /* of the exported range within the backing file */
    uint64_t size;
    char backing[EMU_NAME_MAX];
};

struct wl_entry {
    int32_t pid;
    uint32_t reserved;
    uint64_t set_ns; /* CLOCK_BOOTTIME when whitelisted */
};

static const char g_key_magic[8] = {'A', 'S', 'C', 'E', 'M', 'U', 'K', '1'};

static int read_full(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n, off_t off)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = pwrite(fd, (const char *)buf + put, n - put, off + (off_t)put);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        put += (size_t)r;
    }
    return 0;
}

static int valid_hdr(const struct key_hdr *h)
{
    return memcmp(h->magic, g_key_magic, sizeof g_key_magic) == 0 && h->flags <= 1 && h->size > 0 &&
           memchr(h->backing, '\0', sizeof h->backing) != NULL && strncmp(h->backing, "mem-", 4) == 0 &&
           strchr(h->backing, '/') == NULL;
}

/*
 * Liveness, the way the driver knows it without looking at /proc: a process
 * that owns files in the emulator directory (allocations, keys) holds a POSIX
 * write lock on its own live-<hostpid>-<starttick> file there. The kernel
 * drops the lock when the process dies (or execs: the descriptor is
 * close-on-exec), whatever pid namespace anyone is in, and a fork child does
 * not inherit it. So "is (pid, start) alive" is "is its live file locked".
 * The file is created before the process's first file and removed when it
 * owns none any more, or at exit.
 */
static int g_live_fd = -1;
static pid_t g_live_for; /* getpid() of the process holding the lock on g_live_fd */
static char g_live_path[PATH_MAX + 128];

static int live_name(char *out, size_t len, const char *dir, pid_t pid, unsigned long long start)
{
    int n = snprintf(out, len, "%s%slive-%ld-%llu", dir, dir[0] != '\0' ? "/" : "", (long)pid, start);
    return (n > 0 && (size_t)n < len) ? 0 : -1;
}

static int set_lock(int fd, short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    return fcntl(fd, F_SETLK, &fl);
}

static int is_self(pid_t pid, unsigned long long start)
{
    return pid == self_host_pid() && start == self_start_ticks();
}

/* Whether the process (host pid, start) is alive; caller holds g_mu and the
 * directory is resolved. Never opens this process's own live file: closing
 * any descriptor of it would drop our lock. */
static int proc_alive(pid_t pid, unsigned long long start)
{
    if (pid <= 0) {
        return 0;
    }
    if (is_self(pid, start)) {
        return 1;
    }
    char path[PATH_MAX + 128];
    if (live_name(path, sizeof path, g_dir, pid, start) != 0) {
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return 0;
    }
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    int alive = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return alive;
}

/* Forgets a live file inherited from the parent (its lock is the parent's). */
static void live_forget_inherited(void)
{
    if (g_live_fd >= 0 && g_live_for != getpid()) {
        close(g_live_fd); /* releases no lock: this process holds none on it */
        g_live_fd = -1;
    }
}

/* Makes this process known as alive; caller holds g_mu. 0 on success. */
static int live_register(const char *dir)
{
    live_forget_inherited();
    if (g_live_fd >= 0) {
        return 0;
    }
    if (live_name(g_live_path, sizeof g_live_path, dir, self_host_pid(), self_start_ticks()) != 0) {
        return -1;
    }
    /* A sweeper may hold the lock of a stale file of this name for a moment
     * and then unlink it: retry until we hold the lock of the linked file. */
    for (int attempt = 0; attempt < 500; attempt++) {
        int fd = open(g_live_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            break;
        }
        struct stat mine, linked;
        if (set_lock(fd, F_WRLCK) == 0) {
            if (fstat(fd, &mine) == 0 && stat(g_live_path, &linked) == 0 && mine.st_dev == linked.st_dev &&
                mine.st_ino == linked.st_ino) {
                g_live_fd = fd;
                g_live_for = getpid();
                return 0;
            }
        } else if (errno != EAGAIN && errno != EACCES) {
            close(fd);
            break; /* no POSIX locks on this file system */
        }
        close(fd);
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr,
            "ascendemu: cannot hold %s (another live process has this host pid and start time? "
            "a process in its own pid namespace needs ASCEND_EMU_HOST_PROC)\n",
            g_live_path);
    return -1;
}

/* Drops the registration; caller holds g_mu. */
static void live_unregister(void)
{
    live_forget_inherited();
    if (g_live_fd >= 0) {
        unlink(g_live_path); /* while still locked: no sweeper can race us */
        close(g_live_fd);
        g_live_fd = -1;
    }
}

/* Removes a live file whose process is gone: only while holding its lock. */
static void sweep_live_file(int dfd, const char *name)
{
    long pid = 0;
    unsigned long long start = 0;
    if (sscanf(name + 5, "%ld-%llu", &pid, &start) == 2 && is_self((pid_t)pid, start)) {
        return;
    }
    int fd = openat(dfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return;
    }
    if (set_lock(fd, F_WRLCK) == 0) {
        unlinkat(dfd, name, 0);
    }
    close(fd);
}

/* Removes files left behind by processes that are gone. */
static void sweep_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, "mem-", 4) == 0 || strncmp(n, "tmp-", 4) == 0) {
            long pid = 0;
            unsigned long long start = 0;
            if (sscanf(n + 4, "%ld-%llu-", &pid, &start) == 2 && !proc_alive((pid_t)pid, start)) {
                unlinkat(dfd, n, 0);
            }
        } else if (strncmp(n, "live-", 5) == 0) {
            sweep_live_file(dfd, n);
        } else if (strncmp(n, "key-", 4) == 0) {
            int fd = openat(dfd, n, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0) {
                continue;
            }
            struct key_hdr h;
            int stale = read_full(fd, &h, sizeof h, 0) != 0 || !valid_hdr(&h) ||
                        !proc_alive((pid_t)h.exporter_pid, h.exporter_start);
            close(fd);
            if (stale) {
                unlinkat(dfd, n, 0);
            }
        }
    }
    closedir(d);
}

static int make_dir(const char *path, int strict)
{
    if (mkdir(path, 0700) == 0) {
        return 0;
    }
    if (errno != EEXIST) {
        return -1;
    }
    struct stat st;
    if ((strict ? lstat(path, &st) : stat(path, &st)) != 0 || !S_ISDIR(st.st_mode)) {
        return -1;
    }
    if (strict && st.st_uid != geteuid()) {
        return -1;
    }
    return 0;
}

/* Returns the emulator directory or NULL; caller holds g_mu. */
static const char *emu_dir(void)
{
    if (g_dir_state == 0) {
        const char *env = getenv("ASCEND_EMU_DIR");
        int strict = 0;
        int n;
        if (env != NULL && env[0] != '\0') {
            n = snprintf(g_dir, sizeof g_dir, "%s", env);
        } else {
            struct stat st;
            const char *base = "/dev/shm";
            if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode)) {
                base = getenv("TMPDIR");
                if (base == NULL || base[0] == '\0') {
                    base = "/tmp";
                }
            }
            n = snprintf(g_dir, sizeof g_dir, "%s/ascendemu-%lu", base, (unsigned long)geteuid());
            strict = 1;
        }
        if (n <= 0 || (size_t)n >= sizeof g_dir - 80 || make_dir(g_dir, strict) != 0) {
            fprintf(stderr, "ascendemu: cannot use emulator directory '%s': %s\n", g_dir, strerror(errno));
            g_dir_state = -1;
        } else {
            g_dir_state = 1;
            sweep_stale(g_dir);
        }
    }
    return g_dir_state == 1 ? g_dir : NULL;
}

/* Key must be 64 lowercase hex characters and a NUL (within 65 bytes). */
static int key_format_ok(const char *key)
{
    if (strnlen(key, EMU_KEY_LEN) != EMU_KEY_HEX) {
        return 0;
    }
    for (int i = 0; i < EMU_KEY_HEX; i++) {
        char c = key[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static int key_path(const char *key, char *out, size_t outlen)
{
    const char *dir = emu_dir();
    if (dir == NULL || !key_format_ok(key)) {
        return -1;
    }
    int n = snprintf(out, outlen, "%s/key-%s", dir, key);
    return (n > 0 && (size_t)n < outlen) ? 0 : -1;
}

/*
 * Opens and locks a live key file and reads its header. On success returns
 * the descriptor (caller unlocks by closing it), else -1.
 */
static int key_open(const char *key, int write, struct key_hdr *h, struct stat *st, char *path,
                    size_t pathlen)
{
    if (key_path(key, path, pathlen) != 0) {
        return -1;
    }
    int fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return -1;
    }
    while (flock(fd, write ? LOCK_EX : LOCK_SH) != 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    /* A key destroyed while we waited for the lock has no links left. */
    if (fstat(fd, st) != 0 || st->st_nlink == 0 || (size_t)st->st_size < sizeof *h ||
        read_full(fd, h, sizeof *h, 0) != 0 || !valid_hdr(h)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int is_me(const struct key_hdr *h)
{
    return is_self((pid_t)h->exporter_pid, h->exporter_start);
}

/* ------------------------------------------------------------------------ */
/* Table lookups (caller holds g_mu)                                         */

static struct alloc_rec *find_alloc_containing(uintptr_t p)
{
    pid_t me = self_host_pid();
    for (size_t i = 0; i < g_nallocs; i++) {
        struct alloc_rec *a = &g_allocs[i];
        if (a->owner == me && p >= a->base && p - a->base < a->size) {
            return a;
        }
    }
    return NULL;
}

static struct import_rec *find_import(const char *key)
{
    for (size_t i = 0; i < g_nimports; i++) {
        if (strcmp(g_imports[i].key, key) == 0) {
            return &g_imports[i];
        }
    }
    return NULL;
}

/* Drops this process's live file once it owns no allocation and no key. */
static void live_release_if_idle(void)
{
    pid_t me = self_host_pid();
    for (size_t i = 0; i < g_nallocs; i++) {
        if (g_allocs[i].owner == me) {
            return;
        }
    }
    for (size_t i = 0; i < g_nexports; i++) {
        if (g_exports[i].owner == me) {
            return;
        }
    }
    live_unregister();
}

static void remove_export(const char *key)
{
    pid_t me = self_host_pid();
    for (size_t i = 0; i < g_nexports; i++) {
        if (g_exports[i].owner == me && strcmp(g_exports[i].key, key) == 0) {
            g_exports[i] = g_exports[--g_nexports];
            return;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Init / fini                                                               */

/* A fork child is a new process: it finds out who it is again, and the live
 * file it inherited is its parent's (the lock stayed with the parent). */
static void atfork_child(void)
{
    ID_SET(g_id_for, 0);
    if (g_live_fd >= 0) {
        close(g_live_fd);
        g_live_fd = -1;
    }
    pthread_mutex_unlock(&g_mu);
}

__attribute__((constructor)) static void emu_init(void)
{
    pthread_atfork(atfork_prepare, atfork_release, atfork_child);
}

/* At exit the "driver" releases what this process still holds. */
__attribute__((destructor)) static void emu_fini(void)
{
    if (pthread_mutex_trylock(&g_mu) != 0) {
        return;
    }
    pid_t me = self_host_pid();
    if (g_dir_state == 1) {
        char path[PATH_MAX + 128];
        for (size_t i = 0; i < g_nexports; i++) {
            if (g_exports[i].owner == me) {
                snprintf(path, sizeof path, "%s/key-%s", g_dir, g_exports[i].key);
                unlink(path);
            }
        }
        for (size_t i = 0; i < g_nallocs; i++) {
            if (g_allocs[i].owner == me) {
                snprintf(path, sizeof path, "%s/%s", g_dir, g_allocs[i].name);
                unlink(path);
            }
        }
    }
    /* The tables go too: a program that dlcloses the runtime must not leak them. */
    free(g_exports);
    free(g_allocs);
    free(g_imports);
    free(g_streams);
    g_exports = NULL;
    g_allocs = NULL;
    g_imports = NULL;
    g_streams = NULL;
    g_nexports = g_capexports = 0;
    g_nallocs = g_capallocs = 0;
    g_nimports = g_capimports = 0;
    g_nstreams = g_capstreams = 0;
    live_unregister();
    pthread_mutex_unlock(&g_mu);
}

/* ------------------------------------------------------------------------ */
/* Implementations (caller holds g_mu)                                       */

static aclError need_device(void)
{
    return g_device < 0 ? ACL_ERROR_RT_CONTEXT_NULL : ACL_SUCCESS;
}

/* Creates, sizes and maps a new backing file; its name goes to rec->name. */
static void *new_backing(const char *dir, size_t maplen, struct alloc_rec *rec)
{
    unsigned char rnd[8];
    char hex[17];
    if (random_bytes(rnd, sizeof rnd) != 0) {
        return NULL;
    }
    to_hex(rnd, sizeof rnd, hex);
    snprintf(rec->name, sizeof rec->name, "mem-%ld-%llu-%s", (long)self_host_pid(), self_start_ticks(), hex);
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/%s", dir, rec->name);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return NULL;
    }
    if (ftruncate(fd, (off_t)maplen) != 0) {
        close(fd);
        unlink(path);
        return NULL;
    }
    /* Reserve the pages now so that running out of space fails here, not
     * with SIGBUS on first touch. Filesystems without fallocate: best effort. */
    if (fallocate(fd, 0, 0, (off_t)maplen) != 0 && errno != EOPNOTSUPP && errno != ENOSYS) {
        close(fd);
        unlink(path);
        return NULL;
    }
    void *p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        unlink(path);
        return NULL;
    }
    return p;
}

static aclError do_malloc(void **devPtr, size_t size)
{
    if (devPtr == NULL || size == 0) {
        return ACL_ERROR_INVALID_PARAM;
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (size > SIZE_MAX - EMU_PAGE || size > (size_t)INT64_MAX) {
        return ACL_ERROR_RT_MEMORY_ALLOCATION;
    }
    size_t maplen = (size + EMU_PAGE - 1) & ~(EMU_PAGE - 1);
    const char *dir = emu_dir();
    if (dir == NULL || grow((void **)&g_allocs, &g_capallocs, g_nallocs, sizeof *g_allocs) != 0) {
        return ACL_ERROR_RT_MEMORY_ALLOCATION;
    }
    /* Known as alive before its first file exists, so no sweeper takes it. */
    if (live_register(dir) != 0) {
        return ACL_ERROR_RT_MEMORY_ALLOCATION;
    }
    struct alloc_rec rec;
    memset(&rec, 0, sizeof rec);
    void *p = new_backing(dir, maplen, &rec);
    if (p == NULL) {
        live_release_if_idle();
        return ACL_ERROR_RT_MEMORY_ALLOCATION;
    }
    rec.base = (uintptr_t)p;
    rec.size = size;
    rec.maplen = maplen;
    rec.owner = self_host_pid();
    g_allocs[g_nallocs++] = rec;
    *devPtr = p;
    return ACL_SUCCESS;
}

static aclError do_free(void *devPtr)
{
    if (devPtr == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    pid_t me = self_host_pid();
    for (size_t i = 0; i < g_nallocs; i++) {
        struct alloc_rec *a = &g_allocs[i];
        if (a->owner == me && a->base == (uintptr_t)devPtr) {
            munmap((void *)a->base, a->maplen);
            if (g_dir_state == 1) {
                char path[PATH_MAX + 128];
                snprintf(path, sizeof path, "%s/%s", g_dir, a->name);
                unlink(path); /* keys exported from it can no longer be imported */
            }
            g_allocs[i] = g_allocs[--g_nallocs];
            live_release_if_idle();
            return ACL_SUCCESS;
        }
    }
    return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
}

static aclError do_export(void *devPtr, size_t size, char *key, size_t len, uint64_t flags)
{
    if (devPtr == NULL || key == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    if (size == 0 || len < EMU_KEY_LEN || flags > ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION) {
        return ACL_ERROR_RT_PARAM_INVALID;
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    uintptr_t p = (uintptr_t)devPtr;
    if (p % EMU_PAGE != 0) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    /* Imported memory is in no allocation of ours, so it is refused here too. */
    struct alloc_rec *a = find_alloc_containing(p);
    if (a == NULL || size > a->size - (p - a->base)) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    const char *dir = emu_dir();
    if (dir == NULL) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    if (grow((void **)&g_exports, &g_capexports, g_nexports, sizeof *g_exports) != 0) {
        return ACL_ERROR_RT_MEMORY_ALLOCATION;
    }
    unsigned char rnd[32];
    char hex[EMU_KEY_LEN];
    unsigned char trnd[8];
    char thex[17];
    if (random_bytes(rnd, sizeof rnd) != 0 || random_bytes(trnd, sizeof trnd) != 0) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    to_hex(rnd, sizeof rnd, hex);
    to_hex(trnd, sizeof trnd, thex);

    struct key_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, g_key_magic, sizeof h.magic);
    h.exporter_pid = (int32_t)self_host_pid();
    h.exporter_tgid = bare_tgid();
    h.exporter_start = self_start_ticks();
    h.flags = flags;
    h.offset = (uint64_t)(p - a->base);
    h.size = (uint64_t)size;
    snprintf(h.backing, sizeof h.backing, "%s", a->name);

    char tmp[PATH_MAX + 128];
    char path[PATH_MAX + 128];
    snprintf(tmp, sizeof tmp, "%s/tmp-%ld-%llu-%s", dir, (long)self_host_pid(), self_start_ticks(), thex);
    snprintf(path, sizeof path, "%s/key-%s", dir, hex);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    int ok = write_full(fd, &h, sizeof h, 0) == 0;
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    struct export_rec *e = &g_exports[g_nexports++];
    memcpy(e->key, hex, EMU_KEY_LEN);
    e->owner = self_host_pid();
    memcpy(key, hex, EMU_KEY_LEN);
    return ACL_SUCCESS;
}

static aclError do_set_import_pid(const char *key, int32_t *pid, size_t num)
{
    if (key == NULL || pid == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    if (num == 0 || num > EMU_MAX_PIDS_PER_CALL) {
        return ACL_ERROR_RT_PARAM_INVALID;
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    struct key_hdr h;
    struct stat st;
    char path[PATH_MAX + 128];
    int fd = key_open(key, 1, &h, &st, path, sizeof path);
    if (fd < 0) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    if (!is_me(&h)) {
        close(fd);
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    if (h.flags & ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION) {
        close(fd);
        return ACL_ERROR_RT_NO_PERMISSION;
    }
    size_t have = ((size_t)st.st_size - sizeof h) / sizeof(struct wl_entry);
    if (have + num > EMU_MAX_WL_ENTRIES) {
        close(fd);
        return ACL_ERROR_RT_MEMORY_ALLOCATION;
    }
    struct wl_entry add[EMU_MAX_PIDS_PER_CALL];
    size_t n = 0;
    int32_t self = bare_tgid();
    uint64_t now = now_boottime_ns();
    for (size_t i = 0; i < num; i++) {
        if (pid[i] == 0 || pid[i] == self) {
            continue; /* silently skipped, as the driver does */
        }
        add[n].pid = pid[i];
        add[n].reserved = 0;
        add[n].set_ns = now;
        n++;
    }
    if (n == 0) {
        close(fd);
        return ACL_ERROR_RT_PARAM_INVALID;
    }
    off_t at = (off_t)(sizeof h + have * sizeof(struct wl_entry));
    int ok = write_full(fd, add, n * sizeof add[0], at) == 0;
    close(fd);
    return ok ? ACL_SUCCESS : ACL_ERROR_RT_DRV_INTERNAL_ERROR;
}

/* Whitelist check for the calling process; fd is a locked key file. */
static int whitelisted(int fd, const struct stat *st, const struct key_hdr *h)
{
    size_t have = ((size_t)st->st_size - sizeof *h) / sizeof(struct wl_entry);
    if (have == 0) {
        return 0;
    }
    struct wl_entry *list = malloc(have * sizeof *list);
    if (list == NULL) {
        return 0;
    }
    if (read_full(fd, list, have * sizeof *list, (off_t)sizeof *h) != 0) {
        free(list);
        return 0;
    }
    int32_t self = bare_tgid();
    int found = 0;
    uint64_t latest = 0;
    for (size_t i = 0; i < have; i++) {
        if (list[i].pid == self) {
            found = 1;
            if (list[i].set_ns > latest) {
                latest = list[i].set_ns;
            }
        }
    }
    free(list);
    if (!found) {
        return 0;
    }
    /* Protection against pid reuse: a process that started after its pid was
     * whitelisted is refused. The start time is in whole clock ticks
     * (truncated), so a process whitelisted after it started always passes. */
    long tck = sysconf(_SC_CLK_TCK);
    if (tck <= 0) {
        tck = 100;
    }
    unsigned long long ticks = self_start_ticks();
    long long start_ns = (long long)(ticks * (1000000000ULL / (unsigned long long)tck));
    start_ns += env_long("ASCEND_EMU_START_NS_OFFSET", 0);
    return start_ns <= 0 || (uint64_t)start_ns <= latest;
}

static aclError do_import(void **devPtr, const char *key, uint64_t flags)
{
    if (devPtr == NULL || key == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    if (flags > ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS) {
        return ACL_ERROR_RT_PARAM_INVALID;
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    struct key_hdr h;
    struct stat st;
    char path[PATH_MAX + 128];
    int fd = key_open(key, 0, &h, &st, path, sizeof path);
    if (fd < 0) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    if (!proc_alive((pid_t)h.exporter_pid, h.exporter_start)) {
        close(fd);
        unlink(path); /* stale: the exporter is gone */
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    if (!(h.flags & ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION)) {
        if (is_me(&h) || !whitelisted(fd, &st, &h)) {
            close(fd);
            return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
        }
    }
    char bpath[PATH_MAX + 128];
    snprintf(bpath, sizeof bpath, "%s/%s", g_dir, h.backing);
    size_t maplen = (size_t)((h.size + EMU_PAGE - 1) & ~(uint64_t)(EMU_PAGE - 1));
    int bfd = open(bpath, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    struct stat bst;
    if (bfd < 0 || fstat(bfd, &bst) != 0 || (uint64_t)bst.st_size < h.offset + maplen) {
        /* the exported memory was freed */
        if (bfd >= 0) {
            close(bfd);
        }
        close(fd);
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    struct import_rec *im = find_import(key);
    if (im != NULL) {
        close(bfd);
        close(fd);
        im->refs++;
        *devPtr = (void *)im->addr;
        return ACL_SUCCESS;
    }
    if (grow((void **)&g_imports, &g_capimports, g_nimports, sizeof *g_imports) != 0) {
        close(bfd);
        close(fd);
        return ACL_ERROR_RT_MEMORY_ALLOCATION;
    }
    void *p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, (off_t)h.offset);
    close(bfd);
    close(fd);
    if (p == MAP_FAILED) {
        return ACL_ERROR_RT_MEMORY_ALLOCATION;
    }
    im = &g_imports[g_nimports++];
    memcpy(im->key, key, EMU_KEY_LEN - 1);
    im->key[EMU_KEY_LEN - 1] = '\0';
    im->addr = (uintptr_t)p;
    im->maplen = maplen;
    im->refs = 1;
    *devPtr = p;
    return ACL_SUCCESS;
}

static aclError do_close(const char *key)
{
    if (key == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!key_format_ok(key)) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    /* A process that imported its own key (no-validation mode) closes the
     * import first, the export with its next close. */
    struct import_rec *im = find_import(key);
    if (im != NULL) {
        if (--im->refs == 0) {
            munmap((void *)im->addr, im->maplen);
            *im = g_imports[--g_nimports];
        }
        return ACL_SUCCESS;
    }
    struct key_hdr h;
    struct stat st;
    char path[PATH_MAX + 128];
    int fd = key_open(key, 1, &h, &st, path, sizeof path);
    if (fd < 0) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    if (!is_me(&h)) {
        close(fd);
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    unlink(path); /* destroyed, under the exclusive lock */
    close(fd);
    remove_export(key);
    live_release_if_idle();
    return ACL_SUCCESS;
}

/* Shared checks of SetAttr and ImportPidInterServer: a live key. */
static aclError lookup_key(const char *key, int need_exporter)
{
    struct key_hdr h;
    struct stat st;
    char path[PATH_MAX + 128];
    int fd = key_open(key, 0, &h, &st, path, sizeof path);
    if (fd < 0) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    int alive = proc_alive((pid_t)h.exporter_pid, h.exporter_start);
    int mine = is_me(&h);
    close(fd);
    if (!alive || (need_exporter && !mine)) {
        return ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    }
    return ACL_SUCCESS;
}

static aclError do_set_attr(const char *key, aclrtIpcMemAttrType type, uint64_t attr)
{
    if (key == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    if (chip_is_a2()) {
        return ACL_ERROR_RT_FEATURE_NOT_SUPPORT;
    }
    if ((int)type != (int)ACL_RT_IPC_MEM_ATTR_ACCESS_LINK || attr > 3) {
        return ACL_ERROR_RT_PARAM_INVALID;
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    return lookup_key(key, 0);
}

static aclError do_inter_server(const char *key, aclrtServerPid *serverPids, size_t num)
{
    if (key == NULL || serverPids == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    if (chip_is_a2()) {
        return ACL_ERROR_RT_FEATURE_NOT_SUPPORT;
    }
    if (num == 0) {
        return ACL_ERROR_RT_PARAM_INVALID;
    }
    for (size_t i = 0; i < num; i++) {
        if (serverPids[i].pid == NULL || serverPids[i].num == 0) {
            return ACL_ERROR_RT_PARAM_INVALID;
        }
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    return lookup_key(key, 1);
}

/* ------------------------------------------------------------------------ */
/* Exported API                                                              */

#define EMU_LOCKED(fn, expr)            \
    do {                                \
        count_call(FN_##fn);            \
        lock();                         \
        aclError emu_ret_ = (expr);     \
        unlock();                       \
        return emu_ret_;                \
    } while (0)

#define EMU_LOCKED_TRACED(fn, expr)                 \
    do {                                            \
        count_call(FN_##fn);                        \
        lock();                                     \
        aclError emu_ret_ = (expr);                 \
        long emu_pid_ = (long)self_host_pid();      \
        unlock();                                   \
        return traced(FN_##fn, emu_ret_, emu_pid_); \
    } while (0)

static aclError do_init(const char *configPath)
{
    (void)configPath; /* any path, or NULL, is accepted */
    return ACL_SUCCESS;
}

aclError aclInit(const char *configPath)
{
    EMU_LOCKED(aclInit, do_init(configPath));
}

aclError aclFinalize(void)
{
    EMU_LOCKED(aclFinalize, ACL_SUCCESS);
}

static aclError do_set_device(int32_t deviceId)
{
    if (deviceId < 0 || deviceId >= EMU_DEVICE_COUNT) {
        return ACL_ERROR_RT_PARAM_INVALID;
    }
    g_device = deviceId;
    return ACL_SUCCESS;
}

static aclError do_reset_device(int32_t deviceId)
{
    if (deviceId < 0 || deviceId >= EMU_DEVICE_COUNT) {
        return ACL_ERROR_RT_PARAM_INVALID;
    }
    if (g_device < 0) {
        return ACL_ERROR_RT_CONTEXT_NULL;
    }
    g_device = -1;
    return ACL_SUCCESS;
}

aclError aclrtSetDevice(int32_t deviceId)
{
    EMU_LOCKED(aclrtSetDevice, do_set_device(deviceId));
}

aclError aclrtResetDevice(int32_t deviceId)
{
    EMU_LOCKED(aclrtResetDevice, do_reset_device(deviceId));
}

aclError aclrtResetDeviceForce(int32_t deviceId)
{
    EMU_LOCKED(aclrtResetDeviceForce, do_reset_device(deviceId));
}

static aclError do_get_device(int32_t *deviceId)
{
    if (deviceId == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    aclError r = need_device();
    if (r == ACL_SUCCESS) {
        *deviceId = g_device;
    }
    return r;
}

aclError aclrtGetDevice(int32_t *deviceId)
{
    EMU_LOCKED(aclrtGetDevice, do_get_device(deviceId));
}

aclError aclrtSynchronizeDevice(void)
{
    EMU_LOCKED(aclrtSynchronizeDevice, need_device());
}

static aclError do_create_stream(aclrtStream *stream)
{
    if (stream == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (grow((void **)&g_streams, &g_capstreams, g_nstreams, sizeof *g_streams) != 0) {
        return ACL_ERROR_RT_MEMORY_ALLOCATION;
    }
    void *s = malloc(16);
    if (s == NULL) {
        return ACL_ERROR_RT_MEMORY_ALLOCATION;
    }
    g_streams[g_nstreams++] = s;
    *stream = s;
    return ACL_SUCCESS;
}

static aclError do_destroy_stream(aclrtStream stream)
{
    if (stream == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    for (size_t i = 0; i < g_nstreams; i++) {
        if (g_streams[i] == stream) {
            free(stream);
            g_streams[i] = g_streams[--g_nstreams];
            return ACL_SUCCESS;
        }
    }
    return ACL_ERROR_RT_PARAM_INVALID;
}

aclError aclrtCreateStream(aclrtStream *stream)
{
    EMU_LOCKED(aclrtCreateStream, do_create_stream(stream));
}

aclError aclrtDestroyStream(aclrtStream stream)
{
    EMU_LOCKED(aclrtDestroyStream, do_destroy_stream(stream));
}

aclError aclrtDestroyStreamForce(aclrtStream stream)
{
    EMU_LOCKED(aclrtDestroyStreamForce, do_destroy_stream(stream));
}

aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy)
{
    (void)policy;
    EMU_LOCKED_TRACED(aclrtMalloc, do_malloc(devPtr, size));
}

aclError aclrtMallocAlign32(void **devPtr, size_t size, aclrtMemMallocPolicy policy)
{
    (void)policy;
    EMU_LOCKED_TRACED(aclrtMallocAlign32, do_malloc(devPtr, size));
}

aclError aclrtMallocCached(void **devPtr, size_t size, aclrtMemMallocPolicy policy)
{
    (void)policy;
    EMU_LOCKED_TRACED(aclrtMallocCached, do_malloc(devPtr, size));
}

aclError aclrtFree(void *devPtr)
{
    EMU_LOCKED_TRACED(aclrtFree, do_free(devPtr));
}

static aclError do_memcpy(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind)
{
    if (dst == NULL || src == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    if (count > destMax || (unsigned)kind > (unsigned)ACL_MEMCPY_DEFAULT) {
        return ACL_ERROR_RT_PARAM_INVALID;
    }
    lock();
    aclError r = need_device();
    unlock();
    if (r != ACL_SUCCESS) {
        return r;
    }
    memmove(dst, src, count); /* outside the lock: all "device" memory is host memory */
    return ACL_SUCCESS;
}

static aclError do_memset(void *devPtr, size_t maxCount, int32_t value, size_t count)
{
    if (devPtr == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    if (count > maxCount) {
        return ACL_ERROR_RT_PARAM_INVALID;
    }
    aclError r = need_device();
    if (r != ACL_SUCCESS) {
        return r;
    }
    memset(devPtr, (int)value, count);
    return ACL_SUCCESS;
}

aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind)
{
    count_call(FN_aclrtMemcpy);
    return do_memcpy(dst, destMax, src, count, kind);
}

aclError aclrtMemset(void *devPtr, size_t maxCount, int32_t value, size_t count)
{
    EMU_LOCKED(aclrtMemset, do_memset(devPtr, maxCount, value, count));
}

static aclError do_bare_tgid(int32_t *pid)
{
    if (pid == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    const char *fail = getenv("ASCEND_EMU_BARE_TGID_FAIL");
    if (fail != NULL && strcmp(fail, "1") == 0) {
        *pid = -1; /* the driver's failure mode: -1 and success */
        return ACL_SUCCESS;
    }
    int32_t tgid = bare_tgid();
    *pid = ID_LOAD(g_host_pid_known) ? tgid : -1; /* ASCEND_EMU_HOST_PROC unreadable: the query failed */
    return ACL_SUCCESS;
}

aclError aclrtDeviceGetBareTgid(int32_t *pid)
{
    /* Once this process knows who it is, the query takes no lock, like the driver's
     * ioctl: a signal handler may ask while its thread is inside another call. */
    if (ID_LOAD(g_id_for) == getpid()) {
        count_call(FN_aclrtDeviceGetBareTgid);
        aclError r = do_bare_tgid(pid);
        return traced(FN_aclrtDeviceGetBareTgid, r, (long)self_host_pid());
    }
    EMU_LOCKED_TRACED(aclrtDeviceGetBareTgid, do_bare_tgid(pid));
}

aclError aclrtIpcMemGetExportKey(void *devPtr, size_t size, char *key, size_t len, uint64_t flags)
{
    EMU_LOCKED_TRACED(aclrtIpcMemGetExportKey, do_export(devPtr, size, key, len, flags));
}

aclError aclrtIpcMemSetImportPid(const char *key, int32_t *pid, size_t num)
{
    EMU_LOCKED_TRACED(aclrtIpcMemSetImportPid, do_set_import_pid(key, pid, num));
}

aclError aclrtIpcMemImportPidInterServer(const char *key, aclrtServerPid *serverPids, size_t num)
{
    EMU_LOCKED_TRACED(aclrtIpcMemImportPidInterServer, do_inter_server(key, serverPids, num));
}

aclError aclrtIpcMemImportByKey(void **devPtr, const char *key, uint64_t flags)
{
    EMU_LOCKED_TRACED(aclrtIpcMemImportByKey, do_import(devPtr, key, flags));
}

aclError aclrtIpcMemSetAttr(const char *key, aclrtIpcMemAttrType type, uint64_t attr)
{
    EMU_LOCKED_TRACED(aclrtIpcMemSetAttr, do_set_attr(key, type, attr));
}

aclError aclrtIpcMemClose(const char *key)
{
    EMU_LOCKED_TRACED(aclrtIpcMemClose, do_close(key));
}
