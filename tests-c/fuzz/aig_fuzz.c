/*
 * Fuzz driver for the intercepted functions, through whatever is loaded in front of the
 * runtime (the preloaded shim, or nothing): random calls in a random order with random
 * arguments, from one seed, so that a run with the shim and a run without it can be
 * compared line by line.
 *
 *   aig_fuzz SEED OPS [KEYFILE]
 *
 * Prints one line per call: `PREFIX.N FN RET calls=C [name=value ...]`, where C counts the
 * emulator's own entries for FN during the call (0: the call never reached the runtime) and
 * the values are only relations that do not change from run to run (never an address, a
 * key or a pid). Fork children print with prefix `cK`. Every key the runtime handed out is
 * appended to KEYFILE (one per line), so a test can look for raw keys where none may be.
 * On stderr: `aig_fuzz: pid=P prefix=X` per process, for matching the logs.
 *
 * The arguments are what careless or hostile callers pass, but never memory the runtime
 * itself would touch and find unmapped: NULL; valid pointers; device pointers that are
 * misaligned, freed, imported or plain host addresses (the runtime never dereferences a
 * device pointer on the host); keys placed so that their last byte (their NUL, or the 65th
 * byte of an unterminated key) is the last byte before a PROT_NONE page; key buffers of
 * exactly `len` bytes before that page; pid arrays of exactly `num` entries before it (and a
 * single entry when `num` is more than the runtime accepts, since it then reads none);
 * random sizes, lengths, flags, policies, attributes and pids.
 */
#include <acl/acl.h>
#include <ascend_emu.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define SLOTS 8
#define KEYLEN 65
#define MAX_FORKS 3

static uint64_t g_rng;
static const char *g_prefix = "p";
static int g_keyfd = -1;
static char *g_page; /* keys: one read-write page followed by a PROT_NONE page */
static char *g_arr;  /* pid and server arrays: the same, apart from the keys */
static int g_child_pid; /* the last fork child's pid, a pid other processes may whitelist */

struct alloc {
    char *p;
    size_t size;
    int live;
};
static struct alloc g_allocs[SLOTS];
static char g_keys[SLOTS][KEYLEN]; /* keys this process was given (or zeros) */
static char *g_imports[SLOTS];
static int g_nimports;

/* Every import this process holds, by key, with the runtime's reference count. */
#define MAX_HELD 256
struct held {
    char key[KEYLEN];
    char *addr;
    int refs;
};
static struct held g_held[MAX_HELD];
static int g_nheld;

static uint64_t next(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ULL;
}

static uint64_t below(uint64_t n)
{
    return n ? next() % n : 0;
}

/* The last n bytes before the PROT_NONE page. */
static char *edge(size_t n)
{
    return g_page + PAGE - n;
}

static void line(const char *fn, aclError ret, int calls, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int g_op;

static void line(const char *fn, aclError ret, int calls, const char *fmt, ...)
{
    char extra[256] = "";
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(extra, sizeof extra, fmt, ap);
        va_end(ap);
    }
    printf("%s.%d %s %d calls=%d%s%s\n", g_prefix, g_op, fn, (int)ret, calls, extra[0] ? " " : "", extra);
}

static void save_key(const char *key)
{
    if (g_keyfd < 0) {
        return;
    }
    char buf[KEYLEN + 1];
    size_t n = strnlen(key, KEYLEN - 1);
    memcpy(buf, key, n);
    buf[n] = '\n';
    ssize_t w = write(g_keyfd, buf, n + 1);
    (void)w;
}

/* ------------------------------------------------------------------ argument choices */

static char g_hex_unknown[KEYLEN];
static char g_misaligned_buf[KEYLEN + 8];

