/* Store maintenance from C99 (harmonics_cache_list/verify/remove/prune/clear): two caches
 * made through the disk cache, listed, verified (intact, then damaged), removal refused for
 * a file that is not a cache and deferred for a cache whose lock another holder has, prune
 * keeping that cache and the user's file, clear refusing "/" and keeping the user's file.
 *
 * Every check that fails prints where and why, and the exit status is then 1. Everything
 * lives in a fresh mkdtemp directory under the working directory, removed at the end. */
#define _XOPEN_SOURCE 700 /* O_CLOEXEC */
#define _DEFAULT_SOURCE    /* flock */

#include <harmonics_dataset.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "c_support.h"

/* `out` (2 * PATH_MAX bytes) = scratch_dir/name. */
static void path_in(char *out, const char *name) {
    snprintf(out, 2 * PATH_MAX, "%s/%s", scratch_dir, name);
}

/* A cache of one-column records, made by the disk cache from CSV in memory. */
static void make_cache(const char *name, const char *csv) {
    char path[2 * PATH_MAX];
    HarmonicsProducer *base = NULL, *cache = NULL;
    path_in(path, name);
    REQUIRE_OK(harmonics_csv_producer_from_memory((const uint8_t *)csv, strlen(csv), name,
                                                  false, &base));
    REQUIRE_OK(harmonics_disk_cache_new(base, path, NULL, &cache));
    harmonics_producer_free(cache);
    harmonics_producer_free(base);
}

static int exists(const char *name) {
    char path[2 * PATH_MAX];
    struct stat st;
    path_in(path, name);
    return stat(path, &st) == 0;
}

static void listing_and_verifying(void) {
    HarmonicsCacheList *list = NULL;
    HarmonicsCacheEntry e;
    size_t n = 0;
    uint64_t records = 0;
    char path[2 * PATH_MAX];
    FILE *f;

    REQUIRE_OK(harmonics_cache_list(scratch_dir, &list));
    REQUIRE_OK(harmonics_cache_list_len(list, &n));
    CHECK(n == 2);
    REQUIRE_OK(harmonics_cache_list_get(list, 0, &e));
    CHECK(strcmp(e.name, "a.cache") == 0);
    CHECK(e.state == HARMONICS_CACHE_STATE_CURRENT);
    CHECK(e.records == 3);
    CHECK(e.size > 0 && e.created > 0 && e.last_used > 0);
    CHECK(strstr(e.path, "a.cache") != NULL && e.error[0] == '\0' && e.token[0] == '\0');
    REQUIRE_OK(harmonics_cache_list_get(list, 1, &e));
    CHECK(strcmp(e.name, "b.cache") == 0 && e.records == 2);
    CHECK_FAILS_WITH(HARMONICS_STATUS_INVALID_ARGUMENT, harmonics_cache_list_get(list, 2, &e));
    CHECK(message_contains("index 2"));
    harmonics_cache_list_free(list);

    path_in(path, "a.cache");
    REQUIRE_OK(harmonics_cache_verify(path, &records));
    CHECK(records == 3);

    /* Damage the last record of b.cache: verify names the file, and the list shows the
     * header as intact still (only verify reads every record). */
    path_in(path, "b.cache");
    f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        int c;
        fseek(f, -2, SEEK_END);
        c = fgetc(f);
        fseek(f, -2, SEEK_END);
        fputc(c ^ 0xff, f);
        fclose(f);
    }
    CHECK_FAILS_WITH(HARMONICS_STATUS_CORRUPT, harmonics_cache_verify(path, &records));
    CHECK(message_contains("b.cache"));
    path_in(path, "none.cache");
    CHECK_FAILS_WITH(HARMONICS_STATUS_IO, harmonics_cache_verify(path, &records));
    CHECK(message_contains("no cache"));

    /* A missing directory holds no caches. */
    path_in(path, "missing-dir");
    REQUIRE_OK(harmonics_cache_list(path, &list));
    REQUIRE_OK(harmonics_cache_list_len(list, &n));
    CHECK(n == 0);
    harmonics_cache_list_free(list);
}

static void removing_and_pruning(void) {
    char path[2 * PATH_MAX];
    bool removed = true;
    HarmonicsPruneReport p;
    int fd;
    FILE *f;

    /* The user's file is not a cache: refused, kept. */
    path_in(path, "notes.txt");
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("my notes, not a cache\n", f);
        fclose(f);
    }
    CHECK_FAILS_WITH(HARMONICS_STATUS_INVALID_ARGUMENT, harmonics_cache_remove(path, &removed));
    CHECK(message_contains("not removed"));
    CHECK(exists("notes.txt"));
    path_in(path, "none.cache");
    CHECK_FAILS_WITH(HARMONICS_STATUS_IO, harmonics_cache_remove(path, &removed));
    CHECK(message_contains("no cache"));

    /* Another holder of a.cache's lock: removal is deferred, nothing goes. */
    path_in(path, ".a.cache.lock");
    fd = open(path, O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    path_in(path, "a.cache");
    REQUIRE_OK(harmonics_cache_remove(path, &removed));
    CHECK(!removed && exists("a.cache"));

    /* Prune to 0 bytes: b.cache goes, a.cache (in use) stays and is reported. */
    REQUIRE_OK(harmonics_cache_prune(scratch_dir, 0, &p));
    CHECK(p.removed == 1 && p.in_use == 1);
    CHECK(p.total_before > p.total_after && p.total_after > 0);
    CHECK(!exists("b.cache") && exists("a.cache") && exists("notes.txt"));
    close(fd);

    /* Within the limit: nothing goes. */
    REQUIRE_OK(harmonics_cache_prune(scratch_dir, p.total_after, &p));
    CHECK(p.removed == 0 && p.in_use == 0 && p.total_before == p.total_after);

    REQUIRE_OK(harmonics_cache_remove(path, &removed));
    CHECK(removed && !exists("a.cache"));
}

static void clearing(void) {
    HarmonicsClearReport c;
    char path[2 * PATH_MAX];

    CHECK_FAILS_WITH(HARMONICS_STATUS_INVALID_ARGUMENT, harmonics_cache_clear("/", false, &c));
    CHECK(message_contains("refusing to remove"));
    make_cache("sub/c.cache", "1\n2\n");
    REQUIRE_OK(harmonics_cache_clear(scratch_dir, true, &c));
    CHECK(c.removed >= 1 && c.kept == 1 && c.in_use == 0 && !c.aborted && !c.dir_removed);
    CHECK(!exists("sub/c.cache") && exists("notes.txt"));
    path_in(path, "notes.txt");
    CHECK(unlink(path) == 0);
    REQUIRE_OK(harmonics_cache_clear(scratch_dir, false, &c));
    CHECK(c.dir_removed);
    /* Cleared already. */
    REQUIRE_OK(harmonics_cache_clear(scratch_dir, false, &c));
    CHECK(c.removed == 0 && !c.dir_removed);
}

static void two_caches(void) {
    make_cache("a.cache", "1\n2\n3\n");
    make_cache("b.cache", "4\n5\n");
}

int main(void) {
    static const c_test_fn tests[] = {
        two_caches,
        listing_and_verifying,
        removing_and_pruning,
        clearing,
        NULL,
    };
    return c_run_tests("maintenance_c_test", ".", tests);
}
