// Tests for the names of StoreStatus and AccessVerdict (they are log fields and metric label values).
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "token/enrollment_store.h"

namespace scepproxy::token {

TEST_CASE("store status: every status has its own name", "[store]") {
    const StoreStatus all[] = {StoreStatus::ok, StoreStatus::not_found, StoreStatus::conflict, StoreStatus::unavailable,
                               StoreStatus::invalid};
    std::set<std::string> names;
    for (StoreStatus status : all) names.insert(to_string(status));
    CHECK(names.size() == std::size(all));
    CHECK(std::string(to_string(StoreStatus::not_found)) == "not_found");
    CHECK(std::string(to_string(StoreStatus::unavailable)) == "unavailable");
    CHECK(std::string(to_string(static_cast<StoreStatus>(99))) == "unknown_status");
}

TEST_CASE("access verdict: every verdict has its own reason code", "[store]") {
    const AccessVerdict all[] = {AccessVerdict::allow,
                                 AccessVerdict::token_unknown,
                                 AccessVerdict::token_expired,
                                 AccessVerdict::token_revoked,
                                 AccessVerdict::device_not_enrolled,
                                 AccessVerdict::device_not_compliant,
                                 AccessVerdict::store_unavailable};
    std::set<std::string> names;
    for (AccessVerdict verdict : all) {
        const std::string name = to_string(verdict);
        // Reason codes are bounded label values: lowercase words joined by '_'.
        CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos);
        names.insert(name);
    }
    CHECK(names.size() == std::size(all));
    CHECK(std::string(to_string(AccessVerdict::device_not_compliant)) == "device_not_compliant");
    CHECK(std::string(to_string(static_cast<AccessVerdict>(99))) == "unknown_verdict");
}

}  // namespace scepproxy::token
