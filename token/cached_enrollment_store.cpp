// The layer in front of every backend: per-worker access and binding caches (epoch-invalidated), on_error policy, observation.
#include "token/cached_enrollment_store.h"

#include <atomic>
#include <chrono>
#include <list>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "base/clock.h"

namespace scepproxy::token {
namespace {

StoreOutcome outcome_of(StoreStatus status) {
    switch (status) {
        case StoreStatus::ok: return StoreOutcome::ok;
        case StoreStatus::not_found: return StoreOutcome::not_found;
        case StoreStatus::conflict: return StoreOutcome::conflict;
        case StoreStatus::invalid: return StoreOutcome::invalid;
        case StoreStatus::unavailable: return StoreOutcome::unavailable;
    }
    return StoreOutcome::unavailable;
}

template <class T>
StoreOutcome outcome_of(const StoreResult<T>& result) {
    return outcome_of(result.status);
}
StoreOutcome outcome_of(const FinishResult& result) { return outcome_of(result.status); }

StoreOutcome outcome_of(const AccessDecision& decision) {
    return decision.verdict == AccessVerdict::store_unavailable ? StoreOutcome::unavailable : StoreOutcome::ok;
}

StoreOutcome outcome_of(const BindDecision& decision) {
    switch (decision.verdict) {
        case BindVerdict::bound:
        case BindVerdict::already_bound:
        case BindVerdict::not_bound: return StoreOutcome::ok;
        case BindVerdict::transaction_mismatch:
        case BindVerdict::token_consumed: return StoreOutcome::conflict;
        case BindVerdict::token_unknown:
        case BindVerdict::token_expired:
        case BindVerdict::token_revoked: return StoreOutcome::not_found;
        case BindVerdict::transaction_invalid: return StoreOutcome::invalid;
        case BindVerdict::store_unavailable: return StoreOutcome::unavailable;
    }
    return StoreOutcome::unavailable;
}

// What the store and all its sessions share. The epoch moves on every local write that can
// change an access answer; the binding epoch on every local consume or release. A cache entry
// from an older epoch is never used.
struct CacheShared {
    StoreCacheOptions options;
    StoreObserver* observer = nullptr;
    std::atomic<uint64_t> epoch{0};
    std::atomic<uint64_t> binding_epoch{0};

    int64_t now_ns() const { return options.monotonic_ns(); }
    double seconds_since(int64_t started_ns) const { return static_cast<double>(now_ns() - started_ns) / 1e9; }
    void record(StoreOperation operation, StoreOutcome outcome, double seconds) const {
        if (observer) observer->record(operation, outcome, seconds);
    }
};

// The cache key: everything in the query but the time (which only matters for expiry,
// re-checked on every hit). Written into `key`, whose capacity is reused request after request.
void write_cache_key(const AccessQuery& query, std::string& key) {
    key.assign(reinterpret_cast<const char*>(query.token_hash.bytes.data()), query.token_hash.bytes.size());
    key.push_back(query.check_device ? '1' : '0');
    // NUL separators: none of the parts can hold one where it matters for matching.
    for (const std::string* part : {&query.operation, &query.message_type, &query.transaction_id}) {
        key.append(*part);
        key.push_back('\0');
    }
}

// The binding cache's key: the token and the transaction it is bound to.
void write_binding_key(const BindQuery& query, std::string& key) {
    key.assign(reinterpret_cast<const char*>(query.token_hash.bytes.data()), query.token_hash.bytes.size());
    key.append(query.transaction_id);
}

// Makes room for `key` in a per-worker cache: stale entries go first, then everything.
template <class Cache>
void make_room(Cache& cache, const std::string& key, size_t max_entries, int64_t now_ns) {
    if (cache.size() < max_entries || cache.find(key) != cache.end()) return;
    std::erase_if(cache, [now_ns](const auto& entry) { return entry.second.fresh_until_ns <= now_ns; });
    if (cache.size() >= max_entries) cache.clear();
}

// A cached answer that held a valid token: by now the token may have expired.
bool expired_since(const AccessDecision& decision, int64_t now) {
    const bool token_was_valid = decision.verdict == AccessVerdict::allow ||
                                 decision.verdict == AccessVerdict::device_not_enrolled ||
                                 decision.verdict == AccessVerdict::device_not_compliant;
    return token_was_valid && decision.expires_at <= now;
}

class CachedEnrollmentSession final : public EnrollmentSession {
public:
    CachedEnrollmentSession(std::unique_ptr<EnrollmentSession> backend, std::shared_ptr<CacheShared> shared)
        : backend_(std::move(backend)), shared_(std::move(shared)) {}

