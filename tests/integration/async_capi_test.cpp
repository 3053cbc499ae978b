// lifeline::async_connection<capi> against the real server: the fault-matrix rows of the blocking
// connection's tests (connection_capi_test.cpp, commit_cut_test.cpp), with the same expectations,
// through the non-blocking driver on one io_context thread (label async).
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/async_pool.hpp>
#include <lifeline/driver/capi_async.hpp>
#include <lifeline/testing/fault_proxy.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>

#include <dirent.h>

#include <chrono>
#include <functional>
#include <optional>
#include <thread>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using clk = std::chrono::steady_clock;

namespace {

using adb = async_connection<capi>;

struct answer {
    std::optional<std::error_code> ec;
    result r;
};

struct tx_answer {
    std::optional<std::error_code> ec;
    async_transaction_result r;
};

// One io_context, run on the test's thread until the operation's handler ran.
struct rig {
    server srv = server::attach();
    asio::io_context io;
    std::unique_ptr<adb> db;

    explicit rig(default_policy p = {}, connect_options o = {}) {
        if (o.user.empty()) o = options_for(srv.where());
        db = make(p, o);
    }
    ~rig() {
        db.reset();
        io.restart();
        io.run();
    }
    // Own budget, breaker and endpoint monitor per connection: one test's outage does not starve the next.
    std::unique_ptr<adb> make(default_policy p, const connect_options& o) {
        auto d = std::make_unique<adb>(io.get_executor(), o, p);
        d->set_retry_budget(std::make_shared<retry_budget>(p.budget));
        d->set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
        d->set_endpoint_monitor(std::make_shared<endpoint_monitor>(p.probe));
        return d;
    }
    void run() {
        io.restart();
        io.run();
    }
    answer query(const std::string& sql, async_declaration decl = {}, call_options co = {}) { return query(*db, sql, std::move(decl), co); }
    answer query(adb& d, const std::string& sql, async_declaration decl = {}, call_options co = {}) {
        answer a;
        d.async_query(sql, std::move(decl), co, [&](std::error_code ec, result r) {
            a.ec = ec;
            a.r = std::move(r);
        });
        run();
        REQUIRE(a.ec.has_value());
        return a;
    }
    std::error_code connect(call_options co = {}) {
        std::optional<std::error_code> ec;
        db->async_connect(co, [&](std::error_code e) { ec = e; });
        run();
        REQUIRE(ec.has_value());
        return *ec;
    }
    std::string rows(const std::string& table) {
        auto m = capi_connect(srv.where());
        return capi_scalar(m.get(), "SELECT COUNT(*) FROM " + table);
    }
    void sql(const std::string& s) {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), s);
    }
};

struct thaw_guard {
    server& s;
    ~thaw_guard() { s.thaw(); }
};

std::chrono::milliseconds ms_since(clk::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - t0);
}

std::size_t open_fds() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d)) ++n;
        ::closedir(d);
    }
    return n;
}

}  // namespace

// ---- KILL CONNECTION ------------------------------------------------------------------------------

TEST_CASE("async capi: an idempotent SELECT survives KILL CONNECTION mid-query", "[async][capi]") {
    rig t;
    REQUIRE_FALSE(t.connect());
    const auto id = t.db->connection_id();
    answer a;
    {
        after killer(0ms, [&] { admin_kill_when_busy(t.srv.where(), id); });
        a = t.query("SELECT SLEEP(1), 'answer'", lifeline::idempotent);
    }
    CHECK_FALSE(*a.ec);
    CHECK(a.r.attempts == 2);
    REQUIRE(a.r.rows.size() == 1);
    CHECK(a.r.rows[0][1] == std::optional<std::string>("answer"));
    CHECK(t.db->connection_id() != id);
}

TEST_CASE("async capi: a non-idempotent INSERT hit by KILL CONNECTION is not re-sent", "[async][capi]") {
    rig t;
    t.sql("CREATE TABLE a_ins_kill (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB");
    REQUIRE_FALSE(t.connect());
    const auto id = t.db->connection_id();
    answer a;
    {
        after killer(0ms, [&] { admin_kill_when_busy(t.srv.where(), id); });
        a = t.query("INSERT INTO a_ins_kill (v) SELECT 1 FROM (SELECT SLEEP(1)) AS s");
    }
    CHECK(*a.ec == errc::outcome_unknown);
    CHECK(t.db->last_diagnostics().code == 2013);
    const auto rows = t.rows("a_ins_kill");
    CHECK((rows == "0" || rows == "1"));  // what the caller was told: maybe; never two
}

