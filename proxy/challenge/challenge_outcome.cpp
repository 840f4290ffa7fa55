// ChallengeOutcome names: stable strings, used as metric labels and in the admin API's {"error": ...}.
#include "proxy/challenge/challenge_outcome.h"

namespace scepproxy::challenge {

const char* to_string(ChallengeOutcome outcome) {
    switch (outcome) {
        case ChallengeOutcome::ok: return "ok";
        case ChallengeOutcome::password_cache_full: return "password_cache_full";
        case ChallengeOutcome::insufficient_permission: return "insufficient_permission";
        case ChallengeOutcome::auth_failed: return "auth_failed";
        case ChallengeOutcome::timeout: return "timeout";
        case ChallengeOutcome::tls_error: return "tls_error";
        case ChallengeOutcome::unparsable_page: return "unparsable_page";
        case ChallengeOutcome::http_error: return "http_error";
        case ChallengeOutcome::unreachable: return "unreachable";
        case ChallengeOutcome::busy: return "busy";
        case ChallengeOutcome::internal_error: return "internal_error";
    }
    return "internal_error";
}

}  // namespace scepproxy::challenge
