// Tests for ScepRequestHandler: every decision it makes, driven through fakes of its connection, store and upstreams.
#include "proxy/scep/scep_request_handler.h"

#include <catch2/catch.hpp>

#include <limits>
#include <memory>
#include <set>

#include "pkcs7/ca_certificates.h"
#include "pkcs7/scep_message_encoding.h"
#include "proxy/scep/profile_certificates.h"
#include "test/unit/pkcs7/pkcs7_fixtures.h"
#include "test/unit/pkcs7/scep_message_builder.h"
#include "test/unit/proxy/scep/scep_handler_fakes.h"
#include "token/enrollment_token.h"

namespace scepproxy::proxy {
namespace {

using test::FakeChannel;
using test::FakeHost;
using test::FakeStoreSession;
namespace p7 = pkcs7::test;

const std::string& token_text() {
    static const std::string text = token::EnrollmentToken::generate()->to_guid();
    return text;
}

// A request as the connection hands it over; the views point into this object, so it stays put.
struct TestRequest {
    TestRequest(http::HttpMethod method, std::string operation, std::string extra_query = {},
                std::string body_bytes = {}, std::string path_text = {})
        : path(path_text.empty() ? "/scep/" + token_text() + "/pkiclient.exe" : std::move(path_text)),
          query("operation=" + operation + extra_query),
          body(std::move(body_bytes)) {
        head.method = method;
        head.method_text = method == http::HttpMethod::post ? "POST" : "GET";
        head.path = path;
        head.query = query;
    }
    // A copy points into its own strings.
    TestRequest(const TestRequest& other) : path(other.path), query(other.query), body(other.body), head(other.head) {
        head.path = path;
        head.query = query;
    }
    IncomingRequest incoming() const { return {head, body}; }

    std::string path;
    std::string query;
    std::string body;
    http::HttpRequest head;
};

std::string der_text(const std::vector<uint8_t>& der) { return std::string(der.begin(), der.end()); }

const p7::TestSigner& device_signer() {
    static const p7::TestSigner signer = p7::make_test_signer("device", 7);
    return signer;
}

std::string pkcs_req() {
    p7::TestMessage message;
    message.attributes = p7::pkcs_req_attributes();
    return der_text(p7::build_signed_message(device_signer(), message));
}

std::string message_of_type(const char* type) {
    p7::TestMessage message;
    message.attributes = {p7::printable(p7::scep_oid::message_type, type),
                          p7::printable(p7::scep_oid::transaction_id, p7::kTestTransactionId),
                          p7::octets(p7::scep_oid::sender_nonce, p7::kTestSenderNonce)};
    return der_text(p7::build_signed_message(device_signer(), message));
}

// "0" SUCCESS, "2" FAILURE, "3" PENDING.
std::string cert_rep(const std::string& pki_status) {
    static const p7::TestSigner ra = p7::make_test_signer("ra", 9);
    p7::TestMessage message;
    message.attributes = p7::cert_rep_attributes(pki_status);
    return der_text(p7::build_signed_message(ra, message));
}

constexpr std::string_view kCapsWithPost = "POSTPKIOperation\nSHA-256\nAES\n";
constexpr std::string_view kCapsGetOnly = "SHA-256\nAES\nGetNextCACert\n";
constexpr std::string_view kCaCert = "stand-in for the CA certificates";

// One handler on one fake connection of a fake worker.
struct Fixture {
    explicit Fixture(size_t upstreams = 2, std::function<void(conf::ProfileConfig&)> configure = {})
        : host(upstreams, std::move(configure)),
          handler(std::make_unique<ScepRequestHandler>(host, LimitKey{}, ClientConnectionCounter::Slot{})) {}

    // The request is kept: the handler reads its views until it has answered.
    void send(const TestRequest& request) {
        sent.push_back(std::make_unique<TestRequest>(request));
        handler->handle(channel, sent.back()->incoming());
    }
    const test::RecordedAnswer& answer() const {
        REQUIRE(channel.answers.size() == 1);
        return channel.answers.back();
    }
    void cache_caps(std::string_view caps) {
        CachedAnswer answer;
        answer.operation = "GetCACaps";
        answer.content_type = "text/plain";
        answer.body = std::string(caps);
        answer.expires_ns = std::numeric_limits<int64_t>::max();
        answer.stale_until_ns = std::numeric_limits<int64_t>::max();
        host.generation->profiles[0].ca_cache.store(answer);
    }