TEST_CASE("async capi: an unknown write is fenced, verified by query, then re-sent exactly once", "[async][capi]") {
    rig t;
    t.sql("CREATE TABLE a_ins_verify (k VARCHAR(20) PRIMARY KEY, v INT) ENGINE=InnoDB");
    REQUIRE_FALSE(t.connect());
    const auto id = t.db->connection_id();
    int checks = 0;
    answer a;
    {
        after killer(0ms, [&] { admin_kill_when_busy(t.srv.where(), id); });
        a = t.query("INSERT INTO a_ins_verify SELECT 'order-1', 1 FROM (SELECT SLEEP(1)) AS s",
                    verify_by_query("SELECT COUNT(*) FROM a_ins_verify WHERE k = 'order-1'", [&](const result& r) {
                        ++checks;
                        return r.scalar() == std::optional<std::string>("1") ? write_check::applied
                                                                             : write_check::not_applied;
                    }));
    }
    CHECK_FALSE(*a.ec);
    CHECK(checks == 1);
    CHECK(t.rows("a_ins_verify") == "1");
    CHECK((a.r.verified || a.r.attempts == 2));
}

TEST_CASE("async capi: a connection killed while idle is caught before sending; the INSERT runs once", "[async][capi]") {
    rig t;
    t.sql("CREATE TABLE a_ins_idle (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB");
    REQUIRE_FALSE(t.connect());
    admin_kill(t.srv.where(), t.db->connection_id());
    std::this_thread::sleep_for(100ms);  // the kill's FIN reaches the client (not a synchronisation of lifeline's)
    auto a = t.query("INSERT INTO a_ins_idle VALUES ()");  // not idempotent, and no error
    CHECK_FALSE(*a.ec);
    CHECK(a.r.attempts == 1);
    CHECK(t.rows("a_ins_idle") == "1");
}

// ---- wait_timeout ----------------------------------------------------------------------------------

TEST_CASE("async capi: wait_timeout is survived without a failed attempt", "[async][capi]") {
    default_policy p;
    rig t(p);
    t.db->session().statements = {"SET SESSION wait_timeout = 1"};
    REQUIRE_FALSE(t.connect());
    const auto id = t.db->connection_id();
    std::this_thread::sleep_for(2500ms);  // the server closes the idle session
    auto a = t.query("SELECT 'still here'", lifeline::idempotent);
    CHECK_FALSE(*a.ec);
    CHECK(a.r.attempts == 1);
    CHECK(a.r.scalar() == std::optional<std::string>("still here"));
    CHECK(t.db->connection_id() != id);
}

// ---- KILL QUERY, max_statement_time: interrupted, the session stays ---------------------------------

TEST_CASE("async capi: KILL QUERY is 1317: not retried, the same session goes on", "[async][capi]") {
    rig t;
    REQUIRE_FALSE(t.connect());
    const auto id = t.db->connection_id();
    answer a;
    {
        after killer(0ms, [&] { admin_kill_when_busy(t.srv.where(), id, true); });
        a = t.query("SELECT SLEEP(5)", lifeline::idempotent);
    }
    CHECK(*a.ec == make_driver_error_code(1317));
    CHECK(t.db->last_diagnostics().where == phase::fetch);
    CHECK(t.db->connection_id() == id);  // usable: not a reconnect
    auto next = t.query("SELECT 1", lifeline::idempotent);
    CHECK_FALSE(*next.ec);
    CHECK(t.db->connection_id() == id);
    CHECK(t.db->stats().attempts == 2);  // one each: the interrupted query was not re-sent
}

TEST_CASE("async capi: max_statement_time is 1969: not retried, the same session goes on", "[async][capi]") {
    rig t;
    t.db->session().statements = {"SET SESSION max_statement_time = 0.3"};
    REQUIRE_FALSE(t.connect());
    const auto id = t.db->connection_id();
    const auto t0 = clk::now();
    auto a = t.query("SELECT COUNT(*) FROM information_schema.columns a, information_schema.columns b, "
                     "information_schema.columns c",
                     lifeline::idempotent);
    CHECK(*a.ec == make_driver_error_code(1969));
    CHECK(ms_since(t0) >= 250ms);
    CHECK(ms_since(t0) < 5s);
    CHECK(t.db->connection_id() == id);
    auto next = t.query("SELECT 1", lifeline::idempotent);
    CHECK_FALSE(*next.ec);
    CHECK(t.db->connection_id() == id);
}

