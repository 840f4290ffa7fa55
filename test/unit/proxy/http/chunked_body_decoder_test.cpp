// Unit tests of the strict incremental chunked decoder: valid bodies, every split point, malformed framing, limits.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "proxy/http/chunked_body_decoder.h"

using namespace scepproxy::http;

namespace {

struct Decoded {
    std::string body;
    size_t consumed = 0;
    bool done = false;
    std::string error = "none";

    bool operator==(const Decoded&) const = default;
};

Decoded decode_pieces(std::initializer_list<std::string_view> pieces, ChunkedLimits limits = {}) {
    ChunkedBodyDecoder decoder(limits);
    Decoded out;
    for (std::string_view piece : pieces) {
        const size_t used = decoder.decode_into(piece, out.body);
        out.consumed += used;
        if (decoder.done() || decoder.failed()) break;
        REQUIRE(used == piece.size());  // an unfinished body uses all it is given
    }
    out.done = decoder.done();
    out.error = std::string(reason_code(decoder.error()));
    return out;
}

Decoded decode(std::string_view bytes, ChunkedLimits limits = {}) { return decode_pieces({bytes}, limits); }

std::string error_of(std::string_view bytes, ChunkedLimits limits = {}) { return decode(bytes, limits).error; }

}  // namespace

TEST_CASE("a valid chunked body decodes, with extensions and trailers skipped") {
    const std::string bytes =
        "4\r\nWiki\r\n"
        "5;ext=1;quoted=\"a b\"\r\npedia\r\n"
        "E \t;x\r\n in\r\n\r\nchunks.\r\n"
        "000\r\n"
        "Expires: never\r\n"
        "X-Empty:\r\n"
        "\r\n"
        "NEXT";
    const Decoded d = decode(bytes);
    CHECK(d.done);
    CHECK(d.error == "none");
    CHECK(d.body == "Wikipedia in\r\n\r\nchunks.");
    CHECK(d.consumed == bytes.size() - 4);
}

TEST_CASE("upper- and lower-case hex sizes and leading zeros are accepted") {
    const Decoded d = decode("0000000000000001\r\na\r\naB\r\n" + std::string(0xab, 'z') + "\r\n0\r\n\r\n");
    CHECK(d.done);
    CHECK(d.body.size() == 1 + 0xab);
}

TEST_CASE("split at every position, the decoder gives the same output as in one piece") {
    const std::string bytes = "3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n1\r\nZ\r\n0\r\nT: v\r\n\r\n";
    const Decoded whole = decode(bytes);
    REQUIRE(whole.done);
    for (size_t split = 0; split <= bytes.size(); ++split) {
        INFO("split at " << split);
        const std::string_view view(bytes);
        CHECK(decode_pieces({view.substr(0, split), view.substr(split)}) == whole);
    }
    // And one byte at a time.
    ChunkedBodyDecoder decoder(ChunkedLimits{});
    std::string body;
    for (char c : bytes) {
        REQUIRE_FALSE(decoder.done());
        decoder.decode_into(std::string_view(&c, 1), body);
    }
    CHECK(decoder.done());
    CHECK(body == whole.body);
}

TEST_CASE("decode_some returns chunk data as views into the input without copying") {
    ChunkedBodyDecoder decoder(ChunkedLimits{});
    const std::string bytes = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    std::string_view in(bytes);
    ChunkedBodyDecoder::Step step = decoder.decode_some(in);
    CHECK(step.data == "abc");
    CHECK(step.data.data() == bytes.data() + 3);
    in.remove_prefix(step.consumed);
    step = decoder.decode_some(in);
    CHECK(step.data == "de");
    in.remove_prefix(step.consumed);
    step = decoder.decode_some(in);
    CHECK(step.data.empty());
    CHECK(step.consumed == in.size());
    CHECK(decoder.done());
}

