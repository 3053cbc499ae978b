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
#include <lifeline/endpoint_monitor.hpp>
#include <lifeline/error.hpp>
#include <lifeline/health.hpp>
#include <lifeline/retry_budget.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

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
    // Failover (cluster.hpp): a host list and a writer connection: after a read-only answer the
    // connection can find the writer and send there.
    bool can_reroute = false;
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
    // A read-only server (1290, a replica or a demoted primary): with one endpoint there is no
    // primary to reroute to, and sending again to the same server fails the same way. With a host
    // list (failover) the statement certainly did not run: find the writer and send it there.
    if (c.action == remedy::reroute_to_primary) {
        if (in.can_reroute)
            return {next_step::retry, false, {},
                    "the server is read-only (a replica or a demoted primary); nothing ran: re-sent to the writer"};
        return {next_step::fail, false, make_error_code(errc::read_only_server),
                "the server is read-only and lifeline knows no other server to send the write to"};
    }
    const bool wait = c.action == remedy::retry_after_backoff || c.action == remedy::retry_transaction;
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
    unsigned max_attempts = 4;                        // sends, including the first
    // Per operation, unless the call gives one (call_options::deadline; lifeline::no_deadline for
    // none). 60 s: above the 45 s a plain long statement may take, so lifeline itself cuts nothing
    // a caller did not ask it to (README "Long statements").
    std::chrono::milliseconds deadline{60000};
    // While the server is down, fail at once (errc::server_unavailable) instead of waiting for the
    // endpoint's prober within the deadline. A call can also ask for it (call_options::fail_fast).
    bool fail_fast = false;
    void validate_into(std::string& why) const {
        if (max_attempts == 0) why += "retry_policy.max_attempts must be >= 1; ";
        if (deadline.count() <= 0) why += "retry_policy.deadline must be > 0; ";
    }
};

// Hooks a custom policy may declare it replaces (`customizes`), so that a misspelt hook is a
// compile error instead of a silently kept default.
enum class hook : unsigned { none = 0, classify = 1, decide = 2 };
constexpr hook operator|(hook a, hook b) noexcept { return static_cast<hook>(static_cast<unsigned>(a) | static_cast<unsigned>(b)); }
constexpr bool has_hook(hook set, hook h) noexcept { return (static_cast<unsigned>(set) & static_cast<unsigned>(h)) != 0; }

// The default policy: every knob with its documented default. Derive and hide members to change
// behaviour; set fields to change numbers. Validated when a connection is constructed.
// What a policy type must provide is checked by check_policy<Policy>() (below), with a
// static_assert naming the member and the expected signature.
struct default_policy {
    using clock_type = system_clock_source;

    retry_policy retry{};
    backoff_policy backoff{};
    health_policy health{};
    retry_budget_policy budget{};
    circuit_breaker_policy breaker{};
    probe_policy probe{};

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
        why += probe.validate();
        return why;
    }
};

namespace detail {

// The class a member function pointer belongs to (the policy itself, or a base it inherits from).
template <class C, class R, class... A>
C policy_member_class(R (C::*)(A...) const noexcept);
template <class C, class R, class... A>
C policy_member_class(R (C::*)(A...) const);

template <class P, class = void>
struct has_unique_classify : std::false_type {};
template <class P>
struct has_unique_classify<P, std::void_t<decltype(&P::classify)>> : std::true_type {};
template <class P, class = void>
struct has_unique_decide : std::false_type {};
template <class P>
struct has_unique_decide<P, std::void_t<decltype(&P::decide)>> : std::true_type {};
template <class P, class = void>
struct declares_customizes : std::false_type {};
template <class P>
struct declares_customizes<P, std::void_t<decltype(P::customizes)>> : std::true_type {};

template <class P, class = void>
struct policy_has_validate : std::false_type {};
template <class P>
struct policy_has_validate<P, std::enable_if_t<std::is_same_v<decltype(std::declval<const P&>().validate()), std::string>>>
    : std::true_type {};

template <class P, class = void>
struct policy_has_clock : std::false_type {};
template <class P>
struct policy_has_clock<P, std::void_t<typename P::clock_type>> : std::true_type {};

template <class P, class M, class = void>
struct classify_matches : std::false_type {};
template <class P, class M>
struct classify_matches<P, M, std::void_t<decltype(policy_member_class(std::declval<M>()))>>
    : std::is_same<M, classification (decltype(policy_member_class(std::declval<M>()))::*)(const failure&) const noexcept> {};
template <class P, class M, class = void>
struct decide_matches : std::false_type {};
template <class P, class M>
struct decide_matches<P, M, std::void_t<decltype(policy_member_class(std::declval<M>()))>>
    : std::is_same<M, decision (decltype(policy_member_class(std::declval<M>()))::*)(const classification&,
                                                                                      const decision_input&) const noexcept> {};

template <class P>
constexpr bool declared_here(hook h) noexcept {
    if constexpr (declares_customizes<P>::value) return has_hook(P::customizes, h);
    return false;
}

}  // namespace detail