// ---- the server goes away ---------------------------------------------------------------------------

TEST_CASE("async capi: an idempotent SELECT survives a server restart during the query", "[async][capi][disruptive]") {
    default_policy p;
    p.retry.max_attempts = 50;
    p.retry.deadline = 60s;
    p.breaker.failure_threshold = 1000;
    rig t(p);
    REQUIRE_FALSE(t.connect());
    answer a;
    {
        after restart(300ms, [&] { t.srv.restart(); });
        a = t.query("SELECT SLEEP(2), 'after restart'", lifeline::idempotent);
    }
    CHECK_FALSE(*a.ec);
    CHECK(a.r.attempts >= 2);
    REQUIRE(a.r.rows.size() == 1);
    CHECK(a.r.rows[0][1] == std::optional<std::string>("after restart"));
}

TEST_CASE("async capi: a frozen server (SIGSTOP) is answered at the deadline, +10% at most", "[async][capi][disruptive]") {
    rig t;
    REQUIRE_FALSE(t.connect());
    thaw_guard tg{t.srv};
    t.srv.freeze();
    for (auto deadline : {1500ms, 2500ms}) {
        const auto t0 = clk::now();
        auto a = t.query("SELECT 1", lifeline::idempotent, call_options{deadline});
        const auto took = ms_since(t0);
        INFO("deadline " << deadline.count() << " ms, took " << took.count() << " ms");
        CHECK(*a.ec == errc::deadline_exceeded);
        CHECK(took <= deadline * 11 / 10);
        CHECK(took >= deadline * 8 / 10);
    }
    // A non-idempotent write in flight when the deadline cuts it: unknown, and said so.
    t.srv.thaw();
    REQUIRE_FALSE(t.connect(call_options{10s}));
    t.srv.freeze();
    const auto t0 = clk::now();
    auto w = t.query("DO 1", {}, call_options{1500ms});
    CHECK(ms_since(t0) <= 1650ms);
    CHECK(*w.ec == errc::outcome_unknown);
    CHECK_FALSE(t.db->is_open());  // the abandoned handle was closed, never reused
}

TEST_CASE("async capi: without a deadline, the driver's io_timeout ends a read from a frozen server",
          "[async][capi][disruptive]") {
    connect_options o;
    {
        auto srv = server::attach();
        o = options_for(srv.where());
    }
    o.io_timeout = std::chrono::milliseconds(1000);  // the driver's read timeout: whole seconds
    rig t(default_policy{}, o);
    REQUIRE_FALSE(t.connect());
    thaw_guard tg{t.srv};
    t.srv.freeze();
    const auto t0 = clk::now();
    auto a = t.query("DO 1", {}, call_options{std::chrono::milliseconds::max()});  // no deadline at all
    const auto took = ms_since(t0);
    INFO("took " << took.count() << " ms");
    CHECK(*a.ec == errc::outcome_unknown);  // the read timed out after the statement was sent
    CHECK(t.db->last_diagnostics().code == 2013);
    CHECK(took >= 900ms);
    CHECK(took < 5s);
}

TEST_CASE("async capi: a stopped server sees one paced prober; callers wait within their deadline; recovery is prompt",
          "[async][capi][disruptive]") {
    default_policy p;
    p.retry.deadline = 1s;
    rig t(p);
    for (int i = 0; i < 5; ++i) CHECK_FALSE(*t.query("SELECT 1", lifeline::idempotent).ec);
    t.srv.stop();
    const auto connects_before = t.db->stats().reconnects;
    const auto t0 = clk::now();
    for (int i = 0; i < 3; ++i) {
        const auto c0 = clk::now();
        auto a = t.query("SELECT 1", lifeline::idempotent);
        CHECK(*a.ec == errc::deadline_exceeded);
        CHECK(ms_since(c0) < 3s);
    }
    const double seconds = std::chrono::duration<double>(clk::now() - t0).count();
    const auto connects = t.db->stats().reconnects - connects_before;
    CHECK(static_cast<double>(connects) <= seconds / 0.016 + 3);  // at most one connect per min_interval
    t.srv.start_again();
    const auto back = clk::now();
    CHECK_FALSE(*t.query("SELECT 1", lifeline::idempotent, call_options{10s}).ec);
    CHECK(ms_since(back) < 2s);
}

