/* HTTP failures through the C API, from a C99 program: a 404 from a server on 127.0.0.1
 * is HARMONICS_STATUS_HTTP with harmonics_last_error_http_status() == 404; a refused
 * connection has no HTTP status (0); a later failure that is not HTTP resets it to 0.
 * The server is a child process (fork) answering every connection with one status.
 * Helpers: c_support.h. */
#define _XOPEN_SOURCE 700 /* fork, kill, sockets */

#include <harmonics_dataset.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "c_support.h"

/* ---- a one-answer HTTP server in a child process ------------------------------------- */

struct status_server {
    pid_t pid;
    uint16_t port;
};

/* Reads a request head (up to its blank line) and answers `response`, for every
 * connection, until killed. */
static void serve_forever(int listener, const char *response) {
    for (;;) {
        char head[4096];
        size_t got = 0;
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue;
        while (got < sizeof head - 1) {
            ssize_t n = read(fd, head + got, sizeof head - 1 - got);
            if (n <= 0) break;
            got += (size_t)n;
            head[got] = '\0';
            if (strstr(head, "\r\n\r\n") != NULL) break;
        }
        if (write(fd, response, strlen(response)) < 0) { /* the client went away */
        }
        close(fd);
    }
}

/* A server on 127.0.0.1 (a free port) answering `response`; pid 0 when it could not
 * start. */
static struct status_server start_server(const char *response) {
    struct status_server s = {0, 0};
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) return s;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 16) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
        close(listener);
        return s;
    }
    s.port = ntohs(addr.sin_port);
    s.pid = fork();
    if (s.pid == 0) {
        serve_forever(listener, response);
        _exit(0);
    }
    close(listener);
    if (s.pid < 0) s.pid = 0;
    return s;
}

static void stop_server(struct status_server *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}

/* A port nothing listens on (bound, then closed). */
static uint16_t refused_port(void) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    uint16_t port = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_a_404_gives_its_http_status(void) {
    HarmonicsProducer *p = NULL;
    HarmonicsHttpOptions opts = harmonics_http_options_default();
    struct status_server s = start_server(
        "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
    CHECK(s.pid > 0);
    if (s.pid <= 0) return;
    opts.cache = false;
    opts.retries = 0;

    CHECK_FAILS_WITH(HARMONICS_STATUS_HTTP,
                     harmonics_http_producer_new("127.0.0.1", s.port, "/missing", &opts, &p));
    CHECK(harmonics_last_error_http_status() == 404);
    CHECK(message_contains("404"));
    CHECK(p == NULL);

    /* The asynchronous producer reports the same failure when it is asked for a record. */
    if (harmonics_async_http_producer_new("127.0.0.1", s.port, "/missing", &opts, &p) ==
        HARMONICS_STATUS_OK) {
        size_t n = 0;
        CHECK_FAILS_WITH(HARMONICS_STATUS_HTTP, harmonics_producer_size(p, &n));
        CHECK(harmonics_last_error_http_status() == 404);
        harmonics_producer_free(p);
        p = NULL;
    } else {
        CHECK(harmonics_last_error_http_status() == 404);
    }

    /* A failure that is not an HTTP one leaves no HTTP status behind. */
    CHECK_FAILS_WITH(HARMONICS_STATUS_NULL_ARGUMENT, harmonics_producer_size(NULL, NULL));
    CHECK(harmonics_last_error_http_status() == 0);
    stop_server(&s);
}

static void test_a_refused_connection_has_no_http_status(void) {
    HarmonicsProducer *p = NULL;
    HarmonicsHttpOptions opts = harmonics_http_options_default();
    uint16_t port = refused_port();
    CHECK(port != 0);
    opts.cache = false;
    opts.retries = 0;

    CHECK_FAILS_WITH(HARMONICS_STATUS_HTTP,
                     harmonics_http_producer_new("127.0.0.1", port, "/x", &opts, &p));
    CHECK(harmonics_last_error_http_status() == 0);
    CHECK(message_contains("cannot connect"));
    CHECK(p == NULL);
}

int main(void) {
    static const c_test_fn tests[] = {test_a_404_gives_its_http_status,
                                      test_a_refused_connection_has_no_http_status, NULL};
    return c_run_tests("c_api_http_test", NULL, tests);
}