    FakeHost host;
    FakeChannel channel;
    std::vector<std::unique_ptr<TestRequest>> sent;
    std::unique_ptr<ScepRequestHandler> handler;
};

// The upstream exchange in flight, wherever it went.
test::FakeEndpoint& busy_upstream(FakeHost& host) {
    for (auto& endpoint : host.endpoints)
        if (!endpoint->exchanges.empty() && !endpoint->last().done()) return *endpoint;
    FAIL("no upstream exchange in flight");
    return *host.endpoints[0];
}

bool request_line_starts(const test::FakeEndpoint& endpoint, std::string_view start) {
    return endpoint.exchanges.back()->request.rfind(start, 0) == 0;
}

// --- routing and token verdicts ------------------------------------------------------------

TEST_CASE("requests the handler refuses before the store: each with its status and reason", "[proxy][scep][handler]") {
    Fixture f;
    SECTION("not a SCEP path") {
        f.send(TestRequest(http::HttpMethod::get, "GetCACert", {}, {}, "/other"));
        CHECK(f.answer().status == 404);
        CHECK(f.answer().reason == "not_found");
    }
    SECTION("a method SCEP doesn't use") {
        f.send(TestRequest(http::HttpMethod::other, "GetCACert"));
        CHECK(f.answer().status == 405);
    }
    SECTION("GetCACert by POST") {
        f.send(TestRequest(http::HttpMethod::post, "GetCACert", {}, "x"));
        CHECK(f.answer().status == 405);
        CHECK(f.answer().reason == "method_not_allowed");
    }
    SECTION("no operation") {
        TestRequest request(http::HttpMethod::get, "GetCACert");
        request.query = "message=x";
        request.head.query = request.query;
        f.send(request);
        CHECK(f.answer().status == 400);
        CHECK(f.answer().reason == "missing_operation");
    }
    SECTION("a token that is no GUID") {
        f.send(TestRequest(http::HttpMethod::get, "GetCACert", {}, {}, "/scep/not-a-guid/pkiclient.exe"));
        CHECK(f.answer().status == 403);
        CHECK(f.answer().reason == "token_malformed");
        CHECK(f.answer().body == "invalid_token");
    }
    SECTION("a PKIOperation without its message") {
        f.send(TestRequest(http::HttpMethod::post, "PKIOperation"));
        CHECK(f.answer().status == 400);
        CHECK(f.answer().reason == "missing_message");
    }
    CHECK(f.host.store.calls.empty());
    CHECK(f.host.exchanges() == 0);
    CHECK(f.handler->phase() == ScepPhase::idle);
}

TEST_CASE("the store's verdict on the token decides the answer; unknown, expired and revoked look alike",
          "[proxy][scep][handler]") {
    Fixture f;
    using V = token::AccessVerdict;
    struct Case {
        V verdict;
        int status;
        std::string reason;
        std::string body;
    };
    const Case c = GENERATE(Case{V::token_unknown, 403, "token_unknown", "invalid_token"},
                            Case{V::token_expired, 403, "token_expired", "invalid_token"},
                            Case{V::token_revoked, 403, "token_revoked", "invalid_token"},
                            Case{V::device_not_enrolled, 403, "device_not_enrolled", "device_not_enrolled"},
                            Case{V::device_not_compliant, 403, "device_not_compliant", "device_not_compliant"},
                            Case{V::store_unavailable, 503, "store_unavailable", "store_unavailable"});
    f.host.store.access_answer = test::access_decision(c.verdict, "corp");
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    CHECK(f.handler->phase() == ScepPhase::awaiting_access);
    CHECK(f.handler->store_calls_owed() == 1);
    REQUIRE(f.host.store.calls.front().access.check_device);  // PKIOperation: the device is checked too
    f.host.store.deliver_all();
    CHECK(f.answer().status == c.status);
    CHECK(f.answer().reason == c.reason);
    CHECK(f.answer().body == c.body);
    CHECK(f.handler->store_calls_owed() == 0);
    CHECK(f.host.exchanges() == 0);
}

TEST_CASE("a token whose profile the configuration no longer has is refused like an unknown one",
          "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.access_answer = test::access_decision(token::AccessVerdict::allow, "gone");
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
    CHECK(f.answer().status == 403);
    CHECK(f.answer().reason == "profile_unknown");
    CHECK(f.answer().body == "invalid_token");
}

// --- the pkiMessage and the transaction binding ---------------------------------------------

TEST_CASE("PKIOperation messages the proxy can't read or doesn't forward are answered 400, never sent upstream",
          "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.synchronous = true;
    SECTION("not DER") {
        f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, "not a pkiMessage"));
        CHECK(f.answer().reason == "malformed_message");
    }
    SECTION("truncated") {
        std::string message = pkcs_req();
        message.resize(message.size() / 2);
        f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, message));
        CHECK(f.answer().reason == "malformed_message");
    }
    SECTION("bad base64 in a GET message=") {
        f.send(TestRequest(http::HttpMethod::get, "PKIOperation", "&message=%%%%"));
        CHECK(f.answer().reason == "malformed_message");
    }
    SECTION("a CertRep from a device") {
        f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, cert_rep("0")));
        CHECK(f.answer().reason == "message_type_not_allowed");
    }
    SECTION("GetCert when the profile doesn't allow it") {
        f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, message_of_type("21")));
        CHECK(f.answer().reason == "message_type_not_allowed");
    }
    CHECK(f.answer().status == 400);
    CHECK(f.host.exchanges() == 0);
    CHECK(f.host.store.calls.empty());  // the access check was answered; no binding was asked
}

