// TlsTransport: SSL_read_ex/SSL_write_ex with WANT_READ/WANT_WRITE mapped to would_block.
#include "proxy/net/tls_transport.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/net/tls_context.h"

namespace scepproxy::proxy {

TlsTransport::TlsTransport(SSL_CTX* ctx, int fd, Role role, const std::string& host_name, SSL_SESSION* session)
    : fd_(fd), ssl_(SSL_new(ctx)) {
    if (!ssl_) return;
    SSL_set_fd(ssl_, fd_);
    if (role == Role::server) {
        SSL_set_accept_state(ssl_);
        return;
    }
    SSL_set_connect_state(ssl_);
    if (!host_name.empty()) {
        SSL_set_tlsext_host_name(ssl_, host_name.c_str());
        // Names and IP literals alike (SSL_set1_host accepts both for the check).
        SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(ssl_, host_name.c_str());
    }
    if (session) SSL_set_session(ssl_, session);
}

TlsTransport::~TlsTransport() {
    if (ssl_) {
        // Best effort close_notify; never wait for the peer's.
        if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
        SSL_free(ssl_);
    }
    ERR_clear_error();
    if (fd_ >= 0) ::close(fd_);
}

IoResult TlsTransport::result_of(int ssl_result, bool reading) {
    const int error = SSL_get_error(ssl_, ssl_result);
    switch (error) {
        case SSL_ERROR_WANT_READ:
            if (!reading) write_wants_read_ = true;
            return {IoStatus::would_block, 0, 0};
        case SSL_ERROR_WANT_WRITE:
            if (reading) read_wants_write_ = true;
            return {IoStatus::would_block, 0, 0};
        case SSL_ERROR_ZERO_RETURN: return {IoStatus::closed, 0, 0};
        case SSL_ERROR_SYSCALL: {
            const int saved_errno = errno;
            ERR_clear_error();
            // EOF without close_notify: the HTTP framing tells whether anything was cut.
            return {IoStatus::closed, 0, saved_errno};
        }
        default: {
            const long verify = SSL_get_verify_result(ssl_);
            failure_ = verify != X509_V_OK
                           ? std::string("certificate verification: ") + X509_verify_cert_error_string(verify)
                           : take_openssl_error();
            ERR_clear_error();
            return {IoStatus::error, 0, EPROTO};
        }
    }
}

IoResult TlsTransport::read(char* buffer, size_t length) {
    read_wants_write_ = false;
    size_t n = 0;
    const int rc = SSL_read_ex(ssl_, buffer, length, &n);
    if (rc == 1) return {IoStatus::ok, n, 0};
    return result_of(rc, true);
}

IoResult TlsTransport::write(const iovec* parts, int count) {
    write_wants_read_ = false;
    // One record per part; our callers pass one contiguous buffer.
    size_t total = 0;
    for (int i = 0; i < count; ++i) {
        size_t n = 0;
        const int rc = SSL_write_ex(ssl_, parts[i].iov_base, parts[i].iov_len, &n);
        if (rc != 1) {
            if (total > 0) return {IoStatus::ok, total, 0};
            return result_of(rc, false);
        }
        total += n;
        if (n < parts[i].iov_len) break;
    }
    return {IoStatus::ok, total, 0};
}

}  // namespace scepproxy::proxy
