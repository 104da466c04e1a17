/*
 * Two threads race on one open key, round after round: the main thread frees the memory
 * the key was exported from while a second thread closes the key. When the free comes
 * first it breaks free.before-close; the record of that violation may be made after the
 * other thread's close took the key out of the process's tables. Knows nothing of the
 * shim; prints each round's key ("key=...") so a test can check the fingerprints.
 *
 *   free_close_race ROUNDS
 *
 * Exit status 0 when every export succeeded.
 */
#include <acl/acl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char key[65];
static pthread_barrier_t go, done;
static long rounds;

/* One closer thread for every round (a thread made per round costs more than the race
 * itself: on a loaded machine the program spent its time in thread creation). */
static void *closer(void *unused) {
    (void)unused;
    for (long i = 0; i < rounds; i++) {
        pthread_barrier_wait(&go);
        aclrtIpcMemClose(key);
        pthread_barrier_wait(&done);
    }
    return NULL;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atol(argv[1]) : 1000;
    if (aclrtSetDevice(0) != 0) return 2;
    pthread_barrier_init(&go, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    pthread_t t;
    if (pthread_create(&t, NULL, closer, NULL) != 0) return 5;
    for (long i = 0; i < rounds; i++) {
        void *mem = NULL;
        if (aclrtMalloc(&mem, 4096, ACL_MEM_MALLOC_HUGE_FIRST) != 0) _exit(3);
        /* bytes after the NUL the runtime writes must not change the key's identity */
        memset(key, 'x', sizeof key);
        if (aclrtIpcMemGetExportKey(mem, 4096, key, sizeof key, 0) != 0) _exit(4);
        printf("key=%s\n", key);
        pthread_barrier_wait(&go);
        aclrtFree(mem);
        pthread_barrier_wait(&done);
    }
    pthread_join(t, NULL);
    return 0;
}
