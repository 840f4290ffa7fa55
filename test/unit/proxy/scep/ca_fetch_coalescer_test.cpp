// Tests for CaFetchCoalescer: one fetch per answer, waiters told in order, aborts on either side.
#include "proxy/scep/ca_fetch_coalescer.h"

#include <functional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace scepproxy::proxy {
namespace {

std::vector<std::string>* g_told = nullptr;

struct Recorder final : CaFetchWaiter {
    explicit Recorder(std::string n) : name(std::move(n)) {}
    void on_ca_fetch_done() override {
        g_told->push_back(name);
        if (then) then();
    }
    std::string name;
    std::function<void()> then;
};

TEST_CASE("the first miss leads the fetch, the others wait and are told in order", "[ca_fetch]") {
    std::vector<std::string> told;
    g_told = &told;
    CaFetchCoalescer fetches;
    Recorder leader("leader"), a("a"), b("b"), other("other");
    CHECK_FALSE(fetches.wait_or_lead("GetCACert", "", &leader));
    CHECK(fetches.wait_or_lead("GetCACert", "", &a));
    CHECK(fetches.wait_or_lead("GetCACert", "", &b));
    CHECK_FALSE(fetches.wait_or_lead("GetCACert", "other-ca", &other));  // another answer: its own fetch
    CHECK(fetches.fetches_in_flight() == 2);
    fetches.finish(&leader);
    CHECK(told == std::vector<std::string>{"a", "b"});
    CHECK(fetches.fetches_in_flight() == 1);
    fetches.finish(&a);  // not a leader: nothing happens
    CHECK(told.size() == 2);
    g_told = nullptr;
}

TEST_CASE("an aborted waiter is not told; an aborted leader tells its waiters unless torn down", "[ca_fetch]") {
    std::vector<std::string> told;
    g_told = &told;
    CaFetchCoalescer fetches;
    Recorder leader("leader"), a("a"), b("b");
    fetches.wait_or_lead("GetCACaps", "", &leader);
    fetches.wait_or_lead("GetCACaps", "", &a);
    fetches.wait_or_lead("GetCACaps", "", &b);
    fetches.forget(&a);
    fetches.forget(&leader);
    CHECK(told == std::vector<std::string>{"b"});
    CHECK(fetches.fetches_in_flight() == 0);

    told.clear();
    fetches.wait_or_lead("GetCACaps", "", &leader);
    fetches.wait_or_lead("GetCACaps", "", &a);
    fetches.forget(&leader, false);
    CHECK(told.empty());
    CHECK(fetches.fetches_in_flight() == 0);
    g_told = nullptr;
}

TEST_CASE("a waiter told may lead the next fetch from inside the call", "[ca_fetch]") {
    std::vector<std::string> told;
    g_told = &told;
    CaFetchCoalescer fetches;
    Recorder leader("leader"), a("a"), b("b");
    a.then = [&] { CHECK_FALSE(fetches.wait_or_lead("GetCACert", "", &a)); };  // the fetch brought nothing
    bool b_waited = false;
    b.then = [&] {  // the first time: waits for a's fetch; the second: a's fetch is over
        if (!b_waited) CHECK(fetches.wait_or_lead("GetCACert", "", &b));
        b_waited = true;
    };
    fetches.wait_or_lead("GetCACert", "", &leader);
    fetches.wait_or_lead("GetCACert", "", &a);
    fetches.wait_or_lead("GetCACert", "", &b);
    fetches.finish(&leader);
    CHECK(fetches.fetches_in_flight() == 1);
    fetches.finish(&a);
    CHECK(told == std::vector<std::string>{"a", "b", "b"});
    g_told = nullptr;
}

}  // namespace
}  // namespace scepproxy::proxy
