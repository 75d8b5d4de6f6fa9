/* What a callback returns, from a C99 program: a plain integer (HarmonicsCallbackResult).
 * A callback returning a value that is no status code (0, 12345) fails the call with
 * HARMONICS_STATUS_FOREIGN and a message naming the value, for every kind of callback:
 * producer next/size/skip/fingerprint, token, copy, wire write and read. (Before, the
 * library read the value as a Rust enum: undefined behaviour.) Built and run also under
 * ASan+UBSan and valgrind (ctest's _asan and _valgrind twins). Helpers: c_support.h. */
#include <harmonics_dataset.h>

#include <stdio.h>
#include <stdlib.h>

#include "c_support.h"

/* The value every callback below returns. */
static HarmonicsCallbackResult odd_value;

/* Whether the last failure names `odd_value` as an unknown status. */
static int names_odd_value(void) {
    char needle[64];
    snprintf(needle, sizeof needle, "unknown status %u", (unsigned)odd_value);
    return message_contains(needle);
}

static HarmonicsCallbackResult odd_next(void *userdata, HarmonicsTensorView *out) {
    (void)userdata;
    (void)out;
    return odd_value;
}

static HarmonicsCallbackResult odd_size(void *userdata, size_t *out) {
    (void)userdata;
    *out = 3;
    return odd_value;
}

static HarmonicsCallbackResult odd_skip(void *userdata, size_t n) {
    (void)userdata;
    (void)n;
    return odd_value;
}

static HarmonicsCallbackResult odd_text(void *userdata, const char **ptr, size_t *len) {
    (void)userdata;
    *ptr = "x";
    *len = 1;
    return odd_value;
}

static HarmonicsCallbackResult odd_copy(void *userdata, const HarmonicsTensorView *view) {
    (void)userdata;
    (void)view;
    return odd_value;
}

static HarmonicsCallbackResult odd_write(void *userdata, const uint8_t *buf, size_t len) {
    (void)userdata;
    (void)buf;
    (void)len;
    return odd_value;
}

static HarmonicsCallbackResult odd_read(void *userdata, uint8_t *buf, size_t len, size_t *read) {
    (void)userdata;
    (void)buf;
    (void)len;
    *read = 0;
    return odd_value;
}

/* A producer whose every callback returns `odd_value`. */
static HarmonicsProducer *odd_producer(void) {
    HarmonicsProducerCallbacks cb = {0};
    HarmonicsProducer *p = NULL;
    cb.next = odd_next;
    cb.size = odd_size;
    if (harmonics_producer_from_callbacks(&cb, "odd source", &p) != HARMONICS_STATUS_OK) return NULL;
    if (harmonics_producer_set_skip_callback(p, odd_skip) != HARMONICS_STATUS_OK ||
        harmonics_producer_set_fingerprint_callback(p, odd_text) != HARMONICS_STATUS_OK) {
        harmonics_producer_free(p);
        return NULL;
    }
    return p;
}

static void check_every_callback_with(HarmonicsCallbackResult value) {
    HarmonicsProducer *p, *good, *cache = NULL;
    HarmonicsTensor *t = NULL;
    HarmonicsTensorView view;
    HarmonicsTokenCallback token = {0};
    struct source_counters counters = {0, 0, 0};
    char buf[64];
    size_t n = 0;
    static const float values[2] = {1.0f, 2.0f};
    static const size_t shape[1] = {2};

    odd_value = value;
    p = odd_producer();
    CHECK(p != NULL);
    if (p == NULL) return;
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_producer_next(p, &t));
    CHECK(names_odd_value() && message_contains("next"));
    CHECK(t == NULL);
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_producer_next_view(p, &view));
    CHECK(names_odd_value());
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_producer_size(p, &n));
    CHECK(names_odd_value() && message_contains("size"));
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_producer_skip(p, 2));
    CHECK(names_odd_value() && message_contains("skip"));
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_producer_fingerprint(p, buf, sizeof buf, &n));
    CHECK(names_odd_value() && message_contains("fingerprint"));
    /* A cache over it fails on the first callback it calls (the fingerprint). */
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_disk_cache_new(p, "odd.cache", NULL, &cache));
    CHECK(names_odd_value());
    CHECK(cache == NULL && !file_exists("odd.cache"));
    harmonics_producer_free(p);

    /* The token callback, over a good producer. */
    good = new_c_source(&counters, 3, 0);
    CHECK(good != NULL);
    if (good == NULL) return;
    token.token = odd_text;
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_disk_cache_new(good, "tok.cache", &token, &cache));
    CHECK(names_odd_value() && message_contains("token"));
    CHECK(cache == NULL);

    /* The copy callback of a copying read. */
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_producer_next_copy(good, odd_copy, NULL));
    CHECK(names_odd_value() && message_contains("copy"));
    harmonics_producer_free(good);
    CHECK(counters.frees == 1);

    /* The wire codec's write and read callbacks. */
    view.dtype = HARMONICS_DTYPE_FLOAT32;
    view.ndims = 1;
    view.shape = shape;
    view.data = (const uint8_t *)values;
    view.nbytes = sizeof values;
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_wire_write(&view, odd_write, NULL));
    CHECK(names_odd_value() && message_contains("write"));
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_wire_read(odd_read, NULL, &t));
    CHECK(names_odd_value() && message_contains("read"));
    CHECK(t == NULL);
}

static void test_zero_is_an_unknown_status(void) { check_every_callback_with(0); }

static void test_12345_is_an_unknown_status(void) { check_every_callback_with(12345); }

/* One past the last code and all ones are no status codes either. */
static void test_other_values_are_unknown_statuses(void) {
    check_every_callback_with(HARMONICS_STATUS_POISONED + 1);
    check_every_callback_with(0xFFFFFFFFu);
}

/* A known failure code from a callback is a failure with the callback's message. */
static HarmonicsCallbackResult io_size(void *userdata, size_t *out) {
    (void)userdata;
    *out = 0;
    harmonics_callback_error("the sensor bus is down");
    return HARMONICS_STATUS_IO;
}

static void test_a_known_failure_code_keeps_the_callbacks_message(void) {
    HarmonicsProducerCallbacks cb = {0};
    HarmonicsProducer *p = NULL;
    size_t n = 0;
    cb.next = odd_next;
    cb.size = io_size;
    REQUIRE_OK(harmonics_producer_from_callbacks(&cb, NULL, &p));
    CHECK_FAILS_WITH(HARMONICS_STATUS_FOREIGN, harmonics_producer_size(p, &n));
    CHECK(message_contains("the sensor bus is down"));
    CHECK(!message_contains("unknown status"));
    harmonics_producer_free(p);
}

int main(void) {
    static const c_test_fn tests[] = {test_zero_is_an_unknown_status, test_12345_is_an_unknown_status,
                                      test_other_values_are_unknown_statuses,
                                      test_a_known_failure_code_keeps_the_callbacks_message, NULL};
    return c_run_tests("c_api_callback_status_test", NULL, tests);
}
