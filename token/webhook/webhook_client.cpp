// WebhookClient: libcurl easy handles reused from a small free list; the answer is read into a bounded buffer and checked strictly.
#include "token/webhook/webhook_client.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

namespace scepproxy::token::webhook {
namespace {

using nlohmann::json;

json string_or_null(const std::string& value) { return value.empty() ? json(nullptr) : json(value); }

WebhookAnswer failed(std::string error) {
    WebhookAnswer answer;
    answer.error = std::move(error);
    return answer;
}

// The body collected by curl's write callback, refusing to grow past kMaxAnswerBytes.
struct AnswerBuffer {
    std::string body;
    bool too_large = false;
};

size_t collect_body(char* data, size_t size, size_t count, void* user) {
    auto* buffer = static_cast<AnswerBuffer*>(user);
    const size_t bytes = size * count;
    if (buffer->body.size() + bytes > kMaxAnswerBytes) {
        buffer->too_large = true;
        return 0;  // curl stops with CURLE_WRITE_ERROR
    }
    buffer->body.append(data, bytes);
    return bytes;
}

long remaining_ms(Deadline deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return std::max<long>(1, static_cast<long>(left.count()));  // 0 would mean "no timeout" to curl
}

}  // namespace

std::string webhook_request_body(const WebhookQuestion& question) {
    const json body = {
        {"token_sha256", question.token_sha256},
        {"device_id", string_or_null(question.device_id)},
        {"profile", string_or_null(question.profile)},
        {"operation", string_or_null(question.operation)},
        {"message_type", string_or_null(question.message_type)},
        {"transaction_id", string_or_null(question.transaction_id)},
    };
    // Invalid UTF-8 (device ids are opaque bytes) is replaced rather than thrown about.
    return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

WebhookAnswer read_webhook_answer(long http_status, std::string_view body) {
    if (http_status >= 300 && http_status <= 499) {
        WebhookAnswer refused;
        refused.kind = WebhookAnswer::Kind::deny;
        refused.reason = "webhook answered HTTP " + std::to_string(http_status);
        refused.refused_by_status = true;
        return refused;
    }
    if (http_status < 200 || http_status > 299) return failed("webhook answered HTTP " + std::to_string(http_status));
    if (body.size() > kMaxAnswerBytes)
        return failed("webhook answer is larger than " + std::to_string(kMaxAnswerBytes) + " bytes");
    try {
        const json answer = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
        if (answer.is_discarded()) return failed("webhook answer is not JSON");
        if (!answer.is_object()) return failed("webhook answer is not a JSON object");
        const auto allow = answer.find("allow");
        if (allow == answer.end() || !allow->is_boolean()) return failed("webhook answer has no boolean \"allow\"");
        WebhookAnswer result;
        result.kind = allow->get<bool>() ? WebhookAnswer::Kind::allow : WebhookAnswer::Kind::deny;
        const auto reason = answer.find("reason");
        if (reason != answer.end() && !reason->is_null()) {
            if (!reason->is_string()) return failed("webhook answer's \"reason\" is not a string");
            result.reason = reason->get<std::string>();
            if (result.reason.size() > kMaxReasonBytes) {
                return failed("webhook answer's \"reason\" is longer than " + std::to_string(kMaxReasonBytes) +
                              " bytes");
            }
        }
        return result;
    } catch (const std::exception& e) {
        // allow_exceptions=false covers syntax errors; this is for anything else nlohmann throws.
        return failed(std::string("webhook answer could not be read: ") + e.what());
    }
}

WebhookClient::WebhookClient(WebhookOptions options) : options_(std::move(options)) {
    headers_ = curl_slist_append(headers_, "Content-Type: application/json");
    headers_ = curl_slist_append(headers_, "Accept: application/json");
    // No "Expect: 100-continue" round trip for our small bodies.
    headers_ = curl_slist_append(headers_, "Expect:");
    if (!options_.bearer_token.empty()) {
        headers_ = curl_slist_append(headers_, ("Authorization: Bearer " + options_.bearer_token).c_str());
    }
}

WebhookClient::~WebhookClient() {
    for (CURL* handle : idle_handles_) curl_easy_cleanup(handle);
    curl_slist_free_all(headers_);
}

CURL* WebhookClient::take_handle() {
    {
        std::lock_guard lock(mutex_);
        if (!idle_handles_.empty()) {
            CURL* handle = idle_handles_.back();
            idle_handles_.pop_back();
            return handle;
        }
    }
    return curl_easy_init();
}

void WebhookClient::return_handle(CURL* handle) {
    std::lock_guard lock(mutex_);
    idle_handles_.push_back(handle);
}

WebhookAnswer WebhookClient::ask(const WebhookQuestion& question, Deadline deadline) {
    deadline = std::min(deadline, std::chrono::steady_clock::now() + options_.timeout);
    CURL* handle = take_handle();
    if (handle == nullptr) return failed("cannot create a curl handle");
    const std::string body = webhook_request_body(question);
    AnswerBuffer buffer;
    char error[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(handle, CURLOPT_URL, options_.url.c_str());
    curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM-based DNS timeouts
    curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &collect_body);
    curl_easy_setopt(handle, CURLOPT_WRITEDATA, &buffer);
    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, remaining_ms(deadline));
    curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, remaining_ms(deadline));
    if (!options_.ca_file.empty()) curl_easy_setopt(handle, CURLOPT_CAINFO, options_.ca_file.c_str());

    const CURLcode code = curl_easy_perform(handle);
    long status = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
    // The handle points at our stack (error buffer, body buffer): unhook before it is reused.
    curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, nullptr);
    curl_easy_setopt(handle, CURLOPT_WRITEDATA, nullptr);
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, nullptr);
    return_handle(handle);

    if (code != CURLE_OK) {
        if (buffer.too_large)
            return failed("webhook answer is larger than " + std::to_string(kMaxAnswerBytes) + " bytes");
        if (code == CURLE_OPERATION_TIMEDOUT) return failed("webhook did not answer in time");
        return failed(std::string("webhook request failed: ") + (error[0] != '\0' ? error : curl_easy_strerror(code)));
    }
    return read_webhook_answer(status, buffer.body);
}

}  // namespace scepproxy::token::webhook
