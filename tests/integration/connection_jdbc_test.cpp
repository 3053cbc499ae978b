// lifeline::connection<jdbc> (Connector/C++ 1.1) against the real server.
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/driver/jdbc.hpp>

#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;

namespace {

using db_type = lifeline::connection<lifeline::jdbc>;

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

}  // namespace

// Connector/C++ 1.1 cannot read OPT_RECONNECT back (getClientOption throws), so this asserts
// what the option would change: a killed session surfaces through the raw handle instead of
// being silently replaced by a new one.
bool raw_query_fails(sql::Connection& c) {
    try {
        std::unique_ptr<sql::Statement> st(c.createStatement());
        std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT 1"));
        return false;
    } catch (const sql::SQLException& e) {
        return e.getErrorCode() == 2006 || e.getErrorCode() == 2013;
    }
}

TEST_CASE("jdbc: OPT_RECONNECT is off on every connection lifeline makes", "[retry][jdbc]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->connect();
    admin_kill(srv.where(), db->connection_id());
    std::this_thread::sleep_for(100ms);
    CHECK(raw_query_fails(db->native()));
    db->close();
    db->query("SELECT 1", lifeline::idempotent);  // a second connection, made by lifeline
    admin_kill(srv.where(), db->connection_id());
    std::this_thread::sleep_for(100ms);
    CHECK(raw_query_fails(db->native()));
}

TEST_CASE("jdbc: an idempotent SELECT survives KILL CONNECTION mid-query", "[retry][jdbc]") {
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
}

TEST_CASE("jdbc: wait_timeout is survived (ping after the idle window)", "[retry][jdbc]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->session().statements = {"SET SESSION wait_timeout = 1"};
    db->connect();
    auto id = db->connection_id();
    std::this_thread::sleep_for(2500ms);
    auto r = db->query("SELECT 'still here'", lifeline::idempotent);
    CHECK(r.attempts == 1);
    CHECK(r.scalar() == std::optional<std::string>("still here"));
    CHECK(db->connection_id() != id);
    CHECK(db->stats().pings == 0);  // recycled before wait_timeout: no ping wasted on it
}

TEST_CASE("jdbc: a connection killed while idle is caught before sending; the INSERT runs once", "[retry][jdbc]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE jins_idle (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    db->connect();
    admin_kill(srv.where(), db->connection_id());
    std::this_thread::sleep_for(100ms);
    auto r = db->execute("INSERT INTO jins_idle VALUES ()");  // not idempotent
    CHECK(r.attempts == 1);
    CHECK(db->stats().pings == 0);  // the socket Connector/C++ hides was found and polled instead
    CHECK(count_rows(srv, "jins_idle") == "1");
}

TEST_CASE("jdbc: a frozen server returns to the caller within its deadline + 10%", "[retry][jdbc][disruptive]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->connect();
    struct thaw_guard {
        server& s;
        ~thaw_guard() { s.thaw(); }
    } tg{srv};
    srv.freeze();
    std::error_code ec;
    diagnostics d;
    auto t0 = std::chrono::steady_clock::now();
    db->query("SELECT 1", lifeline::idempotent, call_options{1500ms}, ec, d);
    auto took = std::chrono::steady_clock::now() - t0;
    INFO("took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(ec == errc::deadline_exceeded);
    CHECK(took <= 1650ms);
}

TEST_CASE("jdbc: a non-idempotent INSERT hit by KILL CONNECTION is not re-sent", "[retry][jdbc]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE jins_kill (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    db->connect();
    auto id = db->connection_id();
    std::error_code ec;
    diagnostics d;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        db->execute("INSERT INTO jins_kill (v) SELECT 1 FROM (SELECT SLEEP(1)) AS s", {}, {}, ec, d);
    }
    CHECK(ec == errc::outcome_unknown);
    auto rows = count_rows(srv, "jins_kill");
    CHECK((rows == "0" || rows == "1"));
}

TEST_CASE("jdbc: session variables and schema survive a reconnect", "[retry][jdbc]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->session().time_zone = "+02:00";
    db->session().statements = {"SET @marker = 42"};
    db->connect();
    admin_kill(srv.where(), db->connection_id());
    std::this_thread::sleep_for(100ms);
    auto r = db->query("SELECT @marker, DATABASE(), @@time_zone", lifeline::idempotent);
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0][0] == std::optional<std::string>("42"));
    CHECK(r.rows[0][1] == std::optional<std::string>(srv.where().database));
    CHECK(r.rows[0][2] == std::optional<std::string>("+02:00"));
}

