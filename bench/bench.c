/*
 * The shim's own cost: the time a call takes through the shim minus the time the same call
 * takes straight into the same do-nothing runtime (bench/null_runtime.c), both measured in
 * the same process, interleaved, so both see the same machine.
 *
 * Run it under plain LD_PRELOAD of the shim with the mode to measure, and WITHOUT LD_AUDIT:
 * the "direct" calls go through dlsym on the runtime's own handle, which a preload does not
 * interpose, but the shim's audit module (libacl_ipc_guard_audit.so) hands back the shim for
 * exactly such look-ups, so under LD_AUDIT "direct" would be the shim too. The benchmark
 * refuses to run with that module in LD_AUDIT.
 *
 *   bench malloc --threads 1,8 --live 1000,1000000 --samples N
 *       malloc+free pairs; samples are batches of 64 pairs (ns per pair: median and p99
 *       of the batches), with `live` allocations made through the shim beforehand and kept.
 *   bench export --threads 1,8 --keys 100,65000 --samples N
 *       export+close of one allocation per thread; each call timed on its own (ns per
 *       call: p99 of single calls, median of the means of 64 calls), with `keys` other
 *       keys exported through the shim beforehand and kept open.
 *   bench import --threads 1,8 --keys 100,65000 --samples N
 *       import+close in this process of keys a forked exporter process exports and
 *       whitelists for it in rounds of 64 (it closes them once this side has); timed as
 *       export+close; the exporter keeps `keys` other keys open.
 *   bench mem --live 1000000
 *       the shim's memory per live allocation (RssAnon and malloc'd heap, from before to
 *       after that many allocations through the shim, minus the same done directly).
 *   bench logpair --bytes B
 *       log generator for the report's benchmark: an exporter and a forked importer trade
 *       keys in rounds (export, whitelist, import, close, close, free) until their two log
 *       files (ACL_IPC_GUARD_LOG with %p) hold B bytes.
 *
 * Each measure prints one line "row measure=... key=value ..." (parsed by bench/run_bench.py)
 * with direct and shim median and p99 in ns and their differences.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int (*malloc_fn)(void **, size_t, int);
typedef int (*free_fn)(void *);
typedef int (*export_fn)(void *, size_t, char *, size_t, uint64_t);
typedef int (*setpid_fn)(const char *, int32_t *, size_t);
typedef int (*import_fn)(void **, const char *, uint64_t);
typedef int (*close_fn)(const char *);
typedef int (*tgid_fn)(int32_t *);

struct api {
    malloc_fn malloc_;
    free_fn free_;
    export_fn export_;
    setpid_fn setpid;
    import_fn import_;
    close_fn close_;
    tgid_fn tgid;
};

/* the shim's counters (acl_ipc_guard.h's AclIpcGuardStats, copied: the benchmark runs
 * without the shim too) */
struct stats {
    uint64_t calls, violations, blocked, dropped, live_exports, live_imports;
};
typedef int (*stats_fn)(struct stats *);
typedef int (*flush_fn)(void);

static struct api direct, shim;
static int have_shim;
static flush_fn shim_flush; /* aclIpcGuardFlush, when the shim is there */

#define KEY_LEN 65
#define BATCH 64 /* malloc+free pairs per sample; keys per import round */

static uint64_t clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The clock: on x86 the time-stamp counter, read between fences (clock_gettime's readings
 * move in steps of about 10 ns on some virtual machines, too coarse for one call), scaled
 * to ns once at start; elsewhere clock_gettime. Calls are short enough that a thread
 * rarely moves to another CPU in between. */
#if defined(__x86_64__)
#include <x86intrin.h>
static double ns_per_tick = 1.0;
static inline uint64_t ticks(void) {
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}
static void calibrate(void) {
    uint64_t c0 = clock_ns(), t0 = ticks(), c1, t1;
    do { c1 = clock_ns(); t1 = ticks(); } while (c1 - c0 < 50000000);
    ns_per_tick = (double)(c1 - c0) / (double)(t1 - t0);
}
#else
static const double ns_per_tick = 1.0;
static inline uint64_t ticks(void) { return clock_ns(); }
static void calibrate(void) {}
#endif

