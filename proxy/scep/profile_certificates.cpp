// ProfileCertificates: which group's certificates each token was shown (bounded, under a lock); answers that ask for a refresh.
#include "proxy/scep/profile_certificates.h"

#include <functional>

namespace scepproxy::proxy {

void ProfileCertificates::remember_shown(uint64_t token_key, uint64_t group_key) {
    const std::lock_guard<std::mutex> lock(shown_mutex_);
    const auto [entry, inserted] = shown_.insert_or_assign(token_key, group_key);
    if (!inserted) return;
    shown_order_.push_back(token_key);
    if (shown_order_.size() <= kMaxRemembered) return;
    shown_.erase(shown_order_.front());
    shown_order_.pop_front();
}

uint64_t ProfileCertificates::shown_to(uint64_t token_key) const {
    const std::lock_guard<std::mutex> lock(shown_mutex_);
    const auto found = shown_.find(token_key);
    return found == shown_.end() ? 0 : found->second;
}

uint64_t ProfileCertificates::answer_hash(std::string_view body) { return std::hash<std::string_view>{}(body) | 1; }

void ProfileCertificates::record_fetched_answer(std::size_t upstream, uint64_t hash) {
    if (upstream < kMaxUpstreams) fetched_answers_[upstream].store(hash, std::memory_order_relaxed);
}

void ProfileCertificates::note_answer(std::size_t upstream, uint64_t hash) {
    if (upstream >= kMaxUpstreams) return;
    const uint64_t fetched = fetched_answers_[upstream].load(std::memory_order_relaxed);
    if (fetched != hash) refresh_requests_.fetch_or(uint32_t{1} << upstream, std::memory_order_relaxed);
}

}  // namespace scepproxy::proxy
