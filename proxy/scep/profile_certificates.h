// ProfileCertificates: the latest certificate groups of one profile's upstreams — published by the watcher, read by every worker.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "proxy/scep/upstream_certificate_groups.h"

namespace scepproxy::proxy {

// One per profile and configuration generation. The watcher (control loop) replaces the groups
// whenever an upstream's certificates are fetched; a worker takes the current ones once per
// request that needs them (an atomic shared_ptr: the groups it holds stay valid to its end).
class ProfileCertificates {
public:
    // Null until the first upstream's certificates are known.
    std::shared_ptr<const UpstreamCertificateGroups> current() const { return groups_.load(std::memory_order_acquire); }
    void publish(std::shared_ptr<const UpstreamCertificateGroups> groups) {
        groups_.store(std::move(groups), std::memory_order_release);
    }

    // The group whose GetCACert answer a token was last shown (key 0: none known). A recipient
    // whose name (issuer and serial) several groups' different certificates carry — micromdm's
    // `scepserver ca -init` names every CA alike — goes to the group the device was shown. Shared
    // by the workers under a lock; used only by profiles whose upstreams differ. Bounded: past
    // kMaxRemembered tokens the oldest is forgotten.
    void remember_shown(uint64_t token_key, uint64_t group_key);
    uint64_t shown_to(uint64_t token_key) const;
    static constexpr std::size_t kMaxRemembered = 65536;

    // A GetCACert answer's bytes, as a hash: the watcher records each upstream's fetched answer;
    // a worker whose own answer from that upstream differs asks for a fetch at once (the
    // certificates may have changed since), and the watcher takes the requests.
    static uint64_t answer_hash(std::string_view body);
    void record_fetched_answer(std::size_t upstream, uint64_t hash);
    void note_answer(std::size_t upstream, uint64_t hash);
    uint32_t take_refresh_requests() { return refresh_requests_.exchange(0, std::memory_order_relaxed); }
    static constexpr std::size_t kMaxUpstreams = 32;

private:
    std::atomic<std::shared_ptr<const UpstreamCertificateGroups>> groups_;
    mutable std::mutex shown_mutex_;
    std::unordered_map<uint64_t, uint64_t> shown_;
    std::deque<uint64_t> shown_order_;                                    // insertion order, for the bound
    std::array<std::atomic<uint64_t>, kMaxUpstreams> fetched_answers_{};  // 0: none fetched yet
    std::atomic<uint32_t> refresh_requests_{0};                           // bit i: upstream i
};

}  // namespace scepproxy::proxy