// ---- the lost COMMIT, through the fault proxy ----------------------------------------------------------

namespace {
struct proxy_rig {
    server srv = server::attach();
    lifeline::testing::fault_proxy proxy{srv.where().host, static_cast<std::uint16_t>(srv.where().port)};
    asio::io_context io;
    std::unique_ptr<adb> db;
    explicit proxy_rig(const std::string& table) {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE " + table + " (ref VARCHAR(20) PRIMARY KEY) ENGINE=InnoDB");
        connect_options o = options_for(srv.where());
        o.port = proxy.port();
        default_policy p;
        db = std::make_unique<adb>(io.get_executor(), o, p);
        db->set_retry_budget(std::make_shared<retry_budget>(p.budget));
        db->set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
        db->set_endpoint_monitor(std::make_shared<endpoint_monitor>(p.probe));
    }
    ~proxy_rig() {
        db.reset();
        io.restart();
        io.run();
    }
    std::string rows(const std::string& table) {
        auto m = capi_connect(srv.where());
        return capi_scalar(m.get(), "SELECT COUNT(*) FROM " + table);
    }
    // The transaction: one INSERT, then `before_commit(run)` (arms the proxy), then COMMIT.
    tx_answer transact(const std::string& table, transaction_options o, int& runs, std::function<void(int)> before_commit) {
        tx_answer out;
        db->async_transaction(
            [&, table, before_commit](adb::transaction_context& tx, adb::body_done done) {
                const int run = ++runs;
                tx.async_execute("INSERT INTO " + table + " VALUES ('order-1')", [run, done, before_commit](std::error_code ec, result) {
                    if (!ec) before_commit(run);
                    done();
                });
            },
            o, [&](std::error_code ec, async_transaction_result r) {
                out.ec = ec;
                out.r = std::move(r);
            });
        io.restart();
        io.run();
        REQUIRE(out.ec.has_value());
        return out;
    }
};
}  // namespace

TEST_CASE("async capi: lost COMMIT cut before it reached the server: not committed, replayed once",
          "[async][capi][proxy][transaction]") {
    proxy_rig r("a_cut_before");
    int runs = 0;
    auto out = r.transact("a_cut_before", lifeline::replayable_resolved, runs, [&](int run) {
        if (run == 1) r.proxy.cut_on_commit(lifeline::testing::commit_cut::before_forward);
        else r.proxy.pass();
    });
    CHECK_FALSE(*out.ec);
    CHECK(r.proxy.stats().commits_cut == 1);
    CHECK(runs == 2);
    CHECK(out.r.commit_resolved);
    CHECK(r.rows("a_cut_before") == "1");
}

TEST_CASE("async capi: lost COMMIT cut after the server committed: committed, not replayed",
          "[async][capi][proxy][transaction]") {
    proxy_rig r("a_cut_after");
    int runs = 0;
    auto out = r.transact("a_cut_after", lifeline::replayable_resolved, runs,
                          [&](int) { r.proxy.cut_on_commit(lifeline::testing::commit_cut::after_forward); });
    r.proxy.pass();
    CHECK_FALSE(*out.ec);
    CHECK(r.proxy.stats().commits_cut == 1);
    CHECK(runs == 1);
    CHECK(out.r.commit_resolved);
    CHECK(r.rows("a_cut_after") == "1");
}

TEST_CASE("async capi: lost COMMIT without a token: commit_unknown, nothing re-sent", "[async][capi][proxy][transaction]") {
    proxy_rig r("a_cut_unres");
    int runs = 0;
    auto out = r.transact("a_cut_unres", lifeline::replayable, runs,
                          [&](int) { r.proxy.cut_on_commit(lifeline::testing::commit_cut::after_forward); });
    r.proxy.pass();
    CHECK(*out.ec == errc::commit_unknown);
    CHECK(runs == 1);
    CHECK(r.rows("a_cut_unres") == "1");  // it did commit; the caller was told "unknown", not "failed"
}

