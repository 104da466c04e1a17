/*
 * Workloads for the audit-log tests. Links only the (emulated) runtime; where a workload
 * reads the shim's counters it finds aclIpcGuard* with dlsym(RTLD_DEFAULT, ...) and says
 * "shim=absent" when they are not there, so every workload also runs without the shim.
 *
 *   audit_work mix                  the malloc family, an export, a bad close, frees;
 *                                   prints only return codes and shapes (no addresses)
 *   audit_work threads T N          T threads make N aclrtDeviceGetBareTgid calls each, at once
 *   audit_work exit-thread N busy|idle
 *                                   a second thread makes N calls, then calls exit(0) while
 *                                   the main thread keeps calling (busy: for 3 s at most,
 *                                   then it says so and waits) or waits (idle)
 *   audit_work abort N              N calls, then a close of an unknown key (abort mode ends it)
 *   audit_work fork                 3 calls, fork: the child makes 2 and exits; the parent
 *                                   makes 1, then forks a child that execs "exec-child"
 *   audit_work forks N              N fork children, each making 2 calls; says how many failed
 *   audit_work forks-exit N         N fork children, each making 2 calls and leaving with _exit(0)
 *   audit_work flood N MARKER [GAP_US]
 *                                   N calls (GAP_US microseconds apart, busy-waiting: the
 *                                   pace of a program doing work between calls), then
 *                                   writes the counters to MARKER (atomically), with how
 *                                   often the other threads (the log writer) slept
 *   audit_work capi LOG             the shim's own API: version, stats along a known
 *                                   sequence (importing from "export-child", started with
 *                                   fork + exec), flush (LOG: the log path, %p allowed)
 *   audit_work repeat N             N bad closes and N exports of size 0
 */
#include <acl/acl.h>
#include <acl_ipc_guard.h>

#include <dlfcn.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int (*stats_fn)(AclIpcGuardStats *);
typedef int (*flush_fn)(void);
typedef const char *(*version_fn)(void);

static stats_fn get_stats;
static flush_fn flush_log;
static version_fn version;

static void find_shim(void) {
    get_stats = (stats_fn)dlsym(RTLD_DEFAULT, "aclIpcGuardGetStats");
    flush_log = (flush_fn)dlsym(RTLD_DEFAULT, "aclIpcGuardFlush");
    version = (version_fn)dlsym(RTLD_DEFAULT, "aclIpcGuardVersion");
}

static int tid(void) { return (int)syscall(SYS_gettid); }

static void die(const char *what, long got) {
    fprintf(stderr, "audit_work[%d]: %s: %ld\n", (int)getpid(), what, got);
    exit(10);
}

static void expect(const char *what, aclError got, aclError want) {
    if (got != want) die(what, got);
}

/* Unbuffered output, usable while another thread is inside exit(). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ssize_t w = write(1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
        (void)w;
    }
}

static void print_stats(const char *label) {
    AclIpcGuardStats s;
    if (!get_stats) {
        say("%s shim=absent\n", label);
        return;
    }
    memset(&s, 0xff, sizeof s);
    int r = get_stats(&s);
    say("%s ret=%d calls=%llu violations=%llu blocked=%llu dropped=%llu live_exports=%llu live_imports=%llu\n",
        label, r, (unsigned long long)s.calls, (unsigned long long)s.violations, (unsigned long long)s.blocked,
        (unsigned long long)s.dropped, (unsigned long long)s.live_exports, (unsigned long long)s.live_imports);
}

static void tgid_calls(long n) {
    int32_t p = 0;
    for (long i = 0; i < n; i++) expect("GetBareTgid", aclrtDeviceGetBareTgid(&p), 0);
}

static long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

/* n calls, each gap_us after the one before (busy-waiting, no system call between) */
static void paced_tgid_calls(long n, long gap_us) {
    int32_t p = 0;
    for (long i = 0; i < n; i++) {
        long until = now_us() + gap_us;
        expect("GetBareTgid", aclrtDeviceGetBareTgid(&p), 0);
        while (now_us() < until) {
        }
    }
}

/* ---------------------------------------------------------------- mix */

static const char *shape(void *p) { return p ? ((unsigned long)p % 4096 == 0 ? "aligned" : "set") : "null"; }

