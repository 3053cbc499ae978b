// lifeline::connection<capi> against the real server: every fault of the article, end to end.
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/driver/capi.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

using db_type = lifeline::connection<lifeline::capi>;

// Own budget per test so one test's outage does not starve the next.
std::unique_ptr<db_type> make_db(const server& srv, default_policy p = {}) {
    auto db = std::make_unique<db_type>(options_for(srv.where()), p);
    db->set_retry_budget(std::make_shared<retry_budget>(p.budget));
    db->set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
    return db;
}

std::string count_rows(const server& srv, const std::string& table) {
    auto m = capi_connect(srv.where());
    return capi_scalar(m.get(), "SELECT COUNT(*) FROM " + table);
}

struct thaw_guard {
    server& s;
    ~thaw_guard() { s.thaw(); }
};

// KILL (QUERY or CONNECTION) session `id` once it sleeps in SLEEP(): the statements below sleep only
// after their first rows went out, so the fault lands while the client is reading rows. True if
// it saw the sleep (the kill then came inside it: the sleep is 60 s).
bool kill_when_sleeping(const server& srv, std::uint64_t id, bool query_only) {
    auto admin = capi_connect(srv.where(), capi_options{true});
    const std::string probe = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + std::to_string(id) +
                              " AND STATE = 'User sleep'";
    const auto until = clk::now() + 30s;
    bool saw = false;
    while (!(saw = capi_scalar(admin.get(), probe) == "1") && clk::now() < until) std::this_thread::sleep_for(5ms);
    capi_exec(admin.get(), std::string(query_only ? "KILL QUERY " : "KILL CONNECTION ") + std::to_string(id));
    return saw;
}

// Rows 1-3 carry 64 KB each (more than the server's net buffer, so they are sent at once); row 4
// sleeps on session `id` only, so a retry on another session runs straight through.
std::string rows_then_sleep(std::uint64_t id) {
    return "SELECT seq, IF(seq <= 3, REPEAT('x', 65536), SLEEP(IF(CONNECTION_ID() = " + std::to_string(id) +
           ", 60, 0))) FROM seq_1_to_10";
}

}  // namespace

// lifeline's adapter reads rows as they arrive (mysql_use_result): a failure after some rows must
// fail the whole statement, and a retry must not add its rows to the first attempt's.
TEST_CASE("capi: a statement interrupted while its rows arrive fails whole: no partial result", "[retry][capi]") {
    auto srv = server::attach();
    {
        // The premise, on the raw C API: three rows reach the client, then the error.
        auto raw = capi_connect(srv.where());
        const auto raw_id = mysql_thread_id(raw.get());
        const std::string sql = rows_then_sleep(raw_id);
        int rows = 0;
        unsigned err = 0;
        bool saw = false;
        {
            after killer(0ms, [&] { saw = kill_when_sleeping(srv, raw_id, true); });
            REQUIRE(mysql_real_query(raw.get(), sql.data(), static_cast<unsigned long>(sql.size())) == 0);
            MYSQL_RES* res = mysql_use_result(raw.get());
            REQUIRE(res != nullptr);
            while (mysql_fetch_row(res) != nullptr) ++rows;
            err = mysql_errno(raw.get());
            mysql_free_result(res);
        }
        REQUIRE(saw);
        CHECK(rows == 3);
        CHECK(err == 1317);
    }
    auto db = make_db(srv);
    db->connect();
    const auto id = db->connection_id();
    result r;
    std::error_code ec;
    diagnostics d;
    bool saw = false;
    {
        after killer(0ms, [&] { saw = kill_when_sleeping(srv, id, true); });
        db->query(rows_then_sleep(id), r, lifeline::idempotent, {}, ec, d);
    }
    REQUIRE(saw);
    CHECK(ec == make_driver_error_code(1317));  // interrupted: not retried
    CHECK(d.where == phase::fetch);
    CHECK(r.rows.empty());  // not the three rows that came before the error
    CHECK(db->connection_id() == id);  // usable: the same session goes on
    db->query("SELECT 'next'", r, lifeline::idempotent);
    CHECK(r.scalar() == std::optional<std::string>("next"));
}

