// Tests for parse_pki_message and read_pki_message_attributes: real scepclient/scepserver messages, synthesised SCEP messages, malformed input.
#include "pkcs7/pki_message.h"

#include <algorithm>
#include <random>

#include <catch2/catch.hpp>

#include "pkcs7/openssl_raii.h"
#include "pkcs7/scep_message_encoding.h"
#include "test/unit/pkcs7/pkcs7_fixtures.h"
#include "test/unit/pkcs7/scep_message_builder.h"

namespace scepproxy::pkcs7 {
namespace {

using test::build_signed_message;
using test::expected;
using test::expected_number;
using test::octets;
using test::printable;
using test::read_fixture;
using test::TestAttribute;
using test::TestMessage;
namespace scep_oid = test::scep_oid;

std::vector<std::uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

// The DER walk reads what the full parse reads, never verifying: checked wherever the full parse
// accepts a message. (It may accept damage it doesn't look at, inside certificates or the envelope.)
void require_same_attributes(const PkiMessageInfo& full, const PkiMessageParse& fast) {
    INFO("walk: " << to_string(fast.error) << ": " << fast.detail);
    REQUIRE(fast.ok());
    const PkiMessageInfo& read = *fast.value;
    CHECK(read.message_type == full.message_type);
    CHECK(read.message_type_number == full.message_type_number);
    CHECK(read.transaction_id == full.transaction_id);
    CHECK(read.sender_nonce == full.sender_nonce);
    CHECK(read.recipient_nonce == full.recipient_nonce);
    CHECK(read.pki_status == full.pki_status);
    CHECK(read.fail_info == full.fail_info);
    CHECK(read.fail_info_text == full.fail_info_text);
    // The walk verifies nothing; a message it left to the full parse keeps that parse's verdict.
    if (read.verified) {
        CHECK(read.signature_valid == full.signature_valid);
        CHECK(read.content_digest_valid == full.content_digest_valid);
        CHECK(read.signer.has_value() == full.signer.has_value());
    } else {
        CHECK_FALSE(read.signer.has_value());
        CHECK_FALSE(read.signature_valid);
        CHECK_FALSE(read.content_digest_valid);
    }
}

std::string hex_of(const std::vector<std::uint8_t>& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    for (const std::uint8_t byte : bytes) {
        hex += digits[byte >> 4];
        hex += digits[byte & 0x0f];
    }
    return hex;
}

// Every real message in data/: captured from scepclient/scepserver, or made by data/generate/
// with micromdm's library (CertRep PENDING, CertPoll).
const char* const kRealMessages[] = {
    "pkcsreq.der",
    "certrep-success.der",  // enrollment
    "pkcsreq-wrong-challenge.der",
    "certrep-failure.der",  // wrong challenge
    "renewalreq.der",
    "certrep-renewal-success.der",  // renewal
    "pkcsreq-for-pending.der",
    "certrep-pending.der",       // held for approval,
    "certpoll-for-pending.der",  // then polled
};

PkiMessageInfo parse_ok(const std::vector<std::uint8_t>& der, const PkiMessageLimits& limits = {}) {
    PkiMessageParse parsed = parse_pki_message(der, limits);
    INFO("error " << to_string(parsed.error) << ": " << parsed.detail);
    REQUIRE(parsed.ok());
    require_same_attributes(*parsed.value, read_pki_message_attributes(der, limits));
    return *parsed.value;
}

// Both readers refuse the message, for the same reason.
void require_error(const std::vector<std::uint8_t>& der, ParseError error, const PkiMessageLimits& limits = {}) {
    for (const PkiMessageParse& parsed : {parse_pki_message(der, limits), read_pki_message_attributes(der, limits)}) {
        INFO("detail: " << parsed.detail);
        REQUIRE_FALSE(parsed.ok());
        REQUIRE(to_string(parsed.error) == std::string(to_string(error)));
    }
}

const test::TestSigner& unit_signer() {
    static const test::TestSigner signer = test::make_test_signer("unit-test-signer", 0x1234abcd);
    return signer;
}

std::vector<std::uint8_t> synthesised(std::vector<TestAttribute> attributes) {
    TestMessage message;
    message.attributes = std::move(attributes);
    return build_signed_message(unit_signer(), message);
}

// The PKCSReq attributes with the one whose OID is `oid` replaced by `replacement` (or dropped).
std::vector<TestAttribute> pkcs_req_with(const char* oid, std::optional<TestAttribute> replacement) {
    std::vector<TestAttribute> attributes;
    for (TestAttribute& attribute : test::pkcs_req_attributes())
        if (attribute.oid != oid) attributes.push_back(std::move(attribute));
    if (replacement) attributes.push_back(std::move(*replacement));
    return attributes;
}

// The bytes of a captured GET `message=` value (data/NAME), decoded as the proxy decodes it.
std::vector<std::uint8_t> decoded_get_message(const std::string& name) {
    const std::vector<std::uint8_t> raw = read_fixture(name);
    const MessageParameterDecode decoded =
        decode_message_parameter(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()), 64 * 1024);
    INFO("error " << to_string(decoded.error) << ": " << decoded.detail);
    REQUIRE(decoded.ok());
    return *decoded.value;
}

// A client's request as captured: its own 16-byte senderNonce, no answer's attributes, and a
// signature and content digest that verify.
void check_request_shape(const PkiMessageInfo& request) {
    CHECK(request.sender_nonce.size() == 16);
    CHECK(request.recipient_nonce.empty());
    CHECK_FALSE(request.pki_status.has_value());
    CHECK_FALSE(request.fail_info.has_value());
    CHECK(request.signature_valid);
    CHECK(request.content_digest_valid);
}

// The signer certificate against fixtures.expect's PREFIX_subject, _issuer, _serial, _not_before, _not_after.
void check_signer(const PkiMessageInfo& info, const std::string& prefix) {
    REQUIRE(info.signer.has_value());
    CHECK(info.signer->subject == expected(prefix + "_subject"));
    CHECK(info.signer->issuer == expected(prefix + "_issuer"));
    CHECK(info.signer->serial_hex == expected(prefix + "_serial"));
    CHECK(info.signer->not_before == expected_number(prefix + "_not_before"));
    CHECK(info.signer->not_after == expected_number(prefix + "_not_after"));
}

// A CertRep from the CA answering `request`: same transactionID, recipientNonce = the request's
// senderNonce, the given pkiStatus, verifiable, signed by the CA.
void check_answers(const PkiMessageInfo& reply, const PkiMessageInfo& request, PkiStatus status) {
    CHECK(reply.message_type == MessageType::cert_rep);
    CHECK(reply.message_type_number == 3);
    REQUIRE(reply.pki_status.has_value());
    CHECK(*reply.pki_status == status);
    CHECK(reply.transaction_id == request.transaction_id);
    CHECK(reply.recipient_nonce == request.sender_nonce);
    CHECK(reply.sender_nonce.size() == 16);
    CHECK(reply.signature_valid);
    CHECK(reply.content_digest_valid);
    // A SUCCESS carries the issued cert too: the signer must be the CA, picked by issuerAndSerialNumber.
    check_signer(reply, "ca");
    CHECK(reply.signer->is_ca);
}

// ---- real messages captured between micromdm scepclient and scepserver (data/make_fixtures.sh)

TEST_CASE("real PKCSReq from scepclient", "[pkcs7][pki_message]") {
    const PkiMessageInfo info = parse_ok(read_fixture("pkcsreq.der"));
    CHECK(info.message_type == MessageType::pkcs_req);
    CHECK(info.message_type_number == 19);
    CHECK(info.transaction_id == expected("transaction_id"));
    CHECK(info.transaction_id.size() >= 20);
    check_request_shape(info);
    // scepclient signs with a throwaway self-signed "SCEP SIGNER" cert; the device CN is inside the envelope.
    check_signer(info, "client_signer");
    CHECK(info.signer->subject.find("CN=SCEP SIGNER") != std::string::npos);
}

TEST_CASE("real CertRep SUCCESS answers the real PKCSReq", "[pkcs7][pki_message]") {
    const PkiMessageInfo reply = parse_ok(read_fixture("certrep-success.der"));
    check_answers(reply, parse_ok(read_fixture("pkcsreq.der")), PkiStatus::success);
    CHECK_FALSE(reply.fail_info.has_value());
}

TEST_CASE("real CertRep FAILURE for a wrong challenge", "[pkcs7][pki_message]") {
    const PkiMessageInfo request = parse_ok(read_fixture("pkcsreq-wrong-challenge.der"));
    CHECK(request.transaction_id == expected("wrong_challenge_transaction_id"));
    const PkiMessageInfo reply = parse_ok(read_fixture("certrep-failure.der"));
    check_answers(reply, request, PkiStatus::failure);
    REQUIRE(reply.fail_info.has_value());
    CHECK(*reply.fail_info == FailInfo::bad_request);  // what scepserver 2.1.0 sends for a bad challenge
}

TEST_CASE("real RenewalReq from scepclient, signed by the certificate it was issued", "[pkcs7][pki_message]") {
    const PkiMessageInfo info = parse_ok(read_fixture("renewalreq.der"));
    CHECK(info.message_type == MessageType::renewal_req);
    CHECK(info.message_type_number == 17);
    CHECK(info.transaction_id == expected("renewal_transaction_id"));
    // scepclient derives the transactionID from the key, which a renewal keeps; the nonce is new.
    CHECK(info.transaction_id == expected("transaction_id"));
    CHECK(info.sender_nonce != parse_ok(read_fixture("pkcsreq.der")).sender_nonce);
    check_request_shape(info);
    check_signer(info, "renewal_signer");
    CHECK(info.signer->subject.find("CN=fixture-device-1") != std::string::npos);
    CHECK(info.signer->issuer == expected("ca_subject"));
    CHECK_FALSE(info.signer->is_ca);
}

TEST_CASE("real CertRep SUCCESS answers the real RenewalReq", "[pkcs7][pki_message]") {
    const PkiMessageInfo reply = parse_ok(read_fixture("certrep-renewal-success.der"));
    check_answers(reply, parse_ok(read_fixture("renewalreq.der")), PkiStatus::success);
    CHECK_FALSE(reply.fail_info.has_value());
}

// ---- PENDING and CertPoll made by data/generate/ (micromdm's library) for a real PKCSReq

TEST_CASE("CertRep PENDING answers the real PKCSReq it is paired with", "[pkcs7][pki_message]") {
    const PkiMessageInfo request = parse_ok(read_fixture("pkcsreq-for-pending.der"));
    CHECK(request.message_type == MessageType::pkcs_req);
    CHECK(request.transaction_id == expected("pending_client_transaction_id"));       // scepclient's log
    CHECK(hex_of(request.sender_nonce) == expected("pending_request_sender_nonce"));  // micromdm's parser
    check_request_shape(request);
    REQUIRE(request.signer.has_value());
    CHECK(request.signer->subject == expected("client_signer_subject"));

    const PkiMessageInfo reply = parse_ok(read_fixture("certrep-pending.der"));
    check_answers(reply, request, PkiStatus::pending);
    CHECK_FALSE(reply.fail_info.has_value());
    CHECK_FALSE(reply.fail_info_text.has_value());
    CHECK(reply.transaction_id == expected("pending_transaction_id"));
    CHECK(hex_of(reply.sender_nonce) == expected("pending_sender_nonce"));
    CHECK(reply.sender_nonce != reply.recipient_nonce);
}

TEST_CASE("CertPoll for the pending transaction, signed like its PKCSReq", "[pkcs7][pki_message]") {
    const PkiMessageInfo request = parse_ok(read_fixture("pkcsreq-for-pending.der"));
    const PkiMessageInfo poll = parse_ok(read_fixture("certpoll-for-pending.der"));
    CHECK(poll.message_type == MessageType::cert_poll);
    CHECK(poll.message_type_number == 20);
    CHECK(poll.transaction_id == expected("pending_transaction_id"));
    CHECK(poll.transaction_id == request.transaction_id);
    CHECK(hex_of(poll.sender_nonce) == expected("certpoll_sender_nonce"));
    check_request_shape(poll);
    REQUIRE(poll.signer.has_value());
    REQUIRE(request.signer.has_value());
    CHECK(poll.signer->subject == request.signer->subject);
    CHECK(poll.signer->serial_hex == request.signer->serial_hex);
}

TEST_CASE("GET message parameter of the pending pair decodes to its PKCSReq, byte for byte", "[pkcs7][pki_message]") {
    CHECK(decoded_get_message("pkcsreq-for-pending-get-message.txt") == read_fixture("pkcsreq-for-pending.der"));
}

TEST_CASE("tampered signed attribute: parses, signature no longer verifies", "[pkcs7][pki_message]") {
    std::vector<std::uint8_t> der = read_fixture("pkcsreq.der");
    const std::string original = expected("transaction_id");
    std::string forged = original;
    forged[0] = forged[0] == 'A' ? 'B' : 'A';
    test::replace_bytes(der, original, forged);

    const PkiMessageInfo info = parse_ok(der);
    CHECK(info.transaction_id == forged);
    CHECK_FALSE(info.signature_valid);
    CHECK(info.content_digest_valid);  // the envelope itself was not touched
}

TEST_CASE("tampered envelope: signature still verifies, content digest does not", "[pkcs7][pki_message]") {
    std::vector<std::uint8_t> der = read_fixture("pkcsreq.der");
    // Locate the encapsulated content with OpenSSL, independently of the parser under test.
    const unsigned char* cursor = der.data();
    OpensslPtr<CMS_ContentInfo> cms(d2i_CMS_ContentInfo(nullptr, &cursor, static_cast<long>(der.size())));
    REQUIRE(cms);
    ASN1_OCTET_STRING** content = CMS_get0_content(cms.get());
    REQUIRE(content != nullptr);
    REQUIRE(*content != nullptr);
    const unsigned char* envelope = ASN1_STRING_get0_data(*content);
    const int envelope_length = ASN1_STRING_length(*content);
    REQUIRE(envelope_length > 64);
    const auto at = std::search(der.begin(), der.end(), envelope, envelope + envelope_length);
    REQUIRE(at != der.end());
    at[envelope_length - 10] ^= 0x01;  // inside the encrypted payload: still well-formed DER

    const PkiMessageInfo info = parse_ok(der);
    CHECK(info.signature_valid);
    CHECK_FALSE(info.content_digest_valid);
}

TEST_CASE("GET message parameter captured from scepclient decodes to its PKCSReq", "[pkcs7][pki_message]") {
    // scepclient sends base64url; the decoded bytes must be a complete, verifiable pkiMessage.
    const PkiMessageInfo info = parse_ok(decoded_get_message("pkcsreq-get-message.txt"));
    CHECK(info.message_type == MessageType::pkcs_req);
    CHECK(info.transaction_id == expected("get_transaction_id"));
    CHECK(info.signature_valid);
}

// ---- malformed input: typed errors, never a crash

TEST_CASE("empty pkiMessage", "[pkcs7][pki_message]") { require_error({}, ParseError::empty); }

TEST_CASE("oversized input", "[pkcs7][pki_message]") {
    const std::vector<std::uint8_t> der = read_fixture("pkcsreq.der");
    PkiMessageLimits limits;
    limits.max_message_bytes = der.size() - 1;
    require_error(der, ParseError::too_large, limits);
    limits.max_message_bytes = der.size();
    parse_ok(der, limits);
    require_error(std::vector<std::uint8_t>(PkiMessageLimits{}.max_message_bytes + 1, 0x30), ParseError::too_large);
}

TEST_CASE("every truncation of every real message is rejected", "[pkcs7][pki_message]") {
    for (const char* name : kRealMessages) {
        const std::vector<std::uint8_t> der = read_fixture(name);
        parse_ok(der);  // whole, it parses (both ways): the prefixes below are what fails
        for (std::size_t length = 0; length < der.size(); ++length) {
            const std::vector<std::uint8_t> prefix(der.begin(), der.begin() + static_cast<long>(length));
            INFO(name << " length " << length);
            for (const PkiMessageParse& parsed :
                 {parse_pki_message(prefix, {}), read_pki_message_attributes(prefix, {})}) {
                REQUIRE_FALSE(parsed.ok());
                REQUIRE((parsed.error == ParseError::empty || parsed.error == ParseError::truncated));
            }
        }
    }
}

TEST_CASE("truncations with a patched outer length reach OpenSSL and are rejected", "[pkcs7][pki_message]") {
    // The outer header of each message is 30 82 HH LL; rewriting the length to fit the prefix
    // gets past the cheap outer check, so OpenSSL itself meets every inner truncation.
    for (const char* name : kRealMessages) {
        const std::vector<std::uint8_t> der = read_fixture(name);
        INFO(name);
        REQUIRE(der[0] == 0x30);
        REQUIRE(der[1] == 0x82);
        for (std::size_t length = 4; length < der.size(); ++length) {
            std::vector<std::uint8_t> prefix(der.begin(), der.begin() + static_cast<long>(length));
            prefix[2] = static_cast<std::uint8_t>((length - 4) >> 8);
            prefix[3] = static_cast<std::uint8_t>(length - 4);
            INFO("length " << length);
            REQUIRE_FALSE(parse_pki_message(prefix, {}).ok());
            REQUIRE_FALSE(read_pki_message_attributes(prefix, {}).ok());
        }
    }
    CHECK(ERR_peek_error() == 0);  // every rejection cleaned up OpenSSL's error queue
}

TEST_CASE("trailing bytes after the message", "[pkcs7][pki_message]") {
    std::vector<std::uint8_t> der = read_fixture("pkcsreq.der");
    der.push_back(0x00);
    require_error(der, ParseError::trailing_data);
}

TEST_CASE("random garbage is rejected", "[pkcs7][pki_message]") {
    std::mt19937 random(20240611);
    for (int round = 0; round < 2000; ++round) {
        std::vector<std::uint8_t> junk(random() % 3000);
        for (auto& byte : junk) byte = static_cast<std::uint8_t>(random());
        // Half the time, a valid outer SEQUENCE header so OpenSSL sees the rest.
        if (round % 2 == 0 && junk.size() >= 4) {
            junk[0] = 0x30;
            junk[1] = 0x82;
            junk[2] = static_cast<std::uint8_t>((junk.size() - 4) >> 8);
            junk[3] = static_cast<std::uint8_t>(junk.size() - 4);
        }
        REQUIRE_FALSE(parse_pki_message(junk, {}).ok());
        REQUIRE_FALSE(read_pki_message_attributes(junk, {}).ok());
    }
}

TEST_CASE("mutated real messages never crash and always give a reason", "[pkcs7][pki_message]") {
    std::vector<std::vector<std::uint8_t>> originals;
    for (const char* name : kRealMessages) originals.push_back(read_fixture(name));
    std::mt19937 random(7);
    int rejected = 0;
    for (int round = 0; round < 3000; ++round) {
        std::vector<std::uint8_t> der = originals[static_cast<std::size_t>(round) % originals.size()];
        const int flips = 1 + static_cast<int>(random() % 4);
        for (int i = 0; i < flips; ++i) der[random() % der.size()] = static_cast<std::uint8_t>(random());
        const PkiMessageParse parsed = parse_pki_message(der, {});
        const PkiMessageParse walked = read_pki_message_attributes(der, {});
        if (parsed.ok()) require_same_attributes(*parsed.value, walked);
        if (!parsed.ok()) {
            ++rejected;
            REQUIRE(std::string(to_string(parsed.error)) != "unknown");
        }
        if (!walked.ok()) REQUIRE(std::string(to_string(walked.error)) != "unknown");
    }
    CHECK(rejected > 0);
    CHECK(ERR_peek_error() == 0);  // nothing left on this thread's OpenSSL error queue
}

TEST_CASE("a certs-only PKCS#7 (GetCACert answer) is not a pkiMessage", "[pkcs7][pki_message]") {
    require_error(read_fixture("getcacert-ra-chain.p7b"), ParseError::no_signer);
}

TEST_CASE("a bare certificate is not a pkiMessage", "[pkcs7][pki_message]") {
    require_error(read_fixture("getcacert-single.der"), ParseError::not_der);
}

TEST_CASE("a CMS ContentInfo that is not SignedData", "[pkcs7][pki_message]") {
    require_error(test::build_data_content_info("hello"), ParseError::not_signed_data);
}

TEST_CASE("not DER at all", "[pkcs7][pki_message]") {
    require_error(bytes_of("MIIJ1AYJKoZIhvcNAQcCoIIJxTCCCcECAQEx"), ParseError::not_der);  // base64, not decoded
}

// ---- synthesised messages (OpenSSL CMS, throwaway P-256 signer)

TEST_CASE("synthesised PKCSReq: attributes and signer read back", "[pkcs7][pki_message]") {
    const PkiMessageInfo info = parse_ok(synthesised(test::pkcs_req_attributes()));
    CHECK(info.message_type == MessageType::pkcs_req);
    CHECK(info.transaction_id == test::kTestTransactionId);
    CHECK(info.sender_nonce == bytes_of(test::kTestSenderNonce));
    CHECK(info.signature_valid);
    CHECK(info.content_digest_valid);
    REQUIRE(info.signer.has_value());
    CHECK(info.signer->subject == "CN=unit-test-signer");
    CHECK(info.signer->issuer == "CN=unit-test-signer");
    CHECK(info.signer->serial_hex == "1234ABCD");
    CHECK(info.signer->not_before == unit_signer().not_before);
    CHECK(info.signer->not_after == unit_signer().not_after);
    CHECK_FALSE(info.signer->is_ca);
}

TEST_CASE("synthesised CertRep PENDING", "[pkcs7][pki_message]") {
    const PkiMessageInfo info = parse_ok(synthesised(test::cert_rep_attributes("3")));
    CHECK(info.message_type == MessageType::cert_rep);
    REQUIRE(info.pki_status.has_value());
    CHECK(*info.pki_status == PkiStatus::pending);
    CHECK_FALSE(info.fail_info.has_value());
    CHECK(info.recipient_nonce == bytes_of(test::kTestSenderNonce));
    CHECK(info.sender_nonce == bytes_of(test::kTestServerNonce));
    CHECK(info.signature_valid);
}

TEST_CASE("synthesised CertRep FAILURE with failInfo and failInfoText", "[pkcs7][pki_message]") {
    auto attributes = test::cert_rep_attributes("2");
    attributes.push_back(printable(scep_oid::fail_info, "4"));
    attributes.push_back(test::utf8(scep_oid::fail_info_text, "certificate identifier unknown: caf\xC3\xA9"));
    const PkiMessageInfo info = parse_ok(synthesised(attributes));
    REQUIRE(info.pki_status.has_value());
    CHECK(*info.pki_status == PkiStatus::failure);
    REQUIRE(info.fail_info.has_value());
    CHECK(*info.fail_info == FailInfo::bad_cert_id);
    REQUIRE(info.fail_info_text.has_value());
    CHECK(*info.fail_info_text == "certificate identifier unknown: caf\xC3\xA9");
    CHECK(info.signature_valid);
}

TEST_CASE("every failInfo value", "[pkcs7][pki_message]") {
    const std::pair<const char*, FailInfo> cases[] = {{"0", FailInfo::bad_alg},
                                                      {"1", FailInfo::bad_message_check},
                                                      {"2", FailInfo::bad_request},
                                                      {"3", FailInfo::bad_time},
                                                      {"4", FailInfo::bad_cert_id}};
    for (const auto& [text, value] : cases) {
        auto attributes = test::cert_rep_attributes("2");
        attributes.push_back(printable(scep_oid::fail_info, text));
        const PkiMessageInfo info = parse_ok(synthesised(attributes));
        REQUIRE(info.fail_info.has_value());
        CHECK(*info.fail_info == value);
    }
}

TEST_CASE("other message types, known and unknown", "[pkcs7][pki_message]") {
    const std::pair<const char*, MessageType> cases[] = {{"17", MessageType::renewal_req},
                                                         {"20", MessageType::cert_poll},
                                                         {"21", MessageType::get_cert},
                                                         {"22", MessageType::get_crl},
                                                         {"99", MessageType::unknown}};
    for (const auto& [text, type] : cases) {
        const PkiMessageInfo info =
            parse_ok(synthesised(pkcs_req_with(scep_oid::message_type, printable(scep_oid::message_type, text))));
        CHECK(info.message_type == type);
        CHECK(info.message_type_number == static_cast<unsigned>(std::stoi(text)));
    }
}

TEST_CASE("signer certificate left out: attributes still read, nothing verified", "[pkcs7][pki_message]") {
    TestMessage message;
    message.attributes = test::pkcs_req_attributes();
    message.include_signer_cert = false;
    const PkiMessageInfo info = parse_ok(build_signed_message(unit_signer(), message));
    CHECK(info.message_type == MessageType::pkcs_req);
    CHECK_FALSE(info.signer.has_value());
    CHECK_FALSE(info.signature_valid);
}

TEST_CASE("two signerInfos are refused", "[pkcs7][pki_message]") {
    const test::TestSigner other = test::make_test_signer("second-signer", 2);
    TestMessage message;
    message.attributes = test::pkcs_req_attributes();
    message.second_signer = &other;
    require_error(build_signed_message(unit_signer(), message), ParseError::multiple_signers);
}

TEST_CASE("missing mandatory attributes", "[pkcs7][pki_message]") {
    require_error(synthesised(pkcs_req_with(scep_oid::message_type, std::nullopt)), ParseError::missing_message_type);
    require_error(synthesised(pkcs_req_with(scep_oid::transaction_id, std::nullopt)),
                  ParseError::missing_transaction_id);
    auto cert_rep = test::cert_rep_attributes("0");
    cert_rep.erase(std::remove_if(cert_rep.begin(), cert_rep.end(),
                                  [](const TestAttribute& a) { return a.oid == scep_oid::pki_status; }),
                   cert_rep.end());
    require_error(synthesised(cert_rep), ParseError::missing_pki_status);
    // A PKCSReq without senderNonce is read (the CA will judge it): the nonce is just empty.
    CHECK(parse_ok(synthesised(pkcs_req_with(scep_oid::sender_nonce, std::nullopt))).sender_nonce.empty());
}

TEST_CASE("malformed SCEP attributes are bad_attribute", "[pkcs7][pki_message]") {
    const std::string long_id(PkiMessageLimits{}.max_transaction_id_chars + 1, 'A');
    const std::string long_nonce(PkiMessageLimits{}.max_nonce_bytes + 1, 'n');
    const std::string long_text(PkiMessageLimits{}.max_fail_info_text_bytes + 1, 't');
    const std::pair<const char*, TestAttribute> cases[] = {
        {"messageType not a number", printable(scep_oid::message_type, "PKCSReq")},
        {"messageType signed", printable(scep_oid::message_type, "-19")},
        {"messageType too many digits", printable(scep_oid::message_type, "00019")},
        {"messageType empty", printable(scep_oid::message_type, "")},
        {"messageType as OCTET STRING", octets(scep_oid::message_type, "19")},
        {"messageType with two values", TestAttribute{scep_oid::message_type, V_ASN1_PRINTABLESTRING, {"19", "3"}}},
        {"messageType with no value", TestAttribute{scep_oid::message_type, V_ASN1_PRINTABLESTRING, {}}},
        {"transactionID too long", printable(scep_oid::transaction_id, long_id)},
        {"transactionID not printable", test::utf8(scep_oid::transaction_id, "caf\xC3\xA9")},
        {"transactionID with a control character", test::utf8(scep_oid::transaction_id, "abc\ndef")},
        {"transactionID empty", printable(scep_oid::transaction_id, "")},
        {"senderNonce empty", octets(scep_oid::sender_nonce, "")},
        {"senderNonce too long", octets(scep_oid::sender_nonce, long_nonce)},
        {"senderNonce as a string", printable(scep_oid::sender_nonce, "0123456789abcdef")},
        {"pkiStatus 1", printable(scep_oid::pki_status, "1")},
        {"failInfo 5", printable(scep_oid::fail_info, "5")},
        {"recipientNonce as a string", printable(scep_oid::recipient_nonce, "x")},
        {"failInfoText with a newline", test::utf8(scep_oid::fail_info_text, "line one\nline two")},
        {"failInfoText bad UTF-8", test::utf8(scep_oid::fail_info_text, "caf\xC3")},
        {"failInfoText too long", test::utf8(scep_oid::fail_info_text, long_text)},
    };
    for (const auto& [name, attribute] : cases) {
        INFO(name);
        require_error(synthesised(pkcs_req_with(attribute.oid.c_str(), attribute)), ParseError::bad_attribute);
    }
}

TEST_CASE("duplicated SCEP attribute is bad_attribute", "[pkcs7][pki_message]") {
    auto attributes = test::pkcs_req_attributes();
    attributes.push_back(printable(scep_oid::transaction_id, "another-transaction"));
    const PkiMessageParse parsed = parse_pki_message(synthesised(attributes), {});
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error == ParseError::bad_attribute);
    CHECK(parsed.detail.find("transactionID") != std::string::npos);
}