/* ns from a reading of ticks() until now */
static inline double since(uint64_t t0) { return (double)(ticks() - t0) * ns_per_tick; }

static void die(const char *what) {
    fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void load(struct api *a, void *handle) {
    a->malloc_ = (malloc_fn)dlsym(handle, "aclrtMalloc");
    a->free_ = (free_fn)dlsym(handle, "aclrtFree");
    a->export_ = (export_fn)dlsym(handle, "aclrtIpcMemGetExportKey");
    a->setpid = (setpid_fn)dlsym(handle, "aclrtIpcMemSetImportPid");
    a->import_ = (import_fn)dlsym(handle, "aclrtIpcMemImportByKey");
    a->close_ = (close_fn)dlsym(handle, "aclrtIpcMemClose");
    a->tgid = (tgid_fn)dlsym(handle, "aclrtDeviceGetBareTgid");
    if (!a->malloc_ || !a->free_ || !a->export_ || !a->setpid || !a->import_ || !a->close_ || !a->tgid) {
        fprintf(stderr, "bench: missing symbol: %s\n", dlerror());
        exit(2);
    }
}

static void setup(void) {
    const char *audit = getenv("LD_AUDIT");
    if (audit && strstr(audit, "acl_ipc_guard_audit")) {
        fprintf(stderr, "bench: unset LD_AUDIT: its module turns the direct calls into shim calls\n");
        exit(2);
    }
    void *runtime = dlopen("libascendcl.so", RTLD_NOW | RTLD_NOLOAD);
    if (!runtime) runtime = dlopen("libascendcl.so", RTLD_NOW);
    if (!runtime) { fprintf(stderr, "bench: %s\n", dlerror()); exit(2); }
    load(&direct, runtime);
    load(&shim, RTLD_DEFAULT);
    have_shim = dlsym(RTLD_DEFAULT, "aclIpcGuardGetStats") != NULL;
    shim_flush = (flush_fn)dlsym(RTLD_DEFAULT, "aclIpcGuardFlush");
    if (have_shim && direct.export_ == shim.export_) {
        fprintf(stderr, "bench: the direct calls reach the shim: is LD_AUDIT set?\n");
        exit(2);
    }
}

static struct stats shim_stats(void) {
    struct stats s = {0};
    stats_fn f = (stats_fn)dlsym(RTLD_DEFAULT, "aclIpcGuardGetStats");
    if (f) f(&s);
    return s;
}

/* ---------------------------------------------------------------- samples and rows */

struct samples {
    double *v;
    size_t n, cap;
};

static void push(struct samples *s, double x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) die("realloc");
    }
    s->v[s->n++] = x;
}

