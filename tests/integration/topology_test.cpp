// The replicated-topology harness (tests/support/topology.hpp) proves itself against real servers:
// replication and read_only as a client sees them, a failover after SIGKILL of the primary with no
// acknowledged write lost, the old primary back as a replica, and clean-up when the owning process
// dies. Each entry starts its own topology (label failover); timings are printed.
#include "capi_support.hpp"
#include "topology.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

using namespace lifeline::test;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

long long ms_since(clock_type::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count();
}

struct sql_result {
    unsigned code = 0;  // 0: the statement succeeded
    std::string sqlstate;
    std::string message;
};

// Runs a statement whose failure the test inspects (capi_exec throws instead).
sql_result try_sql(MYSQL* m, const std::string& sql) {
    sql_result r;
    if (mysql_real_query(m, sql.data(), sql.size()) != 0) {
        r.code = mysql_errno(m);
        r.sqlstate = mysql_sqlstate(m);
        r.message = mysql_error(m);
        return r;
    }
    if (MYSQL_RES* res = mysql_store_result(m)) mysql_free_result(res);
    return r;
}

std::set<int> keys_of(const endpoint& e) {
    auto m = capi_connect(e);
    std::set<int> keys;
    if (mysql_query(m.get(), "SELECT k FROM t") != 0)
        throw server_error(std::string("SELECT k FROM t: ") + mysql_error(m.get()));
    MYSQL_RES* r = mysql_store_result(m.get());
    while (MYSQL_ROW row = mysql_fetch_row(r)) keys.insert(std::atoi(row[0]));
    mysql_free_result(r);
    return keys;
}

std::string checksum(const endpoint& e) {
    auto m = capi_connect(e);
    if (mysql_query(m.get(), "CHECKSUM TABLE t") != 0) throw server_error(mysql_error(m.get()));
    MYSQL_RES* r = mysql_store_result(m.get());
    MYSQL_ROW row = mysql_fetch_row(r);
    std::string v = (row && row[1]) ? row[1] : "";
    mysql_free_result(r);
    return v;
}

// Inserts k = 1, 2, ... as the application user on one connection, one autocommit INSERT each,
// until a statement fails or stop() is called; records which keys the server acknowledged.
class write_loop {
public:
    explicit write_loop(const endpoint& e) : thread_([this, e] { run(e); }) {}
    write_loop(const write_loop&) = delete;
    write_loop& operator=(const write_loop&) = delete;
    ~write_loop() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    int acked_count() const { return acked_count_; }
    std::vector<int> acked() {
        std::lock_guard<std::mutex> lock(mutex_);
        return acked_;
    }
    unsigned error() const { return error_; }
    std::string error_text() {
        std::lock_guard<std::mutex> lock(mutex_);
        return error_text_;
    }

private:
    void run(const endpoint& e) {
        try {
            capi_options o;
            o.read_timeout = 20;
            auto m = capi_connect(e, o);
            for (int k = 1; !stop_; ++k) {
                std::string sql = "INSERT INTO t (k, note) VALUES (" + std::to_string(k) + ", 'loop')";
                if (mysql_real_query(m.get(), sql.data(), sql.size()) != 0) {
                    std::lock_guard<std::mutex> lock(mutex_);
                    error_text_ = mysql_error(m.get());
                    error_ = mysql_errno(m.get());
                    return;
                }
                std::lock_guard<std::mutex> lock(mutex_);
                acked_.push_back(k);
                ++acked_count_;
            }
        } catch (const std::exception& ex) {
            std::lock_guard<std::mutex> lock(mutex_);
            error_text_ = ex.what();
            error_ = 1;
        }
    }

    std::mutex mutex_;
    std::vector<int> acked_;
    std::atomic<int> acked_count_{0};
    std::atomic<unsigned> error_{0};
    std::string error_text_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

void wait_for(std::chrono::milliseconds timeout, const std::string& what, const std::function<bool()>& done) {
    auto until = clock_type::now() + timeout;
    while (!done()) {
        if (clock_type::now() > until) FAIL("timed out after " << timeout.count() << " ms waiting for " << what);
        std::this_thread::sleep_for(20ms);
    }
}

}  // namespace

