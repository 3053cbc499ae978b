// The async loop (detail/async_core.hpp) and the async pool, over the fake non-blocking driver
// (tests/support/fake_async_driver.hpp): real sockets watched by Asio, the fake server's SQL
// semantics and faults, no MariaDB. Built in the TSan stage too (label async).
#include "fake_async_driver.hpp"

#include <lifeline/async_connection.hpp>
#include <lifeline/async_pool.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using clk = std::chrono::steady_clock;

namespace {

struct async_policy : default_policy {
    async_policy() {
        health.ping_after_idle = std::chrono::seconds(30);
        retry.deadline = std::chrono::seconds(5);
        retry.max_attempts = 4;
        budget.min_retries_per_second = 1000;
        backoff.initial = std::chrono::milliseconds(1);
        backoff.max = std::chrono::milliseconds(4);
        breaker.failure_threshold = 1000;
        // The fake server closes sockets between two calls microseconds apart: always probe (as
        // fake_fixture.hpp does for the blocking connection).
        health.probe_bypass = duration::zero();
    }
};

using adb = async_connection<fake_async, async_policy>;

connect_options numeric_options() {
    connect_options o;
    o.host = "127.0.0.1";  // async_connection accepts numeric addresses only
    o.port = 1;
    o.user = "u";
    return o;
}

struct op_outcome {
    std::optional<std::error_code> ec;
    result r;
    bool done() const { return ec.has_value(); }
};

// Declared in this order so that the io_context (and whatever handlers it still holds) goes
// before the fake server and its control.
struct rig {
    fake_server srv;
    fake_async_control ctl;
    asio::io_context io;
    std::vector<std::unique_ptr<adb>> dbs;

    rig() { fake_server::current() = &srv; }
    ~rig() {
        dbs.clear();
        io.restart();
        io.run();  // let abandoned handlers drain
        fake_server::current() = nullptr;
    }
    adb& make(async_policy p = {}, adb::session_spec spec = {}) {
        dbs.push_back(std::make_unique<adb>(io.get_executor(), numeric_options(), p, std::move(spec)));
        auto& d = *dbs.back();
        d.set_retry_budget(std::make_shared<retry_budget>(p.budget));
        d.set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
        d.set_endpoint_monitor(std::make_shared<endpoint_monitor>(p.probe));
        return d;
    }
    void run() {
        io.restart();
        io.run();
    }
    op_outcome query(adb& d, std::string sql, async_declaration decl = {}, call_options co = {}) {
        op_outcome o;
        d.async_query(sql, std::move(decl), co, [&](std::error_code ec, result r) {
            o.ec = ec;
            o.r = std::move(r);
        });
        run();
        return o;
    }
    void fail_after(int n, fault f) {
        std::lock_guard<std::recursive_mutex> lock(srv.m);
        for (int i = 0; i < n; ++i) srv.execute_faults.push_back(fault{});
        srv.execute_faults.push_back(f);
    }
    void connect(adb& d) {
        std::optional<std::error_code> ec;
        d.async_connect([&](std::error_code e) { ec = e; });
        run();
        REQUIRE(ec.has_value());
        REQUIRE_FALSE(*ec);
    }
};

std::chrono::milliseconds ms_since(clk::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - t0);
}

}  // namespace

TEST_CASE("async: a query completes through a socket wait, never inside the initiating call", "[async]") {
    rig t;
    t.ctl.latency_ms = 5;  // the answer comes from the responder thread
    auto& db = t.make();
    bool inline_call = true, called = false;
    result got;
    db.async_query("SELECT 1", lifeline::idempotent, [&](std::error_code ec, result r) {
        CHECK_FALSE(ec);
        called = true;
        got = std::move(r);
    });
    inline_call = called;
    t.run();
    CHECK_FALSE(inline_call);
    CHECK(called);
    CHECK(got.scalar() == std::optional<std::string>("1"));
    CHECK(got.attempts == 1);
    CHECK(t.ctl.waits >= 2);  // connect + statement (+ session setup) each waited on the socket
    CHECK(db.watched_fd() == db.native()->client_fd);
    CHECK(db.stats().reconnects == 1);
}