static void append(struct samples *to, const struct samples *from) {
    for (size_t i = 0; i < from->n; i++) push(to, from->v[i]);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the q-quantile (nearest rank) of sorted samples */
static double quantile(const struct samples *s, double q) {
    if (s->n == 0) return 0;
    size_t i = (size_t)(q * (double)s->n);
    if (i >= s->n) i = s->n - 1;
    return s->v[i];
}

/* Added time = shim quantile minus direct quantile (median and p99 separately). The
 * median is taken over means of `chunk` consecutive samples of one thread (a batch: the
 * clock moves in steps of about 10 ns on some machines, and the rounding errors of
 * single readings average out over a batch), the p99 over single samples. */
static void print_row(const char *measure, int threads, const char *live_kind, long live, struct samples *d,
                      struct samples *s, struct samples *bd, struct samples *bs, const char *unit) {
    qsort(d->v, d->n, sizeof *d->v, cmp_double);
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
    qsort(bd->v, bd->n, sizeof *bd->v, cmp_double);
    qsort(bs->v, bs->n, sizeof *bs->v, cmp_double);
    double dm = quantile(bd, 0.5), dp = quantile(d, 0.99), sm = quantile(bs, 0.5), sp = quantile(s, 0.99);
    struct stats st = shim_stats();
    const char *mode = getenv("ACL_IPC_GUARD_MODE");
    printf("row measure=%s mode=%s threads=%d %s=%ld unit=%s samples=%zu batches=%zu direct_med=%.1f "
           "direct_p99=%.1f shim_med=%.1f shim_p99=%.1f added_med=%.1f added_p99=%.1f dropped=%llu violations=%llu\n",
           measure, have_shim ? (mode ? mode : "audit") : "none", threads, live_kind, live, unit, s->n, bs->n, dm,
           dp, sm, sp, sm - dm, sp - dp, (unsigned long long)st.dropped, (unsigned long long)st.violations);
    fflush(stdout);
}

/* means of `chunk` consecutive samples (a last partial chunk is left out) */
static void batch_means(struct samples *to, const struct samples *from, size_t chunk) {
    for (size_t i = 0; i + chunk <= from->n; i += chunk) {
        double sum = 0;
        for (size_t j = i; j < i + chunk; j++) sum += from->v[j];
        push(to, sum / (double)chunk);
    }
}

/* Writes the shim's queued records, between batches and outside the timed calls: IPC
 * calls back to back outrun the log writer, and a full queue drops records (counted in
 * `dropped`), a path that is neither the budget's nor a real program's (which makes a few
 * thousand IPC calls a second at most). */
static void drain_log(void) {
    if (shim_flush) shim_flush();
}

/* ---------------------------------------------------------------- threads */

struct worker {
    pthread_t thread;
    int index, threads;
    long samples; /* this thread's share */
    pthread_barrier_t *start;
    struct samples direct, shim;
    void *region;      /* export: this thread's allocation */
    char (*keys)[KEY_LEN]; /* import: this round's keys (shared) */
    long nkeys;        /* import: keys per round */
};

typedef void *(*worker_fn)(void *);

static void run_workers(struct worker *w, int threads, worker_fn fn) {
    for (int i = 0; i < threads; i++)
        if (pthread_create(&w[i].thread, NULL, fn, &w[i]) != 0) die("pthread_create");
    for (int i = 0; i < threads; i++) pthread_join(w[i].thread, NULL);
}

/* merges the workers' samples, prints the row, frees them */
static void report_workers(struct worker *w, int n, const char *measure, const char *live_kind, long live,
                           const char *unit, size_t chunk) {
    struct samples d = {0}, s = {0}, bd = {0}, bs = {0};
    for (int i = 0; i < n; i++) {
        append(&d, &w[i].direct);
        append(&s, &w[i].shim);
        batch_means(&bd, &w[i].direct, chunk);
        batch_means(&bs, &w[i].shim, chunk);
        free(w[i].direct.v);
        free(w[i].shim.v);
    }
    print_row(measure, n, live_kind, live, &d, &s, &bd, &bs, unit);
    free(d.v);
    free(s.v);
    free(bd.v);
    free(bs.v);
}

static long parse_list(const char *arg, long *out, int max) {
    int n = 0;
    char *copy = strdup(arg), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
        out[n++] = atol(tok);
    free(copy);
    return n;
}

/* ---------------------------------------------------------------- malloc+free */

static double malloc_free_batch(const struct api *a) {
    void *p;
    uint64_t t0 = ticks();
    for (int i = 0; i < BATCH; i++) {
        a->malloc_(&p, 4096, 0);
        a->free_(p);
    }
    return since(t0) / BATCH;
}

static void *malloc_worker(void *arg) {
    struct worker *w = arg;
    for (int i = 0; i < 64; i++) { malloc_free_batch(&direct); malloc_free_batch(&shim); }
    pthread_barrier_wait(w->start);
    for (long i = 0; i < w->samples; i++) {
        push(&w->direct, malloc_free_batch(&direct));
        push(&w->shim, malloc_free_batch(&shim));
    }
    return NULL;
}

static void measure_rows(const char *measure, const char *live_kind, long live, long *threads, int nthreads,
                         long samples, worker_fn fn, void (*prepare)(struct worker *), const char *unit,
                         size_t chunk) {
    for (int t = 0; t < nthreads; t++) {
        int n = (int)threads[t];
        struct worker *w = calloc((size_t)n, sizeof *w);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)n);
        for (int i = 0; i < n; i++) {
            w[i].index = i;
            w[i].threads = n;
            w[i].samples = (samples + n - 1) / n;
            w[i].start = &start;
            if (prepare) prepare(&w[i]);
        }
        run_workers(w, n, fn);
        report_workers(w, n, measure, live_kind, live, unit, chunk);
        pthread_barrier_destroy(&start);
        free(w);
    }
}

