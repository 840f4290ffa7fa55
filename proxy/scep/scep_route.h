// SCEP routing: turns a request path and query into (token text, operation, message) or a rejection.
#pragma once

#include <string_view>

namespace scepproxy::proxy {

enum class ScepOperation { get_ca_cert, get_ca_caps, pki_operation, get_next_ca_cert, other };

const char* to_string(ScepOperation op);

// Views into the request's path and query; valid as long as those are.
struct ScepRoute {
    std::string_view token_text;  // the path segment after /scep/, not yet validated as a GUID
    ScepOperation operation = ScepOperation::other;
    std::string_view operation_text;  // as sent (for `other`, checked against the upstream's caps)
    std::string_view message;         // raw (still percent-encoded) `message=` value
    bool has_message = false;
};

enum class RouteStatus {
    ok,
    not_scep_path,      // 404: not /scep/{token}[/...]
    missing_operation,  // 400
    bad_operation,      // 400: empty, duplicated or not a plain name
    bad_query,          // 400: duplicated message, empty key, ...
};

const char* to_string(RouteStatus status);

struct RouteResult {
    RouteStatus status = RouteStatus::ok;
    ScepRoute route;
};

// path: the request path before '?'; query: after '?' (may be empty).
RouteResult route_scep_request(std::string_view path, std::string_view query);

}  // namespace scepproxy::proxy