TEST_CASE("async: a second operation fails with operation_in_progress and leaves the first alone", "[async]") {
    rig t;
    t.ctl.latency_ms = 5;
    auto& db = t.make();
    op_outcome first, second;
    db.async_query("SELECT 1", lifeline::idempotent, [&](std::error_code ec, result r) {
        first.ec = ec;
        first.r = std::move(r);
    });
    db.async_query("SELECT 2", lifeline::idempotent, [&](std::error_code ec, result) {
        second.ec = ec;
        CHECK_FALSE(first.done());  // refused at once, while the first is still running
    });
    CHECK(db.busy());
    t.run();
    REQUIRE(second.done());
    CHECK(*second.ec == errc::operation_in_progress);
    REQUIRE(first.done());
    CHECK_FALSE(*first.ec);
    CHECK(first.r.scalar() == std::optional<std::string>("1"));
    CHECK(t.srv.count_log("exec:SELECT 2") == 0);
}

TEST_CASE("async: an idempotent SELECT survives a broken connection; the new socket is watched", "[async]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    const int old_fd = db.watched_fd();
    const auto old_id = db.connection_id();
    t.fail_after(0, make_fault(2013, phase::read_result, true));
    auto o = t.query(db, "SELECT 1", lifeline::idempotent);
    REQUIRE(o.done());
    CHECK_FALSE(*o.ec);
    CHECK(o.r.attempts == 2);
    CHECK(t.srv.connects == 2);
    CHECK(db.connection_id() != old_id);
    CHECK(db.watched_fd() == db.native()->client_fd);  // fetched again after the reconnect
    CHECK(old_fd >= 0);
    CHECK(t.ctl.bad_closes == 0);
}

TEST_CASE("async: a non-idempotent write with an unknown outcome is not re-sent", "[async]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    t.fail_after(0, make_fault(2013, phase::read_result, true, true));  // applied, then the answer was lost
    auto o = t.query(db, "INSERT INTO t VALUES (1)");
    REQUIRE(o.done());
    CHECK(*o.ec == errc::outcome_unknown);
    CHECK(db.last_diagnostics().code == 2013);
    CHECK(t.srv.times("INSERT INTO t VALUES (1)") == 1);
}

TEST_CASE("async: verify_by_query settles an unknown write; re-sent exactly once when not applied", "[async]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    const std::string ins = "INSERT INTO orders VALUES ('A-7')";
    t.fail_after(0, make_fault(2013, phase::read_result, true, false));  // lost before it ran
    int checks = 0;
    auto o = t.query(db, ins, verify_by_query("SELECT COUNT(*) FROM orders WHERE ref = 'A-7'", [&](const result& r) {
                         ++checks;
                         CHECK(r.rows.size() == 1);  // the query's own answer reached the check
                         return t.srv.times(ins) == 0 ? write_check::not_applied : write_check::applied;
                     }));
    REQUIRE(o.done());
    CHECK_FALSE(*o.ec);
    CHECK(checks == 1);
    CHECK(t.srv.times(ins) == 1);
    CHECK(o.r.attempts == 2);
    // The old session was fenced before the check (same server process).
    CHECK(t.srv.count_log("exec:SELECT IS_USED_LOCK(") == 1);
}

TEST_CASE("async: a frozen server is cut at the deadline and the handle abandoned", "[async]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    const int fd = db.watched_fd();
    t.ctl.frozen = true;
    const auto t0 = clk::now();
    auto o = t.query(db, "SELECT 1", lifeline::idempotent, call_options{300ms});
    const auto took = ms_since(t0);
    REQUIRE(o.done());
    CHECK(*o.ec == errc::deadline_exceeded);
    CHECK(took >= 300ms);  // timers never fire early; the upper bound is the integration tests' job
    CHECK(t.ctl.abandons >= 1);
    CHECK_FALSE(db.is_open());     // never reused after a step was abandoned
    CHECK(db.watched_fd() == -1);  // released before the driver closed it
    CHECK(fd >= 0);
    CHECK(t.ctl.bad_closes == 0);
    // A write in flight when the deadline cut it: unknown, and said so.
    t.ctl.frozen = false;
    t.connect(db);
    t.ctl.frozen = true;
    auto w = t.query(db, "DO 1", {}, call_options{200ms});
    REQUIRE(w.done());
    CHECK(*w.ec == errc::outcome_unknown);
    CHECK(db.last_diagnostics().client_message.find("deadline") != std::string::npos);
}