TEST_CASE("async capi: blackhole during COMMIT: resolved within the deadline", "[async][capi][proxy][transaction]") {
    proxy_rig r("a_cut_hole");
    int runs = 0;
    std::thread heal;
    transaction_options o = lifeline::replayable_resolved;
    o.deadline = 4000ms;
    const auto t0 = clk::now();
    auto out = r.transact("a_cut_hole", o, runs, [&](int run) {
        if (run != 1) return;
        r.proxy.blackhole();  // the COMMIT goes into the hole
        heal = std::thread([&] {
            // Longer than COMMIT's share of the deadline (half of 4 s); then the proxy delivers the
            // old COMMIT late: the race fencing exists for.
            std::this_thread::sleep_for(2500ms);
            r.proxy.pass();
        });
    });
    const auto took = ms_since(t0);
    heal.join();
    INFO("took " << took.count() << " ms");
    CHECK(took <= 4400ms);
    CHECK_FALSE(*out.ec);
    CHECK(out.r.commit_resolved);
    CHECK(r.rows("a_cut_hole") == "1");  // committed exactly once, whichever way it went
}

// ---- transactions, sessions, sockets ---------------------------------------------------------------

TEST_CASE("async capi: a session killed mid-transaction is replayed on a new one, once", "[async][capi][transaction]") {
    rig t;
    t.sql("CREATE TABLE a_acc (id INT PRIMARY KEY, balance INT) ENGINE=InnoDB");
    t.sql("INSERT INTO a_acc VALUES (1, 100), (2, 100)");
    int runs = 0;
    tx_answer out;
    t.db->async_transaction(
        [&](adb::transaction_context& tx, adb::body_done done) {
            const int run = ++runs;
            tx.async_execute("UPDATE a_acc SET balance = balance - 10 WHERE id = 1", [&, run, done](std::error_code ec, result) {
                if (ec) return done();
                if (run == 1) admin_kill(t.srv.where(), t.db->connection_id());  // the link dies before COMMIT
                tx.async_execute("UPDATE a_acc SET balance = balance + 10 WHERE id = 2",
                                 [done](std::error_code, result) { done(); });
            });
        },
        lifeline::replayable_resolved, [&](std::error_code ec, async_transaction_result r) {
            out.ec = ec;
            out.r = std::move(r);
        });
    t.run();
    REQUIRE(out.ec.has_value());
    CHECK_FALSE(*out.ec);
    CHECK(runs == 2);
    CHECK(out.r.attempts == 2);
    auto m = capi_connect(t.srv.where());
    CHECK(capi_scalar(m.get(), "SELECT balance FROM a_acc WHERE id = 1") == "90");
    CHECK(capi_scalar(m.get(), "SELECT SUM(balance) FROM a_acc") == "200");
}

TEST_CASE("async capi: session variables, time zone, sql_mode and schema survive a reconnect", "[async][capi]") {
    rig t;
    t.db->session().time_zone = "+05:30";
    t.db->session().sql_mode = "ANSI_QUOTES";
    t.db->session().statements = {"SET @marker = 42"};
    REQUIRE_FALSE(t.connect());
    admin_kill(t.srv.where(), t.db->connection_id());
    auto a = t.query("SELECT @marker, DATABASE(), @@time_zone, @@sql_mode", lifeline::idempotent);
    CHECK_FALSE(*a.ec);
    REQUIRE(a.r.rows.size() == 1);
    CHECK(a.r.rows[0][0] == std::optional<std::string>("42"));
    CHECK(a.r.rows[0][1] == std::optional<std::string>(t.srv.where().database));
    CHECK(a.r.rows[0][2] == std::optional<std::string>("+05:30"));
    CHECK(a.r.rows[0][3] == std::optional<std::string>("ANSI_QUOTES"));
}

