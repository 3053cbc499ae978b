// The safety core against the real server: each test reproduces one of the holes a review found
// in the first release (duplicate, lost, hung or misread) and asserts it is closed. Each TEST_CASE
// carries its hole's tag; CMake registers one ctest per hole (integration.safety.*).
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/driver/capi.hpp>
#include <lifeline/pool.hpp>
#include <lifeline/testing/fault_proxy.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

using db_type = lifeline::connection<lifeline::capi>;

std::unique_ptr<db_type> make_db(connect_options o, default_policy p = {}, db_type::session_spec spec = {}) {
    auto db = std::make_unique<db_type>(std::move(o), p, std::move(spec));
    db->set_retry_budget(std::make_shared<retry_budget>(p.budget));
    db->set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
    return db;
}

std::string scalar(const server& srv, const std::string& sql) {
    auto m = capi_connect(srv.where());
    return capi_scalar(m.get(), sql);
}

void admin(const server& srv, const std::string& sql) {
    auto m = capi_connect(srv.where(), capi_options{true});
    capi_exec(m.get(), sql);
}

// Waits (bounded) until `pred` holds, polling; returns whether it did. Events, not sleeps.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 20s) {
    const auto until = clk::now() + limit;
    while (clk::now() < until) {
        if (pred()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return pred();
}

// A session (app user) that holds the row lock on `table`.id = 1 until released.
class row_locker {
public:
    row_locker(const server& srv, const std::string& table) : m_(capi_connect(srv.where())) {
        capi_exec(m_.get(), "BEGIN");
        capi_exec(m_.get(), "SELECT * FROM " + table + " WHERE id = 1 FOR UPDATE");
    }
    void release() {
        if (!released_) capi_exec(m_.get(), "COMMIT");
        released_ = true;
    }
    ~row_locker() {
        try {
            release();
        } catch (...) {
        }
    }

private:
    mysql_handle m_;
    bool released_ = false;
};

}  // namespace

// --- hole 1: run() is a black box ---------------------------------------------------------------

TEST_CASE("hole 1: a callable that INSERTs and then hits 1205 is not run again", "[safety][capi][hole1]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h1a (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
    admin(srv, "CREATE TABLE lifeline_test.h1lock (id INT PRIMARY KEY, n INT) ENGINE=InnoDB");
    admin(srv, "INSERT INTO lifeline_test.h1lock VALUES (1, 0)");
    row_locker lock(srv, "h1lock");
    db_type::session_spec spec;
    spec.statements = {"SET SESSION innodb_lock_wait_timeout = 1"};
    auto db = make_db(options_for(srv.where()), {}, spec);
    int calls = 0;
    std::error_code ec;
    diagnostics d;
    db->run(
        [&](MYSQL* m) {
            ++calls;
            if (mysql_query(m, "INSERT INTO h1a (v) VALUES (1)")) return;
            mysql_query(m, "UPDATE h1lock SET n = n + 1 WHERE id = 1");  // 1205 after 1 s: "statement rolled back"
        },
        {}, {}, ec, d);
    CHECK(ec == errc::outcome_unknown);
    CHECK(d.code == 1205);
    CHECK(calls == 1);
    CHECK(scalar(srv, "SELECT COUNT(*) FROM h1a") == "1");
}

TEST_CASE("hole 1: INSERT, 2013, then the callable's own cleanup leaves 2006: not run again", "[safety][capi][hole1]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h1b (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
    auto db = make_db(options_for(srv.where()));
    db->connect();
    const auto id = db->connection_id();
    int calls = 0;
    std::error_code ec;
    diagnostics d;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        db->run(
            [&](MYSQL* m) {
                ++calls;
                if (mysql_query(m, "INSERT INTO h1b (v) VALUES (1)")) return;
                if (mysql_query(m, "SELECT SLEEP(5)") == 0) mysql_free_result(mysql_store_result(m));
                mysql_query(m, "ROLLBACK");  // the caller's cleanup: 2006, "not executed"
            },
            {}, {}, ec, d);
    }
    CHECK(ec == errc::outcome_unknown);
    CHECK(calls == 1);
    CHECK(scalar(srv, "SELECT COUNT(*) FROM h1b") == "1");
}

