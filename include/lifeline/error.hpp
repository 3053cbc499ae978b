// lifeline — std::error_code integration.
//
// Three categories: "lifeline" for lifeline's own conditions (errc, each message says what to
// do), "lifeline.server" and "lifeline.client" for the driver's error numbers (value = the
// number, message = symbol + what it means, from the classification table). The server's own
// text belongs to `diagnostics`, not to the error_code, which stays a cheap value.
//
// Header-only and ODR-safe: each category is a function-local static inside an inline function,
// so every translation unit sees the same object (error_code compares categories by address).
#ifndef LIFELINE_ERROR_HPP
#define LIFELINE_ERROR_HPP

#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include <lifeline/classification.hpp>
#include <lifeline/phase.hpp>

namespace lifeline {

enum class errc : int {
    outcome_unknown = 1,          // a non-idempotent statement may or may not have run
    commit_unknown = 2,           // the connection died during COMMIT and resolution could not finish
    transaction_lost = 3,         // the connection died inside a transaction
    deadline_exceeded = 4,        // the operation's deadline passed
    retry_budget_exhausted = 5,   // too many recent retries: failing fast
    circuit_open = 6,             // the circuit breaker is open: failing fast
    pool_exhausted = 7,           // no connection became free in time
    invalid_option = 8,           // connect_options (or another option) is invalid
    invalid_dsn = 9,              // the connection string does not parse
    session_state_lost = 10,      // reconnected, but the session could not be restored
    not_connected = 11,           // no connection is open
    verification_failed = 12,     // the verification callback itself failed (threw, or lost its connection)
    statement_too_large = 13,     // larger than max_allowed_packet
    read_only_server = 14,        // the server is read-only and no primary is known
    internal_error = 15,          // an unexpected exception inside lifeline (e.g. out of memory)
    implicit_commit = 16,         // a statement inside transaction() committed the transaction implicitly
    operation_in_progress = 17,   // another operation is still running on this connection
    server_unavailable = 18,      // the server is not accepting connections and the caller asked to fail fast
};

namespace detail {

constexpr std::string_view errc_message(int value) noexcept {
    switch (static_cast<errc>(value)) {
    case errc::outcome_unknown:
        return "the statement may or may not have run (the connection was lost while it was in flight); declare it "
               "idempotent or pass a verification callback to let lifeline decide";
    case errc::commit_unknown:
        return "the connection was lost during COMMIT, so the transaction may or may not be committed; pass a "
               "verification callback (e.g. look up a token row written by the transaction) to let lifeline find out";
    case errc::transaction_lost:
        return "the connection broke inside a transaction and the server rolled it back; re-run the whole "
               "transaction (lifeline's transaction runner does), never just the last statement";
    case errc::deadline_exceeded:
        return "the operation's deadline passed before it could succeed; allow more time or check the server's health";
    case errc::retry_budget_exhausted:
        return "too many retries recently, so lifeline failed fast instead of adding load; the server is probably "
               "down or overloaded: fix that, or raise the retry budget only if such bursts are expected";
    case errc::circuit_open:
        return "the circuit breaker is open after repeated failures, so lifeline failed fast; it probes the server "
               "again after the cool-down";
    case errc::pool_exhausted:
        return "no pooled connection became free in time; raise the pool size or the acquire timeout, or hold "
               "connections for shorter";
    case errc::invalid_option:
        return "an option is invalid; the diagnostics say which one and how to fix it";
    case errc::invalid_dsn:
        return "the connection string does not parse; expected mysql://user:password@host:port/schema?option=value";
    case errc::session_state_lost:
        return "the connection was lost together with session state lifeline was not asked to keep (user "
               "variables, temporary tables, prepared statements made outside lifeline), so lifeline did not "
               "silently continue in a new session; register that state in session() to have it restored";
    case errc::not_connected:
        return "no connection is open; connect first (or take a connection from the pool)";
    case errc::verification_failed:
        return "the verification callback failed, so whether the statement ran is still unknown; check the data "
               "before running it again";
    case errc::statement_too_large:
        return "the statement is larger than max_allowed_packet; split it into smaller batches or raise "
               "max_allowed_packet on server and client";
    case errc::internal_error:
        return "an unexpected exception inside lifeline (e.g. out of memory); the diagnostics hold its text";
    case errc::read_only_server:
        return "the server is read-only (a replica, or a primary demoted by failover); point lifeline at the "
               "primary or give it the failover hosts so it can reroute";
    case errc::implicit_commit:
        return "a statement inside the transaction function committed the transaction implicitly (DDL such as "
               "CREATE, ALTER, TRUNCATE, or LOCK TABLES): the work before it is durable and nothing after it ran; "
               "move such statements out of the transaction";
    case errc::server_unavailable:
        return "the server is not accepting connections; lifeline's single prober is checking it every few "
               "milliseconds, and this call asked to fail fast instead of waiting for it within its deadline";
    case errc::operation_in_progress:
        return "another operation is still running on this connection; wait for it to finish (one operation "
               "at a time per connection)";
    }
    return "unknown lifeline error";
}

class lifeline_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "lifeline"; }
    std::string message(int value) const override { return std::string(errc_message(value)); }
    // Lets callers test portable conditions, e.g. `ec == std::errc::timed_out`.
    std::error_condition default_error_condition(int value) const noexcept override {
        switch (static_cast<errc>(value)) {
        case errc::deadline_exceeded: return std::errc::timed_out;
        case errc::invalid_option:
        case errc::invalid_dsn: return std::errc::invalid_argument;
        case errc::not_connected: return std::errc::not_connected;
        default: return {value, *this};
        }
    }
};

