// Byte-level state machine of the strict chunked-coding decoder.
#include "proxy/http/chunked_body_decoder.h"

#include <algorithm>

#include "proxy/http/http_field_syntax.h"

namespace scepproxy::http {
namespace {

int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

constexpr unsigned kMaxSizeDigits = 16;  // 64 bits; more digits are refused even if they are leading zeros

}  // namespace

ChunkedBodyDecoder::ChunkedBodyDecoder(ChunkedLimits limits) : limits_(limits) {}

void ChunkedBodyDecoder::reset() { *this = ChunkedBodyDecoder(limits_); }

ChunkedBodyDecoder::Step ChunkedBodyDecoder::fail(HttpErrorCode code, size_t consumed) {
    state_ = State::failed;
    error_ = code;
    return Step{{}, consumed};
}

bool ChunkedBodyDecoder::count_extension_byte() { return ++extension_bytes_ <= limits_.max_extension_bytes; }

bool ChunkedBodyDecoder::in_trailer_section() const {
    return state_ >= State::trailer_line && state_ <= State::final_lf;
}

bool ChunkedBodyDecoder::start_chunk() {
    if (chunk_size_ == 0) {
        state_ = State::trailer_line;
        return true;
    }
    if (chunk_size_ > limits_.max_body_bytes - decoded_bytes_) return false;
    chunk_remaining_ = chunk_size_;
    state_ = State::data;
    return true;
}

ChunkedBodyDecoder::Step ChunkedBodyDecoder::decode_some(std::string_view input) {
    size_t i = 0;
    while (i < input.size()) {
        const auto c = static_cast<unsigned char>(input[i]);
        if (in_trailer_section() && ++trailer_bytes_ > limits_.max_trailer_bytes)
            return fail(HttpErrorCode::trailer_too_large, i);
        switch (state_) {
            case State::size: {
                const int digit = hex_value(c);
                if (digit >= 0) {
                    if (++size_digits_ > kMaxSizeDigits) return fail(HttpErrorCode::bad_chunk_size, i);
                    chunk_size_ = (chunk_size_ << 4) | static_cast<uint64_t>(digit);
                    break;
                }
                if (size_digits_ == 0) return fail(HttpErrorCode::bad_chunk_size, i);
                if (c == '\r') {
                    state_ = State::size_lf;
                } else if (c == ';' || c == ' ' || c == '\t') {
                    if (!count_extension_byte()) return fail(HttpErrorCode::chunk_extension_too_long, i);
                    state_ = c == ';' ? State::extension : State::size_whitespace;
                } else {
                    return fail(HttpErrorCode::bad_chunk_size, i);
                }
                break;
            }
            case State::size_whitespace:
                // Whitespace after the size is only allowed as BWS before an extension.
                if (c != ';' && c != ' ' && c != '\t') return fail(HttpErrorCode::bad_chunk_size, i);
                if (!count_extension_byte()) return fail(HttpErrorCode::chunk_extension_too_long, i);
                if (c == ';') state_ = State::extension;
                break;
            case State::extension:
                if (c == '\r') {
                    state_ = State::size_lf;
                } else if (!is_field_value_char(c)) {
                    return fail(HttpErrorCode::bad_chunk_extension, i);
                } else if (!count_extension_byte()) {
                    return fail(HttpErrorCode::chunk_extension_too_long, i);
                }
                break;
            case State::size_lf:
                if (c != '\n') return fail(HttpErrorCode::bad_chunk_size, i);
                if (!start_chunk()) return fail(HttpErrorCode::body_too_large, i);
                break;
            case State::data: {
                const size_t available = input.size() - i;
                const size_t take =
                    static_cast<size_t>(std::min<uint64_t>(chunk_remaining_, static_cast<uint64_t>(available)));
                chunk_remaining_ -= take;
                decoded_bytes_ += take;
                if (chunk_remaining_ == 0) state_ = State::data_cr;
                return Step{input.substr(i, take), i + take};
            }
            case State::data_cr:
                if (c != '\r') return fail(HttpErrorCode::missing_chunk_crlf, i);
                state_ = State::data_lf;
                break;
            case State::data_lf:
                if (c != '\n') return fail(HttpErrorCode::missing_chunk_crlf, i);
                chunk_size_ = 0;
                size_digits_ = 0;
                state_ = State::size;
                break;
            case State::trailer_line:
                if (c == '\r') {
                    state_ = State::final_lf;
                } else if (is_token_char(c)) {
                    state_ = State::trailer_name;
                } else {
                    return fail(HttpErrorCode::bad_trailer, i);  // also obs-fold and empty names
                }
                break;
            case State::trailer_name:
                if (c == ':') {
                    state_ = State::trailer_value;
                } else if (!is_token_char(c)) {
                    return fail(HttpErrorCode::bad_trailer, i);
                }
                break;
            case State::trailer_value:
                if (c == '\r') {
                    state_ = State::trailer_lf;
                } else if (!is_field_value_char(c)) {
                    return fail(HttpErrorCode::bad_trailer, i);
                }
                break;
            case State::trailer_lf:
                if (c != '\n') return fail(HttpErrorCode::bad_trailer, i);
                state_ = State::trailer_line;
                break;
            case State::final_lf:
                if (c != '\n') return fail(HttpErrorCode::bad_trailer, i);
                state_ = State::done;
                return Step{{}, i + 1};
            case State::done:
            case State::failed: return Step{{}, i};
        }
        ++i;
    }
    return Step{{}, i};
}

size_t ChunkedBodyDecoder::decode_into(std::string_view input, std::string& out) {
    size_t used = 0;
    while (used < input.size() && !done() && !failed()) {
        const Step step = decode_some(input.substr(used));
        out.append(step.data);
        used += step.consumed;
        if (step.consumed == 0) break;  // defensive: never spin
    }
    return used;
}

}  // namespace scepproxy::http
