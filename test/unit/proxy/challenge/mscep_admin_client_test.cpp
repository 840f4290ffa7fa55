// Tests for how mscep_admin transfers are classified: libcurl errors and HTTP statuses to outcomes.
#include <catch2/catch.hpp>

#include <curl/curl.h>

#include "proxy/challenge/mscep_admin_client.h"

using namespace scepproxy::challenge;

TEST_CASE("transfer errors map to typed outcomes", "[challenge][client]") {
    const auto classify = [](CURLcode code, std::string_view message) {
        return classify_transfer_error(code, message, false);
    };
    CHECK(classify(CURLE_OPERATION_TIMEDOUT, "Operation timed out") == ChallengeOutcome::timeout);
    CHECK(classify(CURLE_COULDNT_CONNECT, "Failed to connect") == ChallengeOutcome::unreachable);
    CHECK(classify(CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host") == ChallengeOutcome::unreachable);
    CHECK(classify(CURLE_PEER_FAILED_VERIFICATION, "SSL certificate problem") == ChallengeOutcome::tls_error);
    CHECK(classify(CURLE_SSL_CONNECT_ERROR, "") == ChallengeOutcome::tls_error);
    CHECK(classify(CURLE_SSL_CERTPROBLEM, "unable to set private key file") == ChallengeOutcome::tls_error);
    CHECK(classify(CURLE_SSL_CACERT_BADFILE, "") == ChallengeOutcome::tls_error);
    CHECK(classify(CURLE_RECV_ERROR, "OpenSSL SSL_read: tlsv13 alert certificate required") ==
          ChallengeOutcome::tls_error);
    CHECK(classify(CURLE_RECV_ERROR, "Recv failure: Connection reset by peer") == ChallengeOutcome::http_error);
    CHECK(classify(CURLE_SEND_ERROR, "Send failure: Broken pipe") == ChallengeOutcome::http_error);
    CHECK(classify(CURLE_GOT_NOTHING, "Empty reply from server") == ChallengeOutcome::http_error);
    CHECK(classify(CURLE_OUT_OF_MEMORY, "") == ChallengeOutcome::internal_error);
}

TEST_CASE("on https, a send or receive failure before any answer is the server refusing our TLS",
          "[challenge][client]") {
    // TLS 1.3: the server checks the client certificate after the handshake, then alerts or resets.
    CHECK(classify_transfer_error(CURLE_SEND_ERROR, "Send failure: Broken pipe", true) == ChallengeOutcome::tls_error);
    CHECK(classify_transfer_error(CURLE_RECV_ERROR, "Recv failure: Connection reset by peer", true) ==
          ChallengeOutcome::tls_error);
    // A clean close without an answer, or a timeout, stays what it is.
    CHECK(classify_transfer_error(CURLE_GOT_NOTHING, "Empty reply from server", true) == ChallengeOutcome::http_error);
    CHECK(classify_transfer_error(CURLE_OPERATION_TIMEDOUT, "Operation timed out", true) == ChallengeOutcome::timeout);
}

TEST_CASE("HTTP answers: 401 is auth_failed, other non-200 are http_error, 200 is read as a page",
          "[challenge][client]") {
    const std::string page = "The enrollment challenge password is: <B> 0123456789ABCDEF </B>";
    const ChallengeResult denied = read_mscep_admin_answer(401, "", 0);
    CHECK(denied.outcome == ChallengeOutcome::auth_failed);
    CHECK(denied.http_status == 401);
    const ChallengeResult server_error = read_mscep_admin_answer(500, page, 0);
    CHECK(server_error.outcome == ChallengeOutcome::http_error);
    CHECK(server_error.password.empty());
    CHECK(server_error.detail == "mscep_admin answered HTTP 500");
    CHECK(read_mscep_admin_answer(302, page, 0).outcome == ChallengeOutcome::http_error);
    const ChallengeResult ok = read_mscep_admin_answer(200, page, 16);
    CHECK(ok.outcome == ChallengeOutcome::ok);
    CHECK(ok.password == "0123456789ABCDEF");
    CHECK(read_mscep_admin_answer(200, "<html>maintenance</html>", 0).outcome == ChallengeOutcome::unparsable_page);
}

TEST_CASE("a refused connection is reported as unreachable by the real client", "[challenge][client]") {
    // Port 1 on loopback: nothing listens there, so the kernel refuses at once.
    MscepAdminRequest request;
    request.url = "http://127.0.0.1:1/certsrv/mscep_admin/";
    request.username = "svc";
    request.password = "secret";
    const ChallengeResult result = fetch_mscep_admin_challenge(request);
    CHECK(result.outcome == ChallengeOutcome::unreachable);
    CHECK(result.password.empty());
    CHECK(result.detail.find("secret") == std::string::npos);
}
