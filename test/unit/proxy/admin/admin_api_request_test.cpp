// Tests for reading admin API requests: routes and Allow lists, bearer credentials, strict JSON bodies, challenge statuses.
#include <catch2/catch.hpp>

#include <vector>

#include "proxy/admin/admin_api_request.h"

using namespace scepproxy;
using namespace scepproxy::proxy;
using namespace std::chrono_literals;

TEST_CASE("admin routes: endpoints, parameters, 404 and 405 with Allow", "[admin][route]") {
    CHECK(route_admin_request("GET", "/healthz").endpoint == AdminEndpoint::healthz);
    CHECK(route_admin_request("GET", "/readyz").endpoint == AdminEndpoint::readyz);
    CHECK(route_admin_request("POST", "/api/v1/enrollments").endpoint == AdminEndpoint::enrollments);

    const AdminRoute show = route_admin_request("GET", "/api/v1/enrollments/6e387b89-41d9-17c3-a95e-791d22063f0f");
    CHECK(show.status == 200);
    CHECK(show.endpoint == AdminEndpoint::enrollment);
    CHECK(show.parameter == "6e387b89-41d9-17c3-a95e-791d22063f0f");
    CHECK(route_admin_request("DELETE", "/api/v1/enrollments/x").status == 200);

    const AdminRoute device = route_admin_request("PUT", "/api/v1/devices/dev%2F1%20a+b");
    CHECK(device.status == 200);
    CHECK(device.endpoint == AdminEndpoint::device);
    CHECK(device.parameter == "dev/1 a+b");

    for (const char* path : {"/", "/api", "/api/v1/enrollments/", "/api/v1/enrollments/a/b", "/api/v1/devices/",
                             "/api/v1/devices/a/b", "/metrics", "/healthz/", "/API/v1/enrollments"}) {
        INFO(path);
        const AdminRoute route = route_admin_request("GET", path);
        CHECK(route.status == 404);
        CHECK(route.endpoint == AdminEndpoint::none);
        CHECK(route.error == "not_found");
    }

    const std::vector<std::tuple<const char*, const char*, std::string_view>> wrong_methods = {
        {"GET", "/api/v1/enrollments", "POST"},
        {"PUT", "/api/v1/enrollments/x", "GET, DELETE"},
        {"POST", "/api/v1/devices/d", "GET, PUT"},
        {"DELETE", "/api/v1/devices/d", "GET, PUT"},
        {"POST", "/healthz", "GET"},
        {"HEAD", "/readyz", "GET"},
        {"get", "/healthz", "GET"},  // methods are case-sensitive
    };
    for (const auto& [method, path, allow] : wrong_methods) {
        INFO(method << " " << path);
        const AdminRoute route = route_admin_request(method, path);
        CHECK(route.status == 405);
        CHECK(route.allow == allow);
        CHECK(route.error == "method_not_allowed");
    }

    for (const char* path : {"/api/v1/devices/a%2", "/api/v1/devices/a%zz", "/api/v1/devices/%"}) {
        INFO(path);
        const AdminRoute route = route_admin_request("GET", path);
        CHECK(route.status == 400);
        CHECK(route.error == "malformed percent-encoding in the device id");
    }
}

TEST_CASE("only the health endpoints answer without credentials", "[admin][route]") {
    CHECK_FALSE(admin_endpoint_needs_credentials(AdminEndpoint::healthz));
    CHECK_FALSE(admin_endpoint_needs_credentials(AdminEndpoint::readyz));
    CHECK(admin_endpoint_needs_credentials(AdminEndpoint::none));  // unknown paths: 401 before 404
    CHECK(admin_endpoint_needs_credentials(AdminEndpoint::enrollments));
    CHECK(admin_endpoint_needs_credentials(AdminEndpoint::enrollment));
    CHECK(admin_endpoint_needs_credentials(AdminEndpoint::device));
}

TEST_CASE("bearer credentials: exactly one Authorization field with the right token", "[admin][auth]") {
    const BearerCredentials credentials("0123456789abcdef-secret");
    using Fields = std::vector<http::HttpField>;
    CHECK(credentials.accepts(Fields{{"Authorization", "Bearer 0123456789abcdef-secret"}}));
    CHECK(credentials.accepts(Fields{{"authorization", "bearer 0123456789abcdef-secret"}}));
    CHECK(credentials.accepts(Fields{{"Host", "x"}, {"AUTHORIZATION", "BEARER   0123456789abcdef-secret"}}));
    CHECK_FALSE(credentials.accepts(Fields{}));
    CHECK_FALSE(credentials.accepts(Fields{{"Authorization", "Bearer 0123456789abcdef-secreT"}}));
    CHECK_FALSE(credentials.accepts(Fields{{"Authorization", "Bearer 0123456789abcdef-secre"}}));
    CHECK_FALSE(credentials.accepts(Fields{{"Authorization", "Bearer 0123456789abcdef-secret2"}}));
    CHECK_FALSE(credentials.accepts(Fields{{"Authorization", "Basic 0123456789abcdef-secret"}}));
    CHECK_FALSE(credentials.accepts(Fields{{"Authorization", "Bearer "}}));
    CHECK_FALSE(credentials.accepts(Fields{{"Authorization", "Bearer"}}));
    CHECK_FALSE(credentials.accepts(Fields{{"Authorization", "0123456789abcdef-secret"}}));
    CHECK_FALSE(credentials.accepts(Fields{{"X-Authorization", "Bearer 0123456789abcdef-secret"}}));
    // Two credentials are refused even when one of them is right.
    CHECK_FALSE(credentials.accepts(Fields{{"Authorization", "Bearer 0123456789abcdef-secret"},
                                           {"Authorization", "Bearer wrong"}}));
}