TEST_CASE("hole 1: the callable's own BEGIN is seen: its 1205 is not 'retry', its transaction is reported open",
          "[safety][capi][hole1]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h1c (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB");
    admin(srv, "CREATE TABLE lifeline_test.h1clock (id INT PRIMARY KEY, n INT) ENGINE=InnoDB");
    admin(srv, "INSERT INTO lifeline_test.h1clock VALUES (1, 0)");
    row_locker lock(srv, "h1clock");
    db_type::session_spec spec;
    spec.statements = {"SET SESSION innodb_lock_wait_timeout = 1"};
    auto db = make_db(options_for(srv.where()), {}, spec);
    int calls = 0;
    std::error_code ec;
    diagnostics d;
    db->run(
        [&](MYSQL* m) {
            ++calls;
            mysql_query(m, "BEGIN");
            mysql_query(m, "INSERT INTO h1c (v) VALUES (1)");
            mysql_query(m, "UPDATE h1clock SET n = n + 1 WHERE id = 1");  // 1205: the transaction stays open
        },
        {}, {}, ec, d);
    CHECK(ec == errc::outcome_unknown);
    CHECK(calls == 1);
    CHECK(db->in_transaction());  // lifeline knows the session is inside the callable's transaction
    db->execute("ROLLBACK");
    lock.release();
    CHECK(scalar(srv, "SELECT COUNT(*) FROM h1c") == "0");
}

TEST_CASE("hole 1: a declared-idempotent callable is still run again", "[safety][capi][hole1]") {
    auto srv = server::attach();
    auto db = make_db(options_for(srv.where()));
    db->connect();
    const auto id = db->connection_id();
    int calls = 0;
    std::string got;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        got = db->run(
            [&](MYSQL* m) -> std::string {
                ++calls;
                if (mysql_query(m, "SELECT SLEEP(1), 'ok'")) return {};
                MYSQL_RES* r = mysql_store_result(m);
                MYSQL_ROW row = r ? mysql_fetch_row(r) : nullptr;
                std::string v = row && row[1] ? row[1] : "";
                if (r) mysql_free_result(r);
                return v;
            },
            lifeline::idempotent);
    }
    CHECK(calls == 2);
    CHECK(got == "ok");
}

// --- hole 2: verification only after fencing ------------------------------------------------------

TEST_CASE("hole 2: the old session still waiting on a lock is fenced before verify_with checks", "[safety][capi][hole2]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h2 (id INT PRIMARY KEY, n INT) ENGINE=InnoDB");
    admin(srv, "INSERT INTO lifeline_test.h2 VALUES (1, 0)");
    row_locker lock(srv, "h2");
    connect_options o = options_for(srv.where());
    o.io_timeout = 1s;  // the client gives up reading after 1 s; the server goes on waiting for the lock
    default_policy p;
    p.retry.deadline = 30s;
    auto db = make_db(o, p);
    db->connect();
    const auto first = db->connection_id();
    // Releases the lock once a session other than the first waits on the UPDATE (the re-send):
    // without fencing the first one is still waiting then, and both updates land.
    std::thread releaser([&] {
        auto m = capi_connect(srv.where(), capi_options{true});
        const std::string q = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE h2%' AND ID <> " +
                              std::to_string(first);
        eventually([&] { return capi_scalar(m.get(), q) != "0"; }, 25s);
        lock.release();
    });
    std::error_code ec;
    diagnostics d;
    auto r = db->execute("UPDATE h2 SET n = n + 1 WHERE id = 1",
                         lifeline::verify_with([](MYSQL* m) {
                             if (mysql_query(m, "SELECT n FROM h2 WHERE id = 1")) return write_check::unknown;
                             MYSQL_RES* res = mysql_store_result(m);
                             MYSQL_ROW row = res ? mysql_fetch_row(res) : nullptr;
                             const bool applied = row && row[0] && std::string(row[0]) != "0";
                             if (res) mysql_free_result(res);
                             return applied ? write_check::applied : write_check::not_applied;
                         }),
                         {}, ec, d);
    releaser.join();
    INFO(ec.message() << " | " << d.client_message);
    CHECK_FALSE(ec);
    CHECK(r.attempts >= 2);
    // Exactly once: the first session was killed before the check, so its UPDATE never landed.
    CHECK(scalar(srv, "SELECT n FROM h2 WHERE id = 1") == "1");
    CHECK(scalar(srv, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + std::to_string(first)) == "0");
}

