// lifeline — the vocabulary of classification: connection state, outcome, remedy, failure and
// classification. Split out of classification.hpp so the error table (detail/error_table.hpp) and
// classify() can both use it without including each other.
#ifndef LIFELINE_DETAIL_CLASSIFICATION_TYPES_HPP
#define LIFELINE_DETAIL_CLASSIFICATION_TYPES_HPP

#include <cstdint>
#include <string_view>

#include <lifeline/phase.hpp>
#include <lifeline/server_info.hpp>

namespace lifeline {

// Can the connection that saw the error carry the next statement?
enum class connection_state : std::uint8_t {
    usable,  // the server answered; the session and any open transaction are intact
    broken,  // the session is gone or out of sync: close it; any retry needs a new connection
};

// What became of the statement (and, for transaction_rolled_back, of the whole transaction).
enum class outcome : std::uint8_t {
    not_executed,             // the server never ran it: it refused it or never received it
    statement_rolled_back,    // it ran and was rolled back; an open transaction is otherwise intact
    transaction_rolled_back,  // the whole transaction is gone (now, or once the server sees the dead connection)
    interrupted,              // the server stopped it (KILL, a time limit); nothing of it remains on transactional tables
    unknown,                  // it may or may not have taken effect
    failed,                   // the server rejected it for good (syntax, constraint, privilege): it fails again
};

// What lifeline does next. For a broken connection every retry happens on a new connection.
enum class remedy : std::uint8_t {
    retry_now,            // re-run at once on the same connection (after re-preparing, if needed)
    retry_after_backoff,  // wait (backoff with jitter), then re-run
    reconnect_and_retry,  // open a new connection and re-run at once: the statement never ran
    retry_if_idempotent,  // the statement ran but its result was lost: re-run only if idempotent
    verify_then_retry,    // it may have run: re-run if idempotent, else ask the verification callback first
    retry_transaction,    // re-run the whole transaction from its start, never only the failed statement
    reroute_to_primary,   // the server is read-only (a replica, a demoted primary): re-run on the primary
    shrink_payload,       // too large for max_allowed_packet: split it; re-running it as is fails again
    do_not_retry,         // report the error: a retry cannot help, or would overrule an operator
};

// Classifier input: what the driver adapter saw.
struct failure {
    unsigned code = 0;            // server (1xxx/3xxx/4xxx) or client (2xxx, 5xxx) error number; 0 if none
    std::string_view sqlstate{};  // 5 characters, or empty when the driver gave none
    phase where = phase::read_result;
    bool in_transaction = false;  // a user transaction was open (a COMMIT always counts as one)
    // Which server said it (learnt at connect, lifeline/server_info.hpp). unknown: the
    // flavour-neutral rules, as for a server lifeline could not identify.
    server_flavor flavor = server_flavor::unknown;
    bool galera = false;          // the server is a Galera node (wsrep_on)
};

// Classifier output. Two classifications are equal when they demand the same handling:
// `reason` is commentary and takes no part in the comparison.
struct classification {
    connection_state connection;
    outcome statement;
    remedy action;
    std::string_view reason;  // short static text, e.g. "server closed the connection while ..."

    friend constexpr bool operator==(const classification& a, const classification& b) noexcept {
        return a.connection == b.connection && a.statement == b.statement && a.action == b.action;
    }
    friend constexpr bool operator!=(const classification& a, const classification& b) noexcept {
        return !(a == b);
    }
};

constexpr std::string_view to_string(connection_state c) noexcept {
    switch (c) {
    case connection_state::usable: return "usable";
    case connection_state::broken: return "broken";
    }
    return "unknown";
}

constexpr std::string_view to_string(outcome o) noexcept {
    switch (o) {
    case outcome::not_executed: return "not_executed";
    case outcome::statement_rolled_back: return "statement_rolled_back";
    case outcome::transaction_rolled_back: return "transaction_rolled_back";
    case outcome::interrupted: return "interrupted";
    case outcome::unknown: return "unknown";
    case outcome::failed: return "failed";
    }
    return "invalid";
}

constexpr std::string_view to_string(remedy r) noexcept {
    switch (r) {
    case remedy::retry_now: return "retry_now";
    case remedy::retry_after_backoff: return "retry_after_backoff";
    case remedy::reconnect_and_retry: return "reconnect_and_retry";
    case remedy::retry_if_idempotent: return "retry_if_idempotent";
    case remedy::verify_then_retry: return "verify_then_retry";
    case remedy::retry_transaction: return "retry_transaction";
    case remedy::reroute_to_primary: return "reroute_to_primary";
    case remedy::shrink_payload: return "shrink_payload";
    case remedy::do_not_retry: return "do_not_retry";
    }
    return "invalid";
}

// May the failed *statement* be re-run without further checks? A lost transaction is never
// repaired by re-running one statement, so retry_transaction answers false here (see
// needs_transaction_retry); the caller's whole transaction must run again instead.
constexpr bool is_retry_safe(const classification& c, bool idempotent) noexcept {
    switch (c.action) {
    case remedy::retry_now:
    case remedy::retry_after_backoff:
    case remedy::reconnect_and_retry:
    case remedy::reroute_to_primary: return true;
    case remedy::retry_if_idempotent:
    case remedy::verify_then_retry: return idempotent;
    case remedy::retry_transaction:
    case remedy::shrink_payload:
    case remedy::do_not_retry: return false;
    }
    return false;
}

// The connection must be closed and replaced before anything else runs.
constexpr bool needs_reconnect(const classification& c) noexcept {
    return c.connection == connection_state::broken;
}

// A non-idempotent statement may have run: only a verification callback can say whether a retry
// would apply it twice.
constexpr bool needs_verification(const classification& c, bool idempotent) noexcept {
    return c.action == remedy::verify_then_retry && !idempotent;
}

constexpr bool needs_transaction_retry(const classification& c) noexcept {
    return c.action == remedy::retry_transaction;
}

}  // namespace lifeline

#endif  // LIFELINE_DETAIL_CLASSIFICATION_TYPES_HPP
