// Reading NDES's mscep_admin page: its text encoding, and the challenge password or the reason there is none.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/challenge/challenge_outcome.h"

namespace scepproxy::challenge {

enum class PageEncoding { utf8, utf16le };

// NDES serves the page in UTF-16LE, often without BOM or charset (its meta tag claims UTF-8),
// and reverse proxies sometimes re-encode it as UTF-8. UTF-16LE when: a FF FE BOM; '<' then
// NUL; or mostly-NUL odd bytes near the start. UTF-8 otherwise (with or without its BOM).
PageEncoding detect_page_encoding(std::string_view bytes);

// The page as UTF-8 without BOM. UTF-16LE is converted; a lone surrogate or an odd last byte
// (a page cut short) becomes U+FFFD. UTF-8 input is passed through as it is.
std::string decode_page_text(std::string_view bytes);

struct PageReading {
    // ok, password_cache_full, insufficient_permission or unparsable_page.
    ChallengeOutcome outcome = ChallengeOutcome::unparsable_page;
    std::string password;  // set when ok
    std::string detail;    // why, when not ok; never page content or a password
};

// Finds the password after "The enrollment challenge password is:" — not the CA thumbprint
// that the page shows first. Markers match case-insensitively, any run of white space
// matching one space. The password must be complete: followed by white space or a tag, and
// by the closing tag when it opened in one (<B> 8CE317021F690069 </B>), so a page cut inside
// it is unparsable rather than a shorter password. `expected_length` 0 accepts 1..255 characters.
PageReading read_mscep_admin_page(std::string_view bytes, uint32_t expected_length);

}  // namespace scepproxy::challenge