/* A key argument (read by the runtime up to its NUL, at most 65 bytes). */
static const char *pick_key(const char **what)
{
    int slot = (int)below(SLOTS);
    switch (below(9)) {
    case 0:
        *what = "null";
        return NULL;
    case 1:
    case 2:
    case 3:
        *what = "slot";
        return g_keys[slot];
    case 4: { /* the same key, its NUL the last byte before the guard page */
        size_t n = strnlen(g_keys[slot], KEYLEN - 1);
        char *k = edge(n + 1);
        memcpy(k, g_keys[slot], n);
        k[n] = '\0';
        *what = "edge";
        return k;
    }
    case 5: { /* 65 hex digits and no NUL, ending at the guard page */
        char *k = edge(KEYLEN);
        for (int i = 0; i < KEYLEN; i++) {
            k[i] = "0123456789abcdef"[below(16)];
        }
        *what = "unterminated";
        return k;
    }
    case 6: /* well formed, never exported */
        for (int i = 0; i < KEYLEN - 1; i++) {
            g_hex_unknown[i] = "0123456789abcdef"[below(16)];
        }
        g_hex_unknown[KEYLEN - 1] = '\0';
        *what = "unknown";
        return g_hex_unknown;
    case 7: { /* a real key at an odd address */
        char *k = g_misaligned_buf + 1 + below(7);
        memcpy(k, g_keys[slot], KEYLEN);
        *what = "misaligned";
        return k;
    }
    default: { /* short or empty, ending at the guard page */
        size_t n = (size_t)below(4);
        char *k = edge(n + 1);
        for (size_t i = 0; i < n; i++) {
            k[i] = (char)('a' + below(26));
        }
        k[n] = '\0';
        *what = "short";
        return k;
    }
    }
}

static char g_host_buf[64];

/* A device-pointer argument (never dereferenced on the host by the runtime). */
static void *pick_devptr(void)
{
    struct alloc *a = &g_allocs[below(SLOTS)];
    switch (below(10)) {
    case 0:
        return NULL;
    case 1:
    case 2:
    case 3:
        return a->p; /* live, freed (dangling) or NULL */
    case 4:
        return a->p ? a->p + 1 + below(a->size > 1 ? a->size - 1 : 1) : NULL;
    case 5:
        return a->p && a->size > PAGE ? a->p + PAGE : a->p;
    case 6:
        return g_nimports ? g_imports[below((uint64_t)g_nimports)] : NULL;
    case 7:
        return g_host_buf;
    case 8:
        return g_page + PAGE; /* the PROT_NONE page itself */
    default:
        return (void *)(uintptr_t)(next() & ~(uintptr_t)0xfff); /* any page address */
    }
}

static size_t pick_size(size_t near)
{
    switch (below(8)) {
    case 0:
        return 0;
    case 1:
        return 1;
    case 2:
        return PAGE;
    case 3:
    case 4:
        return near ? near : PAGE;
    case 5:
        return near + 1;
    case 6:
        return SIZE_MAX;
    default:
        return (size_t)below(1 << 20);
    }
}

static uint64_t pick_flags(void)
{
    switch (below(8)) {
    case 0:
    case 1:
    case 2:
        return 0;
    case 3:
    case 4:
    case 5:
        return 1;
    case 6:
        return 2;
    default:
        return next();
    }
}

static int32_t pick_pid(void)
{
    switch (below(6)) {
    case 0:
        return 0;
    case 1:
        return -1 - (int32_t)below(100);
    case 2:
        return (int32_t)getpid();
    case 3:
        if (g_child_pid > 0) {
            return g_child_pid;
        }
        /* fall through */
    default: /* above any pid_max: never a live process, never our own pid */
        return 4194305 + (int32_t)below(1u << 30);
    }
}

/* One read-write page followed by a PROT_NONE page. */
static char *guarded_page(void)
{
    char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + PAGE, PAGE, PROT_NONE) != 0) {
        perror("aig_fuzz: mmap");
        exit(3);
    }
    return m;
}

/*
 * Keeps a dead device address dead: once the runtime has unmapped memory (a free, the last
 * close of an import), an anonymous PROT_NONE mapping takes its place, so the address stays
 * mapped but dangling and no later allocation can be placed there. Without this a dangling
 * pointer could point into new memory in one run and not in another (the shim's own
 * mappings move the addresses), and runs could not be compared.
 */
static void keep_dead(void *p, size_t len)
{
    len = (len + PAGE - 1) & ~(size_t)(PAGE - 1);
    void *m = mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m != MAP_FAILED && m != p) {
        munmap(m, len); /* a kernel without MAP_FIXED_NOREPLACE put it elsewhere */
    }
}

static struct held *held_of(const char *key)
{
    for (int i = 0; i < g_nheld; i++) {
        if (strncmp(g_held[i].key, key, KEYLEN - 1) == 0) {
            return &g_held[i];
        }
    }
    return NULL;
}

