// The one support header of the C++ tests:
//   ScratchDir          the fixture: each test runs in a fresh scratch directory (the working
//                       directory) with the default cache directory, so tests never see each
//                       other's caches
//   floats, make_f32    a float32 tensor's values, and a float32 tensor made of values
//   Records             a user's own producer: record i is {i, 10*i}; counts its reads
//   wire_body           records written with write_tensor and concatenated (the old wire body)
//   contains            substring test for messages
//   expect_error        a call that must throw harmonics::Error with a status and a text
//   LoopbackHttpServer  a raw-socket HTTP/1.1 server on 127.0.0.1, and http_response()
#pragma once

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <harmonics/dataset.hpp>

namespace harmonics_test {

namespace fs = std::filesystem;

class ScratchDir : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "hd-cpp-XXXXXX").string();
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        ASSERT_NE(mkdtemp(buf.data()), nullptr);
        dir_ = buf.data();
        old_cwd_ = fs::current_path();
        fs::current_path(dir_);
        const char* old = std::getenv("HARMONICS_CACHE_DIR");
        had_env_ = old != nullptr;
        if (old) old_env_ = old;
        unsetenv("HARMONICS_CACHE_DIR");  // the documented default, .harmonics/cache
    }

    void TearDown() override {
        fs::current_path(old_cwd_);
        if (had_env_) setenv("HARMONICS_CACHE_DIR", old_env_.c_str(), 1);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    static void write_file(const std::string& path, const std::string& text) {
        std::ofstream out(path, std::ios::binary);
        out << text;
    }

    fs::path dir_;

  private:
    fs::path old_cwd_;
    bool had_env_{false};
    std::string old_env_;
};

inline std::vector<float> floats(const harmonics::HTensor& t) {
    std::vector<float> v(t.data().size() / sizeof(float));
    std::memcpy(v.data(), t.data().data(), v.size() * sizeof(float));
    return v;
}

inline harmonics::HTensor make_f32(std::vector<float> values) {
    std::vector<std::byte> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return harmonics::HTensor(harmonics::HTensor::DType::Float32, {values.size()}, std::move(bytes));
}

/// A user's own producer: record i is {i, 10*i}; counts what is read from it.
class Records : public harmonics::Producer {
  public:
    explicit Records(std::size_t n) : n_{n} {}
    harmonics::HTensor next() override {
        ++reads;
        float i = static_cast<float>(cursor_);
        cursor_ = (cursor_ + 1) % n_;
        return make_f32({i, 10 * i});
    }
    std::size_t size() const override { return n_; }
    std::size_t reads{0};

  private:
    std::size_t n_;
    std::size_t cursor_{0};
};

/// Records 0..n-1, `record(i)` (a std::vector<float>) each, serialized with write_tensor
/// and concatenated: the old wire body a server sends.
template <class F>
std::string wire_body(int n, F record) {
    std::ostringstream out;
    for (int i = 0; i < n; ++i) harmonics::write_tensor(out, make_f32(record(i)));
    return out.str();
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// `f()` must throw harmonics::Error with `status` and a message containing `part`
/// (anything when empty); otherwise the test fails with `unexpected_success`.
template <class F>
void expect_error(F&& f, HarmonicsStatus status, const std::string& part, const std::string& unexpected_success) {
    try {
        f();
        ADD_FAILURE() << unexpected_success;
    } catch (const harmonics::Error& e) {
        EXPECT_EQ(e.status(), status) << e.what();
        EXPECT_TRUE(contains(e.what(), part)) << "expected \"" << part << "\" in: " << e.what();
    }
}

/// `HTTP/1.1 <status>` with Content-Length, the `headers` (each ending in \r\n),
/// `Connection: close` and the body.
inline std::string http_response(const std::string& status, const std::string& body,
                                 const std::string& headers = "") {
    return "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + headers +
           "Connection: close\r\n\r\n" + body;
}

/// An HTTP/1.1 server on 127.0.0.1 written the way the old runtime's tests wrote theirs:
/// a raw socket, one request per connection, `Connection: close`. `respond` turns each
/// request head into the whole response (see http_response). Port 0: a free port.
/// Requests are counted and their heads kept; stop() (or the destructor) closes it.
class LoopbackHttpServer {
  public:
    using Respond = std::function<std::string(const std::string& request)>;

    explicit LoopbackHttpServer(Respond respond, int port = 0, const std::string& busy_hint = "")
        : respond_(std::move(respond)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            const std::string why = std::strerror(errno);
            ::close(fd_);
            throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port) + ": " + why + busy_hint);
        }
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    LoopbackHttpServer(const LoopbackHttpServer&) = delete;
    LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;
    ~LoopbackHttpServer() { stop(); }

    void stop() {
        if (fd_ < 0) return;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        fd_ = -1;
        thread_.join();
    }
    int port() const { return port_; }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
    int requests() const { return requests_.load(); }
    std::vector<std::string> request_heads() {
        std::lock_guard<std::mutex> g(mu_);
        return heads_;
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
                heads_.push_back(request);
            }
            ++requests_;
            const std::string response = respond_(request);
            std::size_t off = 0;
            while (off < response.size()) {
                // MSG_NOSIGNAL: a client that stops reading (a parallel download
                // takes only the first part of the first response) is no SIGPIPE.
                ssize_t n = ::send(c, response.data() + off, response.size() - off, MSG_NOSIGNAL);
                if (n <= 0) break;
                off += static_cast<std::size_t>(n);
            }
            ::close(c);
        }
    }

    Respond respond_;
    int fd_{-1};
    int port_{0};
    std::atomic<int> requests_{0};
    std::mutex mu_;
    std::vector<std::string> heads_;
    std::thread thread_;
};

}  // namespace harmonics_test
