// The webhook EnrollmentStore: local checks inline on the worker, the webhook call on store threads, answers posted back.
#include "token/webhook/webhook_enrollment_store.h"

#include <utility>

#include "token/offloaded_session.h"

namespace scepproxy::token::webhook {
namespace {

// The final answer for a request whose token passed the local checks.
AccessDecision decide(const AccessDecision& local, const WebhookAnswer& answer) {
    AccessDecision decision = local;
    switch (answer.kind) {
        case WebhookAnswer::Kind::allow: decision.verdict = AccessVerdict::allow; break;
        case WebhookAnswer::Kind::deny:
            decision.verdict = AccessVerdict::device_not_compliant;
            decision.message = answer.reason.empty() ? "webhook refused (no reason given)" : answer.reason;
            break;
        case WebhookAnswer::Kind::failed:
            // Profile and device stay set: the token is fine, only compliance is unknown.
            decision.verdict = AccessVerdict::store_unavailable;
            decision.message = answer.error;
            break;
    }
    return decision;
}

// Receives the local session's answer, which the SQLite session gives inline.
struct LocalAnswer final : SessionCallback {
    void on_access_decided(const AccessDecision& decision) override {
        answered = true;
        value = decision;
    }
    bool answered = false;
    AccessDecision value;
};

class WebhookEnrollmentStore;

class WebhookEnrollmentSession final : public EnrollmentSession {
public:
    WebhookEnrollmentSession(WebhookEnrollmentStore& store, std::unique_ptr<EnrollmentSession> local,
                             BlockingTaskPool& pool, PostToLoop post, std::chrono::milliseconds timeout)
        : store_(store), local_(std::move(local)), calls_(pool, std::move(post), timeout) {}

    void check_access(const AccessQuery& query, SessionCallback& done) override;
    void bind_transaction(const BindQuery& query, SessionCallback& done) override {
        local_->bind_transaction(query, done);
    }
    void finish_transaction(const FinishQuery& query, SessionCallback& done) override {
        local_->finish_transaction(query, done);
    }
    void cancel(SessionCallback& done) override {
        calls_.cancel(done);
        local_->cancel(done);
    }

private:
    WebhookEnrollmentStore& store_;
    std::unique_ptr<EnrollmentSession> local_;
    OffloadedCalls calls_;
};

class WebhookEnrollmentStore final : public EnrollmentStore {
public:
    WebhookEnrollmentStore(const WebhookStoreOptions& options, std::unique_ptr<EnrollmentStore> local)
        : options_(options),
          local_(std::move(local)),
          client_(options.webhook),
          task_pool_(options.concurrency, options.max_queued) {
        options_.webhook.bearer_token.clear();  // the client keeps the one copy
    }

    const char* backend_name() const override { return "webhook"; }

    StoreStatus issue_token(const NewToken& token) override { return local_->issue_token(token); }
    StoreResult<TokenRecord> find_token(const TokenHash& hash) override { return local_->find_token(hash); }
    StoreStatus revoke_token(const TokenHash& hash, int64_t now) override { return local_->revoke_token(hash, now); }
    StoreStatus set_device(const DeviceRecord& device) override { return local_->set_device(device); }
    StoreResult<DeviceRecord> get_device(const std::string& device_id) override {
        return local_->get_device(device_id);
    }
    StoreResult<int64_t> purge_expired(int64_t before) override { return local_->purge_expired(before); }
    BindDecision bind_transaction(const BindQuery& query) override { return local_->bind_transaction(query); }
    FinishResult finish_transaction(const FinishQuery& query) override { return local_->finish_transaction(query); }

    AccessDecision check_access(const AccessQuery& query) override {
        const AccessDecision local = local_->check_access(query);
        if (!needs_webhook(local, query)) return local;
        return ask_webhook(query, local, std::chrono::steady_clock::now() + options_.webhook.timeout);
    }

