/*
 * scenario: small programs that use the Ascend IPC memory API right or wrong in one
 * precise way each. Knows nothing of acl-ipc-guard; the tests run it with and without the
 * shim and compare.
 *
 *   scenario NAME     a named single-process scenario (scenario list: the names)
 *   scenario actor    reads commands on stdin, answers each with one line (for scenarios
 *                     that need several processes, driven from Python); `fork IN OUT`
 *                     forks a child that goes on as an actor reading the FIFO IN and
 *                     answering on the FIFO OUT, `reap` waits for such children;
 *                     `thread CMD...` runs one command in a new thread that then exits,
 *                     `exec` starts the actor afresh in this process (execv of itself),
 *                     `own-robust-list` gives the calling thread a robust list of the
 *                     program's own (set_robust_list), as some runtimes do
 *
 * Every line has the form
 *
 *   LABEL FN RET calls=N [name=value ...]
 *
 * For an intercepted call FN is the vendor function and N is how many times the emulator
 * itself was entered for FN during the call (0: the call never reached it). Lines that are
 * not calls have FN "-". Values named key=, pid= and tgid= differ from run to run; every
 * other field is the same in two runs of one scenario, with or without the shim in audit
 * mode. The violating call of a named scenario is labelled "target". The program exits 0
 * whatever the calls return.
 */
#include <acl/acl.h>
#include <ascend_emu.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE ((size_t)4096)
#define KEYLEN 65