static int cmd_malloc(long *threads, int nthreads, long *lives, int nlives, long samples) {
    long made = 0;
    for (int l = 0; l < nlives; l++) {
        for (; made < lives[l]; made++) {
            void *p;
            shim.malloc_(&p, 4096, 0);
        }
        measure_rows("malloc+free", "live", lives[l], threads, nthreads, samples, malloc_worker, NULL, "pair", 1);
    }
    return 0;
}

/* ---------------------------------------------------------------- export+close */

static void export_prepare(struct worker *w) {
    shim.malloc_(&w->region, 4096, 0);
}

static double timed_export(const struct api *a, void *region, char *key) {
    uint64_t t0 = ticks();
    a->export_(region, 4096, key, KEY_LEN, 0);
    return since(t0);
}

static double timed_close(const struct api *a, const char *key) {
    uint64_t t0 = ticks();
    a->close_(key);
    return since(t0);
}

static void *export_worker(void *arg) {
    struct worker *w = arg;
    char key[KEY_LEN];
    for (int i = 0; i < 64; i++) {
        timed_export(&direct, w->region, key); timed_close(&direct, key);
        timed_export(&shim, w->region, key); timed_close(&shim, key);
    }
    pthread_barrier_wait(w->start);
    for (long i = 0; i < w->samples; i += 2) {
        push(&w->direct, timed_export(&direct, w->region, key));
        push(&w->direct, timed_close(&direct, key));
        push(&w->shim, timed_export(&shim, w->region, key));
        push(&w->shim, timed_close(&shim, key));
        if (i % BATCH == BATCH - 2) drain_log();
    }
    return NULL;
}

/* the keys kept open in the background, closed at the end (else the exit writes an
 * exit.leak record for each) */
static char (*background)[KEY_LEN];

/* keeps `target` keys exported through the shim and open (each of its own allocation) */
static long grow_keys(long have, long target) {
    if (target > have) {
        background = realloc(background, (size_t)target * KEY_LEN);
        if (!background) die("realloc");
    }
    for (; have < target; have++) {
        void *p;
        shim.malloc_(&p, 4096, 0);
        if (shim.export_(p, 4096, background[have], KEY_LEN, 0) != 0) {
            fprintf(stderr, "bench: background export %ld failed\n", have);
            exit(2);
        }
    }
    return have;
}

static void close_background(long have) {
    for (long i = 0; i < have; i++) shim.close_(background[i]);
}

static int cmd_export(long *threads, int nthreads, long *keys, int nkeys, long samples) {
    long have = 0;
    for (int k = 0; k < nkeys; k++) {
        have = grow_keys(have, keys[k]);
        measure_rows("export+close", "keys", keys[k], threads, nthreads, samples, export_worker, export_prepare, "call",
                     BATCH);
    }
    close_background(have);
    return 0;
}