TEST_CASE("replicated topology: GTID semi-sync replication, read_only replicas, stop and start", "[failover][topology]") {
    auto t0 = clock_type::now();
    auto topo = replicated_topology::start();
    std::printf("timing: topology of 3 up in %lld ms\n", static_cast<long long>(topo.startup_time().count()));
    REQUIRE(topo.size() == 3);
    CHECK(topo.primary() == 0);
    CHECK(topo.source_of(0) == replicated_topology::none);
    std::set<unsigned> ports;
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(topo.endpoint(i).host == "127.0.0.1");
        CHECK(topo.endpoint(i).port != 3306);
        ports.insert(topo.endpoint(i).port);
        CHECK(topo.running(i));
        auto m = capi_connect(topo.endpoint(i));
        CHECK(capi_scalar(m.get(), "SELECT @@port") == std::to_string(topo.endpoint(i).port));
        CHECK(capi_scalar(m.get(), "SELECT @@server_id") == std::to_string(i + 1));
        CHECK(capi_scalar(m.get(), "SELECT @@gtid_strict_mode") == "1");
        CHECK(capi_scalar(m.get(), "SELECT @@binlog_format") == "ROW");
        CHECK(capi_scalar(m.get(), "SELECT @@log_slave_updates") == "1");
        CHECK(capi_scalar(m.get(), "SELECT @@rpl_semi_sync_master_wait_point") == "AFTER_SYNC");
        CHECK(capi_scalar(m.get(), "SELECT @@slave_net_timeout") == "5");
        CHECK(capi_scalar(m.get(), "SELECT @@global.read_only") == (i == 0 ? "0" : "1"));
        // The application user has neither SUPER nor READ ONLY ADMIN; the admin user has SUPER.
        CHECK(capi_scalar(m.get(), "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE IN "
                                   "('SUPER', 'READ_ONLY ADMIN', 'READ ONLY ADMIN')") == "0");
        auto admin = capi_connect(topo.endpoint(i), capi_options{true});
        CHECK(capi_scalar(admin.get(), "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE "
                                       "PRIVILEGE_TYPE='SUPER' AND GRANTEE LIKE '%lifeline_admin%'") != "0");
    }
    CHECK(ports.size() == 3);
    for (std::size_t i : {1u, 2u}) {
        CHECK(topo.source_of(i) == 0);
        auto st = topo.replica_status(i);
        CHECK(st["Slave_IO_Running"] == "Yes");
        CHECK(st["Slave_SQL_Running"] == "Yes");
        CHECK(st["Using_Gtid"] == "Slave_Pos");
        CHECK(st["Master_Port"] == std::to_string(topo.endpoint(0).port));
        CHECK(topo.global_status(i, "Rpl_semi_sync_slave_status") == "ON");
    }
    CHECK(topo.global_status(0, "Rpl_semi_sync_master_status") == "ON");
    CHECK(topo.global_status(0, "Rpl_semi_sync_master_clients") == "2");

    // A write on the primary is readable on both replicas once they applied its GTID.
    auto app = capi_connect(topo.endpoint(0));
    capi_exec(app.get(), "CREATE TABLE t (k INT PRIMARY KEY, note VARCHAR(32))");
    capi_exec(app.get(), "INSERT INTO t VALUES (1, 'on primary')");
    const std::string gtid = capi_scalar(app.get(), "SELECT @@last_gtid");
    CHECK(gtid.rfind("0-1-", 0) == 0);
    for (std::size_t i : {1u, 2u}) {
        auto t = clock_type::now();
        REQUIRE(topo.wait_replicated(i, gtid, 20s));
        std::printf("timing: node %zu applied %s %lld ms after the wait began\n", i, gtid.c_str(), ms_since(t));
        auto r = capi_connect(topo.endpoint(i));
        CHECK(capi_scalar(r.get(), "SELECT note FROM t WHERE k = 1") == "on primary");
        CHECK(capi_scalar(r.get(), "SELECT @@global.gtid_slave_pos") == gtid);
    }
    // Every transaction was acknowledged by a replica: none fell back to asynchronous.
    CHECK(std::stoi(topo.global_status(0, "Rpl_semi_sync_master_yes_tx")) >= 2);
    CHECK(topo.global_status(0, "Rpl_semi_sync_master_no_tx") == "0");
    // A GTID that never comes: MASTER_GTID_WAIT times out, bounded.
    {
        auto t = clock_type::now();
        CHECK_FALSE(topo.wait_replicated(1, "0-1-999999", 300ms));
        CHECK(ms_since(t) < 10000);
    }

    // The application user's writes on a replica fail with 1290 (read_only), nothing changes there.
    for (std::size_t i : {1u, 2u}) {
        auto r = capi_connect(topo.endpoint(i));
        for (const char* sql : {"INSERT INTO t VALUES (2, 'on replica')", "UPDATE t SET note = 'x' WHERE k = 1",
                                "CREATE TABLE u (k INT PRIMARY KEY)"}) {
            auto res = try_sql(r.get(), sql);
            INFO("node " << i << ": " << sql << " -> " << res.code << " " << res.message);
            CHECK(res.code == 1290);
            CHECK(res.sqlstate == "HY000");
            CHECK(res.message.find("--read-only") != std::string::npos);
        }
        CHECK(capi_scalar(r.get(), "SELECT COUNT(*) FROM t") == "1");
        CHECK(topo.gtid_current_pos(i) == gtid);  // no errant transaction
    }

    // set_read_only bites on the primary too, and lifts again.
    topo.set_read_only(0, true);
    CHECK(try_sql(app.get(), "INSERT INTO t VALUES (3, 'refused')").code == 1290);
    topo.set_read_only(0, false);
    CHECK(try_sql(app.get(), "INSERT INTO t VALUES (3, 'accepted')").code == 0);

    // stop/start a replica: the primary keeps going on the other, the restarted one catches up.
    auto t = clock_type::now();
    pid_t old_pid = topo.pid(2);
    topo.stop(2);
    std::printf("timing: stop(replica) %lld ms\n", ms_since(t));
    CHECK_FALSE(topo.running(2));
    CHECK(topo.pid(2) == 0);
    CHECK_THROWS_AS(capi_connect(topo.endpoint(2)), server_error);
    wait_for(20s, "the primary to count one semi-sync replica",
             [&] { return topo.global_status(0, "Rpl_semi_sync_master_clients") == "1"; });
    for (int k = 10; k < 20; ++k)
        REQUIRE(try_sql(app.get(), "INSERT INTO t VALUES (" + std::to_string(k) + ", 'while 2 down')").code == 0);
    const std::string later = capi_scalar(app.get(), "SELECT @@last_gtid");
    t = clock_type::now();
    topo.start(2);
    std::printf("timing: start(replica) until replicating %lld ms\n", ms_since(t));
    CHECK(topo.running(2));
    CHECK(topo.pid(2) != old_pid);
    REQUIRE(topo.wait_replicated(2, later, 20s));
    {
        auto r = capi_connect(topo.endpoint(2));
        CHECK(capi_scalar(r.get(), "SELECT COUNT(*) FROM t WHERE note = 'while 2 down'") == "10");
        CHECK(capi_scalar(r.get(), "SELECT @@global.read_only") == "1");
    }
    topo.wait_semi_sync_clients(0, 2, 20s);
    CHECK(topo.global_status(0, "Rpl_semi_sync_master_status") == "ON");
    CHECK(topo.global_status(0, "Rpl_semi_sync_master_no_tx") == "0");

    // stop/start the primary: the replicas lose it, then start() returns once both are back.
    app.reset();
    topo.stop(0);
    CHECK_FALSE(topo.running(0));
    wait_for(20s, "the replicas to notice the primary is gone", [&] {
        return topo.replica_status(1)["Slave_IO_Running"] != "Yes" && topo.replica_status(2)["Slave_IO_Running"] != "Yes";
    });
    t = clock_type::now();
    topo.start(0);
    std::printf("timing: start(primary) until both replicas are back %lld ms\n", ms_since(t));
    CHECK(topo.primary() == 0);
    for (std::size_t i : {1u, 2u}) CHECK(topo.replica_status(i)["Slave_IO_Running"] == "Yes");
    CHECK(topo.global_status(0, "Rpl_semi_sync_master_clients") == "2");
    app = capi_connect(topo.endpoint(0));
    CHECK(capi_scalar(app.get(), "SELECT @@global.read_only") == "0");
    capi_exec(app.get(), "INSERT INTO t VALUES (30, 'after primary restart')");
    const std::string after_restart = capi_scalar(app.get(), "SELECT @@last_gtid");
    REQUIRE(topo.wait_replicated(1, after_restart, 20s));
    REQUIRE(topo.wait_replicated(2, after_restart, 20s));
    CHECK(topo.global_status(0, "Rpl_semi_sync_master_no_tx") == "0");
    CHECK(checksum(topo.endpoint(0)) == checksum(topo.endpoint(1)));
    CHECK(checksum(topo.endpoint(0)) == checksum(topo.endpoint(2)));
    std::printf("timing: whole test %lld ms\n", ms_since(t0));
}

