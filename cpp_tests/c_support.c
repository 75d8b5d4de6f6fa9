/* The definitions behind c_support.h, linked into every C test program. */
#define _XOPEN_SOURCE 700 /* mkdtemp, realpath, setenv, nftw */

#include "c_support.h"

#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int failures = 0;

int message_contains(const char *needle) {
    const char *m = harmonics_last_error_message();
    return m != NULL && strstr(m, needle) != NULL;
}

int floats_equal(const uint8_t *bytes, size_t nbytes, const float *want, size_t n) {
    float got[16];
    if (nbytes != n * sizeof(float) || n > 16) return 0;
    memcpy(got, bytes, nbytes);
    return memcmp(got, want, nbytes) == 0;
}

/* ---- the scratch directory --------------------------------------------------------------- */

char scratch_dir[2048];
char cache_dir[4096];

static int scratch_begin(const char *prefix, const char *parent) {
    char tmpl[2048];
    char absolute[PATH_MAX];
    const char *tmp = getenv("TMPDIR");

    if (parent == NULL) parent = tmp != NULL && tmp[0] ? tmp : "/tmp";
    snprintf(tmpl, sizeof tmpl, "%s/%s-XXXXXX", parent, prefix);
    if (mkdtemp(tmpl) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    if (realpath(tmpl, absolute) == NULL || strlen(absolute) >= sizeof scratch_dir) {
        perror("realpath");
        return 2;
    }
    memcpy(scratch_dir, absolute, strlen(absolute) + 1);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", scratch_dir);
    if (setenv("HARMONICS_CACHE_DIR", cache_dir, 1) != 0) {
        perror("setenv");
        return 2;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int scratch_end(const char *program) {
    nftw(scratch_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (failures != 0) {
        fprintf(stderr, "%s: %d check(s) failed\n", program, failures);
        return 1;
    }
    printf("%s: all checks passed\n", program);
    return 0;
}

int c_run_tests(const char *program, const char *parent, const c_test_fn *tests) {
    int status = scratch_begin(program, parent);
    if (status != 0) return status;
    for (; *tests != NULL; tests++) (*tests)();
    return scratch_end(program);
}

int file_exists(const char *name) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", cache_dir, name);
    return stat(path, &st) == 0;
}

/* ---- a producer written in C --------------------------------------------------------------- */

void record_values(size_t i, float out[3]) {
    out[0] = (float)i;
    out[1] = (float)i + 0.5f;
    out[2] = -(float)i;
}

HarmonicsStatus c_source_next(void *userdata, HarmonicsTensorView *out) {
    struct c_source *s = userdata;
    s->counters->next_calls++;
    if (s->fail_at != 0 && s->counters->next_calls == s->fail_at) {
        harmonics_callback_error("sensor 7 went offline");
        return HARMONICS_STATUS_FOREIGN;
    }
    record_values(s->index, s->current);
    s->index = (s->index + 1) % s->records;
    s->shape[0] = 3;
    out->dtype = HARMONICS_DTYPE_FLOAT32;
    out->ndims = 1;
    out->shape = s->shape;
    out->data = (const uint8_t *)s->current;
    out->nbytes = sizeof s->current;
    return HARMONICS_STATUS_OK;
}

HarmonicsStatus c_source_size(void *userdata, size_t *out) {
    struct c_source *s = userdata;
    s->counters->size_calls++;
    *out = s->records;
    return HARMONICS_STATUS_OK;
}

void c_source_free(void *userdata) {
    struct c_source *s = userdata;
    s->counters->frees++;
    free(s);
}

HarmonicsProducer *new_c_source(struct source_counters *counters, size_t records, size_t fail_at) {
    HarmonicsProducerCallbacks cb = {0};
    HarmonicsProducer *p = NULL;
    struct c_source *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->counters = counters;
    s->records = records;
    s->fail_at = fail_at;
    cb.userdata = s;
    cb.next = c_source_next;
    cb.size = c_source_size;
    cb.free = c_source_free;
    if (harmonics_producer_from_callbacks(&cb, "c_api_test source", &p) != HARMONICS_STATUS_OK) {
        fprintf(stderr, "harmonics_producer_from_callbacks: %s\n", harmonics_last_error_message());
        return NULL;
    }
    return p;
}

/* ---- a byte buffer behind the wire codec's callbacks ---------------------------------------- */

HarmonicsStatus buffer_write(void *userdata, const uint8_t *buf, size_t len) {
    struct byte_buffer *b = userdata;
    if (b->len + len > sizeof b->bytes) {
        harmonics_callback_error("test buffer full");
        return HARMONICS_STATUS_IO;
    }
    memcpy(b->bytes + b->len, buf, len);
    b->len += len;
    return HARMONICS_STATUS_OK;
}

HarmonicsStatus buffer_read(void *userdata, uint8_t *buf, size_t len, size_t *read) {
    struct byte_buffer *b = userdata;
    size_t n = b->len - b->pos;
    if (n > len) n = len;
    if (n > b->chunk) n = b->chunk;
    memcpy(buf, b->bytes + b->pos, n);
    b->pos += n;
    *read = n;
    return HARMONICS_STATUS_OK;
}
