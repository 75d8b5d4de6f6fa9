/* Tensors and the wire codec through the C API, from a C99 program (built with -std=c99
 * -Wall -Wextra -Werror -pedantic): a tensor made, viewed and freed; records written and
 * read back byte for byte through callbacks (short reads, a cut record, a header claiming
 * 4 GiB, a failing write callback); the status names. Helpers: c_support.h. */
#include <harmonics_dataset.h>

#include <string.h>

#include "c_support.h"

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

/* ---- status names --------------------------------------------------------------------- */

static void test_status_names(void) {
    uint32_t code, other;
    CHECK(strcmp(harmonics_status_name(HARMONICS_STATUS_OK), "ok") == 0);
    CHECK(strcmp(harmonics_status_name(HARMONICS_STATUS_NULL_ARGUMENT), "null argument") == 0);
    for (code = HARMONICS_STATUS_OK; code <= HARMONICS_STATUS_STOPPED; code++) {
        const char *name = harmonics_status_name(code);
        CHECK(name != NULL && name[0] != '\0');
        CHECK(strcmp(name, "unknown status code") != 0);
        for (other = HARMONICS_STATUS_OK; other < code; other++) {
            CHECK(strcmp(name, harmonics_status_name(other)) != 0); /* all distinct */
        }
    }
    CHECK(strcmp(harmonics_status_name(0), "unknown status code") == 0);
    CHECK(strcmp(harmonics_status_name(1), "unknown status code") == 0);
    CHECK(strcmp(harmonics_status_name(HARMONICS_STATUS_STOPPED + 1), "unknown status code") == 0);
    CHECK(strcmp(harmonics_status_name(7100), "unknown status code") == 0); /* the old base */
    CHECK(HARMONICS_STATUS_OK == 0x48440000u);
    CHECK(HARMONICS_DATASET_ABI_VERSION >= 2);
}

/* ---- driver --------------------------------------------------------------------------- */

int main(void) {
    static const c_test_fn tests[] = {
        test_status_names,
        test_tensor_new_view_free,
        test_wire_write_read,
        NULL,
    };
    return c_run_tests("c_api_tensor_test", NULL, tests);
}