// --- hole 3: the pool hands on no session state ----------------------------------------------------

namespace {
using pool_type = lifeline::pool<lifeline::capi>;
pool_options one_connection() {
    pool_options po;
    po.max_size = 1;
    po.housekeeping_interval = 0ms;
    return po;
}
}  // namespace

TEST_CASE("hole 3: autocommit=0 left by one borrower does not roll back the next one's write", "[safety][capi][hole3]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h3 (v INT) ENGINE=InnoDB");
    pool_type p(options_for(srv.where()), one_connection());
    {
        auto a = p.borrow(5s);
        a->execute("SET autocommit = 0");
    }
    {
        auto b = p.borrow(5s);
        auto r = b->execute("INSERT INTO h3 VALUES (1)");
        CHECK(r.affected_rows == 1);  // B is told "ok" ...
    }
    CHECK(scalar(srv, "SELECT COUNT(*) FROM h3") == "1");  // ... and it is there after B returned
    CHECK(p.stats().resets >= 1);
}

TEST_CASE("hole 3: schema, variables, temporary tables and locks do not leak to the next borrower",
          "[safety][capi][hole3]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h3l (v INT) ENGINE=InnoDB");
    pool_type p(options_for(srv.where()), one_connection());
    {
        auto a = p.borrow(5s);
        a->execute("SET foreign_key_checks = 0");
        a->execute("SET @secret = 'borrower A'");
        a->execute("CREATE TEMPORARY TABLE a_tmp (x INT)");
        a->execute("SELECT GET_LOCK('h3_lock', 0)");
        a->execute("LOCK TABLES h3l WRITE");
        a->execute("USE information_schema");
    }
    auto b = p.borrow(5s);
    CHECK(b->query("SELECT DATABASE()").scalar() == std::optional<std::string>("lifeline_test"));
    CHECK(b->query("SELECT @@foreign_key_checks").scalar() == std::optional<std::string>("1"));
    CHECK_FALSE(b->query("SELECT @secret").scalar().has_value());
    std::error_code ec;
    diagnostics d;
    b->query("SELECT COUNT(*) FROM a_tmp", lifeline::idempotent, {}, ec, d);
    CHECK(d.code == 1146);  // no such table: the temporary table went with A's session state
    // A's locks are gone: another session takes them at once.
    auto other = capi_connect(srv.where());
    capi_exec(other.get(), "SET SESSION lock_wait_timeout = 5");
    capi_exec(other.get(), "INSERT INTO h3l VALUES (1)");
    CHECK(capi_scalar(other.get(), "SELECT GET_LOCK('h3_lock', 0)") == "1");
}

TEST_CASE("hole 3: an unchanged session is not reset (costs nothing on return)", "[safety][capi][hole3]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h3u (v INT) ENGINE=InnoDB");
    pool_type p(options_for(srv.where()), one_connection());
    for (int i = 0; i < 5; ++i) {
        auto c = p.borrow(5s);
        c->query("SELECT 1", lifeline::idempotent);
        c->execute("INSERT INTO h3u VALUES (1)");
    }
    CHECK(p.stats().resets == 0);
    CHECK(scalar(srv, "SELECT COUNT(*) FROM h3u") == "5");
}

// --- hole 5: a failed statement poisons the transaction ------------------------------------------

TEST_CASE("hole 5: a swallowed 1205 inside transaction() never lets COMMIT through", "[safety][capi][hole5]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h5 (v INT) ENGINE=InnoDB");
    admin(srv, "CREATE TABLE lifeline_test.h5lock (id INT PRIMARY KEY, n INT) ENGINE=InnoDB");
    admin(srv, "INSERT INTO lifeline_test.h5lock VALUES (1, 0)");
    row_locker lock(srv, "h5lock");
    db_type::session_spec spec;
    spec.statements = {"SET SESSION innodb_lock_wait_timeout = 1"};
    auto db = make_db(options_for(srv.where()), {}, spec);
    bool later_refused = false;
    std::error_code ec;
    diagnostics d;
    transaction_options o;  // not replayable
    db->transaction(
        [&](auto& tx) {
            tx.execute("INSERT INTO h5 VALUES (1)");
            try {
                tx.execute("UPDATE h5lock SET n = n + 1 WHERE id = 1");  // 1205: only the statement rolled back
            } catch (...) {
                // swallowed by the caller
            }
            try {
                tx.execute("INSERT INTO h5 VALUES (2)");
            } catch (...) {
                later_refused = true;
            }
        },
        o, ec, d);
    CHECK(ec == make_driver_error_code(1205));
    CHECK(later_refused);
    lock.release();
    CHECK(scalar(srv, "SELECT COUNT(*) FROM h5") == "0");  // nothing half-committed
}