/* ---------------------------------------------------------------- import+close */

enum { OP_GROW = 1, OP_ROUND, OP_QUIT };
struct request {
    int op;
    long n;
};

static void write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write");
        p += w;
        len -= (size_t)w;
    }
}

static int read_all(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("read");
        if (r == 0) return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* The exporter process: on OP_ROUND it closes the previous round's keys (the importer has
 * closed them) and exports and whitelists n new ones for the importer; on OP_GROW it tops
 * up the keys it keeps open. */
static void exporter(int in, int out, int32_t importer) {
    char (*keys)[KEY_LEN] = NULL;
    void **regions = NULL;
    long have = 0, last = 0, cap = 0;
    struct request rq;
    while (read_all(in, &rq, sizeof rq) == 0) {
        for (long i = 0; i < last; i++) shim.close_(keys[i]);
        last = 0;
        if (rq.op == OP_QUIT) {
            close_background(have);
            break;
        }
        if (rq.op == OP_GROW) {
            have = grow_keys(have, rq.n);
            write_all(out, &have, sizeof have);
            continue;
        }
        if (rq.n > cap) {
            cap = rq.n;
            keys = realloc(keys, (size_t)cap * KEY_LEN);
            regions = realloc(regions, (size_t)cap * sizeof *regions);
            if (!keys || !regions) die("realloc");
            for (long i = 0; i < cap; i++) shim.malloc_(&regions[i], 4096, 0);
        }
        for (long i = 0; i < rq.n; i++) {
            if (shim.export_(regions[i], 4096, keys[i], KEY_LEN, 0) != 0 || shim.setpid(keys[i], &importer, 1) != 0) {
                fprintf(stderr, "bench: exporter: export or whitelist failed\n");
                exit(2);
            }
        }
        last = rq.n;
        drain_log();
        write_all(out, keys, (size_t)rq.n * KEY_LEN);
    }
    _exit(0);
}

static pthread_barrier_t round_start, round_done;

static double timed_import(const struct api *a, void **p, const char *key) {
    uint64_t t0 = ticks();
    a->import_(p, key, 0);
    return since(t0);
}

static void *import_worker(void *arg) {
    struct worker *w = arg;
    long per = w->nkeys / w->threads, first = w->index * per;
    long rounds = (w->samples + 2 * per - 1) / (2 * per);
    for (long r = 0; r < rounds; r++) {
        pthread_barrier_wait(&round_start);
        for (long i = first; i < first + per; i++) {
            void *p;
            const char *key = w->keys[i];
            double di = timed_import(&direct, &p, key), dc = timed_close(&direct, key);
            double si = timed_import(&shim, &p, key), sc = timed_close(&shim, key);
            if (r > 0) { /* the first round warms up */
                push(&w->direct, di); push(&w->direct, dc);
                push(&w->shim, si); push(&w->shim, sc);
            }
        }
        pthread_barrier_wait(&round_done);
    }
    return NULL;
}

