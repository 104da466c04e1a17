/*
 * The demo's misuse: the flow of the vendor's two-process sample, including its mistake
 * of freeing the imported pointer in the importer after closing it. Knows nothing of the
 * shim; exits 0 when the memory was shared.
 */
#include <acl/acl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) return 1;
    pid_t child = fork();
    if (child == 0) { /* importer */
        char key[65];
        int32_t me = 0;
        void *ptr = NULL;
        aclrtSetDevice(0);
        aclrtDeviceGetBareTgid(&me);
        if (write(from_child[1], &me, sizeof me) != sizeof me) _exit(2);
        if (read(to_child[0], key, sizeof key) != sizeof key) _exit(3);
        if (aclrtIpcMemImportByKey(&ptr, key, 0) != 0) _exit(4);
        printf("importer: read \"%s\"\n", (char *)ptr);
        aclrtIpcMemClose(key);
        aclrtFree(ptr); /* the mistake: imported memory is released by Close alone */
        char done = 'd';
        if (write(from_child[1], &done, 1) != 1) _exit(5);
        exit(0); /* as a program ends: its output flushed, its atexit handlers run */
    }
    void *dev = NULL;
    char key[65] = {0};
    int32_t peer = 0;
    aclrtSetDevice(0);
    aclrtMalloc(&dev, 4096, ACL_MEM_MALLOC_HUGE_FIRST);
    strcpy((char *)dev, "hello from the exporter");
    aclrtIpcMemGetExportKey(dev, 4096, key, sizeof key, ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT);
    if (read(from_child[0], &peer, sizeof peer) != sizeof peer) return 6;
    aclrtIpcMemSetImportPid(key, &peer, 1);
    if (write(to_child[1], key, sizeof key) != sizeof key) return 7;
    char done;
    if (read(from_child[0], &done, 1) != 1) return 8;
    int status = 0;
    waitpid(child, &status, 0);
    aclrtIpcMemClose(key);
    aclrtFree(dev);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 9;
}