TEST_CASE("capi: a connection lost while rows arrive is retried into a clean result", "[retry][capi]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->connect();
    const auto id = db->connection_id();
    result r;
    bool saw = false;
    {
        after killer(0ms, [&] { saw = kill_when_sleeping(srv, id, false); });
        db->query(rows_then_sleep(id), r, lifeline::idempotent);
    }
    REQUIRE(saw);
    CHECK(r.attempts == 2);
    CHECK(db->connection_id() != id);
    REQUIRE(r.rows.size() == 10);  // the second attempt's rows only
    for (std::size_t i = 0; i < r.rows.size(); ++i)
        CHECK(r.rows[i][0] == std::optional<std::string>(std::to_string(i + 1)));
    CHECK(r.rows[0][1]->size() == 65536);
}

TEST_CASE("capi: OPT_RECONNECT is off on every connection lifeline makes", "[retry][capi]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->connect();
    my_bool on = 1;
    mysql_get_option(db->native(), MYSQL_OPT_RECONNECT, &on);
    CHECK(on == 0);
    auto first = db->connection_id();
    admin_kill(srv.where(), first);
    db->query("SELECT 1", lifeline::idempotent);
    CHECK(db->connection_id() != first);
    on = 1;
    mysql_get_option(db->native(), MYSQL_OPT_RECONNECT, &on);
    CHECK(on == 0);
}

TEST_CASE("capi: an idempotent SELECT survives KILL CONNECTION mid-query", "[retry][capi]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->connect();
    auto id = db->connection_id();
    result r;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        r = db->query("SELECT SLEEP(1), 'answer'", lifeline::idempotent);
    }
    CHECK(r.attempts == 2);
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0][1] == std::optional<std::string>("answer"));
    CHECK(db->connection_id() != id);
}

TEST_CASE("capi: an idempotent SELECT survives a server restart during the query", "[retry][capi][disruptive]") {
    auto srv = server::attach();
    default_policy p;
    p.retry.max_attempts = 50;
    p.retry.deadline = 60s;
    p.breaker.failure_threshold = 1000;
    auto db = make_db(srv, p);
    db->connect();
    result r;
    {
        after restart(300ms, [&] { srv.restart(); });
        r = db->query("SELECT SLEEP(2), 'after restart'", lifeline::idempotent);
    }
    CHECK(r.attempts >= 2);
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0][1] == std::optional<std::string>("after restart"));
}

TEST_CASE("capi: wait_timeout is survived without a failed attempt", "[retry][capi]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->session().statements = {"SET SESSION wait_timeout = 1"};
    db->connect();
    auto id = db->connection_id();
    std::this_thread::sleep_for(2500ms);  // the server closes the idle session
    auto r = db->query("SELECT 'still here'", lifeline::idempotent);
    CHECK(r.attempts == 1);
    CHECK(r.scalar() == std::optional<std::string>("still here"));
    CHECK(db->connection_id() != id);
}

TEST_CASE("capi: a non-idempotent INSERT hit by KILL CONNECTION is not re-sent", "[retry][capi]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE ins_kill (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    db->connect();
    auto id = db->connection_id();
    std::error_code ec;
    diagnostics d;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        db->execute("INSERT INTO ins_kill (v) SELECT 1 FROM (SELECT SLEEP(1)) AS s", {}, {}, ec, d);
    }
    CHECK(ec == errc::outcome_unknown);
    CHECK(d.code == 2013);
    auto rows = count_rows(srv, "ins_kill");
    CHECK((rows == "0" || rows == "1"));  // what the caller was told: maybe; never two
}