TEST_CASE("jdbc: run() wraps existing Connector/C++ code", "[retry][jdbc]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->connect();
    auto id = db->connection_id();
    int calls = 0;
    int got = 0;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        got = db->run(
            [&](sql::Connection& c) {
                ++calls;
                std::unique_ptr<sql::Statement> st(c.createStatement());
                std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT SLEEP(1) + 7"));
                return rs->next() ? rs->getInt(1) : -1;
            },
            lifeline::idempotent);
    }
    CHECK(calls == 2);
    CHECK(got == 7);
}

TEST_CASE("jdbc: inside a transaction a lost connection is reported, never retried", "[retry][jdbc]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE jtxn (id INT PRIMARY KEY) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    db->execute("BEGIN");
    db->execute("INSERT INTO jtxn VALUES (1)");
    admin_kill(srv.where(), db->connection_id());
    std::error_code ec;
    diagnostics d;
    db->execute("INSERT INTO jtxn VALUES (2)", lifeline::idempotent, {}, ec, d);
    CHECK(ec == errc::transaction_lost);
    db->execute("INSERT INTO jtxn VALUES (3)", {}, {}, ec, d);
    CHECK(ec == errc::transaction_lost);  // not silently in autocommit on a new connection
    CHECK(count_rows(srv, "jtxn") == "0");
}

TEST_CASE("jdbc: prepared statements are re-prepared after a reconnect", "[retry][jdbc]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE jprep (k VARCHAR(10) PRIMARY KEY, v INT NULL) ENGINE=InnoDB");
    }
    auto db = make_db(srv);
    auto ins = db->prepare("INSERT INTO jprep VALUES (?, ?)");
    auto sel = db->prepare("SELECT k, v FROM jprep WHERE k = ?");
    db->execute(ins, {std::string("a"), std::string("21")});
    auto first = db->connection_id();
    admin_kill(srv.where(), first);
    std::this_thread::sleep_for(1200ms);  // past the ping window: the dead session is found first
    db->execute(ins, {std::string("b"), std::nullopt});
    CHECK(db->connection_id() != first);
    auto r = db->execute(sel, {std::string("b")}, lifeline::idempotent);
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0][0] == std::optional<std::string>("b"));
    CHECK(r.rows[0][1] == std::nullopt);
    CHECK(count_rows(srv, "jprep") == "2");
}

TEST_CASE("jdbc: a result kept across calls holds exactly each statement's rows, columns and counts", "[retry][jdbc]") {
    auto srv = server::attach();
    auto db = make_db(srv);
    db->execute("CREATE TABLE jdbc_reuse (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(400))");
    const std::string longer(300, 'q');
    using row = std::vector<std::optional<std::string>>;
    result r;
    db->query("SELECT 'a' AS one, NULL AS two UNION ALL SELECT '" + longer + "', 'b' UNION ALL SELECT NULL, NULL", r,
              idempotent);
    CHECK(r.columns == std::vector<std::string>{"one", "two"});
    REQUIRE(r.rows.size() == 3);
    CHECK(r.rows[1] == row{longer, std::string("b")});
    CHECK(r.rows[2] == row{std::nullopt, std::nullopt});
    db->query("SELECT NULL AS x UNION ALL SELECT 'z'", r, idempotent);
    CHECK(r.columns == std::vector<std::string>{"x"});
    REQUIRE(r.rows.size() == 2);
    CHECK(r.rows[0] == row{std::nullopt});
    CHECK(r.rows[1] == row{std::string("z")});
    db->execute("INSERT INTO jdbc_reuse (v) VALUES ('w'), ('x')", r);
    CHECK(r.rows.empty());
    CHECK(r.columns.empty());
    CHECK(r.affected_rows == 2);
    auto st = db->prepare("SELECT v FROM jdbc_reuse WHERE id = ?");
    db->execute(st, {std::string("2")}, r, idempotent);
    CHECK(r.columns == std::vector<std::string>{"v"});
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0] == row{std::string("x")});
    CHECK(r.affected_rows == 0);
    std::error_code ec;
    diagnostics d;
    CHECK_FALSE(db->query("SELECT * FROM no_such_table", r, idempotent, {}, ec, d));
    CHECK(d.code == 1146);
    CHECK(r.rows.empty());
    CHECK(r.columns.empty());
}