TEST_CASE("hole 5: after a swallowed deadlock the later statements never commit alone", "[safety][capi][hole5]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h5d (id INT PRIMARY KEY, n INT) ENGINE=InnoDB");
    admin(srv, "INSERT INTO lifeline_test.h5d VALUES (1, 0), (2, 0)");
    admin(srv, "CREATE TABLE lifeline_test.h5log (v INT) ENGINE=InnoDB");
    admin(srv, "CREATE TABLE lifeline_test.h5heavy (id INT PRIMARY KEY, n INT) ENGINE=InnoDB");
    admin(srv, "INSERT INTO lifeline_test.h5heavy SELECT seq, 0 FROM seq_1_to_200");
    auto db = make_db(options_for(srv.where()));
    db->connect();
    const auto me = db->connection_id();
    std::error_code ec;
    diagnostics d;
    std::atomic<bool> other_waits{false};
    std::thread other;
    db->transaction(
        [&](auto& tx) {
            tx.execute("UPDATE h5d SET n = n + 1 WHERE id = 1");
            // Another transaction, heavier (so InnoDB picks lifeline's as the victim), locks row 2 and
            // waits for row 1.
            other = std::thread([&] {
                auto m = capi_connect(srv.where());
                capi_exec(m.get(), "BEGIN");
                capi_exec(m.get(), "UPDATE h5heavy SET n = n + 1");
                capi_exec(m.get(), "UPDATE h5d SET n = n + 10 WHERE id = 2");
                other_waits = true;
                capi_exec(m.get(), "UPDATE h5d SET n = n + 10 WHERE id = 1");
                capi_exec(m.get(), "COMMIT");
            });
            auto watch = capi_connect(srv.where(), capi_options{true});
            eventually([&] {
                return other_waits && capi_scalar(watch.get(), "SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                                                               "WHERE trx_state = 'LOCK WAIT'") == "1";
            });
            try {
                tx.execute("UPDATE h5d SET n = n + 1 WHERE id = 2");  // deadlock: lifeline's transaction is rolled back
            } catch (...) {
            }
            try {
                tx.execute("INSERT INTO h5log VALUES (1)");  // would run in autocommit on the old code
            } catch (...) {
            }
        },
        transaction_options{}, ec, d);
    other.join();
    CHECK(ec == make_driver_error_code(1213));
    CHECK(scalar(srv, "SELECT COUNT(*) FROM h5log") == "0");
    CHECK(scalar(srv, "SELECT n FROM h5d WHERE id = 1") == "10");  // only the other transaction's work
    (void)me;
}

// --- hole 6: implicit commits inside transaction() ------------------------------------------------

TEST_CASE("hole 6: DDL inside transaction() is reported as implicit_commit, never as committed",
          "[safety][capi][hole6]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h6 (v INT) ENGINE=InnoDB");
    auto db = make_db(options_for(srv.where()));
    int runs = 0;
    bool after_ran = false;
    std::error_code ec;
    diagnostics d;
    db->transaction(
        [&](auto& tx) {
            ++runs;
            tx.execute("INSERT INTO h6 VALUES (1)");
            tx.execute("CREATE TABLE h6_side (x INT)");  // commits the INSERT (and the token) implicitly
            after_ran = true;
            tx.execute("INSERT INTO h6 VALUES (2)");
        },
        lifeline::replayable_resolved, ec, d);
    CHECK(ec == errc::implicit_commit);
    CHECK(runs == 1);
    CHECK_FALSE(after_ran);
    CHECK_THAT(d.client_message, Catch::Contains("CREATE TABLE h6_side"));
    CHECK(scalar(srv, "SELECT COUNT(*) FROM h6") == "1");  // what ran before is durable, nothing after ran
}

