// transaction() against the real server: a deadlock victim and a killed session are replayed as a
// whole, exactly once, and the books still balance.
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/driver/capi.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;

namespace {

using db_type = lifeline::connection<lifeline::capi>;

std::unique_ptr<db_type> make_db(const server& srv) {
    default_policy p;
    auto db = std::make_unique<db_type>(options_for(srv.where()), p);
    db->set_retry_budget(std::make_shared<retry_budget>(p.budget));
    db->set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
    return db;
}

void make_accounts(const server& srv, const std::string& table) {
    auto m = capi_connect(srv.where());
    capi_exec(m.get(), "CREATE TABLE " + table + " (id INT PRIMARY KEY, balance INT) ENGINE=InnoDB");
    capi_exec(m.get(), "INSERT INTO " + table + " VALUES (1, 100), (2, 100)");
    capi_exec(m.get(), "CREATE TABLE " + table + "_ledger (ref VARCHAR(20) PRIMARY KEY) ENGINE=InnoDB");
}

std::string scalar(const server& srv, const std::string& sql) {
    auto m = capi_connect(srv.where());
    return capi_scalar(m.get(), sql);
}

}  // namespace

TEST_CASE("transaction: a deadlock victim is replayed as a whole, once", "[transaction][capi]") {
    auto srv = server::attach();
    make_accounts(srv, "acc_dl");
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE dl_heavy (id INT PRIMARY KEY) ENGINE=InnoDB");
    }
    auto other = capi_connect(srv.where());
    // The other transaction holds row 2 and has done much more work, so InnoDB picks ours as victim.
    capi_exec(other.get(), "BEGIN");
    capi_exec(other.get(), "INSERT INTO dl_heavy SELECT seq FROM seq_1_to_2000");
    capi_exec(other.get(), "UPDATE acc_dl SET balance = balance + 1 WHERE id = 2");
    auto db = make_db(srv);
    int runs = 0;
    transaction_result r;
    {
        after closer(600ms, [&] {
            // Ours waits for row 2 while holding row 1; this closes the cycle.
            mysql_query(other.get(), "UPDATE acc_dl SET balance = balance - 1 WHERE id = 1");
            mysql_query(other.get(), "COMMIT");
        });
        r = db->transaction([&](auto& tx) {
            ++runs;
            tx.execute("UPDATE acc_dl SET balance = balance - 10 WHERE id = 1");
            tx.execute("UPDATE acc_dl SET balance = balance + 10 WHERE id = 2");
            tx.execute("INSERT INTO acc_dl_ledger VALUES ('move-1')");
        }, lifeline::replayable);
    }
    CHECK(runs == 2);
    CHECK(r.attempts == 2);
    CHECK(scalar(srv, "SELECT COUNT(*) FROM acc_dl_ledger") == "1");
    CHECK(scalar(srv, "SELECT SUM(balance) FROM acc_dl") == "200");
    CHECK(scalar(srv, "SELECT balance FROM acc_dl WHERE id = 1") == "89");  // -10 ours, -1 theirs
}

TEST_CASE("transaction: a session killed mid-transaction is replayed on a new one", "[transaction][capi]") {
    auto srv = server::attach();
    make_accounts(srv, "acc_kill");
    auto db = make_db(srv);
    int runs = 0;
    auto r = db->transaction([&](auto& tx) {
        ++runs;
        tx.execute("UPDATE acc_kill SET balance = balance - 10 WHERE id = 1");
        if (runs == 1) admin_kill(srv.where(), db->connection_id());  // the link dies before COMMIT
        tx.execute("UPDATE acc_kill SET balance = balance + 10 WHERE id = 2");
        tx.execute("INSERT INTO acc_kill_ledger VALUES ('move-1')");
    }, lifeline::replayable_resolved);
    CHECK(runs == 2);
    CHECK(r.attempts == 2);
    CHECK_FALSE(r.commit_resolved);  // lost before COMMIT: no resolution needed
    CHECK(scalar(srv, "SELECT COUNT(*) FROM acc_kill_ledger") == "1");
    CHECK(scalar(srv, "SELECT balance FROM acc_kill WHERE id = 1") == "90");
    CHECK(scalar(srv, "SELECT SUM(balance) FROM acc_kill") == "200");
    CHECK(scalar(srv, "SELECT COUNT(*) FROM lifeline_commit_marker") == "1");  // only the committed run's token
}

TEST_CASE("transaction: not replayable, a killed session is reported and nothing is half-done", "[transaction][capi]") {
    auto srv = server::attach();
    make_accounts(srv, "acc_nr");
    auto db = make_db(srv);
    std::error_code ec;
    diagnostics d;
    int runs = 0;
    db->transaction([&](auto& tx) {
        ++runs;
        tx.execute("UPDATE acc_nr SET balance = balance - 10 WHERE id = 1");
        admin_kill(srv.where(), db->connection_id());
        tx.execute("UPDATE acc_nr SET balance = balance + 10 WHERE id = 2");
    }, transaction_options{}, ec, d);
    CHECK(ec == errc::transaction_lost);
    CHECK(runs == 1);
    CHECK(scalar(srv, "SELECT balance FROM acc_nr WHERE id = 1") == "100");  // rolled back by the server
    // The connection is usable for the next call.
    CHECK(db->query("SELECT 1", lifeline::idempotent).scalar() == std::optional<std::string>("1"));
}