    ~CachedEnrollmentSession() override {
        for (Pending& pending : pending_) backend_->cancel(pending);
    }

    void check_access(const AccessQuery& query, SessionCallback& done) override {
        write_cache_key(query, key_);
        if (caching()) {
            const auto it = cache_.find(key_);
            if (it != cache_.end() && it->second.epoch == shared_->epoch.load(std::memory_order_acquire) &&
                shared_->now_ns() < it->second.fresh_until_ns) {
                shared_->record(StoreOperation::check_access, StoreOutcome::cache_hit, 0);
                answer_from_cache(it->second.decision, query.now, done);
                return;
            }
        }
        Pending& pending = start(StoreOperation::check_access, done);
        pending.key = key_;
        pending.now = query.now;
        pending.token_id = query.token_hash.id();
        backend_->check_access(query, pending);  // may answer before returning: `pending` may be gone
    }

    // Clients resend their PKCSReq (or poll) every few seconds while the CA says PENDING: the
    // token being bound to this transaction is remembered for cache_ttl, so a resend doesn't
    // ask the backend again (a read transaction per request otherwise).
    void bind_transaction(const BindQuery& query, SessionCallback& done) override {
        write_binding_key(query, key_);
        if (caching() && binding_cached(key_)) {
            shared_->record(StoreOperation::bind_transaction, StoreOutcome::cache_hit, 0);
            BindDecision decision;
            decision.verdict = BindVerdict::already_bound;
            done.on_transaction_bound(decision);
            return;
        }
        Pending& pending = start(StoreOperation::bind_transaction, done);
        pending.key = key_;
        backend_->bind_transaction(query, pending);
    }

    void finish_transaction(const FinishQuery& query, SessionCallback& done) override {
        const StoreOperation operation = query.end == TransactionEnd::consume ? StoreOperation::consume_transaction
                                                                              : StoreOperation::release_transaction;
        // Bumped now and again when answered: no binding read before the write lands is used.
        shared_->binding_epoch.fetch_add(1, std::memory_order_acq_rel);
        backend_->finish_transaction(query, start(operation, done));
    }

    void cancel(SessionCallback& done) override {
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (it->done == &done) {
                backend_->cancel(*it);
                it = pending_.erase(it);
            } else {
                ++it;
            }
        }
    }

private:
    // One backend call in flight: the callback the backend answers, standing in for `done`.
    struct Pending final : SessionCallback {
        CachedEnrollmentSession* session = nullptr;
        SessionCallback* done = nullptr;
        StoreOperation operation = StoreOperation::check_access;
        int64_t started_ns = 0;
        uint64_t epoch = 0;
        uint64_t binding_epoch = 0;
        std::string key;  // check_access and bind_transaction
        int64_t now = 0;
        std::string token_id;
        std::list<Pending>::iterator self;

        void on_access_decided(const AccessDecision& decision) override { session->access_decided(*this, decision); }
        void on_transaction_bound(const BindDecision& decision) override { session->answered(*this, decision); }
        void on_transaction_finished(const FinishResult& result) override { session->answered(*this, result); }
    };

    struct CacheEntry {
        AccessDecision decision;
        int64_t fresh_until_ns = 0;
        uint64_t epoch = 0;
    };

    // The token was bound to the key's transaction (and neither consumed nor released).
    struct BindingEntry {
        int64_t fresh_until_ns = 0;
        uint64_t epoch = 0;
        uint64_t binding_epoch = 0;
    };

    bool caching() const { return shared_->options.cache_ttl.count() > 0; }

    Pending& start(StoreOperation operation, SessionCallback& done) {
        Pending& pending = pending_.emplace_back();
        pending.session = this;
        pending.done = &done;
        pending.operation = operation;
        pending.started_ns = shared_->now_ns();
        pending.epoch = shared_->epoch.load(std::memory_order_acquire);
        pending.binding_epoch = shared_->binding_epoch.load(std::memory_order_acquire);
        pending.self = std::prev(pending_.end());
        return pending;
    }