static int mix(void) {
    void *a = NULL, *b = NULL, *c = NULL;
    char key[65] = {0};
    int32_t me = 0;
    printf("SetDevice %d\n", aclrtSetDevice(0));
    aclError r = aclrtMalloc(&a, 2 * 4096, ACL_MEM_MALLOC_HUGE_FIRST);
    printf("Malloc %d %s\n", r, shape(a));
    r = aclrtMallocAlign32(&b, 4096, ACL_MEM_MALLOC_NORMAL_ONLY);
    printf("MallocAlign32 %d %s\n", r, shape(b));
    r = aclrtMallocCached(&c, 4096, ACL_MEM_MALLOC_HUGE_ONLY);
    printf("MallocCached %d %s\n", r, shape(c));
    memset(key, 0, sizeof key);
    r = aclrtIpcMemGetExportKey(a, 2 * 4096, key, sizeof key, ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT);
    printf("Export %d keylen=%zu\n", r, strlen(key));
    r = aclrtDeviceGetBareTgid(&me);
    printf("GetBareTgid %d %s\n", r, me == getpid() ? "self" : "other");
    printf("Close(unknown) %d\n", aclrtIpcMemClose("feedbeef"));
    printf("Close %d\n", aclrtIpcMemClose(key));
    const char msg[] = "written through the device";
    char back[sizeof msg] = {0};
    aclrtMemcpy(a, 2 * 4096, msg, sizeof msg, ACL_MEMCPY_HOST_TO_DEVICE);
    aclrtMemcpy(back, sizeof back, a, sizeof msg, ACL_MEMCPY_DEVICE_TO_HOST);
    printf("memory %s\n", strcmp(back, msg) == 0 ? "intact" : "corrupt");
    printf("Free %d\n", aclrtFree(a));
    printf("Free %d\n", aclrtFree(b));
    printf("Free %d\n", aclrtFree(c));
    printf("Free(again) %d\n", aclrtFree(c));
    return 0;
}

/* ---------------------------------------------------------------- threads */

static pthread_barrier_t barrier;
static long per_thread;

static void *thread_calls(void *arg) {
    (void)arg;
    int me = tid();
    pthread_barrier_wait(&barrier);
    tgid_calls(per_thread);
    say("thread tid=%d calls=%ld\n", me, per_thread);
    return NULL;
}

static int threads(int t, long n) {
    pthread_t th[64];
    if (t < 1 || t > 64) return 2;
    per_thread = n;
    pthread_barrier_init(&barrier, NULL, (unsigned)t);
    for (int i = 0; i < t; i++)
        if (pthread_create(&th[i], NULL, thread_calls, NULL)) return 3;
    for (int i = 0; i < t; i++) pthread_join(th[i], NULL);
    return 0;
}

/* ---------------------------------------------------------------- exit from a thread */

static atomic_long main_done;
static atomic_int worker_ready;
static long worker_calls;

static void *exiting_thread(void *arg) {
    (void)arg;
    while (!atomic_load(&worker_ready)) {
    }
    tgid_calls(worker_calls);
    long m = atomic_load(&main_done);
    say("exiting tid=%d worker_done=%ld main_tid=%d main_done=%ld\n", tid(), worker_calls, (int)getpid(), m);
    exit(0);
}

static int exit_thread(long n, int busy) {
    pthread_t th;
    worker_calls = n;
    if (pthread_create(&th, NULL, exiting_thread, NULL)) return 3;
    int32_t p = 0;
    if (busy) {
        /* Busy for at most 3 s: exit() in the other thread must end the process long
           before; if it cannot finish while this thread calls, the process ends after. */
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        atomic_store(&worker_ready, 1);
        for (long i = 1;; i++) {
            expect("GetBareTgid", aclrtDeviceGetBareTgid(&p), 0);
            atomic_fetch_add(&main_done, 1);
            if (i % 1024 == 0) {
                clock_gettime(CLOCK_MONOTONIC, &t);
                if (t.tv_sec - t0.tv_sec >= 3) break;
            }
        }
        say("main finished its calls: %ld\n", atomic_load(&main_done));
        for (;;) pause();
    }
    tgid_calls(100);
    atomic_store(&main_done, 100);
    atomic_store(&worker_ready, 1);
    pthread_join(th, NULL);
    return 4; /* not reached: the thread exits the process */
}

/* ---------------------------------------------------------------- abort */

__attribute__((noinline)) static aclError close_unknown(void) {
    aclError r = aclrtIpcMemClose("feedbeef");
    __asm__ volatile("" ::: "memory");
    return r;
}

static int abort_after(long n) {
    tgid_calls(n);
    say("calls done=%ld\n", n);
    aclError r = close_unknown();
    say("still alive after the bad close: %d\n", r);
    return 0;
}

/* ---------------------------------------------------------------- fork */

