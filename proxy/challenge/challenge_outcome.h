// ChallengeOutcome: how obtaining one challenge password ended — the `outcome` label and the admin API's error code.
#pragma once

#include <cstddef>

#include "base/label_enum.h"

namespace scepproxy::challenge {

// test/packaging/check_operator_guide.py reads this list: every outcome but ok is in the guide.
// clang-format off: one label a line
#define SCEPPROXY_CHALLENGE_OUTCOMES(X) \
    X(ok)                               \
    X(password_cache_full)              \
    X(insufficient_permission)          \
    X(auth_failed)                      \
    X(timeout)                          \
    X(tls_error)                        \
    X(unparsable_page)                  \
    X(http_error)                       \
    X(unreachable)                      \
    X(busy)                             \
    X(internal_error)
// clang-format on
SCEPPROXY_LABEL_ENUM(ChallengeOutcome, SCEPPROXY_CHALLENGE_OUTCOMES)

}  // namespace scepproxy::challenge