TEST_CASE("async capi: one io thread: a connection waiting on the server does not hold up another", "[async][capi]") {
    rig t;
    auto other = t.make(default_policy{}, options_for(t.srv.where()));
    std::optional<std::error_code> slow_ec;
    int fast_done = 0, fast_done_before_slow = -1;
    t.db->async_query("SELECT SLEEP(1)", lifeline::idempotent, [&](std::error_code ec, result) {
        slow_ec = ec;
        fast_done_before_slow = fast_done;
    });
    std::function<void()> next = [&] {
        other->async_query("SELECT 1", lifeline::idempotent, [&](std::error_code ec, result) {
            CHECK_FALSE(ec);
            if (++fast_done < 50) next();
        });
    };
    next();
    t.run();
    REQUIRE(slow_ec.has_value());
    CHECK_FALSE(*slow_ec);
    CHECK(fast_done == 50);
    CHECK(fast_done_before_slow == 50);  // all 50 round trips ran during the other's SLEEP(1)
    other.reset();
}

TEST_CASE("async capi: the driver's socket is watched, released and closed once; reconnects are re-watched",
          "[async][capi]") {
    const std::size_t before = open_fds();
    {
        rig t;
        for (int i = 0; i < 4; ++i) {
            REQUIRE_FALSE(*t.query("SELECT 1", lifeline::idempotent).ec);
            const int watched = t.db->watched_fd();
            CHECK(watched == static_cast<int>(mysql_get_socket(t.db->native())));
            admin_kill(t.srv.where(), t.db->connection_id());
            std::this_thread::sleep_for(50ms);
        }
        // One abandoned mid-statement by its deadline.
        auto cut = t.query("SELECT SLEEP(3)", lifeline::idempotent, call_options{300ms});
        CHECK(*cut.ec == errc::deadline_exceeded);
        CHECK(t.db->watched_fd() == -1);
        CHECK_FALSE(t.db->is_open());
        REQUIRE_FALSE(*t.query("SELECT 1", lifeline::idempotent).ec);
        CHECK(t.db->stats().reconnects >= 5);
    }
    // Every socket the driver opened was closed, once: no fd leaked, none closed twice (a double
    // close would have hit an unrelated descriptor, which the count would show as missing).
    CHECK(open_fds() == before);
}

TEST_CASE("async capi: cancel() ends a statement at once; the session is closed and the next call reconnects",
          "[async][capi]") {
    rig t;
    REQUIRE_FALSE(t.connect());
    const auto id = t.db->connection_id();
    answer a;
    t.db->async_query("SELECT SLEEP(5)", lifeline::idempotent, [&](std::error_code ec, result r) {
        a.ec = ec;
        a.r = std::move(r);
    });
    asio::steady_timer later(t.io, 200ms);
    later.async_wait([&](boost::system::error_code) { t.db->cancel(); });
    const auto t0 = clk::now();
    t.run();
    REQUIRE(a.ec.has_value());
    CHECK(*a.ec == std::errc::operation_canceled);
    CHECK(ms_since(t0) < 2s);
    CHECK_FALSE(t.db->is_open());
    auto next = t.query("SELECT 1", lifeline::idempotent);
    CHECK_FALSE(*next.ec);
    CHECK(t.db->connection_id() != id);
}

TEST_CASE("async capi: a second operation on a busy connection fails with operation_in_progress", "[async][capi]") {
    rig t;
    REQUIRE_FALSE(t.connect());
    answer first, second;
    t.db->async_query("SELECT SLEEP(0.3), 'first'", lifeline::idempotent, [&](std::error_code ec, result r) {
        first.ec = ec;
        first.r = std::move(r);
    });
    t.db->async_query("SELECT 'second'", lifeline::idempotent, [&](std::error_code ec, result r) {
        second.ec = ec;
        second.r = std::move(r);
        CHECK_FALSE(first.ec.has_value());  // refused while the first still runs
    });
    t.run();
    REQUIRE(second.ec.has_value());
    CHECK(*second.ec == errc::operation_in_progress);
    REQUIRE(first.ec.has_value());
    CHECK_FALSE(*first.ec);
    REQUIRE(first.r.rows.size() == 1);
    CHECK(first.r.rows[0][1] == std::optional<std::string>("first"));
}

TEST_CASE("async capi: a host name is refused up front; numeric addresses only", "[async][capi]") {
    auto srv = server::attach();
    asio::io_context io;
    connect_options o = options_for(srv.where());
    o.host = "localhost";
    try {
        adb db(io.get_executor(), o);
        FAIL("a host name was accepted");
    } catch (const lifeline::error& e) {
        CHECK(e.code() == errc::invalid_option);
        CHECK(std::string(e.what()).find("numeric") != std::string::npos);
    }
}

