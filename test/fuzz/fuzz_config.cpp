// Fuzz target: conf::load_config_text on arbitrary text never throws or crashes, and reports either a config or positioned errors.
#include <algorithm>
#include <string>

#include "conf/config_loader.h"
#include "test/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace scepproxy;
    // Config files are small; bigger inputs only slow the fuzzer down inside yaml-cpp.
    if (size > 64 * 1024) return 0;
    const std::string text(reinterpret_cast<const char*>(data), size);
    conf::LoadOptions options;
    options.store_backends = {"sqlite"};
    const conf::LoadResult result = conf::load_config_text(text, "/fuzz/scepproxy.yaml", options);

    FUZZ_CHECK(result.ok() == result.errors.empty(), "a config together with errors, or neither");
    FUZZ_CHECK(result.ok() || !result.error_text().empty(), "errors without text");
    // yaml-cpp counts a line after the last newline too; nothing can sit further down than that.
    const int last_line = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
    for (const conf::ConfigError& error : result.errors) {
        FUZZ_CHECK(!error.message.empty(), "an error without a message");
        FUZZ_CHECK(error.file == "/fuzz/scepproxy.yaml", "an error naming another file");
        FUZZ_CHECK(error.line >= 0 && error.line <= last_line && error.column >= 0, "an error outside the text");
        FUZZ_CHECK(error.to_string().starts_with(error.file), "error text does not start with the file");
    }
    // (An empty YAML key is legal: its path may be "" or end in '.'.)
    for (const auto& entry : result.key_positions) {
        FUZZ_CHECK(entry.second.line >= 0 && entry.second.line <= last_line, "a key position outside the text");
    }
    if (result.ok()) FUZZ_CHECK(result.config->source_path == "/fuzz/scepproxy.yaml", "config source_path");
    return 0;
}
