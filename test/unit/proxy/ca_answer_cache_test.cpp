// Tests for the per-worker GetCACert/GetCACaps answer cache and the capability check.
#include <catch2/catch.hpp>

#include "proxy/ca_answer_cache.h"

using namespace scepproxy::proxy;

namespace {
CachedAnswer answer(const char* op, const char* message, const char* body, int64_t expires) {
    CachedAnswer a;
    a.operation = op;
    a.message = message;
    a.content_type = "text/plain";
    a.body = body;
    a.expires_ns = expires;
    return a;
}
}  // namespace

TEST_CASE("finds fresh entries by operation and message, not expired ones", "[ca_answer_cache]") {
    CaAnswerCache cache;
    cache.store(answer("GetCACert", "", "ca-default", 100));
    cache.store(answer("GetCACert", "CA2", "ca-two", 100));
    REQUIRE(cache.find("GetCACert", "", 50));
    CHECK(cache.find("GetCACert", "", 50)->body == "ca-default");
    CHECK(cache.find("GetCACert", "CA2", 50)->body == "ca-two");
    CHECK_FALSE(cache.find("GetCACaps", "", 50));
    CHECK_FALSE(cache.find("GetCACert", "", 100));  // expiry is exclusive
    cache.store(answer("GetCACert", "", "replaced", 200));
    CHECK(cache.find("GetCACert", "", 150)->body == "replaced");
}

TEST_CASE("stays bounded whatever messages clients send", "[ca_answer_cache]") {
    CaAnswerCache cache;
    for (int i = 0; i < 1000; ++i) cache.store(answer("GetCACert", std::to_string(i).c_str(), "x", 1000 + i));
    int found = 0;
    for (int i = 0; i < 1000; ++i) found += cache.find("GetCACert", std::to_string(i), 0) != nullptr;
    CHECK(found == static_cast<int>(CaAnswerCache::kMaxEntries));
    CHECK(cache.find("GetCACert", "999", 0));  // the newest survive
    CHECK_FALSE(CaAnswerCache::cacheable(std::string(CaAnswerCache::kMaxMessageBytes + 1, 'a'), 10));
    CHECK_FALSE(CaAnswerCache::cacheable("", CaAnswerCache::kMaxBodyBytes + 1));
}

TEST_CASE("capability keywords match whole lines, case-insensitively", "[ca_answer_cache]") {
    const char* ndes = "POSTPKIOperation\r\nRenewal\r\nSHA-512\r\nSHA-256\r\nSHA-1\r\nDES3\r\n";
    CHECK(caps_list_has(ndes, "Renewal"));
    CHECK(caps_list_has(ndes, "postpkioperation"));
    CHECK_FALSE(caps_list_has(ndes, "GetNextCACert"));
    CHECK_FALSE(caps_list_has(ndes, "SHA"));
    CHECK(caps_list_has("AES\nGetNextCACert", "GetNextCACert"));
    CHECK_FALSE(caps_list_has("", "AES"));
}

TEST_CASE("POSTPKIOperation is added once, in the answer's own line endings", "[ca_answer_cache]") {
    CHECK(caps_with_post_pki_operation("Renewal\r\nSHA-256\r\n") == "Renewal\r\nSHA-256\r\nPOSTPKIOperation\r\n");
    CHECK(caps_with_post_pki_operation("Renewal\nSHA-256") == "Renewal\nSHA-256\nPOSTPKIOperation");
    CHECK(caps_with_post_pki_operation("") == "POSTPKIOperation");
    const std::string listed = "POSTPKIOperation\nRenewal\n";
    CHECK(caps_with_post_pki_operation(listed) == listed);
    CHECK(caps_with_post_pki_operation("postpkioperation") == "postpkioperation");
}
