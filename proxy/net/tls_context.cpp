// TLS contexts: protocol floor, cipher and group lists, certificates and verification set once per context.
#include "proxy/net/tls_context.h"

#include <openssl/err.h>

#include <utility>

namespace scepproxy::proxy {
namespace {

// Mozilla "intermediate": TLS 1.2 AEAD suites with ECDHE (TLS 1.3 suites are OpenSSL's defaults, all AEAD).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";

bool common_settings(SSL_CTX* ctx, std::string* error) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 || SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
        SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
        *error = "TLS settings: " + take_openssl_error();
        return false;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    // Partial writes and moving buffers: our write buffer may grow between retries.
    SSL_CTX_set_mode(ctx,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    return true;
}

bool load_certificate_and_key(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file,
                              std::string* error) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
        *error = "certificate " + cert_file + ": " + take_openssl_error();
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        *error = "private key " + key_file + ": " + take_openssl_error();
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        *error = "private key " + key_file + " does not match certificate " + cert_file;
        return false;
    }
    return true;
}

}  // namespace

std::string take_openssl_error() {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) return "unknown TLS error";
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    return buffer;
}

SslCtxPtr make_server_tls_context(const conf::ServerTlsConfig& config, std::string_view session_id_context,
                                  std::string* error, TicketKeyRotation rotation) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx || !common_settings(ctx.get(), error)) return nullptr;
    if (!load_certificate_and_key(ctx.get(), config.cert_file, config.key_file, error)) return nullptr;
    // Resumption: stateless tickets (one context is shared by every worker, so any worker can resume).
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx.get(), 1);
    if (session_id_context.empty() || session_id_context.size() > SSL_MAX_SID_CTX_LENGTH) {
        *error = "session id context '" + std::string(session_id_context) + "': must be 1 to 32 bytes";
        return nullptr;
    }
    if (SSL_CTX_set_session_id_context(ctx.get(), reinterpret_cast<const unsigned char*>(session_id_context.data()),
                                       static_cast<unsigned int>(session_id_context.size())) != 1) {
        *error = "session id context: " + take_openssl_error();
        return nullptr;
    }
    if (!install_ticket_key_ring(ctx.get(), rotation.period, std::move(rotation.clock), error)) return nullptr;
    if (!config.client_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx.get(), config.client_ca_file.c_str(), nullptr) != 1) {
            *error = "client CA " + config.client_ca_file + ": " + take_openssl_error();
            return nullptr;
        }
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca_file.c_str());
        if (names) SSL_CTX_set_client_CA_list(ctx.get(), names);
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    return ctx;
}

SslCtxPtr make_upstream_tls_context(const conf::UpstreamTlsConfig& config, std::string* error) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx || !common_settings(ctx.get(), error)) return nullptr;
    if (config.verify) {
        const bool loaded = config.ca_file.empty()
                                ? SSL_CTX_set_default_verify_paths(ctx.get()) == 1
                                : SSL_CTX_load_verify_locations(ctx.get(), config.ca_file.c_str(), nullptr) == 1;
        if (!loaded) {
            *error = "upstream CA " + (config.ca_file.empty() ? std::string("(system store)") : config.ca_file) + ": " +
                     take_openssl_error();
            return nullptr;
        }
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    }
    // Resumption: the pools keep each upstream's last session and offer it on the next connection.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    if (!config.client_cert_file.empty() &&
        !load_certificate_and_key(ctx.get(), config.client_cert_file, config.client_key_file, error))
        return nullptr;
    return ctx;
}

}  // namespace scepproxy::proxy
