// HttpProducer / AsyncHttpProducer through the C++ wrapper, against a server on
// 127.0.0.1:8080 written the way the old runtime's tests wrote theirs: a raw socket,
// `HTTP/1.1 200 OK`, Content-Length, Connection: close. The reference documentation's
// two HttpProducer snippets are compiled verbatim and checked to behave as written,
// including the second run with the server stopped.

#include "test_support.hpp"

#include <atomic>
#include <cctype>
#include <cstdio>

using harmonics_test::floats;
using harmonics_test::http_response;
using harmonics_test::LoopbackHttpServer;
using harmonics_test::ScratchDir;
using harmonics_test::wire_body;

namespace {

/// Serves `body` for GET /data (404 for anything else) on 127.0.0.1:port until stopped.
/// With `ranges`: a strong ETag, `Accept-Ranges: bytes`, and `Range: bytes=A-B`
/// answered 206 (counted by `ranged_requests`).
class RawHttpServer {
  public:
    RawHttpServer(std::string body, int port = 8080, bool ranges = false)
        : body_(std::move(body)),
          ranges_(ranges),
          server_([this](const std::string& request) { return respond(request); }, port,
                  " (the reference examples need this port free)") {}

    void stop() { server_.stop(); }
    int requests() const { return server_.requests(); }
    int ranged_requests() const { return ranged_.load(); }

  private:
    std::string respond(const std::string& request) {
        std::string lower = request;  // header names are case-insensitive
        for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        std::size_t at = lower.find("\r\nrange: bytes=");
        const bool data = request.rfind("GET /data ", 0) == 0;
        if (ranges_ && data && at != std::string::npos) {
            ++ranged_;
            unsigned long long a = 0, b = 0;
            std::sscanf(request.c_str() + at + 15, "%llu-%llu", &a, &b);
            return http_response("206 Partial Content", body_.substr(a, b - a + 1),
                                 "Content-Range: bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" +
                                     std::to_string(body_.size()) + "\r\nETag: \"v1\"\r\n");
        }
        if (ranges_ && data) return http_response("200 OK", body_, "ETag: \"v1\"\r\nAccept-Ranges: bytes\r\n");
        if (data) return http_response("200 OK", body_);
        return http_response("404 Not Found", "");
    }

    std::string body_;
    bool ranges_;
    std::atomic<int> ranged_{0};
    LoopbackHttpServer server_;  // last: stopped before the members its thread reads
};

std::vector<float> record(int i) { return {float(i), float(i) + 0.5f, float(i) * 2}; }

/// `n` records serialized with write_tensor and concatenated: the old wire body.
std::string dataset_body(int n) { return wire_body(n, record); }

class HttpReference : public ScratchDir {};

}  // namespace

TEST_F(HttpReference, EnablingTheCacheDownloadsOnceThenReadsTheFileWithTheServerStopped) {
    RawHttpServer server(dataset_body(4));
    {
        // BEGIN SNIPPET http-cache
        harmonics::HttpProducer loader("127.0.0.1", 8080, "/data", /*cache=*/true,
                                       "dataset.cache");
        // END SNIPPET http-cache
        ASSERT_EQ(loader.size(), 4u);
        for (int i = 0; i < 4; ++i) EXPECT_EQ(floats(loader.next()), record(i));
        EXPECT_EQ(floats(loader.next()), record(0)) << "next() cycles";
    }
    EXPECT_EQ(server.requests(), 1);
    EXPECT_TRUE(std::filesystem::exists(".harmonics/cache/dataset.cache"));

    // "If the cache file exists the records are loaded directly from disk."
    server.stop();
    harmonics::HttpProducer loader("127.0.0.1", 8080, "/data", /*cache=*/true, "dataset.cache");
    ASSERT_EQ(loader.size(), 4u);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(floats(loader.next()), record(i));
}

TEST_F(HttpReference, CacheFalseDisablesReuse) {
    RawHttpServer server(dataset_body(2));
    {
        harmonics::HttpProducer loader("127.0.0.1", 8080, "/data", /*cache=*/false,
                                       "dataset.cache");
        EXPECT_EQ(loader.size(), 2u);
    }
    harmonics::HttpProducer again("127.0.0.1", 8080, "/data", /*cache=*/false, "dataset.cache");
    EXPECT_EQ(again.size(), 2u);
    EXPECT_EQ(server.requests(), 2) << "cache=false must download each time";
}

TEST_F(HttpReference, AsyncHttpProducerTakesTheSameParametersAndGivesTheSameRecords) {
    RawHttpServer server(dataset_body(5));
    harmonics::AsyncHttpProducer loader("127.0.0.1", 8080, "/data", /*cache=*/true,
                                        "async.cache");
    for (int i = 0; i < 5; ++i) EXPECT_EQ(floats(loader.next()), record(i));
    EXPECT_EQ(loader.size(), 5u);
    server.stop();
    harmonics::AsyncHttpProducer offline("127.0.0.1", 8080, "/data", true, "async.cache");
    EXPECT_EQ(offline.size(), 5u);
    EXPECT_EQ(floats(offline.next()), record(0));
}

