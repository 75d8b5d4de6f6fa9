/* The C API end to end, from a C99 program (built with -std=c99 -Wall -Wextra -Werror
 * -pedantic): tensors, the wire codec through callbacks, a producer written in C cached on
 * disk (a second open reads nothing from it; growth appends; a token change rebuilds), CSV
 * from memory, null and invalid arguments, the lock timeout, status names.
 *
 * Every check that fails prints where and why, and the exit status is then 1. The caches live in a fresh mkdtemp directory
 * (HARMONICS_CACHE_DIR points into it), removed at the end. */
#define _XOPEN_SOURCE 700 /* mkdtemp, setenv, nftw */
#define _DEFAULT_SOURCE    /* flock */

#include <harmonics_dataset.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "c_checks.h"

static int floats_equal(const uint8_t *bytes, size_t nbytes, const float *want, size_t n) {
    float got[16];
    if (nbytes != n * sizeof(float) || n > 16) return 0;
    memcpy(got, bytes, nbytes);
    return memcmp(got, want, nbytes) == 0;
}

static char cache_dir[4096];

static int file_exists(const char *name) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", cache_dir, name);
    return stat(path, &st) == 0;
}

/* ---- tensors ------------------------------------------------------------------------- */

static void test_tensor_new_view_free(void) {
    const float values[6] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.5f};
    const size_t shape[2] = {2, 3};
    HarmonicsTensor *t = NULL;
    HarmonicsTensorView v;

    REQUIRE_OK(harmonics_tensor_new(HARMONICS_DTYPE_FLOAT32, shape, 2, (const uint8_t *)values,
                                    sizeof values, &t));
    CHECK(t != NULL);
    REQUIRE_OK(harmonics_tensor_view(t, &v));
    CHECK(v.dtype == HARMONICS_DTYPE_FLOAT32);
    CHECK(v.ndims == 2 && v.shape[0] == 2 && v.shape[1] == 3);
    CHECK(floats_equal(v.data, v.nbytes, values, 6));
    harmonics_tensor_free(t);

    /* An empty (0-d, no bytes) tensor: null pointers are allowed for zero lengths. */
    t = NULL;
    REQUIRE_OK(harmonics_tensor_new(HARMONICS_DTYPE_UINT8, NULL, 0, NULL, 0, &t));
    REQUIRE_OK(harmonics_tensor_view(t, &v));
    CHECK(v.dtype == HARMONICS_DTYPE_UINT8 && v.ndims == 0 && v.nbytes == 0);
    harmonics_tensor_free(t);

    t = NULL;
    CHECK_FAILS_WITH(HARMONICS_STATUS_INVALID_ARGUMENT,
                     harmonics_tensor_new(9, shape, 2, (const uint8_t *)values, sizeof values, &t));
    CHECK(t == NULL);
    harmonics_tensor_free(NULL); /* a no-op */
}

/* ---- the wire codec through callbacks ------------------------------------------------- */

struct byte_buffer {
    uint8_t bytes[256];
    size_t len;   /* bytes held */
    size_t pos;   /* read cursor */
    size_t chunk; /* at most this many bytes per read call (exercises short reads) */
};

static HarmonicsStatus buffer_write(void *userdata, const uint8_t *buf, size_t len) {
    struct byte_buffer *b = userdata;
    if (b->len + len > sizeof b->bytes) {
        harmonics_callback_error("test buffer full");
        return HARMONICS_STATUS_IO;
    }
    memcpy(b->bytes + b->len, buf, len);
    b->len += len;
    return HARMONICS_STATUS_OK;
}

static HarmonicsStatus buffer_read(void *userdata, uint8_t *buf, size_t len, size_t *read) {
    struct byte_buffer *b = userdata;
    size_t n = b->len - b->pos;
    if (n > len) n = len;
    if (n > b->chunk) n = b->chunk;
    memcpy(buf, b->bytes + b->pos, n);
    b->pos += n;
    *read = n;
    return HARMONICS_STATUS_OK;
}

