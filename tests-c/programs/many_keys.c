/*
 * Many live keys at once, for the ledger's capacity test. Reads commands on stdin, one per
 * line, answers each with one line on stdout ("ok ..." or "fail ..."):
 *   export N FILE   allocates one page and exports it N times in open mode (each export is
 *                   a new key), writing the keys to FILE, one per line
 *   import FILE I   imports key number I of FILE
 *   close FILE I    closes key number I of FILE
 *   closeall FILE   closes every key of FILE not closed here yet, frees the page (if any)
 * The program exits 0 at end of input.
 */
#include "test_util.h"

#include <string.h>

#define KEY_LEN 65

static char (*g_keys)[KEY_LEN];
static char *g_closed;
static size_t g_nkeys;
static void *g_page;

/* Loads FILE's keys (once per file name; the tests use one file per job). */
static int load(const char *file) {
    if (g_keys != NULL) return 0;
    FILE *f = fopen(file, "r");
    if (f == NULL) return -1;
    size_t cap = 1024;
    g_keys = malloc(cap * KEY_LEN);
    char line[128];
    while (g_keys != NULL && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (g_nkeys == cap) {
            cap *= 2;
            g_keys = realloc(g_keys, cap * KEY_LEN);
            if (g_keys == NULL) break;
        }
        line[KEY_LEN - 1] = '\0';
        memcpy(g_keys[g_nkeys++], line, KEY_LEN);
    }
    fclose(f);
    g_closed = calloc(g_nkeys + 1, 1);
    return g_keys == NULL || g_closed == NULL ? -1 : 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    expect_ret("many_keys", "aclrtSetDevice", aclrtSetDevice(0), ACL_SUCCESS);
    char line[512], file[400];
    unsigned long n;
    while (fgets(line, sizeof line, stdin) != NULL) {
        if (sscanf(line, "export %lu %399s", &n, file) == 2) {
            aclError r = aclrtMalloc(&g_page, 4096, ACL_MEM_MALLOC_HUGE_FIRST);
            FILE *f = fopen(file, "w");
            unsigned long done = 0;
            char key[KEY_LEN];
            for (; r == ACL_SUCCESS && f != NULL && done < n; done++) {
                r = aclrtIpcMemGetExportKey(g_page, 4096, key, KEY_LEN, ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION);
                if (r == ACL_SUCCESS) fprintf(f, "%s\n", key);
            }
            if (f != NULL) fclose(f);
            printf("%s %lu ret=%d\n", r == ACL_SUCCESS && f != NULL ? "ok" : "fail", done, (int)r);
        } else if (sscanf(line, "import %399s %lu", file, &n) == 2) {
            void *p = NULL;
            aclError r = load(file) != 0 || n >= g_nkeys ? -1 : aclrtIpcMemImportByKey(&p, g_keys[n], 0);
            printf("%s import %lu ret=%d\n", r == ACL_SUCCESS ? "ok" : "fail", n, (int)r);
        } else if (sscanf(line, "close %399s %lu", file, &n) == 2) {
            aclError r = load(file) != 0 || n >= g_nkeys ? -1 : aclrtIpcMemClose(g_keys[n]);
            if (r == ACL_SUCCESS) g_closed[n] = 1;
            printf("%s close %lu ret=%d\n", r == ACL_SUCCESS ? "ok" : "fail", n, (int)r);
        } else if (sscanf(line, "closeall %399s", file) == 1) {
            unsigned long bad = 0;
            if (load(file) != 0) bad = 1;
            for (size_t i = 0; g_keys != NULL && i < g_nkeys; i++)
                if (!g_closed[i] && aclrtIpcMemClose(g_keys[i]) != ACL_SUCCESS) bad++;
            aclError r = g_page != NULL ? aclrtFree(g_page) : ACL_SUCCESS;
            printf("ok closeall failed=%lu free=%d\n", bad, (int)r);
        } else {
            printf("fail unknown command\n");
        }
    }
    free(g_keys);
    free(g_closed);
    return 0;
}