    // Bind and finish answers: observed and passed on.
    template <class Answer>
    void answered(Pending& pending, const Answer& answer) {
        shared_->record(pending.operation, outcome_of(answer), shared_->seconds_since(pending.started_ns));
        SessionCallback& done = *pending.done;
        std::string key = std::move(pending.key);
        const uint64_t started_epoch = pending.epoch;
        const uint64_t started_binding_epoch = pending.binding_epoch;
        pending_.erase(pending.self);  // before the call: `done` may start the next operation
        if constexpr (std::is_same_v<Answer, BindDecision>) {
            // Stamped with the epochs of its start: one that raced a local revoke, consume or
            // release may predate it, and is never used.
            if (caching() && binding_allows(answer.verdict))
                remember_binding(std::move(key), started_epoch, started_binding_epoch);
            done.on_transaction_bound(answer);
        } else {
            // Whatever came of it, the binding may have changed: every worker asks again.
            shared_->binding_epoch.fetch_add(1, std::memory_order_acq_rel);
            done.on_transaction_finished(answer);
        }
    }

    void access_decided(Pending& pending, const AccessDecision& answer) {
        shared_->record(StoreOperation::check_access, outcome_of(answer), shared_->seconds_since(pending.started_ns));
        SessionCallback& done = *pending.done;
        const std::string token_id = std::move(pending.token_id);
        const int64_t now = pending.now;
        std::string key = std::move(pending.key);
        const uint64_t started_epoch = pending.epoch;
        pending_.erase(pending.self);

        if (answer.verdict != AccessVerdict::store_unavailable) {
            // An answer that raced a local revocation may predate it: not kept.
            if (caching() && started_epoch == shared_->epoch.load(std::memory_order_acquire)) {
                remember(std::move(key), answer, started_epoch);
            }
            done.on_access_decided(answer);
            return;
        }
        done.on_access_decided(apply_error_policy(answer, key, now, token_id));
    }

    AccessDecision apply_error_policy(const AccessDecision& failed, const std::string& key, int64_t now,
                                      const std::string& token_id) {
        if (!shared_->options.allow_on_error) return failed;
        AccessDecision allowed;
        if (!failed.profile.empty()) {
            allowed = failed;
        } else {
            const auto it = cache_.find(key);
            const bool usable = it != cache_.end() && it->second.decision.verdict == AccessVerdict::allow &&
                                it->second.epoch == shared_->epoch.load(std::memory_order_acquire) &&
                                it->second.decision.expires_at > now;
            if (!usable) return failed;
            allowed = it->second.decision;
        }
        allowed.verdict = AccessVerdict::allow;
        allowed.allowed_on_error = true;
        allowed.message = failed.message;
        shared_->record(StoreOperation::check_access, StoreOutcome::allowed_on_error, 0);
        if (shared_->observer) {
            StoreEvent event;
            event.level = StoreEvent::Level::warn;
            event.name = "store_unavailable_allowed";
            event.token_id = token_id;
            event.detail = failed.message;
            shared_->observer->report(event);
        }
        return allowed;
    }

    // The cached entry itself is passed on (no copy) unless the token expired since it was kept.
    // `done` must not hold on to it: a later miss may rehash the cache.
    static void answer_from_cache(const AccessDecision& cached, int64_t now, SessionCallback& done) {
        if (!expired_since(cached, now)) {
            done.on_access_decided(cached);
            return;
        }
        AccessDecision expired = cached;
        expired.verdict = AccessVerdict::token_expired;
        expired.message.clear();
        done.on_access_decided(expired);
    }

    int64_t fresh_until_ns(int64_t now) const {
        return now + std::chrono::duration_cast<std::chrono::nanoseconds>(shared_->options.cache_ttl).count();
    }

    void remember(std::string key, const AccessDecision& decision, uint64_t epoch) {
        const int64_t now = shared_->now_ns();
        make_room(cache_, key, shared_->options.max_cache_entries, now);
        CacheEntry& entry = cache_[std::move(key)];
        entry.decision = decision;
        entry.decision.message.clear();  // a webhook's reason was logged when it was given
        entry.fresh_until_ns = fresh_until_ns(now);
        entry.epoch = epoch;
    }

    bool binding_cached(const std::string& key) const {
        const auto it = bindings_.find(key);
        return it != bindings_.end() && it->second.epoch == shared_->epoch.load(std::memory_order_acquire) &&
               it->second.binding_epoch == shared_->binding_epoch.load(std::memory_order_acquire) &&
               shared_->now_ns() < it->second.fresh_until_ns;
    }

