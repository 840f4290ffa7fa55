// TLS contexts: the listeners' (Mozilla "intermediate" profile, optional client certificates) and the upstreams'.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "proxy/net/ticket_key_ring.h"

namespace scepproxy::proxy {

struct SslCtxDeleter {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// How often the session ticket keys change, and the clock that tells; tests pass a fake clock.
struct TicketKeyRotation {
    std::chrono::steady_clock::duration period = kTicketKeyRotationPeriod;
    TicketClock clock;  // empty: steady_clock
};

// TLS 1.2 and 1.3 only, AEAD ciphers with forward secrecy, X25519/P-256/P-384, session tickets
// under keys that rotate (TicketKeyRing). client_ca_file set: a client certificate signed by it
// is required. session_id_context names the listener (at most 32 bytes): a session resumes only
// on the listener that made it, and OpenSSL refuses to resume at all on a context that verifies
// clients without one. Null with *error on failure.
SslCtxPtr make_server_tls_context(const conf::ServerTlsConfig& config, std::string_view session_id_context,
                                  std::string* error, TicketKeyRotation rotation = {});

// For https upstreams: verification on unless config.verify is false, against ca_file or the
// system store; the host name is checked per connection; optional client certificate.
SslCtxPtr make_upstream_tls_context(const conf::UpstreamTlsConfig& config, std::string* error);

// The first error on OpenSSL's queue (and clears the queue), for logs.
std::string take_openssl_error();

}  // namespace scepproxy::proxy
