// Long statements (label options): with lifeline's defaults a plain 45 s statement is not cut; a
// per-call no_deadline and a per-call io_timeout keep lifeline out of the way or bound each wait;
// and when lifeline's deadline (or io_timeout) does cut a statement, the server stops running it:
// the reaper KILLs the cut session from a side connection, which the test sees in the processlist.
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/detail/reaper.hpp>
#include <lifeline/driver/capi.hpp>
#include <lifeline/driver/jdbc.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

template <class Driver>
std::unique_ptr<lifeline::connection<Driver>> make_db(connect_options o, default_policy p = {}) {
    auto db = std::make_unique<lifeline::connection<Driver>>(std::move(o), p);
    db->set_retry_budget(std::make_shared<retry_budget>(p.budget));
    db->set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
    return db;
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
    const auto until = clk::now() + limit;
    while (clk::now() < until) {
        if (pred()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

// The processlist as an admin sees it: is session `id` still there?
bool present(MYSQL* admin, std::uint64_t id) {
    return capi_scalar(admin, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + std::to_string(id)) != "0";
}

template <class Driver>
void plain_45s_statement(const endpoint& e) {
    // lifeline's defaults throughout: connect_options{} (io_timeout 0) and default_policy (60 s).
    auto db = make_db<Driver>(options_for(e));
    const auto t0 = clk::now();
    std::error_code ec;
    diagnostics d;
    auto r = db->query("SELECT SLEEP(45)", {}, {}, ec, d);
    const double took = std::chrono::duration<double>(clk::now() - t0).count();
    INFO(ec.message() << " | " << d.client_message);
    CHECK_FALSE(ec);
    CHECK(r.scalar() == std::optional<std::string>("0"));  // SLEEP ran to its end, uninterrupted
    CHECK(took >= 45.0);
    CHECK(r.attempts == 1);
    std::printf("long statement: SLEEP(45) with lifeline's defaults returned after %.1f s\n", took);
}

// Cuts `sql` (run by `db` on session `id`) at the call's bound; then the server must stop it.
template <class Db>
void cut_and_stopped(const endpoint& e, Db& db, const std::string& sql, call_options co, const char* cut_by) {
    db.connect();
    const std::uint64_t id = db.connection_id();
    auto admin = capi_connect(e, capi_options{true});
    const auto before = detail::reaper::instance().counters();
    std::error_code ec;
    diagnostics d;
    const auto t0 = clk::now();
    db.query(sql, {}, co, ec, d);
    const auto took = clk::now() - t0;
    INFO(ec.message() << " | " << d.client_message);
    CHECK(ec);
    CHECK(took < 5s);  // the caller got its answer at its bound, not when the statement ended
    CHECK(d.client_message.find(cut_by) != std::string::npos);
    CHECK(d.client_message.find("stopping it on the server: KILL CONNECTION " + std::to_string(id)) != std::string::npos);
    // The server no longer runs it: the session leaves the processlist (bounded, by events).
    CHECK(eventually([&] { return !present(admin.get(), id); }, 15s));
    CHECK(detail::reaper::instance().wait_idle(15s));
    CHECK(detail::reaper::instance().counters().killed == before.killed + 1);
}

}  // namespace

TEST_CASE("long statements: a plain 45 s statement is not cut with lifeline's defaults (C API)", "[options][long][capi]") {
    plain_45s_statement<capi>(server::attach().where());
}

TEST_CASE("long statements: a plain 45 s statement is not cut with lifeline's defaults (Connector/C++)",
          "[options][long][jdbc]") {
    plain_45s_statement<jdbc>(server::attach().where());
}

TEST_CASE("long statements: no_deadline keeps lifeline out of the way of a statement longer than the policy's deadline",
          "[options][kill]") {
    const auto srv = server::attach();
    default_policy p;
    p.retry.deadline = 1s;
    auto db = make_db<capi>(options_for(srv.where()), p);
    std::error_code ec;
    diagnostics d;
    const auto t0 = clk::now();
    auto r = db->query("SELECT SLEEP(3)", {}, call_options{no_deadline}, ec, d);
    CHECK_FALSE(ec);
    CHECK(r.scalar() == std::optional<std::string>("0"));
    CHECK(clk::now() - t0 >= 3s);
    // Without it the policy's 1 s applies (and the cut statement is stopped on the server).
    cut_and_stopped(srv.where(), *db, "SELECT SLEEP(30)", {}, "lifeline's deadline cut the statement");
}

TEST_CASE("long statements: a cut statement waiting for a row lock is stopped on the server (C API)", "[options][kill]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    auto locker = capi_connect(e);
    capi_exec(locker.get(), "CREATE TABLE kill_rows (id INT PRIMARY KEY, v INT)");
    capi_exec(locker.get(), "INSERT INTO kill_rows VALUES (1, 0)");
    capi_exec(locker.get(), "BEGIN");
    capi_exec(locker.get(), "SELECT * FROM kill_rows WHERE id = 1 FOR UPDATE");
    auto db = make_db<capi>(options_for(e));
    cut_and_stopped(e, *db, "UPDATE kill_rows SET v = v + 1 WHERE id = 1", call_options{1500ms},
                    "lifeline's deadline cut the statement");
    // Nothing of it remains: no InnoDB transaction waits for the row any more.
    auto admin = capi_connect(e, capi_options{true});
    CHECK(capi_scalar(admin.get(), "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'") ==
          "0");
    capi_exec(locker.get(), "COMMIT");
    CHECK(capi_scalar(locker.get(), "SELECT v FROM kill_rows WHERE id = 1") == "0");  // the cut UPDATE never applied
}

TEST_CASE("long statements: a per-call io_timeout bounds each wait, and the cut statement is stopped (Connector/C++)",
          "[options][kill]") {
    const auto srv = server::attach();
    auto db = make_db<jdbc>(options_for(srv.where()));
    call_options co{no_deadline};
    co.io_timeout = 1s;
    cut_and_stopped(srv.where(), *db, "SELECT SLEEP(30)", co, "io_timeout (call_options::io_timeout) cut the statement");
}

TEST_CASE("long statements: a cut run() callable's session is stopped too", "[options][kill]") {
    const auto srv = server::attach();
    auto db = make_db<capi>(options_for(srv.where()));
    db->connect();
    const std::uint64_t id = db->connection_id();
    auto admin = capi_connect(srv.where(), capi_options{true});
    std::error_code ec;
    diagnostics d;
    db->run([](MYSQL* m) { return mysql_query(m, "SELECT SLEEP(30)"); }, {}, call_options{1s}, ec, d);
    CHECK(ec);
    CHECK(d.client_message.find("KILL CONNECTION " + std::to_string(id)) != std::string::npos);
    CHECK(eventually([&] { return !present(admin.get(), id); }, 15s));
}
