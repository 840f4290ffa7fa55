// Enrollment tokens: 128 random bits shown as a GUID, stored and logged only as SHA-256.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace scepproxy::token {

// SHA-256 of the token's 16 raw bytes. This is what the store keeps and what the
// logs show (first 8 hex digits, the "token id"), never the token itself.
struct TokenHash {
    std::array<uint8_t, 32> bytes{};

    std::string hex() const;  // 64 lowercase hex digits
    std::string id() const;   // first 8 hex digits, safe for logs
    static std::optional<TokenHash> from_hex(std::string_view hex);
    bool operator==(const TokenHash&) const = default;
};

class EnrollmentToken {
public:
    // 16 bytes from the OpenSSL CSPRNG; std::nullopt only if the RNG fails.
    static std::optional<EnrollmentToken> generate();
    // Accepts "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", case-insensitive, nothing else.
    static std::optional<EnrollmentToken> parse(std::string_view guid);

    std::string to_guid() const;  // lowercase, 36 characters
    TokenHash hash() const;
    const std::array<uint8_t, 16>& bytes() const { return bytes_; }

private:
    std::array<uint8_t, 16> bytes_{};
};

}  // namespace scepproxy::token
