// Admin API request reading: path routing with Allow lists, percent-decoding, bearer check, strict JSON members.
#include "proxy/admin/admin_api_request.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "conf/config_values.h"

namespace scepproxy::proxy {
namespace {

using nlohmann::json;

constexpr std::string_view kEnrollmentsPath = "/api/v1/enrollments";
constexpr std::string_view kDevicesPrefix = "/api/v1/devices/";

AdminRoute not_found() {
    AdminRoute route;
    route.status = 404;
    route.error = "not_found";
    return route;
}

AdminRoute routed(AdminEndpoint endpoint, std::string_view method, std::initializer_list<std::string_view> methods,
                  std::string_view allow, std::string parameter = {}) {
    AdminRoute route;
    route.endpoint = endpoint;
    route.parameter = std::move(parameter);
    if (std::find(methods.begin(), methods.end(), method) == methods.end()) {
        route.status = 405;
        route.error = "method_not_allowed";
        route.allow = allow;
    }
    return route;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// %XX escapes decoded; '+' is left alone (a path, not a form). Nullopt on a broken escape.
std::optional<std::string> percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 2 >= text.size()) return std::nullopt;
        const int high = hex_value(text[i + 1]);
        const int low = hex_value(text[i + 2]);
        if (high < 0 || low < 0) return std::nullopt;
        out += static_cast<char>(high * 16 + low);
        i += 2;
    }
    return out;
}

std::array<unsigned char, 32> sha256(std::string_view data) {
    std::array<unsigned char, 32> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
    return digest;
}

// Parses `body` as one JSON object; repeated member names are refused (nlohmann keeps the last silently).
std::optional<json> parse_object(std::string_view body, std::string* error) {
    bool repeated = false;
    std::set<std::string> names;
    json value = json::parse(
        body.begin(), body.end(),
        [&](int depth, json::parse_event_t event, json& parsed) {
            if (event == json::parse_event_t::key && depth == 1 && !names.insert(parsed.get<std::string>()).second)
                repeated = true;
            return true;
        },
        false);
    if (value.is_discarded() || !value.is_object()) {
        *error = "the body must be a JSON object";
        return std::nullopt;
    }
    if (repeated) {
        *error = "a member appears more than once";
        return std::nullopt;
    }
    return value;
}

// Every member must be one of `known`.
bool only_known_members(const json& object, std::initializer_list<std::string_view> known, std::string* error) {
    for (const auto& [name, value] : object.items()) {
        if (std::find(known.begin(), known.end(), name) == known.end()) {
            std::string list;
            for (const auto& k : known) list += (list.empty() ? "" : ", ") + std::string(k);
            *error = "unknown member '" + name + "' (expected " + list + ")";
            return false;
        }
    }
    return true;
}

const json* required_member(const json& object, const char* name, json::value_t type, const char* type_text,
                            std::string* error) {
    const auto it = object.find(name);
    if (it == object.end()) {
        *error = std::string(name) + " is required";
        return nullptr;
    }
    if (it->type() != type) {
        *error = std::string(name) + " must be " + type_text;
        return nullptr;
    }
    return &*it;
}

}  // namespace

AdminRoute route_admin_request(std::string_view method, std::string_view path) {
    if (path == "/healthz") return routed(AdminEndpoint::healthz, method, {"GET"}, "GET");
    if (path == "/readyz") return routed(AdminEndpoint::readyz, method, {"GET"}, "GET");
    if (path == kEnrollmentsPath) return routed(AdminEndpoint::enrollments, method, {"POST"}, "POST");
    if (path.starts_with(kEnrollmentsPath) && path.size() > kEnrollmentsPath.size() + 1 &&
        path[kEnrollmentsPath.size()] == '/') {
        const std::string_view token = path.substr(kEnrollmentsPath.size() + 1);
        if (token.find('/') != std::string_view::npos) return not_found();
        return routed(AdminEndpoint::enrollment, method, {"GET", "DELETE"}, "GET, DELETE", std::string(token));
    }
    if (path.starts_with(kDevicesPrefix) && path.size() > kDevicesPrefix.size()) {
        const std::string_view encoded = path.substr(kDevicesPrefix.size());
        if (encoded.find('/') != std::string_view::npos) return not_found();
        auto device_id = percent_decode(encoded);
        if (!device_id) {
            AdminRoute route;
            route.endpoint = AdminEndpoint::device;
            route.status = 400;
            route.error = "malformed percent-encoding in the device id";
            return route;
        }
        return routed(AdminEndpoint::device, method, {"GET", "PUT"}, "GET, PUT", std::move(*device_id));
    }
    return not_found();
}

