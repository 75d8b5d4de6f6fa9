/* A producer written in C, cached on disk through the C API, from a C99 program (built with
 * -std=c99 -Wall -Wextra -Werror -pedantic): a second open reads nothing from the source;
 * growth appends; a token change rebuilds; a failing source leaves no cache; a failed
 * rebuild names itself (not HARMONICS_STATUS_FOREIGN); the lock timeout. The C source
 * (new_c_source) and the checks are in c_support.h. */
#define _XOPEN_SOURCE 700 /* O_CLOEXEC */
#define _DEFAULT_SOURCE    /* flock */

#include <harmonics_dataset.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "c_support.h"

/* ---- a producer written in C, cached on disk ------------------------------------------ */

/* Token callback: the token is a string owned by a malloc'd holder. */
struct token_holder {
    const char *value;
    size_t *frees;
};

static HarmonicsStatus holder_token(void *userdata, const char **ptr, size_t *len) {
    struct token_holder *h = userdata;
    *ptr = h->value;
    *len = strlen(h->value);
    return HARMONICS_STATUS_OK;
}

static void holder_free(void *userdata) {
    struct token_holder *h = userdata;
    (*h->frees)++;
    free(h);
}

/* Opens (or creates) cache `name` over a fresh C source of `records` records; returns the
 * outcome kind, or 99 on failure. Reads every record once, checking its values. */
static unsigned open_and_read(const char *name, size_t records, const char *token,
                              struct source_counters *counters, HarmonicsCacheOutcome *outcome,
                              size_t *token_frees) {
    HarmonicsProducer *base = new_c_source(counters, records, 0);
    HarmonicsProducer *cache = NULL;
    HarmonicsTokenCallback tcb;
    HarmonicsStatus st;
    size_t n = 0, i;
    unsigned kind = 99;

    if (base == NULL) return 99;
    if (token != NULL) {
        struct token_holder *h = malloc(sizeof *h);
        if (h == NULL) return 99;
        h->value = token;
        h->frees = token_frees;
        tcb.userdata = h;
        tcb.token = holder_token;
        tcb.free = holder_free;
    }
    st = harmonics_disk_cache_new(base, name, token != NULL ? &tcb : NULL, &cache);
    harmonics_producer_free(base); /* the cache shares it */
    if (st != HARMONICS_STATUS_OK) {
        fprintf(stderr, "harmonics_disk_cache_new(%s): %s: %s\n", name, harmonics_status_name(st),
                harmonics_last_error_message());
        failures++;
        return 99;
    }
    if (harmonics_disk_cache_outcome(cache, outcome) == HARMONICS_STATUS_OK) kind = outcome->kind;
    CHECK(harmonics_producer_size(cache, &n) == HARMONICS_STATUS_OK && n == records);
    /* Zero-copy views for the first pass, copies for the record after the last (cycling). */
    for (i = 0; i < records; i++) {
        HarmonicsTensorView v;
        float want[3];
        record_values(i, want);
        if (harmonics_producer_next_view(cache, &v) != HARMONICS_STATUS_OK) {
            fprintf(stderr, "next_view %lu: %s\n", (unsigned long)i, harmonics_last_error_message());
            failures++;
            break;
        }
        if (!(v.dtype == HARMONICS_DTYPE_FLOAT32 && v.ndims == 1 && v.shape[0] == 3 &&
              floats_equal(v.data, v.nbytes, want, 3))) {
            fprintf(stderr, "%s: record %lu has wrong contents\n", name, (unsigned long)i);
            failures++;
        }
    }
    {
        HarmonicsTensor *t = NULL;
        HarmonicsTensorView v;
        float want[3];
        record_values(0, want);
        if (harmonics_producer_next(cache, &t) == HARMONICS_STATUS_OK &&
            harmonics_tensor_view(t, &v) == HARMONICS_STATUS_OK) {
            CHECK(floats_equal(v.data, v.nbytes, want, 3)); /* cycled back to record 0 */
        } else {
            fprintf(stderr, "next after the last: %s\n", harmonics_last_error_message());
            failures++;
        }
        harmonics_tensor_free(t);
    }
    harmonics_producer_free(cache);
    return kind;
}