    std::unique_ptr<EnrollmentSession> open_session(PostToLoop post) override {
        std::unique_ptr<EnrollmentSession> local = local_->open_session(post);
        if (!local) return nullptr;
        return std::make_unique<WebhookEnrollmentSession>(*this, std::move(local), task_pool_, std::move(post),
                                                          options_.webhook.timeout);
    }

    static bool needs_webhook(const AccessDecision& local, const AccessQuery& query) {
        return query.check_device && local.verdict == AccessVerdict::allow;
    }

    // Blocking: on a store thread (sessions) or the control plane's.
    AccessDecision ask_webhook(const AccessQuery& query, const AccessDecision& local, Deadline deadline) {
        WebhookQuestion question;
        question.token_sha256 = query.token_hash.hex();
        question.device_id = local.device_id;
        question.profile = local.profile;
        question.operation = query.operation.empty() ? "PKIOperation" : query.operation;
        question.message_type = query.message_type;
        question.transaction_id = query.transaction_id;
        const WebhookAnswer answer = client_.ask(question, deadline);
        AccessDecision decision = decide(local, answer);
        if (answer.kind == WebhookAnswer::Kind::deny && options_.observer) {
            StoreEvent event;
            // A refusing status (a wrong bearer token or url, rate limiting) refuses every
            // device, not one: a warning for the operator.
            event.level = answer.refused_by_status ? StoreEvent::Level::warn : StoreEvent::Level::info;
            event.name = "store_webhook_denied";
            event.token_id = query.token_hash.id();
            event.detail = decision.message;
            options_.observer->report(event);
        }
        return decision;
    }

private:
    WebhookStoreOptions options_;
    std::unique_ptr<EnrollmentStore> local_;
    WebhookClient client_;
    BlockingTaskPool task_pool_;  // declared last: its threads stop before the client goes
};

void WebhookEnrollmentSession::check_access(const AccessQuery& query, SessionCallback& done) {
    LocalAnswer local;
    local_->check_access(query, local);
    if (!local.answered) {
        // The local SQLite session always answers inline; anything else is a bug, not a hang.
        local_->cancel(local);
        local.value = AccessDecision();
        local.value.message = "the local store did not answer inline";
    }
    if (!WebhookEnrollmentStore::needs_webhook(local.value, query)) {
        done.on_access_decided(local.value);
        return;
    }
    calls_.run(
        done,
        [&store = store_, query, decision = local.value](Deadline deadline) -> OffloadedCalls::Delivery {
            AccessDecision answer = store.ask_webhook(query, decision, deadline);
            return [answer = std::move(answer)](SessionCallback& cb) { cb.on_access_decided(answer); };
        },
        [decision = local.value](std::string message) -> OffloadedCalls::Delivery {
            AccessDecision answer = decision;
            answer.verdict = AccessVerdict::store_unavailable;
            answer.message = std::move(message);
            return [answer = std::move(answer)](SessionCallback& cb) { cb.on_access_decided(answer); };
        });
}

}  // namespace

StoreResult<std::unique_ptr<EnrollmentStore>> open_webhook_enrollment_store(const WebhookStoreOptions& options) {
    StoreResult<std::unique_ptr<EnrollmentStore>> result;
    const std::string& url = options.webhook.url;
    if (!url.starts_with("http://") && !url.starts_with("https://")) {
        result.status = StoreStatus::invalid;
        result.message = "the webhook url must start with http:// or https://";
        return result;
    }
    if (options.concurrency == 0) {
        result.status = StoreStatus::invalid;
        result.message = "the webhook concurrency must be at least 1";
        return result;
    }
    // Thread-safe from curl 7.84 on; called here, before any store thread exists, anyway.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        result.status = StoreStatus::unavailable;
        result.message = "cannot initialise libcurl";
        return result;
    }
    auto local = sqlite::open_sqlite_enrollment_store(options.local);
    if (!local.ok()) {
        result.status = local.status;
        result.message = "webhook store's local database: " + local.message;
        return result;
    }
    result.value = std::make_unique<WebhookEnrollmentStore>(options, std::move(local.value));
    return result;
}

}  // namespace scepproxy::token::webhook