static int cmd_import(long *threads, int nthreads, long *keys, int nkeys, long samples) {
    int to_exp[2], from_exp[2];
    if (pipe(to_exp) != 0 || pipe(from_exp) != 0) die("pipe");
    int32_t me = (int32_t)getpid();
    shim.tgid(&me); /* the importer asks for its bare tgid, as real importers do */
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        close(to_exp[1]);
        close(from_exp[0]);
        exporter(to_exp[0], from_exp[1], me);
    }
    close(to_exp[0]);
    close(from_exp[1]);
    char (*batch)[KEY_LEN] = malloc(BATCH * KEY_LEN);
    for (int k = 0; k < nkeys; k++) {
        struct request rq = {OP_GROW, keys[k]};
        long have;
        write_all(to_exp[1], &rq, sizeof rq);
        if (read_all(from_exp[0], &have, sizeof have) != 0) die("exporter gone");
        for (int t = 0; t < nthreads; t++) {
            int n = (int)threads[t];
            struct worker *w = calloc((size_t)n, sizeof *w);
            long per = BATCH / n;
            long per_thread = (samples + n - 1) / n;
            long rounds = (per_thread + 2 * per - 1) / (2 * per);
            pthread_barrier_init(&round_start, NULL, (unsigned)n + 1);
            pthread_barrier_init(&round_done, NULL, (unsigned)n + 1);
            for (int i = 0; i < n; i++) {
                w[i] = (struct worker){.index = i, .threads = n, .samples = per_thread, .keys = batch, .nkeys = per * n};
                if (pthread_create(&w[i].thread, NULL, import_worker, &w[i]) != 0) die("pthread_create");
            }
            for (long r = 0; r < rounds; r++) {
                struct request round = {OP_ROUND, per * n};
                write_all(to_exp[1], &round, sizeof round);
                if (read_all(from_exp[0], batch, (size_t)(per * n) * KEY_LEN) != 0) die("exporter gone");
                pthread_barrier_wait(&round_start);
                pthread_barrier_wait(&round_done);
                drain_log();
            }
            for (int i = 0; i < n; i++) pthread_join(w[i].thread, NULL);
            report_workers(w, n, "import+close", "keys", keys[k], "call", BATCH);
            pthread_barrier_destroy(&round_start);
            pthread_barrier_destroy(&round_done);
            free(w);
        }
    }
    struct request quit = {OP_QUIT, 0};
    write_all(to_exp[1], &quit, sizeof quit);
    int status;
    waitpid(child, &status, 0);
    free(batch);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 2;
}

/* ---------------------------------------------------------------- memory */