TEST_CASE("failover: SIGKILL the primary under writes, promote the most advanced replica, repoint, rejoin",
          "[failover][promote]") {
    auto topo = replicated_topology::start();
    std::printf("timing: topology of 3 up in %lld ms\n", static_cast<long long>(topo.startup_time().count()));
    {
        auto app = capi_connect(topo.endpoint(0));
        capi_exec(app.get(), "CREATE TABLE t (k INT PRIMARY KEY, note VARCHAR(32))");
    }
    REQUIRE(topo.wait_replicated(1, 20s));
    REQUIRE(topo.wait_replicated(2, 20s));

    write_loop writer(topo.endpoint(0));
    wait_for(30s, "20 acknowledged writes", [&] { return writer.acked_count() >= 20 || writer.error() != 0; });
    REQUIRE(writer.error() == 0);
    // Zero-loss claims need semi-sync really on at the moment of the kill.
    CHECK(topo.global_status(0, "Rpl_semi_sync_master_status") == "ON");
    CHECK(topo.global_status(0, "Rpl_semi_sync_master_clients") == "2");
    CHECK(topo.global_status(0, "Rpl_semi_sync_master_no_tx") == "0");

    const auto t_kill = clock_type::now();
    const std::size_t old = topo.kill_primary();
    const long long killed_ms = ms_since(t_kill);
    CHECK(old == 0);
    CHECK_FALSE(topo.running(0));
    // The statement in flight (or the next one) fails: the writer stops by itself.
    wait_for(30s, "the writer to see the primary gone", [&] { return writer.error() != 0; });
    writer.stop();
    const auto acked = writer.acked();
    INFO("writer stopped with " << writer.error() << ": " << writer.error_text());
    CHECK(acked.size() >= 20);

    const std::size_t next = topo.most_advanced_replica();
    const long long chosen_ms = ms_since(t_kill);
    REQUIRE((next == 1 || next == 2));
    const std::size_t other = next == 1 ? 2 : 1;
    topo.promote(next);
    const long long promoted_ms = ms_since(t_kill);
    CHECK(topo.primary() == next);
    CHECK(topo.source_of(next) == replicated_topology::none);
    CHECK(topo.replica_status(next).empty());
    topo.repoint(other, next);
    const long long repointed_ms = ms_since(t_kill);
    CHECK(topo.source_of(other) == next);
    CHECK(topo.replica_status(other)["Master_Port"] == std::to_string(topo.endpoint(next).port));

    // The application user writes on the new primary; it replicates to the repointed replica.
    auto app = capi_connect(topo.endpoint(next));
    CHECK(capi_scalar(app.get(), "SELECT @@global.read_only") == "0");
    auto res = try_sql(app.get(), "INSERT INTO t (k, note) VALUES (100000, 'after failover')");
    INFO(res.message);
    REQUIRE(res.code == 0);
    const long long first_write_ms = ms_since(t_kill);
    const std::string gtid = capi_scalar(app.get(), "SELECT @@last_gtid");
    // The sequence continues, only the server id changes.
    CHECK(gtid.rfind("0-" + std::to_string(next + 1) + "-", 0) == 0);
    REQUIRE(topo.wait_replicated(other, gtid, 20s));
    const long long caught_up_ms = ms_since(t_kill);
    CHECK(topo.global_status(next, "Rpl_semi_sync_master_status") == "ON");
    CHECK(topo.global_status(next, "Rpl_semi_sync_master_no_tx") == "0");  // the first write was acked

    // AFTER_SYNC: every write the old primary acknowledged is on the new primary.
    auto on_new = keys_of(topo.endpoint(next));
    std::size_t missing = 0;
    for (int k : acked) missing += on_new.count(k) ? 0 : 1;
    CHECK(missing == 0);
    CHECK(on_new.count(100000) == 1);
    CHECK(checksum(topo.endpoint(next)) == checksum(topo.endpoint(other)));
    {
        auto r = capi_connect(topo.endpoint(other));
        CHECK(try_sql(r.get(), "INSERT INTO t (k, note) VALUES (100001, 'on replica')").code == 1290);
    }

    // The old primary comes back as a replica of the new one.
    auto t = clock_type::now();
    topo.rejoin_old_primary(old, next);
    const long long rejoin_ms = ms_since(t);
    CHECK(topo.running(old));
    CHECK(topo.source_of(old) == next);
    auto st = topo.replica_status(old);
    CHECK(st["Slave_IO_Running"] == "Yes");
    CHECK(st["Slave_SQL_Running"] == "Yes");
    capi_exec(app.get(), "INSERT INTO t (k, note) VALUES (100002, 'after rejoin')");
    const std::string last = capi_scalar(app.get(), "SELECT @@last_gtid");
    REQUIRE(topo.wait_replicated(old, last, 20s));
    REQUIRE(topo.wait_replicated(other, last, 20s));
    {
        auto r = capi_connect(topo.endpoint(old));
        CHECK(capi_scalar(r.get(), "SELECT @@global.read_only") == "1");
        auto refused = try_sql(r.get(), "INSERT INTO t (k, note) VALUES (100003, 'on old primary')");
        CHECK(refused.code == 1290);
        CHECK(capi_scalar(r.get(), "SELECT note FROM t WHERE k = 100002") == "after rejoin");
    }
    topo.wait_semi_sync_clients(next, 2, 20s);
    const std::string sum = checksum(topo.endpoint(next));
    CHECK(checksum(topo.endpoint(other)) == sum);
    CHECK(checksum(topo.endpoint(old)) == sum);

    std::printf("timing: failover with %zu acknowledged writes before the kill (0 lost: %s)\n", acked.size(),
                missing == 0 ? "yes" : "NO");
    std::printf("timing: kill -9 of the primary, gone after %lld ms\n", killed_ms);
    std::printf("timing: kill -> most advanced replica (node %zu) chosen %lld ms\n", next, chosen_ms);
    std::printf("timing: kill -> promoted (relay log applied, RESET SLAVE ALL, writable) %lld ms\n", promoted_ms);
    std::printf("timing: kill -> other replica repointed and semi-sync %lld ms\n", repointed_ms);
    std::printf("timing: kill -> first application write acknowledged %lld ms\n", first_write_ms);
    std::printf("timing: kill -> repointed replica caught up %lld ms\n", caught_up_ms);
    std::printf("timing: rejoin_old_primary (restart + replicating) %lld ms\n", rejoin_ms);
}