TEST_CASE("a bound or already bound transaction goes upstream", "[proxy][scep][handler]") {
    Fixture f;
    f.cache_caps(kCapsWithPost);
    f.host.store.bind_answer.verdict = GENERATE(token::BindVerdict::bound, token::BindVerdict::already_bound);
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    f.host.store.deliver_next();  // access
    CHECK(f.handler->phase() == ScepPhase::awaiting_bind);
    REQUIRE(f.host.store.calls.front().kind == FakeStoreSession::Kind::bind);
    CHECK(f.host.store.calls.front().bind.transaction_id == p7::kTestTransactionId);
    CHECK(f.host.store.calls.front().bind.may_bind);
    f.host.store.deliver_next();
    CHECK(f.handler->phase() == ScepPhase::forwarding);
    CHECK(f.channel.answers.empty());
    CHECK(request_line_starts(busy_upstream(f.host), "POST /certsrv/mscep/mscep.dll?operation=PKIOperation"));
}

TEST_CASE("the binding's refusals, each with its status and reason", "[proxy][scep][handler]") {
    using B = token::BindVerdict;
    struct Case {
        B verdict;
        int status;
        std::string reason;
    };
    const Case c =
        GENERATE(Case{B::transaction_mismatch, 403, "transaction_mismatch"},
                 Case{B::not_bound, 403, "transaction_mismatch"}, Case{B::token_consumed, 403, "token_consumed"},
                 Case{B::token_revoked, 403, "token_revoked"}, Case{B::transaction_invalid, 400, "malformed_message"},
                 Case{B::store_unavailable, 503, "store_unavailable"});
    Fixture f;
    f.cache_caps(kCapsWithPost);
    f.host.store.bind_answer.verdict = c.verdict;
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    CHECK(f.answer().status == c.status);
    CHECK(f.answer().reason == c.reason);
    CHECK(f.host.exchanges() == 0);
}

TEST_CASE("a CertPoll only checks the binding, never binds", "[proxy][scep][handler]") {
    Fixture f;
    f.cache_caps(kCapsWithPost);
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, message_of_type("20")));
    f.host.store.deliver_next();
    REQUIRE(f.host.store.calls.front().kind == FakeStoreSession::Kind::bind);
    CHECK_FALSE(f.host.store.calls.front().bind.may_bind);
}

TEST_CASE("the CertRep's pkiStatus ends the transaction: SUCCESS consumes, FAILURE releases, PENDING keeps",
          "[proxy][scep][handler]") {
    struct Case {
        std::string status;
        std::optional<token::TransactionEnd> end;
        std::string logged;
    };
    const Case c = GENERATE(Case{"0", token::TransactionEnd::consume, "SUCCESS"},
                            Case{"2", token::TransactionEnd::release, "FAILURE"}, Case{"3", std::nullopt, "PENDING"});
    Fixture f;
    f.cache_caps(kCapsWithPost);
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    const std::string rep = cert_rep(c.status);
    busy_upstream(f.host).answer(200, "application/x-pki-message", rep);
    CHECK(f.answer().status == 200);
    CHECK(f.answer().ended);
    CHECK(f.answer().body == rep);  // unchanged, byte for byte
    CHECK(f.answer().reason == "forwarded");
    if (c.end) {
        REQUIRE(f.host.store.finished.size() == 1);
        CHECK(f.host.store.finished[0].finish.end == *c.end);
        CHECK(f.host.store.finished[0].finish.transaction_id == p7::kTestTransactionId);
        // The worker, not the handler, takes the store's reply.
        CHECK(f.host.store.finished[0].done == &f.host.finish_logger);
        CHECK(f.host.finish_logger.results.size() == 1);
    } else {
        CHECK(f.host.store.finished.empty());
    }
    CHECK(f.handler->phase() == ScepPhase::idle);
    CHECK(f.handler->store_calls_owed() == 0);
}

TEST_CASE("with release_on_failure off, a FAILURE consumes the token too", "[proxy][scep][handler]") {
    Fixture f(1, [](conf::ProfileConfig& p) { p.release_on_failure = false; });
    f.cache_caps(kCapsWithPost);
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    busy_upstream(f.host).answer(200, "application/x-pki-message", cert_rep("2"));
    REQUIRE(f.host.store.finished.size() == 1);
    CHECK(f.host.store.finished[0].finish.end == token::TransactionEnd::consume);
}

TEST_CASE("an upstream answer that is no CertRep is forwarded and finishes nothing", "[proxy][scep][handler]") {
    Fixture f;
    f.cache_caps(kCapsWithPost);
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    busy_upstream(f.host).answer(200, "application/x-pki-message", "garbage");
    CHECK(f.answer().status == 200);
    CHECK(f.answer().body == "garbage");
    CHECK(f.host.store.finished.empty());
}

// --- capabilities: probing, GET <-> POST ------------------------------------------------------

