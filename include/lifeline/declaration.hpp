// lifeline — what the caller declares about a statement: may it run twice?
//
// A statement with no declaration counts as NOT idempotent: lifeline then re-sends it only when
// it certainly did not run. `idempotent` lets lifeline re-send it after an unknown outcome too.
// `verify_with(check)` lets lifeline ask the caller's check (the article's "verify with a SELECT
// before re-issuing") after reconnecting: applied -> done, not_applied -> re-send, unknown -> report.
#ifndef LIFELINE_DECLARATION_HPP
#define LIFELINE_DECLARATION_HPP

#include <functional>
#include <utility>

namespace lifeline {

enum class write_check { applied, not_applied, unknown };

struct idempotent_t {
    explicit constexpr idempotent_t() = default;
};
struct not_idempotent_t {
    explicit constexpr not_idempotent_t() = default;
};
inline constexpr idempotent_t idempotent{};
inline constexpr not_idempotent_t not_idempotent{};

template <class F>
struct verify_with_t {
    F check;
};
// check(native_handle) -> write_check, run on a fresh connection after an unknown outcome.
template <class F>
verify_with_t<F> verify_with(F check) {
    return verify_with_t<F>{std::move(check)};
}

// The declaration as a connection stores it; Handle is the driver's native handle (MYSQL*,
// sql::Connection&). Implicitly built from the tags above, so callers write `lifeline::idempotent`.
template <class Handle>
class declaration {
public:
    declaration() = default;  // not idempotent
    declaration(not_idempotent_t) {}
    declaration(idempotent_t) : idempotent_(true) {}
    template <class F>
    declaration(verify_with_t<F> v) : verify_(std::move(v.check)) {}

    bool idempotent() const noexcept { return idempotent_; }
    bool can_verify() const noexcept { return static_cast<bool>(verify_); }
    write_check verify(Handle h) const { return verify_ ? verify_(h) : write_check::unknown; }

private:
    bool idempotent_ = false;
    std::function<write_check(Handle)> verify_;
};

}  // namespace lifeline

#endif  // LIFELINE_DECLARATION_HPP
