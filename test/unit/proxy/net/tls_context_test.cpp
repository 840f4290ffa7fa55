// Tests for the listeners' TLS contexts: resumption with client certificates, and ticket key rotation on a fake clock.
#include <catch2/catch.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proxy/net/ticket_key_ring.h"
#include "proxy/net/tls_context.h"
#include "test/unit/token/temp_directory.h"

using namespace scepproxy::proxy;
using namespace std::chrono_literals;
using scepproxy::token::test::TempDirectory;

namespace {

struct OpensslFree {
    void operator()(SSL* p) const { SSL_free(p); }
    void operator()(SSL_SESSION* p) const { SSL_SESSION_free(p); }
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(X509* p) const { X509_free(p); }
    void operator()(FILE* p) const { std::fclose(p); }
};
using SslPtr = std::unique_ptr<SSL, OpensslFree>;
using SessionPtr = std::unique_ptr<SSL_SESSION, OpensslFree>;

// A P-256 key and a certificate for it, self-signed, valid from an hour ago for a day.
struct CertificateFiles {
    std::string cert_file;
    std::string key_file;
};

CertificateFiles write_self_signed(const TempDirectory& directory, const std::string& name) {
    std::unique_ptr<EVP_PKEY, OpensslFree> key(EVP_EC_gen("P-256"));
    REQUIRE(key);
    std::unique_ptr<X509, OpensslFree> cert(X509_new());
    REQUIRE(X509_set_version(cert.get(), X509_VERSION_3) == 1);
    REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) == 1);
    REQUIRE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr);
    REQUIRE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400) != nullptr);
    X509_NAME* subject = X509_get_subject_name(cert.get());
    REQUIRE(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0) == 1);
    REQUIRE(X509_set_issuer_name(cert.get(), subject) == 1);
    REQUIRE(X509_set_pubkey(cert.get(), key.get()) == 1);
    REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
    CertificateFiles files{directory.file(name + ".pem"), directory.file(name + ".key")};
    std::unique_ptr<FILE, OpensslFree> cert_out(std::fopen(files.cert_file.c_str(), "w"));
    std::unique_ptr<FILE, OpensslFree> key_out(std::fopen(files.key_file.c_str(), "w"));
    REQUIRE((cert_out && key_out));
    REQUIRE(PEM_write_X509(cert_out.get(), cert.get()) == 1);
    REQUIRE(PEM_write_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
    return files;
}

// The server's certificate, and the client's (self-signed: it is also the listener's client CA).
struct Certificates {
    TempDirectory directory;
    CertificateFiles server = write_self_signed(directory, "server");
    CertificateFiles client = write_self_signed(directory, "client");

    scepproxy::conf::ServerTlsConfig listener(bool client_certificates) const {
        return {server.cert_file, server.key_file, client_certificates ? client.cert_file : std::string()};
    }
};

SslCtxPtr make_client_context(int version, const CertificateFiles* certificate) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    REQUIRE(ctx);
    REQUIRE(SSL_CTX_set_min_proto_version(ctx.get(), version) == 1);
    REQUIRE(SSL_CTX_set_max_proto_version(ctx.get(), version) == 1);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);  // the server's certificate isn't what is tested
    if (certificate) {
        REQUIRE(SSL_CTX_use_certificate_file(ctx.get(), certificate->cert_file.c_str(), SSL_FILETYPE_PEM) == 1);
        REQUIRE(SSL_CTX_use_PrivateKey_file(ctx.get(), certificate->key_file.c_str(), SSL_FILETYPE_PEM) == 1);
    }
    return ctx;
}

struct Connection {
    bool completed = false;      // handshake done on both ends and one byte read by the client
    bool reused = false;         // the client resumed the offered session
    bool server_reused = false;  // so did the server
    SessionPtr session;          // the client's session afterwards, with its ticket
};

