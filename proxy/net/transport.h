// Transport: how a connection moves bytes — plain sockets now, TLS (OpenSSL) plugs in behind the same interface.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <string>

namespace scepproxy::proxy {

enum class IoStatus { ok, would_block, closed, error };

struct IoResult {
    IoStatus status = IoStatus::ok;
    size_t bytes = 0;
    int error_code = 0;  // errno (or TLS error) when status == error
};

class Transport {
public:
    virtual ~Transport() = default;
    virtual int fd() const = 0;
    virtual IoResult read(char* buffer, size_t length) = 0;
    virtual IoResult write(const iovec* parts, int count) = 0;
    // Bytes already read from the socket but not yet returned (TLS records); 0 for plain sockets.
    // Edge-triggered readers must drain these before waiting for the next readiness event.
    virtual size_t pending() const { return 0; }
    // Plain sockets: a read shorter than asked means the socket is drained (edge-triggered readers
    // may stop there and save a syscall). TLS returns one record per read, so it means nothing there.
    virtual bool short_read_means_drained() const { return true; }
    // TLS: the last read/write stopped because the *other* direction must progress first
    // (a handshake). The caller retries that operation on the other readiness event too.
    virtual bool read_wants_write() const { return false; }
    virtual bool write_wants_read() const { return false; }
    // Why the last error happened, when the transport knows more than errno (TLS), else empty.
    virtual std::string failure() const { return {}; }
};

// A plain TCP socket; owns and closes the fd.
class PlainSocketTransport final : public Transport {
public:
    explicit PlainSocketTransport(int fd) : fd_(fd) {}
    ~PlainSocketTransport() override;
    PlainSocketTransport(const PlainSocketTransport&) = delete;
    PlainSocketTransport& operator=(const PlainSocketTransport&) = delete;

    int fd() const override { return fd_; }
    IoResult read(char* buffer, size_t length) override;
    IoResult write(const iovec* parts, int count) override;

private:
    int fd_;
};

}  // namespace scepproxy::proxy
