// lifeline — what the caller declares about an async statement: may it run twice, and how to check.
//
// The same meaning as declaration.hpp (no declaration: not idempotent; `idempotent`: may be re-sent
// after an unknown outcome), with one difference: the blocking `verify_with(check)` hands the check
// a native handle to run blocking calls on, which an io_context thread must never do. The async
// form is a verification QUERY that lifeline runs itself, without blocking, on a fresh session
// after the old one was fenced, and a predicate over its result:
//
//   db.async_execute("INSERT INTO orders (ref) VALUES ('A-7')",
//       lifeline::verify_by_query("SELECT COUNT(*) FROM orders WHERE ref = 'A-7'",
//                                 [](const lifeline::result& r) {
//                                     return r.scalar() == "1" ? lifeline::write_check::applied
//                                                              : lifeline::write_check::not_applied;
//                                 }),
//       token);
#ifndef LIFELINE_ASYNC_DECLARATION_HPP
#define LIFELINE_ASYNC_DECLARATION_HPP

#include <lifeline/declaration.hpp>
#include <lifeline/result.hpp>

#include <functional>
#include <string>
#include <utility>

namespace lifeline {

struct verify_query_t {
    std::string sql;
    std::function<write_check(const result&)> check;
};

// sql runs on a fresh session after an unknown outcome; check(result) says applied / not applied
// / unknown. A check that throws, or a query that fails, is errc::verification_failed.
inline verify_query_t verify_by_query(std::string sql, std::function<write_check(const result&)> check) {
    return verify_query_t{std::move(sql), std::move(check)};
}

class async_declaration {
public:
    async_declaration() = default;  // not idempotent
    async_declaration(not_idempotent_t) {}
    async_declaration(idempotent_t) : idempotent_(true) {}
    async_declaration(verify_query_t v) : verify_(std::move(v)) {}

    bool idempotent() const noexcept { return idempotent_; }
    bool can_verify() const noexcept { return !verify_.sql.empty() && static_cast<bool>(verify_.check); }
    const std::string& verify_sql() const noexcept { return verify_.sql; }
    write_check verify(const result& r) const { return can_verify() ? verify_.check(r) : write_check::unknown; }

private:
    bool idempotent_ = false;
    verify_query_t verify_;
};

}  // namespace lifeline

#endif  // LIFELINE_ASYNC_DECLARATION_HPP