bool admin_endpoint_needs_credentials(AdminEndpoint endpoint) {
    return endpoint != AdminEndpoint::healthz && endpoint != AdminEndpoint::readyz;
}

int http_status_for(challenge::ChallengeOutcome outcome) {
    using challenge::ChallengeOutcome;
    switch (outcome) {
        case ChallengeOutcome::ok: return 201;
        case ChallengeOutcome::password_cache_full:
        case ChallengeOutcome::busy: return 503;
        case ChallengeOutcome::timeout: return 504;
        case ChallengeOutcome::internal_error: return 500;
        case ChallengeOutcome::insufficient_permission:
        case ChallengeOutcome::auth_failed:
        case ChallengeOutcome::tls_error:
        case ChallengeOutcome::unparsable_page:
        case ChallengeOutcome::http_error:
        case ChallengeOutcome::unreachable: return 502;
    }
    return 502;
}

BearerCredentials::BearerCredentials(std::string_view expected_token) : expected_hash_(sha256(expected_token)) {}

bool BearerCredentials::accepts(std::span<const http::HttpField> fields) const {
    const http::HttpField* authorization = nullptr;
    for (const auto& field : fields) {
        if (!http::equals_ignore_case(field.name, "Authorization")) continue;
        if (authorization) return false;  // two credentials: refuse rather than pick one
        authorization = &field;
    }
    if (!authorization) return false;
    constexpr std::string_view kScheme = "Bearer ";
    const std::string_view value = authorization->value;
    if (value.size() <= kScheme.size() || !http::equals_ignore_case(value.substr(0, kScheme.size()), kScheme))
        return false;
    const std::string_view presented = http::trim_ows(value.substr(kScheme.size()));
    if (presented.empty()) return false;
    const auto presented_hash = sha256(presented);
    return CRYPTO_memcmp(presented_hash.data(), expected_hash_.data(), expected_hash_.size()) == 0;
}

std::optional<EnrollmentRequestBody> parse_enrollment_request(std::string_view body, std::string* error) {
    const auto object = parse_object(body, error);
    if (!object || !only_known_members(*object, {"profile", "device_id", "ttl"}, error)) return std::nullopt;
    const json* profile = required_member(*object, "profile", json::value_t::string, "a string", error);
    if (!profile) return std::nullopt;
    const json* device_id = required_member(*object, "device_id", json::value_t::string, "a string", error);
    if (!device_id) return std::nullopt;
    EnrollmentRequestBody request;
    request.profile = profile->get<std::string>();
    request.device_id = device_id->get<std::string>();
    if (object->contains("ttl")) {
        const json* ttl =
            required_member(*object, "ttl", json::value_t::string, "a duration string such as \"30m\"", error);
        if (!ttl) return std::nullopt;
        const auto parsed = conf::parse_duration(ttl->get<std::string>());
        if (!parsed.value || parsed.value->count() <= 0) {
            *error = "ttl must be a duration greater than 0, such as \"30m\" or \"1h\"";
            return std::nullopt;
        }
        request.ttl = *parsed.value;
    }
    return request;
}

std::optional<DeviceStateBody> parse_device_state(std::string_view body, std::string* error) {
    const auto object = parse_object(body, error);
    if (!object || !only_known_members(*object, {"enrolled", "compliant"}, error)) return std::nullopt;
    const json* enrolled = required_member(*object, "enrolled", json::value_t::boolean, "true or false", error);
    if (!enrolled) return std::nullopt;
    const json* compliant = required_member(*object, "compliant", json::value_t::boolean, "true or false", error);
    if (!compliant) return std::nullopt;
    return DeviceStateBody{enrolled->get<bool>(), compliant->get<bool>()};
}

bool is_json_media_type(std::string_view content_type) {
    const std::string_view media_type = http::trim_ows(content_type.substr(0, content_type.find(';')));
    return http::equals_ignore_case(media_type, "application/json");
}

}  // namespace scepproxy::proxy
