/*
 * The shim's cost in instructions, for callgrind (bench/instr.py runs it): the same calls
 * as the benchmark, in a loop whose instructions alone are counted (the counting is switched
 * on around the loop), so the figures repeat on any machine, loaded or not. Linked against
 * the null runtime, called through the PLT as a program calls the runtime; run plain for the
 * direct cost and under LD_PRELOAD of the shim for the shim's.
 *
 *   instr malloc N [live]   N malloc+free pairs, with `live` allocations made before
 *   instr export N [keys]   N export+close pairs of one allocation, `keys` other keys open
 *   instr import N          N import+close pairs of keys a forked exporter exported and
 *                           whitelisted for this process beforehand
 *
 * The calling thread's counts are zeroed when the loop begins and dumped when it ends (after
 * a 300 ms sleep, so that the shim's writer thread has written the loop's records);
 * bench/instr.py counts the writer thread's share from two runs of different lengths.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_ZERO_STATS
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(what)
#endif
/* counting starts here (all threads' counts zeroed) */
#define BEGIN CALLGRIND_ZERO_STATS
/* and ends here (all threads' counts written, as part "loop") */
#define END CALLGRIND_DUMP_STATS_AT("loop")

#define KEY_LEN 65

int aclrtMalloc(void **p, size_t size, int policy);
int aclrtFree(void *p);
int aclrtIpcMemGetExportKey(void *p, size_t size, char *key, size_t len, uint64_t flags);
int aclrtIpcMemSetImportPid(const char *key, int32_t *pid, size_t num);
int aclrtIpcMemImportByKey(void **p, const char *key, uint64_t flags);
int aclrtIpcMemClose(const char *key);

static void fail(const char *what) {
    fprintf(stderr, "instr: %s failed\n", what);
    exit(2);
}

static void run_malloc(long n, long live) {
    void *p;
    for (long i = 0; i < live; i++)
        if (aclrtMalloc(&p, 4096, 0) != 0) fail("aclrtMalloc");
    for (int i = 0; i < 16; i++) { /* warm up */
        if (aclrtMalloc(&p, 4096, 0) != 0) fail("aclrtMalloc");
        aclrtFree(p);
    }
    BEGIN;
    for (long i = 0; i < n; i++) {
        if (aclrtMalloc(&p, 4096, 0) != 0) fail("aclrtMalloc");
        if (aclrtFree(p) != 0) fail("aclrtFree");
    }
    usleep(300000);
    END;
}

static void run_export(long n, long keys) {
    void *mem;
    char key[KEY_LEN];
    for (long i = 0; i < keys; i++) {
        if (aclrtMalloc(&mem, 4096, 0) != 0) fail("aclrtMalloc");
        if (aclrtIpcMemGetExportKey(mem, 4096, key, sizeof key, 1) != 0) fail("export");
    }
    if (aclrtMalloc(&mem, 4096, 0) != 0) fail("aclrtMalloc");
    for (int i = 0; i < 16; i++) {
        if (aclrtIpcMemGetExportKey(mem, 4096, key, sizeof key, 0) != 0) fail("export");
        aclrtIpcMemClose(key);
    }
    usleep(300000);
    BEGIN;
    for (long i = 0; i < n; i++) {
        if (aclrtIpcMemGetExportKey(mem, 4096, key, sizeof key, 0) != 0) fail("export");
        if (aclrtIpcMemClose(key) != 0) fail("close");
    }
    usleep(300000);
    END;
}

/* The exporter (a fork child) exports n + 16 keys whitelisting the parent, then waits for
 * the parent to be done before it exits. */
static void run_import(long n) {
    long total = n + 16;
    char *keys = mmap(NULL, (size_t)total * KEY_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int ready[2], done[2];
    if (keys == MAP_FAILED || pipe(ready) || pipe(done)) fail("setup");
    int32_t parent = (int32_t)getpid();
    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        void *mem;
        for (long i = 0; i < total; i++) {
            char *k = keys + i * KEY_LEN;
            if (aclrtMalloc(&mem, 4096, 0) != 0) _exit(2);
            if (aclrtIpcMemGetExportKey(mem, 4096, k, KEY_LEN, 0) != 0) _exit(2);
            if (aclrtIpcMemSetImportPid(k, &parent, 1) != 0) _exit(2);
        }
        char c = 1;
        if (write(ready[1], &c, 1) != 1) _exit(2);
        if (read(done[0], &c, 1) != 1) _exit(2);
        exit(0);
    }
    char c;
    if (read(ready[0], &c, 1) != 1) fail("exporter");
    void *p;
    for (long i = 0; i < 16; i++) {
        if (aclrtIpcMemImportByKey(&p, keys + i * KEY_LEN, 0) != 0) fail("import");
        aclrtIpcMemClose(keys + i * KEY_LEN);
    }
    usleep(300000);
    BEGIN;
    for (long i = 16; i < total; i++) {
        if (aclrtIpcMemImportByKey(&p, keys + i * KEY_LEN, 0) != 0) fail("import");
        if (aclrtIpcMemClose(keys + i * KEY_LEN) != 0) fail("close");
    }
    usleep(300000);
    END;
    c = 1;
    if (write(done[1], &c, 1) != 1) fail("release");
    int status;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("exporter exit");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: instr malloc|export|import N [live|keys]\n");
        return 2;
    }
    long n = atol(argv[2]);
    long extra = argc > 3 ? atol(argv[3]) : 0;
    if (!strcmp(argv[1], "malloc"))
        run_malloc(n, extra);
    else if (!strcmp(argv[1], "export"))
        run_export(n, extra);
    else if (!strcmp(argv[1], "import"))
        run_import(n);
    else
        return 2;
    return 0;
}
