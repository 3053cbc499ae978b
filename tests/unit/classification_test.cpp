// The classifier: every required row, per phase and transaction state, and the safety invariant
// over the whole table (at compile time and at run time).
#include <lifeline/classification.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <iterator>
#include <string>
#include <string_view>

namespace {

using lifeline::classification;
using lifeline::classify;
using lifeline::connection_state;
using lifeline::failure;
using lifeline::outcome;
using lifeline::phase;
using lifeline::remedy;

constexpr auto usable = connection_state::usable;
constexpr auto broken = connection_state::broken;

constexpr phase all_phases[] = {phase::connect, phase::send, phase::read_result, phase::fetch, phase::commit};

constexpr classification expect(connection_state c, outcome o, remedy r) { return {c, o, r, {}}; }

classification at(unsigned code, phase where = phase::read_result, bool in_transaction = false,
                  std::string_view sqlstate = {}) {
    return classify(failure{code, sqlstate, where, in_transaction});
}

// The statement phases (everything but connect and commit), where an open transaction changes things.
constexpr phase statement_phases[] = {phase::send, phase::read_result, phase::fetch};

// Codes that are refused before anything runs, with a broken connection and a fixed remedy
// (connect-time refusals and client-side refusals).
void check_refused(unsigned code, remedy r) {
    CAPTURE(code);
    CHECK(at(code, phase::connect) == expect(broken, outcome::not_executed, r));
    CHECK(at(code, phase::connect, true) == expect(broken, outcome::not_executed, r));
    for (phase where : statement_phases) {
        CAPTURE(where);
        CHECK(at(code, where) == expect(broken, outcome::not_executed, r));
    }
    // The connection must be closed, and with it goes the transaction; a permanent problem keeps
    // its remedy, a transient one re-runs the whole transaction.
    const remedy in_tx = (r == remedy::do_not_retry || r == remedy::shrink_payload) ? r : remedy::retry_transaction;
    for (phase where : statement_phases) {
        CAPTURE(where);
        CHECK(at(code, where, true) == expect(broken, outcome::transaction_rolled_back, in_tx));
    }
    CHECK(at(code, phase::commit) == expect(broken, outcome::transaction_rolled_back, in_tx));
}

// Server answers on a usable connection that hold in every phase but connect.
void check_answer(unsigned code, outcome o, remedy r) {
    CAPTURE(code);
    for (phase where : {phase::send, phase::read_result, phase::fetch, phase::commit}) {
        for (bool tx : {false, true}) {
            CAPTURE(where, tx);
            CHECK(at(code, where, tx) == expect(usable, o, r));
        }
    }
    const remedy on_connect = (r == remedy::do_not_retry || r == remedy::shrink_payload || r == remedy::reroute_to_primary)
                                  ? r
                                  : remedy::retry_after_backoff;
    CHECK(at(code, phase::connect) == expect(broken, outcome::not_executed, on_connect));
}

// The connection died with the command possibly in flight (2013 and its relatives).
void check_in_flight(unsigned code, std::string_view sqlstate = {}) {
    CAPTURE(code, sqlstate);
    CHECK(at(code, phase::connect, false, sqlstate) == expect(broken, outcome::not_executed, remedy::retry_after_backoff));
    CHECK(at(code, phase::send, false, sqlstate) == expect(broken, outcome::unknown, remedy::verify_then_retry));
    CHECK(at(code, phase::read_result, false, sqlstate) == expect(broken, outcome::unknown, remedy::verify_then_retry));
    CHECK(at(code, phase::fetch, false, sqlstate) == expect(broken, outcome::unknown, remedy::retry_if_idempotent));
    CHECK(at(code, phase::commit, false, sqlstate) == expect(broken, outcome::unknown, remedy::verify_then_retry));
    CHECK(at(code, phase::commit, true, sqlstate) == expect(broken, outcome::unknown, remedy::verify_then_retry));
    for (phase where : statement_phases) {
        CAPTURE(where);
        CHECK(at(code, where, true, sqlstate) ==
              expect(broken, outcome::transaction_rolled_back, remedy::retry_transaction));
    }
}

// The connection was dead before the command reached the server (2006, 4031).
void check_not_sent(unsigned code) {
    CAPTURE(code);
    CHECK(at(code, phase::connect) == expect(broken, outcome::not_executed, remedy::retry_after_backoff));
    CHECK(at(code, phase::send) == expect(broken, outcome::not_executed, remedy::reconnect_and_retry));
    CHECK(at(code, phase::read_result) == expect(broken, outcome::not_executed, remedy::reconnect_and_retry));
    // While fetching, the statement itself had already run (a cursor fetch is a command of its own).
    CHECK(at(code, phase::fetch) == expect(broken, outcome::unknown, remedy::retry_if_idempotent));
    // A COMMIT that never arrived committed nothing: the transaction is lost, not in doubt.
    CHECK(at(code, phase::commit) == expect(broken, outcome::transaction_rolled_back, remedy::retry_transaction));
    for (phase where : statement_phases) {
        CAPTURE(where);
        CHECK(at(code, where, true) == expect(broken, outcome::transaction_rolled_back, remedy::retry_transaction));
    }
}

// KILL QUERY and statement time limits: usable, interrupted, never retried.
void check_interrupted_usable(unsigned code, std::string_view sqlstate = {}) {
    CAPTURE(code, sqlstate);
    for (phase where : statement_phases) {
        for (bool tx : {false, true}) {
            CAPTURE(where, tx);
            CHECK(at(code, where, tx, sqlstate) == expect(usable, outcome::interrupted, remedy::do_not_retry));
        }
    }
    // A kill can land after the engine committed: the COMMIT's fate is unknown, and the operator's
    // decision still stands.
    CHECK(at(code, phase::commit, true, sqlstate) == expect(usable, outcome::unknown, remedy::do_not_retry));
    CHECK(at(code, phase::connect, false, sqlstate) == expect(broken, outcome::not_executed, remedy::do_not_retry));
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<classification> {
    static std::string convert(const classification& c) {
        std::string out = "{";
        out += lifeline::to_string(c.connection);
        out += ", ";
        out += lifeline::to_string(c.statement);
        out += ", ";
        out += lifeline::to_string(c.action);
        out += ", \"";
        out += c.reason;
        out += "\"}";
        return out;
    }
};
template <>
struct StringMaker<phase> {
    static std::string convert(phase p) { return std::string(lifeline::to_string(p)); }
};
}  // namespace Catch

// --- 2013 and the rest of the connection-lost family ----------------------------------------

TEST_CASE("2013 CR_SERVER_LOST: nothing ran during connect, unknown once the statement was sent",
          "[unit][classification]") {
    // fault-matrix.md: a 2013 while connecting to a frozen server ("handshake: reading initial
    // communication packet") is not an unknown outcome.
    CHECK(at(2013, phase::connect) == expect(broken, outcome::not_executed, remedy::retry_after_backoff));
    // While waiting for the answer: may or may not have run; re-run only what is safe.
    CHECK(at(2013, phase::read_result) == expect(broken, outcome::unknown, remedy::verify_then_retry));
    // While reading rows: the statement ran, its result was lost.
    CHECK(at(2013, phase::fetch) == expect(broken, outcome::unknown, remedy::retry_if_idempotent));
    // The lost COMMIT: the transaction may or may not be committed.
    CHECK(at(2013, phase::commit, true) == expect(broken, outcome::unknown, remedy::verify_then_retry));
    // Bytes may have reached the server before a failed send: conservatively unknown.
    CHECK(at(2013, phase::send) == expect(broken, outcome::unknown, remedy::verify_then_retry));
    // Inside a transaction: the server rolls it all back; never retry one statement of it.
    CHECK(at(2013, phase::read_result, true) ==
          expect(broken, outcome::transaction_rolled_back, remedy::retry_transaction));
    check_in_flight(2013);

    CHECK(at(2013).reason.find("in flight") != std::string_view::npos);
    CHECK(at(2013, phase::connect).reason.find("connecting") != std::string_view::npos);
    CHECK(at(2013, phase::commit).reason.find("COMMIT") != std::string_view::npos);
}

TEST_CASE("2055 CR_SERVER_LOST_EXTENDED is handled like 2013", "[unit][classification]") {
    check_in_flight(2055);
}

TEST_CASE("1053 ER_SERVER_SHUTDOWN: a refusal at connect, in flight afterwards", "[unit][classification]") {
    // A shutdown kills statements like KILL does and can race their commit; the socket closes.
    check_in_flight(1053);
}

TEST_CASE("1160/1161: the server could not send the result: in flight", "[unit][classification]") {
    check_in_flight(1160);
    check_in_flight(1161);
}

TEST_CASE("2006 CR_SERVER_GONE_ERROR: the command never reached the server", "[unit][classification]") {
    // fault-matrix.md: wait_timeout expired, then a query: 2006, and the statement did not run.
    check_not_sent(2006);
}

TEST_CASE("4031 ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+) is a disconnect, like 2006",
          "[unit][classification]") {
    // MySQL only; MariaDB cannot produce it. The server closes an idle connection after
    // wait_timeout and sends this error first; the client reads it as the answer to its next
    // command, which never ran.
    // https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_client_interaction_timeout
    // SQLAlchemy missed it once (issue #8036); Boost.MySQL treats server codes as non-fatal.
    check_not_sent(4031);
}

// --- refusals before anything ran -------------------------------------------------------------

TEST_CASE("2002/2003/2005: connect failures retry after backoff", "[unit][classification]") {
    check_refused(2002, remedy::retry_after_backoff);  // measured: Connector/C reports 2002 for TCP too
    check_refused(2003, remedy::retry_after_backoff);
    // Decision: DNS fails transiently (resolver timeouts, failover switching names); a typo ends
    // when the retry budget does.
    check_refused(2005, remedy::retry_after_backoff);
}

TEST_CASE("1040/1203: too many connections retry after backoff", "[unit][classification]") {
    check_refused(1040, remedy::retry_after_backoff);
    check_refused(1203, remedy::retry_after_backoff);
}

TEST_CASE("2026/1045/1044: configuration and credential errors are not retried", "[unit][classification]") {
    check_refused(2026, remedy::do_not_retry);
    check_refused(1045, remedy::do_not_retry);
    check_refused(1044, remedy::do_not_retry);
}

TEST_CASE("2014 CR_COMMANDS_OUT_OF_SYNC: a caller bug; the connection is discarded", "[unit][classification]") {
    check_refused(2014, remedy::do_not_retry);
}

TEST_CASE("1153 ER_NET_PACKET_TOO_LARGE breaks the connection; 1301 does not", "[unit][classification]") {
    // fault-matrix.md: 20 MB INSERT against 16 MB: 1153 (08S01), next query 2006.
    check_refused(1153, remedy::shrink_payload);
    check_answer(1301, outcome::failed, remedy::shrink_payload);
}

// --- interrupted statements -------------------------------------------------------------------

TEST_CASE("1317/1969/3024 keep the connection usable; 1927 breaks it (all SQLSTATE 70100 but 3024)",
          "[unit][classification]") {
    // fault-matrix.md: KILL QUERY -> 1317, connection alive; max_statement_time -> 1969, alive.
    check_interrupted_usable(1317, "70100");
    check_interrupted_usable(1969, "70100");
    // MySQL only (MAX_EXECUTION_TIME, SELECT only); MariaDB cannot produce it — its 3024 is
    // ER_UNUSED_1 and it reports 1969 instead.
    // https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_query_timeout
    check_interrupted_usable(3024, "HY000");

    // 1927 shares 70100 with 1317/1969, but the connection is gone (MariaDB CONJ-492). Mapping
    // 70100 to one meaning is what makes Connector/J + HikariCP evict healthy connections.
    CHECK(at(1927, phase::read_result, false, "70100") ==
          expect(broken, outcome::interrupted, remedy::retry_if_idempotent));
    CHECK(at(1927, phase::fetch, false, "70100") == expect(broken, outcome::interrupted, remedy::retry_if_idempotent));
    CHECK(at(1927, phase::read_result, true, "70100") ==
          expect(broken, outcome::transaction_rolled_back, remedy::retry_transaction));
    CHECK(at(1927, phase::commit, true, "70100") == expect(broken, outcome::unknown, remedy::verify_then_retry));
    CHECK(at(1927, phase::connect, false, "70100") ==
          expect(broken, outcome::not_executed, remedy::retry_after_backoff));

    CHECK(at(1317).connection != at(1927).connection);
    CHECK(at(1969).connection != at(1927).connection);
}

// --- lock conflicts ---------------------------------------------------------------------------

TEST_CASE("1213 ER_LOCK_DEADLOCK rolls back the whole transaction", "[unit][classification]") {
    // Decision: in autocommit the rolled-back "transaction" was the statement, so the statement is
    // retried after a pause; inside a transaction, the transaction is.
    for (phase where : statement_phases) {
        CAPTURE(where);
        CHECK(at(1213, where) == expect(usable, outcome::statement_rolled_back, remedy::retry_after_backoff));
        CHECK(at(1213, where, true) == expect(usable, outcome::transaction_rolled_back, remedy::retry_transaction));
    }
    // Galera reports certification conflicts as 1213 on COMMIT.
    CHECK(at(1213, phase::commit, true) == expect(usable, outcome::transaction_rolled_back, remedy::retry_transaction));
    CHECK(at(1213, phase::connect) == expect(broken, outcome::not_executed, remedy::retry_after_backoff));
}

TEST_CASE("1205 ER_LOCK_WAIT_TIMEOUT rolls back only the statement", "[unit][classification]") {
    // fault-matrix.md: innodb_rollback_on_timeout=OFF: statement rolled back, connection alive.
    for (phase where : statement_phases) {
        CAPTURE(where);
        CHECK(at(1205, where) == expect(usable, outcome::statement_rolled_back, remedy::retry_after_backoff));
        CHECK(at(1205, where, true) == expect(usable, outcome::statement_rolled_back, remedy::retry_transaction));
    }
    CHECK(at(1205, phase::connect) == expect(broken, outcome::not_executed, remedy::retry_after_backoff));
}

// --- read-only servers ------------------------------------------------------------------------

TEST_CASE("1290/1792/1836: a read-only server reroutes to the primary", "[unit][classification]") {
    // fault-matrix.md: SET GLOBAL read_only=1, a non-SUPER write: 1290, connection alive.
    check_answer(1290, outcome::not_executed, remedy::reroute_to_primary);
    // 1792 and 1836 exist in both servers but the integration tests here do not produce them; see
    // https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_cant_execute_in_read_only_transaction
    // https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_read_only_mode
    check_answer(1792, outcome::not_executed, remedy::reroute_to_primary);
    check_answer(1836, outcome::not_executed, remedy::reroute_to_primary);
}

// --- plain statement errors -------------------------------------------------------------------

TEST_CASE("1064/1062/1146 fail the statement; the connection stays", "[unit][classification]") {
    check_answer(1064, outcome::failed, remedy::do_not_retry);  // measured over the JDBC API: 42000
    check_answer(1062, outcome::failed, remedy::do_not_retry);
    check_answer(1146, outcome::failed, remedy::do_not_retry);
}

TEST_CASE("other listed rows", "[unit][classification]") {
    check_answer(1615, outcome::not_executed, remedy::retry_now);    // re-prepare and run
    check_answer(2056, outcome::not_executed, remedy::retry_now);    // handle closed by a reconnect
    check_answer(1180, outcome::unknown, remedy::verify_then_retry);  // engine failed the COMMIT
    // 1158: the server could not read the whole command; it did not complete, the socket is gone.
    CHECK(at(1158) == expect(broken, outcome::statement_rolled_back, remedy::reconnect_and_retry));
    CHECK(at(1158, phase::read_result, true) ==
          expect(broken, outcome::transaction_rolled_back, remedy::retry_transaction));
    CHECK(at(1158, phase::commit, true) == expect(broken, outcome::transaction_rolled_back, remedy::retry_transaction));
    check_refused(3032, remedy::retry_after_backoff);  // MySQL offline_mode
    check_in_flight(2000);
    check_in_flight(2027);
    // 3101 (MySQL Group Replication conflict at COMMIT) behaves like a deadlock.
    CHECK(at(3101, phase::commit, true) == expect(usable, outcome::transaction_rolled_back, remedy::retry_transaction));
    CHECK(at(3101) == expect(usable, outcome::statement_rolled_back, remedy::retry_after_backoff));
    // 1412 "please retry transaction".
    CHECK(at(1412) == expect(usable, outcome::not_executed, remedy::retry_now));
    CHECK(at(1412, phase::read_result, true) == expect(usable, outcome::not_executed, remedy::retry_transaction));
    // 2020: the client's own max_allowed_packet, usually a result row: the statement had run.
    CHECK(at(2020) == expect(broken, outcome::unknown, remedy::do_not_retry));
}

// --- codes not in the table -------------------------------------------------------------------

TEST_CASE("unlisted codes: client errors are treated as lost connections, server errors as failures",
          "[unit][classification]") {
    check_in_flight(2999);  // unlisted client code: conservative
    check_in_flight(2100);
    check_in_flight(5013);  // MariaDB Connector/C's own range (CR_ERR_NET_READ)
    check_answer(1105, outcome::failed, remedy::do_not_retry);   // ER_UNKNOWN_ERROR, HY000
    check_answer(4999, outcome::failed, remedy::do_not_retry);
    CHECK(at(1105, phase::read_result, false, "HY000") == expect(usable, outcome::failed, remedy::do_not_retry));
    CHECK(at(1105).reason.find("unlisted") != std::string_view::npos);
}

TEST_CASE("unlisted server codes fall back on their SQLSTATE", "[unit][classification]") {
    // Class 08 (connection exception): like a lost connection.
    check_in_flight(1999, "08S01");
    check_in_flight(4999, "08004");
    // 40001 / 40000 (serialization failure / transaction rollback): like a deadlock.
    for (std::string_view s : {"40001", "40000"}) {
        CAPTURE(s);
        CHECK(at(4998, phase::read_result, false, s) ==
              expect(usable, outcome::statement_rolled_back, remedy::retry_after_backoff));
        CHECK(at(4998, phase::read_result, true, s) ==
              expect(usable, outcome::transaction_rolled_back, remedy::retry_transaction));
    }
    // 70100 (interrupted): usable, not retried — unless the code says otherwise (1927 is listed).
    check_interrupted_usable(4997, "70100");
    // Other SQLSTATEs do not change the default.
    check_answer(4996, outcome::failed, remedy::do_not_retry);
    CHECK(at(4996, phase::read_result, false, "42000") == expect(usable, outcome::failed, remedy::do_not_retry));
}

TEST_CASE("a listed code wins over its SQLSTATE; client codes ignore SQLSTATE", "[unit][classification]") {
    CHECK(at(1927, phase::read_result, false, "70100").connection == broken);
    CHECK(at(1317, phase::read_result, false, "08S01") == expect(usable, outcome::interrupted, remedy::do_not_retry));
    CHECK(at(1153, phase::read_result, false, "08S01") == expect(broken, outcome::not_executed, remedy::shrink_payload));
    // The client library always reports HY000, so an SQLSTATE on a client code is noise.
    CHECK(at(2999, phase::read_result, false, "70100") == expect(broken, outcome::unknown, remedy::verify_then_retry));
}

TEST_CASE("code 0: SQLSTATE if it tells, otherwise assume the worst", "[unit][classification]") {
    check_in_flight(0);
    check_in_flight(0, "HY000");
    CHECK(at(0, phase::read_result, false, "40001") ==
          expect(usable, outcome::statement_rolled_back, remedy::retry_after_backoff));
    CHECK(at(0, phase::read_result, false, "08S01") == expect(broken, outcome::unknown, remedy::verify_then_retry));
}

TEST_CASE("the table lookup finds every row and nothing else", "[unit][classification]") {
    for (const auto& row : lifeline::detail::error_table()) {
        CAPTURE(row.code);
        CHECK(lifeline::detail::find_error_row(row.code) == &row);
    }
    for (unsigned code : {0u, 1u, 999u, 1039u, 1041u, 2099u, 4032u, 65535u, 4294967295u}) {
        CAPTURE(code);
        CHECK(lifeline::detail::find_error_row(code) == nullptr);
    }
}

TEST_CASE("helpers", "[unit][classification]") {
    using lifeline::is_retry_safe;
    using lifeline::needs_reconnect;
    using lifeline::needs_transaction_retry;
    using lifeline::needs_verification;
    const classification lost = at(2013);
    CHECK_FALSE(is_retry_safe(lost, false));
    CHECK(is_retry_safe(lost, true));
    CHECK(needs_reconnect(lost));
    CHECK(needs_verification(lost, false));
    CHECK_FALSE(needs_verification(lost, true));

    const classification gone = at(2006);
    CHECK(is_retry_safe(gone, false));
    CHECK(needs_reconnect(gone));

    const classification tx_lost = at(2013, phase::read_result, true);
    CHECK(needs_transaction_retry(tx_lost));
    CHECK_FALSE(is_retry_safe(tx_lost, true));  // never one statement of a lost transaction

    CHECK_FALSE(is_retry_safe(at(1317), true));
    CHECK_FALSE(needs_reconnect(at(1317)));
    CHECK(is_retry_safe(at(1290), false));

    CHECK(lifeline::to_string(connection_state::broken) == "broken");
    CHECK(lifeline::to_string(outcome::transaction_rolled_back) == "transaction_rolled_back");
    CHECK(lifeline::to_string(remedy::verify_then_retry) == "verify_then_retry");
    CHECK(lifeline::to_string(static_cast<remedy>(200)) == "invalid");
}

TEST_CASE("classification equality compares the handling, not the reason text", "[unit][classification]") {
    const classification a{broken, outcome::unknown, remedy::verify_then_retry, "one"};
    const classification b{broken, outcome::unknown, remedy::verify_then_retry, "two"};
    const classification c{broken, outcome::unknown, remedy::retry_if_idempotent, "one"};
    CHECK(a == b);
    CHECK_FALSE(a != b);
    CHECK(a != c);
}

// --- the invariant, over the whole table ------------------------------------------------------

namespace {

// Empty if `c` is safe for a failure in phase `where`, else what is wrong. constexpr, so the
// same check runs in a static_assert below.
constexpr std::string_view violation(const classification& c, phase where, bool in_transaction) noexcept {
    const bool in_tx = in_transaction || where == phase::commit;
    if (c.reason.empty()) return "empty reason";
    if (c.statement == outcome::unknown) {
        const bool safe = c.action == remedy::verify_then_retry || c.action == remedy::retry_if_idempotent ||
                          c.action == remedy::do_not_retry || (c.action == remedy::retry_transaction && in_tx);
        if (!safe) return "outcome unknown, yet a non-idempotent statement would be re-run blindly";
        if (lifeline::is_retry_safe(c, false)) return "outcome unknown, yet is_retry_safe(non-idempotent)";
    }
    if (c.connection == connection_state::usable && c.action == remedy::reconnect_and_retry)
        return "usable connection, yet the remedy demands a reconnect";
    if (c.connection == connection_state::broken && c.action == remedy::retry_now)
        return "broken connection, yet the remedy is retry_now";
    if (c.action == remedy::retry_transaction && !in_tx) return "retry_transaction without a transaction";
    if (c.statement == outcome::transaction_rolled_back && !in_tx) return "transaction rolled back without a transaction";
    if (where == phase::connect) {
        if (c.connection != connection_state::broken || c.statement != outcome::not_executed)
            return "a failed connect must be broken and not_executed";
        if (c.action == remedy::retry_now || c.action == remedy::reconnect_and_retry ||
            c.action == remedy::retry_if_idempotent || c.action == remedy::verify_then_retry ||
            c.action == remedy::retry_transaction)
            return "a failed connect has nothing to re-run on";
    } else if (in_tx && c.connection == connection_state::broken) {
        if (c.statement != outcome::transaction_rolled_back && c.statement != outcome::unknown)
            return "broken connection inside a transaction, yet the transaction is not reported lost";
        if (where != phase::commit && c.action != remedy::retry_transaction && c.action != remedy::do_not_retry &&
            c.action != remedy::shrink_payload)
            return "one statement of a lost transaction would be retried on its own";
    }
    return {};
}

constexpr std::string_view sqlstates[] = {"", "HY000", "08S01", "08004", "40001", "40000", "70100", "42000", "25006"};
constexpr unsigned unlisted_codes[] = {0, 1, 999, 1105, 1999, 2100, 2999, 3999, 4999, 5013, 5999, 9999, 65535};

constexpr bool whole_table_is_safe() noexcept {
    for (const auto& row : lifeline::detail::error_table())
        for (phase where : all_phases)
            for (bool tx : {false, true})
                for (std::string_view s : sqlstates)
                    if (!violation(classify(failure{row.code, s, where, tx}), where, tx).empty()) return false;
    for (unsigned code : unlisted_codes)
        for (phase where : all_phases)
            for (bool tx : {false, true})
                for (std::string_view s : sqlstates)
                    if (!violation(classify(failure{code, s, where, tx}), where, tx).empty()) return false;
    return true;
}

// classify() is usable in constant expressions, and the invariant holds at compile time.
static_assert(classify(failure{2013, "HY000", phase::connect, false}) ==
              classification{connection_state::broken, outcome::not_executed, remedy::retry_after_backoff, {}});
static_assert(classify(failure{2013, "HY000", phase::read_result, false}).statement == outcome::unknown);
static_assert(whole_table_is_safe(), "classify() breaks the safety invariant for some code/phase/transaction");

}  // namespace

TEST_CASE("property: no code, phase or transaction state lets a statement run twice blindly",
          "[unit][classification]") {
    std::size_t checked = 0;
    const auto check = [&checked](unsigned code, std::string_view s, phase where, bool tx) {
        const classification c = classify(failure{code, s, where, tx});
        const std::string_view problem = violation(c, where, tx);
        INFO("code " << code << ", sqlstate '" << s << "', phase " << lifeline::to_string(where)
                     << ", in_transaction " << tx << ": " << Catch::StringMaker<classification>::convert(c));
        CHECK(problem == std::string_view{});
        ++checked;
    };
    for (const auto& row : lifeline::detail::error_table())
        for (phase where : all_phases)
            for (bool tx : {false, true})
                for (std::string_view s : sqlstates) check(row.code, s, where, tx);
    for (unsigned code : unlisted_codes)
        for (phase where : all_phases)
            for (bool tx : {false, true})
                for (std::string_view s : sqlstates) check(code, s, where, tx);
    CHECK(checked == (lifeline::detail::error_table().size() + std::size(unlisted_codes)) * 5 * 2 *
                         std::size(sqlstates));
}

TEST_CASE("property: every row is complete and cited", "[unit][classification]") {
    const auto table = lifeline::detail::error_table();
    REQUIRE(table.size() >= 28);
    for (const auto& row : table) {
        CAPTURE(row.code, row.symbol);
        CHECK_FALSE(row.symbol.empty());
        CHECK_FALSE(row.origin.empty());
        CHECK_FALSE(row.reason.empty());
        CHECK(row.reason.find('|') == std::string_view::npos);  // would break the README table
        CHECK(row.sqlstate.size() == 5);
        const bool mysql = row.citation.rfind("https://dev.mysql.com/doc/mysql-errors/", 0) == 0;
        const bool mariadb = row.citation.rfind("https://mariadb.com/kb/en/", 0) == 0;
        CHECK((mysql || mariadb));
        if (lifeline::detail::is_client_code(row.code)) {
            CHECK(row.symbol.rfind("CR_", 0) == 0);
            CHECK(row.sqlstate == "HY000");  // "for client errors, the SQLSTATE value is always HY000"
            CHECK(row.citation.find("client-error-reference") != std::string_view::npos);
        } else {
            CHECK(row.symbol.rfind("ER_", 0) == 0);
            CHECK(row.citation.find("client-error-reference") == std::string_view::npos);
        }
        if (mysql) {
            // The anchor is the lower-cased symbol.
            std::string anchor = "#error_";
            for (char ch : row.symbol) anchor += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
            CHECK(row.citation.substr(row.citation.size() - std::min(row.citation.size(), anchor.size())) == anchor);
        }
    }
}

TEST_CASE("every code the brief requires has a row", "[unit][classification]") {
    for (unsigned code : {2002u, 2003u, 2005u, 2006u, 2013u, 2055u, 2014u, 2026u, 1040u, 1203u, 1053u, 1927u,
                          4031u, 1317u, 1969u, 3024u, 1153u, 1301u, 1205u, 1213u, 1290u, 1792u, 1836u, 1045u,
                          1044u, 1064u, 1062u, 1146u}) {
        CAPTURE(code);
        CHECK(lifeline::detail::find_error_row(code) != nullptr);
    }
}
