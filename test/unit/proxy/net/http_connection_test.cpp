// Tests of HttpConnection on a real loopback TCP pair and event loop: how it learns that the client is done sending.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "proxy/net/http_connection.h"

namespace scepproxy::proxy {
namespace {

class LoopHost final : public ConnectionHost {
public:
    LoopHost() : base_(event_base_new()) {
        // Far beyond the test: a deadline that fires means the connection missed the client's FIN.
        limits_.header_timeout = std::chrono::seconds(600);
        limits_.idle_timeout = std::chrono::seconds(600);
    }
    ~LoopHost() {
        connections_.clear();
        event_base_free(base_);
    }
    event_base* base() const override { return base_; }
    const conf::LimitsConfig& limits() const override { return limits_; }
    conf::LimitsConfig& mutable_limits() { return limits_; }
    bool access_log_enabled() const override { return false; }
    bool draining() const override { return false; }
    // As a worker does: freed (and its socket closed) after the loop iteration.
    void connection_closed(HttpConnection* connection) override {
        ++closed;
        closing_.push_back(connection);
    }
    void request_done(const RequestOutcome& outcome) override { statuses.push_back(outcome.status); }
    void deadline_expired(std::string_view reason) override { deadlines.emplace_back(reason); }
    // A buffer budget of `budget_left` bytes (unbounded unless a test sets it).
    bool charge_buffer(size_t bytes, bool) override {
        if (bytes > budget_left) return false;
        budget_left -= bytes;
        charged += bytes;
        return true;
    }
    void credit_buffer(size_t bytes) override {
        budget_left += bytes;
        charged -= bytes;
    }
    void wait_for_buffer_budget(HttpConnection* connection, size_t wanted, bool request_start) override {
        waiting.push_back(connection);
        last_wanted = wanted;
        last_wanted_to_start = request_start;
    }

    HttpConnection& adopt(std::unique_ptr<HttpConnection> connection) {
        connections_.push_back(std::move(connection));
        return *connections_.back();
    }
    // Runs the loop without blocking: each round handles what is ready now, never waits for time.
    void run_rounds(int rounds) {
        for (int i = 0; i < rounds && closed == 0; ++i) {
            event_base_loop(base_, EVLOOP_NONBLOCK);
            free_closed();
        }
    }

    int closed = 0;
    size_t budget_left = SIZE_MAX;
    size_t charged = 0;
    std::vector<HttpConnection*> waiting;
    size_t last_wanted = 0;
    bool last_wanted_to_start = false;
    std::vector<int> statuses;
    std::vector<std::string> deadlines;

private:
    void free_closed() {
        for (HttpConnection* connection : closing_)
            std::erase_if(connections_, [connection](const auto& owned) { return owned.get() == connection; });
        closing_.clear();
    }

    event_base* base_;
    conf::LimitsConfig limits_;
    std::vector<HttpConnection*> closing_;
    std::vector<std::unique_ptr<HttpConnection>> connections_;
};

class AnsweringHandler final : public RequestHandler {
public:
    explicit AnsweringHandler(int* requests) : requests_(requests) {}
    void on_request(HttpConnection& connection, const IncomingRequest&) override {
        ++*requests_;
        connection.respond_text(200, "answered", "ok\n");
    }
    void on_abort() override {}

private:
    int* requests_;
};

// Answers 200 with the size of the body it got.
class BodySizeHandler final : public RequestHandler {
public:
    explicit BodySizeHandler(std::vector<size_t>* sizes) : sizes_(sizes) {}
    void on_request(HttpConnection& connection, const IncomingRequest& request) override {
        sizes_->push_back(request.body.size());
        connection.respond_text(200, "answered", std::to_string(request.body.size()));
    }
    void on_abort() override {}

private:
    std::vector<size_t>* sizes_;
};

// A connected loopback pair: the client's blocking fd and the accepted, non-blocking server fd.
struct TcpPair {
    int client = -1;
    int server = -1;
    SocketAddress peer;

    TcpPair() {
        const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(::listen(listener, 1) == 0);
        socklen_t length = sizeof address;
        REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
        client = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        sockaddr_storage from{};
        socklen_t from_length = sizeof from;
        server = ::accept4(listener, reinterpret_cast<sockaddr*>(&from), &from_length, SOCK_NONBLOCK);
        REQUIRE(server >= 0);
        peer = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&from), from_length);
        ::close(listener);
    }
    ~TcpPair() {
        if (client >= 0) ::close(client);
    }

