/* The one support module of the C tests (c_support.c holds the definitions):
 *   - the checks: CHECK, REQUIRE_OK, CHECK_FAILS_WITH and message_contains; every check
 *     that fails prints where and why and counts in `failures`;
 *   - the driver (c_run_tests): the tests run in a scratch directory with
 *     HARMONICS_CACHE_DIR inside it, removed at the end;
 *   - a producer written in C (new_c_source: record i is float32[3] {i, i + 0.5, -i},
 *     counting its calls) and a byte buffer behind the wire codec's callbacks. */
#ifndef HARMONICS_C_SUPPORT_H
#define HARMONICS_C_SUPPORT_H

#include <harmonics_dataset.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- checks ---------------------------------------------------------------------------- */

extern int failures;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

/* A call that must succeed; on failure report the status and message and leave the
 * current test function (what it would check next depends on this call). */
#define REQUIRE_OK(call)                                                                 \
    do {                                                                                 \
        HarmonicsStatus require_status_ = (call);                                        \
        if (require_status_ != HARMONICS_STATUS_OK) {                                    \
            fprintf(stderr, "%s:%d: %s returned %u (%s): %s\n", __FILE__, __LINE__,      \
                    #call, (unsigned)require_status_,                                    \
                    harmonics_status_name(require_status_),                              \
                    harmonics_last_error_message());                                     \
            failures++;                                                                  \
            return;                                                                      \
        }                                                                                \
    } while (0)

/* A call that must fail with `want` and leave a non-empty message. */
#define CHECK_FAILS_WITH(want, call)                                                     \
    do {                                                                                 \
        HarmonicsStatus fails_status_ = (call);                                          \
        const char *fails_message_ = harmonics_last_error_message();                     \
        if (fails_status_ != (want)) {                                                   \
            fprintf(stderr, "%s:%d: %s returned %u (%s), expected %s: %s\n", __FILE__,   \
                    __LINE__, #call, (unsigned)fails_status_,                            \
                    harmonics_status_name(fails_status_), harmonics_status_name(want),   \
                    fails_message_);                                                     \
            failures++;                                                                  \
        } else if (fails_message_ == NULL || fails_message_[0] == '\0') {                \
            fprintf(stderr, "%s:%d: %s failed without a message\n", __FILE__, __LINE__, \
                    #call);                                                              \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

/* Whether the thread's last error message contains `needle`. */
int message_contains(const char *needle);

/* Whether `bytes` (`nbytes` long) are the `n` floats `want` (n <= 16). */
int floats_equal(const uint8_t *bytes, size_t nbytes, const float *want, size_t n);

/* ---- the scratch directory --------------------------------------------------------------- */

/* The program's scratch directory (absolute), and `cache_dir` = scratch_dir/cache, which
 * HARMONICS_CACHE_DIR points at. */
extern char scratch_dir[2048];
extern char cache_dir[4096];

typedef void (*c_test_fn)(void);

/* A C test program's main: makes scratch_dir = a fresh mkdtemp directory
 * `<parent>/<program>-XXXXXX` (parent NULL: $TMPDIR, else /tmp), sets HARMONICS_CACHE_DIR,
 * runs `tests` (NULL-terminated) in order, removes the directory and reports. Returns
 * main's exit status: 0, 1 when any check failed, 2 when the directory could not be made. */
int c_run_tests(const char *program, const char *parent, const c_test_fn *tests);

/* Whether cache_dir/name exists. */
int file_exists(const char *name);

/* ---- a producer written in C --------------------------------------------------------------- */

struct source_counters {
    size_t next_calls;
    size_t size_calls;
    size_t frees;
};

/* Record i is float32[3] {i, i + 0.5, -i}. */
struct c_source {
    struct source_counters *counters; /* outlives the producer: checked after free */
    size_t records;
    size_t index;
    size_t fail_at; /* next() fails on this call number (1-based); 0 = never */
    size_t shape[1];
    float current[3];
};

void record_values(size_t i, float out[3]);
HarmonicsStatus c_source_next(void *userdata, HarmonicsTensorView *out);
HarmonicsStatus c_source_size(void *userdata, size_t *out);
void c_source_free(void *userdata);

/* A producer over a new c_source of `records` records whose next() fails ("sensor 7 went
 * offline", HARMONICS_STATUS_FOREIGN) on call `fail_at` (0: never); NULL on failure. */
HarmonicsProducer *new_c_source(struct source_counters *counters, size_t records, size_t fail_at);

/* ---- a byte buffer behind the wire codec's callbacks ---------------------------------------- */

struct byte_buffer {
    uint8_t bytes[256];
    size_t len;   /* bytes held */
    size_t pos;   /* read cursor */
    size_t chunk; /* at most this many bytes per read call (exercises short reads) */
};

HarmonicsStatus buffer_write(void *userdata, const uint8_t *buf, size_t len);
HarmonicsStatus buffer_read(void *userdata, uint8_t *buf, size_t len, size_t *read);

#endif
