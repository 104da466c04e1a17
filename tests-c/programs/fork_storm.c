/*
 * Threads keep calling while the main thread forks children that call once and exit:
 * every record must be written once, by the process that made it.
 *
 *   fork_storm CHILDREN
 */
#include <acl/acl.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;

static void *caller(void *arg) {
    (void)arg;
    int32_t pid;
    while (!atomic_load(&stop)) aclrtDeviceGetBareTgid(&pid);
    return NULL;
}

int main(int argc, char **argv) {
    int children = argc > 1 ? atoi(argv[1]) : 50;
    int32_t pid;
    aclrtDeviceGetBareTgid(&pid);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, caller, NULL);
    int failed = 0;
    for (int i = 0; i < children; i++) {
        pid_t c = fork();
        if (c == 0) {
            aclrtDeviceGetBareTgid(&pid);
            exit(0);
        }
        int status = 0;
        waitpid(c, &status, 0);
        failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    printf("children failed: %d\n", failed);
    return failed != 0;
}
