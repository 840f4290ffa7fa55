// CaAnswerCache: one worker's cached GetCACert/GetCACaps answers for one profile (ca_cache_ttl), bounded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace scepproxy::proxy {

struct CachedAnswer {
    std::string operation;  // "GetCACert" or "GetCACaps"
    std::string message;    // GetCACert's CA name as sent ("" for GetCACaps: its answer doesn't depend on it)
    // GetCACert in a profile whose upstreams hold different certificates: the group's key
    // (UpstreamCertificateGroups::group_key) whose answer it is; 0 otherwise.
    uint64_t group = 0;
    std::string content_type;
    std::string body;
    int64_t expires_ns = 0;  // monotonic clock: fresh until then
    // Monotonic clock: until then it may still be served when the upstream fails (stale-if-error).
    // Never past the CA certificate's own expiry.
    int64_t stale_until_ns = 0;
};

// Two pools, so that a device sending many CA names can't push out the answers everyone uses:
// - default answers (message ""): GetCACaps and each group's GetCACert for the default name. Their
//   keys are the proxy's, not the client's; evicted only by each other (closest to expiry first).
// - named answers (GetCACert with a message): client-chosen names, so bounded; when full, the
//   entry whose name was asked for least is evicted (closest to expiry among equals). A flood of
//   new names evicts its own entries, not the name the fleet keeps asking for.
class CaAnswerCache {
public:
    static constexpr size_t kMaxDefaultEntries = 16;  // GetCACaps + one GetCACert per certificate group
    static constexpr size_t kMaxNamedEntries = 16;    // messages are client-chosen: bound the key space
    static constexpr size_t kMaxBodyBytes = 65536;
    static constexpr size_t kMaxMessageBytes = 256;

    static constexpr int64_t kMaxStaleNs = int64_t{24} * 3600 * 1'000'000'000;  // stale-if-error, at most

    // A fresh entry, or null. Counts the request for the name (so not `const`: see named answers).
    const CachedAnswer* find(std::string_view operation, std::string_view message, int64_t now_ns, uint64_t group = 0);
    // An entry that may be served because the upstream failed (fresh or stale), or null.
    const CachedAnswer* find_for_upstream_failure(std::string_view operation, std::string_view message, int64_t now_ns,
                                                  uint64_t group = 0) const;
    // Keeps a copy; replaces an entry with the same key, else, when its pool is full, evicts one of
    // that pool (see above).
    void store(CachedAnswer answer);
    static bool cacheable(std::string_view message, size_t body_bytes) {
        return message.size() <= kMaxMessageBytes && body_bytes <= kMaxBodyBytes;
    }

private:
    struct Entry {
        CachedAnswer answer;
        uint64_t requests = 0;  // finds for its key while it was kept: how much the name is used
    };
    std::vector<Entry> default_entries_;  // message ""
    std::vector<Entry> named_entries_;
};

// Sets answer.expires_ns and stale_until_ns from now, the ttl and, for a GetCACert answer, the
// earliest notAfter of the certificates it carries (`unix_now`: the same instant in Unix seconds):
// fresh for ttl, served stale on upstream failure for at most kMaxStaleNs more, neither past the
// moment a certificate of it expires. An answer whose certificates can't be read gets ttl only.
void set_cache_lifetime(CachedAnswer& answer, int64_t now_ns, int64_t ttl_ns, int64_t unix_now);

// Whether a GetCACaps answer lists `capability` (one keyword per line, case-insensitive, CR/LF tolerant).
bool caps_list_has(std::string_view caps_body, std::string_view capability);

// The answer with POSTPKIOperation added as a last line if it isn't listed, in the answer's own
// line-ending style; unchanged when it is.
std::string caps_with_post_pki_operation(std::string_view caps_body);

}  // namespace scepproxy::proxy
