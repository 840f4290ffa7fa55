// ClientConnectionCounter: open SCEP connections per client address group, against a per-client limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "proxy/limits/limit_key.h"

namespace scepproxy::proxy {

// Shared by all workers (a client's connections land on any of them), sharded, one mutex per shard
// held for one hash lookup at accept and at close. A group is kept only while it has connections
// open, so the table never holds more than limits.max_connections entries.
class ClientConnectionCounter {
public:
    explicit ClientConnectionCounter(uint32_t max_per_client);  // 0: no limit, nothing counted
    ClientConnectionCounter(const ClientConnectionCounter&) = delete;
    ClientConnectionCounter& operator=(const ClientConnectionCounter&) = delete;

    // One connection's place in its group's count, given back when destroyed.
    class Slot {
    public:
        Slot() = default;
        Slot(ClientConnectionCounter* counter, const LimitKey& key) : counter_(counter), key_(key) {}
        Slot(Slot&& other) noexcept : counter_(other.counter_), key_(other.key_) { other.counter_ = nullptr; }
        Slot& operator=(Slot&&) = delete;
        Slot(const Slot&) = delete;
        ~Slot() {
            if (counter_) counter_->release(key_);
        }

    private:
        ClientConnectionCounter* counter_ = nullptr;
        LimitKey key_;
    };

    // Thread-safe. Empty when the group already has max_per_client connections open.
    std::optional<Slot> try_acquire(const LimitKey& key);
    size_t groups() const;  // groups with connections open (tests)
    bool enabled() const { return max_per_client_ > 0; }

private:
    static constexpr size_t kShards = 16;
    struct Shard {
        std::mutex mutex;
        std::unordered_map<LimitKey, uint32_t, LimitKeyHash> open;
    };
    void release(const LimitKey& key);
    Shard& shard_of(const LimitKey& key) const { return shards_[LimitKeyHash{}(key) % kShards]; }

    const uint32_t max_per_client_;
    std::unique_ptr<Shard[]> shards_;
};

}  // namespace scepproxy::proxy
