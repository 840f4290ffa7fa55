// Names and HTTP statuses of the codec's rejection reasons.
#include "proxy/http/http_error.h"

namespace scepproxy::http {

std::string_view reason_code(HttpErrorCode code) {
    switch (code) {
        case HttpErrorCode::none: return "none";
        case HttpErrorCode::request_line_too_long: return "request_line_too_long";
        case HttpErrorCode::status_line_too_long: return "status_line_too_long";
        case HttpErrorCode::header_too_large: return "header_too_large";
        case HttpErrorCode::too_many_headers: return "too_many_headers";
        case HttpErrorCode::nul_byte: return "nul_byte";
        case HttpErrorCode::bare_cr: return "bare_cr";
        case HttpErrorCode::bare_lf: return "bare_lf";
        case HttpErrorCode::bad_request_line: return "bad_request_line";
        case HttpErrorCode::bad_request_target: return "bad_request_target";
        case HttpErrorCode::bad_status_line: return "bad_status_line";
        case HttpErrorCode::unsupported_version: return "unsupported_version";
        case HttpErrorCode::obs_fold: return "obs_fold";
        case HttpErrorCode::space_before_colon: return "space_before_colon";
        case HttpErrorCode::bad_header_name: return "bad_header_name";
        case HttpErrorCode::missing_colon: return "missing_colon";
        case HttpErrorCode::bad_header_value: return "bad_header_value";
        case HttpErrorCode::missing_host: return "missing_host";
        case HttpErrorCode::duplicate_host: return "duplicate_host";
        case HttpErrorCode::bad_host: return "bad_host";
        case HttpErrorCode::unsupported_expectation: return "unsupported_expectation";
        case HttpErrorCode::bad_content_length: return "bad_content_length";
        case HttpErrorCode::duplicate_content_length: return "duplicate_content_length";
        case HttpErrorCode::te_and_cl: return "te_and_cl";
        case HttpErrorCode::te_in_http_1_0: return "te_in_http_1_0";
        case HttpErrorCode::duplicate_transfer_encoding: return "duplicate_transfer_encoding";
        case HttpErrorCode::unsupported_transfer_coding: return "unsupported_transfer_coding";
        case HttpErrorCode::body_too_large: return "body_too_large";
        case HttpErrorCode::bad_chunk_size: return "bad_chunk_size";
        case HttpErrorCode::bad_chunk_extension: return "bad_chunk_extension";
        case HttpErrorCode::chunk_extension_too_long: return "chunk_extension_too_long";
        case HttpErrorCode::missing_chunk_crlf: return "missing_chunk_crlf";
        case HttpErrorCode::bad_trailer: return "bad_trailer";
        case HttpErrorCode::trailer_too_large: return "trailer_too_large";
        case HttpErrorCode::upstream_body_too_large: return "upstream_body_too_large";
        case HttpErrorCode::unexpected_1xx: return "unexpected_1xx";
        case HttpErrorCode::truncated_head: return "truncated_head";
        case HttpErrorCode::truncated_body: return "truncated_body";
        case HttpErrorCode::head_not_parsed: return "head_not_parsed";
    }
    return "unknown";
}

HttpError HttpError::for_request(HttpErrorCode code) {
    uint16_t status = 400;
    switch (code) {
        case HttpErrorCode::none: status = 0; break;
        case HttpErrorCode::request_line_too_long: status = 414; break;
        case HttpErrorCode::header_too_large:
        case HttpErrorCode::too_many_headers:
        case HttpErrorCode::trailer_too_large: status = 431; break;
        case HttpErrorCode::body_too_large: status = 413; break;
        case HttpErrorCode::unsupported_expectation: status = 417; break;
        case HttpErrorCode::unsupported_transfer_coding: status = 501; break;
        case HttpErrorCode::unsupported_version: status = 505; break;
        default: break;
    }
    return HttpError{status, code};
}

HttpError HttpError::for_upstream(HttpErrorCode code) {
    if (code == HttpErrorCode::none) return HttpError{};
    // The shared scanner and decoder speak in request terms; say what they mean for a response.
    if (code == HttpErrorCode::request_line_too_long) code = HttpErrorCode::status_line_too_long;
    if (code == HttpErrorCode::body_too_large) code = HttpErrorCode::upstream_body_too_large;
    return HttpError{502, code};
}

}  // namespace scepproxy::http
