/* The checks of the C tests: CHECK, REQUIRE_OK, CHECK_FAILS_WITH and message_contains.
 * Every check that fails prints where and why and counts in `failures`; main returns 1
 * when any did. Included once, by one test program. */
#ifndef HARMONICS_C_CHECKS_H
#define HARMONICS_C_CHECKS_H

#include <harmonics_dataset.h>

#include <stdio.h>
#include <string.h>

static int failures = 0;

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

static int message_contains(const char *needle) {
    const char *m = harmonics_last_error_message();
    return m != NULL && strstr(m, needle) != NULL;
}

#endif
