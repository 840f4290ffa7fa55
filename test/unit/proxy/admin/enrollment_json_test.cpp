// Tests for the JSON view of a token record: which state it shows, when it was consumed, never the token.
#include <catch2/catch.hpp>

#include "proxy/admin/enrollment_json.h"
#include "token/enrollment_token.h"

using namespace scepproxy;

namespace {

constexpr int64_t kNow = 1'800'000'000;

token::TokenRecord record_at_rest() {
    const auto token = token::EnrollmentToken::parse("0f8fad5b-d9cb-469f-a165-70867728950e");
    REQUIRE(token.has_value());
    token::TokenRecord record;
    record.hash = token->hash();
    record.profile = "wifi";
    record.device_id = "device-1";
    record.created_at = kNow - 60;
    record.expires_at = kNow + 60;
    return record;
}

}  // namespace

TEST_CASE("token JSON: an unused token is active, consumed_at null", "[proxy][enrollment_json]") {
    const nlohmann::json shown = proxy::token_record_json(record_at_rest(), kNow);
    CHECK(shown["state"] == "active");
    CHECK(shown["consumed_at"].is_null());
    CHECK(shown["transaction_id"].is_null());
    CHECK(shown["token_id"] == record_at_rest().hash.id());
    CHECK(shown["expires_at"] == "2027-01-15T08:01:00Z");
    CHECK(proxy::json_text(shown).find("0f8fad5b-d9cb") == std::string::npos);
}

TEST_CASE("token JSON: a consumed token says so, and when", "[proxy][enrollment_json]") {
    token::TokenRecord record = record_at_rest();
    record.transaction_id = "Oa3p1KShTUW7B2SyjwDwkieDwUQ=";
    record.consumed = true;
    record.consumed_at = kNow - 30;
    nlohmann::json shown = proxy::token_record_json(record, kNow);
    CHECK(shown["state"] == "consumed");
    CHECK(shown["consumed_at"] == "2027-01-15T07:59:30Z");
    CHECK(shown["transaction_id"] == "Oa3p1KShTUW7B2SyjwDwkieDwUQ=");
    // Still consumed once past its expiry: what happened to it outranks the clock.
    shown = proxy::token_record_json(record, record.expires_at + 1);
    CHECK(shown["state"] == "consumed");
    // A revocation after the certificate was issued outranks both; when it was consumed stays shown.
    record.revoked = true;
    shown = proxy::token_record_json(record, kNow);
    CHECK(shown["state"] == "revoked");
    CHECK(shown["consumed_at"] == "2027-01-15T07:59:30Z");
}

TEST_CASE("token JSON: expired and revoked tokens", "[proxy][enrollment_json]") {
    token::TokenRecord record = record_at_rest();
    CHECK(proxy::token_record_json(record, record.expires_at)["state"] == "expired");
    CHECK(proxy::token_record_json(record, record.expires_at - 1)["state"] == "active");
    record.revoked = true;
    CHECK(proxy::token_record_json(record, kNow)["state"] == "revoked");
    CHECK(proxy::token_record_json(record, kNow)["consumed_at"].is_null());
}
