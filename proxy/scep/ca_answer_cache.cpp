// CaAnswerCache: linear lookup over a handful of entries (per worker, so no locks).
#include "proxy/scep/ca_answer_cache.h"

#include <algorithm>
#include <cctype>
#include <span>

#include "pkcs7/ca_certificates.h"

namespace scepproxy::proxy {

namespace {

bool same_key(const CachedAnswer& entry, std::string_view operation, std::string_view message, uint64_t group) {
    return entry.group == group && entry.operation == operation && entry.message == message;
}

}  // namespace

const CachedAnswer* CaAnswerCache::find(std::string_view operation, std::string_view message, int64_t now_ns,
                                        uint64_t group) {
    for (auto& entry : message.empty() ? default_entries_ : named_entries_) {
        if (!same_key(entry.answer, operation, message, group)) continue;
        ++entry.requests;  // asked for, fresh or not
        return entry.answer.expires_ns > now_ns ? &entry.answer : nullptr;
    }
    return nullptr;
}

const CachedAnswer* CaAnswerCache::find_for_upstream_failure(std::string_view operation, std::string_view message,
                                                             int64_t now_ns, uint64_t group) const {
    for (const auto& entry : message.empty() ? default_entries_ : named_entries_)
        if (same_key(entry.answer, operation, message, group) && entry.answer.stale_until_ns > now_ns)
            return &entry.answer;
    return nullptr;
}

void set_cache_lifetime(CachedAnswer& answer, int64_t now_ns, int64_t ttl_ns, int64_t unix_now) {
    answer.expires_ns = now_ns + ttl_ns;
    answer.stale_until_ns = answer.expires_ns + CaAnswerCache::kMaxStaleNs;
    if (answer.operation != "GetCACert") return;
    const auto parsed = pkcs7::parse_ca_certificates(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(answer.body.data()), answer.body.size()));
    if (!parsed.ok()) return;
    for (const auto& certificate : parsed.value->certificates) {
        if (certificate.not_after <= 0) continue;
        constexpr int64_t kCenturySeconds = int64_t{100} * 365 * 24 * 3600;  // keeps the nanoseconds in range
        const int64_t seconds_left = std::clamp<int64_t>(certificate.not_after - unix_now, 0, kCenturySeconds);
        const int64_t until = now_ns + seconds_left * 1'000'000'000;
        answer.expires_ns = std::min(answer.expires_ns, until);
        answer.stale_until_ns = std::min(answer.stale_until_ns, until);
    }
}

void CaAnswerCache::store(CachedAnswer answer) {
    const bool named = !answer.message.empty();
    std::vector<Entry>& pool = named ? named_entries_ : default_entries_;
    for (auto& entry : pool) {
        if (same_key(entry.answer, answer.operation, answer.message, answer.group)) {
            entry.answer = std::move(answer);  // keeps its request count
            return;
        }
    }
    if (pool.size() < (named ? kMaxNamedEntries : kMaxDefaultEntries)) {
        pool.push_back(Entry{std::move(answer)});
        return;
    }
    // Named: the least asked-for name goes first, a flood of new names evicting its own entries.
    auto evicted = std::min_element(pool.begin(), pool.end(), [named](const Entry& a, const Entry& b) {
        if (named && a.requests != b.requests) return a.requests < b.requests;
        return a.answer.expires_ns < b.answer.expires_ns;
    });
    *evicted = Entry{std::move(answer)};
}

bool caps_list_has(std::string_view caps_body, std::string_view capability) {
    while (!caps_body.empty()) {
        const size_t newline = caps_body.find('\n');
        std::string_view line = caps_body.substr(0, newline);
        caps_body = newline == std::string_view::npos ? std::string_view() : caps_body.substr(newline + 1);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
            line.remove_suffix(1);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
        if (line.size() == capability.size() &&
            std::equal(line.begin(), line.end(), capability.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
            }))
            return true;
    }
    return false;
}

std::string caps_with_post_pki_operation(std::string_view caps_body) {
    std::string caps(caps_body);
    if (caps_list_has(caps_body, "POSTPKIOperation")) return caps;
    const std::string_view newline = caps_body.find("\r\n") != std::string_view::npos ? "\r\n" : "\n";
    const bool ends_with_newline = !caps.empty() && caps.back() == '\n';
    if (!caps.empty() && !ends_with_newline) caps += newline;
    caps += "POSTPKIOperation";
    if (ends_with_newline) caps += newline;
    return caps;
}

}  // namespace scepproxy::proxy
