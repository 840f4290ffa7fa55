// Enrollment tokens: generation (OpenSSL CSPRNG), strict GUID parsing/printing and SHA-256 hashing.
#include "token/enrollment_token.h"

#include <span>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace scepproxy::token {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Value of one hex digit (either case), or -1.
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void append_hex(std::string& out, uint8_t byte) {
    out.push_back(kHexDigits[byte >> 4]);
    out.push_back(kHexDigits[byte & 0x0f]);
}

// Decodes two hex digits at text[pos]; false if either is not a hex digit.
bool decode_hex_byte(std::string_view text, size_t pos, uint8_t& out) {
    const int high = hex_value(text[pos]);
    const int low = hex_value(text[pos + 1]);
    if (high < 0 || low < 0) return false;
    out = static_cast<uint8_t>((high << 4) | low);
    return true;
}

// GUID layout 8-4-4-4-12: the dashes sit at these offsets of the 36 characters.
constexpr size_t kGuidLength = 36;
constexpr bool is_guid_dash_position(size_t pos) { return pos == 8 || pos == 13 || pos == 18 || pos == 23; }

std::string hex_digits(std::span<const uint8_t> bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (uint8_t b : bytes) append_hex(out, b);
    return out;
}

}  // namespace

std::string TokenHash::hex() const { return hex_digits(bytes); }

// The first 4 bytes: 8 hex digits, short enough for the string's inline buffer (no allocation).
std::string TokenHash::id() const { return hex_digits(std::span<const uint8_t>(bytes).first(4)); }

std::optional<TokenHash> TokenHash::from_hex(std::string_view hex) {
    TokenHash hash;
    if (hex.size() != hash.bytes.size() * 2) return std::nullopt;
    for (size_t i = 0; i < hash.bytes.size(); ++i) {
        if (!decode_hex_byte(hex, i * 2, hash.bytes[i])) return std::nullopt;
    }
    return hash;
}

std::optional<EnrollmentToken> EnrollmentToken::generate() {
    EnrollmentToken token;
    if (RAND_bytes(token.bytes_.data(), static_cast<int>(token.bytes_.size())) != 1) return std::nullopt;
    return token;
}

std::optional<EnrollmentToken> EnrollmentToken::parse(std::string_view guid) {
    if (guid.size() != kGuidLength) return std::nullopt;
    EnrollmentToken token;
    size_t byte_index = 0;
    size_t pos = 0;
    while (pos < kGuidLength) {
        if (is_guid_dash_position(pos)) {
            if (guid[pos] != '-') return std::nullopt;
            ++pos;
            continue;
        }
        // Never straddles a dash: every group has an even number of digits.
        if (!decode_hex_byte(guid, pos, token.bytes_[byte_index])) return std::nullopt;
        ++byte_index;
        pos += 2;
    }
    return token;
}

std::string EnrollmentToken::to_guid() const {
    std::string out;
    out.reserve(kGuidLength);
    for (size_t i = 0; i < bytes_.size(); ++i) {
        if (is_guid_dash_position(out.size())) out.push_back('-');
        append_hex(out, bytes_[i]);
    }
    return out;
}

namespace {

// Every request hashes its token: the algorithm is fetched from the provider once, and each
// thread keeps its digest context (EVP_Digest with EVP_sha256() fetched and allocated anew
// each time, most of the hash's cost).
struct Sha256Context {
    Sha256Context() : context(EVP_MD_CTX_new()) {}
    ~Sha256Context() { EVP_MD_CTX_free(context); }
    Sha256Context(const Sha256Context&) = delete;
    Sha256Context& operator=(const Sha256Context&) = delete;
    EVP_MD_CTX* context;
};

const EVP_MD* sha256() {
    static EVP_MD* const fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);  // kept for the process
    return fetched;
}

}  // namespace

TokenHash EnrollmentToken::hash() const {
    thread_local Sha256Context digest;
    TokenHash hash;
    unsigned int length = 0;
    // SHA-256 of 16 bytes in memory can only fail if OpenSSL itself is broken; the
    // hash then stays all zeros, which stores refuse to issue (see validate_new_token).
    const EVP_MD* algorithm = sha256();
    if (!digest.context || !algorithm || EVP_DigestInit_ex2(digest.context, algorithm, nullptr) != 1 ||
        EVP_DigestUpdate(digest.context, bytes_.data(), bytes_.size()) != 1 ||
        EVP_DigestFinal_ex(digest.context, hash.bytes.data(), &length) != 1 || length != hash.bytes.size()) {
        hash.bytes.fill(0);
    }
    return hash;
}

}  // namespace scepproxy::token
