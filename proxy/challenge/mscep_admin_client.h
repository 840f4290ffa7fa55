// MscepAdminClient: one blocking HTTP(S) GET of NDES's mscep_admin page with libcurl (Basic or NTLM), read into a ChallengeResult.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "proxy/challenge/challenge_outcome.h"

namespace scepproxy::challenge {

struct ChallengeResult {
    ChallengeOutcome outcome = ChallengeOutcome::internal_error;
    std::string password;  // the challenge, when ok: handed to the caller, never logged
    std::string detail;    // for logs and the CLI; never a password
    long http_status = 0;  // the final HTTP status; 0 when there was none
};

struct MscepAdminRequest {
    std::string url;
    conf::ChallengeAuth auth = conf::ChallengeAuth::basic;
    std::string username;          // 'DOMAIN\user' is split by libcurl for NTLM
    std::string password;          // the service account's
    std::string client_cert_file;  // PEM; empty: none
    std::string client_key_file;
    std::string ca_file;  // PEM bundle; empty: the system store
    bool verify = true;
    std::chrono::milliseconds timeout{10000};
    uint32_t expected_length = 0;
};

// Once per process, before any thread fetches (libcurl's global set-up is not thread-safe
// on every build). Later calls do nothing.
void init_http_client_library();

// Blocks for at most request.timeout. Thread-safe (one libcurl handle per call: NTLM's
// three messages stay on that handle's one connection). Redirects are not followed.
ChallengeResult fetch_mscep_admin_challenge(const MscepAdminRequest& request);

// How a transfer that got no complete HTTP answer ended. `curl_code` is a CURLcode; `message`
// libcurl's error text; `tls_without_answer`: the URL is https and no response head arrived.
// A TLS 1.3 server that refuses the client certificate does so after the handshake, so the
// client sees a send or receive failure (an alert, a broken pipe or a reset): on an https
// connection that got no answer at all, those count as tls_error.
ChallengeOutcome classify_transfer_error(int curl_code, std::string_view message, bool tls_without_answer);

// What a complete answer means: 200 is read as a page; 401 is auth_failed; anything else http_error.
ChallengeResult read_mscep_admin_answer(long http_status, std::string_view body, uint32_t expected_length);

}  // namespace scepproxy::challenge