/* A well-formed key (64 lowercase hex digits) that no process exported. */
static const char kFakeKey[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/* ------------------------------------------------------------------ output */

static const char *g_fn;
static int g_before;

static void begin(const char *fn) {
    g_fn = fn;
    g_before = ascendEmuCallCount(fn);
}

static aclError finish(const char *label, aclError ret) {
    printf("%s %s %d calls=%d\n", label, g_fn, (int)ret, ascendEmuCallCount(g_fn) - g_before);
    fflush(stdout);
    return ret;
}

/* Calls FN, then prints its line. The comma operator orders begin() before the call. */
#define CALL(label, fn, ...) (begin(#fn), finish((label), fn(__VA_ARGS__)))

static void note(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const char *label, const char *fmt, ...) {
    va_list ap;
    printf("%s.out - 0 calls=0 ", label);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* The key's shape (stable) and the key itself (for fingerprints; not compared). */
static void note_key(const char *label, const char *key, aclError ret) {
    if (ret == 0) note(label, "keylen=%zu key=%s", strnlen(key, KEYLEN), key);
}

static void die(const char *what) {
    fprintf(stderr, "scenario[%d]: %s\n", (int)getpid(), what);
    exit(90);
}

/* ------------------------------------------------------------ named scenarios */

static void *g_p;                  /* 4 pages from aclrtMalloc */
static char g_key[KEYLEN];         /* its export key */
static char g_unterminated[80];    /* no NUL in the first 65 bytes */
static int32_t g_pids[40];

static void setup(void) {
    memset(g_unterminated, 'a', sizeof g_unterminated);
    for (int i = 0; i < 40; i++) g_pids[i] = 3000000 + i;
    if (aclrtSetDevice(0) != 0) die("aclrtSetDevice failed");
    CALL("malloc", aclrtMalloc, &g_p, 4 * PAGE, ACL_MEM_MALLOC_HUGE_FIRST);
}

static aclError export_all(uint64_t flags) {
    aclError r = CALL("export", aclrtIpcMemGetExportKey, g_p, 4 * PAGE, g_key, KEYLEN, flags);
    note_key("export", g_key, r);
    return r;
}

static void close_key(void) { CALL("close", aclrtIpcMemClose, g_key); }
static void teardown(void) { CALL("free", aclrtFree, g_p); }

static void s_export_devptr_null(void) {
    setup();
    CALL("target", aclrtIpcMemGetExportKey, NULL, PAGE, g_key, KEYLEN, 0);
    teardown();
}

static void s_export_size_zero(void) {
    setup();
    CALL("target", aclrtIpcMemGetExportKey, g_p, 0, g_key, KEYLEN, 0);
    teardown();
}

static void s_export_key_null(void) {
    setup();
    CALL("target", aclrtIpcMemGetExportKey, g_p, PAGE, NULL, KEYLEN, 0);
    teardown();
}

static void s_export_key_len(void) {
    setup();
    CALL("target", aclrtIpcMemGetExportKey, g_p, PAGE, g_key, 64, 0);
    teardown();
}

/* A 256-byte buffer passed with len 256: the runtime accepts it. */
static void s_export_key_len_256(void) {
    char big[256];
    memset(big, 0, sizeof big);
    setup();
    aclError r = CALL("target", aclrtIpcMemGetExportKey, g_p, PAGE, big, sizeof big, 0);
    note_key("target", big, r);
    if (r == 0) CALL("close", aclrtIpcMemClose, big);
    teardown();
}

static void s_export_flags(void) {
    setup();
    CALL("target", aclrtIpcMemGetExportKey, g_p, PAGE, g_key, KEYLEN, 2);
    teardown();
}

static void s_export_range(void) {
    setup();
    CALL("target", aclrtIpcMemGetExportKey, g_p, 5 * PAGE, g_key, KEYLEN, 0);
    teardown();
}

/* A page-aligned sub-range that starts inside and runs one page past the end. */
static void s_export_range_offset(void) {
    setup();
    CALL("target", aclrtIpcMemGetExportKey, (char *)g_p + 2 * PAGE, 3 * PAGE, g_key, KEYLEN, 0);
    teardown();
}

/* Page-aligned host memory the shim never saw allocated. */
static void s_export_untracked(void) {
    setup();
    void *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) die("mmap failed");
    aclError r = CALL("target", aclrtIpcMemGetExportKey, m, PAGE, g_key, KEYLEN, 0);
    note_key("target", g_key, r);
    if (r == 0) close_key();
    munmap(m, 2 * PAGE);
    teardown();
}

static void s_export_unaligned(void) {
    setup();
    CALL("target", aclrtIpcMemGetExportKey, (char *)g_p + 16, PAGE, g_key, KEYLEN, 0);
    teardown();
}

static void s_setpid_key_null(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemSetImportPid, NULL, g_pids, 1);
    close_key();
    teardown();
}

static void s_setpid_key_unterminated(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemSetImportPid, g_unterminated, g_pids, 1);
    close_key();
    teardown();
}

/* The key was exported here, then closed. */
static void s_setpid_key_unknown(void) {
    setup();
    export_all(0);
    close_key();
    CALL("target", aclrtIpcMemSetImportPid, g_key, g_pids, 1);
    teardown();
}

/* A key this process never exported. */
static void s_setpid_key_unknown_never(void) {
    setup();
    note("fake", "key=%s", kFakeKey);
    CALL("target", aclrtIpcMemSetImportPid, kFakeKey, g_pids, 1);
    teardown();
}

static void s_setpid_pid_null(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemSetImportPid, g_key, NULL, 1);
    close_key();
    teardown();
}

static void s_setpid_num(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemSetImportPid, g_key, g_pids, 0);
    close_key();
    teardown();
}

static void s_setpid_num_32(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemSetImportPid, g_key, g_pids, 32);
    close_key();
    teardown();
}

static void s_setpid_pid_invalid(void) {
    setup();
    export_all(0);
    g_pids[0] = 0;
    CALL("target", aclrtIpcMemSetImportPid, g_key, g_pids, 1);
    close_key();
    teardown();
}

/* A negative pid beside a good one: the runtime stores it (it never matches). */
static void s_setpid_pid_invalid_negative(void) {
    setup();
    export_all(0);
    g_pids[1] = -3;
    CALL("target", aclrtIpcMemSetImportPid, g_key, g_pids, 2);
    close_key();
    teardown();
}

