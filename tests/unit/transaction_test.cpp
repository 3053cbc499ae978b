// transaction(): replay on deadlock / lost connection, and the lost COMMIT resolved by token +
// fencing — driven by the scripted fake driver, whose "START TRANSACTION" keeps writes pending
// until COMMIT, so a cut COMMIT really decides whether they exist.
#include "fake_fixture.hpp"

#include <lifeline/connection.hpp>

#include <catch2/catch.hpp>

#include <memory>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;

namespace {

struct fixture : fake_fixture {
    fixture() { db->connect(); }
};

const char* move_money = "UPDATE accounts SET balance = balance - 10 WHERE id = 1";

}  // namespace

TEST_CASE("transaction: commits once when nothing goes wrong", "[unit][retry][transaction]") {
    fixture f;
    int runs = 0;
    auto r = f.db->transaction([&](auto& tx) {
        ++runs;
        tx.execute(move_money);
    });
    CHECK(r.attempts == 1);
    CHECK(runs == 1);
    CHECK(f.srv.applied[move_money] == 1);
}

TEST_CASE("transaction: a deadlock replays the whole transaction when declared replayable", "[unit][retry][transaction]") {
    fixture f;
    f.fail_after(1, make_fault(1213, phase::read_result, false, false, "40001"));  // START ok, UPDATE deadlocks
    int runs = 0;
    auto r = f.db->transaction([&](auto& tx) {
        ++runs;
        tx.execute(move_money);
    }, lifeline::replayable);
    CHECK(r.attempts == 2);
    CHECK(runs == 2);
    CHECK(f.srv.applied[move_money] == 1);
}

TEST_CASE("transaction: not declared replayable, a deadlock is reported, nothing committed", "[unit][retry][transaction]") {
    fixture f;
    f.fail_after(1, make_fault(1213, phase::read_result, false, false, "40001"));
    int runs = 0;
    std::error_code ec;
    diagnostics d;
    f.db->transaction([&](auto& tx) {
        ++runs;
        tx.execute(move_money);
    }, transaction_options{}, ec, d);
    CHECK(ec == make_driver_error_code(1213));
    CHECK(d.code == 1213);
    CHECK(runs == 1);
    CHECK(f.srv.applied.count(move_money) == 0);
}

TEST_CASE("transaction: a connection lost before COMMIT replays on a new session", "[unit][retry][transaction]") {
    fixture f;
    f.fail_after(1, make_fault(2013, phase::read_result, true, true));  // the UPDATE ran, then the link died
    int runs = 0;
    auto r = f.db->transaction([&](auto& tx) {
        ++runs;
        tx.execute(move_money);
    }, lifeline::replayable);
    CHECK(r.attempts == 2);
    CHECK(f.srv.connects == 2);
    CHECK(f.srv.applied[move_money] == 1);  // the first run's write died with its transaction
}

TEST_CASE("transaction: a lost COMMIT that landed is found by its token, not replayed", "[unit][retry][transaction]") {
    fixture f;
    // CREATE marker, START, INSERT token, UPDATE, then COMMIT: applied, answer lost.
    f.fail_after(4, make_fault(2013, phase::read_result, true, true));
    int runs = 0;
    auto r = f.db->transaction([&](auto& tx) {
        ++runs;
        tx.execute(move_money);
    }, lifeline::replayable_resolved);
    CHECK(runs == 1);
    CHECK(r.commit_resolved);
    CHECK(f.srv.applied[move_money] == 1);
    CHECK(f.marker_rows() == 1);
    // Fenced before the lookup: the old session was inspected on the same server process (its
    // lock was free and its id unused: it had ended, nothing needed killing), then the token.
    auto at = [&](std::string_view prefix) {
        for (std::size_t i = 0; i < f.srv.log.size(); ++i)
            if (f.srv.log[i].rfind(prefix, 0) == 0) return static_cast<long>(i);
        return -1L;
    };
    CHECK(at("exec:SELECT IS_USED_LOCK(") >= 0);
    CHECK(at("exec:SELECT IS_USED_LOCK(") < at("exec:SELECT COUNT(*) FROM lifeline_commit_marker"));
}

TEST_CASE("transaction: a lost COMMIT that did not land is replayed exactly once", "[unit][retry][transaction]") {
    fixture f;
    f.fail_after(4, make_fault(2013, phase::read_result, true, false));
    int runs = 0;
    auto r = f.db->transaction([&](auto& tx) {
        ++runs;
        tx.execute(move_money);
    }, lifeline::replayable_resolved);
    CHECK(runs == 2);
    CHECK(r.commit_resolved);
    CHECK(f.srv.applied[move_money] == 1);
}

TEST_CASE("transaction: a lost COMMIT without resolution is commit_unknown", "[unit][retry][transaction]") {
    fixture f;
    f.fail_after(2, make_fault(2013, phase::read_result, true, true));  // START, UPDATE, COMMIT lost
    std::error_code ec;
    diagnostics d;
    f.db->transaction([&](auto& tx) { tx.execute(move_money); }, lifeline::replayable, ec, d);
    CHECK(ec == errc::commit_unknown);
    CHECK(d.where == phase::commit);
}

TEST_CASE("transaction: a resolved-but-not-replayable lost COMMIT that did not land says so", "[unit][retry][transaction]") {
    fixture f;
    f.fail_after(4, make_fault(2013, phase::read_result, true, false));
    transaction_options o;
    o.resolve_commit = true;
    std::error_code ec;
    diagnostics d;
    auto r = f.db->transaction([&](auto& tx) { tx.execute(move_money); }, o, ec, d);
    CHECK(ec == errc::transaction_lost);  // certainly not committed, and not allowed to replay
    CHECK(r.commit_resolved);
    CHECK(f.srv.applied.count(move_money) == 0);
}

TEST_CASE("transaction: a syntax error is not replayed; the transaction is rolled back", "[unit][retry][transaction]") {
    fixture f;
    f.fail_after(1, make_fault(1064, phase::read_result, false, false, "42000"));
    std::error_code ec;
    diagnostics d;
    int runs = 0;
    f.db->transaction([&](auto& tx) {
        ++runs;
        tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1");
        tx.execute("SELEC 1");
    }, lifeline::replayable, ec, d);
    CHECK(ec == make_driver_error_code(1064));
    CHECK(runs == 1);
    CHECK(f.srv.log.back() == "exec:ROLLBACK");
}

TEST_CASE("transaction: the function's own exception rolls back and propagates", "[unit][retry][transaction]") {
    fixture f;
    CHECK_THROWS_WITH(f.db->transaction([&](auto& tx) {
        tx.execute(move_money);
        throw std::runtime_error("business rule");
    }, lifeline::replayable), "business rule");
    CHECK(f.srv.applied.count(move_money) == 0);
    CHECK(f.srv.log.back() == "exec:ROLLBACK");
}