static void test_c_producer_cached_on_disk(void) {
    struct source_counters c;
    HarmonicsCacheOutcome o;
    size_t token_frees = 0;

    /* First open: populated from the C source, every record read once. */
    memset(&c, 0, sizeof c);
    CHECK(open_and_read("c_records", 3, NULL, &c, &o, &token_frees) ==
          HARMONICS_CACHE_OUTCOME_KIND_CREATED);
    CHECK(c.next_calls == 3);
    CHECK(c.frees == 1); /* the library released the source exactly once */
    CHECK(file_exists("c_records"));

    /* Second open: served from the file; the source's next() is never called. */
    memset(&c, 0, sizeof c);
    CHECK(open_and_read("c_records", 3, NULL, &c, &o, &token_frees) ==
          HARMONICS_CACHE_OUTCOME_KIND_REUSED);
    CHECK(c.next_calls == 0);
    CHECK(c.frees == 1);

    /* The source grew from 3 to 5 records: exactly records 3 and 4 are appended (and the
     * reads above saw all five, in order). A callback producer has no skip, so reaching
     * record 3 of a fresh source takes three next() calls before the two copied ones. */
    memset(&c, 0, sizeof c);
    CHECK(open_and_read("c_records", 5, NULL, &c, &o, &token_frees) ==
          HARMONICS_CACHE_OUTCOME_KIND_APPENDED);
    CHECK(o.from == 3 && o.to == 5);
    CHECK(c.next_calls == 5);
    memset(&c, 0, sizeof c);
    CHECK(open_and_read("c_records", 5, NULL, &c, &o, &token_frees) ==
          HARMONICS_CACHE_OUTCOME_KIND_REUSED);
    CHECK(c.next_calls == 0);

    /* Tokens: same token reuses, a changed token rebuilds from the source. */
    memset(&c, 0, sizeof c);
    CHECK(open_and_read("c_tokened", 2, "v1", &c, &o, &token_frees) ==
          HARMONICS_CACHE_OUTCOME_KIND_CREATED);
    memset(&c, 0, sizeof c);
    CHECK(open_and_read("c_tokened", 2, "v1", &c, &o, &token_frees) ==
          HARMONICS_CACHE_OUTCOME_KIND_REUSED);
    CHECK(c.next_calls == 0);
    memset(&c, 0, sizeof c);
    CHECK(open_and_read("c_tokened", 2, "v2", &c, &o, &token_frees) ==
          HARMONICS_CACHE_OUTCOME_KIND_REBUILT);
    CHECK(c.next_calls == 2);
    CHECK(token_frees == 3); /* each token holder released exactly once */
}

static void test_failing_c_producer_leaves_no_cache(void) {
    struct source_counters c;
    HarmonicsProducer *base, *cache = NULL;

    memset(&c, 0, sizeof c);
    base = new_c_source(&c, 4, 2); /* the second record fails */
    CHECK(base != NULL);
    if (base == NULL) return;
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN,
                     harmonics_disk_cache_new(base, "c_failing", NULL, &cache));
    CHECK(message_contains("sensor 7 went offline"));
    CHECK(cache == NULL);
    CHECK(!file_exists("c_failing")); /* nothing a later run could trust */
    harmonics_producer_free(base);
    CHECK(c.frees == 1);
}

/* Damage found while reading, then a rebuild that fails (the source's next fails): the
 * status names the failed rebuild, not the callback (HARMONICS_STATUS_FOREIGN is for a
 * callback's own error reaching its caller), and the message keeps both causes. */
