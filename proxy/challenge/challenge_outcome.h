// ChallengeOutcome: how obtaining one challenge password ended — the `outcome` label and the admin API's error code.
#pragma once

#include <cstddef>

#include "base/label_enum.h"

namespace scepproxy::challenge {

// test/packaging/check_operator_guide.py reads this list: every outcome but ok is in the guide.
#define SCEPPROXY_CHALLENGE_OUTCOMES(X)                                                                   \
    X(ok)                                                                                                 \
    X(password_cache_full)      /* NDES holds PasswordMax unused passwords (default 5) */                 \
    X(insufficient_permission)  /* the service account may not enroll */                                  \
    X(auth_failed)              /* HTTP 401: wrong account or password */                                 \
    X(timeout)                  /* no complete answer within challenge.timeout */                         \
    X(tls_error)                /* handshake, certificate or verification failure */                      \
    X(unparsable_page)          /* HTTP 200 but no password we can trust on the page */                   \
    X(http_error)               /* any other HTTP status, or a transfer error after connecting */         \
    X(unreachable)              /* DNS failure or connection refused */                                   \
    X(busy)                     /* no free fetch slot within challenge.queue_timeout */                   \
    X(internal_error)           /* on our side: an unreadable password file, out of memory */
SCEPPROXY_LABEL_ENUM(ChallengeOutcome, SCEPPROXY_CHALLENGE_OUTCOMES)

}  // namespace scepproxy::challenge