TEST_CASE("async: the driver's own io timeout (io_wait::timeout) is honoured by the timer", "[async]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    t.ctl.driver_timeout_ms = 100;
    const auto t0 = clk::now();
    auto o = t.query(db, "INSERT INTO t SELECT 'HANG'", {}, call_options{5s});
    REQUIRE(o.done());
    CHECK(*o.ec == errc::outcome_unknown);  // 2013 from the driver's read timeout: may have run
    CHECK(t.ctl.driver_timeouts == 1);
    CHECK(ms_since(t0) >= 100ms);
    CHECK(ms_since(t0) < 4s);  // long before the operation's deadline
}

TEST_CASE("async: one io thread keeps serving other connections while one waits", "[async]") {
    rig t;
    auto& a = t.make();
    auto& b = t.make();
    t.connect(a);
    t.connect(b);
    int b_done = 0, b_done_when_a_finished = -1;
    std::optional<std::error_code> a_ec;
    a.async_query("SELECT 'HANG'", lifeline::idempotent, call_options{400ms}, [&](std::error_code ec, result) {
        a_ec = ec;
        b_done_when_a_finished = b_done;
    });
    std::function<void()> next = [&] {
        b.async_query("SELECT 1", lifeline::idempotent, [&](std::error_code ec, result) {
            CHECK_FALSE(ec);
            if (++b_done < 20) next();
        });
    };
    next();
    t.run();
    REQUIRE(a_ec.has_value());
    CHECK(*a_ec == errc::deadline_exceeded);
    CHECK(b_done == 20);
    CHECK(b_done_when_a_finished == 20);  // all of b's work ran while a was waiting
}

TEST_CASE("async: cancel() mid-statement closes the session and tells the truth", "[async]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    SECTION("a write that was sent: outcome_unknown") {
        op_outcome o;
        db.async_execute("INSERT INTO t SELECT 'HANG'", [&](std::error_code ec, result) { o.ec = ec; });
        asio::post(t.io, [&] { db.cancel(); });
        t.run();
        REQUIRE(o.done());
        CHECK(*o.ec == errc::outcome_unknown);
        CHECK(db.last_diagnostics().client_message.find("cancel") != std::string::npos);
    }
    SECTION("a read: operation_canceled") {
        op_outcome o;
        db.async_query("SELECT 'HANG'", lifeline::idempotent, [&](std::error_code ec, result) { o.ec = ec; });
        asio::post(t.io, [&] { db.cancel(); });
        t.run();
        REQUIRE(o.done());
        CHECK(*o.ec == std::errc::operation_canceled);
    }
    CHECK_FALSE(db.is_open());
    CHECK(t.ctl.abandons == 1);
    CHECK_FALSE(db.busy());
    auto again = t.query(db, "SELECT 1", lifeline::idempotent);  // the next operation reconnects
    REQUIRE(again.done());
    CHECK_FALSE(*again.ec);
    CHECK(t.srv.connects == 2);
    CHECK(t.ctl.bad_closes == 0);
}

TEST_CASE("async: cancel() during a backoff wait leaves the session open and usable", "[async]") {
    rig t;
    async_policy p;
    p.backoff.initial = std::chrono::seconds(10);
    p.backoff.max = std::chrono::seconds(10);
    p.backoff.kind = jitter::none;
    p.retry.deadline = std::chrono::seconds(30);
    auto& db = t.make(p);
    t.connect(db);
    const auto id = db.connection_id();
    t.fail_after(0, make_fault(1213, phase::read_result, false, false, "40001"));  // deadlock: retry after backoff
    op_outcome o;
    db.async_query("UPDATE t SET v = 1", lifeline::idempotent, [&](std::error_code ec, result) { o.ec = ec; });
    // Cancel once the operation sits in its backoff wait (the retry is counted when it starts).
    std::function<void()> poll = [&] {
        if (db.stats().retries > 0) return db.cancel();
        asio::post(t.io, poll);
    };
    asio::post(t.io, poll);
    const auto t0 = clk::now();
    t.run();
    REQUIRE(o.done());
    CHECK(*o.ec == std::errc::operation_canceled);
    CHECK(ms_since(t0) < 5s);  // not the 10 s backoff
    CHECK(db.is_open());
    CHECK(db.connection_id() == id);
    CHECK(t.ctl.abandons == 0);
    CHECK(db.last_diagnostics().client_message.find("usable") != std::string::npos);
    auto again = t.query(db, "SELECT 1", lifeline::idempotent);
    REQUIRE(again.done());
    CHECK_FALSE(*again.ec);
    CHECK(t.srv.connects == 1);
}

