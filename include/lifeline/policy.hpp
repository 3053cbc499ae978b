// lifeline — policies: what to retry, how long to wait, when to check health.
//
// The retry decision is a pure function of the classification, the caller's declaration and the
// transaction state; the retry loop only reads its result. A custom policy derives from
// default_policy and hides what it wants to change:
//
//   struct my_policy : lifeline::default_policy {
//       lifeline::classification classify(const lifeline::failure& f) const noexcept {
//           if (f.code == 1205) return {...};            // e.g. lock wait timeouts: never retry
//           return default_policy::classify(f);
//       }
//   };
//   lifeline::connection<lifeline::capi, my_policy> c{options};
#ifndef LIFELINE_POLICY_HPP
#define LIFELINE_POLICY_HPP

#include <lifeline/backoff.hpp>
#include <lifeline/circuit_breaker.hpp>
#include <lifeline/classification.hpp>
#include <lifeline/error.hpp>
#include <lifeline/health.hpp>
#include <lifeline/retry_budget.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <system_error>

namespace lifeline {

// What the loop should do after a failed attempt.
enum class next_step : std::uint8_t {
    retry,              // send again (after reconnecting if the connection is broken)
    verify_then_retry,  // reconnect, run the caller's check; re-send only if it says not applied
    fail,               // stop and report `error`
};

struct decision_input {
    bool idempotent = false;      // declared by the caller
    bool can_verify = false;      // the caller passed a verification check
    bool in_transaction = false;  // a user transaction was open when it failed
};

struct decision {
    next_step step = next_step::fail;
    bool backoff = false;         // wait (backoff) before the next attempt
    std::error_code error{};      // with fail: lifeline's code; empty means "the driver's error as is"
    std::string_view why{};
};

// The default decision. Invariant (unit-tested over the whole table): a statement whose outcome is
// unknown is re-sent only if declared idempotent, or after the caller's check said not applied.
inline decision decide(const classification& c, const decision_input& in) noexcept {
    if (in.in_transaction && (c.connection == connection_state::broken ||
                              c.statement == outcome::transaction_rolled_back || c.statement == outcome::unknown))
        return {next_step::fail, false, make_error_code(errc::transaction_lost),
                "the open transaction is gone; re-run the whole transaction"};
    if (in.in_transaction)  // the transaction is still open: only its owner can decide
        return {next_step::fail, false, {}, "failed inside an open transaction"};
    if (c.action == remedy::shrink_payload)
        return {next_step::fail, false, make_error_code(errc::statement_too_large),
                "the statement exceeds max_allowed_packet"};
    if (c.action == remedy::do_not_retry)
        return {next_step::fail, false, {}, c.reason};
    const bool wait = c.action == remedy::retry_after_backoff || c.action == remedy::retry_transaction ||
                      c.action == remedy::reroute_to_primary;
    switch (c.statement) {
    case outcome::not_executed:
    case outcome::statement_rolled_back:
    case outcome::transaction_rolled_back:  // autocommit: the statement's own transaction
        return {next_step::retry, wait, {}, "the statement did not take effect"};
    case outcome::unknown:
        if (in.idempotent) return {next_step::retry, wait, {}, "outcome unknown; declared idempotent"};
        if (in.can_verify) return {next_step::verify_then_retry, wait, {}, "outcome unknown; verifying"};
        return {next_step::fail, false, make_error_code(errc::outcome_unknown),
                "outcome unknown and not declared idempotent"};
    case outcome::interrupted:  // e.g. 1927: the connection was killed; re-running is safe only if idempotent
        if (c.action == remedy::retry_if_idempotent && in.idempotent)
            return {next_step::retry, wait, {}, "interrupted; declared idempotent"};
        break;
    case outcome::failed:
        break;
    }
    return {next_step::fail, false, {}, c.reason};
}

struct retry_policy {
    unsigned max_attempts = 4;                        // including the first
    std::chrono::milliseconds deadline{30000};        // per operation, unless the call gives one
    void validate_into(std::string& why) const {
        if (max_attempts == 0) why += "retry_policy.max_attempts must be >= 1; ";
        if (deadline.count() <= 0) why += "retry_policy.deadline must be > 0; ";
    }
};

// The default policy: every knob with its documented default. Derive and hide members to change
// behaviour; set fields to change numbers. Validated when a connection is constructed.
struct default_policy {
    using clock_type = system_clock_source;

    retry_policy retry{};
    backoff_policy backoff{};
    health_policy health{};
    retry_budget_policy budget{};
    circuit_breaker_policy breaker{};

    classification classify(const failure& f) const noexcept { return lifeline::classify(f); }
    decision decide(const classification& c, const decision_input& in) const noexcept {
        return lifeline::decide(c, in);
    }
    // Empty when usable; else every problem found, each naming the field and the fix.
    std::string validate() const {
        std::string why;
        retry.validate_into(why);
        why += backoff.validate();
        why += budget.validate();
        why += health.validate();
        why += breaker.validate();
        return why;
    }
};

}  // namespace lifeline

#endif  // LIFELINE_POLICY_HPP
