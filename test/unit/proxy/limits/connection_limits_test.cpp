// Tests for the connection limits: the global connection budget, per-client counts and client address grouping.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <atomic>
#include <thread>
#include <vector>

#include "proxy/limits/client_connection_counter.h"
#include "proxy/limits/connection_budget.h"
#include "proxy/limits/limit_key.h"

using namespace scepproxy::proxy;

namespace {

SocketAddress ipv4(const char* text) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(40000);
    inet_pton(AF_INET, text, &a.sin_addr);
    return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&a), sizeof a);
}

SocketAddress ipv6(const char* text, uint16_t port = 40000) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    inet_pton(AF_INET6, text, &a.sin6_addr);
    return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&a), sizeof a);
}

}  // namespace

TEST_CASE("the budget reserves exactly max_connections slots", "[connection_budget]") {
    ConnectionBudget budget(3, 1);
    for (int i = 0; i < 3; ++i) CHECK(budget.try_reserve());
    CHECK_FALSE(budget.try_reserve());
    CHECK(budget.open() == 3);
    budget.release();
    CHECK(budget.try_reserve());
    CHECK_FALSE(budget.try_reserve());
}

TEST_CASE("a parked waiter is woken once by the release that makes room", "[connection_budget]") {
    ConnectionBudget budget(1, 2);
    int woken[2] = {0, 0};
    budget.set_wake(0, [&] { ++woken[0]; });
    budget.set_wake(1, [&] { ++woken[1]; });
    REQUIRE(budget.try_reserve());
    CHECK_FALSE(budget.try_reserve());
    CHECK_FALSE(budget.park(0));  // still full: wait for a wake
    budget.release();
    CHECK(woken[0] == 1);
    CHECK(woken[1] == 0);  // it never parked
    REQUIRE(budget.try_reserve());
    budget.release();  // nobody parked any more
    CHECK(woken[0] == 1);
}

TEST_CASE("a waiter parking after the room appeared resumes at once", "[connection_budget]") {
    ConnectionBudget budget(1, 1);
    int woken = 0;
    budget.set_wake(0, [&] { ++woken; });
    REQUIRE(budget.try_reserve());
    CHECK_FALSE(budget.try_reserve());
    budget.release();  // between the failed reserve and the park: no lost wake-up
    CHECK(budget.park(0));
    CHECK(woken == 0);
}

TEST_CASE("threads reserving at once never exceed the budget", "[connection_budget]") {
    constexpr size_t kMax = 100;
    ConnectionBudget budget(kMax, 1);
    std::atomic<size_t> reserved{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                if (budget.try_reserve()) ++reserved;
        });
    for (auto& thread : threads) thread.join();
    CHECK(reserved == kMax);
    CHECK(budget.open() == kMax);
}

TEST_CASE("a client group may open max_per_client connections, not one more", "[client_connection_counter]") {
    ClientConnectionCounter counter(2);
    const LimitKey a = client_limit_key(ipv4("192.0.2.1"), 32, 64);
    const LimitKey b = client_limit_key(ipv4("192.0.2.2"), 32, 64);
    auto first = counter.try_acquire(a);
    auto second = counter.try_acquire(a);
    REQUIRE(first);
    REQUIRE(second);
    CHECK_FALSE(counter.try_acquire(a));
    CHECK(counter.try_acquire(b));  // another group
    CHECK(counter.groups() == 1);   // b's slot was released at once (a temporary)
    second.reset();                 // one of a's connections closes
    CHECK(counter.try_acquire(a));
    first.reset();
    CHECK(counter.groups() == 0);  // nothing kept for groups without connections
}

TEST_CASE("without a per-client limit nothing is counted", "[client_connection_counter]") {
    ClientConnectionCounter counter(0);
    std::vector<ClientConnectionCounter::Slot> slots;
    for (int i = 0; i < 100; ++i) {
        auto slot = counter.try_acquire(client_limit_key(ipv4("192.0.2.1"), 32, 64));
        REQUIRE(slot);
        slots.push_back(std::move(*slot));
    }
    CHECK(counter.groups() == 0);
}

TEST_CASE("client groups: IPv4 by prefix, IPv6 by /64 by default, IPv4-mapped as IPv4, never the port", "[limit_key]") {
    CHECK(client_limit_key(ipv4("192.0.2.1"), 32, 64) == client_limit_key(ipv4("192.0.2.1"), 32, 64));
    CHECK_FALSE(client_limit_key(ipv4("192.0.2.1"), 32, 64) == client_limit_key(ipv4("192.0.2.2"), 32, 64));
    CHECK(client_limit_key(ipv4("192.0.2.1"), 24, 64) == client_limit_key(ipv4("192.0.2.200"), 24, 64));
    CHECK_FALSE(client_limit_key(ipv4("192.0.2.1"), 24, 64) == client_limit_key(ipv4("192.0.3.1"), 24, 64));
    CHECK(client_limit_key(ipv4("192.0.2.77"), 25, 64) == client_limit_key(ipv4("192.0.2.1"), 25, 64));
    CHECK_FALSE(client_limit_key(ipv4("192.0.2.200"), 25, 64) == client_limit_key(ipv4("192.0.2.1"), 25, 64));

    // One /64: the same group whatever the interface identifier and port.
    CHECK(client_limit_key(ipv6("2001:db8:1:2::1", 1), 32, 64) ==
          client_limit_key(ipv6("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 2), 32, 64));
    CHECK_FALSE(client_limit_key(ipv6("2001:db8:1:2::1"), 32, 64) == client_limit_key(ipv6("2001:db8:1:3::1"), 32, 64));
    // /128: every address its own group; /48: a site.
    CHECK_FALSE(client_limit_key(ipv6("2001:db8:1:2::1"), 32, 128) ==
                client_limit_key(ipv6("2001:db8:1:2::2"), 32, 128));
    CHECK(client_limit_key(ipv6("2001:db8:1:2::1"), 32, 48) == client_limit_key(ipv6("2001:db8:1:ffff::1"), 32, 48));

    // A "::" listener's IPv4 clients are IPv4 clients, and never the same group as an IPv6 one.
    CHECK(client_limit_key(ipv6("::ffff:192.0.2.1"), 32, 64) == client_limit_key(ipv4("192.0.2.1"), 32, 64));
    CHECK_FALSE(client_limit_key(ipv6("::"), 32, 64) == client_limit_key(ipv4("0.0.0.0"), 32, 64));
}