// One connection over a memory BIO pair. The server sends one byte after the handshake, so the
// client also reads TLS 1.3's NewSessionTicket, which comes after the handshake. No Catch
// assertions: worker threads call it too.
Connection handshake(SSL_CTX* server_ctx, SSL_CTX* client_ctx, SSL_SESSION* offer) {
    Connection connection;
    SslPtr server(SSL_new(server_ctx));
    SslPtr client(SSL_new(client_ctx));
    BIO* server_bio = nullptr;
    BIO* client_bio = nullptr;
    if (!server || !client || BIO_new_bio_pair(&server_bio, 0, &client_bio, 0) != 1) return connection;
    SSL_set_bio(server.get(), server_bio, server_bio);
    SSL_set_bio(client.get(), client_bio, client_bio);
    SSL_set_accept_state(server.get());
    SSL_set_connect_state(client.get());
    if (offer && SSL_set_session(client.get(), offer) != 1) return connection;
    bool server_done = false;
    bool client_done = false;
    const auto step = [](SSL* ssl, bool* done) {
        const int result = SSL_do_handshake(ssl);
        if (result == 1) *done = true;
        return result == 1 || SSL_get_error(ssl, result) == SSL_ERROR_WANT_READ;
    };
    for (int round = 0; round < 10 && !(server_done && client_done); ++round)
        if (!step(client.get(), &client_done) || !step(server.get(), &server_done)) break;
    char byte = 'x';
    const bool exchanged = server_done && client_done && SSL_write(server.get(), &byte, 1) == 1 &&
                           SSL_read(client.get(), &byte, 1) == 1;
    ERR_clear_error();
    if (!exchanged) return connection;
    connection.completed = true;
    connection.reused = SSL_session_reused(client.get()) == 1;
    connection.server_reused = SSL_session_reused(server.get()) == 1;
    connection.session.reset(SSL_get1_session(client.get()));
    // Freed without a close_notify sent, an SSL marks its session not resumable.
    SSL_shutdown(client.get());
    SSL_shutdown(server.get());
    ERR_clear_error();
    return connection;
}

Connection connect(SSL_CTX* server_ctx, SSL_CTX* client_ctx, SSL_SESSION* offer = nullptr) {
    Connection connection = handshake(server_ctx, client_ctx, offer);
    CHECK(connection.server_reused == connection.reused);
    return connection;
}

// The name of the key that encrypted the session's ticket: its first 16 bytes.
std::string ticket_key_name(const SSL_SESSION* session) {
    const unsigned char* ticket = nullptr;
    size_t length = 0;
    SSL_SESSION_get0_ticket(session, &ticket, &length);
    REQUIRE(length > 16);
    return std::string(reinterpret_cast<const char*>(ticket), 16);
}

std::string current_key_name(TicketKeyRing& ring) {
    const TicketKeyRing::Keys keys = ring.keys();
    return std::string(reinterpret_cast<const char*>(keys.current.name.data()), keys.current.name.size());
}

struct FakeClock {
    std::atomic<std::chrono::steady_clock::time_point> now{std::chrono::steady_clock::time_point{} + 1000h};
    TicketKeyRotation rotation() {
        return {kTicketKeyRotationPeriod, [this] { return now.load(); }};
    }
    void advance(std::chrono::steady_clock::duration by) { now = now.load() + by; }
};

}  // namespace

TEST_CASE("a client with its certificate resumes TLS 1.2 and 1.3 sessions on a listener requiring one", "[tls]") {
    const Certificates certificates;
    for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        DYNAMIC_SECTION("version " << std::hex << version) {
            std::string error;
            const SslCtxPtr server = make_server_tls_context(certificates.listener(true), "admin.tls", &error);
            REQUIRE(server);
            const SslCtxPtr client = make_client_context(version, &certificates.client);
            const Connection first = connect(server.get(), client.get());
            REQUIRE(first.completed);
            CHECK_FALSE(first.reused);
            // Without a session id context, OpenSSL fails this TLS 1.2 handshake
            // (SESSION_ID_CONTEXT_UNINITIALIZED) instead of resuming.
            const Connection second = connect(server.get(), client.get(), first.session.get());
            REQUIRE(second.completed);
            CHECK(second.reused);
        }
    }
}

TEST_CASE("a client without a certificate is refused by a listener requiring one", "[tls]") {
    const Certificates certificates;
    std::string error;
    const SslCtxPtr server = make_server_tls_context(certificates.listener(true), "admin.tls", &error);
    REQUIRE(server);
    const SslCtxPtr client = make_client_context(TLS1_2_VERSION, nullptr);
    CHECK_FALSE(connect(server.get(), client.get()).completed);
}