TEST_CASE("capi: an unknown write is verified, then re-sent exactly once", "[retry][capi]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE ins_verify (k VARCHAR(20) PRIMARY KEY, v INT) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    db->connect();
    auto id = db->connection_id();
    int checks = 0;
    result r;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        r = db->execute("INSERT INTO ins_verify SELECT 'order-1', 1 FROM (SELECT SLEEP(1)) AS s",
                        verify_with([&](MYSQL* m) {
                            ++checks;
                            return capi_scalar(m, "SELECT COUNT(*) FROM ins_verify WHERE k = 'order-1'") == "1"
                                       ? write_check::applied
                                       : write_check::not_applied;
                        }));
    }
    CHECK(checks == 1);
    CHECK(count_rows(srv, "ins_verify") == "1");
    CHECK((r.verified || r.attempts == 2));
}

TEST_CASE("capi: a connection killed while idle is caught before sending; the INSERT runs once", "[retry][capi]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE ins_idle (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    db->connect();
    admin_kill(srv.where(), db->connection_id());
    std::this_thread::sleep_for(100ms);
    auto r = db->execute("INSERT INTO ins_idle VALUES ()");  // not idempotent, and no error
    CHECK(r.attempts == 1);
    CHECK(count_rows(srv, "ins_idle") == "1");
}

TEST_CASE("capi: session variables, time zone, sql_mode and schema survive a reconnect", "[retry][capi]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->session().time_zone = "+05:30";
    db->session().sql_mode = "ANSI_QUOTES";
    db->session().statements = {"SET @marker = 42"};
    db->connect();
    admin_kill(srv.where(), db->connection_id());
    auto r = db->query("SELECT @marker, DATABASE(), @@time_zone, @@sql_mode", lifeline::idempotent);
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0][0] == std::optional<std::string>("42"));
    CHECK(r.rows[0][1] == std::optional<std::string>(srv.where().database));
    CHECK(r.rows[0][2] == std::optional<std::string>("+05:30"));
    CHECK(r.rows[0][3] == std::optional<std::string>("ANSI_QUOTES"));
}

TEST_CASE("capi: unregistered session state is reported, not silently dropped", "[retry][capi]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->execute("SET @unregistered = 1");
    admin_kill(srv.where(), db->connection_id());
    std::error_code ec;
    diagnostics d;
    db->query("SELECT @unregistered", lifeline::idempotent, {}, ec, d);
    CHECK(ec == errc::session_state_lost);
    auto r = db->query("SELECT @unregistered", lifeline::idempotent);  // reported once, then fresh
    CHECK(r.scalar() == std::nullopt);
}

TEST_CASE("capi: a frozen server returns to the caller within its deadline + 10%", "[retry][capi][disruptive]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->connect();
    thaw_guard tg{srv};
    srv.freeze();
    for (auto deadline : {1500ms, 2500ms}) {
        std::error_code ec;
        diagnostics d;
        auto t0 = clk::now();
        db->query("SELECT 1", lifeline::idempotent, call_options{deadline}, ec, d);
        auto took = clk::now() - t0;
        INFO("deadline " << deadline.count() << " ms, took "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
        CHECK(ec == errc::deadline_exceeded);
        CHECK(took <= deadline * 11 / 10);
        CHECK(took >= deadline * 8 / 10);
    }
    // A non-idempotent write in flight when the deadline cuts it: unknown, and said so.
    srv.thaw();
    db->connect();
    srv.freeze();
    std::error_code ec;
    diagnostics d;
    auto t0 = clk::now();
    db->execute("DO 1", {}, call_options{1500ms}, ec, d);
    CHECK(clk::now() - t0 <= 1650ms);
    CHECK(ec == errc::outcome_unknown);
}

TEST_CASE("capi: a stopped server sees one paced prober, callers wait within their deadline, recovery is prompt",
          "[retry][capi][disruptive]") {
    auto srv = server::attach();
    default_policy p;
    p.retry.deadline = 1s;
    auto db = make_db(srv, p);
    db->set_endpoint_monitor(std::make_shared<endpoint_monitor>(p.probe));
    for (int i = 0; i < 5; ++i) db->query("SELECT 1", lifeline::idempotent);  // healthy
    srv.stop();
    const auto connects_before = db->stats().reconnects;
    const auto t0 = clk::now();
    for (int i = 0; i < 3; ++i) {
        std::error_code ec;
        diagnostics d;
        const auto c0 = clk::now();
        db->query("SELECT 1", lifeline::idempotent, {}, ec, d);
        CHECK(ec == errc::deadline_exceeded);  // waited for the prober's verdict within its deadline
        CHECK(clk::now() - c0 < 3s);
    }
    const double seconds = std::chrono::duration<double>(clk::now() - t0).count();
    const auto connects = db->stats().reconnects - connects_before;
    // At most one connect per min_interval (16 ms), however long the outage.
    CHECK(static_cast<double>(connects) <= seconds / 0.016 + 3);
    srv.start_again();
    const auto back = clk::now();
    db->query("SELECT 1", lifeline::idempotent, call_options{10s});
    CHECK(clk::now() - back < 2s);
    // Retries work again: a killed connection mid-query is retried.
    auto id = db->connection_id();
    result r;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        r = db->query("SELECT SLEEP(0.6)", lifeline::idempotent);
    }
    CHECK(r.attempts == 2);
}

