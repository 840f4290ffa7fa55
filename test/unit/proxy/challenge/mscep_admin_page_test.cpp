// Tests for reading mscep_admin pages: every NDES fixture, every truncation, encodings, and pages that must not yield a password.
#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <string>

#include "proxy/challenge/mscep_admin_page.h"

using namespace scepproxy::challenge;

namespace {

// The fixtures' README names this password; the CA thumbprint block before it starts 3F2A9C01.
const std::string kFixturePassword = "5A0F2C9E71B3D846";

std::string read_fixture(const std::string& name) {
    std::ifstream in(std::string(CHALLENGE_FIXTURE_DIR) + "/" + name, std::ios::binary);
    REQUIRE(in);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ASCII text as UTF-16LE bytes, the way NDES writes its page.
std::string utf16le(std::string_view ascii) {
    std::string out;
    for (char c : ascii) {
        out += c;
        out += '\0';
    }
    return out;
}

const char* outcome_name(const PageReading& r) { return to_string(r.outcome); }

}  // namespace

TEST_CASE("every password fixture yields the challenge, not the CA thumbprint", "[challenge][page]") {
    for (const char* name : {"password.utf16le.html", "password.utf16le-bom.html", "password.utf8.html"}) {
        INFO(name);
        const PageReading reading = read_mscep_admin_page(read_fixture(name), 0);
        CHECK(outcome_name(reading) == std::string("ok"));
        CHECK(reading.password == kFixturePassword);
        CHECK(reading.detail.empty());
    }
}

TEST_CASE("the cache-full and permission fixtures give their own outcomes", "[challenge][page]") {
    const PageReading full = read_mscep_admin_page(read_fixture("cache_full.utf16le.html"), 0);
    CHECK(full.outcome == ChallengeOutcome::password_cache_full);
    CHECK(full.password.empty());
    const PageReading denied = read_mscep_admin_page(read_fixture("insufficient_permission.utf16le.html"), 0);
    CHECK(denied.outcome == ChallengeOutcome::insufficient_permission);
    CHECK(denied.password.empty());
}

TEST_CASE("page encodings are detected as ndes.md describes", "[challenge][page]") {
    CHECK(detect_page_encoding(read_fixture("password.utf16le.html")) == PageEncoding::utf16le);
    CHECK(detect_page_encoding(read_fixture("password.utf16le-bom.html")) == PageEncoding::utf16le);
    CHECK(detect_page_encoding(read_fixture("cache_full.utf16le.html")) == PageEncoding::utf16le);
    CHECK(detect_page_encoding(read_fixture("password.utf8.html")) == PageEncoding::utf8);
    CHECK(detect_page_encoding("\xEF\xBB\xBF<html>") == PageEncoding::utf8);
    CHECK(detect_page_encoding(utf16le("\r\n  <HTML>")) == PageEncoding::utf16le);  // no BOM, no leading '<'
    CHECK(detect_page_encoding("") == PageEncoding::utf8);
    CHECK(detect_page_encoding("<") == PageEncoding::utf8);
}

TEST_CASE("decoding: BOMs go, UTF-16LE becomes UTF-8, broken input becomes U+FFFD", "[challenge][page]") {
    CHECK(decode_page_text("\xFF\xFE" + utf16le("<B>")) == "<B>");
    CHECK(decode_page_text("\xEF\xBB\xBF<B>") == "<B>");
    CHECK(decode_page_text(utf16le("<p>") + std::string("\xE9\x00", 2)) == "<p>\xC3\xA9");  // é
    CHECK(decode_page_text(utf16le("<p>") + std::string("\x3D\xD8\x00\xDE", 4)) ==
          "<p>\xF0\x9F\x98\x80");  // a surrogate pair
    CHECK(decode_page_text(utf16le("<p>") + std::string("\x3D\xD8", 2) + utf16le("x")) ==
          "<p>\xEF\xBF\xBDx");                                           // lone high
    CHECK(decode_page_text(utf16le("<p>") + "x") == "<p>\xEF\xBF\xBD");  // odd last byte
}

// Cut after every byte: never a crash, never a shorter password. Only a page that holds the
// whole password and its closing tag may be read as ok.
TEST_CASE("a password page cut at every length is unparsable until the password is complete", "[challenge][page]") {
    for (const char* name : {"password.utf16le.html", "password.utf16le-bom.html", "password.utf8.html"}) {
        INFO(name);
        const std::string page = read_fixture(name);
        const bool wide = detect_page_encoding(page) == PageEncoding::utf16le;
        const std::string complete_part = kFixturePassword + " </B>";
        const size_t at = page.find(wide ? utf16le(complete_part) : complete_part);
        REQUIRE(at != std::string::npos);
        const size_t first_ok_length = at + complete_part.size() * (wide ? 2 : 1);
        for (size_t length = 0; length <= page.size(); ++length) {
            INFO("length " << length);
            const PageReading reading = read_mscep_admin_page(std::string_view(page).substr(0, length), 0);
            if (length < first_ok_length) {
                REQUIRE(reading.outcome == ChallengeOutcome::unparsable_page);
                REQUIRE(reading.password.empty());
                REQUIRE_FALSE(reading.detail.empty());
            } else {
                REQUIRE(reading.outcome == ChallengeOutcome::ok);
                REQUIRE(reading.password == kFixturePassword);
            }
        }
    }
}

TEST_CASE("error pages cut at every length are unparsable or still say what they say", "[challenge][page]") {
    const std::pair<const char*, ChallengeOutcome> pages[] = {
        {"cache_full.utf16le.html", ChallengeOutcome::password_cache_full},
        {"insufficient_permission.utf16le.html", ChallengeOutcome::insufficient_permission}};
    for (const auto& [name, outcome] : pages) {
        INFO(name);
        const std::string page = read_fixture(name);
        bool seen_outcome = false;
        for (size_t length = 0; length <= page.size(); ++length) {
            const PageReading reading = read_mscep_admin_page(std::string_view(page).substr(0, length), 0);
            REQUIRE(reading.password.empty());
            if (reading.outcome == outcome)
                seen_outcome = true;
            else
                REQUIRE(reading.outcome == ChallengeOutcome::unparsable_page);
            // Once the page says it, a longer cut says it too.
            if (seen_outcome) REQUIRE(reading.outcome == outcome);
        }
        CHECK(seen_outcome);
    }
}

TEST_CASE("a page with the thumbprint but no password is unparsable, in either encoding", "[challenge][page]") {
    const std::string utf8 = read_fixture("password.utf8.html");
    const size_t paragraph = utf8.find("<P> The enrollment challenge password is:");
    REQUIRE(paragraph != std::string::npos);
    const std::string without_password = utf8.substr(0, paragraph) + "</Font></Body></HTML>";
    REQUIRE(without_password.find("3F2A9C01") != std::string::npos);  // the thumbprint is still there
    for (const std::string& page :
         {without_password, utf16le(without_password), "\xFF\xFE" + utf16le(without_password)}) {
        const PageReading reading = read_mscep_admin_page(page, 0);
        CHECK(reading.outcome == ChallengeOutcome::unparsable_page);
        CHECK(reading.password.empty());
        CHECK(reading.detail == "no challenge password on the page");
    }
}

TEST_CASE("UTF-8 pages with a BOM, and UTF-16LE pages without one, are read", "[challenge][page]") {
    const std::string utf8 = read_fixture("password.utf8.html");
    CHECK(read_mscep_admin_page("\xEF\xBB\xBF" + utf8, 0).password == kFixturePassword);
    CHECK(read_mscep_admin_page(utf16le("\r\n" + utf8), 0).password == kFixturePassword);
}

TEST_CASE("markers match across line breaks and case; the password ends at white space or a tag", "[challenge][page]") {
    const auto read = [](const std::string& text) { return read_mscep_admin_page(utf16le(text), 0); };
    CHECK(read("<P> The enrollment\r\n  challenge\tpassword IS: <B> 0123ABCD </B>").password == "0123ABCD");
    CHECK(read("the enrollment challenge password is:<b>0123ABCD</b>").password == "0123ABCD");
    CHECK(read("The enrollment challenge password is: 0123ABCD <P>").password == "0123ABCD");
    CHECK(read("The enrollment challenge password is: <B> <I> 0123ABCD </I> </B>").password == "0123ABCD");
    // A no-break space, in UTF-8 and in UTF-16LE.
    CHECK(read_mscep_admin_page("The enrollment challenge password is:\xC2\xA0<B>0123ABCD</B>", 0).password ==
          "0123ABCD");
    CHECK(read_mscep_admin_page(utf16le("The enrollment challenge password is:") + std::string("\xA0\x00", 2) +
                                    utf16le("<B>0123ABCD</B>"),
                                0)
              .password == "0123ABCD");
}

TEST_CASE("pages with a marker but no trustworthy password are unparsable", "[challenge][page]") {
    const auto outcome = [](const std::string& text) { return read_mscep_admin_page(text, 0).outcome; };
    const auto unparsable = ChallengeOutcome::unparsable_page;
    CHECK(outcome("The enrollment challenge password is: <B> </B>") == unparsable);
    CHECK(outcome("The enrollment challenge password is: <B> 0123ABCD") == unparsable);  // no closing tag
    CHECK(outcome("The enrollment challenge password is: <B> 0123&amp;D </B>") == unparsable);
    CHECK(outcome("The enrollment challenge password is: <B> 01\x01"
                  "23 </B>") == unparsable);
    CHECK(outcome("The enrollment challenge password is: <B> 0123\xC3\xA9 </B>") == unparsable);
    CHECK(outcome("The enrollment challenge password is: <B") == unparsable);
    CHECK(outcome("The enrollment challenge password is: <B> " + std::string(256, 'A') + " </B>") == unparsable);
    CHECK(outcome("The enrollment challenge password is: <B> " + std::string(255, 'A') + " </B>") ==
          ChallengeOutcome::ok);
    CHECK(outcome("") == unparsable);
    CHECK(outcome(std::string("\x00\xFF\x13\x37\xFE\xFF", 6)) == unparsable);
    CHECK(outcome("<html><body>Service Unavailable</body></html>") == unparsable);
}

TEST_CASE("expected_length rejects a password of another length without showing it", "[challenge][page]") {
    const std::string page = read_fixture("password.utf16le.html");
    CHECK(read_mscep_admin_page(page, 16).outcome == ChallengeOutcome::ok);
    const PageReading wrong = read_mscep_admin_page(page, 8);
    CHECK(wrong.outcome == ChallengeOutcome::unparsable_page);
    CHECK(wrong.password.empty());
    CHECK(wrong.detail == "the password has 16 characters, expected 8 (challenge.expected_length)");
    CHECK(wrong.detail.find(kFixturePassword) == std::string::npos);
}
