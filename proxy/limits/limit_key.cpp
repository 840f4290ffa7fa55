// LimitKey: masking client addresses to their group, IPv4-mapped IPv6 counted as IPv4.
#include "proxy/limits/limit_key.h"

#include <netinet/in.h>

namespace scepproxy::proxy {
namespace {

constexpr uint8_t kIpv4 = 4;
constexpr uint8_t kIpv6 = 6;
constexpr uint8_t kToken = 't';

void mask_to_prefix(uint8_t* bytes, size_t size, unsigned prefix_bits) {
    for (size_t i = 0; i < size; ++i) {
        const unsigned first_bit = static_cast<unsigned>(i) * 8;
        if (prefix_bits >= first_bit + 8) continue;
        const unsigned kept = prefix_bits > first_bit ? prefix_bits - first_bit : 0;
        bytes[i] &= static_cast<uint8_t>(0xff00u >> kept);
    }
}

bool is_ipv4_mapped(const in6_addr& address) {
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(address.s6_addr, prefix, sizeof prefix) == 0;
}

}  // namespace

LimitKey client_limit_key(const SocketAddress& peer, unsigned ipv4_prefix, unsigned ipv6_prefix) {
    LimitKey key;
    uint8_t* address = key.bytes.data() + 1;
    if (peer.family() == AF_INET) {
        key.bytes[0] = kIpv4;
        std::memcpy(address, &reinterpret_cast<const sockaddr_in*>(peer.get())->sin_addr, 4);
        mask_to_prefix(address, 4, ipv4_prefix);
    } else if (peer.family() == AF_INET6) {
        const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(peer.get())->sin6_addr;
        if (is_ipv4_mapped(v6)) {  // a "::" listener's IPv4 clients
            key.bytes[0] = kIpv4;
            std::memcpy(address, v6.s6_addr + 12, 4);
            mask_to_prefix(address, 4, ipv4_prefix);
        } else {
            key.bytes[0] = kIpv6;
            std::memcpy(address, v6.s6_addr, 16);
            mask_to_prefix(address, 16, ipv6_prefix);
        }
    }
    return key;
}

LimitKey token_limit_key(const token::TokenHash& hash) {
    LimitKey key;
    key.bytes[0] = kToken;
    std::memcpy(key.bytes.data() + 1, hash.bytes.data(), 16);
    return key;
}

}  // namespace scepproxy::proxy
