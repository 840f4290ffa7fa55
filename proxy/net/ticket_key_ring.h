// TicketKeyRing: a server TLS context's session ticket keys, rotated lazily, the previous key kept for decryption.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace scepproxy::proxy {

// How long one key encrypts new tickets. It then decrypts for one more period, so a ticket issued
// just before a rotation still resumes (tickets live 2 h, OpenSSL's default session timeout).
inline constexpr std::chrono::hours kTicketKeyRotationPeriod{12};

// Returns "now"; tests pass a fake one. Empty: std::chrono::steady_clock.
using TicketClock = std::function<std::chrono::steady_clock::time_point()>;

// One key: its name is sent in clear at the start of every ticket it encrypts, and picks it back.
struct TicketKey {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> aes_key{};   // AES-256-CBC
    std::array<unsigned char, 32> hmac_key{};  // HMAC-SHA256

    TicketKey() = default;
    TicketKey(const TicketKey&) = default;
    TicketKey& operator=(const TicketKey&) = default;
    ~TicketKey();  // wipes the key material (copies included)
};

// Shared by every worker thread through the context it belongs to: a mutex guards the keys,
// held only to rotate them or to copy them out (once per ticket issued or presented), never
// across the crypto. Rotation is lazy: whoever asks first after a period has passed rotates.
class TicketKeyRing {
public:
    struct Keys {
        TicketKey current;                  // encrypts new tickets
        std::optional<TicketKey> previous;  // only decrypts (and its tickets are renewed)
    };

    // Null when RAND_bytes fails.
    static std::unique_ptr<TicketKeyRing> create(std::chrono::steady_clock::duration period, TicketClock clock);

    // The keys now, rotated first when a period has passed since the last rotation: the current
    // key becomes the previous one, or is dropped too when two periods have passed (none of its
    // tickets can be younger than a period then). If RAND_bytes fails the keys stay as they are.
    Keys keys();

private:
    TicketKeyRing(std::chrono::steady_clock::duration period, TicketClock clock);

    const std::chrono::steady_clock::duration period_;
    const TicketClock clock_;
    std::mutex mutex_;
    Keys keys_;                                         // guarded by mutex_
    std::chrono::steady_clock::time_point rotated_at_;  // guarded by mutex_
};

// Gives a server context a TicketKeyRing (owned by the context, freed with it) and the ticket
// key callback that uses it instead of OpenSSL's built-in keys, which never rotate.
bool install_ticket_key_ring(SSL_CTX* ctx, std::chrono::steady_clock::duration period, TicketClock clock,
                             std::string* error);

// The ring install_ticket_key_ring gave ctx, or null.
TicketKeyRing* find_ticket_key_ring(SSL_CTX* ctx);

}  // namespace scepproxy::proxy