TEST_CASE("a GET PKIOperation with no capabilities known asks GetCACaps first, then sends as they allow",
          "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.synchronous = true;
    const std::string message = pkcs_req();
    const std::string param = pkcs7::encode_message_parameter(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(message.data()), message.size()));
    f.send(TestRequest(http::HttpMethod::get, "PKIOperation", "&message=" + param));
    CHECK(f.handler->phase() == ScepPhase::probing_caps);
    test::FakeEndpoint& prober = busy_upstream(f.host);
    CHECK(request_line_starts(prober, "GET /certsrv/mscep/mscep.dll?operation=GetCACaps"));
    SECTION("the upstream takes POST: the device's GET goes up as a POST") {
        prober.answer(200, "text/plain", kCapsWithPost);
        CHECK(f.handler->phase() == ScepPhase::forwarding);
        // The probe's answer is cached for the next request.
        CHECK(f.host.generation->profiles[0].ca_cache.find("GetCACaps", "", 0)->body == kCapsWithPost);
        test::FakeEndpoint& forwarder = busy_upstream(f.host);
        CHECK(request_line_starts(forwarder, "POST /certsrv/mscep/mscep.dll?operation=PKIOperation"));
        CHECK(forwarder.last().request.find(message) != std::string::npos);
    }
    SECTION("the upstream takes only GET: sent as GET with the message canonically encoded") {
        prober.answer(200, "text/plain", kCapsGetOnly);
        test::FakeEndpoint& forwarder = busy_upstream(f.host);
        CHECK(request_line_starts(forwarder, "GET /certsrv/mscep/mscep.dll?operation=PKIOperation&message="));
    }
    SECTION("the probe fails: 502, nothing forwarded") {
        prober.answer(503, "text/plain", "busy");
        // Retried once elsewhere (a probe is idempotent), then given up.
        busy_upstream(f.host).answer(503, "text/plain", "busy");
        CHECK(f.answer().status == 502);
        CHECK(f.answer().reason == "upstream_caps_unavailable");
        CHECK(f.host.exchanges() == 2);
    }
}

TEST_CASE("a POST PKIOperation is forwarded at once as POST when no capabilities are known", "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    CHECK(f.handler->phase() == ScepPhase::forwarding);
    CHECK(f.host.exchanges() == 1);
    CHECK(request_line_starts(busy_upstream(f.host), "POST /certsrv/mscep/mscep.dll?operation=PKIOperation"));
}

TEST_CASE("other operations go upstream only when the upstream's capabilities list them", "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.synchronous = true;
    f.cache_caps(GENERATE(kCapsWithPost, kCapsGetOnly));
    f.send(TestRequest(http::HttpMethod::get, "GetNextCACert"));
    if (caps_list_has(f.host.generation->profiles[0].ca_cache.find("GetCACaps", "", 0)->body, "GetNextCACert")) {
        CHECK(request_line_starts(busy_upstream(f.host), "GET /certsrv/mscep/mscep.dll?operation=GetNextCACert"));
    } else {
        CHECK(f.answer().status == 400);
        CHECK(f.answer().reason == "operation_not_supported");
        CHECK(f.host.exchanges() == 0);
    }
}

// --- GetCACert / GetCACaps: cache, hold, single flight, stale-if-error ---------------------------

TEST_CASE("GetCACert: fetched once, then answered from the cache", "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
    busy_upstream(f.host).answer(200, "application/x-x509-ca-ra-cert", kCaCert);
    CHECK(f.answer().status == 200);
    CHECK(f.answer().streamed);
    f.channel.answers.clear();
    f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
    CHECK(f.answer().reason == "cache_hit");
    CHECK(f.answer().body == kCaCert);
    CHECK(f.host.exchanges() == 1);
}

TEST_CASE("GetCACaps is held and shown with POSTPKIOperation; a non-200 passes unchanged", "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::get, "GetCACaps"));
    SECTION("200") {
        busy_upstream(f.host).answer(200, "text/plain", kCapsGetOnly);
        CHECK_FALSE(f.answer().streamed);
        CHECK(f.answer().body == caps_with_post_pki_operation(kCapsGetOnly));
        // The cache keeps the upstream's own words.
        CHECK(f.host.generation->profiles[0].ca_cache.find("GetCACaps", "", 0)->body == kCapsGetOnly);
    }
    SECTION("404") {
        busy_upstream(f.host).answer(404, "text/html", "no such page");
        CHECK(f.answer().status == 404);
        CHECK(f.answer().body == "no such page");
        CHECK(f.answer().content_type == "text/plain");
    }
}

TEST_CASE("concurrent GetCACert misses make one upstream fetch; the waiters answer from its result",
          "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.synchronous = true;
    FakeChannel second_channel;
    ScepRequestHandler second(f.host, LimitKey{}, ClientConnectionCounter::Slot{});
    TestRequest first_request(http::HttpMethod::get, "GetCACert");
    TestRequest second_request(http::HttpMethod::get, "GetCACert");
    f.send(first_request);
    second.handle(second_channel, second_request.incoming());
    CHECK(second.phase() == ScepPhase::awaiting_ca_fetch);
    CHECK(f.host.exchanges() == 1);
    SECTION("the fetch succeeds") {
        busy_upstream(f.host).answer(200, "application/x-x509-ca-ra-cert", kCaCert);
        REQUIRE(second_channel.answers.size() == 1);
        CHECK(second_channel.answers[0].reason == "cache_hit");
        CHECK(f.host.exchanges() == 1);
    }
    SECTION("the leader goes away: the waiter asks the upstream itself") {
        f.handler->on_abort();
        CHECK(second.phase() == ScepPhase::forwarding);
        CHECK(f.host.exchanges() == 2);
        second.on_abort();
    }
}

