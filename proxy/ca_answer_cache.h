// CaAnswerCache: one worker's cached GetCACert/GetCACaps answers for one profile (ca_cache_ttl), bounded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace scepproxy::proxy {

struct CachedAnswer {
    std::string operation;     // "GetCACert" or "GetCACaps"
    std::string message;       // GetCACert's CA name as sent ("" for GetCACaps: its answer doesn't depend on it)
    std::string content_type;
    std::string body;
    int64_t expires_ns = 0;    // monotonic clock
};

class CaAnswerCache {
public:
    static constexpr size_t kMaxEntries = 16;          // messages are client-chosen: bound the key space
    static constexpr size_t kMaxBodyBytes = 65536;
    static constexpr size_t kMaxMessageBytes = 256;

    const CachedAnswer* find(std::string_view operation, std::string_view message, int64_t now_ns) const;
    // Keeps a copy; replaces an entry with the same key, else evicts the one closest to expiry when full.
    void store(CachedAnswer answer);
    static bool cacheable(std::string_view message, size_t body_bytes) {
        return message.size() <= kMaxMessageBytes && body_bytes <= kMaxBodyBytes;
    }

private:
    std::vector<CachedAnswer> entries_;
};

// Whether a GetCACaps answer lists `capability` (one keyword per line, case-insensitive, CR/LF tolerant).
bool caps_list_has(std::string_view caps_body, std::string_view capability);

// The answer with POSTPKIOperation added as a last line if it isn't listed, in the answer's own
// line-ending style; unchanged when it is.
std::string caps_with_post_pki_operation(std::string_view caps_body);

}  // namespace scepproxy::proxy