static void s_setpid_own_pid(void) {
    int32_t me = 0;
    setup();
    aclError r = CALL("tgid", aclrtDeviceGetBareTgid, &me);
    if (r == 0) note("tgid", "tgid=%d", (int)me);
    export_all(0);
    g_pids[1] = me;
    CALL("target", aclrtIpcMemSetImportPid, g_key, g_pids, 2);
    close_key();
    teardown();
}

static void s_setpid_validation_disabled(void) {
    setup();
    export_all(1);
    CALL("target", aclrtIpcMemSetImportPid, g_key, g_pids, 1);
    close_key();
    teardown();
}

static void s_import_out_null(void) {
    setup();
    note("fake", "key=%s", kFakeKey);
    CALL("target", aclrtIpcMemImportByKey, NULL, kFakeKey, 0);
    teardown();
}

static void s_import_key_null(void) {
    void *q = NULL;
    setup();
    CALL("target", aclrtIpcMemImportByKey, &q, NULL, 0);
    teardown();
}

static void s_import_key_unterminated(void) {
    void *q = NULL;
    setup();
    CALL("target", aclrtIpcMemImportByKey, &q, g_unterminated, 0);
    teardown();
}

static void s_import_flags(void) {
    void *q = NULL;
    setup();
    note("fake", "key=%s", kFakeKey);
    CALL("target", aclrtIpcMemImportByKey, &q, kFakeKey, 2);
    teardown();
}

/* No pid validation: the runtime lets the exporter map its own memory a second time. */
static void s_import_own_export(void) {
    void *q = NULL;
    setup();
    export_all(1);
    aclError r = CALL("target", aclrtIpcMemImportByKey, &q, g_key, 0);
    note("target", "ptr=%s", q == NULL ? "null" : q == g_p ? "same" : "other");
    if (r == 0) close_key(); /* the import */
    close_key();             /* the export */
    teardown();
}

static void s_import_own_export_whitelist(void) {
    void *q = NULL;
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemImportByKey, &q, g_key, 0);
    close_key();
    teardown();
}

static void s_close_key_null(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemClose, NULL);
    close_key();
    teardown();
}

static void s_close_key_unterminated(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemClose, g_unterminated);
    close_key();
    teardown();
}

/* Closing one's own key twice. */
static void s_close_unknown(void) {
    setup();
    export_all(0);
    close_key();
    CALL("target", aclrtIpcMemClose, g_key);
    teardown();
}

static void s_close_unknown_never(void) {
    setup();
    note("fake", "key=%s", kFakeKey);
    CALL("target", aclrtIpcMemClose, kFakeKey);
    teardown();
}

/* The runtime lets the memory go while its key is open. */
static void s_free_before_close(void) {
    setup();
    export_all(0);
    aclError r = CALL("target", aclrtFree, g_p);
    close_key();
    if (r != 0) teardown();
}

/* Run with ASCEND_EMU_BARE_TGID_FAIL=1: the runtime writes -1 and returns success. */
static void s_bare_tgid_invalid(void) {
    int32_t pid = 12345;
    setup();
    CALL("target", aclrtDeviceGetBareTgid, &pid);
    note("target", "pid=%s", pid < 0 ? "negative" : pid == 12345 ? "untouched" : "positive");
    teardown();
}

static void s_bare_tgid_out_null(void) {
    setup();
    CALL("target", aclrtDeviceGetBareTgid, NULL);
    teardown();
}

static void s_setattr_args(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemSetAttr, g_key, (aclrtIpcMemAttrType)1, 0);
    close_key();
    teardown();
}

static void s_setattr_args_attr(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemSetAttr, g_key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 9);
    close_key();
    teardown();
}

static void s_setattr_args_null(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemSetAttr, NULL, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 0);
    close_key();
    teardown();
}