TEST_CASE("async: KILL while idle is caught before sending; the INSERT runs once", "[async]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    t.srv.kill_all();  // the server closes its end of the idle session
    auto o = t.query(db, "INSERT INTO t VALUES (7)");  // not idempotent, and no error
    REQUIRE(o.done());
    CHECK_FALSE(*o.ec);
    CHECK(o.r.attempts == 1);
    CHECK(t.srv.times("INSERT INTO t VALUES (7)") == 1);
    CHECK(t.srv.connects == 2);
}

TEST_CASE("async: the stream_descriptor never closes the driver's socket", "[async]") {
    rig t;
    {
        auto& db = t.make();
        for (int i = 0; i < 5; ++i) {
            auto o = t.query(db, "SELECT 1", lifeline::idempotent);
            REQUIRE(o.done());
            CHECK_FALSE(*o.ec);
            t.srv.kill_all();  // the next query reconnects: a new socket, often the same number
        }
        t.ctl.frozen = true;  // and one abandoned mid-step
        auto cut = t.query(db, "SELECT 1", lifeline::idempotent, call_options{100ms});
        CHECK(*cut.ec == errc::deadline_exceeded);
        t.ctl.frozen = false;
        t.dbs.clear();
        t.run();
    }
    std::lock_guard<std::mutex> lock(t.ctl.m);
    CHECK(t.ctl.opened_fds.size() >= 5);
    CHECK(t.ctl.closed_fds.size() == t.ctl.opened_fds.size());  // each socket closed once, by its driver
    CHECK(t.ctl.bad_closes == 0);                               // never closed behind the driver's back
}

TEST_CASE("async: the observer hears what the blocking connection reports", "[async]") {
    struct counting : observer {
        int attempts = 0, retries = 0, reconnects = 0, restored = 0, gave_up = 0;
        std::vector<reconnect_cause> causes;
        void on_attempt(const attempt_event&) override { ++attempts; }
        void on_retry(const retry_event&) override { ++retries; }
        void on_reconnect(const reconnect_event& e) override {
            ++reconnects;
            causes.push_back(e.cause);
        }
        void on_session_restored(const session_restored_event&) override { ++restored; }
        void on_gave_up(const gave_up_event&) override { ++gave_up; }
    };
    rig t;
    adb::session_spec spec;
    spec.time_zone = "+00:00";
    auto& db = t.make(async_policy{}, spec);
    auto obs = std::make_shared<counting>();
    db.set_observer(obs);
    t.fail_after(0, make_fault(2013, phase::read_result, true));
    auto o = t.query(db, "SELECT 1", lifeline::idempotent);
    REQUIRE(o.done());
    CHECK_FALSE(*o.ec);
    CHECK(obs->attempts == 2);
    CHECK(obs->retries == 1);
    CHECK(obs->reconnects == 2);  // the first connect, and the one after the failure
    CHECK(obs->restored == 2);    // the registered time zone, replayed each time
    CHECK(obs->gave_up == 0);
    t.fail_after(0, make_fault(2013, phase::read_result, true, true));
    auto w = t.query(db, "INSERT INTO t VALUES (1)");
    CHECK(*w.ec == errc::outcome_unknown);
    CHECK(obs->gave_up == 1);
    CHECK(db.stats().gave_up == 1);
}

// --- transactions --------------------------------------------------------------------------------

namespace {
const char* move_money = "UPDATE accounts SET balance = balance - 10 WHERE id = 1";

struct tx_outcome {
    std::optional<std::error_code> ec;
    async_transaction_result r;
};

tx_outcome run_tx(rig& t, adb& db, transaction_options o, int& runs, std::vector<std::error_code>* stmt_errors = nullptr) {
    tx_outcome out;
    db.async_transaction(
        [&](adb::transaction_context& tx, adb::body_done done) {
            ++runs;
            tx.async_execute(move_money, [&, done](std::error_code ec, result) {
                if (stmt_errors) stmt_errors->push_back(ec);
                done();
            });
        },
        o, [&](std::error_code ec, async_transaction_result r) {
            out.ec = ec;
            out.r = std::move(r);
        });
    t.run();
    return out;
}

int marker_rows(fake_server& srv) {
    int n = 0;
    for (auto& kv : srv.applied)
        if (kv.first.rfind("INSERT INTO lifeline_commit_marker", 0) == 0) n += kv.second;
    return n;
}
}  // namespace

