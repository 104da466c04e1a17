/*
 * emu.share: two separate programs (fork + exec) share device memory, in
 * whitelist mode and with DISABLE_PID_VALIDATION. Uses the default emulator
 * directory (/dev/shm/ascendemu-<uid>).
 */
#include "emu_test.h"

#define SIZE (1u << 20)

enum { MSG_WRITTEN = 1, MSG_CHECK, MSG_CLOSED };

static int importer(int rfd, int wfd)
{
    CHECK_EQ(aclInit(NULL), 0);
    CHECK_EQ(aclrtSetDevice(0), 0);
    int32_t me = 0;
    CHECK_EQ(aclrtDeviceGetBareTgid(&me), 0);
    CHECK_EQ(me, getpid());
    send_all(wfd, &me, sizeof me);

    char key[65], open_key[65];
    recv_all(rfd, key, sizeof key);
    recv_all(rfd, open_key, sizeof open_key);

    /* whitelisted: import, read the exporter's pattern, write back */
    void *p = NULL;
    CHECK_EQ(aclrtIpcMemImportByKey(&p, key, ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT), 0);
    CHECK(p != NULL);
    CHECK(has_pattern((unsigned char *)p, SIZE, 1));
    fill_pattern((unsigned char *)p, SIZE, 2);
    int msg = MSG_WRITTEN;
    send_all(wfd, &msg, sizeof msg);
    recv_all(rfd, &msg, sizeof msg);
    CHECK_EQ(msg, MSG_CHECK);
    CHECK(has_pattern((unsigned char *)p, SIZE, 3)); /* the exporter's later write */

    /* not whitelisted for this one, but validation is off: import with flag 1 */
    void *q = NULL;
    CHECK_EQ(aclrtIpcMemImportByKey(&q, open_key, ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS), 0);
    CHECK(q != NULL && q != p);
    CHECK(has_pattern((unsigned char *)q, 4096, 3));
    /* no free of imported memory; exporter-only calls are refused here */
    CHECK_EQ(aclrtFree(p), EMU_DRV);
    int32_t other = 1;
    CHECK_EQ(aclrtIpcMemSetImportPid(key, &other, 1), EMU_DRV);

    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(aclrtIpcMemClose(open_key), 0);
    CHECK_EQ(aclrtIpcMemClose(key), EMU_DRV); /* no longer imported, not ours */
    msg = MSG_CLOSED;
    send_all(wfd, &msg, sizeof msg);
    CHECK_EQ(aclrtResetDevice(0), 0);
    CHECK_EQ(aclFinalize(), 0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--importer") == 0) {
        return importer(atoi(argv[2]), atoi(argv[3]));
    }
    CHECK_EQ(aclInit(NULL), 0);
    CHECK_EQ(aclrtSetDevice(0), 0);
    void *p = NULL;
    CHECK_EQ(aclrtMalloc(&p, SIZE, ACL_MEM_MALLOC_HUGE_FIRST), 0);
    fill_pattern((unsigned char *)p, SIZE, 1);
    char key[65], open_key[65];
    CHECK_EQ(aclrtIpcMemGetExportKey(p, SIZE, key, 65, ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT), 0);
    CHECK_EQ(aclrtIpcMemGetExportKey(p, 4096, open_key, 65, ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION), 0);

    int down[2], up[2];
    CHECK(pipe(down) == 0 && pipe(up) == 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        close(down[1]);
        close(up[0]);
        char rfd[16], wfd[16];
        snprintf(rfd, sizeof rfd, "%d", down[0]);
        snprintf(wfd, sizeof wfd, "%d", up[1]);
        execl("/proc/self/exe", argv[0], "--importer", rfd, wfd, (char *)NULL);
        _exit(127);
    }
    close(down[0]);
    close(up[1]);

    int32_t pid = 0;
    recv_all(up[0], &pid, sizeof pid);
    CHECK_EQ(pid, child);
    CHECK_EQ(aclrtIpcMemSetImportPid(key, &pid, 1), 0);
    send_all(down[1], key, sizeof key);
    send_all(down[1], open_key, sizeof open_key);

    int msg = 0;
    recv_all(up[0], &msg, sizeof msg);
    CHECK_EQ(msg, MSG_WRITTEN);
    CHECK(has_pattern((unsigned char *)p, SIZE, 2)); /* the importer's write */
    fill_pattern((unsigned char *)p, SIZE, 3);
    msg = MSG_CHECK;
    send_all(down[1], &msg, sizeof msg);
    recv_all(up[0], &msg, sizeof msg);
    CHECK_EQ(msg, MSG_CLOSED);
    CHECK_EQ(wait_child(child), 0);

    CHECK_EQ(aclrtIpcMemClose(key), 0);
    CHECK_EQ(aclrtIpcMemClose(open_key), 0);
    CHECK_EQ(aclrtFree(p), 0);
    CHECK_EQ(aclrtResetDevice(0), 0);
    CHECK_EQ(aclFinalize(), 0);
    printf("emu.share: ok\n");
    return 0;
}
