// AsyncHttpProducer with HttpOptions: the first record is available as soon as it has
// arrived, while the rest of the download continues in the background into the cache.
//
//   async_http URL [CA.pem]
//
// e.g. `custom_producer export data.bin && python3 -m http.server 8000 --bind 127.0.0.1`
// then `async_http http://127.0.0.1:8000/data.bin`. A second run reads the cache
// (revalidate = true asks the server first and keeps the cache on 304 Not Modified).
#include <harmonics/dataset.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s URL [CA.pem]\n", argv[0]);
        return 2;
    }
    harmonics::HttpOptions opts;
    opts.cache_path = "async-example.cache";  // under $HARMONICS_CACHE_DIR
    opts.validate = true;                     // every record must have the first one's shape
    opts.revalidate = true;                   // ETag / Last-Modified check on reopen
    opts.connect_timeout_ms = 5000;
    opts.read_timeout_ms = 20000;
    opts.retries = 2;
    if (argc > 2) opts.ca_cert_path = argv[2];  // https with a private CA

    const auto start = std::chrono::steady_clock::now();
    auto loader = harmonics::AsyncHttpProducer::from_url(argv[1], opts);
    harmonics::TensorView first = loader.next_view();  // waits only for the first record
    const std::chrono::duration<double, std::milli> first_ms = std::chrono::steady_clock::now() - start;

    std::size_t n = loader.size();  // waits for the download to finish
    std::size_t bytes = first.nbytes;
    for (std::size_t i = 1; i < n; ++i) bytes += loader.next_view().nbytes;
    std::printf("%s: %zu records, %zu bytes, first record after %.1f ms\n", argv[1], n, bytes,
                first_ms.count());
    return 0;
} catch (const std::exception& e) {
    // HTTP failures name the URL and say what happened (status, timeout, refused, ...).
    std::fprintf(stderr, "async_http: %s\n", e.what());
    return 1;
}
