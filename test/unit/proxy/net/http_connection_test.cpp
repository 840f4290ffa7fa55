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
    bool access_log_enabled() const override { return false; }
    bool draining() const override { return false; }
    // As a worker does: freed (and its socket closed) after the loop iteration.
    void connection_closed(HttpConnection* connection) override {
        ++closed;
        closing_.push_back(connection);
    }
    void request_done(const RequestOutcome& outcome) override { statuses.push_back(outcome.status); }
    void deadline_expired(std::string_view reason) override { deadlines.emplace_back(reason); }

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

}  // namespace
}  // namespace scepproxy::proxy
