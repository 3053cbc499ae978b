// lifeline — whole transactions: replay on deadlock or a lost connection, and the lost COMMIT.
//
//   db.transaction([&](auto& tx) {
//       tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1");
//       tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = 2");
//   }, lifeline::replayable_resolved);
//
// Between BEGIN and COMMIT the function runs its statements through `tx`. On a deadlock (1213), a
// lock wait timeout (1205, if the options say so) or a connection lost before COMMIT was sent, the
// transaction is rolled back (by the server, or explicitly) and — only if declared replayable —
// the whole function runs again after a backoff. Otherwise the error is returned.
//
// The lost COMMIT (2013 while waiting for COMMIT's answer) is resolved when `resolve_commit` is on:
// inside the transaction lifeline writes a unique token into its marker table and remembers the
// session's CONNECTION_ID(). When COMMIT's outcome is unknown it reconnects, **fences** the old
// session (KILL it, then wait until it has left the processlist, so an in-flight COMMIT cannot land
// after the check), and looks the token up: present → committed; absent → not committed (replayed
// if replayable). Only if that cannot finish within the deadline does the caller get
// errc::commit_unknown.
//
// Marker table (created on demand in the connection's schema; rows older than an hour are deleted
// in small batches after commits):
//   CREATE TABLE lifeline_commit_marker (
//       token      CHAR(32)     NOT NULL PRIMARY KEY,   -- 128 random bits, hex
//       created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
//       KEY (created_at)) ENGINE=InnoDB
#ifndef LIFELINE_TRANSACTION_HPP
#define LIFELINE_TRANSACTION_HPP

#include <chrono>

namespace lifeline {

struct transaction_options {
    bool replayable = false;              // the function may run again from the start
    bool resolve_commit = false;          // token row + fencing to resolve a lost COMMIT
    bool replay_on_lock_wait_timeout = true;  // 1205 rolls back only the statement: roll back all, replay
    std::chrono::milliseconds deadline{0};  // whole call incl. replays; 0: the policy's retry.deadline
};

struct transaction_result {
    unsigned attempts = 0;        // times the function ran
    bool commit_resolved = false; // COMMIT's answer was lost and lifeline found out what happened
};

struct replayable_t {
    explicit constexpr replayable_t() = default;
    operator transaction_options() const noexcept {
        transaction_options o;
        o.replayable = true;
        return o;
    }
};
struct replayable_resolved_t {
    explicit constexpr replayable_resolved_t() = default;
    operator transaction_options() const noexcept {
        transaction_options o;
        o.replayable = true;
        o.resolve_commit = true;
        return o;
    }
};
inline constexpr replayable_t replayable{};
inline constexpr replayable_resolved_t replayable_resolved{};

namespace detail {
// Thrown by a transaction context's statement on failure; caught by connection::transaction().
// Deliberately not a std::exception, so a `catch (const std::exception&)` in user code inside the
// transaction cannot swallow it.
struct transaction_statement_failed {};
}  // namespace detail

}  // namespace lifeline

#endif  // LIFELINE_TRANSACTION_HPP
