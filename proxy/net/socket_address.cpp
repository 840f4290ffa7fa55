// SocketAddress: getaddrinfo, inet_ntop and listening-socket set-up.
#include "proxy/net/socket_address.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace scepproxy::proxy {

uint16_t SocketAddress::port() const {
    if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
    if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
    return 0;
}

void SocketAddress::set_port(uint16_t port) {
    if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
    if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
}

std::string SocketAddress::to_string() const {
    char host[INET6_ADDRSTRLEN] = "?";
    if (family() == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(port());
    }
    if (family() == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(port());
    }
    return "unknown";
}

SocketAddress SocketAddress::from_sockaddr(const sockaddr* address, socklen_t length) {
    SocketAddress result;
    if (length > sizeof result.storage) length = sizeof result.storage;
    std::memcpy(&result.storage, address, length);
    result.length = length;
    return result;
}

std::vector<SocketAddress> resolve_tcp_address(const std::string& host, uint16_t port, std::string* error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    const bool any = host.empty() || host == "*";
    if (any) hints.ai_flags |= AI_PASSIVE;
    if (any) hints.ai_family = AF_INET;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    const int rc = getaddrinfo(any ? nullptr : host.c_str(), service.c_str(), &hints, &found);
    std::vector<SocketAddress> addresses;
    if (rc != 0) {
        // AI_ADDRCONFIG hides loopback-only families on hosts without other interfaces: try once without it.
        hints.ai_flags &= ~AI_ADDRCONFIG;
        if (getaddrinfo(any ? nullptr : host.c_str(), service.c_str(), &hints, &found) != 0) {
            if (error) *error = "cannot resolve '" + host + "': " + gai_strerror(rc);
            return addresses;
        }
    }
    for (addrinfo* ai = found; ai; ai = ai->ai_next)
        addresses.push_back(SocketAddress::from_sockaddr(ai->ai_addr, ai->ai_addrlen));
    freeaddrinfo(found);
    return addresses;
}

int open_listening_socket(const SocketAddress& address, bool reuse_port, int backlog, std::string* error) {
    const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (error) *error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
        if (error) *error = std::string("SO_REUSEPORT: ") + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    if (address.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (::bind(fd, address.get(), address.length) != 0) {
        if (error) *error = "bind " + address.to_string() + ": " + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    if (::listen(fd, backlog) != 0) {
        if (error) *error = "listen " + address.to_string() + ": " + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

SocketAddress local_address_of(int fd) {
    SocketAddress result;
    result.length = sizeof result.storage;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&result.storage), &result.length) != 0) result.length = 0;
    return result;
}

}  // namespace scepproxy::proxy
