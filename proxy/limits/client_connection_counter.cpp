// ClientConnectionCounter: sharded counts, an entry removed when its last connection closes.
#include "proxy/limits/client_connection_counter.h"

namespace scepproxy::proxy {

ClientConnectionCounter::ClientConnectionCounter(uint32_t max_per_client)
    : max_per_client_(max_per_client), shards_(std::make_unique<Shard[]>(kShards)) {}

std::optional<ClientConnectionCounter::Slot> ClientConnectionCounter::try_acquire(const LimitKey& key) {
    if (!enabled()) return Slot{};
    Shard& shard = shard_of(key);
    {
        std::lock_guard lock(shard.mutex);
        uint32_t& open = shard.open[key];
        if (open >= max_per_client_) return std::nullopt;  // an existing group: its entry stays
        ++open;
    }
    return std::optional<Slot>(std::in_place, this, key);
}

void ClientConnectionCounter::release(const LimitKey& key) {
    Shard& shard = shard_of(key);
    std::lock_guard lock(shard.mutex);
    const auto found = shard.open.find(key);
    if (found == shard.open.end()) return;
    if (--found->second == 0) shard.open.erase(found);
}

size_t ClientConnectionCounter::groups() const {
    size_t total = 0;
    for (size_t i = 0; i < kShards; ++i) {
        std::lock_guard lock(shards_[i].mutex);
        total += shards_[i].open.size();
    }
    return total;
}

}  // namespace scepproxy::proxy
