/*
 * Workloads for the fault tests (tests/faults_*.py). Links only the (emulated) runtime;
 * where a workload reads the shim's counters it finds aclIpcGuardGetStats with
 * dlsym(RTLD_DEFAULT) and prints "shim=absent" without it, so every workload also runs
 * without the shim.
 *
 *   faults hammer                 malloc, export, close, free in a loop until killed (every
 *                                 export and close takes the ledger's lock)
 *   faults signal N               N rounds of malloc/export/close/free/tgid while a timer
 *                                 signal every 100 us runs a handler that calls
 *                                 aclrtDeviceGetBareTgid (often while the thread is inside
 *                                 an intercepted function); prints what the handler saw
 *   faults fill N GO M MARKER     N calls, the counters to MARKER, waits until the file GO
 *                                 exists, raises its file size limit (RLIMIT_FSIZE) to the
 *                                 hard limit (room on the disk again), M more calls, exit
 *   faults threads T N            T threads x N cycles across two processes (a fork child
 *                                 with T threads of its own): the exporter thread mallocs,
 *                                 exports and hands the key over a socket; its peer thread
 *                                 imports, reads the pattern, closes, answers; then the
 *                                 exporter closes and frees; each process prints its calls
 *                                 per function and its stats
 */
#include <acl/acl.h>
#include <acl_ipc_guard.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define KEYLEN 65
#define SIZE 8192

typedef int (*stats_fn)(AclIpcGuardStats *);

static void print_stats(const char *who) {
    stats_fn get = (stats_fn)dlsym(RTLD_DEFAULT, "aclIpcGuardGetStats");
    AclIpcGuardStats s;
    if (get == NULL) {
        printf("%s stats shim=absent\n", who);
    } else if (get(&s) != 0) {
        printf("%s stats failed\n", who);
    } else {
        printf("%s stats calls=%llu violations=%llu blocked=%llu dropped=%llu live_exports=%llu live_imports=%llu\n",
               who, (unsigned long long)s.calls, (unsigned long long)s.violations, (unsigned long long)s.blocked,
               (unsigned long long)s.dropped, (unsigned long long)s.live_exports,
               (unsigned long long)s.live_imports);
    }
    fflush(stdout);
}

