/* C code written for an earlier release keeps working, from a C99 program: a
 * HarmonicsProducerCallbacks on the stack over uninitialised memory (filled with 0xAA
 * bytes here, as a stack often is) with only the four fields that release had set
 * (userdata, next, size, free) builds a cache and reuses it. The struct is frozen: the
 * optional callbacks added since (skip, fingerprint) are set on the handle
 * (harmonics_producer_set_skip_callback / _set_fingerprint_callback), never read from
 * memory an old caller did not write. (Before, they were fields at the end of the struct:
 * the library called a garbage fingerprint pointer and the process died.) Built and run
 * also under ASan+UBSan and valgrind. Helpers: c_support.h. */
#include <harmonics_dataset.h>

#include <stdlib.h>
#include <string.h>

#include "c_support.h"

/* The rule, checked at compile time: HarmonicsProducerCallbacks never grows. */
typedef char callbacks_struct_is_frozen[sizeof(HarmonicsProducerCallbacks) == 4 * sizeof(void *) ? 1 : -1];

/* A producer built as the first release's users wrote it. */
static HarmonicsProducer *old_style_producer(struct source_counters *counters, size_t records) {
    HarmonicsProducerCallbacks cb;
    HarmonicsProducer *p = NULL;
    struct c_source *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->counters = counters;
    s->records = records;
    memset(&cb, 0xAA, sizeof cb); /* what an uninitialised stack may hold */
    cb.userdata = s;
    cb.next = c_source_next;
    cb.size = c_source_size;
    cb.free = c_source_free;
    if (harmonics_producer_from_callbacks(&cb, "an old caller's source", &p) != HARMONICS_STATUS_OK) {
        fprintf(stderr, "harmonics_producer_from_callbacks: %s\n", harmonics_last_error_message());
        return NULL;
    }
    return p;
}

/* Reads `n` records from `cache` and checks each. */
static void check_records(HarmonicsProducer *cache, size_t n) {
    size_t i, count = 0;
    float want[3];
    HarmonicsTensorView v;
    REQUIRE_OK(harmonics_producer_size(cache, &count));
    CHECK(count == n);
    for (i = 0; i < n; i++) {
        REQUIRE_OK(harmonics_producer_next_view(cache, &v));
        record_values(i, want);
        CHECK(floats_equal(v.data, v.nbytes, want, 3));
    }
}

static void test_a_four_field_struct_over_uninitialised_memory_builds_and_reuses_a_cache(void) {
    struct source_counters first = {0, 0, 0}, second = {0, 0, 0};
    HarmonicsProducer *base, *cache = NULL;
    HarmonicsCacheOutcome o;

    base = old_style_producer(&first, 5);
    CHECK(base != NULL);
    if (base == NULL) return;
    REQUIRE_OK(harmonics_disk_cache_new(base, "old.cache", NULL, &cache));
    REQUIRE_OK(harmonics_disk_cache_outcome(cache, &o));
    CHECK(o.kind == HARMONICS_CACHE_OUTCOME_KIND_CREATED);
    check_records(cache, 5);
    CHECK(first.next_calls == 5);
    harmonics_producer_free(cache);
    harmonics_producer_free(base);
    CHECK(first.frees == 1);

    /* Again, as the next run of the same program: the cache is reused (the size rule of a
     * producer without a fingerprint), the source's records are not read. */
    base = old_style_producer(&second, 5);
    CHECK(base != NULL);
    if (base == NULL) return;
    cache = NULL;
    REQUIRE_OK(harmonics_disk_cache_new(base, "old.cache", NULL, &cache));
    REQUIRE_OK(harmonics_disk_cache_outcome(cache, &o));
    CHECK(o.kind == HARMONICS_CACHE_OUTCOME_KIND_REUSED);
    check_records(cache, 5);
    CHECK(second.next_calls == 0);
    harmonics_producer_free(cache);
    harmonics_producer_free(base);
    CHECK(second.frees == 1);
}

/* ---- the optional callbacks, set on the handle ------------------------------------------- */

struct fingerprinted {
    struct c_source source; /* first: the c_source callbacks take the same userdata */
    const char *fingerprint;
    size_t skips;
};

static HarmonicsCallbackResult source_fingerprint(void *userdata, const char **ptr, size_t *len) {
    struct fingerprinted *f = userdata;
    *ptr = f->fingerprint;
    *len = strlen(f->fingerprint);
    return HARMONICS_STATUS_OK;
}

static HarmonicsCallbackResult source_skip(void *userdata, size_t n) {
    struct fingerprinted *f = userdata;
    f->skips++;
    f->source.index = (f->source.index + n) % f->source.records;
    return HARMONICS_STATUS_OK;
}

/* A producer of `records` records with the optional callbacks given (NULL: not set). */
static HarmonicsProducer *new_producer(struct fingerprinted *f, struct source_counters *counters, size_t records,
                                       const char *fingerprint, HarmonicsSkipFn skip) {
    HarmonicsProducerCallbacks cb;
    HarmonicsProducer *p = NULL;
    memset(f, 0, sizeof *f);
    f->source.counters = counters;
    f->source.records = records;
    f->fingerprint = fingerprint;
    memset(&cb, 0xAA, sizeof cb);
    cb.userdata = f;
    cb.next = c_source_next;
    cb.size = c_source_size;
    cb.free = NULL; /* `f` is the test's */
    if (harmonics_producer_from_callbacks(&cb, NULL, &p) != HARMONICS_STATUS_OK) return NULL;
    if ((fingerprint != NULL && harmonics_producer_set_fingerprint_callback(p, source_fingerprint) != HARMONICS_STATUS_OK) ||
        (skip != NULL && harmonics_producer_set_skip_callback(p, skip) != HARMONICS_STATUS_OK)) {
        fprintf(stderr, "setting a callback: %s\n", harmonics_last_error_message());
        harmonics_producer_free(p);
        return NULL;
    }
    return p;
}