// ---- the pool ------------------------------------------------------------------------------------------

TEST_CASE("async capi pool: a killed idle connection is never handed out dead; state does not leak", "[async][capi][pool]") {
    auto srv = server::attach();
    asio::io_context io;
    default_policy p;
    async_pool_options po;
    po.max_size = 2;
    po.budget = std::make_shared<retry_budget>(p.budget);
    po.breaker = std::make_shared<circuit_breaker>(p.breaker);
    po.monitor = std::make_shared<endpoint_monitor>(p.probe);
    {
        async_pool<capi> pool(io.get_executor(), options_for(srv.where()), po, p);
        std::uint64_t first = 0;
        bool leaked = false, clean = false, second_ok = false;
        pool.async_borrow(5s, [&](std::error_code ec, async_pool<capi>::handle h) {
            REQUIRE_FALSE(ec);
            first = h->connection_id();
            h->async_execute("SET @leak = 'x'", [&, h = std::move(h)](std::error_code e, result) mutable { leaked = !e; });
        });
        io.run();
        REQUIRE(leaked);
        // The reset on return gave the session back clean; now kill it while it idles.
        pool.async_borrow(5s, [&](std::error_code ec, async_pool<capi>::handle h) {
            REQUIRE_FALSE(ec);
            h->async_query("SELECT @leak", lifeline::idempotent, [&, h = std::move(h)](std::error_code e, result r) mutable {
                clean = !e && r.scalar() == std::nullopt;
            });
        });
        io.restart();
        io.run();
        CHECK(clean);
        admin_kill(srv.where(), first);
        std::this_thread::sleep_for(50ms);
        pool.async_borrow(5s, [&](std::error_code ec, async_pool<capi>::handle h) {
            REQUIRE_FALSE(ec);
            CHECK(h->connection_id() != first);
            h->async_query("SELECT 1", lifeline::idempotent, [&, h = std::move(h)](std::error_code e, result r) mutable {
                second_ok = !e && r.attempts == 1;  // valid when handed out: no failed attempt
            });
        });
        io.restart();
        io.run();
        CHECK(second_ok);
        CHECK(pool.stats().resets >= 1);
        CHECK(pool.stats().broken >= 1);
    }
    io.restart();
    io.run();
}

TEST_CASE("async capi pool: against a stopped server, one connect at a time and pool_exhausted in time",
          "[async][capi][pool][disruptive]") {
    auto srv = server::attach();
    asio::io_context io;
    default_policy p;
    async_pool_options po;
    po.max_size = 8;
    po.budget = std::make_shared<retry_budget>(p.budget);
    po.breaker = std::make_shared<circuit_breaker>(p.breaker);
    po.monitor = std::make_shared<endpoint_monitor>(p.probe);
    srv.stop();
    {
        async_pool<capi> pool(io.get_executor(), options_for(srv.where()), po, p);
        int exhausted = 0;
        std::string why;
        std::size_t max_connecting = 0;
        std::chrono::milliseconds last{0};
        const auto t0 = clk::now();
        for (int i = 0; i < 16; ++i)
            pool.async_borrow(1s, [&](std::error_code ec, async_pool<capi>::handle h) {
                if (ec == errc::pool_exhausted) ++exhausted;
                why = h.diag().client_message;
                last = ms_since(t0);
            });
        // Watch the single-flight counter while it runs.
        std::function<void()> watch = [&] {
            max_connecting = std::max(max_connecting, pool.stats().connecting);
            if (exhausted < 16) asio::post(io, watch);
        };
        asio::post(io, watch);
        io.run();
        const auto took = ms_since(t0);
        INFO("last borrow answered after " << last.count() << " ms, io.run() returned after " << took.count() << " ms; "
                                          << pool.stats().connect_failures << " connect failures");
        CHECK(exhausted == 16);
        CHECK(max_connecting == 1);
        CHECK(pool.stats().connect_failures >= 1);
        CHECK(last >= 1000ms);
        CHECK(last <= 1100ms);  // the borrow timeout + 10 %
        CHECK(took <= 1100ms);  // and nothing of the pool's keeps the io_context busy afterwards  // 1 s + 10 %: nobody waited past its borrow timeout
        CHECK(why.find("2002") != std::string::npos);  // the connect error is named
    }
    srv.start_again();
    io.restart();
    io.run();
}