TEST_CASE("stale-if-error: GetCACert gets the cached answer when every upstream fails", "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.synchronous = true;
    CachedAnswer stale;
    stale.operation = "GetCACert";
    stale.content_type = "application/x-x509-ca-ra-cert";
    stale.body = std::string(kCaCert);
    stale.expires_ns = 0;  // no longer fresh
    stale.stale_until_ns = std::numeric_limits<int64_t>::max();
    f.host.generation->profiles[0].ca_cache.store(stale);
    f.host.upstream(0).refuse_connections = GENERATE(true, false);
    f.host.upstream(1).refuse_connections = f.host.upstream(0).refuse_connections;
    f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
    if (!f.host.upstream(0).refuse_connections) {
        busy_upstream(f.host).fail(UpstreamFailure::response_timeout, true);
        busy_upstream(f.host).fail(UpstreamFailure::response_timeout, true);
    }
    CHECK(f.answer().status == 200);
    CHECK(f.answer().reason == "cache_stale");
    CHECK(f.answer().body == kCaCert);
}

// --- retries and cut answers -------------------------------------------------------------------

TEST_CASE("a GetCACert's server error is dropped and asked of the other upstream", "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
    test::FakeEndpoint& first = busy_upstream(f.host);
    first.answer(500, "text/html", "internal error");
    CHECK(f.channel.answers.empty());
    test::FakeEndpoint& second = busy_upstream(f.host);
    CHECK(&second != &first);
    second.answer(200, "application/x-x509-ca-ra-cert", kCaCert);
    CHECK(f.answer().status == 200);
    CHECK(f.answer().body == kCaCert);
}

TEST_CASE("when both upstreams answer a GetCACert with a server error, the device gets the second's",
          "[proxy][scep][handler]") {
    Fixture f;
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
    busy_upstream(f.host).answer(500, "text/html", "first");
    busy_upstream(f.host).answer(503, "text/html", "second");
    CHECK(f.answer().status == 503);
    CHECK(f.answer().body == "second");
    CHECK(f.host.exchanges() == 2);
}

TEST_CASE("a PKIOperation's server error goes to the device as it is: never sent twice", "[proxy][scep][handler]") {
    Fixture f;
    f.cache_caps(kCapsWithPost);
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    busy_upstream(f.host).answer(500, "text/html", "crypto/rsa: decryption error");
    CHECK(f.answer().status == 500);
    CHECK(f.answer().body == "crypto/rsa: decryption error");
    CHECK(f.host.exchanges() == 1);
    CHECK(f.host.store.finished.empty());
}

TEST_CASE("a PKIOperation is retried elsewhere only when no byte of it went out", "[proxy][scep][handler]") {
    Fixture f;
    f.cache_caps(kCapsWithPost);
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    test::FakeEndpoint& first = busy_upstream(f.host);
    SECTION("connect failed, nothing sent: the other upstream") {
        first.fail(UpstreamFailure::connect_failed, false);
        CHECK(f.channel.answers.empty());
        CHECK(f.host.exchanges() == 2);
        busy_upstream(f.host).fail(UpstreamFailure::connect_failed, false);
        CHECK(f.answer().status == 502);
        CHECK(f.answer().reason == "upstream_connect_failed");
        CHECK(f.answer().body == "upstream_unavailable");
    }
    SECTION("timed out after sending: 504, not retried") {
        first.fail(UpstreamFailure::response_timeout, true);
        CHECK(f.answer().status == 504);
        CHECK(f.answer().reason == "upstream_timeout");
        CHECK(f.host.exchanges() == 1);
    }
    SECTION("closed early after sending: 502 upstream_error") {
        first.fail(UpstreamFailure::closed_early, true);
        CHECK(f.answer().status == 502);
        CHECK(f.answer().body == "upstream_error");
        CHECK(f.host.exchanges() == 1);
    }
}

TEST_CASE("no upstream connection can even be started: 502 upstream_connect_failed", "[proxy][scep][handler]") {
    Fixture f;
    f.cache_caps(kCapsWithPost);
    f.host.store.synchronous = true;
    f.host.upstream(0).refuse_connections = true;
    f.host.upstream(1).refuse_connections = true;
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    CHECK(f.answer().status == 502);
    CHECK(f.answer().reason == "upstream_connect_failed");
    CHECK(f.handler->phase() == ScepPhase::idle);
}

