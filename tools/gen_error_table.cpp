// Prints README.md's "What lifeline does with each error" section, generated from the classifier.
//
//   g++ -std=c++17 -Iinclude tools/gen_error_table.cpp -o /tmp/gen_error_table
//   /tmp/gen_error_table                     # print the whole section (heading, markers, table)
//   /tmp/gen_error_table --readme README.md  # rewrite only the text between the markers, in place
//   /tmp/gen_error_table > docs/error-table.md
//
// Run it after changing include/lifeline/detail/error_table.hpp; tests/unit/readme_table_test.cpp
// fails until README.md matches.
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>

#include <lifeline/detail/error_table_markdown.hpp>

namespace {

int update_readme(const std::string& path) {
    using lifeline::detail::error_table_begin_marker;
    using lifeline::detail::error_table_end_marker;
    std::string text;
    {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            std::cerr << "gen_error_table: cannot read " << path << "\n";
            return 1;
        }
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const std::string begin = std::string(error_table_begin_marker) + "\n";
    const auto b = text.find(begin);
    const auto e = b == std::string::npos ? b : text.find(error_table_end_marker, b + begin.size());
    if (b == std::string::npos || e == std::string::npos) {
        std::cerr << "gen_error_table: " << path << " has no " << error_table_begin_marker << " ... "
                  << error_table_end_marker << " block; paste the output of gen_error_table (no arguments) "
                  << "where the section belongs\n";
        return 1;
    }
    text.replace(b + begin.size(), e - (b + begin.size()), lifeline::detail::render_error_table_markdown());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) {
        std::cerr << "gen_error_table: cannot write " << path << "\n";
        return 1;
    }
    std::cerr << "gen_error_table: updated the error table in " << path << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 1) {
        std::cout << lifeline::detail::render_error_table_section();
        return std::cout ? 0 : 1;
    }
    if (argc == 3 && std::string_view(argv[1]) == "--readme") return update_readme(argv[2]);
    std::cerr << "usage: gen_error_table [--readme README.md]\n";
    return 2;
}
