// TLS contexts: the listeners' (Mozilla "intermediate" profile, optional client certificates) and the upstreams'.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "conf/config.h"

namespace scepproxy::proxy {

struct SslCtxDeleter {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// TLS 1.2 and 1.3 only, AEAD ciphers with forward secrecy, X25519/P-256/P-384, session tickets.
// client_ca_file set: a client certificate signed by it is required. Null with *error on failure.
SslCtxPtr make_server_tls_context(const conf::ServerTlsConfig& config, std::string* error);

// For https upstreams: verification on unless config.verify is false, against ca_file or the
// system store; the host name is checked per connection; optional client certificate.
SslCtxPtr make_upstream_tls_context(const conf::UpstreamTlsConfig& config, std::string* error);

// The first error on OpenSSL's queue (and clears the queue), for logs.
std::string take_openssl_error();

}  // namespace scepproxy::proxy