/* this process's anonymous resident memory, in bytes */
static long rss_anon(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static long heap_bytes(void) {
    struct mallinfo2 mi = mallinfo2();
    return (long)(mi.uordblks + mi.hblkhd);
}

static int cmd_mem(long live) {
    void **keep = malloc((size_t)live * sizeof *keep);
    memset(keep, 1, (size_t)live * sizeof *keep); /* touched now, so not counted below (not 0: the
                                                     compiler would make malloc+memset a calloc) */
    void *p;
    for (int i = 0; i < 1000; i++) { shim.malloc_(&p, 4096, 0); shim.free_(p); }
    long r0 = rss_anon(), h0 = heap_bytes();
    for (long i = 0; i < live; i++) direct.malloc_(&keep[i], 4096, 0);
    long r1 = rss_anon(), h1 = heap_bytes();
    for (long i = 0; i < live; i++) shim.malloc_(&keep[i], 4096, 0);
    long r2 = rss_anon(), h2 = heap_bytes();
    const char *mode = getenv("ACL_IPC_GUARD_MODE");
    printf("mem mode=%s live=%ld rss_direct=%ld rss_shim=%ld heap_direct=%ld heap_shim=%ld "
           "rss_per_alloc=%.1f heap_per_alloc=%.1f\n",
           have_shim ? (mode ? mode : "audit") : "none", live, r1 - r0, r2 - r1, h1 - h0, h2 - h1,
           (double)((r2 - r1) - (r1 - r0)) / (double)live, (double)((h2 - h1) - (h1 - h0)) / (double)live);
    free(keep);
    return 0;
}

/* ---------------------------------------------------------------- log generator */

static long file_size(const char *pattern, pid_t pid) {
    char path[4096], pidtext[32];
    const char *at = strstr(pattern, "%p");
    if (!at) return 0;
    snprintf(pidtext, sizeof pidtext, "%d", (int)pid);
    snprintf(path, sizeof path, "%.*s%s%s", (int)(at - pattern), pattern, pidtext, at + 2);
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static void log_importer(int in, int out) {
    int32_t tgid;
    shim.tgid(&tgid);
    write_all(out, &tgid, sizeof tgid);
    char keys[BATCH][KEY_LEN];
    long n;
    while (read_all(in, &n, sizeof n) == 0 && n > 0) {
        if (read_all(in, keys, (size_t)n * KEY_LEN) != 0) break;
        for (long i = 0; i < n; i++) {
            void *p;
            if (shim.import_(&p, keys[i], 0) == 0) shim.close_(keys[i]);
        }
        write_all(out, &n, sizeof n);
    }
    exit(0); /* through atexit: the shim writes its summary */
}

static int cmd_logpair(long bytes) {
    const char *log = getenv("ACL_IPC_GUARD_LOG");
    if (!log || !strstr(log, "%p")) { fprintf(stderr, "bench: logpair needs ACL_IPC_GUARD_LOG with %%p\n"); return 2; }
    int to_imp[2], from_imp[2];
    if (pipe(to_imp) != 0 || pipe(from_imp) != 0) die("pipe");
    pid_t child = fork(); /* before any call: two programs of one job, each with its own start */
    if (child < 0) die("fork");
    if (child == 0) {
        close(to_imp[1]);
        close(from_imp[0]);
        log_importer(to_imp[0], from_imp[1]);
    }
    close(to_imp[0]);
    close(from_imp[1]);
    int32_t importer;
    if (read_all(from_imp[0], &importer, sizeof importer) != 0) die("importer gone");
    char keys[BATCH][KEY_LEN];
    void *regions[BATCH];
    /* the writer threads lag a little behind: the pair ends slightly past `bytes` */
    while (file_size(log, getpid()) + file_size(log, child) < bytes) {
        long n = BATCH;
        for (long i = 0; i < n; i++) {
            shim.malloc_(&regions[i], 4096 * (size_t)(1 + i % 4), 0);
            shim.export_(regions[i], 4096, keys[i], KEY_LEN, 0);
            shim.setpid(keys[i], &importer, 1);
        }
        write_all(to_imp[1], &n, sizeof n);
        write_all(to_imp[1], keys, (size_t)n * KEY_LEN);
        if (read_all(from_imp[0], &n, sizeof n) != 0) die("importer gone");
        for (long i = 0; i < n; i++) {
            shim.close_(keys[i]);
            shim.free_(regions[i]);
        }
    }
    long zero = 0;
    write_all(to_imp[1], &zero, sizeof zero);
    int status;
    waitpid(child, &status, 0);
    return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
    fprintf(stderr, "usage: bench malloc|export|import [--threads L] [--live L|--keys L] [--samples N]\n"
                    "       bench mem [--live N]\n       bench logpair --bytes N\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *cmd = argv[1];
    long threads[8] = {1}, sizes[8] = {1000}, samples = 20000, bytes = 1 << 20;
    int nthreads = 1, nsizes = 1;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) usage();
        if (!strcmp(argv[i], "--threads")) nthreads = (int)parse_list(argv[++i], threads, 8);
        else if (!strcmp(argv[i], "--live") || !strcmp(argv[i], "--keys")) nsizes = (int)parse_list(argv[++i], sizes, 8);
        else if (!strcmp(argv[i], "--samples")) samples = atol(argv[++i]);
        else if (!strcmp(argv[i], "--bytes")) bytes = atol(argv[++i]);
        else usage();
    }
    for (int i = 0; i < nthreads; i++)
        if (threads[i] < 1 || threads[i] > BATCH) usage();
    setup();
    calibrate();
    if (!strcmp(cmd, "malloc")) return cmd_malloc(threads, nthreads, sizes, nsizes, samples);
    if (!strcmp(cmd, "export")) return cmd_export(threads, nthreads, sizes, nsizes, samples);
    if (!strcmp(cmd, "import")) return cmd_import(threads, nthreads, sizes, nsizes, samples);
    if (!strcmp(cmd, "mem")) return cmd_mem(sizes[0]);
    if (!strcmp(cmd, "logpair")) return cmd_logpair(bytes);
    usage();
    return 2;
}
