/*
 * dlopen, calls, dlclose, and the same again: the shim must see every call once and keep
 * working when the program unloads the runtime it loaded (the shim's cached pointers must
 * not dangle).
 *
 *   dl_reopen local|global [ROUNDS]
 *
 * Each of two rounds dlopens libascendcl.so (RTLD_LOCAL or RTLD_GLOBAL), resolves the
 * functions with dlsym(handle), makes a fixed set of calls (`rR FN RET`), prints the
 * emulator's counts before and after (`rR.before.count FN N`, `rR.after.count FN N`) and
 * dlcloses. Between the rounds the address range the runtime had is taken with an
 * inaccessible mapping where it is free (`occupied 1`: the runtime was unloaded), so a
 * stale pointer into the old runtime faults instead of hitting a copy at the same place.
 * With ROUNDS (default 2) the later rounds follow the same way, and the number of open
 * file descriptors after the first round and after the last is printed (`fds.after1 N`,
 * `fds.end N`): loading and unloading the runtime must not leak descriptors.
 */
#include "dl_runtime.h"

#include <dirent.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../programs/test_util.h"

static struct dl_rt rt;
static char label[16];

static aclError show(const char *fn, aclError ret) {
    printf("%s %s %d\n", label, fn, (int)ret);
    return ret;
}

#define CALL(fn, ...) show(#fn, rt.fn(__VA_ARGS__))

struct span {
    uintptr_t base, end;
};

static int find_span(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct span *s = data;
    if (info->dlpi_addr != s->base) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && info->dlpi_addr + ph->p_vaddr + ph->p_memsz > s->end)
            s->end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    }
    return 1;
}

static void round_of_calls(int r, int flags, struct span *where) {
    snprintf(label, sizeof label, "r%d", r);
    void *h = dl_open("libascendcl.so", RTLD_NOW | flags);
    dl_resolve(h, &rt);
    printf("%s aclrtMalloc from %s\n", label, dl_origin((const void *)rt.aclrtMalloc));
    char what[32];
    snprintf(what, sizeof what, "%s.before", label);
    dl_print_counts(what, &rt);

    expect_ret(label, "aclrtSetDevice", rt.aclrtSetDevice(0), ACL_SUCCESS);
    void *p = NULL, *q = NULL;
    char key[65] = {0};
    int32_t tgid = 0;
    expect_ret(label, "malloc", CALL(aclrtMalloc, &p, 4096, ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
    expect_ret(label, "export", CALL(aclrtIpcMemGetExportKey, p, 4096, key, sizeof key, 1), ACL_SUCCESS);
    expect_ret(label, "close", CALL(aclrtIpcMemClose, key), ACL_SUCCESS);
    expect_ret(label, "free", CALL(aclrtFree, p), ACL_SUCCESS);
    expect_ret(label, "bare tgid", CALL(aclrtDeviceGetBareTgid, &tgid), ACL_SUCCESS);
    expect_ret(label, "malloc32", CALL(aclrtMallocAlign32, &q, 4096, ACL_MEM_MALLOC_HUGE_FIRST), ACL_SUCCESS);
    expect_ret(label, "free32", CALL(aclrtFree, q), ACL_SUCCESS);

    snprintf(what, sizeof what, "%s.after", label);
    dl_print_counts(what, &rt);
    Dl_info info;
    if (dladdr((const void *)rt.aclrtSetDevice, &info) == 0) exit(4);
    where->base = (uintptr_t)info.dli_fbase;
    where->end = 0;
    dl_iterate_phdr(find_span, where);
    if (dlclose(h) != 0) {
        fprintf(stderr, "dlclose: %s\n", dlerror());
        exit(5);
    }
}

/* Open descriptors, from /proc/self/fd (less the one the listing itself uses). */
static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) exit(6);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rounds = argc == 3 ? atoi(argv[2]) : 2;
    if (argc < 2 || argc > 3 || rounds < 2 ||
        (strcmp(argv[1], "local") != 0 && strcmp(argv[1], "global") != 0)) {
        fprintf(stderr, "usage: dl_reopen local|global [ROUNDS>=2]\n");
        return 2;
    }
    int flags = strcmp(argv[1], "local") == 0 ? RTLD_LOCAL : RTLD_GLOBAL;
    struct span old = {0, 0};
    round_of_calls(1, flags, &old);
    int fds_after1 = count_fds();
    int occupied = 0;
    if (old.end > old.base) {
        void *m = mmap((void *)old.base, old.end - old.base, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        occupied = m == (void *)old.base;
        if (m != MAP_FAILED && !occupied) munmap(m, old.end - old.base);
    }
    printf("occupied %d\n", occupied);
    struct span again;
    for (int r = 2; r <= rounds; r++) round_of_calls(r, flags, &again);
    if (argc == 3) printf("fds.after1 %d\nfds.end %d\n", fds_after1, count_fds());
    printf("done\n");
    return 0;
}