TEST_CASE("an answer cut after it began streaming is cut for the device too", "[proxy][scep][handler]") {
    Fixture f;
    f.cache_caps(kCapsWithPost);
    f.host.store.synchronous = true;
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    test::FakeEndpoint& upstream = busy_upstream(f.host);
    http::HttpResponse head;
    head.status = 200;
    head.content_type = "application/x-pki-message";
    head.content_length = 100;
    head.framing = http::BodyFraming::content_length;
    upstream.last().sink->on_upstream_head(head);
    upstream.last().sink->on_upstream_body("part");
    upstream.fail(UpstreamFailure::closed_early, true, true);
    CHECK(f.answer().aborted);
    CHECK(f.answer().body == "part");
    CHECK(f.answer().reason == "upstream_closed");
    CHECK(f.host.exchanges() == 1);
    CHECK(f.host.store.finished.empty());
}

// --- aborts and lifetimes ------------------------------------------------------------------------

TEST_CASE("an abort while upstream abandons the exchange; while waiting for the store, cancels the call",
          "[proxy][scep][handler]") {
    Fixture f;
    f.cache_caps(kCapsWithPost);
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
    SECTION("awaiting access") { f.handler->on_abort(); }
    SECTION("awaiting the binding") {
        f.host.store.deliver_next();
        CHECK(f.handler->phase() == ScepPhase::awaiting_bind);
        f.handler->on_abort();
    }
    SECTION("upstream") {
        f.host.store.deliver_all();
        test::FakeEndpoint& upstream = busy_upstream(f.host);
        f.handler->on_abort();
        CHECK(upstream.last().abandoned);
    }
    CHECK(f.handler->phase() == ScepPhase::idle);
    CHECK(f.handler->store_calls_owed() == 0);
    CHECK(f.host.store.pending_for(f.handler.get()) == 0);
    CHECK(f.channel.answers.empty());
}

// The lifetime bug this handler was rebuilt for: request A's transaction finish and the next
// pipelined request B's access check both pending for one handler. The old handler kept one
// "awaiting the store" bool: A's answer cleared it, so an abort skipped cancel() and B's answer
// later reached a freed handler. Now the worker takes A's answer and every call still owed is
// cancelled. Under ASan, a call delivered to the freed handler would be a heap-use-after-free; in
// any build, a call still pending for it fails the check before anything is delivered.
TEST_CASE("a pipelined request's store call and the previous transaction's finish can't outlive the handler",
          "[proxy][scep][handler][lifetime]") {
    Fixture f;
    f.cache_caps(kCapsWithPost);
    TestRequest a(http::HttpMethod::post, "PKIOperation", {}, pkcs_req());
    TestRequest b(http::HttpMethod::post, "PKIOperation", {}, pkcs_req());
    f.send(a);
    f.host.store.deliver_next();  // A's access
    f.host.store.deliver_next();  // A's binding: A goes upstream
    // A's answer completes; the connection starts B from inside that call, as it does when pipelined.
    f.channel.after_answer = [&] { f.send(b); };
    busy_upstream(f.host).answer(200, "application/x-pki-message", cert_rep("2"));
    REQUIRE(f.host.store.calls.size() == 2);  // B's access check and A's finish, both pending
    const bool finish_first = GENERATE(true, false);
    if (finish_first) {
        // A's finish is answered first (a store thread may answer in any order).
        auto finish = std::find_if(f.host.store.calls.begin(), f.host.store.calls.end(),
                                   [](const auto& c) { return c.kind == FakeStoreSession::Kind::finish; });
        REQUIRE(finish != f.host.store.calls.end());
        std::rotate(f.host.store.calls.begin(), finish, finish + 1);
        f.host.store.deliver_next();
    }
    // The client resets: the connection aborts B and frees the handler.
    const token::SessionCallback* freed = f.handler.get();
    f.handler->on_abort();
    f.handler.reset();
    CHECK(f.host.store.pending_for(freed) == 0);
    f.host.store.deliver_all();  // whatever is left goes to someone alive
    CHECK(f.host.finish_logger.results.size() == 1);
    REQUIRE(f.host.store.finished.size() == 1);
    CHECK(f.host.store.finished[0].finish.end == token::TransactionEnd::release);
}

TEST_CASE("a handler destroyed with its worker while a store call is owed cancels it",
          "[proxy][scep][handler][lifetime]") {
    Fixture f;
    f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
    const token::SessionCallback* freed = f.handler.get();
    f.handler.reset();
    CHECK(f.host.store.pending_for(freed) == 0);
    CHECK(f.host.store.cancels == 1);
}

TEST_CASE("over the token's request rate: 429 with Retry-After, before the store", "[proxy][scep][handler]") {
    Fixture f;
    f.host.token_limiter = std::make_unique<RateLimiter>(RateLimit{1, 1}, 16);
    f.host.store.synchronous = true;
    f.cache_caps(kCapsGetOnly);
    f.send(TestRequest(http::HttpMethod::get, "GetCACaps"));
    CHECK(f.answer().reason == "cache_hit");
    f.channel.answers.clear();
    f.host.store.calls.clear();
    f.send(TestRequest(http::HttpMethod::get, "GetCACaps"));
    CHECK(f.answer().status == 429);
    CHECK(f.answer().reason == "token_rate_limited");
    CHECK(f.answer().extra_header_lines.rfind("Retry-After: ", 0) == 0);
    CHECK(f.host.store.calls.empty());
}