TEST_CASE("enrollment requests: the members, their types, and nothing else", "[admin][body]") {
    std::string error;
    const auto full = parse_enrollment_request(R"({"profile":"wifi","device_id":"dev 1","ttl":"30m"})", &error);
    REQUIRE(full);
    CHECK(full->profile == "wifi");
    CHECK(full->device_id == "dev 1");
    CHECK(full->ttl == 30min);
    const auto without_ttl = parse_enrollment_request(R"({"device_id":"d","profile":"p"})", &error);
    REQUIRE(without_ttl);
    CHECK_FALSE(without_ttl->ttl);

    const std::vector<std::pair<std::string, std::string>> refused = {
        {"", "the body must be a JSON object"},
        {"[]", "the body must be a JSON object"},
        {"\"profile\"", "the body must be a JSON object"},
        {R"({"profile":"p","device_id":"d"} {})", "the body must be a JSON object"},
        {R"({"profile":"p","device_id":"d")", "the body must be a JSON object"},
        {R"({"profile":"p","device_id":"d","profile":"q"})", "a member appears more than once"},
        {R"({"device_id":"d"})", "profile is required"},
        {R"({"profile":"p"})", "device_id is required"},
        {R"({"profile":1,"device_id":"d"})", "profile must be a string"},
        {R"({"profile":"p","device_id":null})", "device_id must be a string"},
        {R"({"profile":"p","device_id":"d","ttl":1800})", "ttl must be a duration string such as \"30m\""},
        {R"({"profile":"p","device_id":"d","ttl":"30 minutes"})",
         "ttl must be a duration greater than 0, such as \"30m\" or \"1h\""},
        {R"({"profile":"p","device_id":"d","ttl":"0s"})",
         "ttl must be a duration greater than 0, such as \"30m\" or \"1h\""},
        {R"({"profile":"p","device_id":"d","challenge":"x"})",
         "unknown member 'challenge' (expected profile, device_id, ttl)"},
        {"{\"profile\":\"p\xff\",\"device_id\":\"d\"}", "the body must be a JSON object"},  // not UTF-8
    };
    for (const auto& [body, message] : refused) {
        INFO(body);
        CHECK_FALSE(parse_enrollment_request(body, &error));
        CHECK(error == message);
    }
}

TEST_CASE("device states: both booleans, required", "[admin][body]") {
    std::string error;
    const auto state = parse_device_state(R"({"enrolled":true,"compliant":false})", &error);
    REQUIRE(state);
    CHECK(state->enrolled);
    CHECK_FALSE(state->compliant);
    CHECK_FALSE(parse_device_state(R"({"enrolled":true})", &error));
    CHECK(error == "compliant is required");
    CHECK_FALSE(parse_device_state(R"({"enrolled":1,"compliant":false})", &error));
    CHECK(error == "enrolled must be true or false");
    CHECK_FALSE(parse_device_state(R"({"enrolled":true,"compliant":"false"})", &error));
    CHECK(error == "compliant must be true or false");
    CHECK_FALSE(parse_device_state(R"({"enrolled":true,"compliant":true,"x":true})", &error));
    CHECK(error == "unknown member 'x' (expected enrolled, compliant)");
}

TEST_CASE("deeply nested or huge JSON is refused without a crash", "[admin][body]") {
    std::string error;
    CHECK_FALSE(parse_enrollment_request(std::string(100000, '[') + std::string(100000, ']'), &error));
    CHECK_FALSE(parse_enrollment_request(std::string(100000, '['), &error));
    CHECK_FALSE(parse_enrollment_request("{\"profile\":\"" + std::string(100000, 'a'), &error));
}

TEST_CASE("challenge outcomes map to 502, 503, 504 or 500", "[admin][status]") {
    using challenge::ChallengeOutcome;
    CHECK(http_status_for(ChallengeOutcome::password_cache_full) == 503);
    CHECK(http_status_for(ChallengeOutcome::busy) == 503);
    CHECK(http_status_for(ChallengeOutcome::timeout) == 504);
    CHECK(http_status_for(ChallengeOutcome::internal_error) == 500);
    for (auto outcome :
         {ChallengeOutcome::insufficient_permission, ChallengeOutcome::auth_failed, ChallengeOutcome::tls_error,
          ChallengeOutcome::unparsable_page, ChallengeOutcome::http_error, ChallengeOutcome::unreachable})
        CHECK(http_status_for(outcome) == 502);
}

TEST_CASE("JSON media types", "[admin][body]") {
    CHECK(is_json_media_type("application/json"));
    CHECK(is_json_media_type("Application/JSON; charset=utf-8"));
    CHECK(is_json_media_type("application/json ;charset=UTF-8"));
    CHECK_FALSE(is_json_media_type("text/plain"));
    CHECK_FALSE(is_json_media_type("application/jsonx"));
    CHECK_FALSE(is_json_media_type("application/x-www-form-urlencoded"));
    CHECK_FALSE(is_json_media_type(""));
}