static void s_setattr_args_unterminated(void) {
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemSetAttr, g_unterminated, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, 0);
    close_key();
    teardown();
}

static void interserver(const char *key, int null_servers, size_t num, int null_pid, size_t entry_num) {
    aclrtServerPid sp[2] = {{1, g_pids, 1}, {2, g_pids + 1, 2}};
    sp[1].pid = null_pid ? NULL : g_pids + 1;
    sp[1].num = entry_num;
    setup();
    export_all(0);
    CALL("target", aclrtIpcMemImportPidInterServer, key == NULL ? NULL : key[0] == 'u' ? g_unterminated : g_key,
         null_servers ? NULL : sp, num);
    close_key();
    teardown();
}

static void s_interserver_args(void) { interserver("k", 1, 1, 0, 2); }
static void s_interserver_args_num0(void) { interserver("k", 0, 0, 0, 2); }
static void s_interserver_args_nullpid(void) { interserver("k", 0, 2, 1, 2); }
static void s_interserver_args_entrynum0(void) { interserver("k", 0, 2, 0, 0); }
static void s_interserver_args_keynull(void) { interserver(NULL, 0, 2, 0, 2); }
static void s_interserver_args_unterminated(void) { interserver("u", 0, 2, 0, 2); }

/* The key is never closed; the memory is never freed (the runtime releases both at exit). */
static void s_exit_leak(void) {
    setup();
    export_all(0);
}

/*
 * Everything right, many times over: 200 allocations of the three kinds, 50 exports (whole
 * allocations, page-aligned sub-ranges, both flags), whitelists, attributes, the A3
 * inter-server whitelist, then every key closed and every allocation freed.
 */
static void s_clean_local(void) {
    enum { NALLOC = 200, NEXPORT = 50 };
    static void *p[NALLOC];
    static char keys[NEXPORT][KEYLEN];
    int32_t me = 0;
    int bad = 0;
    setup();
    if (CALL("tgid", aclrtDeviceGetBareTgid, &me) != 0 || me <= 0) bad++;
    for (int i = 0; i < NALLOC; i++) {
        size_t size = (size_t)(1 + i % 4) * PAGE;
        aclError r = i % 3 == 0   ? aclrtMalloc(&p[i], size, ACL_MEM_MALLOC_HUGE_FIRST)
                     : i % 3 == 1 ? aclrtMallocAlign32(&p[i], size, ACL_MEM_MALLOC_NORMAL_ONLY)
                                  : aclrtMallocCached(&p[i], size, ACL_MEM_MALLOC_HUGE_ONLY);
        bad += r != 0;
    }
    for (int i = 0; i < NEXPORT; i++) {
        int a = i * 4 + 3; /* sizes of 4 pages */
        size_t off = (size_t)(i % 4) * PAGE, size = 4 * PAGE - off;
        if (i % 5 == 4) size = PAGE; /* a page inside */
        uint64_t flags = (uint64_t)(i % 2);
        bad += aclrtIpcMemGetExportKey((char *)p[a] + off, size, keys[i], KEYLEN, flags) != 0;
        if (flags == 0) {
            int32_t wl[3] = {me + 100000 + i, me + 200000 + i, me + 300000 + i};
            bad += aclrtIpcMemSetImportPid(keys[i], wl, 1 + (size_t)(i % 3)) != 0;
            aclrtServerPid sp = {1, wl, 2};
            bad += aclrtIpcMemImportPidInterServer(keys[i], &sp, 1) != 0;
        }
        bad += aclrtIpcMemSetAttr(keys[i], ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, (uint64_t)(i % 4)) != 0;
    }
    /* The same memory exported twice gives two keys. */
    char again[KEYLEN];
    bad += aclrtIpcMemGetExportKey(p[3], 4 * PAGE, again, KEYLEN, 0) != 0;
    bad += strcmp(again, keys[0]) == 0;
    bad += aclrtIpcMemClose(again) != 0;
    for (int i = NEXPORT - 1; i >= 0; i--) bad += aclrtIpcMemClose(keys[i]) != 0;
    for (int i = 0; i < NALLOC; i++) bad += aclrtFree(p[i]) != 0;
    printf("clean - %d calls=0 allocs=%d exports=%d\n", bad, NALLOC, NEXPORT);
    teardown();
}

