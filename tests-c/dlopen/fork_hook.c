/*
 * Preloaded after the shim, this library stops a thread at a chosen point of the shim's
 * first call, so that the program can fork exactly then:
 *
 *   stage 1 ("making"): in secure_getenv() of an ACL_IPC_GUARD_ switch, which the shim reads while
 *   it makes its runtime (the runtime is not made yet);
 *   stage 2 ("made"): in aclrtDeviceGetBareTgid, which the shim asks while it writes its
 *   `start` record under its start lock (the runtime is made), started from this library's
 *   fork prepare handler. The library is preloaded after the shim, so its constructor runs
 *   first and its prepare handler last: the shim's own prepare handler has already looked
 *   and found no runtime.
 *
 * The stopped thread posts forkHookReached and waits for forkHookRelease. A stage that has
 * fired does not fire again. The program finds these symbols with dlsym(RTLD_DEFAULT).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <string.h>

#define EXPORTED __attribute__((visibility("default")))

EXPORTED sem_t forkHookReached;
EXPORTED sem_t forkHookRelease;
/* 0: nothing; 1 or 2: the stage armed (see above). */
EXPORTED int forkHookStage;
/* Stage 2: what the prepare handler calls to start the thread that makes the first call. */
EXPORTED void (*forkHookStartFirstCall)(void);

static char *(*real_secure_getenv)(const char *);
static int fired;

static void stop_here(void) {
    sem_post(&forkHookReached);
    while (sem_wait(&forkHookRelease) != 0) {
    }
}

static int fire(int stage) {
    return __atomic_load_n(&forkHookStage, __ATOMIC_ACQUIRE) == stage &&
           !__atomic_exchange_n(&fired, 1, __ATOMIC_ACQ_REL);
}

EXPORTED char *secure_getenv(const char *name) {
    if (name && strncmp(name, "ACL_IPC_GUARD_", 14) == 0 && fire(1)) {
        stop_here();
    }
    return real_secure_getenv ? real_secure_getenv(name) : NULL;
}

EXPORTED int32_t aclrtDeviceGetBareTgid(int32_t *pid) {
    static int32_t (*real)(int32_t *);
    if (!real) {
        real = (int32_t(*)(int32_t *))dlsym(RTLD_NEXT, "aclrtDeviceGetBareTgid");
    }
    if (fire(2)) {
        stop_here();
    }
    return real ? real(pid) : 1;
}

static void prepare(void) {
    if (__atomic_load_n(&forkHookStage, __ATOMIC_ACQUIRE) == 2 && !__atomic_load_n(&fired, __ATOMIC_ACQUIRE) &&
        forkHookStartFirstCall) {
        forkHookStartFirstCall();
        while (sem_wait(&forkHookReached) != 0) {
        }
    }
}

__attribute__((constructor)) static void fork_hook_init(void) {
    real_secure_getenv = (char *(*)(const char *))dlsym(RTLD_NEXT, "secure_getenv");
    sem_init(&forkHookReached, 0, 0);
    sem_init(&forkHookRelease, 0, 0);
    pthread_atfork(prepare, NULL, NULL);
}
