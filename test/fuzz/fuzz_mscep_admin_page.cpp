// Fuzz target: reading NDES's mscep_admin page (encoding detection, UTF-16LE decoding, password extraction) never crashes and never returns a password it did not fully see.
#include <string>
#include <string_view>

#include "proxy/challenge/mscep_admin_page.h"
#include "test/fuzz/fuzz_check.h"

namespace {

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF); counts code points.
bool valid_utf8(std::string_view text, size_t* code_points) {
    size_t count = 0;
    for (size_t i = 0; i < text.size(); ++count) {
        const auto c = static_cast<unsigned char>(text[i]);
        size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (length == 0 || i + length > text.size()) return false;
        uint32_t cp = length == 1 ? c : length == 2 ? (c & 0x1f) : length == 3 ? (c & 0x0f) : (c & 0x07);
        for (size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (next & 0x3f);
        }
        static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMinimum[length] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += length;
    }
    if (code_points) *code_points = count;
    return true;
}

void check_reading(const scepproxy::challenge::PageReading& reading, uint32_t expected_length) {
    using scepproxy::challenge::ChallengeOutcome;
    if (reading.outcome != ChallengeOutcome::ok) {
        FUZZ_CHECK(reading.password.empty(), "a password with a failed reading");
        return;
    }
    size_t characters = 0;
    FUZZ_CHECK(valid_utf8(reading.password, &characters), "a password that is not UTF-8");
    FUZZ_CHECK(characters >= 1 && characters <= 255, "password length outside 1..255");
    if (expected_length != 0) FUZZ_CHECK(characters == expected_length, "password of another length than expected");
    for (char c : reading.password)
        FUZZ_CHECK(c != ' ' && c != '\t' && c != '\r' && c != '\n', "white space in password");
    FUZZ_CHECK(reading.detail.find(reading.password) == std::string::npos, "the password in the detail");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace scepproxy::challenge;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const std::string text = decode_page_text(bytes);
    if (detect_page_encoding(bytes) == PageEncoding::utf16le) {
        FUZZ_CHECK(valid_utf8(text, nullptr), "UTF-16LE decoded to invalid UTF-8");
    }
    const PageReading any_length = read_mscep_admin_page(bytes, 0);
    check_reading(any_length, 0);
    const PageReading sixteen = read_mscep_admin_page(bytes, 16);
    check_reading(sixteen, 16);
    if (sixteen.outcome == ChallengeOutcome::ok) {
        FUZZ_CHECK(any_length.outcome == ChallengeOutcome::ok && any_length.password == sixteen.password,
                   "a length constraint changed which password was read");
    }
    return 0;
}
