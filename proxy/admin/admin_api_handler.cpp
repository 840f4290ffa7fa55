// AdminApiHandler: endpoint logic (enrollments, devices, health), answers as JSON, one log line per request.
#include "proxy/admin/admin_api_handler.h"

#include <chrono>

#include "base/clock.h"
#include "proxy/admin/enrollment_issuer.h"
#include "proxy/admin/enrollment_json.h"
#include "proxy/net/http_connection.h"
#include "proxy/telemetry/log.h"
#include "token/enrollment_token.h"

namespace scepproxy::proxy {

using nlohmann::json;

// A complete answer; built on any thread, sent on the loop's.
struct AdminAnswer {
    int status = 200;
    std::string body;                        // JSON
    std::string reason;                      // for the log: "ok", "unauthorized", a challenge outcome, ...
    std::string token_id;                    // for the log, when a token is involved
    std::string profile;                     // for the log
    std::optional<token::TokenHash> issued;  // a token this answer hands out (revoked if nobody gets it)
    std::string header_lines;                // "WWW-Authenticate: Bearer\r\n" on 401, "Allow: ...\r\n" on 405
};

// The request in flight, shared with its pool task. Only the loop's thread reads or writes it.
struct AdminApiHandler::PendingRequest {
    AdminApiHandler* handler = nullptr;  // both null once the connection is gone
    HttpConnection* connection = nullptr;
    std::string method;
    std::string_view endpoint;
    int64_t started_ns = 0;
};

namespace {

using Answer = AdminAnswer;

Answer json_answer(int status, json body, std::string reason) {
    Answer answer;
    answer.status = status;
    answer.body = json_text(body);
    answer.reason = std::move(reason);
    return answer;
}

// {"error": "..."}: `error` is a code (not_found, busy, a challenge outcome) or a message for a 400.
Answer error_answer(int status, const std::string& error, std::string reason) {
    return json_answer(status, {{"error", error}}, std::move(reason));
}

Answer store_failure(token::StoreStatus status) {
    return error_answer(503, "store_unavailable", std::string("store_") + token::to_string(status));
}

std::string_view endpoint_name(AdminEndpoint endpoint) {
    switch (endpoint) {
        case AdminEndpoint::none: return "none";
        case AdminEndpoint::healthz: return "healthz";
        case AdminEndpoint::readyz: return "readyz";
        case AdminEndpoint::enrollments: return "enrollments";
        case AdminEndpoint::enrollment: return "enrollment";
        case AdminEndpoint::device: return "device";
    }
    return "none";
}

Answer issue(const AdminApiContext& context, const AdminServing& serving, const EnrollmentRequestBody& body,
             challenge::SteadyTime queued_at) {
    IssueRequest request;
    request.profile = body.profile;
    request.device_id = body.device_id;
    request.ttl = body.ttl;
    request.now = unix_now();
    request.queued_at = queued_at;
    IssueResult issued = issue_enrollment(*serving.config, *context.store, *serving.challenges, request);
    Answer answer;
    switch (issued.status) {
        case IssueStatus::ok:
            answer = json_answer(201, issued_enrollment_json(issued.enrollment), "issued");
            answer.token_id = issued.enrollment.token_id;
            answer.issued = token::EnrollmentToken::parse(issued.enrollment.token)->hash();
            break;
        case IssueStatus::unknown_profile:
        case IssueStatus::bad_device_id:
        case IssueStatus::bad_ttl: answer = error_answer(400, issued.message, "bad_request"); break;
        case IssueStatus::challenge_unavailable: {
            const std::string outcome = challenge::to_string(issued.challenge_outcome);
            answer = error_answer(http_status_for(issued.challenge_outcome), outcome, "challenge_" + outcome);
            break;
        }
        case IssueStatus::store_error: answer = error_answer(503, "store_unavailable", "store_unavailable"); break;
    }
    if (serving.config->find_profile(body.profile)) answer.profile = body.profile;
    return answer;
}

Answer show_token(const AdminApiContext& context, const token::TokenHash& hash) {
    const auto found = context.store->find_token(hash);
    if (found.status == token::StoreStatus::not_found) return error_answer(404, "not_found", "token_not_found");
    if (!found.ok()) return store_failure(found.status);
    Answer answer = json_answer(200, token_record_json(found.value, unix_now()), "ok");
    answer.profile = found.value.profile;
    return answer;
}

Answer revoke_token(const AdminApiContext& context, const token::TokenHash& hash) {
    const token::StoreStatus status = context.store->revoke_token(hash, unix_now());
    if (status == token::StoreStatus::not_found) return error_answer(404, "not_found", "token_not_found");
    if (status != token::StoreStatus::ok) return store_failure(status);
    return json_answer(200, {{"token_id", hash.id()}, {"state", "revoked"}}, "revoked");
}

Answer show_device(const AdminApiContext& context, const std::string& device_id) {
    const auto found = context.store->get_device(device_id);
    if (found.status == token::StoreStatus::not_found) return error_answer(404, "not_found", "device_not_found");
    if (!found.ok()) return store_failure(found.status);
    return json_answer(200, device_record_json(found.value), "ok");
}

Answer set_device(const AdminApiContext& context, const std::string& device_id, const DeviceStateBody& state) {
    token::DeviceRecord record;
    record.device_id = device_id;
    record.enrolled = state.enrolled;
    record.compliant = state.compliant;
    record.updated_at = unix_now();
    const token::StoreStatus status = context.store->set_device(record);
    if (status != token::StoreStatus::ok) return store_failure(status);
    return json_answer(200, device_record_json(record), "ok");
}

// Ready when the store answers: looking up a hash no token has is a cheap round trip.
Answer readiness(const AdminApiContext& context) {
    const auto probe = context.store->find_token(token::TokenHash{});
    if (probe.status == token::StoreStatus::unavailable)
        return json_answer(503, {{"status", "store_unavailable"}}, "store_unavailable");
    return json_answer(200, {{"status", "ready"}}, "ok");
}

}  // namespace

AdminApiHandler::~AdminApiHandler() { on_abort(); }

void AdminApiHandler::on_abort() {
    if (pending_) {
        pending_->handler = nullptr;
        pending_->connection = nullptr;
    }
    pending_.reset();
}

void AdminApiHandler::on_request(HttpConnection& connection, const IncomingRequest& request) {
    pending_ = std::make_shared<PendingRequest>();
    pending_->handler = this;
    pending_->connection = &connection;
    pending_->method = std::string(request.head.method_text);
    pending_->started_ns = monotonic_ns();
    const AdminRoute route = route_admin_request(request.head.method_text, request.head.path);
    pending_->endpoint = endpoint_name(route.endpoint);
    // Credentials before anything else: without them, not even whether a path exists is told.
    if (admin_endpoint_needs_credentials(route.endpoint) &&
        !context_.serving->admin_credentials->accepts(request.head.fields)) {
        Answer answer = error_answer(401, "unauthorized", "unauthorized");
        answer.header_lines = "WWW-Authenticate: Bearer\r\n";
        answer_now(connection, std::move(answer));
        return;
    }
    if (route.status != 200) {
        Answer answer = error_answer(route.status, route.error, route.error);
        if (route.status == 405) answer.header_lines = "Allow: " + std::string(route.allow) + "\r\n";
        answer_now(connection, std::move(answer));
        return;
    }
    dispatch(connection, request, route);
}

void AdminApiHandler::dispatch(HttpConnection& connection, const IncomingRequest& request, const AdminRoute& route) {
    const AdminApiContext& context = context_;
    const std::string_view method = request.head.method_text;
    const bool has_json_body = [&] {
        const http::HttpField* type = request.head.find("Content-Type");
        return type && is_json_media_type(type->value);
    }();
    std::string error;
    switch (route.endpoint) {
        case AdminEndpoint::none: answer_now(connection, error_answer(404, "not_found", "not_found")); return;
        case AdminEndpoint::healthz: answer_now(connection, json_answer(200, {{"status", "ok"}}, "ok")); return;
        case AdminEndpoint::readyz:
            if (*context.draining) {
                answer_now(connection, json_answer(503, {{"status", "draining"}}, "draining"));
                return;
            }
            run_on_pool(connection, [&context] { return readiness(context); });
            return;
        case AdminEndpoint::enrollments: {
            if (!has_json_body) {
                answer_now(connection,
                           error_answer(415, "Content-Type must be application/json", "unsupported_media_type"));
                return;
            }
            auto body = parse_enrollment_request(request.body, &error);
            if (!body) {
                answer_now(connection, error_answer(400, error, "bad_request"));
                return;
            }
            const auto queued_at = std::chrono::steady_clock::now();
            run_on_pool(connection, [&context, serving = context.serving, body = std::move(*body), queued_at] {
                return issue(context, *serving, body, queued_at);
            });
            return;
        }
        case AdminEndpoint::enrollment: {
            const auto token = token::EnrollmentToken::parse(route.parameter);
            if (!token) {
                answer_now(connection, error_answer(400, "the token must be a GUID", "bad_request"));
                return;
            }
            const token::TokenHash hash = token->hash();
            if (method == "DELETE") {
                run_on_pool(connection, [&context, hash] {
                    Answer answer = revoke_token(context, hash);
                    answer.token_id = hash.id();
                    return answer;
                });
            } else {
                run_on_pool(connection, [&context, hash] {
                    Answer answer = show_token(context, hash);
                    answer.token_id = hash.id();
                    return answer;
                });
            }
            return;
        }
        case AdminEndpoint::device: {
            if (!is_valid_device_id(route.parameter)) {
                answer_now(connection,
                           error_answer(400, "the device id must be 1-256 printable characters", "bad_request"));
                return;
            }
            if (method == "GET") {
                run_on_pool(connection, [&context, id = route.parameter] { return show_device(context, id); });
                return;
            }
            if (!has_json_body) {
                answer_now(connection,
                           error_answer(415, "Content-Type must be application/json", "unsupported_media_type"));
                return;
            }
            const auto state = parse_device_state(request.body, &error);
            if (!state) {
                answer_now(connection, error_answer(400, error, "bad_request"));
                return;
            }
            run_on_pool(connection,
                        [&context, id = route.parameter, state = *state] { return set_device(context, id, state); });
            return;
        }
    }
}

void AdminApiHandler::answer_now(HttpConnection& connection, AdminAnswer answer) {
    LogLine(answer.status >= 500 ? LogLevel::warn : LogLevel::info, "admin_request")
        .field("client", connection.peer())
        .field("method", pending_->method)
        .field("endpoint", pending_->endpoint)
        .field("status", answer.status)
        .field("reason", answer.reason)
        .field("token", answer.token_id.empty() ? std::string("-") : answer.token_id)
        .field("profile", answer.profile.empty() ? std::string("-") : answer.profile)
        .field_ms("total_ms", milliseconds_since(pending_->started_ns))
        .emit();
    pending_.reset();
    connection.respond(answer.status, "application/json", answer.body, answer.reason, answer.header_lines);
}

void AdminApiHandler::run_on_pool(HttpConnection& connection, std::function<AdminAnswer()> work) {
    std::shared_ptr<PendingRequest> pending = pending_;
    AdminApiContext& context = context_;
    const bool queued = context.pool->submit([pending, work = std::move(work), &context]() mutable {
        Answer answer = work();
        context.loop_tasks->post([pending, answer = std::move(answer), &context]() mutable {
            if (pending->handler) {
                pending->handler->answer_now(*pending->connection, std::move(answer));
                return;
            }
            // The client left before its answer: nobody will ever see this token, so it goes.
            if (answer.issued) {
                LogLine(LogLevel::warn, "enrollment_abandoned")
                    .field("token", answer.token_id)
                    .field("profile", answer.profile)
                    .emit();
                const token::TokenHash hash = *answer.issued;
                context.pool->submit([&context, hash] { context.store->revoke_token(hash, unix_now()); });
            }
        });
    });
    if (!queued) answer_now(connection, error_answer(503, "busy", "busy"));
}

}  // namespace scepproxy::proxy
