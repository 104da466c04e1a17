/*
 * A process forks while another of its threads is making the shim's first call: usage
 * `fork_during_first_call making|made` under LD_PRELOAD="<shim> libfork_hook.so"
 * (tests-c/dlopen/fork_hook.c stops that thread while the shim makes its runtime, or
 * while it writes its start record, and the fork comes then). The child then uses the
 * runtime on its own: it allocates, exports, closes and frees, and must not hang (an
 * alarm ends it after 10 s). Prints "child=<status> parent_calls=<0|1>" and exits 0 when
 * both processes' calls succeeded.
 */
#include <acl/acl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static sem_t *reached, *release_;
static pthread_t first;
static int first_ok;

/* 0, or 1 + the step that failed, counted from 0 (its return code on standard error). */
static int use_runtime(void) {
    void *p = NULL;
    char key[65];
    aclError r;
    int step = 0;
    if ((r = aclrtSetDevice(0)) == ACL_SUCCESS && ++step && /* not intercepted by the shim */
        (r = aclrtMalloc(&p, 4096, ACL_MEM_MALLOC_HUGE_FIRST)) == ACL_SUCCESS && ++step &&
        (r = aclrtIpcMemGetExportKey(p, 4096, key, sizeof key, 1)) == ACL_SUCCESS && ++step &&
        (r = aclrtIpcMemClose(key)) == ACL_SUCCESS && ++step && (r = aclrtFree(p)) == ACL_SUCCESS) {
        return 0;
    }
    fprintf(stderr, "pid %d: step %d returned %d\n", (int)getpid(), step, (int)r);
    return step + 1;
}

static void *first_call(void *unused) {
    (void)unused;
    first_ok = use_runtime() == 0;
    return NULL;
}

static void start_first_call(void) {
    pthread_create(&first, NULL, first_call, NULL);
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "making") && strcmp(argv[1], "made"))) {
        fprintf(stderr, "usage: fork_during_first_call making|made\n");
        return 2;
    }
    alarm(30);
    int *stage = (int *)dlsym(RTLD_DEFAULT, "forkHookStage");
    void (**start)(void) = (void (**)(void))dlsym(RTLD_DEFAULT, "forkHookStartFirstCall");
    reached = (sem_t *)dlsym(RTLD_DEFAULT, "forkHookReached");
    release_ = (sem_t *)dlsym(RTLD_DEFAULT, "forkHookRelease");
    if (!stage || !start || !reached || !release_) {
        fprintf(stderr, "libfork_hook.so is not preloaded\n");
        return 2;
    }
    if (strcmp(argv[1], "making") == 0) {
        __atomic_store_n(stage, 1, __ATOMIC_RELEASE);
        start_first_call();
        while (sem_wait(reached) != 0) {
        }
    } else {
        *start = start_first_call; /* started by the hook's prepare handler, inside fork() */
        __atomic_store_n(stage, 2, __ATOMIC_RELEASE);
    }
    pid_t child = fork();
    if (child == 0) {
        alarm(10);
        exit(use_runtime() == 0 ? 0 : 3); /* exit, not _exit: the shim writes its records at exit */
    }
    sem_post(release_);
    pthread_join(first, NULL);
    int status = 0;
    waitpid(child, &status, 0);
    printf("child=%d parent_calls=%d\n", status, first_ok);
    return child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && first_ok ? 0 : 1;
}
