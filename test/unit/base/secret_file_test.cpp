// Tests for secret files: the one rule every *_file key follows (first non-blank line, trimmed), and its refusals.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "base/secret_file.h"
#include "test/unit/token/temp_directory.h"

namespace scepproxy {
namespace {

// A file holding `content` in a fresh temp dir, removed with it.
class TempFile {
public:
    explicit TempFile(const std::string& content) : path_(directory_.file("secret")) {
        std::ofstream(path_, std::ios::binary) << content;
    }
    const std::string& path() const { return path_; }

private:
    token::test::TempDirectory directory_;  // the tests' one temp-directory helper
    std::string path_;
};

}  // namespace

TEST_CASE("secret files: the first line without trailing white space, empty or missing files fail", "[secret]") {
    std::string error;
    CHECK(read_secret_file(TempFile("s3cret\r\n").path(), &error) == "s3cret");
    CHECK(read_secret_file(TempFile("pass word \t\nsecond line\n").path(), &error) == "pass word");
    CHECK_FALSE(read_secret_file(TempFile("\n").path(), &error));
    CHECK(error.ends_with(" is empty"));
    CHECK_FALSE(read_secret_file("/nonexistent/scepproxy/secret", &error));
    CHECK(error == "cannot read /nonexistent/scepproxy/secret");
    CHECK_FALSE(read_secret_file(TempFile(std::string(70000, 'x')).path(), &error));
    CHECK(error.ends_with(" is larger than 64 KiB"));
}

TEST_CASE("secret files: blank lines and the white space around the secret are not part of it", "[secret]") {
    std::string error;
    CHECK(read_secret_file(TempFile("s3cret").path(), &error) == "s3cret");  // no newline at all
    CHECK(read_secret_file(TempFile("s3cret\n").path(), &error) == "s3cret");
    CHECK(read_secret_file(TempFile("\r\n \t\r\n  host=/tmp dbname=x \r\n\n").path(), &error) == "host=/tmp dbname=x");
    CHECK(read_secret_file(TempFile("in ner\tspace\n").path(), &error) == "in ner\tspace");
}

TEST_CASE("secret files: blank, oversized or NUL-holding files are refused, naming the file, never the secret",
          "[secret]") {
    std::string error;
    SECTION("empty or only white space") {
        for (const char* blank : {"", "\r\n", " \t \n\n\r\n"}) {
            const TempFile file(blank);
            CHECK_FALSE(read_secret_file(file.path(), &error));
            CHECK(error == file.path() + " is empty");
        }
    }
    SECTION("exactly the limit is read, one byte more is refused") {
        CHECK(read_secret_file(TempFile(std::string(kMaxSecretFileBytes, 'x')).path(), &error)->size() ==
              kMaxSecretFileBytes);
        const TempFile over(std::string(kMaxSecretFileBytes - 1, 'x') + "\n\n");
        CHECK_FALSE(read_secret_file(over.path(), &error));
        CHECK(error == over.path() + " is larger than 64 KiB");
    }
    SECTION("a NUL byte would cut the secret short in a C string") {
        const TempFile file(std::string("hunter2\0tail\n", 13));
        CHECK_FALSE(read_secret_file(file.path(), &error));
        CHECK(error == file.path() + " holds a NUL byte");
        CHECK(error.find("hunter2") == std::string::npos);
    }
    SECTION("a directory can't be read as a secret") {
        const TempFile file("x");
        const std::string directory = std::filesystem::path(file.path()).parent_path();
        CHECK_FALSE(read_secret_file(directory, &error));
        CHECK(error.find(directory) != std::string::npos);
    }
}

}  // namespace scepproxy