// Checks a policy type the way check_driver_traits() checks a driver: every hook lifeline calls
// must exist with exactly the signature it calls, so a hook with a slightly different signature is
// a compile error naming it, never a silently kept default. A policy that lists the hooks it
// replaces in `static constexpr lifeline::hook customizes = hook::classify | hook::decide;` also
// gets an error if one of them is still the inherited default (a misspelt name).
template <class Policy>
constexpr bool check_policy() {
    static_assert(detail::has_unique_classify<Policy>::value,
                  "lifeline: the policy has no unique `classify` member: declare exactly one "
                  "`lifeline::classification classify(const lifeline::failure&) const noexcept` (or derive from "
                  "lifeline::default_policy and do not overload it)");
    static_assert(detail::has_unique_decide<Policy>::value,
                  "lifeline: the policy has no unique `decide` member: declare exactly one "
                  "`lifeline::decision decide(const lifeline::classification&, const lifeline::decision_input&) const "
                  "noexcept` (or derive from lifeline::default_policy and do not overload it)");
    if constexpr (detail::has_unique_classify<Policy>::value)
        static_assert(detail::classify_matches<Policy, decltype(&Policy::classify)>::value,
                      "lifeline: the policy's `classify` has the wrong signature; expected "
                      "`lifeline::classification classify(const lifeline::failure&) const noexcept`");
    if constexpr (detail::has_unique_decide<Policy>::value)
        static_assert(detail::decide_matches<Policy, decltype(&Policy::decide)>::value,
                      "lifeline: the policy's `decide` has the wrong signature; expected `lifeline::decision "
                      "decide(const lifeline::classification&, const lifeline::decision_input&) const noexcept`");
    if constexpr (detail::has_unique_classify<Policy>::value && detail::declared_here<Policy>(hook::classify))
        static_assert(!std::is_same_v<decltype(detail::policy_member_class(&Policy::classify)), default_policy>,
                      "lifeline: the policy says it customizes `classify` (customizes) but still inherits "
                      "default_policy::classify: is the member's name misspelt?");
    if constexpr (detail::has_unique_decide<Policy>::value && detail::declared_here<Policy>(hook::decide))
        static_assert(!std::is_same_v<decltype(detail::policy_member_class(&Policy::decide)), default_policy>,
                      "lifeline: the policy says it customizes `decide` (customizes) but still inherits "
                      "default_policy::decide: is the member's name misspelt?");
    static_assert(detail::policy_has_clock<Policy>::value,
                  "lifeline: the policy lacks `using clock_type = ...;` (derive from lifeline::default_policy, or "
                  "use lifeline::system_clock_source)");
    if constexpr (detail::policy_has_clock<Policy>::value)
        static_assert(is_clock_v<typename Policy::clock_type>,
                      "lifeline: the policy's clock_type lacks `steady_time now()` or `void sleep_for(duration)`");
    static_assert(detail::policy_has_validate<Policy>::value,
                  "lifeline: the policy lacks `std::string validate() const` (derive from lifeline::default_policy)");
    static_assert(std::is_same_v<decltype(std::declval<Policy&>().retry), retry_policy> &&
                      std::is_same_v<decltype(std::declval<Policy&>().backoff), backoff_policy> &&
                      std::is_same_v<decltype(std::declval<Policy&>().health), health_policy> &&
                      std::is_same_v<decltype(std::declval<Policy&>().budget), retry_budget_policy> &&
                      std::is_same_v<decltype(std::declval<Policy&>().breaker), circuit_breaker_policy> &&
                      std::is_same_v<decltype(std::declval<Policy&>().probe), probe_policy>,
                  "lifeline: the policy lacks one of the members retry, backoff, health, budget, breaker, probe (of "
                  "types retry_policy, backoff_policy, health_policy, retry_budget_policy, circuit_breaker_policy, "
                  "probe_policy): derive from lifeline::default_policy");
    return true;
}

}  // namespace lifeline

#endif  // LIFELINE_POLICY_HPP