static int fork_work(const char *self) {
    tgid_calls(3);
    pid_t child = fork();
    if (child < 0) return 3;
    if (child == 0) {
        tgid_calls(2);
        exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 4;
    tgid_calls(1);
    pid_t ex = fork();
    if (ex < 0) return 5;
    if (ex == 0) {
        execl(self, self, "exec-child", (char *)NULL);
        _exit(127);
    }
    waitpid(ex, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 6;
    say("fork child=%d exec_child=%d\n", (int)child, (int)ex);
    return 0;
}

/* Many fork children that each make calls (their own writer thread starts, parks and is
   woken), as a server forking workers does. Says how many children did not exit 0. */
static int forks(int n) {
    int failed = 0, first = 0;
    tgid_calls(1);
    for (int i = 0; i < n; i++) {
        tgid_calls(1);
        usleep(200); /* the parent's writer thread is idle (parked) at the fork */
        pid_t child = fork();
        if (child < 0) return 3;
        if (child == 0) {
            tgid_calls(1);
            usleep(300);
            tgid_calls(1);
            exit(0);
        }
        int status = 0;
        waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            if (!failed) first = status;
            failed++;
        }
    }
    say("forks=%d failed=%d first_status=%#x\n", n, failed, first);
    return 0;
}

/* As `forks`, but each child makes its two calls back to back and leaves with _exit(0), as
   a Python multiprocessing worker does: no atexit, nothing waits for the log. */
static int forks_exit(int n) {
    int failed = 0;
    tgid_calls(1);
    for (int i = 0; i < n; i++) {
        pid_t child = fork();
        if (child < 0) return 3;
        if (child == 0) {
            tgid_calls(2);
            _exit(0);
        }
        int status = 0;
        waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
    }
    say("forks=%d failed=%d\n", n, failed);
    return 0;
}

/* ---------------------------------------------------------------- flood */

/* Context switches from /proc/self/task: `mine`, this thread's (voluntary and not: how
   often it stopped running), and the return value, the voluntary ones of the process's
   other threads (the shim's log writer): how often they went to sleep. */
static long other_threads_sleeps(long *mine) {
    long me = (long)syscall(SYS_gettid), total = 0;
    *mine = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) die("/proc/self/task", errno);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        int own = atol(e->d_name) == me;
        char path[512], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* a thread that ended meanwhile */
        long v;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1) {
                if (own)
                    *mine += v;
                else
                    total += v;
            } else if (own && sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1) {
                *mine += v;
            }
        fclose(f);
    }
    closedir(d);
    return total;
}

static int flood(long n, const char *marker, long gap_us) {
    if (gap_us > 0)
        paced_tgid_calls(n, gap_us);
    else
        tgid_calls(n);
    AclIpcGuardStats s;
    memset(&s, 0, sizeof s);
    if (!get_stats || get_stats(&s) != 0) die("no stats", 0);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", marker);
    FILE *f = fopen(tmp, "w");
    if (!f) die("marker", errno);
    long stops = 0, sleeps = other_threads_sleeps(&stops);
    fprintf(f, "calls=%llu dropped=%llu writer_sleeps=%ld caller_stops=%ld\n", (unsigned long long)s.calls,
            (unsigned long long)s.dropped, sleeps, stops);
    if (fclose(f) != 0 || rename(tmp, marker) != 0) die("marker", errno);
    return 0;
}

/* ---------------------------------------------------------------- C API */

static long count_lines(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[65536];
    long n = 0;
    while (fgets(line, sizeof line, f))
        if (!needle || strstr(line, needle)) n++;
    fclose(f);
    return n;
}