TEST_CASE("a session id context longer than OpenSSL's 32 bytes is an error", "[tls]") {
    const Certificates certificates;
    std::string error;
    CHECK_FALSE(make_server_tls_context(certificates.listener(false), std::string(33, 'x'), &error));
    CHECK_FALSE(error.empty());
}

TEST_CASE("ticket keys rotate: a ticket resumes after one rotation, not after two; new tickets use the new key",
          "[tls]") {
    const Certificates certificates;
    for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        DYNAMIC_SECTION("version " << std::hex << version) {
            FakeClock clock;
            std::string error;
            const SslCtxPtr server =
                make_server_tls_context(certificates.listener(false), "scep.tls", &error, clock.rotation());
            REQUIRE(server);
            TicketKeyRing* ring = find_ticket_key_ring(server.get());
            REQUIRE(ring);
            const SslCtxPtr client = make_client_context(version, nullptr);

            const std::string key_n = current_key_name(*ring);
            const Connection from_key_n = connect(server.get(), client.get());
            REQUIRE(from_key_n.completed);
            CHECK(ticket_key_name(from_key_n.session.get()) == key_n);

            clock.advance(kTicketKeyRotationPeriod - 1s);
            CHECK(connect(server.get(), client.get(), from_key_n.session.get()).reused);
            CHECK(current_key_name(*ring) == key_n);

            clock.advance(1s);  // one rotation: key N only decrypts now
            const Connection renewed = connect(server.get(), client.get(), from_key_n.session.get());
            CHECK(renewed.reused);
            const std::string key_n1 = current_key_name(*ring);
            CHECK(key_n1 != key_n);
            CHECK(ticket_key_name(renewed.session.get()) == key_n1);  // its ticket is reissued under the new key
            const Connection from_key_n1 = connect(server.get(), client.get());
            REQUIRE(from_key_n1.completed);
            CHECK_FALSE(from_key_n1.reused);
            CHECK(ticket_key_name(from_key_n1.session.get()) == key_n1);

            clock.advance(kTicketKeyRotationPeriod);  // two rotations: key N is gone, N+1 only decrypts
            const Connection after_two = connect(server.get(), client.get(), from_key_n.session.get());
            REQUIRE(after_two.completed);  // a full handshake instead
            CHECK_FALSE(after_two.reused);
            CHECK(ticket_key_name(after_two.session.get()) == current_key_name(*ring));
            CHECK(connect(server.get(), client.get(), from_key_n1.session.get()).reused);
        }
    }
}

TEST_CASE("after two idle rotation periods no earlier ticket resumes", "[tls]") {
    const Certificates certificates;
    FakeClock clock;
    std::string error;
    const SslCtxPtr server =
        make_server_tls_context(certificates.listener(false), "scep.tls", &error, clock.rotation());
    REQUIRE(server);
    const SslCtxPtr client = make_client_context(TLS1_2_VERSION, nullptr);
    const Connection first = connect(server.get(), client.get());
    REQUIRE(first.completed);
    clock.advance(2 * kTicketKeyRotationPeriod);  // nobody connected in between: both rotations at once
    const Connection second = connect(server.get(), client.get(), first.session.get());
    REQUIRE(second.completed);
    CHECK_FALSE(second.reused);
}

TEST_CASE("worker threads share one context while its keys rotate", "[tls]") {
    const Certificates certificates;
    FakeClock clock;
    std::string error;
    const SslCtxPtr server =
        make_server_tls_context(certificates.listener(false), "scep.tls", &error, clock.rotation());
    REQUIRE(server);
    const SslCtxPtr client = make_client_context(TLS1_2_VERSION, nullptr);
    std::atomic<int> completed{0};
    std::atomic<int> reused{0};
    std::vector<std::thread> workers;  // Catch's assertions aren't thread-safe: they count, the main thread checks
    for (int w = 0; w < 4; ++w)
        workers.emplace_back([&] {
            SessionPtr session;
            for (int i = 0; i < 25; ++i) {
                Connection connection = handshake(server.get(), client.get(), session.get());
                if (!connection.completed || connection.server_reused != connection.reused) continue;
                ++completed;
                if (connection.reused) ++reused;
                session = std::move(connection.session);
                if (i % 5 == 4) clock.advance(kTicketKeyRotationPeriod / 2);
            }
        });
    for (auto& worker : workers) worker.join();
    CHECK(completed == 100);
    CHECK(reused > 0);
}
