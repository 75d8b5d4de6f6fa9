// s3://bucket/key through the C++ wrapper's URL constructors: the request goes
// path-style to AWS_ENDPOINT_URL, signed with AWS Signature V4 from the AWS_*
// environment, and the cache is then used with the server stopped. The server here
// is a raw socket that records the request head (the signatures themselves are
// verified by a real S3 server in tests/s3.rs).

#include "test_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <thread>

using harmonics_test::make_f32;
using harmonics_test::ScratchDir;

namespace {

/// Serves `body` for `GET <path> ` (404 otherwise) on a free 127.0.0.1 port.
class RecordingServer {
  public:
    RecordingServer(std::string path, std::string body) : path_(std::move(path)), body_(std::move(body)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = 0;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            ::close(fd_);
            throw std::runtime_error(std::string("cannot listen on 127.0.0.1: ") + std::strerror(errno));
        }
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~RecordingServer() { stop(); }

    void stop() {
        if (fd_ < 0) return;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        fd_ = -1;
        thread_.join();
    }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::vector<std::string> requests() {
        std::lock_guard<std::mutex> g(mu_);
        return requests_;
    }

  private:
    void serve() {
        for (;;) {
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;  // the listening socket was shut down
            std::string request;
            char buf[1024];
            while (request.find("\r\n\r\n") == std::string::npos) {
                ssize_t n = ::read(c, buf, sizeof buf);
                if (n <= 0) break;
                request.append(buf, static_cast<std::size_t>(n));
            }
            {
                std::lock_guard<std::mutex> g(mu_);
                requests_.push_back(request);
            }
            std::string response;
            if (request.rfind("GET " + path_ + " ", 0) == 0) {
                response = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_.size()) +
                           "\r\nConnection: close\r\n\r\n" + body_;
            } else {
                response = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            }
            std::size_t off = 0;
            while (off < response.size()) {
                ssize_t n = ::write(c, response.data() + off, response.size() - off);
                if (n <= 0) break;
                off += static_cast<std::size_t>(n);
            }
            ::close(c);
        }
    }

    std::string path_, body_;
    int fd_{-1};
    int port_{0};
    std::mutex mu_;
    std::vector<std::string> requests_;
    std::thread thread_;
};

std::string dataset_body(int n) {
    std::ostringstream out;
    for (int i = 0; i < n; ++i) harmonics::write_tensor(out, make_f32({float(i), float(i) * 3}));
    return out.str();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

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
    auto requests = server.requests();
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