struct named {
    const char *name;
    void (*run)(void);
};

static const struct named kScenarios[] = {
    {"export.devptr-null", s_export_devptr_null},
    {"export.size-zero", s_export_size_zero},
    {"export.key-null", s_export_key_null},
    {"export.key-len", s_export_key_len},
    {"export.key-len~256", s_export_key_len_256},
    {"export.flags", s_export_flags},
    {"export.range", s_export_range},
    {"export.range~offset", s_export_range_offset},
    {"export.untracked", s_export_untracked},
    {"export.unaligned", s_export_unaligned},
    {"setpid.key-null", s_setpid_key_null},
    {"setpid.key-unterminated", s_setpid_key_unterminated},
    {"setpid.key-unknown", s_setpid_key_unknown},
    {"setpid.key-unknown~never", s_setpid_key_unknown_never},
    {"setpid.pid-null", s_setpid_pid_null},
    {"setpid.num", s_setpid_num},
    {"setpid.num~32", s_setpid_num_32},
    {"setpid.pid-invalid", s_setpid_pid_invalid},
    {"setpid.pid-invalid~negative", s_setpid_pid_invalid_negative},
    {"setpid.own-pid", s_setpid_own_pid},
    {"setpid.validation-disabled", s_setpid_validation_disabled},
    {"import.out-null", s_import_out_null},
    {"import.key-null", s_import_key_null},
    {"import.key-unterminated", s_import_key_unterminated},
    {"import.flags", s_import_flags},
    {"import.own-export", s_import_own_export},
    {"import.own-export~whitelist", s_import_own_export_whitelist},
    {"close.key-null", s_close_key_null},
    {"close.key-unterminated", s_close_key_unterminated},
    {"close.unknown", s_close_unknown},
    {"close.unknown~never", s_close_unknown_never},
    {"free.before-close", s_free_before_close},
    {"bare-tgid.invalid", s_bare_tgid_invalid},
    {"bare-tgid.out-null", s_bare_tgid_out_null},
    {"setattr.args", s_setattr_args},
    {"setattr.args~attr", s_setattr_args_attr},
    {"setattr.args~null", s_setattr_args_null},
    {"setattr.args~unterminated", s_setattr_args_unterminated},
    {"interserver.args", s_interserver_args},
    {"interserver.args~num0", s_interserver_args_num0},
    {"interserver.args~nullpid", s_interserver_args_nullpid},
    {"interserver.args~entrynum0", s_interserver_args_entrynum0},
    {"interserver.args~keynull", s_interserver_args_keynull},
    {"interserver.args~unterminated", s_interserver_args_unterminated},
    {"exit.leak", s_exit_leak},
    {"clean-local", s_clean_local},
};

/* ------------------------------------------------------------------ actor */

#define MAXVARS 64

struct ptr_var {
    char name[32];
    void *p;
    int live; /* allocated here and not freed */
};

struct key_var {
    char name[32];
    char key[256];
    int exported;    /* exported here and not closed */
    int import_refs; /* imports here not yet closed */
};

static struct ptr_var g_ptrs[MAXVARS];
static struct key_var g_keys[MAXVARS];

static struct ptr_var *ptr_var(const char *name) {
    for (int i = 0; i < MAXVARS; i++)
        if (strcmp(g_ptrs[i].name, name) == 0) return &g_ptrs[i];
    for (int i = 0; i < MAXVARS; i++)
        if (g_ptrs[i].name[0] == '\0') {
            snprintf(g_ptrs[i].name, sizeof g_ptrs[i].name, "%s", name);
            return &g_ptrs[i];
        }
    die("too many pointer names");
    return NULL;
}

