// Tests for UpstreamHealth and CheckStreak: fall/rise counting of health checks, the shared in-service flag.
#include <catch2/catch.hpp>

#include "proxy/upstream/upstream_health.h"

using scepproxy::proxy::CheckStreak;
using scepproxy::proxy::UpstreamHealth;

TEST_CASE("an upstream in service is taken out after `fall` failed checks in a row", "[proxy][health]") {
    CheckStreak streak(3, 2);
    CHECK_FALSE(streak.count(false, true));
    CHECK_FALSE(streak.count(false, true));
    CHECK(streak.count(false, true) == std::optional<bool>(false));
}

TEST_CASE("a good check in between starts the failure count again", "[proxy][health]") {
    CheckStreak streak(2, 2);
    CHECK_FALSE(streak.count(false, true));
    CHECK_FALSE(streak.count(true, true));
    CHECK_FALSE(streak.count(false, true));
    CHECK(streak.count(false, true) == std::optional<bool>(false));
}

TEST_CASE("an upstream out of service comes back after `rise` good checks in a row", "[proxy][health]") {
    CheckStreak streak(1, 3);
    CHECK_FALSE(streak.count(true, false));
    CHECK_FALSE(streak.count(false, false));  // a failure starts the count again
    CHECK_FALSE(streak.count(true, false));
    CHECK_FALSE(streak.count(true, false));
    CHECK(streak.count(true, false) == std::optional<bool>(true));
}

TEST_CASE("good checks while in service don't count towards a later return", "[proxy][health]") {
    // Up, many good checks; then a worker takes it out (a refused connect): `rise` checks are still needed.
    CheckStreak streak(3, 2);
    for (int i = 0; i < 5; ++i) CHECK_FALSE(streak.count(true, true));
    CHECK_FALSE(streak.count(true, false));
    CHECK(streak.count(true, false) == std::optional<bool>(true));
}

TEST_CASE("failures counted before a worker took the upstream out are forgotten", "[proxy][health]") {
    CheckStreak streak(2, 1);
    CHECK_FALSE(streak.count(false, true));
    CHECK_FALSE(streak.count(false, false));  // already out: nothing to change
    CHECK(streak.count(true, false) == std::optional<bool>(true));
    CHECK_FALSE(streak.count(false, true));  // back in: the count starts at zero
    CHECK(streak.count(false, true) == std::optional<bool>(false));
}

TEST_CASE("the in-service flag starts up and follows mark()", "[proxy][health]") {
    UpstreamHealth health("p", "ndes1:80", false);
    CHECK(health.up());
    health.mark(false, "connect_failed");
    CHECK_FALSE(health.up());
    health.mark(false, "connect_failed");
    CHECK_FALSE(health.up());
    health.mark(true, "exchange_ok");
    CHECK(health.up());
}
