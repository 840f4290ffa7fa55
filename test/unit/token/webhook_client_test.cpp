// Tests for the webhook's wire format: the request body we send and the strict reading of the MDM's answer.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "token/webhook/webhook_client.h"

namespace scepproxy::token::webhook {

using Kind = WebhookAnswer::Kind;

TEST_CASE("webhook answer: allow and deny, with or without a reason", "[webhook]") {
    auto answer = read_webhook_answer(200, R"({"allow":true,"reason":"compliant"})");
    CHECK(answer.kind == Kind::allow);
    CHECK(answer.reason == "compliant");

    answer = read_webhook_answer(200, R"({"allow":false,"reason":"device wiped"})");
    CHECK(answer.kind == Kind::deny);
    CHECK(answer.reason == "device wiped");

    answer = read_webhook_answer(201, R"( {"reason": null, "allow": false, "extra": [1, {"x": 2}]} )");
    CHECK(answer.kind == Kind::deny);
    CHECK(answer.reason.empty());

    answer = read_webhook_answer(299, R"({"allow":true})");
    CHECK(answer.kind == Kind::allow);

    // The longest reason that is accepted.
    const std::string longest(kMaxReasonBytes, 'r');
    answer = read_webhook_answer(200, R"({"allow":false,"reason":")" + longest + "\"}");
    CHECK(answer.kind == Kind::deny);
    CHECK(answer.reason == longest);
}

TEST_CASE("webhook answer: a 3xx or 4xx is a refusal, whatever its body says", "[webhook]") {
    for (const long status : {300L, 302L, 400L, 401L, 403L, 404L, 408L, 429L, 499L}) {
        INFO("status " << status);
        const WebhookAnswer answer = read_webhook_answer(status, R"({"allow":true})");
        CHECK(answer.kind == Kind::deny);
        CHECK(answer.refused_by_status);
        CHECK(answer.reason == "webhook answered HTTP " + std::to_string(status));
    }
    CHECK_FALSE(read_webhook_answer(200, R"({"allow":false})").refused_by_status);
}

TEST_CASE("webhook answer: a 5xx or a malformed 2xx answer is a failure with a reason", "[webhook]") {
    const std::string ok_body = R"({"allow":true})";
    struct Case {
        long status;
        std::string body;
        const char* why;
    };
    const Case cases[] = {
        {500, ok_body, "HTTP 500"},
        {503, ok_body, "HTTP 503"},
        {599, ok_body, "HTTP 599"},
        {100, ok_body, "HTTP 100"},
        {0, ok_body, "HTTP 0"},
        {200, "", "not JSON"},
        {200, "allow", "not JSON"},
        {200, R"({"allow":true)", "not JSON"},
        {200, R"({"allow":true} trailing)", "not JSON"},
        {200, R"({"allow":true}{"allow":false})", "not JSON"},
        {200, "\xff\xfe{", "not JSON"},
        {200, "[true]", "not a JSON object"},
        {200, "true", "not a JSON object"},
        {200, R"("allow")", "not a JSON object"},
        {200, "{}", "no boolean \"allow\""},
        {200, R"({"allowed":true})", "no boolean \"allow\""},
        {200, R"({"allow":"true"})", "no boolean \"allow\""},
        {200, R"({"allow":1})", "no boolean \"allow\""},
        {200, R"({"allow":null})", "no boolean \"allow\""},
        {200, R"({"allow":true,"reason":5})", "\"reason\" is not a string"},
        {200, R"({"allow":false,"reason":["a"]})", "\"reason\" is not a string"},
        {200, R"({"allow":false,"reason":")" + std::string(kMaxReasonBytes + 1, 'r') + "\"}", "longer than"},
        {200, std::string(kMaxAnswerBytes + 1, ' ') + ok_body, "larger than"},
    };
    for (const Case& c : cases) {
        INFO("status " << c.status << ", body of " << c.body.size() << " bytes: " << c.body.substr(0, 60));
        const WebhookAnswer answer = read_webhook_answer(c.status, c.body);
        CHECK(answer.kind == Kind::failed);
        CHECK_THAT(answer.error, Catch::Contains(c.why));
    }
}

TEST_CASE("webhook answer: deep nesting within the size bound is read without trouble", "[webhook]") {
    const size_t depth = kMaxAnswerBytes / 2 - 16;
    const std::string nested = R"({"allow":false,"x":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
    REQUIRE(nested.size() <= kMaxAnswerBytes);
    CHECK(read_webhook_answer(200, nested).kind == Kind::deny);
    const std::string unbalanced = R"({"allow":false,"x":)" + std::string(depth, '[') + "}";
    CHECK(read_webhook_answer(200, unbalanced).kind == Kind::failed);
}

TEST_CASE("webhook request: every field, empty ones as null, any bytes as valid JSON", "[webhook]") {
    WebhookQuestion question;
    question.token_sha256 = std::string(64, 'a');
    question.device_id = "device \"1\"\n\x01";
    question.profile = "wifi";
    question.operation = "PKIOperation";
    const auto body = nlohmann::json::parse(webhook_request_body(question));
    CHECK(body.size() == 6);
    CHECK(body["token_sha256"] == std::string(64, 'a'));
    CHECK(body["device_id"] == "device \"1\"\n\x01");
    CHECK(body["profile"] == "wifi");
    CHECK(body["operation"] == "PKIOperation");
    CHECK(body["message_type"].is_null());
    CHECK(body["transaction_id"].is_null());

    question.device_id = "bad \xff\xfe utf-8";
    question.transaction_id = "tx-1";
    const auto replaced = nlohmann::json::parse(webhook_request_body(question));
    CHECK(replaced["device_id"].get<std::string>().find("bad ") == 0);
    CHECK(replaced["transaction_id"] == "tx-1");
}

}  // namespace scepproxy::token::webhook