/* Opens `name` over `base`; returns the outcome's kind (or 99 on failure). */
static unsigned open_cache(HarmonicsProducer *base, const char *name, size_t records) {
    HarmonicsProducer *cache = NULL;
    HarmonicsCacheOutcome o;
    if (harmonics_disk_cache_new(base, name, NULL, &cache) != HARMONICS_STATUS_OK ||
        harmonics_disk_cache_outcome(cache, &o) != HARMONICS_STATUS_OK) {
        fprintf(stderr, "opening %s: %s\n", name, harmonics_last_error_message());
        harmonics_producer_free(cache);
        return 99;
    }
    check_records(cache, records);
    harmonics_producer_free(cache);
    return (unsigned)o.kind;
}

static void test_a_fingerprint_set_on_the_handle_decides_reuse(void) {
    struct fingerprinted f;
    struct source_counters c = {0, 0, 0};
    HarmonicsProducer *p;

    p = new_producer(&f, &c, 4, "v1", NULL);
    CHECK(p != NULL);
    if (p == NULL) return;
    CHECK(open_cache(p, "fp.cache", 4) == HARMONICS_CACHE_OUTCOME_KIND_CREATED);
    harmonics_producer_free(p);

    /* The same fingerprint: reused without asking the source anything. */
    memset(&c, 0, sizeof c);
    p = new_producer(&f, &c, 4, "v1", NULL);
    CHECK(p != NULL);
    if (p == NULL) return;
    CHECK(open_cache(p, "fp.cache", 4) == HARMONICS_CACHE_OUTCOME_KIND_REUSED);
    CHECK(c.size_calls == 0 && c.next_calls == 0);
    harmonics_producer_free(p);

    /* Another fingerprint, same size: rebuilt (the size rule alone would have reused it). */
    p = new_producer(&f, &c, 4, "v2", NULL);
    CHECK(p != NULL);
    if (p == NULL) return;
    CHECK(open_cache(p, "fp.cache", 4) == HARMONICS_CACHE_OUTCOME_KIND_REBUILT);
    harmonics_producer_free(p);
}

static void test_a_skip_set_on_the_handle_serves_an_append(void) {
    struct fingerprinted f;
    struct source_counters c = {0, 0, 0};
    HarmonicsProducer *p;

    p = new_producer(&f, &c, 3, NULL, NULL);
    CHECK(p != NULL);
    if (p == NULL) return;
    CHECK(open_cache(p, "skip.cache", 3) == HARMONICS_CACHE_OUTCOME_KIND_CREATED);
    harmonics_producer_free(p);

    /* Grown to 5: records 3 and 4 are appended, the first three skipped in one call. */
    memset(&c, 0, sizeof c);
    p = new_producer(&f, &c, 5, NULL, source_skip);
    CHECK(p != NULL);
    if (p == NULL) return;
    CHECK(open_cache(p, "skip.cache", 5) == HARMONICS_CACHE_OUTCOME_KIND_APPENDED);
    CHECK(f.skips == 1);
    CHECK(c.next_calls == 2);
    /* Null removes it: skipping falls back to calls of next. */
    REQUIRE_OK(harmonics_producer_set_skip_callback(p, NULL));
    REQUIRE_OK(harmonics_producer_skip(p, 2));
    CHECK(f.skips == 1 && c.next_calls == 4);
    harmonics_producer_free(p);
}

static void test_the_setters_refuse_other_producers_and_nulls(void) {
    HarmonicsProducer *csv = NULL;
    static const char text[] = "1\n2\n";
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_producer_set_skip_callback(NULL, source_skip));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT,
                     harmonics_producer_set_fingerprint_callback(NULL, source_fingerprint));
    REQUIRE_OK(harmonics_csv_producer_from_memory((const uint8_t *)text, sizeof text - 1, NULL, false, &csv));
    CHECK_FAILS_WITH(HARMONICS_STATUS_INVALID_ARGUMENT, harmonics_producer_set_skip_callback(csv, source_skip));
    CHECK(message_contains("harmonics_producer_from_callbacks"));
    CHECK_FAILS_WITH(HARMONICS_STATUS_INVALID_ARGUMENT,
                     harmonics_producer_set_fingerprint_callback(csv, source_fingerprint));
    harmonics_producer_free(csv);
}

int main(void) {
    static const c_test_fn tests[] = {test_a_four_field_struct_over_uninitialised_memory_builds_and_reuses_a_cache,
                                      test_a_fingerprint_set_on_the_handle_decides_reuse,
                                      test_a_skip_set_on_the_handle_serves_an_append,
                                      test_the_setters_refuse_other_producers_and_nulls, NULL};
    return c_run_tests("c_api_compat_test", NULL, tests);
}
