// ChallengeOutcome: how obtaining one challenge password ended — the `outcome` label and the admin API's error code.
#pragma once

#include <cstddef>

namespace scepproxy::challenge {

enum class ChallengeOutcome {
    ok,
    password_cache_full,      // NDES holds PasswordMax unused passwords (default 5)
    insufficient_permission,  // the service account may not enroll
    auth_failed,              // HTTP 401: wrong account or password
    timeout,                  // no complete answer within challenge.timeout
    tls_error,                // handshake, certificate or verification failure
    unparsable_page,          // HTTP 200 but no password we can trust on the page
    http_error,               // any other HTTP status, or a transfer error after connecting
    unreachable,              // DNS failure or connection refused
    busy,                     // no free fetch slot within challenge.queue_timeout
    internal_error,           // on our side: an unreadable password file, out of memory
};
inline constexpr size_t kChallengeOutcomeCount = 11;

const char* to_string(ChallengeOutcome outcome);

}  // namespace scepproxy::challenge