TEST_CASE("rejoin: an old primary with an un-acknowledged transaction is truncated and replicates again",
          "[failover][rejoin]") {
    topology_options o;
    // The un-acked INSERT must still be waiting for its ack when the primary is killed, however
    // slow the machine: a semi-sync timeout far beyond the test's own deadlines.
    o.semi_sync_timeout_ms = 120000;
    auto topo = replicated_topology::start(o);
    std::printf("timing: topology of 3 up in %lld ms\n", static_cast<long long>(topo.startup_time().count()));
    {
        auto app = capi_connect(topo.endpoint(0));
        capi_exec(app.get(), "CREATE TABLE t (k INT PRIMARY KEY, note VARCHAR(32))");
        capi_exec(app.get(), "INSERT INTO t VALUES (1, 'acked')");
    }
    REQUIRE(topo.wait_replicated(1, 20s));
    REQUIRE(topo.wait_replicated(2, 20s));
    const std::string acked_pos = topo.gtid_binlog_pos(0);

    // No replica receives anything: the next commit is binlogged on the primary and waits for an ack.
    topo.admin_sql(1, "STOP SLAVE IO_THREAD");
    topo.admin_sql(2, "STOP SLAVE IO_THREAD");
    wait_for(20s, "the primary to lose its semi-sync replicas",
             [&] { return topo.global_status(0, "Rpl_semi_sync_master_clients") == "0"; });
    sql_result unacked;
    std::thread writer([&] {
        try {
            capi_options co;
            co.read_timeout = 60;
            auto m = capi_connect(topo.endpoint(0), co);
            unacked = try_sql(m.get(), "INSERT INTO t VALUES (7000, 'never acknowledged')");
        } catch (const std::exception& e) {
            unacked.code = 1;
            unacked.message = e.what();
        }
    });
    struct joiner {
        std::thread& t;
        ~joiner() { t.join(); }
    } join_writer{writer};
    wait_for(30s, "the INSERT to wait for its semi-sync ack",
             [&] { return topo.global_status(0, "Rpl_semi_sync_master_wait_sessions") == "1"; });
    CHECK(topo.gtid_binlog_pos(0) != acked_pos);  // binlogged (AFTER_SYNC), not yet committed
    topo.kill_primary();
    wait_for(30s, "the waiting INSERT to fail", [&] { return unacked.code != 0; });
    INFO("un-acked INSERT: " << unacked.code << " " << unacked.message);
    CHECK(unacked.code == 2013);

    const std::size_t next = topo.most_advanced_replica();
    const std::size_t other = next == 1 ? 2 : 1;
    topo.promote(next);
    topo.repoint(other, next);
    {
        auto app = capi_connect(topo.endpoint(next));
        capi_exec(app.get(), "INSERT INTO t VALUES (2, 'on the new primary')");
    }
    auto t = clock_type::now();
    topo.rejoin_old_primary(0, next);
    std::printf("timing: rejoin_old_primary with a transaction to truncate %lld ms\n", ms_since(t));
    const std::string pos = topo.gtid_binlog_pos(next);
    REQUIRE(topo.wait_replicated(0, pos, 20s));
    REQUIRE(topo.wait_replicated(other, pos, 20s));
    auto st = topo.replica_status(0);
    CHECK(st["Slave_IO_Running"] == "Yes");
    CHECK(st["Slave_SQL_Running"] == "Yes");
    CHECK(st["Last_IO_Errno"] == "0");  // not 1236 "the slave has diverged"
    for (std::size_t i = 0; i < 3; ++i) {
        auto m = capi_connect(topo.endpoint(i));
        INFO("node " << i);
        CHECK(capi_scalar(m.get(), "SELECT COUNT(*) FROM t WHERE k = 7000") == "0");
        CHECK(capi_scalar(m.get(), "SELECT note FROM t WHERE k = 2") == "on the new primary");
    }
    const std::string log = topo.log_tail(0, 400);
    INFO(log);
    CHECK(log.find("truncated binlog file") != std::string::npos);
    CHECK(checksum(topo.endpoint(0)) == checksum(topo.endpoint(next)));
}

