/* CSV from memory through the C API, from a C99 program (built with -std=c99 -Wall -Wextra
 * -Werror -pedantic): rows parsed and cached, skip cycling, and a non-numeric cell
 * reported with the source, row and column. Helpers: c_support.h. */
#include <harmonics_dataset.h>

#include <stdio.h>
#include <string.h>

#include "c_support.h"

/* ---- CSV from memory ------------------------------------------------------------------ */

static void test_csv_from_memory(void) {
    static const char text[] = "1, 2,3\n\"4\" ,5,, 6\n";
    static const char bad[] = "1,2\n3,oops\n";
    const float row0[3] = {1, 2, 3}, row1[3] = {4, 5, 6};
    HarmonicsProducer *p = NULL, *cache = NULL;
    HarmonicsTensorView v;
    HarmonicsCacheOutcome o;
    size_t n = 0;

    REQUIRE_OK(harmonics_csv_producer_from_memory((const uint8_t *)text, strlen(text), "mem.csv",
                                                  false, &p));
    REQUIRE_OK(harmonics_producer_size(p, &n));
    CHECK(n == 2);
    REQUIRE_OK(harmonics_disk_cache_new(p, "csv.cache", NULL, &cache));
    harmonics_producer_free(p);
    REQUIRE_OK(harmonics_disk_cache_outcome(cache, &o));
    CHECK(o.kind == HARMONICS_CACHE_OUTCOME_KIND_CREATED);
    REQUIRE_OK(harmonics_producer_next_view(cache, &v));
    CHECK(v.ndims == 1 && v.shape[0] == 3 && floats_equal(v.data, v.nbytes, row0, 3));
    REQUIRE_OK(harmonics_producer_next_view(cache, &v));
    CHECK(v.ndims == 1 && v.shape[0] == 3 && floats_equal(v.data, v.nbytes, row1, 3));
    REQUIRE_OK(harmonics_producer_skip(cache, 1)); /* cycles past record 0 */
    REQUIRE_OK(harmonics_producer_next_view(cache, &v));
    CHECK(floats_equal(v.data, v.nbytes, row1, 3));
    harmonics_producer_free(cache);

    /* A non-numeric cell: an error naming the source, row and column. */
    p = NULL;
    {
        HarmonicsStatus st =
            harmonics_csv_producer_from_memory((const uint8_t *)bad, strlen(bad), "bad.csv", false, &p);
        if (st == HARMONICS_STATUS_OK) { /* the parser may defer the error to the first read */
            HarmonicsTensorView w;
            CHECK(harmonics_producer_next_view(p, &w) == HARMONICS_STATUS_OK);
            st = harmonics_producer_next_view(p, &w);
            harmonics_producer_free(p);
        }
        CHECK(st == HARMONICS_STATUS_CSV);
        CHECK(message_contains("bad.csv"));
        CHECK(message_contains("oops"));
        printf("bad CSV cell reported as: %s\n", harmonics_last_error_message());
    }
}

/* ---- driver --------------------------------------------------------------------------- */

int main(void) {
    static const c_test_fn tests[] = {test_csv_from_memory, NULL};
    return c_run_tests("c_api_csv_test", NULL, tests);
}