TEST_CASE("limits are configurable", "[pkcs7][pki_message]") {
    const std::vector<std::uint8_t> der = synthesised(test::pkcs_req_attributes());
    PkiMessageLimits limits;
    limits.max_transaction_id_chars = test::kTestTransactionId.size();
    parse_ok(der, limits);
    limits.max_transaction_id_chars = test::kTestTransactionId.size() - 1;
    require_error(der, ParseError::bad_attribute, limits);
    limits = {};
    limits.max_nonce_bytes = 15;
    require_error(der, ParseError::bad_attribute, limits);
}

TEST_CASE("the DER walk leaves BER (indefinite lengths) to the full parse, with the same answer",
          "[pkcs7][pki_message]") {
    // The outer SEQUENCE re-encoded with an indefinite length (30 80 ... 00 00): BER, which OpenSSL reads.
    const std::vector<std::uint8_t> der = synthesised(test::pkcs_req_attributes());
    REQUIRE(der[1] == 0x82);
    std::vector<std::uint8_t> ber = {0x30, 0x80};
    ber.insert(ber.end(), der.begin() + 4, der.end());
    ber.insert(ber.end(), {0x00, 0x00});
    REQUIRE(ber[1] == 0x80);  // indefinite
    const PkiMessageInfo info = parse_ok(ber);
    CHECK(info.transaction_id == test::kTestTransactionId);
    // The full parse's verdict is kept, so the handler never parses the message a second time.
    const PkiMessageParse read = read_pki_message_attributes(ber, {});
    REQUIRE(read.ok());
    CHECK(read.value->verified);
    CHECK(read.value->signature_valid);
    CHECK(read.value->content_digest_valid);
    CHECK(read.value->signer.has_value());
    // The walk itself verifies nothing and says so.
    const PkiMessageParse walked = read_pki_message_attributes(der, {});
    REQUIRE(walked.ok());
    CHECK_FALSE(walked.value->verified);
    CHECK_FALSE(walked.value->signature_valid);
}

