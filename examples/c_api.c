/* The C API: cache a CSV file, read it back through the zero-copy view, handle
 * errors, and route the library's diagnostics to a callback.
 *
 *   c_api [file.csv]      (default: writes ./example.csv first)
 *
 * Every call returns a HarmonicsStatus; on failure harmonics_last_error_message()
 * says what happened (naming the file, row, URL, ...). Handles from *_new are
 * released with harmonics_producer_free. */
#include <harmonics_dataset.h>

#include <stdio.h>
#include <string.h>

static void on_log(HarmonicsLogLevel level, const char *message, void *userdata) {
    FILE *out = (FILE *)userdata;
    fprintf(out, "[harmonics %s] %s\n", level == HARMONICS_LOG_LEVEL_WARN ? "warning" : "info", message);
}

static int fail(const char *what, HarmonicsStatus s) {
    fprintf(stderr, "c_api: %s: %s (%s)\n", what, harmonics_last_error_message(), harmonics_status_name(s));
    return 1;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "example.csv";
    HarmonicsProducer *csv = NULL, *cached = NULL;
    HarmonicsCacheOutcome outcome;
    HarmonicsStatus s;
    size_t n = 0, i;
    double sum = 0;
    int rc = 1;

    if (argc <= 1) {
        FILE *f = fopen(path, "w");
        if (!f) return 1;
        fputs("1,2\n3,4\n5,6.5\n", f);
        fclose(f);
    }
    printf("library %s, header %d.%d.%d\n", harmonics_version(), HARMONICS_DATASET_VERSION_MAJOR,
           HARMONICS_DATASET_VERSION_MINOR, HARMONICS_DATASET_VERSION_PATCH);
    harmonics_set_log_callback(on_log, stderr);

    s = harmonics_csv_producer_new(path, true, &csv);
    if (s != HARMONICS_STATUS_OK) return fail(path, s);
    s = harmonics_disk_cache_new(csv, "example-c.cache", NULL, &cached);
    harmonics_producer_free(csv); /* the cache keeps what it needs */
    if (s != HARMONICS_STATUS_OK) return fail("harmonics_disk_cache_new", s);

    if ((s = harmonics_producer_size(cached, &n)) != HARMONICS_STATUS_OK) {
        fail("harmonics_producer_size", s);
        goto done;
    }
    for (i = 0; i < n; ++i) {
        HarmonicsTensorView v; /* borrowed until the next call on `cached` */
        size_t k;
        if ((s = harmonics_producer_next_view(cached, &v)) != HARMONICS_STATUS_OK) {
            fail("harmonics_producer_next_view", s);
            goto done;
        }
        for (k = 0; k + sizeof(float) <= v.nbytes; k += sizeof(float)) {
            float x;
            memcpy(&x, v.data + k, sizeof x);
            sum += x;
        }
    }
    if ((s = harmonics_disk_cache_outcome(cached, &outcome)) != HARMONICS_STATUS_OK) {
        fail("harmonics_disk_cache_outcome", s);
        goto done;
    }
    printf("example-c.cache: %s, %zu rows, sum %g\n",
           outcome.kind == HARMONICS_CACHE_OUTCOME_KIND_REUSED ? "reused" : "created", n, sum);
    rc = 0;
done:
    harmonics_producer_free(cached);
    harmonics_set_log_callback(NULL, NULL);
    return rc;
}
