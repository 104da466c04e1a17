/*
 * Helpers shared by the C test programs: checked return codes and whole reads and writes
 * on the pipes the processes of a scenario talk through.
 */
#ifndef AIG_TEST_UTIL_H
#define AIG_TEST_UTIL_H

#include <acl/acl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Exits 10 when a call did not return what the scenario needs. */
static inline void expect_ret(const char *prog, const char *what, aclError got, aclError want) {
    if (got != want) {
        fprintf(stderr, "%s[%d]: %s returned %d, expected %d\n", prog, (int)getpid(), what, (int)got, (int)want);
        exit(10);
    }
}

/* Writes all n bytes, or exits 11. */
static inline void xwrite(int fd, const void *buf, size_t n) {
    const char *p = (const char *)buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) exit(11);
        p += w;
        n -= (size_t)w;
    }
}

/* Reads all n bytes, or exits 12 (the peer went away). */
static inline void xread(int fd, void *buf, size_t n) {
    char *p = (char *)buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) exit(12);
        p += r;
        n -= (size_t)r;
    }
}

#endif /* AIG_TEST_UTIL_H */
