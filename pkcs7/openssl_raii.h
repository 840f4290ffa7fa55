// RAII for pkcs7/: unique_ptr ownership of OpenSSL objects, and a guard that keeps the error queue clean.
#pragma once

#include <memory>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

namespace scepproxy::pkcs7 {

struct OpensslFree {
    void operator()(BIO* p) const { BIO_free_all(p); }  // also frees chains (CMS_dataInit)
    void operator()(ASN1_TYPE* p) const { ASN1_TYPE_free(p); }
    void operator()(BIGNUM* p) const { BN_free(p); }
    void operator()(CMS_ContentInfo* p) const { CMS_ContentInfo_free(p); }
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(X509* p) const { X509_free(p); }
    void operator()(X509_ATTRIBUTE* p) const { X509_ATTRIBUTE_free(p); }
    void operator()(X509_NAME* p) const { X509_NAME_free(p); }
    void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
    void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
    void operator()(char* p) const { OPENSSL_free(p); }
    void operator()(unsigned char* p) const { OPENSSL_free(p); }
};

template <typename T>
using OpensslPtr = std::unique_ptr<T, OpensslFree>;

// Rejected input leaves errors on the thread's OpenSSL error queue. They mean nothing to our
// callers (who get a ParseError) and would pile up on a long-lived worker thread, so every
// parse entry point drops whatever was queued after it started.
class OpensslErrorScope {
public:
    OpensslErrorScope() { ERR_set_mark(); }
    ~OpensslErrorScope() { ERR_pop_to_mark(); }
    OpensslErrorScope(const OpensslErrorScope&) = delete;
    OpensslErrorScope& operator=(const OpensslErrorScope&) = delete;
};

}  // namespace scepproxy::pkcs7
