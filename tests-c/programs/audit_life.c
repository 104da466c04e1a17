/*
 * A two-process life of one key, with a few deliberate mistakes, for the audit-log tests.
 * Knows nothing of the shim; prints the raw keys it handles on stdout so a test can look
 * for them in the logs.
 *
 *   audit_life            the exporter: re-executes itself as the importer
 *
 * Exporter: SetDevice, Malloc (3 pages), MallocAlign32, export both (the second one with
 * DISABLE_PID_VALIDATION, never closed: exit.leak), GetBareTgid, SetImportPid with its own
 * pid (setpid.own-pid, a warning), SetImportPid with a NULL pid list (setpid.pid-null, an
 * error, from audit_bad_whitelist), SetAttr, ImportPidInterServer, then starts the
 * importer, whitelists it, hands it the key, waits, closes and frees.
 * Importer: SetDevice, GetBareTgid, ImportByKey, checks the bytes, Close, and closes a key
 * nobody has (close.unknown, an error, from audit_bad_close).
 * Exit status 0 when every expected return code came back and the bytes arrived.
 */
#include <acl/acl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (3 * 4096)

#include "test_util.h"

static void expect(const char *what, aclError got, aclError want) { expect_ret("audit_life", what, got, want); }

/* Named, not inlined and not tail calls: the backtrace of the violation should show them. */
__attribute__((noinline)) aclError audit_bad_whitelist(const char *key) {
    aclError r = aclrtIpcMemSetImportPid(key, NULL, 1);
    __asm__ volatile("" ::: "memory");
    return r;
}

__attribute__((noinline)) aclError audit_bad_close(void) {
    aclError r = aclrtIpcMemClose("feedbeef");
    __asm__ volatile("" ::: "memory");
    return r;
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
    unsigned char host[SIZE];
    expect("Memcpy", aclrtMemcpy(host, SIZE, p, SIZE, ACL_MEMCPY_DEVICE_TO_HOST), 0);
    for (size_t i = 0; i < SIZE; i++)
        if (host[i] != (unsigned char)(i * 13 + 1)) return 20;
    expect("Close", aclrtIpcMemClose(key), 0);
    aclError r = audit_bad_close();
    if (r == 0) return 21;
    printf("importer: closed, unknown close returned %d\n", (int)r);
    char done = 'd';
    xwrite(wfd, &done, 1);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "importer") == 0) return importer(atoi(argv[2]), atoi(argv[3]));

    void *dev = NULL, *dev2 = NULL;
    char key[65] = {0}, key2[65] = {0};
    expect("SetDevice", aclrtSetDevice(0), 0);
    expect("Malloc", aclrtMalloc(&dev, SIZE, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    expect("MallocAlign32", aclrtMallocAlign32(&dev2, 4096, ACL_MEM_MALLOC_NORMAL_ONLY), 0);
    unsigned char host[SIZE];
    for (size_t i = 0; i < SIZE; i++) host[i] = (unsigned char)(i * 13 + 1);
    expect("Memcpy", aclrtMemcpy(dev, SIZE, host, SIZE, ACL_MEMCPY_HOST_TO_DEVICE), 0);
    expect("Export", aclrtIpcMemGetExportKey(dev, SIZE, key, sizeof key, ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT), 0);
    expect("Export2", aclrtIpcMemGetExportKey(dev2, 4096, key2, sizeof key2,
                                              ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION), 0);
    printf("key=%s\nkey2=%s\n", key, key2);
    fflush(stdout);
    int32_t me = 0;
    expect("GetBareTgid", aclrtDeviceGetBareTgid(&me), 0);
    int32_t own[2] = {99999, me};
    expect("SetImportPid(own)", aclrtIpcMemSetImportPid(key, own, 2), 0);
    if (audit_bad_whitelist(key) == 0) return 13;
    expect("SetAttr", aclrtIpcMemSetAttr(key, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK, ACL_RT_IPC_MEM_ATTR_ACCESS_LINK_HCCS), 0);
    int32_t remote[2] = {4242, 4343};
    aclrtServerPid sp = {7, remote, 2};
    expect("InterServer", aclrtIpcMemImportPidInterServer(key, &sp, 1), 0);

    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) return 14;
    pid_t child = fork();
    if (child == 0) {
        close(to_child[1]);
        close(from_child[0]);
        char r[16], w[16];
        snprintf(r, sizeof r, "%d", to_child[0]);
        snprintf(w, sizeof w, "%d", from_child[1]);
        execl("/proc/self/exe", argv[0], "importer", r, w, (char *)NULL);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    int32_t peer = 0;
    xread(from_child[0], &peer, sizeof peer);
    expect("SetImportPid", aclrtIpcMemSetImportPid(key, &peer, 1), 0);
    xwrite(to_child[1], key, sizeof key);
    char done = 0;
    xread(from_child[0], &done, 1);
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "audit_life: importer status %d\n", status);
        return 15;
    }
    expect("Close", aclrtIpcMemClose(key), 0);
    expect("Free", aclrtFree(dev), 0);
    printf("importer pid=%d\nexporter done\n", (int)child);
    return 0; /* key2 stays exported: exit.leak */
}
