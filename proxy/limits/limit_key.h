// LimitKey: what a per-client or per-token limit counts against (a client address group, or a token).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "proxy/net/socket_address.h"
#include "token/enrollment_token.h"

namespace scepproxy::proxy {

struct LimitKey {
    // kind, then 16 bytes: an address masked to its prefix (IPv4 in the first 4), or a token hash prefix.
    std::array<uint8_t, 17> bytes{};
    bool operator==(const LimitKey&) const = default;
};

struct LimitKeyHash {
    size_t operator()(const LimitKey& key) const {
        // The bytes are either a client address or a SHA-256 prefix: FNV-1a spreads both well enough
        // for a hash table (the tables are bounded, so a crafted collision costs only speed in one shard).
        uint64_t h = 1469598103934665603ull;
        for (uint8_t b : key.bytes) h = (h ^ b) * 1099511628211ull;
        return static_cast<size_t>(h ^ (h >> 29));
    }
};

// The client's address group: IPv4 (and IPv4-mapped IPv6) masked to ipv4_prefix bits, IPv6 to
// ipv6_prefix bits (a /64 is usually one customer). The port never counts.
LimitKey client_limit_key(const SocketAddress& peer, unsigned ipv4_prefix, unsigned ipv6_prefix);

// The token (its hash's first 16 bytes: collisions are as unlikely as for the token itself).
LimitKey token_limit_key(const token::TokenHash& hash);

}  // namespace scepproxy::proxy