static void test_failed_rebuild_is_not_a_foreign_error(void) {
    struct source_counters c;
    HarmonicsCacheOutcome o;
    HarmonicsProducer *base, *cache = NULL;
    HarmonicsTensorView v;
    char path[4200];
    unsigned char *bytes;
    long size, at, i;
    float last[3];
    FILE *f;
    int damaged = 0;

    memset(&c, 0, sizeof c);
    CHECK(open_and_read("c_rebuild", 4, NULL, &c, &o, NULL) == HARMONICS_CACHE_OUTCOME_KIND_CREATED);

    /* Flip a byte of the last record's values (found by its float bytes). */
    snprintf(path, sizeof path, "%s/c_rebuild", cache_dir);
    f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f == NULL) return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    bytes = malloc((size_t)size);
    CHECK(bytes != NULL);
    if (bytes == NULL) { fclose(f); return; }
    fseek(f, 0, SEEK_SET);
    CHECK(fread(bytes, 1, (size_t)size, f) == (size_t)size);
    record_values(3, last);
    for (at = 0; at + (long)sizeof last <= size; at++) {
        if (memcmp(bytes + at, last, sizeof last) == 0) {
            fseek(f, at + 1, SEEK_SET);
            fputc(bytes[at + 1] ^ 0x40, f);
            damaged = 1;
            break;
        }
    }
    free(bytes);
    fclose(f);
    CHECK(damaged);

    memset(&c, 0, sizeof c);
    base = new_c_source(&c, 4, 1); /* the rebuild's first record fails */
    CHECK(base != NULL);
    if (base == NULL) return;
    REQUIRE_OK(harmonics_disk_cache_new(base, "c_rebuild", NULL, &cache));
    for (i = 0; i < 3; i++) REQUIRE_OK(harmonics_producer_next_view(cache, &v));
    {
        HarmonicsStatus st = harmonics_producer_next_view(cache, &v);
        CHECK(st != HARMONICS_STATUS_FOREIGN);
        CHECK_FAILS_WITH(HARMONICS_STATUS_REBUILD_FAILED, st);
    }
    CHECK(message_contains("c_rebuild"));
    CHECK(message_contains("rebuilding it from the source failed"));
    CHECK(message_contains("sensor 7 went offline"));
    CHECK(strcmp(harmonics_status_name(HARMONICS_STATUS_REBUILD_FAILED),
                 "rebuilding a damaged cache failed") == 0);
    harmonics_producer_free(cache);
    harmonics_producer_free(base);
}

/* ---- lock timeout ---------------------------------------------------------------------- */

/* A lock held through another descriptor (as another process would hold it) is given
 * up after the timeout set with harmonics_set_lock_timeout_ms. */
static void test_lock_timeout(void) {
    char lock[4200];
    struct source_counters counters;
    HarmonicsProducer *base, *cache = NULL;
    HarmonicsStatus st;
    int fd;

    memset(&counters, 0, sizeof counters);
    CHECK(harmonics_lock_timeout_ms() == -1);
    harmonics_set_lock_timeout_ms(200);
    CHECK(harmonics_lock_timeout_ms() == 200);
    mkdir(cache_dir, 0755);
    snprintf(lock, sizeof lock, "%s/.held.cache.lock", cache_dir);
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    base = new_c_source(&counters, 3, 0);
    CHECK(base != NULL);
    st = harmonics_disk_cache_new(base, "held.cache", NULL, &cache);
    CHECK(st == HARMONICS_STATUS_LOCK_TIMEOUT);
    CHECK(cache == NULL);
    CHECK(message_contains("gave up waiting for the lock of"));
    CHECK(message_contains("held.cache"));
    CHECK(!file_exists("held.cache"));
    close(fd);
    harmonics_set_lock_timeout_ms(-1);
    CHECK(harmonics_lock_timeout_ms() == -1);
    harmonics_producer_free(base);
}

/* ---- the batch call and read-ahead (issue 23) ------------------------------------------- */