/* One documented cycle in one process: malloc, export, close, free. */
static void cycle(const char *who) {
    void *p = NULL;
    char key[KEYLEN];
    expect_ret(who, "aclrtMalloc", aclrtMalloc(&p, SIZE, ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
    expect_ret(who, "export", aclrtIpcMemGetExportKey(p, SIZE, key, sizeof key, 1), ACL_SUCCESS);
    expect_ret(who, "close", aclrtIpcMemClose(key), ACL_SUCCESS);
    expect_ret(who, "free", aclrtFree(p), ACL_SUCCESS);
}

__attribute__((noreturn)) static void hammer(void) {
    expect_ret("hammer", "aclrtSetDevice", aclrtSetDevice(0), ACL_SUCCESS);
    printf("hammering\n");
    fflush(stdout);
    for (;;) {
        cycle("hammer");
    }
}

/* ------------------------------------------------------------------ signal */

static volatile sig_atomic_t g_in_handler_calls, g_handler_bad, g_handler_nested;
static volatile sig_atomic_t g_in_call;
static int32_t g_self;

static void on_alarm(int sig) {
    (void)sig;
    int saved = errno;
    int32_t pid = -7;
    aclError r = aclrtDeviceGetBareTgid(&pid);
    if (r != ACL_SUCCESS || pid != g_self) {
        g_handler_bad++;
    }
    g_in_handler_calls++;
    if (g_in_call) {
        g_handler_nested++;
    }
    errno = saved;
}

static int signals(int n) {
    expect_ret("signal", "aclrtSetDevice", aclrtSetDevice(0), ACL_SUCCESS);
    int32_t pid = 0;
    expect_ret("signal", "tgid", aclrtDeviceGetBareTgid(&pid), ACL_SUCCESS);
    g_self = pid;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, NULL);
    long made = 0;
    for (int i = 0; i < n; i++) {
        void *p = NULL;
        char key[KEYLEN];
        int32_t t = 0;
        g_in_call = 1;
        aclError a = aclrtMalloc(&p, SIZE, ACL_MEM_MALLOC_HUGE_FIRST);
        aclError b = aclrtIpcMemGetExportKey(p, SIZE, key, sizeof key, 1);
        aclError c = aclrtIpcMemClose(key);
        aclError d = aclrtFree(p);
        aclError e = aclrtDeviceGetBareTgid(&t);
        g_in_call = 0;
        made += 5;
        if (a || b || c || d || e || t != g_self) {
            printf("round %d: %d %d %d %d %d tgid_ok=%d\n", i, a, b, c, d, e, t == g_self);
            return 1;
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("signal rounds=%d main_calls=%ld handler_bad=%d handler_calls_seen=%d\n", n, made, (int)g_handler_bad,
           g_in_handler_calls > 0);
    fprintf(stderr, "faults: handler calls=%d nested=%d\n", (int)g_in_handler_calls, (int)g_handler_nested);
    return 0;
}

/* ------------------------------------------------------------------ fill */

static int fill(long n, const char *go, long m, const char *marker) {
    int32_t pid = 0;
    for (long i = 0; i < n; i++) {
        expect_ret("fill", "tgid", aclrtDeviceGetBareTgid(&pid), ACL_SUCCESS);
    }
    stats_fn get = (stats_fn)dlsym(RTLD_DEFAULT, "aclIpcGuardGetStats");
    int (*flush)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "aclIpcGuardFlush");
    if (flush != NULL) {
        flush();
    }
    AclIpcGuardStats s = {0};
    if (get != NULL) {
        get(&s);
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", marker);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return 2;
    }
    fprintf(f, "calls=%llu dropped=%llu\n", (unsigned long long)s.calls, (unsigned long long)s.dropped);
    fclose(f);
    rename(tmp, marker);
    for (int i = 0; access(go, F_OK) != 0; i++) {
        if (i > 60000) {
            return 3; /* a minute without the go file */
        }
        usleep(1000);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    for (long i = 0; i < m; i++) {
        expect_ret("fill", "tgid", aclrtDeviceGetBareTgid(&pid), ACL_SUCCESS);
    }
    printf("fill made=%ld\n", n + m);
    return 0;
}

/* ------------------------------------------------------------------ threads */

struct lane {
    int fd;
    int cycles;
    long calls[6]; /* malloc, export, free | import, close (importer), close (exporter) */
};

static void *exporter_lane(void *arg) {
    struct lane *l = arg;
    for (int i = 0; i < l->cycles; i++) {
        void *p = NULL;
        char key[KEYLEN];
        expect_ret("exporter", "aclrtMalloc", aclrtMalloc(&p, SIZE, ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
        l->calls[0]++;
        memset(p, (i & 0x7f) + 1, 64);
        expect_ret("exporter", "export", aclrtIpcMemGetExportKey(p, SIZE, key, sizeof key, 1), ACL_SUCCESS);
        l->calls[1]++;
        xwrite(l->fd, key, KEYLEN);
        char ok;
        xread(l->fd, &ok, 1);
        if (ok != 'y') {
            fprintf(stderr, "exporter: the importer saw the wrong bytes in cycle %d\n", i);
            exit(20);
        }
        expect_ret("exporter", "close", aclrtIpcMemClose(key), ACL_SUCCESS);
        l->calls[5]++;
        expect_ret("exporter", "free", aclrtFree(p), ACL_SUCCESS);
        l->calls[2]++;
    }
    return NULL;
}

static void *importer_lane(void *arg) {
    struct lane *l = arg;
    for (int i = 0; i < l->cycles; i++) {
        char key[KEYLEN];
        xread(l->fd, key, KEYLEN);
        void *q = NULL;
        expect_ret("importer", "import", aclrtIpcMemImportByKey(&q, key, 0), ACL_SUCCESS);
        l->calls[3]++;
        const unsigned char *b = q;
        char ok = 'y';
        for (int j = 0; j < 64; j++) {
            if (b[j] != (unsigned char)((i & 0x7f) + 1)) {
                ok = 'n';
            }
        }
        expect_ret("importer", "close", aclrtIpcMemClose(key), ACL_SUCCESS);
        l->calls[4]++;
        xwrite(l->fd, &ok, 1);
    }
    return NULL;
}

static void run_lanes(const char *who, int nthreads, int cycles, int *fds, void *(*fn)(void *)) {
    struct lane lanes[64];
    pthread_t th[64];
    for (int t = 0; t < nthreads; t++) {
        memset(&lanes[t], 0, sizeof lanes[t]);
        lanes[t].fd = fds[t];
        lanes[t].cycles = cycles;
        if (pthread_create(&th[t], NULL, fn, &lanes[t]) != 0) {
            exit(21);
        }
    }
    long total[6] = {0};
    for (int t = 0; t < nthreads; t++) {
        pthread_join(th[t], NULL);
        for (int k = 0; k < 6; k++) {
            total[k] += lanes[t].calls[k];
        }
    }
    printf("%s pid=%d aclrtMalloc=%ld aclrtIpcMemGetExportKey=%ld aclrtFree=%ld aclrtIpcMemImportByKey=%ld "
           "aclrtIpcMemClose=%ld\n",
           who, (int)getpid(), total[0], total[1], total[2], total[3], total[4] + total[5]);
    print_stats(who);
}

static int threads(int nthreads, int cycles) {
    if (nthreads < 1 || nthreads > 64) {
        return 2;
    }
    int mine[64], theirs[64];
    for (int t = 0; t < nthreads; t++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
            return 2;
        }
        mine[t] = sv[0];
        theirs[t] = sv[1];
    }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        return 2;
    }
    if (child == 0) {
        expect_ret("importer", "aclrtSetDevice", aclrtSetDevice(0), ACL_SUCCESS);
        run_lanes("importer", nthreads, cycles, theirs, importer_lane);
        exit(0);
    }
    expect_ret("exporter", "aclrtSetDevice", aclrtSetDevice(0), ACL_SUCCESS);
    run_lanes("exporter", nthreads, cycles, mine, exporter_lane);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    printf("importer status=%d\n", status);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "hammer") == 0) {
        hammer();
    }
    if (argc >= 3 && strcmp(argv[1], "signal") == 0) {
        return signals(atoi(argv[2]));
    }
    if (argc >= 6 && strcmp(argv[1], "fill") == 0) {
        return fill(atol(argv[2]), argv[3], atol(argv[4]), argv[5]);
    }
    if (argc >= 4 && strcmp(argv[1], "threads") == 0) {
        return threads(atoi(argv[2]), atoi(argv[3]));
    }
    fprintf(stderr, "usage: faults hammer | signal N | fill N GO M MARKER | threads T N\n");
    return 2;
}