TEST_CASE("hole 6: TRUNCATE and LOCK TABLES are caught the same way", "[safety][capi][hole6]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h6b (v INT) ENGINE=InnoDB");
    auto db = make_db(options_for(srv.where()));
    for (const char* stmt : {"TRUNCATE TABLE h6b", "LOCK TABLES h6b WRITE"}) {
        std::error_code ec;
        diagnostics d;
        db->transaction(
            [&](auto& tx) {
                tx.execute("INSERT INTO h6b VALUES (1)");
                tx.execute(stmt);
                tx.execute("INSERT INTO h6b VALUES (2)");
            },
            lifeline::replayable, ec, d);
        INFO(stmt);
        CHECK(ec == errc::implicit_commit);
        db->execute("UNLOCK TABLES");
    }
}

// --- hole 7: fencing trusts the server's identity, not a bare id -------------------------------------

TEST_CASE("hole 7: after a restart the old session id may be an innocent session: never killed",
          "[safety][capi][hole7][disruptive]") {
    auto srv = server::attach();
    admin(srv, "CREATE TABLE lifeline_test.h7 (ref VARCHAR(20) PRIMARY KEY) ENGINE=InnoDB");
    lifeline::testing::fault_proxy proxy{srv.where().host, static_cast<std::uint16_t>(srv.where().port)};
    connect_options o = options_for(srv.where());
    o.port = proxy.port();
    default_policy p;
    p.retry.deadline = 60s;
    p.breaker.failure_threshold = 1000000;
    auto db = make_db(o, p);
    db->connect();
    const auto old_id = db->connection_id();
    mysql_handle innocent;
    std::atomic<bool> staged{false};
    std::string stage_error;
    // Once the COMMIT's answer is lost: crash and restart the server, and open sessions (same account,
    // directly) until one has the old id; only then let lifeline reconnect.
    std::thread stage([&] {
        try {
            eventually([&] { return proxy.stats().commits_cut == 1; }, 30s);
            srv.crash();
            srv.start_again();
            std::vector<mysql_handle> fillers;
            for (int i = 0; i < 10000; ++i) {
                auto m = capi_connect(srv.where());
                const auto id = std::stoull(capi_scalar(m.get(), "SELECT CONNECTION_ID()"));
                if (id == old_id) {
                    innocent = std::move(m);
                    break;
                }
                if (id > old_id) throw server_error("the restarted server skipped id " + std::to_string(old_id));
                fillers.push_back(std::move(m));
            }
        } catch (const std::exception& e) {
            stage_error = e.what();
        }
        staged = true;
        proxy.refuse_new(false);
    });
    std::error_code ec;
    diagnostics d;
    auto tr = db->transaction(
        [&](auto& tx) {
            tx.execute("INSERT INTO h7 VALUES ('order-7')");
            proxy.refuse_new(true);  // lifeline's reconnects are refused until the stage is set
            proxy.cut_on_commit(lifeline::testing::commit_cut::after_forward);
        },
        lifeline::replayable_resolved, ec, d);
    stage.join();
    proxy.pass();
    REQUIRE(stage_error.empty());
    REQUIRE(innocent);
    INFO(ec.message() << " | " << d.client_message);
    CHECK_FALSE(ec);
    CHECK(tr.commit_resolved);
    // The innocent session with the old id is alive: lifeline knew the server had restarted.
    CHECK(capi_scalar(innocent.get(), "SELECT 'still here'") == "still here");
    CHECK(scalar(srv, "SELECT COUNT(*) FROM h7") == "1");
}

// --- hole 8: every blocking call runs under the caller's deadline -----------------------------------

namespace {
struct proxied {
    server srv = server::attach();
    lifeline::testing::fault_proxy proxy{srv.where().host, static_cast<std::uint16_t>(srv.where().port)};
    connect_options options() const {
        connect_options o = options_for(srv.where());
        o.port = proxy.port();
        o.io_timeout = 30s;  // the driver's own safety net: far beyond every deadline below
        return o;
    }
    ~proxied() { proxy.pass(); }
};
default_policy always_ping() {
    default_policy p;
    p.health.ping_after_idle = std::chrono::nanoseconds(0);  // the before-use ping always runs
    return p;
}
}  // namespace