TEST_CASE("capi: run() wraps existing C API code", "[retry][capi]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->connect();
    auto id = db->connection_id();
    int calls = 0;
    std::string got;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        got = db->run(
            [&](MYSQL* m) -> std::string {
                ++calls;
                if (mysql_query(m, "SELECT SLEEP(1), 'legacy'") != 0) return {};
                MYSQL_RES* res = mysql_store_result(m);
                if (!res) return {};
                MYSQL_ROW row = mysql_fetch_row(res);
                std::string v = row && row[1] ? row[1] : "";
                mysql_free_result(res);
                return v;
            },
            lifeline::idempotent);
    }
    CHECK(calls == 2);
    CHECK(got == "legacy");
}

// Found by the chaos test (seed 524815649): a callable's UPDATE was killed (1317) after its INSERT,
// inside its own BEGIN; lifeline said "failed", and the next callable's BEGIN committed the INSERT.
TEST_CASE("capi: run() that fails inside a transaction it began leaves nothing to commit later", "[retry][capi]") {
    auto srv = server::attach();
    {
        auto admin = capi_connect(srv.where());
        capi_exec(admin.get(), "CREATE TABLE run_txn (k INT PRIMARY KEY) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    db->connect();
    const auto id = db->connection_id();
    std::error_code ec;
    diagnostics d;
    db->run(
        [](MYSQL* m) {
            // Its own transaction; the second statement fails, so its COMMIT never runs.
            if (mysql_query(m, "BEGIN") == 0 && mysql_query(m, "INSERT INTO run_txn VALUES (1)") == 0 &&
                mysql_query(m, "UPDATE no_such_table SET k = 1") == 0)
                mysql_query(m, "COMMIT");
        },
        {}, {}, ec, d);
    CHECK(ec == make_driver_error_code(1146));  // a definite failure: "not done"
    // The next callable begins its own transaction and commits it (BEGIN would commit an open one).
    db->run([](MYSQL* m) { mysql_query(m, "BEGIN") == 0 && mysql_query(m, "COMMIT") == 0; }, lifeline::idempotent);
    CHECK(count_rows(srv, "run_txn") == "0");
    CHECK(db->connection_id() != id);  // the failed callable's session was closed: its transaction rolled back
}

TEST_CASE("capi: a server that is down gives a typed error within the deadline", "[retry][capi][disruptive]") {
    auto srv = server::attach();
    srv.stop();
    default_policy p;
    p.retry.deadline = 1500ms;
    p.retry.max_attempts = 100;
    p.breaker.failure_threshold = 100000;
    auto db = make_db(srv, p);
    std::error_code ec;
    diagnostics d;
    auto t0 = clk::now();
    db->query("SELECT 1", lifeline::idempotent, {}, ec, d);
    auto took = clk::now() - t0;
    CHECK(ec);
    CHECK(took <= 1650ms);
    CHECK(d.where == phase::connect);
    srv.start_again();
}

TEST_CASE("capi: inside a transaction a lost connection is reported, never retried", "[retry][capi]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE ctxn (id INT PRIMARY KEY) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    db->execute("BEGIN");
    db->execute("INSERT INTO ctxn VALUES (1)");
    admin_kill(srv.where(), db->connection_id());
    std::error_code ec;
    diagnostics d;
    db->execute("INSERT INTO ctxn VALUES (2)", lifeline::idempotent, {}, ec, d);
    CHECK(ec == errc::transaction_lost);
    db->execute("INSERT INTO ctxn VALUES (3)", {}, {}, ec, d);
    CHECK(ec == errc::transaction_lost);  // the mysql_reconnect trap: no silent autocommit
    db->execute("ROLLBACK");              // the caller acknowledges and starts over
    db->execute("INSERT INTO ctxn VALUES (4)");
    CHECK(count_rows(srv, "ctxn") == "1");
}

TEST_CASE("capi: a statement over max_allowed_packet is refused before it costs the connection", "[retry][capi]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE big_rows (v LONGTEXT) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    db->connect();
    auto id = db->connection_id();
    std::string big = "INSERT INTO big_rows VALUES ('" + std::string(20u << 20, 'x') + "')";
    std::error_code ec;
    diagnostics d;
    db->execute(big, lifeline::idempotent, {}, ec, d);
    CHECK(ec == errc::statement_too_large);
    CHECK(db->connection_id() == id);  // still the same session: nothing was sent
    CHECK(db->query("SELECT 1", lifeline::idempotent).scalar() == std::optional<std::string>("1"));
    CHECK(count_rows(srv, "big_rows") == "0");
}

TEST_CASE("capi: prepared statements are re-prepared after a reconnect", "[retry][capi]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE prep (k VARCHAR(10) PRIMARY KEY, v INT NULL) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    auto ins = db->prepare("INSERT INTO prep VALUES (?, ?)");
    auto sel = db->prepare("SELECT k, v, v * 2 AS twice FROM prep WHERE k = ?");
    db->execute(ins, {std::string("a"), std::string("21")});
    db->execute(ins, {std::string("n"), std::nullopt});
    auto first = db->connection_id();
    admin_kill(srv.where(), first);
    db->execute(ins, {std::string("b"), std::string("7")});  // new session, prepared again, sent once
    CHECK(db->connection_id() != first);
    auto r = db->execute(sel, {std::string("a")}, lifeline::idempotent);
    REQUIRE(r.rows.size() == 1);
    CHECK(r.columns == std::vector<std::string>{"k", "v", "twice"});
    CHECK(r.rows[0][0] == std::optional<std::string>("a"));
    CHECK(r.rows[0][1] == std::optional<std::string>("21"));
    CHECK(r.rows[0][2] == std::optional<std::string>("42"));
    auto nul = db->execute(sel, {std::string("n")}, lifeline::idempotent);
    REQUIRE(nul.rows.size() == 1);
    CHECK(nul.rows[0][1] == std::nullopt);
    CHECK(count_rows(srv, "prep") == "3");
}

TEST_CASE("capi: run() and connect() do not inherit an earlier statement's error", "[retry][capi]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    std::error_code ec;
    diagnostics d;
    db->query("SELECT * FROM no_such_table", lifeline::idempotent, {}, ec, d);
    REQUIRE(ec == make_driver_error_code(1146));  // mysql_errno() now holds 1146
    auto id = db->connection_id();
    db->connect({}, ec, d);
    CHECK_FALSE(ec);
    int calls = 0;
    db->run([&](MYSQL*) { ++calls; }, {}, {}, ec, d);  // sends nothing
    CHECK_FALSE(ec);
    CHECK(calls == 1);
    CHECK(db->connection_id() == id);
}