TEST_F(HttpReference, TrainingLoopExampleRunsTwiceTheSecondTimeWithoutTheServer) {
    RawHttpServer server(dataset_body(3));
    for (int run = 0; run < 2; ++run) {
        if (run == 1) server.stop();
        std::vector<std::vector<float>> seen;
        {
            // The example's #include is a no-op here (already included, guarded).
            // BEGIN SNIPPET training-loop
#include <harmonics/dataset.hpp>

auto loader = std::make_shared<harmonics::HttpProducer>(
    "127.0.0.1", 8080, "/data", /*cache=*/true, "dataset.cache");
harmonics::DiskCacheProducer cached(loader, "train.cache");

for (std::size_t i = 0; i < cached.size(); ++i) {
    auto sample = cached.next();
    // feed `sample` into the network here
}
            // END SNIPPET training-loop
            // next() cycled back to the first record: read the dataset once more.
            for (std::size_t i = 0; i < cached.size(); ++i) seen.push_back(floats(cached.next()));
            EXPECT_EQ(cached.outcome(), run == 0 ? harmonics::CacheOutcome::Created
                                                 : harmonics::CacheOutcome::Reused);
        }
        ASSERT_EQ(seen.size(), 3u) << "run " << run;
        for (int i = 0; i < 3; ++i) EXPECT_EQ(seen[i], record(i)) << "run " << run;
    }
    EXPECT_EQ(server.requests(), 1);
}

TEST_F(HttpReference, A404IsAnErrorNamingTheUrlAndLeavesNoCache) {
    RawHttpServer server(dataset_body(1));
    try {
        harmonics::HttpProducer loader("127.0.0.1", 8080, "/missing", true, "missing.cache");
        FAIL() << "expected harmonics::Error";
    } catch (const harmonics::Error& e) {
        EXPECT_NE(std::string(e.what()).find("http://127.0.0.1:8080/missing"), std::string::npos)
            << e.what();
        EXPECT_EQ(e.status(), HARMONICS_STATUS_HTTP) << e.what();
        EXPECT_EQ(e.http_status(), 404) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(".harmonics/cache/missing.cache"));
}

TEST_F(HttpReference, AnErrorWithoutAnHttpResponseHasNoHttpStatus) {
    try {
        harmonics::HttpProducer loader("127.0.0.1", 8080, "/data", true, "../escapes.cache");
        FAIL() << "expected harmonics::Error";
    } catch (const harmonics::Error& e) {
        EXPECT_EQ(e.status(), HARMONICS_STATUS_INVALID_NAME) << e.what();
        EXPECT_EQ(e.http_status(), 0) << e.what();
    }
}

TEST_F(HttpReference, MaxBytesStopsADownloadNamingTheUrlAndTheLimitAndLeavesNoCache) {
    const std::string body = dataset_body(50);
    RawHttpServer server(body);
    harmonics::HttpOptions opts;
    EXPECT_EQ(opts.max_bytes, 0u) << "no limit by default";
    opts.cache_path = "limited.cache";
    opts.max_bytes = 100;
    try {
        harmonics::HttpProducer loader("127.0.0.1", 8080, "/data", opts);
        FAIL() << "a body of " << body.size() << " bytes passed a limit of 100";
    } catch (const harmonics::Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("http://127.0.0.1:8080/data"), std::string::npos) << what;
        EXPECT_NE(what.find("limit of 100 bytes"), std::string::npos) << what;
    }
    EXPECT_FALSE(std::filesystem::exists(".harmonics/cache/limited.cache"));
    opts.max_bytes = body.size();
    harmonics::AsyncHttpProducer loader("127.0.0.1", 8080, "/data", opts);
    EXPECT_EQ(loader.size(), 50u);
    EXPECT_EQ(floats(loader.next()), record(0));
}

TEST_F(HttpReference, ConnectionsDownloadALargeObjectOverRangedGetsWithTheSameRecords) {
    const int n = 12000;  // about 300 KB of 3-float records
    RawHttpServer server(dataset_body(n), 8080, true);
    harmonics::HttpOptions opts;
    EXPECT_EQ(opts.connections, 0u) << "automatic by default";
    EXPECT_EQ(opts.parallel_min_bytes, 0u) << "0: the default threshold, 64 MiB";
    opts.cache_path = "single.cache";
    {
        // Below the default threshold: one connection.
        harmonics::HttpProducer loader("127.0.0.1", 8080, "/data", opts);
        EXPECT_EQ(loader.size(), static_cast<std::size_t>(n));
    }
    EXPECT_EQ(server.requests(), 1);
    EXPECT_EQ(server.ranged_requests(), 0);
    opts.cache_path = "parallel.cache";
    opts.connections = 3;
    opts.parallel_min_bytes = 1;
    harmonics::HttpProducer loader("127.0.0.1", 8080, "/data", opts);
    ASSERT_EQ(loader.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) ASSERT_EQ(floats(loader.next()), record(i)) << "record " << i;
    EXPECT_GE(server.ranged_requests(), 2);
}