TEST_CASE("hole 8: the before-use ping of a silently dropped connection ends at the deadline", "[safety][capi][hole8]") {
    proxied r;
    auto db = make_db(r.options(), always_ping());
    db->connect();
    r.proxy.blackhole();
    const auto t0 = clk::now();
    std::error_code ec;
    diagnostics d;
    db->query("SELECT 1", lifeline::idempotent, call_options{500ms}, ec, d);
    const auto took = clk::now() - t0;
    CHECK(ec);
    CHECK(took < 5s);  // not io_timeout (30 s)
}

TEST_CASE("hole 8: pool.borrow(2s) on a silently dropped connection returns by its timeout", "[safety][capi][hole8]") {
    proxied r;
    pool_options po;
    po.max_size = 1;
    po.housekeeping_interval = 0ms;
    lifeline::pool<lifeline::capi> p(r.options(), po, always_ping());
    { auto c = p.borrow(5s); }
    r.proxy.blackhole();
    const auto t0 = clk::now();
    std::error_code ec;
    diagnostics d;
    auto c = p.borrow(2s, ec, d);
    const auto took = clk::now() - t0;
    CHECK_FALSE(c);
    CHECK(ec == errc::pool_exhausted);
    CHECK(took < 6s);
}

TEST_CASE("hole 8: a verification check that hangs is cut at the deadline: verification_failed", "[safety][capi][hole8]") {
    proxied r;
    admin(r.srv, "CREATE TABLE lifeline_test.h8v (v INT) ENGINE=InnoDB");
    auto db = make_db(r.options());
    db->connect();
    const auto id = db->connection_id();
    std::error_code ec;
    diagnostics d;
    const auto t0 = clk::now();
    {
        after killer(0ms, [&] { admin_kill_when_busy(r.srv.where(), id); });
        db->execute("INSERT INTO h8v SELECT 1 FROM (SELECT SLEEP(1)) s",
                    lifeline::verify_with([&](MYSQL* m) {
                        r.proxy.blackhole();  // the check's own query now hangs
                        mysql_query(m, "SELECT COUNT(*) FROM h8v");
                        return write_check::unknown;
                    }),
                    call_options{4s}, ec, d);
    }
    const auto took = clk::now() - t0;
    CHECK(ec == errc::verification_failed);
    CHECK(took < 9s);
}

TEST_CASE("hole 8: ROLLBACK after the function's own exception is bounded by the deadline", "[safety][capi][hole8]") {
    proxied r;
    admin(r.srv, "CREATE TABLE lifeline_test.h8r (v INT) ENGINE=InnoDB");
    auto db = make_db(r.options());
    db->connect();
    transaction_options o;
    o.deadline = 1s;
    const auto t0 = clk::now();
    CHECK_THROWS_AS(db->transaction(
                        [&](auto& tx) {
                            tx.execute("INSERT INTO h8r VALUES (1)");
                            r.proxy.blackhole();
                            throw std::runtime_error("the caller's own failure");
                        },
                        o),
                    std::runtime_error);
    CHECK(clk::now() - t0 < 6s);
}

TEST_CASE("hole 8: a slow session-restore statement is bounded by the deadline", "[safety][capi][hole8]") {
    auto srv = server::attach();
    db_type::session_spec spec;
    spec.statements = {"DO SLEEP(10)"};
    auto db = make_db(options_for(srv.where()), {}, spec);
    const auto t0 = clk::now();
    std::error_code ec;
    diagnostics d;
    db->connect(call_options{700ms}, ec, d);
    CHECK(ec);
    CHECK(clk::now() - t0 < 5s);
}

// --- hole 9: no deadline means no deadline, not an overflow -----------------------------------------

TEST_CASE("hole 9: call_options{milliseconds::max()} means no deadline", "[safety][capi][hole9]") {
    auto srv = server::attach();
    auto db = make_db(options_for(srv.where()));
    std::error_code ec;
    diagnostics d;
    auto r = db->query("SELECT SLEEP(0.2), 7", lifeline::idempotent, call_options{std::chrono::milliseconds::max()}, ec, d);
    CHECK_FALSE(ec);
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0][1] == std::optional<std::string>("7"));
    transaction_options o;
    o.deadline = std::chrono::milliseconds::max();
    db->transaction([](auto& tx) { tx.execute("DO 1"); }, o, ec, d);
    CHECK_FALSE(ec);
    db->connect(call_options{std::chrono::milliseconds::max()}, ec, d);
    CHECK_FALSE(ec);
}