TEST_CASE("the DER walk reads the real messages' attributes without decoding a certificate", "[pkcs7][pki_message]") {
    for (const char* name :
         {"pkcsreq.der", "certrep-success.der", "certrep-failure.der", "pkcsreq-wrong-challenge.der"}) {
        INFO(name);
        parse_ok(read_fixture(name));
    }
    // A certificate whose inside is damaged (not its framing): the walk doesn't look, the full parse refuses.
    std::vector<std::uint8_t> der = read_fixture("pkcsreq.der");
    const PkiMessageInfo original = parse_ok(der);
    const std::vector<std::uint8_t> serial_tag = {0xA0, 0x03, 0x02, 0x01, 0x02};  // tbsCertificate's [0] version v3
    auto at = std::search(der.begin(), der.end(), serial_tag.begin(), serial_tag.end());
    REQUIRE(at != der.end());
    at[2] = 0x04;  // the version INTEGER becomes an OCTET STRING
    CHECK_FALSE(parse_pki_message(der, {}).ok());
    const PkiMessageParse walked = read_pki_message_attributes(der, {});
    REQUIRE(walked.ok());
    CHECK(walked.value->transaction_id == original.transaction_id);
}

TEST_CASE("reason codes and names", "[pkcs7][pki_message]") {
    CHECK(std::string(to_string(ParseError::bad_attribute)) == "bad_attribute");
    CHECK(std::string(to_string(MessageType::pkcs_req)) == "PKCSReq");
    CHECK(std::string(to_string(PkiStatus::pending)) == "PENDING");
    CHECK(std::string(to_string(FailInfo::bad_message_check)) == "badMessageCheck");
}