static struct key_var *key_var(const char *name) {
    for (int i = 0; i < MAXVARS; i++)
        if (strcmp(g_keys[i].name, name) == 0) return &g_keys[i];
    for (int i = 0; i < MAXVARS; i++)
        if (g_keys[i].name[0] == '\0') {
            snprintf(g_keys[i].name, sizeof g_keys[i].name, "%s", name);
            return &g_keys[i];
        }
    die("too many key names");
    return NULL;
}

static void answer(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void answer(const char *verb, const char *fmt, ...) {
    va_list ap;
    printf("%s - 0 calls=0", verb);
    if (fmt != NULL && fmt[0] != '\0') {
        printf(" ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }
    printf("\n");
    fflush(stdout);
}

/* Closes every key still open here (imports first), then frees every allocation. */
static void cleanup(void) {
    int closes = 0, frees = 0, failed = 0;
    for (int i = 0; i < MAXVARS; i++) {
        struct key_var *k = &g_keys[i];
        for (; k->import_refs > 0; k->import_refs--, closes++) failed += aclrtIpcMemClose(k->key) != 0;
    }
    for (int i = 0; i < MAXVARS; i++) {
        struct key_var *k = &g_keys[i];
        if (k->exported) {
            failed += aclrtIpcMemClose(k->key) != 0;
            k->exported = 0;
            closes++;
        }
    }
    for (int i = 0; i < MAXVARS; i++) {
        struct ptr_var *v = &g_ptrs[i];
        if (v->live) {
            failed += aclrtFree(v->p) != 0;
            v->live = 0;
            frees++;
        }
    }
    answer("cleanup", "closes=%d frees=%d failed=%d", closes, frees, failed);
}

static int actor(void);
static void actor_command(char **w, int n);

struct thread_cmd {
    char **w;
    int n;
};

static void *thread_cmd_main(void *arg) {
    struct thread_cmd *c = arg;
    actor_command(c->w, c->n);
    return NULL;
}

__attribute__((noinline)) static void actor_command(char **w, int n) {
    const char *verb = w[0];
    char label[64];
    snprintf(label, sizeof label, "%s", verb);
    if (strcmp(verb, "dev") == 0) {
        aclError r = aclrtSetDevice(0);
        printf("dev aclrtSetDevice %d calls=1\n", (int)r);
        fflush(stdout);
    } else if (strcmp(verb, "malloc") == 0 && n >= 3) { /* malloc P SIZE [align32|cached] */
        struct ptr_var *v = ptr_var(w[1]);
        size_t size = strtoull(w[2], NULL, 0);
        aclError r;
        if (n >= 4 && strcmp(w[3], "align32") == 0)
            r = CALL(label, aclrtMallocAlign32, &v->p, size, ACL_MEM_MALLOC_HUGE_FIRST);
        else if (n >= 4 && strcmp(w[3], "cached") == 0)
            r = CALL(label, aclrtMallocCached, &v->p, size, ACL_MEM_MALLOC_HUGE_FIRST);
        else
            r = CALL(label, aclrtMalloc, &v->p, size, ACL_MEM_MALLOC_HUGE_FIRST);
        if (r == 0) v->live = 1;
    } else if (strcmp(verb, "export") == 0 && n >= 6) { /* export K P OFF SIZE FLAGS */
        struct key_var *k = key_var(w[1]);
        struct ptr_var *v = ptr_var(w[2]);
        char *at = (char *)v->p + strtoull(w[3], NULL, 0);
        memset(k->key, 0, sizeof k->key);
        aclError r = CALL(label, aclrtIpcMemGetExportKey, at, strtoull(w[4], NULL, 0), k->key, KEYLEN,
                          strtoull(w[5], NULL, 0));
        if (r == 0) k->exported = 1;
        if (r == 0) answer("export.out", "keylen=%zu key=%s", strnlen(k->key, KEYLEN), k->key);
        else answer("export.out", "keylen=none");
    } else if (strcmp(verb, "setkey") == 0 && n >= 3) { /* setkey K RAW */
        struct key_var *k = key_var(w[1]);
        snprintf(k->key, sizeof k->key, "%s", w[2]);
        answer("setkey", "ok=1");
    } else if (strcmp(verb, "setpid") == 0 && n >= 3) { /* setpid K PID... */
        int32_t pids[40];
        size_t num = 0;
        for (int i = 2; i < n && num < 40; i++) pids[num++] = (int32_t)strtol(w[i], NULL, 0);
        CALL(label, aclrtIpcMemSetImportPid, key_var(w[1])->key, pids, num);
    } else if (strcmp(verb, "tgid") == 0) {
        int32_t me = 0;
        aclError r = CALL(label, aclrtDeviceGetBareTgid, &me);
        answer("tgid.out", "tgid=%d", r == 0 ? (int)me : 0);
    } else if (strcmp(verb, "tgidas") == 0 && n >= 2) { /* make the runtime report tgid X */
        char off[32];
        snprintf(off, sizeof off, "%ld", strtol(w[1], NULL, 0) - (long)getpid());
        setenv("ASCEND_EMU_BARE_TGID_OFFSET", off, 1);
        answer("tgidas", "ok=1");
    } else if (strcmp(verb, "import") == 0 && n >= 4) { /* import Q K FLAGS */
        struct ptr_var *v = ptr_var(w[1]);
        struct key_var *k = key_var(w[2]);
        void *before = v->p;
        v->p = NULL;
        aclError r = CALL(label, aclrtIpcMemImportByKey, &v->p, k->key, strtoull(w[3], NULL, 0));
        if (r == 0) k->import_refs++;
        answer("import.out", "ptr=%s", v->p == NULL ? "null" : before == NULL ? "new" : v->p == before ? "same" : "moved");
    } else if (strcmp(verb, "close") == 0 && n >= 2) {
        struct key_var *k = key_var(w[1]);
        aclError r = CALL(label, aclrtIpcMemClose, k->key);
        if (r == 0) {
            if (k->import_refs > 0) k->import_refs--;
            else k->exported = 0;
        }
    } else if (strcmp(verb, "free") == 0 && n >= 2) {
        struct ptr_var *v = ptr_var(w[1]);
        aclError r = CALL(label, aclrtFree, v->p);
        if (r == 0) v->live = 0;
    } else if (strcmp(verb, "write") == 0 && n >= 4) { /* write P OFF TEXT */
        struct ptr_var *v = ptr_var(w[1]);
        aclError r = aclrtMemcpy((char *)v->p + strtoull(w[2], NULL, 0), strlen(w[3]) + 1, w[3],
                                 strlen(w[3]) + 1, ACL_MEMCPY_HOST_TO_DEVICE);
        printf("write aclrtMemcpy %d calls=1\n", (int)r);
        fflush(stdout);
    } else if (strcmp(verb, "read") == 0 && n >= 3) { /* read P OFF */
        struct ptr_var *v = ptr_var(w[1]);
        char text[128] = {0};
        aclError r = aclrtMemcpy(text, sizeof text - 1, (char *)v->p + strtoull(w[2], NULL, 0), sizeof text - 1,
                                 ACL_MEMCPY_DEVICE_TO_HOST);
        for (char *c = text; *c; c++)
            if (*c == ' ' || *c == '\n') *c = '_';
        printf("read aclrtMemcpy %d calls=1 text=%s\n", (int)r, r == 0 ? text : "");
        fflush(stdout);
    } else if (strcmp(verb, "same") == 0 && n >= 3) { /* same P1 P2: one address? */
        answer("same", "same=%d", ptr_var(w[1])->p == ptr_var(w[2])->p);
    } else if (strcmp(verb, "pid") == 0) {
        answer("pid", "pid=%d", (int)getpid());
    } else if (strcmp(verb, "sleep") == 0 && n >= 2) {
        struct timespec ts = {0, strtol(w[1], NULL, 0) * 1000000L};
        while (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        answer("sleep", "ok=1");
    } else if (strcmp(verb, "fork") == 0 && n >= 3) { /* fork IN OUT: a child actor on two FIFOs */
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            /* The child goes on as an actor of its own, driven through the FIFOs; what it
             * inherited (variables, memory, imports) is its to use. The parent's stdin
             * pipe is given up, so that the parent alone sees its end. */
            if (freopen(w[1], "r", stdin) == NULL || freopen(w[2], "w", stdout) == NULL) _exit(90);
            setvbuf(stdout, NULL, _IOLBF, 0);
            exit(actor());
        }
        if (child < 0) answer("fork", "child=none errno=%d", errno);
        else answer("fork", "child=%d", (int)child);
    } else if (strcmp(verb, "reap") == 0) { /* waits for every fork child, says how they ended */
        int status = 0, n_ok = 0, n_bad = 0;
        while (waitpid(-1, &status, 0) > 0) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) n_ok++;
            else n_bad++;
        }
        answer("reap", "ok=%d bad=%d last=%#x", n_ok, n_bad, (unsigned)status);
    } else if (strcmp(verb, "thread") == 0 && n >= 2) { /* thread CMD...: in a thread that exits */
        struct thread_cmd c = {w + 1, n - 1};
        pthread_t t;
        fflush(stdout);
        if (pthread_create(&t, NULL, thread_cmd_main, &c) != 0) die("pthread_create");
        pthread_join(t, NULL);
    } else if (strcmp(verb, "exec") == 0) { /* the actor again, in this process, from scratch */
        answer("exec", "pid=%d", (int)getpid());
        printf(".\n");
        fflush(stdout);
        char *argv[] = {"scenario", "actor", NULL};
        execv("/proc/self/exe", argv);
        answer("exec.failed", "errno=%d", errno);
    } else if (strcmp(verb, "own-robust-list") == 0) {
        /* An empty list of this program's own: glibc's, with whatever it held, is no
         * longer the one the kernel walks when this thread dies. */
        static struct { void *next; long offset; void *pending; } own;
        own.next = &own;
        own.offset = 0;
        own.pending = NULL;
        long r = syscall(SYS_set_robust_list, &own, sizeof own);
        answer("own-robust-list", "r=%ld", r);
    } else if (strcmp(verb, "cleanup") == 0) {
        cleanup();
    } else if (strcmp(verb, "exit") == 0) {
        int code = n >= 2 ? atoi(w[1]) : 0;
        answer("exit", "code=%d", code);
        exit(code);
    } else {
        answer("error", "unknown=%s", verb);
    }
}

static int actor(void) {
    char line[1024];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *w[48];
        int n = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, " \t\r\n", &save); t != NULL && n < 48; t = strtok_r(NULL, " \t\r\n", &save))
            w[n++] = t;
        if (n > 0) actor_command(w, n);
        printf(".\n"); /* end of this command's answer */
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "actor") == 0) return actor();
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < sizeof kScenarios / sizeof kScenarios[0]; i++) printf("%s\n", kScenarios[i].name);
        return 0;
    }
    if (argc == 2) {
        for (size_t i = 0; i < sizeof kScenarios / sizeof kScenarios[0]; i++) {
            if (strcmp(argv[1], kScenarios[i].name) == 0) {
                kScenarios[i].run();
                return 0;
            }
        }
    }
    fprintf(stderr, "usage: %s NAME | list | actor\n", argv[0]);
    return 2;
}
