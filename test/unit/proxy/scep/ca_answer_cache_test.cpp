// Tests for the per-worker GetCACert/GetCACaps answer cache and the capability check.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>

#include "proxy/scep/ca_answer_cache.h"

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
    CHECK(found == static_cast<int>(CaAnswerCache::kMaxNamedEntries));
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

namespace {
// DER of a throwaway self-signed CA certificate valid for `seconds_left` more seconds from `unix_now`.
std::string certificate_expiring(int64_t unix_now, int64_t seconds_left) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("cache test CA"), -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    ASN1_TIME_set(X509_getm_notBefore(cert), static_cast<time_t>(unix_now - 3600));
    ASN1_TIME_set(X509_getm_notAfter(cert), static_cast<time_t>(unix_now + seconds_left));
    X509_set_pubkey(cert, key);
    X509_sign(cert, key, EVP_sha256());
    unsigned char* der = nullptr;
    const int length = i2d_X509(cert, &der);
    std::string bytes(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
    OPENSSL_free(der);
    X509_free(cert);
    EVP_PKEY_free(key);
    return bytes;
}

constexpr int64_t kSecond = 1'000'000'000;
}  // namespace

TEST_CASE("a GetCACert answer is fresh for the ttl, never past its certificate's expiry", "[ca_answer_cache]") {
    const int64_t unix_now = 2'000'000'000;  // any instant: only differences matter
    const int64_t now = 5 * kSecond;         // the monotonic clock's reading at that instant
    CachedAnswer far = answer("GetCACert", "", "", 0);
    far.body = certificate_expiring(unix_now, 30 * 24 * 3600);
    set_cache_lifetime(far, now, 300 * kSecond, unix_now);
    CHECK(far.expires_ns == now + 300 * kSecond);
    CHECK(far.stale_until_ns == far.expires_ns + CaAnswerCache::kMaxStaleNs);

    CachedAnswer near = answer("GetCACert", "", "", 0);
    near.body = certificate_expiring(unix_now, 60);  // expires before the ttl is up
    set_cache_lifetime(near, now, 300 * kSecond, unix_now);
    CHECK(near.expires_ns == now + 60 * kSecond);
    CHECK(near.stale_until_ns == now + 60 * kSecond);

    CachedAnswer expired = answer("GetCACert", "", "", 0);
    expired.body = certificate_expiring(unix_now, -10);
    set_cache_lifetime(expired, now, 300 * kSecond, unix_now);
    CHECK(expired.expires_ns == now);  // never served from the cache
    CHECK(expired.stale_until_ns == now);

    CachedAnswer unreadable = answer("GetCACert", "", "not a certificate", 0);
    set_cache_lifetime(unreadable, now, 300 * kSecond, unix_now);
    CHECK(unreadable.expires_ns == now + 300 * kSecond);
    CachedAnswer caps = answer("GetCACaps", "", "POSTPKIOperation", 0);
    set_cache_lifetime(caps, now, 300 * kSecond, unix_now);
    CHECK(caps.expires_ns == now + 300 * kSecond);
}

TEST_CASE("after the ttl an answer is still there for an upstream failure, until its stale limit",
          "[ca_answer_cache]") {
    CaAnswerCache cache;
    CachedAnswer entry = answer("GetCACert", "", "ca", 100);
    entry.stale_until_ns = 500;
    cache.store(entry);
    CHECK(cache.find("GetCACert", "", 50));
    CHECK(cache.find_for_upstream_failure("GetCACert", "", 50));
    CHECK_FALSE(cache.find("GetCACert", "", 200));                   // expired: the upstream is asked
    REQUIRE(cache.find_for_upstream_failure("GetCACert", "", 200));  // ...and if it fails, served stale
    CHECK(cache.find_for_upstream_failure("GetCACert", "", 200)->body == "ca");
    CHECK_FALSE(cache.find_for_upstream_failure("GetCACert", "", 500));
    CHECK_FALSE(cache.find_for_upstream_failure("GetCACert", "other", 200));
}

TEST_CASE("a flood of other CA names doesn't evict the default answers, fresh or stale", "[ca_answer_cache]") {
    CaAnswerCache cache;
    CachedAnswer caps = answer("GetCACaps", "", "POSTPKIOperation", 100);
    caps.stale_until_ns = 500;
    cache.store(caps);
    CachedAnswer ca = answer("GetCACert", "", "ca-default", 100);
    ca.stale_until_ns = 500;
    cache.store(ca);
    CachedAnswer grouped = ca;  // a certificate group's default answer is kept the same way
    grouped.group = 7;
    grouped.body = "ca-group-7";
    cache.store(grouped);
    // Every other name expires later than the default answers: the old eviction took those first.
    for (int i = 0; i < 3 * static_cast<int>(CaAnswerCache::kMaxNamedEntries); ++i) {
        CachedAnswer other = answer("GetCACert", ("flood-" + std::to_string(i)).c_str(), "x", 1000 + i);
        other.stale_until_ns = 5000;
        cache.store(other);
    }
    REQUIRE(cache.find("GetCACert", "", 50));
    CHECK(cache.find("GetCACert", "", 50)->body == "ca-default");
    CHECK(cache.find("GetCACert", "", 50, 7)->body == "ca-group-7");
    CHECK(cache.find("GetCACaps", "", 50));
    REQUIRE(cache.find_for_upstream_failure("GetCACert", "", 200));  // expired, upstream down: still there
    CHECK(cache.find_for_upstream_failure("GetCACert", "", 200)->body == "ca-default");
    CHECK(cache.find_for_upstream_failure("GetCACaps", "", 200));
    CHECK(cache.find("GetCACert", "flood-47", 50));  // the names still share their own slots
    CHECK_FALSE(cache.find("GetCACert", "flood-0", 50));
}

TEST_CASE("a CA name in use survives a flood of new names; the flood evicts its own entries", "[ca_answer_cache]") {
    CaAnswerCache cache;
    CachedAnswer used = answer("GetCACert", "fleet-ca", "ca-fleet", 100);
    used.stale_until_ns = 500;
    cache.store(used);
    for (int device = 0; device < 3; ++device) CHECK(cache.find("GetCACert", "fleet-ca", 50));
    for (int i = 0; i < 3 * static_cast<int>(CaAnswerCache::kMaxNamedEntries); ++i)
        cache.store(answer("GetCACert", ("flood-" + std::to_string(i)).c_str(), "x", 1000 + i));
    REQUIRE(cache.find("GetCACert", "fleet-ca", 50));
    CHECK(cache.find("GetCACert", "fleet-ca", 50)->body == "ca-fleet");
    CHECK(cache.find_for_upstream_failure("GetCACert", "fleet-ca", 200));
    int flood_kept = 0;
    for (int i = 0; i < 3 * static_cast<int>(CaAnswerCache::kMaxNamedEntries); ++i)
        flood_kept += cache.find("GetCACert", "flood-" + std::to_string(i), 0) != nullptr;
    CHECK(flood_kept == static_cast<int>(CaAnswerCache::kMaxNamedEntries) - 1);
}
