// An exporter/importer pair that knows nothing of acl-ipc-guard: the documented flow of
// the vendor's two-process sample, done right.
//
//   pair whitelist|open [import-flags]
//
// The exporter allocates device memory, fills it with a pattern, exports it, starts the
// importer (this same program, re-executed), whitelists the importer's bare tgid (in
// whitelist mode), hands it the key, waits until the importer has checked the pattern,
// written its answer and closed the key, then checks the answer, closes and frees.
// Exit status 0 means every byte arrived both ways.
#include <acl/acl.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace {

const size_t kSize = 2 * 4096;

#define CHECK(expr)                                                                     \
    do {                                                                                \
        long rc_ = static_cast<long>(expr);                                             \
        if (rc_ != 0) {                                                                 \
            std::fprintf(stderr, "pair[%d]: %s failed: %ld\n", getpid(), #expr, rc_);   \
            std::exit(10);                                                              \
        }                                                                               \
    } while (0)

void write_all(int fd, const void *buf, size_t n) {
    const char *p = static_cast<const char *>(buf);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { std::perror("write"); std::exit(11); }
        p += w;
        n -= static_cast<size_t>(w);
    }
}

void read_all(int fd, void *buf, size_t n) {
    char *p = static_cast<char *>(buf);
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { std::fprintf(stderr, "pair[%d]: peer went away\n", getpid()); std::exit(12); }
        p += r;
        n -= static_cast<size_t>(r);
    }
}

unsigned char pattern(size_t i) { return static_cast<unsigned char>((i * 7 + 3) & 0xff); }

int importer(int rfd, int wfd, uint64_t import_flags) {
    CHECK(aclInit(nullptr));
    CHECK(aclrtSetDevice(0));
    int32_t tgid = 0;
    CHECK(aclrtDeviceGetBareTgid(&tgid));
    write_all(wfd, &tgid, sizeof tgid);
    char key[65];
    read_all(rfd, key, sizeof key);
    void *ptr = nullptr;
    CHECK(aclrtIpcMemImportByKey(&ptr, key, import_flags));
    unsigned char host[kSize];
    CHECK(aclrtMemcpy(host, kSize, ptr, kSize, ACL_MEMCPY_DEVICE_TO_HOST));
    for (size_t i = 0; i < kSize; i++) {
        if (host[i] != pattern(i)) {
            std::fprintf(stderr, "importer: byte %zu is %u, expected %u\n", i, host[i], pattern(i));
            return 20;
        }
    }
    const char answer[] = "importer was here";
    CHECK(aclrtMemcpy(static_cast<char *>(ptr) + 4096, 4096, answer, sizeof answer,
                      ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK(aclrtIpcMemClose(key));
    char done = 'd';
    write_all(wfd, &done, 1);
    CHECK(aclrtResetDevice(0));
    CHECK(aclFinalize());
    return 0;
}

int exporter(const char *self, bool whitelist, uint64_t import_flags) {
    CHECK(aclInit(nullptr));
    CHECK(aclrtSetDevice(0));
    void *dev = nullptr;
    CHECK(aclrtMalloc(&dev, kSize, ACL_MEM_MALLOC_HUGE_FIRST));
    unsigned char host[kSize];
    for (size_t i = 0; i < kSize; i++) host[i] = pattern(i);
    CHECK(aclrtMemcpy(dev, kSize, host, kSize, ACL_MEMCPY_HOST_TO_DEVICE));
    char key[65] = {0};
    CHECK(aclrtIpcMemGetExportKey(dev, kSize, key, sizeof key,
                                  whitelist ? ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT
                                            : ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION));

    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) { std::perror("pipe"); return 30; }
    pid_t child = fork();
    if (child == 0) {
        close(to_child[1]);
        close(from_child[0]);
        std::string r = std::to_string(to_child[0]), w = std::to_string(from_child[1]);
        std::string f = std::to_string(import_flags);
        execl(self, self, "importer", r.c_str(), w.c_str(), f.c_str(), static_cast<char *>(nullptr));
        std::perror("execl");
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);

    int32_t tgid = 0;
    read_all(from_child[0], &tgid, sizeof tgid);
    if (whitelist) CHECK(aclrtIpcMemSetImportPid(key, &tgid, 1));
    write_all(to_child[1], key, sizeof key);
    char done = 0;
    read_all(from_child[0], &done, 1);

    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "exporter: importer failed (status %d)\n", status);
        return 31;
    }
    char answer[32] = {0};
    CHECK(aclrtMemcpy(answer, sizeof answer, static_cast<char *>(dev) + 4096, sizeof answer,
                      ACL_MEMCPY_DEVICE_TO_HOST));
    if (std::strcmp(answer, "importer was here") != 0) {
        std::fprintf(stderr, "exporter: answer is \"%s\"\n", answer);
        return 32;
    }
    CHECK(aclrtIpcMemClose(key));
    CHECK(aclrtFree(dev));
    CHECK(aclrtResetDevice(0));
    CHECK(aclFinalize());
    std::printf("pair: %s mode, import flags %llu: bytes shared both ways\n",
                whitelist ? "whitelist" : "open", static_cast<unsigned long long>(import_flags));
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc >= 5 && std::strcmp(argv[1], "importer") == 0)
        return importer(std::atoi(argv[2]), std::atoi(argv[3]), std::strtoull(argv[4], nullptr, 10));
    if (argc >= 2 && (std::strcmp(argv[1], "whitelist") == 0 || std::strcmp(argv[1], "open") == 0)) {
        uint64_t flags = argc >= 3 ? std::strtoull(argv[2], nullptr, 10) : 0;
        return exporter("/proc/self/exe", std::strcmp(argv[1], "whitelist") == 0, flags);
    }
    std::fprintf(stderr, "usage: %s whitelist|open [import-flags]\n", argv[0]);
    return 2;
}