TEST_CASE("async: a transaction commits; its statements run through the context", "[async][transaction]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    int runs = 0;
    auto o = run_tx(t, db, {}, runs);
    REQUIRE(o.ec.has_value());
    CHECK_FALSE(*o.ec);
    CHECK(runs == 1);
    CHECK(o.r.attempts == 1);
    CHECK(t.srv.times(move_money) == 1);
    CHECK_FALSE(db.in_transaction());
}

TEST_CASE("async: a transaction whose statement broke the connection is replayed once on a new session",
          "[async][transaction]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    t.fail_after(1, make_fault(2013, phase::read_result, true, true));  // START ok, the UPDATE ran, link died
    int runs = 0;
    std::vector<std::error_code> errs;
    auto o = run_tx(t, db, lifeline::replayable, runs, &errs);
    REQUIRE(o.ec.has_value());
    CHECK_FALSE(*o.ec);
    CHECK(runs == 2);
    CHECK(o.r.attempts == 2);
    REQUIRE(errs.size() == 2);
    CHECK(errs[0] == make_driver_error_code(2013));  // the function saw its statement fail
    CHECK_FALSE(errs[1]);
    CHECK(t.srv.connects == 2);
    CHECK(t.srv.times(move_money) == 1);  // the first run's write died with its transaction
}

TEST_CASE("async: a lost COMMIT that landed is resolved by its token, not replayed", "[async][transaction]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    t.fail_after(4, make_fault(2013, phase::read_result, true, true));  // CREATE marker, START, token, UPDATE, COMMIT
    int runs = 0;
    auto o = run_tx(t, db, lifeline::replayable_resolved, runs);
    REQUIRE(o.ec.has_value());
    CHECK_FALSE(*o.ec);
    CHECK(runs == 1);
    CHECK(o.r.commit_resolved);
    CHECK(t.srv.times(move_money) == 1);
    CHECK(marker_rows(t.srv) == 1);
    CHECK(t.srv.count_log("exec:SELECT IS_USED_LOCK(") == 1);  // fenced before the lookup
}

TEST_CASE("async: a lost COMMIT that did not land is resolved and replayed once", "[async][transaction]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    t.fail_after(4, make_fault(2013, phase::read_result, true, false));
    int runs = 0;
    auto o = run_tx(t, db, lifeline::replayable_resolved, runs);
    REQUIRE(o.ec.has_value());
    CHECK_FALSE(*o.ec);
    CHECK(runs == 2);
    CHECK(o.r.commit_resolved);
    CHECK(t.srv.times(move_money) == 1);
}

TEST_CASE("async: a lost COMMIT without resolution is commit_unknown, nothing re-sent", "[async][transaction]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    t.fail_after(2, make_fault(2013, phase::read_result, true, true));  // START, UPDATE, COMMIT lost
    int runs = 0;
    auto o = run_tx(t, db, lifeline::replayable, runs);
    REQUIRE(o.ec.has_value());
    CHECK(*o.ec == errc::commit_unknown);
    CHECK(runs == 1);
    CHECK(t.srv.times(move_money) == 1);
}

TEST_CASE("async: the function's own exception rolls back, is not replayed, and is handed back", "[async][transaction]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    int runs = 0;
    tx_outcome out;
    db.async_transaction(
        [&](adb::transaction_context& tx, adb::body_done done) {
            ++runs;
            tx.async_execute(move_money, [done](std::error_code, result) {
                done(std::make_exception_ptr(std::runtime_error("business rule says no")));
            });
        },
        lifeline::replayable, [&](std::error_code ec, async_transaction_result r) {
            out.ec = ec;
            out.r = std::move(r);
        });
    t.run();
    REQUIRE(out.ec.has_value());
    CHECK(*out.ec == std::errc::operation_canceled);
    REQUIRE(out.r.exception);
    CHECK_THROWS_WITH(std::rethrow_exception(out.r.exception), "business rule says no");
    CHECK(runs == 1);
    CHECK(t.srv.times(move_money) == 0);  // rolled back
    CHECK(t.srv.count_log("exec:ROLLBACK") == 1);
    CHECK(db.is_open());
}

