// MscepAdminClient: libcurl easy handle set-up (auth, TLS, limits), the transfer, and how its result is classified.
#include "proxy/challenge/mscep_admin_client.h"

#include <curl/curl.h>
#include <strings.h>

#include <memory>
#include <mutex>

#include "proxy/challenge/mscep_admin_page.h"

namespace scepproxy::challenge {
namespace {

// A real page is under 2 KB; anything much larger is not mscep_admin.
constexpr size_t kMaxPageBytes = 256 * 1024;

struct PageBuffer {
    std::string bytes;
    bool too_large = false;
};

size_t append_page_bytes(char* data, size_t size, size_t count, void* user) {
    auto* page = static_cast<PageBuffer*>(user);
    const size_t length = size * count;
    if (page->bytes.size() + length > kMaxPageBytes) {
        page->too_large = true;
        return 0;  // libcurl aborts the transfer with CURLE_WRITE_ERROR
    }
    page->bytes.append(data, length);
    return length;
}

struct EasyHandleDeleter {
    void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};

bool is_tls_failure(CURLcode code) {
    switch (code) {
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_USE_SSL_FAILED:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT: return true;
        default: return false;
    }
}

ChallengeResult failure(ChallengeOutcome outcome, std::string detail, long http_status = 0) {
    ChallengeResult result;
    result.outcome = outcome;
    result.detail = std::move(detail);
    result.http_status = http_status;
    return result;
}

}  // namespace

void init_http_client_library() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

ChallengeOutcome classify_transfer_error(int curl_code, std::string_view message, bool tls_without_answer) {
    const auto code = static_cast<CURLcode>(curl_code);
    if (is_tls_failure(code)) return ChallengeOutcome::tls_error;
    switch (code) {
        case CURLE_OPERATION_TIMEDOUT: return ChallengeOutcome::timeout;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT: return ChallengeOutcome::unreachable;
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
            return tls_without_answer || message.find("SSL") != std::string_view::npos ||
                           message.find("TLS") != std::string_view::npos
                       ? ChallengeOutcome::tls_error
                       : ChallengeOutcome::http_error;
        case CURLE_FAILED_INIT:
        case CURLE_OUT_OF_MEMORY:
        case CURLE_BAD_FUNCTION_ARGUMENT:
        case CURLE_UNKNOWN_OPTION:
        case CURLE_NOT_BUILT_IN: return ChallengeOutcome::internal_error;
        default: return ChallengeOutcome::http_error;
    }
}

ChallengeResult read_mscep_admin_answer(long http_status, std::string_view body, uint32_t expected_length) {
    if (http_status == 401)
        return failure(ChallengeOutcome::auth_failed,
                       "mscep_admin answered 401: check challenge.username and its password", http_status);
    if (http_status != 200)
        return failure(ChallengeOutcome::http_error, "mscep_admin answered HTTP " + std::to_string(http_status),
                       http_status);
    PageReading page = read_mscep_admin_page(body, expected_length);
    ChallengeResult result;
    result.outcome = page.outcome;
    result.password = std::move(page.password);
    result.detail = std::move(page.detail);
    result.http_status = http_status;
    return result;
}

ChallengeResult fetch_mscep_admin_challenge(const MscepAdminRequest& request) {
    init_http_client_library();
    std::unique_ptr<CURL, EasyHandleDeleter> handle(curl_easy_init());
    if (!handle) return failure(ChallengeOutcome::internal_error, "cannot create a libcurl handle");
    CURL* curl = handle.get();
    PageBuffer page;
    char error_text[CURL_ERROR_SIZE] = "";
    const long timeout_ms = static_cast<long>(request.timeout.count());

    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    // NTLM authenticates a connection, which HTTP/2 multiplexing breaks; IIS offers h2 over TLS.
    curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH,
                     request.auth == conf::ChallengeAuth::ntlm ? CURLAUTH_NTLM : CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, request.username.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, request.password.c_str());
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, request.verify ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, request.verify ? 2L : 0L);
    if (!request.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, request.ca_file.c_str());
    if (!request.client_cert_file.empty()) {
        curl_easy_setopt(curl, CURLOPT_SSLCERT, request.client_cert_file.c_str());
        curl_easy_setopt(curl, CURLOPT_SSLKEY, request.client_key_file.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "scepproxy/" SCEPPROXY_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &append_page_bytes);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &page);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);

    const CURLcode code = curl_easy_perform(curl);
    long http_status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
    if (code == CURLE_WRITE_ERROR && page.too_large)
        return failure(ChallengeOutcome::unparsable_page, "the page is larger than 256 KiB", http_status);
    if (code != CURLE_OK) {
        // The error buffer keeps libcurl's first complaint, which may be an earlier, minor one:
        // name the failure itself too.
        std::string message = curl_easy_strerror(code);
        if (error_text[0] && message != error_text) message += std::string(" (") + error_text + ")";
        long header_bytes = 0;
        curl_easy_getinfo(curl, CURLINFO_HEADER_SIZE, &header_bytes);
        const bool https = request.url.size() >= 8 && strncasecmp(request.url.c_str(), "https://", 8) == 0;
        return failure(classify_transfer_error(code, message, https && header_bytes == 0), message, http_status);
    }
    ChallengeResult result = read_mscep_admin_answer(http_status, page.bytes, request.expected_length);
    if (http_status >= 300 && http_status < 400) {
        const char* location = nullptr;
        curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location);
        if (location) result.detail += std::string(" (redirect to ") + location + "; set challenge.url to it)";
    }
    return result;
}

}  // namespace scepproxy::challenge
