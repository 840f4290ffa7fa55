// WebhookClient: asks the MDM whether a device may enroll (POST JSON, bearer token), and the strict reading of its answer.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace scepproxy::token::webhook {

using Deadline = std::chrono::steady_clock::time_point;

// The largest answer read; anything longer is a failure (the answer is a few dozen bytes).
inline constexpr size_t kMaxAnswerBytes = 16 * 1024;
// A longer reason is a failure too: it ends up in the log.
inline constexpr size_t kMaxReasonBytes = 1024;

struct WebhookOptions {
    std::string url;           // http:// or https://
    std::string bearer_token;  // a secret: sent, never logged; empty: no Authorization header
    std::string ca_file;       // empty: the system's CA store
    std::chrono::milliseconds timeout{2000};
};

// What is sent: {"token_sha256","device_id","profile","operation","message_type","transaction_id"}.
// Empty strings are sent as null.
struct WebhookQuestion {
    std::string token_sha256;  // 64 hex digits: the token's hash, never the token
    std::string device_id;
    std::string profile;
    std::string operation;
    std::string message_type;
    std::string transaction_id;
};

struct WebhookAnswer {
    // failed: the MDM couldn't say (no answer, a 5xx, a malformed 2xx): the on_error policy decides.
    enum class Kind { allow, deny, failed };
    Kind kind = Kind::failed;
    std::string reason;              // the MDM's, for allow/deny (may be empty); for a refusing status, that status
    std::string error;               // why it failed: timeout, HTTP status, malformed answer
    bool refused_by_status = false;  // a deny that is a 3xx/4xx, not an {"allow": false}
};

// The request body for a question (valid JSON whatever bytes the strings hold).
std::string webhook_request_body(const WebhookQuestion& question);

// Reads an HTTP answer strictly: 2xx, at most kMaxAnswerBytes, a JSON object with a
// boolean "allow" and, if present, a string "reason" of at most kMaxReasonBytes (null is
// taken as no reason). Other members are ignored (so the MDM may add some). A 3xx or 4xx
// is a `deny` whatever its body: the MDM (or what answers at the url) did answer, and a
// refusal such as 401, 403, 404 or 429 must never become an outage that on_error: allow
// lets devices through. Anything else (a 5xx, a malformed 2xx) is `failed`, which the
// on_error policy handles. Never throws.
WebhookAnswer read_webhook_answer(long http_status, std::string_view body);

// Thread-safe and blocking: meant for store threads, never for an event loop. Keeps a few
// curl handles (and their keep-alive connections) for reuse.
class WebhookClient {
public:
    explicit WebhookClient(WebhookOptions options);
    ~WebhookClient();
    WebhookClient(const WebhookClient&) = delete;
    WebhookClient& operator=(const WebhookClient&) = delete;

    // Gives up at `deadline` or at the configured timeout, whichever comes first.
    WebhookAnswer ask(const WebhookQuestion& question, Deadline deadline);

private:
    CURL* take_handle();
    void return_handle(CURL* handle);

    const WebhookOptions options_;
    curl_slist* headers_ = nullptr;
    std::mutex mutex_;
    std::vector<CURL*> idle_handles_;
};

}  // namespace scepproxy::token::webhook
