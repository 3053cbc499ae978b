// Smoke tests: both raw drivers against the harness server, and the article's fault (row 1 of
// fault-matrix.md): KILL CONNECTION during a query gives 2013 in both drivers.
#include "capi_support.hpp"
#include "jdbc_support.hpp"

#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <catch2/catch.hpp>

#include <chrono>

using namespace lifeline::test;
using namespace std::chrono_literals;

TEST_CASE("Connector/C connects and runs SELECT 1", "[smoke][capi]") {
    auto srv = server::attach();
    auto m = capi_connect(srv.where());
    CHECK(capi_scalar(m.get(), "SELECT 1") == "1");
    CHECK(capi_scalar(m.get(), "SELECT DATABASE()") == srv.where().database);
}

TEST_CASE("Connector/C: KILL CONNECTION during a query is 2013", "[smoke][capi]") {
    auto srv = server::attach();
    auto m = capi_connect(srv.where());
    auto id = mysql_thread_id(m.get());
    auto started = std::chrono::steady_clock::now();
    int rc = 0;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        rc = mysql_query(m.get(), "SELECT SLEEP(5)");
    }
    CHECK(rc != 0);
    CHECK(mysql_errno(m.get()) == 2013);
    CHECK(std::string(mysql_sqlstate(m.get())) == "HY000");
    CHECK(std::chrono::steady_clock::now() - started < 4s);
    // The connection is dead afterwards (fault matrix: next query 2006).
    CHECK(mysql_query(m.get(), "SELECT 1") != 0);
    CHECK(mysql_errno(m.get()) == 2006);
}

TEST_CASE("Connector/C: a fresh connection survives a server restart", "[smoke][capi]") {
    auto srv = server::attach();
    auto before = capi_connect(srv.where());
    pid_t old_pid = srv.pid();
    srv.restart();
    CHECK(srv.pid() != old_pid);
    CHECK(mysql_query(before.get(), "SELECT 1") != 0);  // the old session is gone
    auto after_restart = capi_connect(srv.where());
    CHECK(capi_scalar(after_restart.get(), "SELECT 1") == "1");
}

TEST_CASE("Connector/C++ connects and runs SELECT 1", "[smoke][jdbc]") {
    auto srv = server::attach();
    auto c = jdbc_connect(srv.where());
    std::unique_ptr<sql::Statement> st(c->createStatement());
    std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT 1"));
    REQUIRE(rs->next());
    CHECK(rs->getInt(1) == 1);
}

TEST_CASE("Connector/C++: KILL CONNECTION during a query is 2013", "[smoke][jdbc]") {
    auto srv = server::attach();
    auto c = jdbc_connect(srv.where());
    std::unique_ptr<sql::Statement> st(c->createStatement());
    unsigned long id = 0;
    {
        std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT CONNECTION_ID()"));
        REQUIRE(rs->next());
        id = static_cast<unsigned long>(rs->getUInt64(1));
    }
    int code = 0;
    {
        after killer(0ms, [&] { admin_kill_when_busy(srv.where(), id); });
        try {
            std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT SLEEP(5)"));
        } catch (const sql::SQLException& e) {
            code = e.getErrorCode();
        }
    }
    CHECK(code == 2013);
}

TEST_CASE("Connector/C++: a fresh connection survives a server restart", "[smoke][jdbc]") {
    auto srv = server::attach();
    srv.restart();
    auto c = jdbc_connect(srv.where());
    std::unique_ptr<sql::Statement> st(c->createStatement());
    std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT 1"));
    REQUIRE(rs->next());
    CHECK(rs->getInt(1) == 1);
}
