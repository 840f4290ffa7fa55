// Fuzz target: read_envelope_recipients on the bytes as a pkiMessage, and as the envelope inside one, never crashes and keeps its limits.
#include <openssl/err.h>

#include <span>
#include <vector>

#include "pkcs7/envelope_recipients.h"
#include "test/fuzz/fuzz_check.h"

namespace {

using Bytes = std::vector<uint8_t>;

// One DER element (definite length) around `contents`.
Bytes element(uint8_t tag, const Bytes& contents) {
    Bytes out{tag};
    const size_t length = contents.size();
    if (length < 0x80) {
        out.push_back(static_cast<uint8_t>(length));
    } else {
        Bytes octets;
        for (size_t rest = length; rest != 0; rest >>= 8) octets.insert(octets.begin(), static_cast<uint8_t>(rest));
        out.push_back(static_cast<uint8_t>(0x80 | octets.size()));
        out.insert(out.end(), octets.begin(), octets.end());
    }
    out.insert(out.end(), contents.begin(), contents.end());
    return out;
}

Bytes concat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
    return out;
}

// A SignedData whose eContent is `envelope`, with a placeholder signerInfo: the reader verifies
// nothing, so the fuzzer spends its time in the envelope rather than in signatures.
Bytes wrapped_as_pki_message(const Bytes& envelope) {
    const Bytes id_data{0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01};
    const Bytes id_signed_data{0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02};
    const Bytes sha256{0x30, 0x0B, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
    const Bytes version{0x02, 0x01, 0x01};
    const Bytes signer_info = element(0x30, concat({version, element(0x30, concat({Bytes{0x30, 0x00}, version})),
                                                    sha256, Bytes{0xA0, 0x00}, sha256, Bytes{0x04, 0x00}}));
    const Bytes encap = element(0x30, concat({id_data, element(0xA0, element(0x04, envelope))}));
    const Bytes signed_data =
        element(0x30, concat({version, element(0x31, sha256), encap, element(0x31, signer_info)}));
    return element(0x30, concat({id_signed_data, element(0xA0, signed_data)}));
}

void check(std::span<const uint8_t> input) {
    using namespace scepproxy::pkcs7;
    const EnvelopeLimits limits;
    const EnvelopeRecipientsParse parsed = read_envelope_recipients(input, limits);
    FUZZ_CHECK(ERR_peek_error() == 0, "OpenSSL's error queue is not empty");
    if (!parsed.ok()) {
        FUZZ_CHECK(*to_string(parsed.error) != '\0', "no reason code");
        return;
    }
    const EnvelopeRecipients& recipients = *parsed.value;
    FUZZ_CHECK(!recipients.key_transport.empty() || recipients.other_recipients > 0, "an envelope without recipients");
    FUZZ_CHECK(recipients.key_transport.size() + recipients.other_recipients <= limits.max_recipients,
               "more recipients than the limit");
    for (const RecipientId& recipient : recipients.key_transport) {
        if (recipient.kind == RecipientIdKind::subject_key_id) {
            FUZZ_CHECK(!recipient.subject_key_id.empty() && recipient.subject_key_id.size() <= limits.max_key_id_bytes,
                       "key identifier outside its bounds");
        } else {
            FUZZ_CHECK(!recipient.issuer.empty() && recipient.issuer.size() <= limits.max_issuer_bytes,
                       "issuer outside its bounds");
            FUZZ_CHECK(!recipient.serial.empty() && recipient.serial.size() <= limits.max_serial_bytes,
                       "serial outside its bounds");
        }
        const std::string text = describe(recipient);
        FUZZ_CHECK(ERR_peek_error() == 0, "OpenSSL's error queue is not empty after describe");
        for (const char c : text) FUZZ_CHECK(c >= 0x20 && c < 0x7f, "describe() is not printable ASCII");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    check(std::span<const uint8_t>(data, size));
    if (size <= 64 * 1024) {
        const Bytes wrapped = wrapped_as_pki_message(Bytes(data, data + size));
        check(wrapped);
    }
    return 0;
}
