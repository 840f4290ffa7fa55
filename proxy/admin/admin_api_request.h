// Admin API requests, read strictly: routes (404/405), bearer credentials, and the JSON bodies of POST enrollments and PUT devices.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "proxy/challenge/challenge_outcome.h"
#include "proxy/http/http_field_syntax.h"

namespace scepproxy::proxy {

enum class AdminEndpoint {
    none,         // no such path
    healthz,      // GET /healthz
    readyz,       // GET /readyz
    enrollments,  // POST /api/v1/enrollments
    enrollment,   // GET|DELETE /api/v1/enrollments/{token}
    device,       // GET|PUT /api/v1/devices/{device_id}
};

struct AdminRoute {
    int status = 200;        // 200 routed; 404 unknown path; 405 wrong method; 400 malformed path
    std::string error;       // for the {"error": ...} body when status != 200
    std::string_view allow;  // 405: the methods the path accepts, for Allow
    AdminEndpoint endpoint = AdminEndpoint::none;
    std::string parameter;  // enrollment: the token as written; device: the id, percent-decoded
};

// `method` as sent ("GET", "DELETE", ...); `path` without the query.
AdminRoute route_admin_request(std::string_view method, std::string_view path);

// healthz and readyz answer without credentials (load balancers probe them); nothing else does.
bool admin_endpoint_needs_credentials(AdminEndpoint endpoint);

// "Authorization: Bearer <token>", compared in constant time against a SHA-256 of the
// expected token (so the length isn't compared either). More than one Authorization field,
// another scheme or an empty token are refused.
class BearerCredentials {
public:
    explicit BearerCredentials(std::string_view expected_token);
    bool accepts(std::span<const http::HttpField> fields) const;

private:
    std::array<unsigned char, 32> expected_hash_{};
};

// POST /api/v1/enrollments: {"profile": string, "device_id": string, "ttl"?: duration string}.
struct EnrollmentRequestBody {
    std::string profile;
    std::string device_id;
    std::optional<conf::Duration> ttl;
};
// PUT /api/v1/devices/{id}: {"enrolled": bool, "compliant": bool}, both required.
struct DeviceStateBody {
    bool enrolled = false;
    bool compliant = false;
};

// Nullopt and *error (a message for a 400) unless the body is exactly one JSON object with the
// right member types, no unknown and no repeated members.
std::optional<EnrollmentRequestBody> parse_enrollment_request(std::string_view body, std::string* error);
std::optional<DeviceStateBody> parse_device_state(std::string_view body, std::string* error);

// The status a failed challenge fetch is answered with: 503 when waiting may help (password_cache_full,
// busy), 504 on timeout, 500 for our own failures, 502 for what NDES did wrong.
int http_status_for(challenge::ChallengeOutcome outcome);

// True for "application/json", with or without parameters (charset=utf-8), in any case.
bool is_json_media_type(std::string_view content_type);

}  // namespace scepproxy::proxy