// --- several upstreams with different CA/RA certificates ------------------------------------

pkcs7::CaCertificates ca_answer(const std::string& fixture) {
    const auto parsed = pkcs7::parse_ca_certificates(pkcs7::test::read_fixture(fixture));
    REQUIRE(parsed.ok());
    return *parsed.value;
}

// scepserver's answer (the CA only: devices encrypt to it) and NDES's (RA signing, RA encryption, CA).
pkcs7::CaCertificates scepserver_answer() { return ca_answer("getcacert-single.der"); }
pkcs7::CaCertificates ndes_answer() { return ca_answer("getcacert-ra-chain.p7b"); }
// Another NDES: the same chain without its RA signing certificate, so a group of its own.
pkcs7::CaCertificates other_ndes_answer() {
    pkcs7::CaCertificates answer = ndes_answer();
    std::erase_if(answer.certificates, [](const pkcs7::CertificateSummary& certificate) {
        return certificate.role == pkcs7::CertificateRole::ra_signing;
    });
    return answer;
}

// scepclient's PKCSReq, encrypted to the CA of getcacert-single.der.
std::string scepclient_pkcs_req() {
    const std::vector<uint8_t> der = pkcs7::test::read_fixture("pkcsreq.der");
    return der_text(der);
}

void publish_groups(ProfileCertificates& board, const std::vector<std::optional<pkcs7::CaCertificates>>& upstreams) {
    board.publish(std::make_shared<const UpstreamCertificateGroups>(UpstreamCertificateGroups::build(upstreams)));
}

TEST_CASE("different certificates: a PKIOperation goes only to the upstreams holding its recipient",
          "[proxy][scep][handler][routing]") {
    ProfileCertificates board;
    Fixture f(3);
    f.host.generation->profiles[0].certificates = &board;
    // Upstreams 0 and 2 hold scepserver's CA, upstream 1 is an NDES of its own.
    publish_groups(board, {scepserver_answer(), ndes_answer(), scepserver_answer()});
    f.cache_caps(kCapsWithPost);
    f.host.store.synchronous = true;
    for (int i = 0; i < 4; ++i) {
        f.channel.answers.clear();
        f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, scepclient_pkcs_req()));
        test::FakeEndpoint& chosen = busy_upstream(f.host);
        CHECK(&chosen != &f.host.upstream(1));
        chosen.answer(200, "application/x-pki-message", cert_rep("3"));
        CHECK(f.answer().status == 200);
    }
    CHECK(f.host.upstream(1).exchanges.empty());
    // Round-robin within the group: both of its upstreams took some.
    CHECK_FALSE(f.host.upstream(0).exchanges.empty());
    CHECK_FALSE(f.host.upstream(2).exchanges.empty());

    SECTION("failover stays within the group") {
        f.channel.answers.clear();
        f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, scepclient_pkcs_req()));
        busy_upstream(f.host).fail(UpstreamFailure::connect_failed, false);
        busy_upstream(f.host).fail(UpstreamFailure::connect_failed, false);
        CHECK(f.answer().status == 502);
        CHECK(f.host.upstream(1).exchanges.empty());
    }
}

TEST_CASE("a recipient no upstream holds: 400 unknown_recipient, neither bound nor forwarded",
          "[proxy][scep][handler][routing]") {
    ProfileCertificates board;
    Fixture f(2);
    f.host.generation->profiles[0].certificates = &board;
    publish_groups(board, {ndes_answer(), other_ndes_answer()});
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, scepclient_pkcs_req()));
    f.host.store.deliver_next();  // access: allowed
    CHECK(f.answer().status == 400);
    CHECK(f.answer().reason == "unknown_recipient");
    CHECK(f.answer().body == "unknown_recipient");
    CHECK(f.host.store.calls.empty());  // no binding asked for
    CHECK(f.host.exchanges() == 0);
}

TEST_CASE("the recipient's upstreams can't take it: 503 ra_unavailable with Retry-After",
          "[proxy][scep][handler][routing]") {
    ProfileCertificates board;
    Fixture f(2, [](conf::ProfileConfig& profile) { profile.health_check = conf::HealthCheckConfig{}; });
    f.host.generation->profiles[0].certificates = &board;
    f.host.store.synchronous = true;
    SECTION("its group is out of service") {
        publish_groups(board, {scepserver_answer(), ndes_answer()});
        f.host.targets[0].upstreams[0].health->mark(false, "test");
    }
    SECTION("no known group holds it, but an upstream's certificates are not known yet") {
        publish_groups(board, {ndes_answer(), std::nullopt});
    }
    f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, scepclient_pkcs_req()));
    CHECK(f.answer().status == 503);
    CHECK(f.answer().reason == "ra_unavailable");
    CHECK(f.answer().extra_header_lines.rfind("Retry-After: ", 0) == 0);
    CHECK(f.host.exchanges() == 0);
}