TEST_CASE("async: after a failed statement later ones are refused unsent, COMMIT never goes", "[async][transaction]") {
    rig t;
    auto& db = t.make();
    t.connect(db);
    t.fail_after(1, make_fault(1205, phase::read_result, false, false));  // lock wait timeout, swallowed below
    std::vector<std::error_code> errs;
    tx_outcome out;
    db.async_transaction(
        [&](adb::transaction_context& tx, adb::body_done done) {
            tx.async_execute(move_money, [&, done](std::error_code ec, result) {
                errs.push_back(ec);  // the function ignores the failure and goes on
                tx.async_execute("INSERT INTO audit VALUES (1)", [&, done](std::error_code ec2, result) {
                    errs.push_back(ec2);
                    done();
                });
            });
        },
        transaction_options{}, [&](std::error_code ec, async_transaction_result r) {
            out.ec = ec;
            out.r = std::move(r);
        });
    t.run();
    REQUIRE(errs.size() == 2);
    CHECK(errs[0] == make_driver_error_code(1205));
    CHECK(errs[1] == make_driver_error_code(1205));  // refused unsent, with the failure that poisoned it
    REQUIRE(out.ec.has_value());
    CHECK(*out.ec == make_driver_error_code(1205));
    CHECK(t.srv.count_log("exec:INSERT INTO audit") == 0);
    CHECK(t.srv.count_log("exec:COMMIT") == 0);
}

TEST_CASE("async: use_future works from another thread", "[async]") {
    rig t;
    auto& db = t.make();
    auto work = asio::make_work_guard(t.io);
    std::thread runner([&] { t.io.run(); });
    // Initiated on the connection's executor (a connection is not thread-safe); awaited here.
    auto f = asio::post(t.io, asio::use_future([&] { return db.async_query("SELECT 1", lifeline::idempotent, asio::use_future); }))
                 .get();
    auto [ec, r] = f.get();
    CHECK_FALSE(ec);
    CHECK(r.scalar() == std::optional<std::string>("1"));
    auto busy = asio::post(t.io, asio::use_future([&] { return db.busy(); }));
    CHECK_FALSE(busy.get());
    asio::post(t.io, [&] { t.dbs.clear(); });
    work.reset();
    runner.join();
}

TEST_CASE("async: 16 connections on two io threads (each on its strand), latency from another thread",
          "[async][concurrency]") {
    fake_server srv;
    fake_server::current() = &srv;
    fake_async_control ctl;
    ctl.latency_ms = 1;
    {
        asio::io_context io;
        std::vector<std::unique_ptr<adb>> dbs;
        std::atomic<int> ok{0}, failed{0};
        std::vector<std::function<void(int)>> loops(16);
        for (int i = 0; i < 16; ++i) {
            async_policy p;
            dbs.push_back(std::make_unique<adb>(asio::make_strand(io), numeric_options(), p));
            dbs.back()->set_retry_budget(std::make_shared<retry_budget>(p.budget));
            dbs.back()->set_endpoint_monitor(std::make_shared<endpoint_monitor>(p.probe));
            loops[static_cast<std::size_t>(i)] = [&, i](int left) {
                if (left == 0) return;
                dbs[static_cast<std::size_t>(i)]->async_query("SELECT 1", lifeline::idempotent, [&, i, left](std::error_code ec, result) {
                    (ec ? failed : ok)++;
                    loops[static_cast<std::size_t>(i)](left - 1);
                });
            };
            asio::post(dbs.back()->get_executor(), [&, i] { loops[static_cast<std::size_t>(i)](10); });
        }
        std::thread second([&] { io.run(); });
        io.run();
        second.join();
        CHECK(ok == 160);
        CHECK(failed == 0);
        dbs.clear();
        io.restart();
        io.run();
    }
    fake_server::current() = nullptr;
}

// --- the pool -------------------------------------------------------------------------------------

