// README.md's "What lifeline does with each error" table must be exactly what the classifier
// renders, so the documentation cannot drift from the code.
#include <lifeline/detail/error_table_markdown.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#ifndef LIFELINE_SOURCE_DIR
#error "LIFELINE_SOURCE_DIR must name the source tree (CMake defines it)"
#endif

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("README.md's error table matches the classifier", "[unit][classification]") {
    using lifeline::detail::error_table_begin_marker;
    using lifeline::detail::error_table_end_marker;
    const std::string path = LIFELINE_SOURCE_DIR "/README.md";
    const std::string readme = read_file(path);
    INFO("README: " << path);
    REQUIRE_FALSE(readme.empty());

    const std::string begin = std::string(error_table_begin_marker) + "\n";
    const auto b = readme.find(begin);
    const auto e = b == std::string::npos ? b : readme.find(error_table_end_marker, b + begin.size());
    if (b == std::string::npos || e == std::string::npos)
        FAIL("README.md lacks the " << error_table_begin_marker << " ... " << error_table_end_marker
                                    << " block: paste the section printed by tools/gen_error_table.cpp");
    const std::string actual = readme.substr(b + begin.size(), e - (b + begin.size()));

    const std::string expected = lifeline::detail::render_error_table_markdown();
    if (actual != expected) {
        std::istringstream have(actual), want(expected);
        std::string have_line, want_line;
        int line = 0;
        while (true) {
            const bool h = static_cast<bool>(std::getline(have, have_line));
            const bool w = static_cast<bool>(std::getline(want, want_line));
            ++line;
            if (!h || !w || have_line != want_line) {
                if (!h) have_line = "(end)";
                if (!w) want_line = "(end)";
                break;
            }
        }
        const char* out = "error-table.expected.md";
        std::ofstream(out, std::ios::binary) << expected;
        FAIL("README.md's error table is out of date (first difference in line "
             << line << " after the begin marker)\n  README:   " << have_line << "\n  expected: " << want_line
             << "\nThe expected text is in ./" << out << " (paste it between the markers), or regenerate in place:\n"
             << "  g++ -std=c++17 -I" LIFELINE_SOURCE_DIR "/include " LIFELINE_SOURCE_DIR
                "/tools/gen_error_table.cpp -o gen_error_table\n"
             << "  ./gen_error_table --readme " LIFELINE_SOURCE_DIR "/README.md\n"
             << "  ./gen_error_table > " LIFELINE_SOURCE_DIR "/docs/error-table.md");
    }
    SUCCEED("README.md's error table matches");
}

TEST_CASE("the rendered table has one well-formed line per row", "[unit][classification]") {
    const std::string text = lifeline::detail::render_error_table_markdown();
    std::istringstream lines(text);
    std::string line;
    std::size_t rows = 0;
    std::size_t header_pipes = 0;
    while (std::getline(lines, line)) {
        if (line.rfind("|", 0) != 0) continue;
        const auto pipes = static_cast<std::size_t>(std::count(line.begin(), line.end(), '|'));
        if (header_pipes == 0) header_pipes = pipes;
        CAPTURE(line);
        CHECK(pipes == header_pipes);  // no stray '|' in a cell
        ++rows;
    }
    CHECK(header_pipes == 10);
    CHECK(rows == lifeline::detail::error_table().size() + 2);  // + header + separator

    // Spot checks: the table says what the classifier does.
    CHECK(text.find("| 2013 | [`CR_SERVER_LOST`](https://dev.mysql.com/doc/mysql-errors/8.0/en/"
                    "client-error-reference.html#error_cr_server_lost) | client library | HY000 | broken | "
                    "unknown → verify_then_retry | connect: not_executed → retry_after_backoff; fetch: unknown → "
                    "retry_if_idempotent; in a transaction: transaction_rolled_back → retry_transaction; commit: "
                    "unknown → verify_then_retry | ") !=
          std::string::npos);
    CHECK(text.find("| 1062 | [`ER_DUP_ENTRY`]") != std::string::npos);
    // The flavour column: what a known server makes of a number (MariaDB's 4031, a Galera node's 1047).
    CHECK(text.find("| MariaDB: `ER_REFERENCED_TRG_DOES_NOT_EXIST`, usable, failed → do_not_retry; MySQL: broken, "
                    "not_executed → reconnect_and_retry |") != std::string::npos);
    CHECK(text.find("| Galera: usable, not_executed → retry_after_backoff |") != std::string::npos);
    CHECK(text.find("| 1062 | [`ER_DUP_ENTRY`](https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#"
                    "error_er_dup_entry) | MySQL, MariaDB | 23000 | usable | failed → do_not_retry | — | — |") !=
          std::string::npos);

    const std::string section = lifeline::detail::render_error_table_section();
    CHECK(section.rfind("## What lifeline does with each error\n", 0) == 0);
    CHECK(section.find(text) != std::string::npos);
}