static int capi(const char *log_template) {
    if (!get_stats) {
        say("shim=absent\n");
        return 0;
    }
    say("version=%s\n", version ? version() : "(missing)");
    say("null=%d\n", get_stats(NULL));
    print_stats("initial");

    void *a = NULL, *b = NULL;
    char k1[65] = {0}, k2[65] = {0};
    int32_t me = 0;
    expect("SetDevice", aclrtSetDevice(0), 0);
    expect("Malloc", aclrtMalloc(&a, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    expect("Malloc", aclrtMalloc(&b, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    expect("Export", aclrtIpcMemGetExportKey(a, 4096, k1, 65, ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT), 0);
    expect("Export", aclrtIpcMemGetExportKey(b, 4096, k2, 65, ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT), 0);
    print_stats("exported2"); /* 4 calls, 2 live exports */
    expect("Close", aclrtIpcMemClose(k2), 0);
    expect("GetBareTgid", aclrtDeviceGetBareTgid(&me), 0);
    print_stats("closed1"); /* 6 calls, 1 live export */

    /* An importer's view: another program (fork + exec) exports its own memory, this
       process imports it. */
    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) return 3;
    pid_t child = fork();
    if (child == 0) {
        close(to_child[1]);
        close(from_child[0]);
        char r[16], w[16];
        snprintf(r, sizeof r, "%d", to_child[0]);
        snprintf(w, sizeof w, "%d", from_child[1]);
        execl("/proc/self/exe", "audit_work", "export-child", r, w, (char *)NULL);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    char ck[65];
    if (read(from_child[0], ck, 65) != 65) {
        int status = 0;
        waitpid(child, &status, 0);
        say("exporting child failed before sending its key: status %#x\n", status);
        return 4;
    }
    void *imp = NULL;
    expect("Import", aclrtIpcMemImportByKey(&imp, ck, 0), 0);
    print_stats("imported1"); /* 7 calls, 1 export, 1 import */

    /* Two violations: an error (blocked in enforce mode) and a warning. */
    aclError bad = aclrtIpcMemClose("feedbeef");
    int32_t own = getpid();
    aclError warn = aclrtIpcMemSetImportPid(k1, &own, 1);
    say("bad_close=%d own_pid=%d\n", bad, warn);
    print_stats("violated"); /* 9 calls, 2 violations */

    expect("Close", aclrtIpcMemClose(ck), 0);
    if (write(to_child[1], "q", 1) != 1) return 5;
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        say("exporting child failed: status %#x\n", status);
        return 6;
    }
    expect("Close", aclrtIpcMemClose(k1), 0);
    expect("Free", aclrtFree(a), 0);
    expect("Free", aclrtFree(b), 0);
    print_stats("closed_all"); /* 13 calls, nothing live */

    /* Flush: a burst of call records, then the file must hold them when Flush returns. */
    char path[4096];
    const char *pp = strstr(log_template, "%p");
    if (pp)
        snprintf(path, sizeof path, "%.*s%d%s", (int)(pp - log_template), log_template, (int)getpid(), pp + 2);
    else
        snprintf(path, sizeof path, "%s", log_template);
    long before = count_lines(path, "\"aclrtDeviceGetBareTgid\"");
    tgid_calls(3000);
    int fr = flush_log ? flush_log() : -1;
    long after = count_lines(path, "\"aclrtDeviceGetBareTgid\"");
    say("flush=%d tgid_records_before=%ld after=%ld\n", fr, before, after);
    print_stats("final");
    return 0;
}

/* The exporter for capi: exports a page without pid validation, sends the key on wfd,
   closes when a byte arrives on rfd. */
static int export_child(int rfd, int wfd) {
    void *m = NULL;
    char ck[65] = {0}, cmd = 0;
    expect("SetDevice", aclrtSetDevice(0), 0);
    expect("Malloc", aclrtMalloc(&m, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    expect("Export", aclrtIpcMemGetExportKey(m, 4096, ck, 65, ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION), 0);
    if (write(wfd, ck, 65) != 65) return 22;
    if (read(rfd, &cmd, 1) != 1) return 23;
    expect("Close", aclrtIpcMemClose(ck), 0);
    expect("Free", aclrtFree(m), 0);
    return 0;
}

/* ---------------------------------------------------------------- repeat */

static int repeat(long n) {
    void *a = NULL;
    char key[65];
    expect("SetDevice", aclrtSetDevice(0), 0);
    expect("Malloc", aclrtMalloc(&a, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    for (long i = 0; i < n; i++) {
        if (aclrtIpcMemClose("feedbeef") == 0) die("unknown close succeeded", i);
        if (aclrtIpcMemGetExportKey(a, 0, key, 65, 0) == 0) die("size-0 export succeeded", i);
    }
    expect("Free", aclrtFree(a), 0);
    print_stats("repeat");
    return 0;
}

int main(int argc, char **argv) {
    find_shim();
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cmd = argc > 1 ? argv[1] : "";
    if (strcmp(cmd, "mix") == 0) return mix();
    if (strcmp(cmd, "threads") == 0 && argc == 4) return threads(atoi(argv[2]), atol(argv[3]));
    if (strcmp(cmd, "exit-thread") == 0 && argc == 4) {
        return exit_thread(atol(argv[2]), strcmp(argv[3], "busy") == 0);
    }
    if (strcmp(cmd, "abort") == 0 && argc == 3) return abort_after(atol(argv[2]));
    if (strcmp(cmd, "fork") == 0) return fork_work("/proc/self/exe");
    if (strcmp(cmd, "forks") == 0 && argc == 3) return forks(atoi(argv[2]));
    if (strcmp(cmd, "forks-exit") == 0 && argc == 3) return forks_exit(atoi(argv[2]));
    if (strcmp(cmd, "exec-child") == 0) {
        tgid_calls(1);
        return 0;
    }
    if (strcmp(cmd, "flood") == 0 && (argc == 4 || argc == 5))
        return flood(atol(argv[2]), argv[3], argc == 5 ? atol(argv[4]) : 0);
    if (strcmp(cmd, "capi") == 0 && argc == 3) return capi(argv[2]);
    if (strcmp(cmd, "export-child") == 0 && argc == 4) return export_child(atoi(argv[2]), atoi(argv[3]));
    if (strcmp(cmd, "repeat") == 0 && argc == 3) return repeat(atol(argv[2]));
    fprintf(stderr, "usage: audit_work mix|threads T N|exit-thread N busy|idle|abort N|fork|forks N|forks-exit N|flood N MARKER [GAP_US]|capi LOG|repeat N\n");
    return 2;
}
