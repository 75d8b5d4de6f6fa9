/* Null and invalid arguments through the C API, from a C99 program (built with -std=c99
 * -Wall -Wextra -Werror -pedantic): every entry point refuses a null it cannot use with
 * HARMONICS_STATUS_NULL_ARGUMENT and a message, releases a refused callback struct's
 * userdata once, and refuses unusable names. Helpers: c_support.h. */
#include <harmonics_dataset.h>

#include <stdlib.h>
#include <string.h>

#include "c_support.h"

/* ---- null and invalid arguments ------------------------------------------------------- */

static void test_null_and_invalid_arguments(void) {
    HarmonicsProducer *p = NULL, *csv = NULL;
    HarmonicsTensor *t = NULL;
    HarmonicsTensorView v;
    HarmonicsCacheOutcome o;
    HarmonicsProducerCallbacks cb = {0};
    struct source_counters c;
    size_t n = 0;
    static const char text[] = "1\n2\n";

    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_producer_size(NULL, &n));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_producer_next_view(NULL, &v));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_producer_next(NULL, &t));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_producer_skip(NULL, 1));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_tensor_view(NULL, &v));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT,
                     harmonics_tensor_new(HARMONICS_DTYPE_FLOAT32, NULL, 0, NULL, 0, NULL));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_csv_producer_new(NULL, false, &p));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT,
                     harmonics_csv_producer_from_memory(NULL, 3, NULL, false, &p));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT,
                     harmonics_producer_from_callbacks(NULL, NULL, &p));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_wire_write(NULL, buffer_write, NULL));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_wire_read(NULL, NULL, &t));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_disk_cache_new(NULL, "x", NULL, &p));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_disk_cache_outcome(NULL, &o));
    CHECK(message_contains("null"));
    CHECK(p == NULL && t == NULL);
    harmonics_producer_free(NULL);

    /* A callback struct missing `next` is refused, and its userdata is still released once. */
    memset(&c, 0, sizeof c);
    {
        struct c_source *s = calloc(1, sizeof *s);
        CHECK(s != NULL);
        if (s == NULL) return;
        s->counters = &c;
        cb.userdata = s;
        cb.next = NULL;
        cb.size = c_source_size;
        cb.free = c_source_free;
        CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT,
                         harmonics_producer_from_callbacks(&cb, NULL, &p));
        CHECK(p == NULL);
        CHECK(c.frees == 1);
    }

    /* Arguments that are present but unusable. */
    REQUIRE_OK(harmonics_csv_producer_from_memory((const uint8_t *)text, strlen(text), NULL, false,
                                                  &csv));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_producer_next_view(csv, NULL));
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_disk_cache_new(csv, NULL, NULL, &p));
    CHECK_FAILS_WITH(HARMONICS_STATUS_INVALID_NAME, harmonics_disk_cache_new(csv, "../escape", NULL, &p));
    CHECK(message_contains("../escape"));
    CHECK_FAILS_WITH(HARMONICS_STATUS_INVALID_NAME, harmonics_disk_cache_new(csv, "", NULL, &p));
    CHECK(p == NULL);
    /* A CSV producer is not a disk cache: asking for its outcome is an error, not a crash. */
    {
        HarmonicsStatus st = harmonics_disk_cache_outcome(csv, &o);
        CHECK(st != HARMONICS_STATUS_OK);
        CHECK(harmonics_last_error_message()[0] != '\0');
    }
    harmonics_producer_free(csv);
}

/* ---- driver --------------------------------------------------------------------------- */

int main(void) {
    static const c_test_fn tests[] = {test_null_and_invalid_arguments, NULL};
    return c_run_tests("c_api_arguments_test", NULL, tests);
}
