// lifeline — tiny helpers that look at SQL text (no parsing beyond a leading keyword).
#ifndef LIFELINE_DETAIL_SQL_TEXT_HPP
#define LIFELINE_DETAIL_SQL_TEXT_HPP

#include <cctype>
#include <string_view>

namespace lifeline::detail {

// True if sql starts (after white space) with kw, compared case-insensitively; kw is upper case.
inline bool starts_with_keyword(std::string_view sql, std::string_view kw) noexcept {
    std::size_t i = 0;
    while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
    if (sql.size() - i < kw.size()) return false;
    for (std::size_t k = 0; k < kw.size(); ++k)
        if (std::toupper(static_cast<unsigned char>(sql[i + k])) != kw[k]) return false;
    return true;
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_SQL_TEXT_HPP
