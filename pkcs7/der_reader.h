// DerReader: walks definite-length DER element by element, each within its parent (internal to pkcs7/).
//
// Shared by the walks that read a pkiMessage's signed attributes and its envelope's recipients
// without OpenSSL. Only low tag numbers and definite lengths: anything else makes next() false,
// and the caller leaves the input to OpenSSL's full parse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace scepproxy::pkcs7 {

constexpr std::uint8_t kIntegerTag = 0x02;
constexpr std::uint8_t kOctetStringTag = 0x04;
constexpr std::uint8_t kOidTag = 0x06;
constexpr std::uint8_t kSequenceTag = 0x30;
constexpr std::uint8_t kSetTag = 0x31;
constexpr std::uint8_t kContext0Constructed = 0xA0;  // [0]: content, certificates, signedAttrs
constexpr std::uint8_t kContext1Constructed = 0xA1;  // [1]: crls, unsignedAttrs
constexpr std::uint8_t kContext0Primitive = 0x80;    // [0] IMPLICIT subjectKeyIdentifier

// One element: its tag, its whole encoding and its contents.
struct Element {
    std::uint8_t tag = 0;
    std::span<const std::uint8_t> whole;
    std::span<const std::uint8_t> contents;
};

// Reads elements one after another from a span. Only low tag numbers and definite lengths: a
// false from next() sends the message to the full parse.
class DerReader {
public:
    explicit DerReader(std::span<const std::uint8_t> input) : rest_(input) {}

    bool done() const { return rest_.empty(); }
    bool next_is(std::uint8_t tag) const { return !rest_.empty() && rest_[0] == tag; }

    bool next(Element* element) {
        if (rest_.size() < 2 || (rest_[0] & 0x1f) == 0x1f) return false;
        std::size_t header = 2;
        std::size_t length = rest_[1];
        if (length == 0x80) return false;  // indefinite (BER)
        if (length > 0x80) {
            const std::size_t octets = length & 0x7f;
            if (octets > 4 || rest_.size() < 2 + octets) return false;
            length = 0;
            for (std::size_t i = 0; i < octets; ++i) length = (length << 8) | rest_[2 + i];
            header += octets;
        }
        if (length > rest_.size() - header) return false;
        element->tag = rest_[0];
        element->whole = rest_.first(header + length);
        element->contents = rest_.subspan(header, length);
        rest_ = rest_.subspan(header + length);
        return true;
    }

    bool next(std::uint8_t tag, Element* element) { return next(element) && element->tag == tag; }

    // Skips an element if it has this tag.
    bool skip_optional(std::uint8_t tag) {
        if (!next_is(tag)) return true;
        Element ignored;
        return next(&ignored);
    }

private:
    std::span<const std::uint8_t> rest_;
};

// Every element of a SET or SEQUENCE is well-framed; counts them.
inline bool count_elements(std::span<const std::uint8_t> contents, std::size_t* count) {
    DerReader reader(contents);
    *count = 0;
    Element element;
    while (!reader.done()) {
        if (!reader.next(&element)) return false;
        ++*count;
    }
    return true;
}

}  // namespace scepproxy::pkcs7
