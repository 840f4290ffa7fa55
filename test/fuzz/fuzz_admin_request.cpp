// Fuzz target: the admin API's request reading (route, JSON bodies, media type) on arbitrary bytes never throws, and every refusal says why.
#include <string>
#include <string_view>

#include "proxy/admin/admin_api_request.h"
#include "test/fuzz/fuzz_check.h"

// Input: "METHOD PATH" on the first line; the whole input is also given to each body parser.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace scepproxy::proxy;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::string_view first_line = input.substr(0, input.find('\n'));
    const size_t space = first_line.find(' ');
    const std::string_view method = first_line.substr(0, space);
    const std::string_view path = space == std::string_view::npos ? std::string_view() : first_line.substr(space + 1);

    const AdminRoute route = route_admin_request(method, path);
    FUZZ_CHECK(route.status == 200 || route.status == 400 || route.status == 404 || route.status == 405,
               "a route status other than 200/400/404/405");
    if (route.status == 200) {
        FUZZ_CHECK(route.endpoint != AdminEndpoint::none, "routed to no endpoint");
    } else {
        FUZZ_CHECK(!route.error.empty(), "a refused route without an error");
    }
    if (route.status == 405) FUZZ_CHECK(!route.allow.empty(), "405 without Allow");
    is_json_media_type(first_line);

    const std::string_view body = input.substr(first_line.size() < input.size() ? first_line.size() + 1 : input.size());
    for (std::string_view text : {input, body}) {
        std::string error;
        const auto enrollment = parse_enrollment_request(text, &error);
        FUZZ_CHECK(enrollment.has_value() == error.empty(), "enrollment body: a value with an error, or neither");
        error.clear();
        const auto device = parse_device_state(text, &error);
        FUZZ_CHECK(device.has_value() == error.empty(), "device body: a value with an error, or neither");
    }
    return 0;
}