static HarmonicsStatus refusing_write(void *userdata, const uint8_t *buf, size_t len) {
    (void)userdata;
    (void)buf;
    (void)len;
    harmonics_callback_error("disk quota exceeded");
    return HARMONICS_STATUS_IO;
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void test_wire_write_read(void) {
    const float values[3] = {0.25f, -1.0f, 3.0f};
    const size_t shape[1] = {3};
    HarmonicsTensorView in = {HARMONICS_DTYPE_FLOAT32, 1, shape, (const uint8_t *)values,
                              sizeof values};
    struct byte_buffer b;
    uint8_t expected[1 + 4 + 4 + 4 + 12];
    HarmonicsTensor *t = NULL;
    HarmonicsTensorView out;

    memset(&b, 0, sizeof b);
    b.chunk = 5;
    REQUIRE_OK(harmonics_wire_write(&in, buffer_write, &b));
    REQUIRE_OK(harmonics_wire_write(&in, buffer_write, &b)); /* two records back to back */

    /* Byte for byte the original write_tensor: u8 dtype | u32 ndims | u32 dims | u32 nbytes | data */
    expected[0] = 0;
    put_u32(expected + 1, 1);
    put_u32(expected + 5, 3);
    put_u32(expected + 9, 12);
    memcpy(expected + 13, values, 12); /* little-endian host (x86-64, aarch64) */
    CHECK(b.len == 2 * sizeof expected);
    CHECK(memcmp(b.bytes, expected, sizeof expected) == 0);
    CHECK(memcmp(b.bytes + sizeof expected, expected, sizeof expected) == 0);

    /* Read both back through 5-byte reads; then a clean end of stream gives null + OK. */
    REQUIRE_OK(harmonics_wire_read(buffer_read, &b, &t));
    CHECK(t != NULL);
    REQUIRE_OK(harmonics_tensor_view(t, &out));
    CHECK(out.dtype == HARMONICS_DTYPE_FLOAT32 && out.ndims == 1 && out.shape[0] == 3);
    CHECK(floats_equal(out.data, out.nbytes, values, 3));
    harmonics_tensor_free(t);
    t = NULL;
    REQUIRE_OK(harmonics_wire_read(buffer_read, &b, &t));
    CHECK(t != NULL);
    harmonics_tensor_free(t);
    t = (HarmonicsTensor *)&b; /* must be overwritten with null */
    REQUIRE_OK(harmonics_wire_read(buffer_read, &b, &t));
    CHECK(t == NULL);

    /* A record cut short in its data is an error, not a short tensor. */
    b.len = sizeof expected - 2;
    b.pos = 0;
    t = NULL;
    CHECK_FAILS_WITH(HARMONICS_STATUS_WIRE, harmonics_wire_read(buffer_read, &b, &t));
    CHECK(t == NULL);

    /* A header claiming 4 GiB of data (with 4 bytes behind it) fails without allocating it;
     * under valgrind an allocation that size would show up as a fatal error. */
    memcpy(b.bytes, expected, 13);
    put_u32(b.bytes + 9, 0xFFFFFFFFu);
    b.len = 17;
    b.pos = 0;
    CHECK_FAILS_WITH(HARMONICS_STATUS_WIRE, harmonics_wire_read(buffer_read, &b, &t));
    CHECK(t == NULL);

    /* A failing write callback stops the encoder with the callback's message. (The status
     * is the codec's, HARMONICS_STATUS_WIRE today, not the callback's; the message is kept.) */
    CHECK(harmonics_wire_write(&in, refusing_write, NULL) != HARMONICS_STATUS_OK);
    CHECK(message_contains("disk quota exceeded"));
}

/* ---- a producer written in C, cached on disk ------------------------------------------ */

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

static void record_values(size_t i, float out[3]) {
    out[0] = (float)i;
    out[1] = (float)i + 0.5f;
    out[2] = -(float)i;
}

static HarmonicsStatus c_source_next(void *userdata, HarmonicsTensorView *out) {
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

static HarmonicsStatus c_source_size(void *userdata, size_t *out) {
    struct c_source *s = userdata;
    s->counters->size_calls++;
    *out = s->records;
    return HARMONICS_STATUS_OK;
}

static void c_source_free(void *userdata) {
    struct c_source *s = userdata;
    s->counters->frees++;
    free(s);
}

static HarmonicsProducer *new_c_source(struct source_counters *counters, size_t records,
                                       size_t fail_at) {
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

/* ---- status names --------------------------------------------------------------------- */

static void test_status_names(void) {
    uint32_t code, other;
    CHECK(strcmp(harmonics_status_name(HARMONICS_STATUS_OK), "ok") == 0);
    CHECK(strcmp(harmonics_status_name(HARMONICS_STATUS_NULL_ARGUMENT), "null argument") == 0);
    for (code = HARMONICS_STATUS_OK; code <= HARMONICS_STATUS_LOCK_TIMEOUT; code++) {
        const char *name = harmonics_status_name(code);
        CHECK(name != NULL && name[0] != '\0');
        CHECK(strcmp(name, "unknown status code") != 0);
        for (other = HARMONICS_STATUS_OK; other < code; other++) {
            CHECK(strcmp(name, harmonics_status_name(other)) != 0); /* all distinct */
        }
    }
    CHECK(strcmp(harmonics_status_name(0), "unknown status code") == 0);
    CHECK(strcmp(harmonics_status_name(1), "unknown status code") == 0);
    CHECK(strcmp(harmonics_status_name(HARMONICS_STATUS_LOCK_TIMEOUT + 1), "unknown status code") ==
          0);
    CHECK(HARMONICS_DATASET_ABI_VERSION >= 1);
}

/* ---- driver --------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void) {
    char scratch[2048];
    const char *tmp = getenv("TMPDIR");

    snprintf(scratch, sizeof scratch, "%s/hd-c-api-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(scratch) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", scratch);
    if (setenv("HARMONICS_CACHE_DIR", cache_dir, 1) != 0) {
        perror("setenv");
        return 2;
    }

    test_status_names();
    test_tensor_new_view_free();
    test_wire_write_read();
    test_c_producer_cached_on_disk();
    test_failing_c_producer_leaves_no_cache();
    test_csv_from_memory();
    test_null_and_invalid_arguments();
    test_lock_timeout();

    nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (failures != 0) {
        fprintf(stderr, "c_api_test: %d check(s) failed\n", failures);
        return 1;
    }
    printf("c_api_test: all checks passed\n");
    return 0;
}
