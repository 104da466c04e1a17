/* Small helpers shared by the emulator's own tests. */
#ifndef EMU_TEST_H_
#define EMU_TEST_H_

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acl/acl.h"
#include "ascend_emu.h"

#define EMU_DRV 507899
#define EMU_PARAM 107000
#define EMU_INVALID 100000
#define EMU_CTX 107002
#define EMU_NOPERM 207006
#define EMU_NOFEAT 207000

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "[pid %ld] %s:%d: check failed: %s\n", (long)getpid(), __FILE__, \
                    __LINE__, #cond);                                                     \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

#define CHECK_EQ(a, b)                                                                          \
    do {                                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                                     \
        if (a_ != b_) {                                                                         \
            fprintf(stderr, "[pid %ld] %s:%d: %s is %lld, expected %s = %lld\n", (long)getpid(), \
                    __FILE__, __LINE__, #a, a_, #b, b_);                                        \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)

static inline void send_all(int fd, const void *buf, size_t n)
{
    const char *p = (const char *)buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        CHECK(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

static inline void recv_all(int fd, void *buf, size_t n)
{
    char *p = (char *)buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        CHECK(r > 0);
        p += r;
        n -= (size_t)r;
    }
}

/* A bidirectional channel between a parent and one forked child. */
struct chan {
    int to_child[2];
    int to_parent[2];
};

static inline void chan_open(struct chan *c)
{
    CHECK(pipe(c->to_child) == 0);
    CHECK(pipe(c->to_parent) == 0);
}

/* Call in the child after fork: keeps its ends only. */
static inline void chan_child(struct chan *c)
{
    close(c->to_child[1]);
    close(c->to_parent[0]);
}

static inline void chan_parent(struct chan *c)
{
    close(c->to_child[0]);
    close(c->to_parent[1]);
}

/* Exit status of a child, 128+signal if it was killed. */
static inline int wait_child(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        CHECK(errno == EINTR);
    }
    if (WIFEXITED(st)) {
        return WEXITSTATUS(st);
    }
    return 128 + WTERMSIG(st);
}

static char emu_test_dir[256];

/* Gives this test (and its children) a fresh private emulator directory. */
static inline const char *use_fresh_dir(void)
{
    snprintf(emu_test_dir, sizeof emu_test_dir, "/tmp/emutest-XXXXXX");
    CHECK(mkdtemp(emu_test_dir) != NULL);
    CHECK(setenv("ASCEND_EMU_DIR", emu_test_dir, 1) == 0);
    return emu_test_dir;
}

/* Number of entries (other than . and ..) in dir whose name starts with prefix. */
static inline int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static inline void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    closedir(d);
    rmdir(dir);
}

static inline void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)((i * 31u + seed) & 0xff);
    }
}

static inline int has_pattern(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != (unsigned char)((i * 31u + seed) & 0xff)) {
            return 0;
        }
    }
    return 1;
}

static inline int is_key(const char *k)
{
    if (strlen(k) != 64) {
        return 0;
    }
    for (int i = 0; i < 64; i++) {
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

#endif /* EMU_TEST_H_ */