TEST_CASE("reading message after message into one PkiMessageInfo leaves nothing of the one before",
          "[pkcs7][pki_message]") {
    const std::vector<std::uint8_t> failure = read_fixture("certrep-failure.der");
    const std::vector<std::uint8_t> request = read_fixture("pkcsreq.der");
    PkiMessageInfo info;
    REQUIRE_FALSE(read_pki_message_attributes_into(failure, {}, info));
    REQUIRE(info.pki_status == PkiStatus::failure);
    REQUIRE(info.fail_info.has_value());
    REQUIRE_FALSE(info.recipient_nonce.empty());

    REQUIRE_FALSE(read_pki_message_attributes_into(request, {}, info));
    const PkiMessageParse fresh = read_pki_message_attributes(request, {});
    REQUIRE(fresh.ok());
    CHECK(info.message_type == fresh.value->message_type);
    CHECK(info.transaction_id == fresh.value->transaction_id);
    CHECK(info.sender_nonce == fresh.value->sender_nonce);
    CHECK(info.recipient_nonce.empty());
    CHECK_FALSE(info.pki_status.has_value());
    CHECK_FALSE(info.fail_info.has_value());
    CHECK_FALSE(info.fail_info_text.has_value());

    // A failure names its reason; what `info` holds then is unspecified.
    const std::optional<PkiMessageParse> truncated =
        read_pki_message_attributes_into(std::span<const std::uint8_t>(request).first(request.size() / 2), {}, info);
    REQUIRE(truncated.has_value());
    CHECK_FALSE(truncated->ok());
    CHECK(truncated->error == ParseError::truncated);
}

}  // namespace
}  // namespace scepproxy::pkcs7