// "<SYMBOL> (<code>): <what it means>" for listed codes, a pointer to diagnostics otherwise.
inline std::string driver_code_message(int value, const char* kind) {
    if (value > 0) {
        if (const error_row* row = find_error_row(static_cast<unsigned>(value))) {
            std::string out(row->symbol);
            out += " (";
            out += std::to_string(value);
            out += "): ";
            out += row->reason;
            return out;
        }
    }
    std::string out(kind);
    out += " error ";
    out += std::to_string(value);
    out += " (not in lifeline's table; the driver's text is in lifeline::diagnostics)";
    return out;
}

class server_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "lifeline.server"; }
    std::string message(int value) const override { return driver_code_message(value, "server"); }
};

class client_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "lifeline.client"; }
    std::string message(int value) const override { return driver_code_message(value, "client"); }
};

}  // namespace detail

inline const std::error_category& category() noexcept {
    static const detail::lifeline_category_impl instance;
    return instance;
}

inline const std::error_category& server_category() noexcept {
    static const detail::server_category_impl instance;
    return instance;
}

inline const std::error_category& client_category() noexcept {
    static const detail::client_category_impl instance;
    return instance;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

namespace detail::code {
// Numbers lifeline itself reports or recognises outside the classification table.
inline constexpr unsigned cr_server_lost = 2013;     // what a socket lifeline shut down looks like
inline constexpr unsigned er_no_such_thread = 1094;  // KILL of a session that has already ended
inline constexpr unsigned er_server_shutdown = 1053; // the server is going away: nobody will serve
inline constexpr unsigned er_unknown_com_error = 1047; // Galera: this node serves nothing until it rejoins
}  // namespace detail::code

// The driver's error number as an error_code: client codes (2000-2999, and MariaDB Connector/C's
// 5000-5999) in client_category, everything else in server_category; 0 means no error.
inline std::error_code make_driver_error_code(unsigned code) noexcept {
    if (code == 0) return {};
    return {static_cast<int>(code), detail::is_client_code(code) ? client_category() : server_category()};
}

// Everything the driver said besides the number. Default construction allocates nothing.
struct diagnostics {
    std::string server_message;  // the server's or driver's text, verbatim; never lifeline's words
    std::string client_message;  // lifeline's own account: what it did and why (never the server's)
    std::string sqlstate;        // 5 characters, or empty
    std::string driver;          // which adapter saw it, e.g. "capi", "jdbc"
    phase where = phase::read_result;
    unsigned code = 0;           // the driver's error number, 0 if none

    // Back to "nothing said", keeping the strings' buffers (cheaper than assigning a new one).
    void clear() noexcept {
        server_message.clear();
        client_message.clear();
        sqlstate.clear();
        driver.clear();
        where = phase::read_result;
        code = 0;
    }
};

// Thrown by lifeline's throwing overloads. Copies never throw (the payload is shared), as an
// exception type's copies must not.
class error : public std::system_error {
public:
    explicit error(std::error_code ec, diagnostics diag = {})
        : std::system_error(ec), state_(std::make_shared<const state>(make_state(ec, std::move(diag)))) {}
    explicit error(errc e, diagnostics diag = {}) : error(make_error_code(e), std::move(diag)) {}

    const diagnostics& diag() const noexcept { return state_->diag; }
    // The category's message, then lifeline's account and what the server said (if anything).
    const char* what() const noexcept override { return state_->what.c_str(); }

private:
    struct state {
        std::string what;
        diagnostics diag;
    };
    static state make_state(const std::error_code& ec, diagnostics diag) {
        std::string text = ec.message();
        if (!diag.client_message.empty()) {
            text += "; lifeline: ";
            text += diag.client_message;
        }
        if (!diag.server_message.empty()) {
            text += "; server said: ";
            text += diag.server_message;
        }
        return {std::move(text), std::move(diag)};
    }
    std::shared_ptr<const state> state_;
};

// The one helper every throwing overload is built on: its non-throwing twin fills ec and diag,
// this turns a failure into lifeline::error.
inline void throw_if(const std::error_code& ec, diagnostics& diag) {
    if (ec) throw error(ec, std::move(diag));
}

}  // namespace lifeline

namespace std {
template <>
struct is_error_code_enum<lifeline::errc> : true_type {};
}  // namespace std

#endif  // LIFELINE_ERROR_HPP
