// s3://bucket/key through the C++ wrapper's URL constructors: the request goes
// path-style to AWS_ENDPOINT_URL, signed with AWS Signature V4 from the AWS_*
// environment, and the cache is then used with the server stopped. The server here
// is a raw socket that records the request head (the signatures themselves are
// verified by a real S3 server in tests/all/s3/).

#include "test_support.hpp"

#include <cstdlib>

using harmonics_test::contains;
using harmonics_test::http_response;
using harmonics_test::LoopbackHttpServer;
using harmonics_test::ScratchDir;
using harmonics_test::wire_body;

namespace {

/// Serves `body` for `GET <path> ` (404 otherwise) on a free 127.0.0.1 port, keeping
/// each request head.
class RecordingServer : public LoopbackHttpServer {
  public:
    RecordingServer(std::string path, std::string body)
        : LoopbackHttpServer([path, body](const std::string& request) {
              return request.rfind("GET " + path + " ", 0) == 0 ? http_response("200 OK", body)
                                                                 : http_response("404 Not Found", "");
          }) {}
};

std::string dataset_body(int n) {
    return wire_body(n, [](int i) { return std::vector<float>{float(i), float(i) * 3}; });
}

const char* const kAwsVars[] = {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"};

class S3Url : public ScratchDir {
  protected:
    void SetUp() override {
        ScratchDir::SetUp();
        for (const char* v : kAwsVars) ::unsetenv(v);
    }
    void TearDown() override {
        for (const char* v : kAwsVars) ::unsetenv(v);
        ScratchDir::TearDown();
    }
};

}  // namespace

TEST_F(S3Url, FromUrlSignsAPathStyleGetAndReopensTheCacheWithTheServerStopped) {
    RecordingServer server("/bucket/dir/data%20v1.bin", dataset_body(4));
    ::setenv("AWS_ENDPOINT_URL", server.endpoint().c_str(), 1);
    ::setenv("AWS_ACCESS_KEY_ID", "AKIDCPPTEST", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "cpp-test-secret", 1);
    harmonics::HttpOptions opts;
    opts.cache_path = "s3.cache";
    {
        auto loader = harmonics::HttpProducer::from_url("s3://bucket/dir/data v1.bin", opts);
        EXPECT_EQ(loader.size(), 4u);
    }
    {
        opts.cache_path = "s3-async.cache";
        auto loader = harmonics::AsyncHttpProducer::from_url("s3://bucket/dir/data v1.bin", opts);
        EXPECT_EQ(loader.size(), 4u);
    }
    auto requests = server.request_heads();
    ASSERT_EQ(requests.size(), 2u);
    for (const auto& r : requests) {
        EXPECT_TRUE(contains(r, "authorization: AWS4-HMAC-SHA256 Credential=AKIDCPPTEST/")) << r;
        EXPECT_FALSE(contains(r, "cpp-test-secret")) << r;
    }
    server.stop();
    opts.cache_path = "s3.cache";
    auto again = harmonics::HttpProducer::from_url("s3://bucket/dir/data v1.bin", opts);
    EXPECT_EQ(again.size(), 4u);
}

TEST_F(S3Url, AnS3UrlWithoutAKeyThrowsNamingIt) {
    try {
        harmonics::HttpProducer::from_url("s3://bucket-only");
        FAIL() << "expected harmonics::Error";
    } catch (const harmonics::Error& e) {
        EXPECT_TRUE(contains(e.what(), "s3://bucket-only") && contains(e.what(), "no key")) << e.what();
    }
}