    // Sends the bytes, then the FIN, and waits until both are queued at the server, so that the
    // connection's next readiness event reports them together (the case under test).
    void send_then_half_close(const std::string& bytes) {
        REQUIRE(::send(client, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
        REQUIRE(::shutdown(client, SHUT_WR) == 0);
        pollfd queued{server, POLLRDHUP, 0};
        REQUIRE(::poll(&queued, 1, 5000) == 1);
        REQUIRE((queued.revents & POLLRDHUP) != 0);
    }

    void send_all(const std::string& bytes) {
        size_t sent = 0;
        while (sent < bytes.size()) {
            const ssize_t n = ::send(client, bytes.data() + sent, bytes.size() - sent, 0);
            REQUIRE(n > 0);
            sent += static_cast<size_t>(n);
        }
    }

    // Waits (bounded) until the server has something to read.
    void wait_readable_at_server() {
        pollfd queued{server, POLLIN, 0};
        REQUIRE(::poll(&queued, 1, 5000) == 1);
    }

    // What the server sent before closing (the client reads until EOF; bounded by a receive timeout).
    std::string read_to_eof() {
        timeval timeout{5, 0};
        ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        std::string received;
        char chunk[4096];
        for (;;) {
            const ssize_t n = ::recv(client, chunk, sizeof chunk, 0);
            if (n <= 0) break;
            received.append(chunk, static_cast<size_t>(n));
        }
        return received;
    }
};

HttpConnection& start_connection(LoopHost& host, TcpPair& pair, int* requests) {
    auto connection = std::make_unique<HttpConnection>(host, "test",
                                                       std::make_unique<PlainSocketTransport>(pair.server), pair.peer,
                                                       std::make_unique<AnsweringHandler>(requests));
    HttpConnection& started = host.adopt(std::move(connection));
    started.start();
    host.run_rounds(2);  // registered with epoll and idle: nothing to read yet
    return started;
}

TEST_CASE("a head cut short by a FIN that came with its last bytes is dropped at once", "[http_connection]") {
    LoopHost host;
    TcpPair pair;
    int requests = 0;
    start_connection(host, pair, &requests);
    REQUIRE(host.closed == 0);

    // One readiness edge for both: the read returns the bytes short, and the EOF behind them
    // announces no edge of its own.
    pair.send_then_half_close("GET /scep/x?operation=GetCACaps HTTP/1.1\r\nHost: x");
    host.run_rounds(10);

    CHECK(host.closed == 1);  // not left waiting for the header timeout
    CHECK(requests == 0);
    CHECK(host.deadlines.empty());
    CHECK(pair.read_to_eof().empty());  // no 408, no answer at all
}

TEST_CASE("a complete request with the FIN behind it is answered, then the connection closes", "[http_connection]") {
    LoopHost host;
    TcpPair pair;
    int requests = 0;
    start_connection(host, pair, &requests);

    pair.send_then_half_close("GET /scep/x?operation=GetCACaps HTTP/1.1\r\nHost: x\r\n\r\n");
    host.run_rounds(10);

    CHECK(requests == 1);
    CHECK(host.statuses == std::vector<int>{200});
    CHECK(host.closed == 1);  // not kept open until the idle timeout
    const std::string answer = pair.read_to_eof();
    CHECK(answer.rfind("HTTP/1.1 200 ", 0) == 0);
    CHECK(answer.find("Connection: close\r\n") != std::string::npos);
}

TEST_CASE("bytes without a FIN keep the connection waiting for the rest", "[http_connection]") {
    LoopHost host;
    TcpPair pair;
    int requests = 0;
    start_connection(host, pair, &requests);

    const std::string partial = "GET /scep/x?operation=GetCACaps HTTP/1.1\r\nHost: x";
    REQUIRE(::send(pair.client, partial.data(), partial.size(), 0) == static_cast<ssize_t>(partial.size()));
    pollfd queued{pair.server, POLLIN, 0};
    REQUIRE(::poll(&queued, 1, 5000) == 1);
    host.run_rounds(10);
    CHECK(host.closed == 0);  // the client may still send the rest

    const std::string rest = "\r\n\r\n";
    REQUIRE(::send(pair.client, rest.data(), rest.size(), 0) == static_cast<ssize_t>(rest.size()));
    pollfd arrived{pair.server, POLLIN, 0};
    REQUIRE(::poll(&arrived, 1, 5000) == 1);
    host.run_rounds(10);
    CHECK(requests == 1);
    CHECK(host.closed == 0);  // keep-alive
}

TEST_CASE("a chunked head alone holds little buffer; the body's buffer grows with the data", "[http_connection]") {
    LoopHost host;
    host.mutable_limits().max_body_bytes = 16 << 20;  // a large limit: nothing may be taken for it up front
    TcpPair pair;
    std::vector<size_t> sizes;
    auto owned = std::make_unique<HttpConnection>(host, "test", std::make_unique<PlainSocketTransport>(pair.server),
                                                  pair.peer, std::make_unique<BodySizeHandler>(&sizes));
    HttpConnection& connection = host.adopt(std::move(owned));
    connection.start();
    host.run_rounds(2);

    pair.send_all("POST /scep/x?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    pair.wait_readable_at_server();
    host.run_rounds(10);
    REQUIRE(host.closed == 0);
    REQUIRE(sizes.empty());  // the body is still to come
    // The head is read into a block of its size; no body buffer before a body byte.
    CHECK(connection.buffered_capacity() <= 16384);
    CHECK(host.charged == connection.buffered_capacity());

    // 200 KiB in 4 KiB chunks: decoded into a buffer that grows with it.
    const std::string chunk(4096, 'b');
    std::string body;
    for (int i = 0; i < 50; ++i) body += "1000\r\n" + chunk + "\r\n";
    body += "0\r\n\r\n";
    pair.send_all(body);
    for (int i = 0; i < 200 && sizes.empty(); ++i) {
        pollfd queued{pair.server, POLLIN, 10};
        ::poll(&queued, 1, 10);
        host.run_rounds(1);
    }
    REQUIRE(sizes == std::vector<size_t>{50 * 4096});
    CHECK(host.statuses == std::vector<int>{200});
    CHECK(host.closed == 0);
}

TEST_CASE("a chunked body over max_body_bytes still gets 413", "[http_connection]") {
    LoopHost host;
    host.mutable_limits().max_body_bytes = 8192;
    TcpPair pair;
    std::vector<size_t> sizes;
    auto owned = std::make_unique<HttpConnection>(host, "test", std::make_unique<PlainSocketTransport>(pair.server),
                                                  pair.peer, std::make_unique<BodySizeHandler>(&sizes));
    HttpConnection& connection = host.adopt(std::move(owned));
    connection.start();
    host.run_rounds(2);

    const std::string chunk(4096, 'b');
    std::string request =
        "POST /scep/x?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) request += "1000\r\n" + chunk + "\r\n";
    request += "0\r\n\r\n";
    pair.send_all(request);
    pair.wait_readable_at_server();
    host.run_rounds(10);
    CHECK(sizes.empty());
    CHECK(host.statuses == std::vector<int>{413});
    CHECK(pair.read_to_eof().rfind("HTTP/1.1 413 ", 0) == 0);
}

TEST_CASE("a connection short of buffer budget stops reading, and reads on when the host has room",
          "[http_connection]") {
    LoopHost host;
    host.mutable_limits().max_body_bytes = 1 << 20;
    host.budget_left = 20000;  // the first 16 KiB block, not the growth after it
    TcpPair pair;
    std::vector<size_t> sizes;
    auto owned = std::make_unique<HttpConnection>(host, "test", std::make_unique<PlainSocketTransport>(pair.server),
                                                  pair.peer, std::make_unique<BodySizeHandler>(&sizes));
    HttpConnection& connection = host.adopt(std::move(owned));
    connection.start();
    host.run_rounds(2);
    CHECK(host.charged == 0);  // nothing to read: no buffer held
    CHECK(connection.buffered_capacity() == 0);

    const size_t body_size = 100000;
    pair.send_all("POST /scep/x?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                  std::to_string(body_size) + "\r\n\r\n" + std::string(body_size, 'b'));
    pair.wait_readable_at_server();
    host.run_rounds(10);
    CHECK(sizes.empty());
    CHECK(host.statuses.empty());
    CHECK(host.closed == 0);
    // It read the first 16 KiB block, parsed the head, and asked for the rest of the body at once.
    REQUIRE(host.waiting == std::vector<HttpConnection*>{&connection});
    CHECK(connection.buffered_capacity() == 16384);
    CHECK(host.charged == 16384);
    CHECK(host.last_wanted == 131072 - 16384);  // a buffer that holds head and body
    CHECK_FALSE(host.last_wanted_to_start);     // a request under way

    // Room again: the body is charged whole (one growth) and the request answered.
    host.budget_left = 1 << 20;
    host.waiting.clear();
    connection.on_buffer_budget();
    for (int i = 0; i < 200 && sizes.empty(); ++i) {
        pollfd queued{pair.server, POLLIN, 10};
        ::poll(&queued, 1, 10);
        host.run_rounds(1);
    }
    CHECK(sizes == std::vector<size_t>{body_size});
    CHECK(host.waiting.empty());
    CHECK(host.closed == 0);
    CHECK(host.charged == 0);  // kept alive and idle: every buffer byte given back
}

}  // namespace
}  // namespace scepproxy::proxy