namespace {
using apool = async_pool<fake_async, async_policy>;

struct pool_rig {
    fake_server srv;
    fake_async_control ctl;
    asio::io_context io;
    std::unique_ptr<apool> pool;
    explicit pool_rig(async_pool_options po = {}) {
        fake_server::current() = &srv;
        async_policy p;
        po.budget = std::make_shared<retry_budget>(p.budget);
        po.breaker = std::make_shared<circuit_breaker>(p.breaker);
        po.monitor = std::make_shared<endpoint_monitor>(p.probe);
        pool = std::make_unique<apool>(io.get_executor(), numeric_options(), po, p);
    }
    ~pool_rig() {
        pool.reset();
        io.restart();
        io.run();
        fake_server::current() = nullptr;
    }
    void run() {
        io.restart();
        io.run();
    }
};
}  // namespace

TEST_CASE("async pool: 32 borrowers share 4 connections; a changed session is reset before the next borrower",
          "[async][pool]") {
    async_pool_options po;
    po.max_size = 4;
    pool_rig t(po);
    t.ctl.latency_ms = 1;
    int ok = 0, failed = 0;
    std::vector<int> order;
    for (int i = 0; i < 32; ++i) {
        t.pool->async_borrow(5s, [&, i](std::error_code ec, apool::handle h) {
            if (ec) {
                ++failed;
                return;
            }
            auto* c = h.get();
            // Every other borrower leaves session state behind.
            const std::string sql = i % 2 ? "SET @leak = 1" : "SELECT 1";
            c->async_query(sql, lifeline::idempotent, [&, h = std::move(h)](std::error_code qec, result) mutable {
                if (qec) ++failed;
                else ++ok;
                h.reset();  // back to the pool
            });
        });
    }
    t.run();
    CHECK(ok == 32);
    CHECK(failed == 0);
    auto s = t.pool->stats();
    CHECK(s.created <= 4);
    CHECK(s.borrows == 32);
    CHECK(s.in_use == 0);
    CHECK(s.resets >= 16);   // every SET was undone on return
    CHECK(t.srv.resets >= 16);
    CHECK(s.reset_failures == 0);
}

TEST_CASE("async pool: against a down server connects are single-flight and borrows end in time",
          "[async][pool]") {
    async_pool_options po;
    po.max_size = 8;
    pool_rig t(po);
    t.ctl.connect_latency_ms = 20;  // each connect attempt takes a while, then is refused
    t.srv.down = true;
    int exhausted = 0, other = 0;
    std::string why;
    const auto t0 = clk::now();
    for (int i = 0; i < 16; ++i)
        t.pool->async_borrow(300ms, [&](std::error_code ec, apool::handle h) {
            if (ec == errc::pool_exhausted) {
                ++exhausted;
                why = h.diag().client_message;
            } else {
                ++other;
            }
        });
    t.run();
    CHECK(exhausted == 16);
    CHECK(other == 0);
    CHECK(t.ctl.max_connecting == 1);  // one connect at a time, whatever the number of borrowers
    CHECK(t.srv.connect_attempts >= 1);
    CHECK(ms_since(t0) < 3s);
    // Names the last connect error: the refusal (2003), or a connect the borrow's own timeout cut
    // while it waited for the slow answer (2013).
    INFO(why);
    CHECK((why.find("[2003]") != std::string::npos || why.find("[2013]") != std::string::npos));
    // The server comes back: the next borrow gets a connection.
    t.srv.down = false;
    bool got = false;
    t.pool->async_borrow(2s, [&](std::error_code ec, apool::handle h) { got = !ec && h; });
    t.run();
    CHECK(got);
}

TEST_CASE("async pool: a connection killed while idle in the pool is reconnected, never handed out dead",
          "[async][pool]") {
    pool_rig t;
    std::uint64_t first_id = 0, second_id = 0;
    bool second_ok = false;
    t.pool->async_borrow(2s, [&](std::error_code ec, apool::handle h) {
        REQUIRE_FALSE(ec);
        first_id = h->connection_id();
    });
    t.run();
    t.srv.kill_all();
    t.pool->async_borrow(2s, [&](std::error_code ec, apool::handle h) {
        REQUIRE_FALSE(ec);
        second_id = h->connection_id();
        h->async_query("SELECT 1", lifeline::idempotent, [&, h = std::move(h)](std::error_code qec, result r) mutable {
            second_ok = !qec && r.attempts == 1;  // no failed attempt: it was valid when handed out
        });
    });
    t.run();
    CHECK(first_id != 0);
    CHECK(second_id != first_id);
    CHECK(second_ok);
    CHECK(t.pool->stats().broken >= 1);
}