TEST_CASE("chunk sizes must be plain hex: no 0x, sign, whitespace or junk") {
    CHECK(error_of("0x5\r\nhello\r\n0\r\n\r\n") == "bad_chunk_size");
    CHECK(error_of("+5\r\nhello\r\n0\r\n\r\n") == "bad_chunk_size");
    CHECK(error_of("-5\r\n") == "bad_chunk_size");
    CHECK(error_of(" 5\r\n") == "bad_chunk_size");
    CHECK(error_of("5 \r\n") == "bad_chunk_size");  // whitespace only as BWS before ';'
    CHECK(error_of("5x\r\n") == "bad_chunk_size");
    CHECK(error_of("g\r\n") == "bad_chunk_size");
    CHECK(error_of("\r\n") == "bad_chunk_size");  // empty size
    CHECK(error_of(";ext\r\n") == "bad_chunk_size");
    CHECK(error_of("5\n") == "bad_chunk_size");                    // bare LF
    CHECK(error_of("5\rX") == "bad_chunk_size");                   // bare CR
    CHECK(error_of("00000000000000001\r\n") == "bad_chunk_size");  // 17 digits
    CHECK(error_of("10000000000000000\r\n") == "bad_chunk_size");  // 2^64 does not fit
}

TEST_CASE("chunk data must be followed by exactly CRLF") {
    CHECK(error_of("5\r\nhelloX\r\n0\r\n\r\n") == "missing_chunk_crlf");
    CHECK(error_of("5\r\nhello\n0\r\n\r\n") == "missing_chunk_crlf");
    CHECK(error_of("5\r\nhelloX\n0\r\n\r\n") == "missing_chunk_crlf");
    CHECK(error_of("5\r\nhello\rX") == "missing_chunk_crlf");
    CHECK(error_of("5\r\nhello\r\n") == "none");  // just not finished
}

TEST_CASE("chunk extensions: only field-value characters, bounded over the whole body") {
    CHECK(error_of("5;a\x01\r\n") == "bad_chunk_extension");
    CHECK(error_of("5;a\nb\r\n") == "bad_chunk_extension");
    ChunkedLimits limits;
    limits.max_extension_bytes = 8;
    CHECK(decode("1;1234567\r\na\r\n0\r\n\r\n", limits).done);  // ';' plus 7 bytes: 8
    CHECK(error_of("1;12345678\r\na\r\n0\r\n\r\n", limits) == "chunk_extension_too_long");
    CHECK(error_of("1;1234\r\na\r\n1;1234\r\nb\r\n0\r\n\r\n", limits) == "chunk_extension_too_long");
}

TEST_CASE("trailers are checked for syntax, bounded, and discarded") {
    CHECK(decode("0\r\nA: b\r\nC-D:e f\r\n\r\n").done);
    CHECK(error_of("0\r\n bad: fold\r\n\r\n") == "bad_trailer");
    CHECK(error_of("0\r\nA b: c\r\n\r\n") == "bad_trailer");
    CHECK(error_of("0\r\n: c\r\n\r\n") == "bad_trailer");
    CHECK(error_of("0\r\nA: b\x01\r\n\r\n") == "bad_trailer");
    CHECK(error_of("0\r\nA: b\n\r\n") == "bad_trailer");
    CHECK(error_of("0\r\n\n") == "bad_trailer");
    CHECK(error_of("0\r\nNoColon\r\n\r\n") == "bad_trailer");
    ChunkedLimits limits;
    limits.max_trailer_bytes = 8;                     // "A: 1234\r\n" is 9, the final CRLF 2 more
    CHECK(decode("0\r\nA: 1\r\n\r\n", limits).done);  // 6 + 2 = 8
    CHECK(error_of("0\r\nA: 12\r\n\r\n", limits) == "trailer_too_large");
}

TEST_CASE("the decoded size is bounded, exactly at the limit passes") {
    ChunkedLimits limits;
    limits.max_body_bytes = 10;
    CHECK(decode("5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n", limits).done);
    CHECK(error_of("5\r\n12345\r\n6\r\n", limits) == "body_too_large");
    CHECK(error_of("b\r\n", limits) == "body_too_large");
    CHECK(error_of("ffffffffffffffff\r\n", limits) == "body_too_large");
}

TEST_CASE("bytes after the end of the body are left unconsumed, also after a reset") {
    ChunkedBodyDecoder decoder(ChunkedLimits{});
    std::string body;
    const std::string bytes = "1\r\nx\r\n0\r\n\r\nGET";
    CHECK(decoder.decode_into(bytes, body) == bytes.size() - 3);
    CHECK(decoder.done());
    CHECK(decoder.decode_into("more", body) == 0);
    decoder.reset();
    CHECK_FALSE(decoder.done());
    body.clear();
    CHECK(decoder.decode_into(bytes, body) == bytes.size() - 3);
    CHECK(body == "x");
}
