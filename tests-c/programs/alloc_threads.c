/*
 * Allocations from several threads at once, then IPC rules that depend on them: the
 * shim's table of live allocations must still know every one, whichever thread made it
 * and however long ago.
 *
 *   alloc_threads T K N   T threads each keep K allocations and make N malloc+free pairs,
 *                         all at once; then the main thread exports and closes the oldest
 *                         allocation of every thread (no rule may fire), exports a range
 *                         running past the end of thread 0's second allocation (export.range),
 *                         frees thread 0's third while its key is open (free.before_close),
 *                         closes that key and frees everything else from this one thread.
 *
 * Prints "calls=N" (the intercepted calls it made, for the summary) and "ok".
 */
#include <acl/acl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define KEY_LEN 65
#define SIZE 4096

static pthread_barrier_t barrier;
static long keep, pairs;
static void ***live; /* live[t][i] */

static void die(const char *what, long t, long got) {
    fprintf(stderr, "alloc_threads: %s (thread %ld) returned %ld\n", what, t, got);
    exit(2);
}

static void *worker(void *arg) {
    long t = (long)arg;
    pthread_barrier_wait(&barrier);
    for (long i = 0; i < keep; i++) {
        aclError r = aclrtMalloc(&live[t][i], SIZE, ACL_MEM_MALLOC_HUGE_FIRST);
        if (r != ACL_SUCCESS) die("aclrtMalloc", t, r);
    }
    for (long i = 0; i < pairs; i++) {
        void *p;
        aclError r = aclrtMalloc(&p, SIZE, ACL_MEM_MALLOC_HUGE_FIRST);
        if (r != ACL_SUCCESS) die("aclrtMalloc (pair)", t, r);
        r = aclrtFree(p);
        if (r != ACL_SUCCESS) die("aclrtFree (pair)", t, r);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: alloc_threads T K N\n");
        return 2;
    }
    long threads = atol(argv[1]);
    keep = atol(argv[2]);
    pairs = atol(argv[3]);
    if (threads < 1 || keep < 3 || pairs < 0) return 2;
    long calls = threads * (keep + 2 * pairs);
    live = calloc((size_t)threads, sizeof *live);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    if (live == NULL || ids == NULL) return 2;
    for (long t = 0; t < threads; t++) {
        live[t] = calloc((size_t)keep, sizeof **live);
        if (live[t] == NULL) return 2;
    }
    if (aclrtSetDevice(0) != ACL_SUCCESS) return 2;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads);
    for (long t = 0; t < threads; t++) {
        if (pthread_create(&ids[t], NULL, worker, (void *)t) != 0) return 2;
    }
    for (long t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    free(ids);

    char key[KEY_LEN];
    aclError r;
    for (long t = 0; t < threads; t++) {
        r = aclrtIpcMemGetExportKey(live[t][0], SIZE, key, KEY_LEN, 0);
        if (r != ACL_SUCCESS) die("export of the oldest", t, r);
        r = aclrtIpcMemClose(key);
        if (r != ACL_SUCCESS) die("close", t, r);
        calls += 2;
    }
    /* Past the end of the allocation: the rule fires (audit forwards the call anyway). */
    r = aclrtIpcMemGetExportKey(live[0][1], 2 * SIZE, key, KEY_LEN, 0);
    calls++;
    printf("range export ret=%d\n", (int)r);
    if (r == ACL_SUCCESS) {
        aclrtIpcMemClose(key);
        calls++;
    }
    r = aclrtIpcMemGetExportKey(live[0][2], SIZE, key, KEY_LEN, 0);
    if (r != ACL_SUCCESS) die("export of the third", 0, r);
    r = aclrtFree(live[0][2]);
    printf("free while exported ret=%d\n", (int)r);
    live[0][2] = r == ACL_SUCCESS ? NULL : live[0][2];
    aclrtIpcMemClose(key);
    calls += 3;
    for (long t = 0; t < threads; t++) {
        for (long i = 0; i < keep; i++) {
            if (live[t][i] == NULL) continue;
            r = aclrtFree(live[t][i]);
            if (r != ACL_SUCCESS) die("aclrtFree", t, r);
            calls++;
        }
    }
    for (long t = 0; t < threads; t++) free(live[t]);
    free(live);
    printf("calls=%ld\nok\n", calls);
    return 0;
}
