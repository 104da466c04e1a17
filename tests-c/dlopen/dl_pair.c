/*
 * An exporter/importer pair that never links the runtime: it finds it with
 * dlopen("libascendcl.so") and dlsym(handle, name), as torch_npu and ctypes do, and makes
 * two mistakes on the way.
 *
 *   dl_pair [dlopen-name]
 *
 * The exporter allocates, fills and exports memory, first with a key buffer one byte short
 * (len 64: export.key-len, refused by the runtime), then right; it starts the importer
 * (this program again), whitelists the importer's bare tgid and hands it the key. The
 * importer imports, checks the bytes, writes an answer, closes, and then frees the
 * imported pointer (free.imported, refused by the runtime). The exporter checks the
 * answer, closes and frees.
 *
 * Each call prints `ROLE FN RET`; at the end each process prints its pid and the
 * emulator's count of each intercepted function (`ROLE.count FN N`). Exit status 0 means
 * every call returned what the runtime returns for it and every byte arrived.
 */
#include "dl_runtime.h"

#include <string.h>
#include <sys/wait.h>

#include "../programs/test_util.h"

enum { SIZE = 2 * 4096 };

static struct dl_rt rt;
static const char *role = "exporter";

static aclError show(const char *fn, aclError ret) {
    printf("%s %s %d\n", role, fn, (int)ret);
    return ret;
}

#define CALL(fn, ...) show(#fn, rt.fn(__VA_ARGS__))

static unsigned char pattern(size_t i) { return (unsigned char)((i * 13 + 5) & 0xff); }

static int importer(int rfd, int wfd) {
    role = "importer";
    expect_ret(role, "aclInit", rt.aclInit(NULL), ACL_SUCCESS);
    expect_ret(role, "aclrtSetDevice", rt.aclrtSetDevice(0), ACL_SUCCESS);
    int32_t tgid = 0;
    expect_ret(role, "bare tgid", CALL(aclrtDeviceGetBareTgid, &tgid), ACL_SUCCESS);
    xwrite(wfd, &tgid, sizeof tgid);
    char key[65];
    xread(rfd, key, sizeof key);
    void *ptr = NULL;
    expect_ret(role, "import", CALL(aclrtIpcMemImportByKey, &ptr, key, 0), ACL_SUCCESS);
    unsigned char host[SIZE];
    expect_ret(role, "memcpy", rt.aclrtMemcpy(host, SIZE, ptr, SIZE, ACL_MEMCPY_DEVICE_TO_HOST), ACL_SUCCESS);
    for (size_t i = 0; i < SIZE; i++) {
        if (host[i] != pattern(i)) {
            fprintf(stderr, "importer: byte %zu is %u, expected %u\n", i, host[i], pattern(i));
            return 20;
        }
    }
    printf("importer read %d bytes as written\n", SIZE);
    static const char answer[] = "answered through dlsym";
    expect_ret(role, "memcpy", rt.aclrtMemcpy((char *)ptr + 4096, 4096, answer, sizeof answer,
                                              ACL_MEMCPY_HOST_TO_DEVICE), ACL_SUCCESS);
    expect_ret(role, "close", CALL(aclrtIpcMemClose, key), ACL_SUCCESS);
    /* The mistake: the imported pointer is not the importer's to free. */
    expect_ret(role, "free of the import", CALL(aclrtFree, ptr), ACL_ERROR_RT_DRV_INTERNAL_ERROR);
    char done = 'd';
    xwrite(wfd, &done, 1);
    printf("importer pid %d\n", (int)getpid());
    dl_print_counts(role, &rt);
    return 0;
}

static int exporter(void) {
    expect_ret(role, "aclInit", rt.aclInit(NULL), ACL_SUCCESS);
    expect_ret(role, "aclrtSetDevice", rt.aclrtSetDevice(0), ACL_SUCCESS);
    void *dev = NULL;
    expect_ret(role, "malloc", CALL(aclrtMalloc, &dev, SIZE, ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
    unsigned char host[SIZE];
    for (size_t i = 0; i < SIZE; i++) host[i] = pattern(i);
    expect_ret(role, "memcpy", rt.aclrtMemcpy(dev, SIZE, host, SIZE, ACL_MEMCPY_HOST_TO_DEVICE), ACL_SUCCESS);
    char key[65] = {0};
    /* The mistake: a key buffer one byte short. */
    expect_ret(role, "short export", CALL(aclrtIpcMemGetExportKey, dev, SIZE, key, 64, 0),
               ACL_ERROR_RT_PARAM_INVALID);
    expect_ret(role, "export", CALL(aclrtIpcMemGetExportKey, dev, SIZE, key, sizeof key, 0), ACL_SUCCESS);

    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) return 30;
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        close(to_child[1]);
        close(from_child[0]);
        char r[16], w[16];
        snprintf(r, sizeof r, "%d", to_child[0]);
        snprintf(w, sizeof w, "%d", from_child[1]);
        execl("/proc/self/exe", "dl_pair", "importer", r, w, (char *)NULL);
        perror("execl");
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    int32_t tgid = 0;
    xread(from_child[0], &tgid, sizeof tgid);
    expect_ret(role, "whitelist", CALL(aclrtIpcMemSetImportPid, key, &tgid, 1), ACL_SUCCESS);
    xwrite(to_child[1], key, sizeof key);
    char done = 0;
    xread(from_child[0], &done, 1);
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "exporter: importer failed (status %d)\n", status);
        return 31;
    }
    char answer[32] = {0};
    expect_ret(role, "memcpy", rt.aclrtMemcpy(answer, sizeof answer, (char *)dev + 4096, sizeof answer,
                                              ACL_MEMCPY_DEVICE_TO_HOST), ACL_SUCCESS);
    if (strcmp(answer, "answered through dlsym") != 0) {
        fprintf(stderr, "exporter: answer is \"%s\"\n", answer);
        return 32;
    }
    printf("exporter read the answer\n");
    expect_ret(role, "close", CALL(aclrtIpcMemClose, key), ACL_SUCCESS);
    expect_ret(role, "free", CALL(aclrtFree, dev), ACL_SUCCESS);
    printf("exporter pid %d\n", (int)getpid());
    dl_print_counts(role, &rt);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines: both processes share the pipe */
    int is_importer = argc >= 4 && strcmp(argv[1], "importer") == 0;
    const char *name = !is_importer && argc >= 2 ? argv[1] : "libascendcl.so";
    dl_resolve(dl_open(name, RTLD_NOW | RTLD_LOCAL), &rt);
    if (is_importer) return importer(atoi(argv[2]), atoi(argv[3]));
    return exporter();
}