static int count(const char *fn)
{
    return ascendEmuCallCount(fn);
}

#define CALL(fn, expr)                     \
    do {                                   \
        int before_ = count(#fn);          \
        ret = (expr);                      \
        calls = count(#fn) - before_;      \
        name = #fn;                        \
    } while (0)

/* A cheap checksum of the first bytes of memory the runtime mapped for us. */
static unsigned sum16(const char *p)
{
    unsigned s = 0;
    for (int i = 0; i < 16; i++) {
        s = s * 31 + (unsigned char)p[i];
    }
    return s;
}

static void do_malloc(void)
{
    aclError ret;
    int calls;
    const char *name;
    void *out = (void *)(uintptr_t)0x5a5a5a5a;
    void **outp = below(8) == 0 ? NULL : &out;
    size_t size;
    switch (below(6)) {
    case 0:
        size = 0;
        break;
    case 1:
        size = SIZE_MAX;
        break;
    case 2:
        size = PAGE;
        break;
    default:
        size = 1 + (size_t)below(3 * PAGE);
    }
    aclrtMemMallocPolicy policy = (aclrtMemMallocPolicy)(below(4) == 0 ? next() & 0x101107 : below(8));
    switch (below(3)) {
    case 0:
        CALL(aclrtMalloc, aclrtMalloc(outp, size, policy));
        break;
    case 1:
        CALL(aclrtMallocAlign32, aclrtMallocAlign32(outp, size, policy));
        break;
    default:
        CALL(aclrtMallocCached, aclrtMallocCached(outp, size, policy));
    }
    const char *o = outp == NULL ? "none" : out == (void *)(uintptr_t)0x5a5a5a5a ? "unchanged" : "set";
    if (ret == ACL_SUCCESS && outp != NULL) {
        int s = (int)below(SLOTS);
        /* The old allocation of the slot (if live) is simply forgotten: a leak. */
        g_allocs[s].p = out;
        g_allocs[s].size = size;
        g_allocs[s].live = 1;
        memset(out, (int)('A' + s), size < 32 ? size : 32);
    }
    line(name, ret, calls, "size=%zu out=%s", size, o);
}

static void do_free(void)
{
    aclError ret;
    int calls;
    const char *name;
    void *p = pick_devptr();
    CALL(aclrtFree, aclrtFree(p));
    for (int i = 0; i < SLOTS; i++) {
        if (ret == ACL_SUCCESS && g_allocs[i].p == p && g_allocs[i].live) {
            g_allocs[i].live = 0;
            keep_dead(p, g_allocs[i].size);
        }
    }
    line(name, ret, calls, NULL);
}

static void do_export(void)
{
    aclError ret;
    int calls;
    const char *name;
    /* Mostly a live allocation, whole, so that keys come out. */
    struct alloc *a = &g_allocs[below(SLOTS)];
    for (int i = 0; i < SLOTS && !a->live; i++) {
        a = &g_allocs[below(SLOTS)];
    }
    void *p = below(4) ? a->p : pick_devptr();
    size_t size = below(2) ? a->size : pick_size(a->size);
    size_t len;
    switch (below(10)) {
    case 0:
        len = 0;
        break;
    case 1:
        len = 64;
        break;
    case 2:
        len = 256;
        break;
    case 3:
        len = (size_t)below(KEYLEN + 40);
        break;
    default:
        len = KEYLEN;
    }
    /* A buffer of exactly len bytes (at least 1) before the guard page, or NULL. */
    char *key = below(10) == 0 ? NULL : edge(len ? len : 1);
    if (key != NULL) {
        memset(key, 'x', len ? len : 1);
    }
    uint64_t flags = pick_flags();
    CALL(aclrtIpcMemGetExportKey, aclrtIpcMemGetExportKey(p, size, key, len, flags));
    if (ret == ACL_SUCCESS && key != NULL) {
        int s = (int)below(SLOTS);
        memcpy(g_keys[s], key, KEYLEN);
        g_keys[s][KEYLEN - 1] = '\0';
        save_key(key);
    }
    line(name, ret, calls, "len=%zu flags=%" PRIu64, len, flags);
}

static void do_setpid(void)
{
    aclError ret;
    int calls;
    const char *name;
    const char *what;
    const char *key = pick_key(&what);
    size_t num;
    switch (below(6)) {
    case 0:
        num = 0;
        break;
    case 1:
        num = 32 + (size_t)below(1000);
        break;
    case 2:
        num = 1 + (size_t)below(31);
        break;
    default:
        num = 1 + (size_t)below(3);
    }
    size_t n = num >= 1 && num <= 31 ? num : 1;
    int32_t *pids = (int32_t *)(void *)(g_arr + PAGE) - n;
    for (size_t i = 0; i < n; i++) {
        pids[i] = pick_pid();
    }
    if (below(10) == 0) {
        pids = NULL;
    }
    CALL(aclrtIpcMemSetImportPid, aclrtIpcMemSetImportPid(key, pids, num));
    line(name, ret, calls, "key=%s num=%zu", what, num);
}

static void do_import(void)
{
    aclError ret;
    int calls;
    const char *name;
    const char *what;
    const char *key = pick_key(&what);
    void *out = NULL;
    void **outp = below(10) == 0 ? NULL : &out;
    uint64_t flags = pick_flags();
    CALL(aclrtIpcMemImportByKey, aclrtIpcMemImportByKey(outp, key, flags));
    if (ret == ACL_SUCCESS && outp != NULL && out != NULL) {
        int again = -1;
        for (int i = 0; i < g_nimports; i++) {
            if (g_imports[i] == out) {
                again = i;
            }
        }
        if (again < 0) {
            g_imports[g_nimports < SLOTS ? g_nimports++ : (int)below(SLOTS)] = out;
        }
        struct held *h = held_of(key);
        if (h == NULL && g_nheld < MAX_HELD) {
            h = &g_held[g_nheld++];
            memset(h->key, 0, KEYLEN);
            memcpy(h->key, key, strnlen(key, KEYLEN - 1));
            h->addr = out;
            h->refs = 0;
        }
        if (h != NULL) {
            h->refs++;
        }
        line(name, ret, calls, "key=%s flags=%" PRIu64 " again=%d sum=%u", what, flags, again >= 0, sum16(out));
    } else {
        line(name, ret, calls, "key=%s flags=%" PRIu64 " out=%s", what, flags, out ? "set" : "none");
    }
}

static void do_close(void)
{
    aclError ret;
    int calls;
    const char *name;
    const char *what;
    const char *key = pick_key(&what);
    CALL(aclrtIpcMemClose, aclrtIpcMemClose(key));
    struct held *h = ret == ACL_SUCCESS ? held_of(key) : NULL;
    if (h != NULL && h->refs > 0 && --h->refs == 0) {
        keep_dead(h->addr, PAGE); /* the runtime unmapped it: the import's first page */
        *h = g_held[--g_nheld];
    }
    line(name, ret, calls, "key=%s", what);
}

static void do_setattr(void)
{
    aclError ret;
    int calls;
    const char *name;
    const char *what;
    const char *key = pick_key(&what);
    aclrtIpcMemAttrType type = (aclrtIpcMemAttrType)(below(4) ? 0 : below(3));
    uint64_t attr = below(4) ? below(5) : next();
    CALL(aclrtIpcMemSetAttr, aclrtIpcMemSetAttr(key, type, attr));
    line(name, ret, calls, "key=%s type=%d attr=%" PRIu64, what, (int)type, attr);
}

static void do_interserver(void)
{
    aclError ret;
    int calls;
    const char *name;
    const char *what;
    const char *key = pick_key(&what);
    static int32_t inner[4][3];
    size_t num = (size_t)below(4);
    /* Exactly num entries before the guard page (the runtime reads them all). */
    size_t n = num ? num : 1;
    aclrtServerPid *sp = (aclrtServerPid *)(void *)(g_arr + PAGE) - n;
    for (size_t i = 0; i < n; i++) {
        sp[i].sdid = (uint32_t)next();
        sp[i].num = below(5) ? 1 + (size_t)below(3) : 0;
        for (int j = 0; j < 3; j++) {
            inner[i][j] = pick_pid();
        }
        sp[i].pid = below(6) ? inner[i] : NULL;
    }
    if (below(10) == 0) {
        sp = NULL;
    }
    CALL(aclrtIpcMemImportPidInterServer, aclrtIpcMemImportPidInterServer(key, sp, num));
    line(name, ret, calls, "key=%s num=%zu sp=%s", what, num, sp ? "set" : "null");
}

static void do_tgid(void)
{
    aclError ret;
    int calls;
    const char *name;
    int32_t pid = 12345;
    int32_t *out = below(8) == 0 ? NULL : &pid;
    CALL(aclrtDeviceGetBareTgid, aclrtDeviceGetBareTgid(out));
    line(name, ret, calls, "own=%d", out != NULL && pid == (int32_t)getpid());
}

static int g_no_device;

static void do_device(void)
{
    /* Not intercepted: takes the current device away (now and then), or gives it back. */
    aclError ret;
    if (!g_no_device && below(3) == 0) {
        ret = aclrtResetDevice(0);
        g_no_device = ret == ACL_SUCCESS;
    } else {
        ret = aclrtSetDevice((int32_t)below(2));
        g_no_device = ret != ACL_SUCCESS;
    }
    line("device", ret, -1, NULL);
}

static void run_ops(int ops, int depth);

static int g_forks;

static void do_fork(int depth)
{
    if (depth > 0 || g_forks >= MAX_FORKS) {
        return;
    }
    int k = ++g_forks;
    int go[2];
    if (pipe(go) != 0) {
        perror("aig_fuzz: pipe");
        exit(3);
    }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("aig_fuzz: fork");
        exit(3);
    }
    if (child == 0) {
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1) {
            _exit(4);
        }
        close(go[0]);
        static char prefix[16];
        snprintf(prefix, sizeof prefix, "c%d", k);
        g_prefix = prefix;
        g_rng = g_rng * 31 + (uint64_t)k;
        fprintf(stderr, "aig_fuzz: pid=%d prefix=%s\n", (int)getpid(), g_prefix);
        run_ops(20 + (int)below(60), depth + 1);
        fflush(stdout);
        exit(0);
    }
    close(go[0]);
    g_child_pid = (int)child;
    /* Whitelist the child for one of our keys before it starts importing. */
    aclError ret;
    int calls;
    const char *name;
    int32_t pid = (int32_t)child;
    CALL(aclrtIpcMemSetImportPid, aclrtIpcMemSetImportPid(g_keys[below(SLOTS)], &pid, 1));
    line(name, ret, calls, "child=%d", k);
    fflush(stdout);
    if (write(go[1], "g", 1) != 1) {
        perror("aig_fuzz: write");
        exit(3);
    }
    close(go[1]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    line("fork", 0, -1, "child=%d status=%d", k, status);
}

static void run_ops(int ops, int depth)
{
    for (g_op = 1; g_op <= ops; g_op++) {
        uint64_t r = below(100);
        if (r < 18) {
            do_malloc();
        } else if (r < 30) {
            do_free();
        } else if (r < 48) {
            do_export();
        } else if (r < 58) {
            do_setpid();
        } else if (r < 72) {
            do_import();
        } else if (r < 86) {
            do_close();
        } else if (r < 90) {
            do_setattr();
        } else if (r < 94) {
            do_interserver();
        } else if (r < 97) {
            do_tgid();
        } else if (r < 99) {
            do_device();
        } else {
            int op = g_op;
            do_fork(depth);
            g_op = op;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: aig_fuzz SEED OPS [KEYFILE]\n");
        return 2;
    }
    uint64_t seed = strtoull(argv[1], NULL, 0);
    int ops = atoi(argv[2]);
    g_rng = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    if (g_rng == 0) {
        g_rng = 1;
    }
    if (argc > 3) {
        g_keyfd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (g_keyfd < 0) {
            perror("aig_fuzz: KEYFILE");
            return 2;
        }
    }
    g_page = guarded_page();
    g_arr = guarded_page();
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    fprintf(stderr, "aig_fuzz: pid=%d prefix=%s\n", (int)getpid(), g_prefix);
    if (aclrtSetDevice(0) != ACL_SUCCESS) {
        fprintf(stderr, "aig_fuzz: aclrtSetDevice failed\n");
        return 3;
    }
    run_ops(ops, 0);
    printf("end\n");
    return 0;
}
