// TicketKeyRing: random keys, lazy rotation under a mutex, and OpenSSL's ticket key callback on top of them.
#include "proxy/net/ticket_key_ring.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <utility>

#include "proxy/net/tls_context.h"

namespace scepproxy::proxy {
namespace {

constexpr size_t kIvLength = 16;  // AES-CBC; OpenSSL's iv buffer holds EVP_MAX_IV_LENGTH (16)

std::optional<TicketKey> random_key() {
    TicketKey key;
    if (RAND_bytes(key.name.data(), static_cast<int>(key.name.size())) != 1 ||
        RAND_bytes(key.aes_key.data(), static_cast<int>(key.aes_key.size())) != 1 ||
        RAND_bytes(key.hmac_key.data(), static_cast<int>(key.hmac_key.size())) != 1)
        return std::nullopt;
    return key;
}

void free_ring(void* /*parent*/, void* ring, CRYPTO_EX_DATA* /*data*/, int /*index*/, long /*argl*/, void* /*argp*/) {
    delete static_cast<TicketKeyRing*>(ring);
}

// The context's slot for its ring; OpenSSL frees the ring with the context.
int ring_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_ring);
    return index;
}

bool set_hmac_key(EVP_MAC_CTX* mac, TicketKey& key) {
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac_key.data(), key.hmac_key.size()),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(mac, params) == 1;
}

// OpenSSL's contract (SSL_CTX_set_tlsext_ticket_key_evp_cb(3)): encrypting, fill key_name and iv,
// set up cipher and mac, return 1. Decrypting, find the key by key_name: 1 when it's the current
// one, 2 when it's the previous one (OpenSSL then issues a new ticket under the current key),
// 0 when none matches (a full handshake follows). Negative: an error, the handshake fails.
int ticket_key_callback(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                        int encrypt) {
    TicketKeyRing* ring = find_ticket_key_ring(SSL_get_SSL_CTX(ssl));
    if (!ring) return -1;
    TicketKeyRing::Keys keys = ring->keys();
    if (encrypt) {
        TicketKey& key = keys.current;
        if (RAND_bytes(iv, static_cast<int>(kIvLength)) != 1) return -1;
        std::copy(key.name.begin(), key.name.end(), key_name);
        if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes_key.data(), iv) != 1) return -1;
        return set_hmac_key(mac, key) ? 1 : -1;
    }
    const auto named = [key_name](const TicketKey& key) {
        return std::equal(key.name.begin(), key.name.end(), key_name);
    };
    int found = 0;
    TicketKey* key = nullptr;
    if (named(keys.current)) {
        key = &keys.current;
        found = 1;
    } else if (keys.previous && named(*keys.previous)) {
        key = &*keys.previous;
        found = 2;
    } else {
        return 0;
    }
    if (!set_hmac_key(mac, *key)) return -1;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes_key.data(), iv) != 1) return -1;
    return found;
}

}  // namespace

TicketKey::~TicketKey() { OPENSSL_cleanse(this, sizeof *this); }

TicketKeyRing::TicketKeyRing(std::chrono::steady_clock::duration period, TicketClock clock)
    : period_(period), clock_(std::move(clock)) {}

std::unique_ptr<TicketKeyRing> TicketKeyRing::create(std::chrono::steady_clock::duration period, TicketClock clock) {
    if (!clock) clock = [] { return std::chrono::steady_clock::now(); };
    std::optional<TicketKey> first = random_key();
    if (!first) return nullptr;
    std::unique_ptr<TicketKeyRing> ring(new TicketKeyRing(period, std::move(clock)));
    ring->keys_.current = *first;
    ring->rotated_at_ = ring->clock_();
    return ring;
}

TicketKeyRing::Keys TicketKeyRing::keys() {
    const auto now = clock_();
    std::lock_guard lock(mutex_);
    const auto elapsed = now - rotated_at_;
    if (elapsed >= period_) {
        // A failure keeps the keys (RAND_bytes failing fails the handshakes anyway) and retries next time.
        if (std::optional<TicketKey> next = random_key()) {
            if (elapsed >= 2 * period_)
                keys_.previous.reset();
            else
                keys_.previous = keys_.current;
            keys_.current = *next;
            rotated_at_ = now;
        }
    }
    return keys_;
}

bool install_ticket_key_ring(SSL_CTX* ctx, std::chrono::steady_clock::duration period, TicketClock clock,
                             std::string* error) {
    std::unique_ptr<TicketKeyRing> ring = TicketKeyRing::create(period, std::move(clock));
    if (!ring) {
        *error = "session ticket keys: " + take_openssl_error();
        return false;
    }
    const int index = ring_index();
    TicketKeyRing* const replaced = find_ticket_key_ring(ctx);
    if (index < 0 || SSL_CTX_set_ex_data(ctx, index, ring.get()) != 1) {
        *error = "session ticket keys: " + take_openssl_error();
        return false;
    }
    ring.release();  // the context owns it now (free_ring)
    delete replaced;
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_callback) != 1) {
        *error = "session ticket callback: " + take_openssl_error();
        return false;
    }
    return true;
}

TicketKeyRing* find_ticket_key_ring(SSL_CTX* ctx) {
    const int index = ring_index();
    return index < 0 ? nullptr : static_cast<TicketKeyRing*>(SSL_CTX_get_ex_data(ctx, index));
}

}  // namespace scepproxy::proxy