// --- clean-up when the owning process dies ----------------------------------------------------
//
// The hidden case below is run in a child process of this binary: it starts a topology, prints
// where it is, and then blocks (bounded) or fails. The parent kills or watches it and checks that
// nothing is left running and the directory is gone.

TEST_CASE("child: owns a topology, then blocks or fails", "[.][topology_child]") {
    topology_options o;
    o.replicas = 1;
    auto topo = replicated_topology::start(o);
    std::printf("READY %s %d %d\n", topo.dir().c_str(), static_cast<int>(topo.pid(0)), static_cast<int>(topo.pid(1)));
    std::fflush(stdout);
    const char* mode = std::getenv("LIFELINE_TOPOLOGY_CHILD");
    if (mode && std::string(mode) == "fail") FAIL("failing on purpose with a topology in scope");
    // Blocks until the parent kills this process; bounded, so a lost parent never leaves it behind.
    pollfd p{0, POLLIN, 0};
    ::poll(&p, 1, 120000);
}

namespace {

struct child_run {
    pid_t pid = 0;
    int out = -1;    // its stdout
    int in = -1;     // its stdin (held open: EOF would end the child's wait)
    std::string text;
    std::string dir;
    std::vector<pid_t> servers;
};

child_run spawn_child(const char* mode) {
    int out[2], in[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::setenv("LIFELINE_TOPOLOGY_CHILD", mode, 1);
        ::execl("/proc/self/exe", "topology_child", "[topology_child]", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(out[1]);
    ::close(in[0]);
    child_run c;
    c.pid = pid;
    c.out = out[0];
    c.in = in[1];
    return c;
}

// Reads the child's output until its READY line (or EOF, or the deadline).
void read_ready(child_run& c, clock_type::time_point until) {
    char buf[4096];
    while (c.text.find("READY ") == std::string::npos || c.text.find('\n', c.text.find("READY ")) == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()).count();
        if (left <= 0) break;
        pollfd p{c.out, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        ssize_t n = ::read(c.out, buf, sizeof buf);
        if (n <= 0) break;
        c.text.append(buf, static_cast<std::size_t>(n));
    }
    auto at = c.text.find("READY ");
    if (at == std::string::npos) return;
    std::istringstream line(c.text.substr(at + 6));
    int p0 = 0, p1 = 0;
    line >> c.dir >> p0 >> p1;
    c.servers = {p0, p1};
}

// Alive and not a zombie (an orphaned server may stay a zombie when nobody reaps it).
bool alive(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close == std::string::npos || close + 2 >= text.size()) return false;
    return text[close + 2] != 'Z' && text[close + 2] != 'X';
}

std::string cmdline(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(s.begin(), s.end(), '\0', ' ');
    return s;
}

// Kills children a failed REQUIRE left behind (they would hold ctest's output pipe open).
struct children_guard {
    std::vector<child_run*> children;
    ~children_guard() {
        for (auto* c : children) {
            if (c->pid > 0) {
                ::kill(c->pid, SIGKILL);
                ::waitpid(c->pid, nullptr, 0);
            }
            if (c->out >= 0) ::close(c->out);
            if (c->in >= 0) ::close(c->in);
        }
    }
};

int reap(pid_t pid, clock_type::time_point until) {
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) != pid) {
        if (clock_type::now() > until) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(20ms);
    }
    return status;
}

}  // namespace

