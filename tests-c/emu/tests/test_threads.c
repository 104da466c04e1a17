/* emu.threads: many threads allocating, exporting, importing, closing and freeing at once. */
#include <pthread.h>

#include "emu_test.h"

#define THREADS 8
#define ROUNDS 150

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        void *p = NULL, *q = NULL, *q2 = NULL;
        char key[65];
        size_t size = 4096u * (1u + (unsigned)((seed + (unsigned)i) % 4));
        CHECK_EQ(aclrtMalloc(&p, size, ACL_MEM_MALLOC_HUGE_FIRST), 0);
        fill_pattern((unsigned char *)p, size, seed + (unsigned)i);
        CHECK_EQ(aclrtIpcMemGetExportKey(p, size, key, 65, 1), 0);
        CHECK_EQ(aclrtIpcMemImportByKey(&q, key, 0), 0);
        CHECK_EQ(aclrtIpcMemImportByKey(&q2, key, 1), 0);
        CHECK(q == q2);
        CHECK(has_pattern((unsigned char *)q, size, seed + (unsigned)i));
        CHECK_EQ(aclrtIpcMemClose(key), 0);
        CHECK_EQ(aclrtIpcMemClose(key), 0);
        CHECK_EQ(aclrtIpcMemClose(key), 0);
        CHECK_EQ(aclrtIpcMemClose(key), EMU_DRV);
        CHECK_EQ(aclrtFree(p), 0);
    }
    return NULL;
}

int main(void)
{
    const char *dir = use_fresh_dir();
    CHECK_EQ(aclrtSetDevice(0), 0);
    int before = ascendEmuCallCount("aclrtIpcMemClose");
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i * 1000)) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
    }
    CHECK_EQ(ascendEmuCallCount("aclrtIpcMemClose"), before + THREADS * ROUNDS * 4);
    CHECK_EQ(count_files(dir, ""), 0);
    remove_dir(dir);
    printf("emu.threads: ok\n");
    return 0;
}
