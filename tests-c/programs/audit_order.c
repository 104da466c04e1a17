/*
 * One exporter, two importers (this program re-executed), for the report's ordering check.
 * Knows nothing of the shim.
 *
 *   audit_order bad     the exporter closes the key while the second importer, alive,
 *                       still has it imported (the vendor's rule: importers close first)
 *   audit_order good    both importers close, then the exporter
 *
 * Every step waits for the previous one (pipes), with 2 ms between the closes so that
 * their timestamps are apart. Prints "exporter=PID importers=PID1,PID2"; exit status 0
 * when every call returned what the flow expects.
 */
#include <acl/acl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static void expect(const char *what, aclError got, aclError want) { expect_ret("audit_order", what, got, want); }

static char command(int fd) {
    char c = 0;
    xread(fd, &c, 1);
    return c;
}

static int importer(int rfd, int wfd) {
    expect("SetDevice", aclrtSetDevice(0), 0);
    int32_t me = 0;
    expect("GetBareTgid", aclrtDeviceGetBareTgid(&me), 0);
    xwrite(wfd, &me, sizeof me);
    char key[65];
    xread(rfd, key, sizeof key);
    void *p = NULL;
    expect("ImportByKey", aclrtIpcMemImportByKey(&p, key, 0), 0);
    if (strcmp((const char *)p, "shared page") != 0) return 20;
    xwrite(wfd, "i", 1);
    if (command(rfd) != 'c') return 21;
    expect("Close", aclrtIpcMemClose(key), 0);
    xwrite(wfd, "d", 1);
    if (command(rfd) != 'x') return 22;
    return 0;
}

struct peer {
    pid_t pid;
    int to, from;
};

static struct peer start_importer(void) {
    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) exit(13);
    pid_t child = fork();
    if (child < 0) exit(14);
    if (child == 0) {
        close(to_child[1]);
        close(from_child[0]);
        char r[16], w[16];
        snprintf(r, sizeof r, "%d", to_child[0]);
        snprintf(w, sizeof w, "%d", from_child[1]);
        execl("/proc/self/exe", "audit_order", "importer", r, w, (char *)NULL);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    struct peer p = {child, to_child[1], from_child[0]};
    return p;
}

static void close_importer(struct peer *p) {
    xwrite(p->to, "c", 1);
    if (command(p->from) != 'd') exit(15);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "importer") == 0) return importer(atoi(argv[2]), atoi(argv[3]));
    if (argc != 2 || (strcmp(argv[1], "bad") != 0 && strcmp(argv[1], "good") != 0)) {
        fprintf(stderr, "usage: audit_order bad|good\n");
        return 2;
    }
    int bad = strcmp(argv[1], "bad") == 0;
    void *dev = NULL;
    char key[65] = {0};
    expect("SetDevice", aclrtSetDevice(0), 0);
    expect("Malloc", aclrtMalloc(&dev, 4096, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    strcpy((char *)dev, "shared page");
    expect("Export", aclrtIpcMemGetExportKey(dev, 4096, key, sizeof key, ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT), 0);

    struct peer im[2] = {start_importer(), start_importer()};
    int32_t tgids[2];
    for (int i = 0; i < 2; i++) xread(im[i].from, &tgids[i], sizeof tgids[i]);
    expect("SetImportPid", aclrtIpcMemSetImportPid(key, tgids, 2), 0);
    for (int i = 0; i < 2; i++) xwrite(im[i].to, key, sizeof key);
    for (int i = 0; i < 2; i++)
        if (command(im[i].from) != 'i') return 16;

    close_importer(&im[0]);
    usleep(2000);
    if (bad) {
        expect("Close", aclrtIpcMemClose(key), 0); /* importer 2 still has it */
        usleep(2000);
        close_importer(&im[1]);
    } else {
        close_importer(&im[1]);
        usleep(2000);
        expect("Close", aclrtIpcMemClose(key), 0);
    }
    for (int i = 0; i < 2; i++) xwrite(im[i].to, "x", 1);
    for (int i = 0; i < 2; i++) {
        int status = 0;
        waitpid(im[i].pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "audit_order: importer %d status %#x\n", (int)im[i].pid, status);
            return 17;
        }
    }
    expect("Free", aclrtFree(dev), 0);
    printf("exporter=%d importers=%d,%d\n", (int)getpid(), (int)im[0].pid, (int)im[1].pid);
    return 0;
}
