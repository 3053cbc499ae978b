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

// --- interim: replaced by describe_statement() (the statement lexer) ---------------------------
#ifndef LIFELINE_DETAIL_SQL_TEXT_EFFECTS
#define LIFELINE_DETAIL_SQL_TEXT_EFFECTS
namespace lifeline::detail {

// BEGIN / START TRANSACTION / ROLLBACK (not ROLLBACK TO SAVEPOINT): the caller starts over, which
// acknowledges an earlier errc::transaction_lost.
inline bool acknowledges_transaction_loss(std::string_view sql) noexcept {
    if (starts_with_keyword(sql, "BEGIN") || starts_with_keyword(sql, "START TRANSACTION")) return true;
    return starts_with_keyword(sql, "ROLLBACK") && !starts_with_keyword(sql, "ROLLBACK TO");
}

// Conservative: anything but a plain SELECT/INSERT/UPDATE/DELETE may change the session.
inline bool changes_session(std::string_view sql) noexcept {
    for (std::string_view kw : {"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE"})
        if (starts_with_keyword(sql, kw)) return sql.find('@') != std::string_view::npos;
    return true;
}

// RELEASE_LOCK() / RELEASE_ALL_LOCKS() anywhere in the text: lifeline's own session lock may go.
inline bool may_release_locks(std::string_view sql) noexcept {
    constexpr std::string_view needle = "RELEASE_";
    for (std::size_t i = 0; i + needle.size() <= sql.size(); ++i) {
        std::size_t k = 0;
        while (k < needle.size() && std::toupper(static_cast<unsigned char>(sql[i + k])) == needle[k]) ++k;
        if (k == needle.size()) return true;
    }
    return false;
}

}  // namespace lifeline::detail
#endif
