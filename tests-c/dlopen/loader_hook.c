/*
 * A preloaded dlopen() that, once the program arms it, runs another thread's
 * aclrtIpcMemClose while the caller of dlopen waits (up to 5 s) for it: a library
 * constructor that calls into the runtime from a thread does the same. If the shim called
 * dlopen while holding a lock that every IPC call takes, that close waits for it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

typedef int (*close_fn)(const char *key);

/* Set to 1 by the program; 0 again once fired. */
__attribute__((visibility("default"))) int loaderHookArmed;
/* -1: not fired; 0: the other thread's close returned; 1: it was still waiting after 5 s. */
__attribute__((visibility("default"))) int loaderHookResult = -1;

static void *close_from_another_thread(void *unused) {
    (void)unused;
    close_fn cl = (close_fn)dlsym(RTLD_DEFAULT, "aclrtIpcMemClose");
    if (cl) {
        cl("loader-hook-no-such-key");
    }
    return NULL;
}

__attribute__((visibility("default"))) void *dlopen(const char *file, int mode) {
    static void *(*real)(const char *, int);
    if (!real) {
        real = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    }
    if (__atomic_exchange_n(&loaderHookArmed, 0, __ATOMIC_ACQ_REL) && file) {
        pthread_t t;
        if (pthread_create(&t, NULL, close_from_another_thread, NULL) == 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 5;
            int r = pthread_timedjoin_np(t, NULL, &until);
            loaderHookResult = r == 0 ? 0 : 1;
            if (r != 0) {
                pthread_detach(t);
            }
        }
    }
    return real(file, mode);
}