    void remember_binding(std::string key, uint64_t epoch, uint64_t binding_epoch) {
        const int64_t now = shared_->now_ns();
        make_room(bindings_, key, shared_->options.max_cache_entries, now);
        BindingEntry& entry = bindings_[std::move(key)];
        entry.fresh_until_ns = fresh_until_ns(now);
        entry.epoch = epoch;
        entry.binding_epoch = binding_epoch;
    }

    std::unique_ptr<EnrollmentSession> backend_;
    std::shared_ptr<CacheShared> shared_;
    std::list<Pending> pending_;  // a list: a Pending's address is what the backend holds
    std::unordered_map<std::string, CacheEntry> cache_;
    std::unordered_map<std::string, BindingEntry> bindings_;
    std::string key_;  // the key being looked up: its capacity is kept, so a hit allocates nothing
};

class CachedEnrollmentStore final : public EnrollmentStore {
public:
    CachedEnrollmentStore(std::unique_ptr<EnrollmentStore> backend, std::shared_ptr<CacheShared> shared)
        : backend_(std::move(backend)), shared_(std::move(shared)) {}

    const char* backend_name() const override { return backend_->backend_name(); }

    StoreStatus issue_token(const NewToken& token) override {
        // No invalidation: nobody can have asked about a random token before it was made, and
        // the device record it may create is new (so no cached answer depends on it).
        return observed(StoreOperation::issue_token, [&] { return backend_->issue_token(token); });
    }
    StoreResult<TokenRecord> find_token(const TokenHash& hash) override {
        return observed(StoreOperation::find_token, [&] { return backend_->find_token(hash); });
    }
    StoreStatus revoke_token(const TokenHash& hash, int64_t now) override {
        return invalidating(observed(StoreOperation::revoke_token, [&] { return backend_->revoke_token(hash, now); }));
    }
    StoreStatus set_device(const DeviceRecord& device) override {
        return invalidating(observed(StoreOperation::set_device, [&] { return backend_->set_device(device); }));
    }
    StoreResult<DeviceRecord> get_device(const std::string& device_id) override {
        return observed(StoreOperation::get_device, [&] { return backend_->get_device(device_id); });
    }
    StoreResult<int64_t> purge_expired(int64_t before) override {
        return observed(StoreOperation::purge_expired, [&] { return backend_->purge_expired(before); });
    }
    AccessDecision check_access(const AccessQuery& query) override {
        return observed(StoreOperation::check_access, [&] { return backend_->check_access(query); });
    }
    BindDecision bind_transaction(const BindQuery& query) override {
        return observed(StoreOperation::bind_transaction, [&] { return backend_->bind_transaction(query); });
    }
    FinishResult finish_transaction(const FinishQuery& query) override {
        const StoreOperation operation = query.end == TransactionEnd::consume ? StoreOperation::consume_transaction
                                                                              : StoreOperation::release_transaction;
        FinishResult result = observed(operation, [&] { return backend_->finish_transaction(query); });
        shared_->binding_epoch.fetch_add(1, std::memory_order_acq_rel);
        return result;
    }

    std::unique_ptr<EnrollmentSession> open_session(PostToLoop post) override {
        std::unique_ptr<EnrollmentSession> session = backend_->open_session(std::move(post));
        if (!session) return nullptr;
        return std::make_unique<CachedEnrollmentSession>(std::move(session), shared_);
    }

private:
    template <class Call>
    std::invoke_result_t<Call&> observed(StoreOperation operation, Call&& call) {
        const int64_t started = shared_->now_ns();
        auto result = call();
        shared_->record(operation, outcome_of(result), shared_->seconds_since(started));
        return result;
    }

    StoreStatus invalidating(StoreStatus status) {
        // Bumped even on failure: a write that timed out may still have happened.
        shared_->epoch.fetch_add(1, std::memory_order_acq_rel);
        return status;
    }

    std::unique_ptr<EnrollmentStore> backend_;
    std::shared_ptr<CacheShared> shared_;
};

}  // namespace

std::unique_ptr<EnrollmentStore> make_cached_enrollment_store(std::unique_ptr<EnrollmentStore> backend,
                                                              StoreCacheOptions options, StoreObserver* observer) {
    auto shared = std::make_shared<CacheShared>();
    if (!options.monotonic_ns) options.monotonic_ns = scepproxy::monotonic_ns;
    shared->options = std::move(options);
    shared->observer = observer;
    return std::make_unique<CachedEnrollmentStore>(std::move(backend), std::move(shared));
}

}  // namespace scepproxy::token
