// PlainSocketTransport: non-blocking read/write on a TCP socket, errno mapped to IoStatus.
#include "proxy/net/transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace scepproxy::proxy {

PlainSocketTransport::~PlainSocketTransport() {
    if (fd_ >= 0) ::close(fd_);
}

IoResult PlainSocketTransport::read(char* buffer, size_t length) {
    for (;;) {
        const ssize_t n = ::recv(fd_, buffer, length, 0);
        if (n > 0) return {IoStatus::ok, static_cast<size_t>(n), 0};
        if (n == 0) return {IoStatus::closed, 0, 0};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoStatus::would_block, 0, 0};
        return {IoStatus::error, 0, errno};
    }
}

IoResult PlainSocketTransport::write(const iovec* parts, int count) {
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(parts);
    message.msg_iovlen = static_cast<size_t>(count);
    for (;;) {
        // MSG_NOSIGNAL: a peer that went away is an error result, not a SIGPIPE.
        const ssize_t n = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
        if (n >= 0) return {IoStatus::ok, static_cast<size_t>(n), 0};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoStatus::would_block, 0, 0};
        if (errno == EPIPE || errno == ECONNRESET) return {IoStatus::closed, 0, errno};
        return {IoStatus::error, 0, errno};
    }
}

}  // namespace scepproxy::proxy