/* A HarmonicsCopyFn keeping the batch: its shape and a copy of its data. */
struct batch_copy {
    size_t ndims;
    size_t shape[4];
    float data[64 * 3];
    size_t nbytes;
};

static HarmonicsCallbackResult keep_batch(void *userdata, const HarmonicsTensorView *v) {
    struct batch_copy *b = userdata;
    size_t k;
    if (v->ndims > 4 || v->nbytes > sizeof b->data) return HARMONICS_STATUS_FOREIGN;
    b->ndims = v->ndims;
    for (k = 0; k < v->ndims; k++) b->shape[k] = v->shape[k];
    memcpy(b->data, v->data, v->nbytes);
    b->nbytes = v->nbytes;
    return HARMONICS_STATUS_OK;
}

static void test_batch_and_read_ahead(void) {
    struct source_counters c;
    HarmonicsProducer *base, *cache = NULL, *sampled = NULL, *one = NULL;
    HarmonicsSampler *order = NULL;
    HarmonicsSamplerOptions o;
    struct batch_copy b;
    size_t k, j, i;

    memset(&c, 0, sizeof c);
    base = new_c_source(&c, 100, 0);
    REQUIRE_OK(harmonics_disk_cache_new(base, "c_batch", NULL, &cache));
    harmonics_producer_free(base);
    o = harmonics_sampler_options_default();
    o.seed = 9;
    REQUIRE_OK(harmonics_sampled_producer_new(cache, &o, &sampled));
    REQUIRE_OK(harmonics_sampled_producer_new(cache, &o, &one));

    /* A batch of 64 = the next 64 records one at a time, stacked as [64, 3]. */
    for (k = 0; k < 3; k++) {
        memset(&b, 0, sizeof b);
        REQUIRE_OK(harmonics_producer_next_batch(sampled, 64, keep_batch, &b));
        CHECK(b.ndims == 2 && b.shape[0] == 64 && b.shape[1] == 3);
        CHECK(b.nbytes == 64 * 3 * sizeof(float));
        for (j = 0; j < 64; j++) {
            HarmonicsTensor *t = NULL;
            HarmonicsTensorView v;
            REQUIRE_OK(harmonics_producer_next(one, &t));
            REQUIRE_OK(harmonics_tensor_view(t, &v));
            CHECK(floats_equal(v.data, v.nbytes, &b.data[j * 3], 3));
            harmonics_tensor_free(t);
        }
    }
    CHECK_FAILS_WITH(HARMONICS_STATUS_INVALID_ARGUMENT,
                     harmonics_producer_next_batch(sampled, 0, keep_batch, &b));

    /* Read-ahead in a caller's sampler order: view_at in that order is exact. */
    REQUIRE_OK(harmonics_sampler_new(100, &o, &order));
    REQUIRE_OK(harmonics_producer_read_ahead(cache, order));
    for (k = 0; k < 250; k++) {
        uint64_t idx = 0;
        HarmonicsTensorView v;
        float want[3];
        REQUIRE_OK(harmonics_sampler_next(order, &idx));
        i = (size_t)idx;
        record_values(i, want);
        REQUIRE_OK(harmonics_producer_view_at(cache, i, &v));
        CHECK(floats_equal(v.data, v.nbytes, want, 3));
    }
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_producer_read_ahead(cache, NULL));
    harmonics_sampler_free(order);
    harmonics_producer_free(one);
    harmonics_producer_free(sampled);
    harmonics_producer_free(cache);
}

/* ---- driver --------------------------------------------------------------------------- */

int main(void) {
    static const c_test_fn tests[] = {
        test_c_producer_cached_on_disk,
        test_failing_c_producer_leaves_no_cache,
        test_failed_rebuild_is_not_a_foreign_error,
        test_lock_timeout,
        test_batch_and_read_ahead,
        NULL,
    };
    return c_run_tests("c_api_disk_cache_test", NULL, tests);
}