TEST_CASE("routing by recipient needs a readable envelope; one group of all upstreams reads none",
          "[proxy][scep][handler][routing]") {
    ProfileCertificates board;
    Fixture f(2);
    f.host.generation->profiles[0].certificates = &board;
    f.cache_caps(kCapsWithPost);
    f.host.store.synchronous = true;
    SECTION("two groups: a message without an EnvelopedData is refused") {
        publish_groups(board, {scepserver_answer(), ndes_answer()});
        f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
        CHECK(f.answer().status == 400);
        CHECK(f.answer().reason == "malformed_message");
        CHECK(f.host.exchanges() == 0);
    }
    SECTION("one group: forwarded as with a single upstream") {
        publish_groups(board, {ndes_answer(), ndes_answer()});
        f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, pkcs_req()));
        CHECK(f.host.exchanges() == 1);
    }
}

TEST_CASE("GetCACert with different certificates: each group's answer is cached apart",
          "[proxy][scep][handler][routing]") {
    ProfileCertificates board;
    Fixture f(2);
    f.host.generation->profiles[0].certificates = &board;
    publish_groups(board, {scepserver_answer(), ndes_answer()});
    f.host.store.synchronous = true;
    const std::string answers[2] = {"scepserver's CA", "NDES's RA and CA"};
    // Round-robin: the first two go to each upstream once (each group's cache misses once).
    for (int i = 0; i < 2; ++i) {
        f.channel.answers.clear();
        f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
        test::FakeEndpoint& chosen = busy_upstream(f.host);
        const size_t index = &chosen == &f.host.upstream(0) ? 0 : 1;
        chosen.answer(200, "application/x-x509-ca-ra-cert", answers[index]);
        CHECK(f.answer().body == answers[index]);
    }
    CHECK(f.host.upstream(0).exchanges.size() == 1);
    CHECK(f.host.upstream(1).exchanges.size() == 1);
    // Then from the cache, both groups' answers in turn, never one group's for the other's.
    std::set<std::string> shown;
    for (int i = 0; i < 4; ++i) {
        f.channel.answers.clear();
        f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
        CHECK(f.answer().reason == "cache_hit");
        shown.insert(f.answer().body);
    }
    CHECK(shown == std::set<std::string>{answers[0], answers[1]});
    CHECK(f.host.exchanges() == 2);

    SECTION("with one group out of service, only the other's is shown") {
        f.host.config.profiles[0].health_check = conf::HealthCheckConfig{};
        f.host.targets[0].upstreams[1].health->mark(false, "test");
        for (int i = 0; i < 4; ++i) {
            f.channel.answers.clear();
            f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
            CHECK(f.answer().body == answers[0]);
        }
    }
}

TEST_CASE("different certificates with the same name: a token's requests go to the group it was shown",
          "[proxy][scep][handler][routing]") {
    // Two CAs named alike (issuer and serial), as `scepserver ca -init` makes them: the envelope
    // can't tell them apart, the GetCACert answer the token got can.
    pkcs7::CaCertificates twin = scepserver_answer();
    twin.certificates[0].sha256_fingerprint = "00:another:key";
    ProfileCertificates board;
    Fixture f(2);
    f.host.generation->profiles[0].certificates = &board;
    publish_groups(board, {scepserver_answer(), twin});
    f.cache_caps(kCapsWithPost);
    f.host.store.synchronous = true;
    SECTION("shown upstream 1's group: always upstream 1") {
        f.host.generation->profiles[0].next_upstream = 1;
        f.send(TestRequest(http::HttpMethod::get, "GetCACert"));
        f.host.upstream(1).answer(200, "application/x-x509-ca-cert", "twin CA");
        CHECK(f.answer().body == "twin CA");
        for (int i = 0; i < 4; ++i) {
            f.channel.answers.clear();
            f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, scepclient_pkcs_req()));
            busy_upstream(f.host).answer(200, "application/x-pki-message", cert_rep("3"));
        }
        CHECK(f.host.upstream(0).exchanges.empty());
        CHECK(f.host.upstream(1).exchanges.size() == 5);
    }
    SECTION("never shown either: any of them, as without routing") {
        for (int i = 0; i < 4; ++i) {
            f.channel.answers.clear();
            f.send(TestRequest(http::HttpMethod::post, "PKIOperation", {}, scepclient_pkcs_req()));
            busy_upstream(f.host).answer(200, "application/x-pki-message", cert_rep("3"));
        }
        CHECK(f.host.upstream(0).exchanges.size() == 2);
        CHECK(f.host.upstream(1).exchanges.size() == 2);
    }
}

TEST_CASE("what each token was shown is bounded", "[proxy][scep][routing]") {
    ProfileCertificates board;
    for (uint64_t token = 1; token <= ProfileCertificates::kMaxRemembered + 10; ++token) board.remember_shown(token, 7);
    CHECK(board.shown_to(1) == 0);  // the oldest are forgotten
    CHECK(board.shown_to(10) == 0);
    CHECK(board.shown_to(11) == 7);
    board.remember_shown(11, 9);  // shown again: the latest counts
    CHECK(board.shown_to(11) == 9);
    CHECK(board.shown_to(ProfileCertificates::kMaxRemembered + 10) == 7);
}

}  // namespace
}  // namespace scepproxy::proxy
