// SocketAddress: resolving, printing and binding IPv4/IPv6 TCP addresses (start-up time, may block).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace scepproxy::proxy {

struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;

    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
    int family() const { return storage.ss_family; }
    uint16_t port() const;
    void set_port(uint16_t port);
    std::string to_string() const;  // "127.0.0.1:8080", "[::1]:8080"

    static SocketAddress from_sockaddr(const sockaddr* address, socklen_t length);
};

// Numeric or name lookup (getaddrinfo); empty host or "*" means all IPv4 addresses.
// On failure returns an empty list and sets *error.
std::vector<SocketAddress> resolve_tcp_address(const std::string& host, uint16_t port, std::string* error);

// A non-blocking listening socket with SO_REUSEADDR and, if asked, SO_REUSEPORT (one per worker).
// Returns -1 and sets *error on failure.
int open_listening_socket(const SocketAddress& address, bool reuse_port, int backlog, std::string* error);

// The address a socket is bound to (to learn the port the kernel picked for port 0).
SocketAddress local_address_of(int fd);

}  // namespace scepproxy::proxy