TEST_CASE("a topology's servers and directory go away when its process is killed or its test fails",
          "[failover][cleanup]") {
    auto t0 = clock_type::now();
    // Orphaned servers of the killed owners become our children (not init's, which may not reap
    // them here): they are reaped below and leave no zombie behind.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    // Three owners at once: one gets SIGKILL, one SIGTERM, one fails its test.
    child_run killed = spawn_child("block"), termed = spawn_child("block"), failed = spawn_child("fail");
    children_guard guard{{&killed, &termed, &failed}};
    const auto until = clock_type::now() + 150s;
    for (auto* c : {&killed, &termed, &failed}) {
        read_ready(*c, until);
        INFO("child output:\n" << c->text);
        REQUIRE(!c->dir.empty());
    }
    std::printf("timing: three 2-node topologies up in %lld ms\n", ms_since(t0));
    // While they run: what integration.no_servers_left keys on is in place.
    for (auto* c : {&killed, &termed}) {
        for (pid_t s : c->servers) {
            INFO("server " << s << ": " << cmdline(s));
            CHECK(alive(s));
            CHECK(cmdline(s).find("--datadir=" + c->dir + "/node") != std::string::npos);
        }
        if (const char* owner = std::getenv("LIFELINE_HARNESS_OWNER")) {
            std::ifstream in(c->dir + "/node0/owner");
            std::string o;
            std::getline(in, o);
            CHECK(o == owner);
        }
    }

    ::kill(killed.pid, SIGKILL);
    ::kill(termed.pid, SIGTERM);
    const auto t_kill = clock_type::now();
    const auto after = clock_type::now() + 60s;
    int killed_status = reap(killed.pid, after);
    int termed_status = reap(termed.pid, after);
    int failed_status = reap(failed.pid, after);
    killed.pid = termed.pid = failed.pid = 0;
    CHECK((WIFSIGNALED(killed_status) && WTERMSIG(killed_status) == SIGKILL));
    CHECK((WIFSIGNALED(termed_status) && WTERMSIG(termed_status) == SIGTERM));
    CHECK((WIFEXITED(failed_status) && WEXITSTATUS(failed_status) != 0));
    // The failed test's destructor already did everything before the process exited.
    CHECK(::access(failed.dir.c_str(), F_OK) != 0);
    for (pid_t s : failed.servers) CHECK_FALSE(alive(s));

    for (auto* c : {&killed, &termed}) {
        wait_for(30s, "servers " + std::to_string(c->servers[0]) + "," + std::to_string(c->servers[1]) + " to die", [&] {
            while (::waitpid(-1, nullptr, WNOHANG) > 0) {
            }
            return !alive(c->servers[0]) && !alive(c->servers[1]);
        });
        wait_for(30s, "the guardian to remove " + c->dir, [&] { return ::access(c->dir.c_str(), F_OK) != 0; });
    }
    wait_for(30s, "the orphaned guardians to exit", [&] {
        while (::waitpid(-1, nullptr, WNOHANG) > 0) {
        }
        return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD;
    });
    std::printf("timing: after SIGKILL/SIGTERM of the owners, servers gone and directories removed in %lld ms\n",
                ms_since(t_kill));
}
