// TlsTransport: OpenSSL over a non-blocking socket behind the Transport interface (handshake done implicitly).
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "proxy/net/transport.h"

namespace scepproxy::proxy {

class TlsTransport final : public Transport {
public:
    enum class Role { server, client };
    // Owns fd. For clients, `host_name` is sent as SNI and checked against the certificate
    // (when the context verifies); `session` (may be null) is offered for resumption.
    TlsTransport(SSL_CTX* ctx, int fd, Role role, const std::string& host_name = {}, SSL_SESSION* session = nullptr);
    ~TlsTransport() override;
    TlsTransport(const TlsTransport&) = delete;
    TlsTransport& operator=(const TlsTransport&) = delete;

    bool valid() const { return ssl_ != nullptr; }
    int fd() const override { return fd_; }
    IoResult read(char* buffer, size_t length) override;
    IoResult write(const iovec* parts, int count) override;
    size_t pending() const override { return ssl_ ? static_cast<size_t>(SSL_pending(ssl_)) : 0; }
    bool short_read_means_drained() const override { return false; }
    bool read_wants_write() const override { return read_wants_write_; }
    bool write_wants_read() const override { return write_wants_read_; }
    std::string failure() const override { return failure_; }

    // A new session to offer next time (caller owns the reference), or null.
    SSL_SESSION* take_session() const { return ssl_ ? SSL_get1_session(ssl_) : nullptr; }

private:
    IoResult result_of(int ssl_result, bool reading);

    int fd_;
    SSL* ssl_ = nullptr;
    bool read_wants_write_ = false;
    bool write_wants_read_ = false;
    std::string failure_;  // why the last error happened (certificate verification, protocol), for logs
};

}  // namespace scepproxy::proxy
