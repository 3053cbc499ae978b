// The Galera harness (tests/support/galera.hpp) proves itself against a real 3-node cluster: writes
// replicate, a rejecting node gives 1047 08S01, a certification conflict fails one COMMIT with 1213,
// a killed node leaves a writable 2-node cluster and rejoins. One cluster for everything (its
// bring-up alone takes 16-20 s), so the steps run in order in one test case. Timings are printed.
#include "capi_support.hpp"
#include "galera.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

using namespace lifeline::test;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

long long ms_since(clock_type::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count();
}

struct sql_result {
    unsigned code = 0;
    std::string sqlstate;
    std::string message;
};

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

// An application session whose reads wait until the node has applied everything the cluster
// committed before them (wsrep_sync_wait): "visible on node N" without polling.
mysql_handle causal_session(const endpoint& e) {
    capi_options o;
    o.read_timeout = 30;
    auto m = capi_connect(e, o);
    capi_exec(m.get(), "SET SESSION wsrep_sync_wait = 1");
    return m;
}

std::size_t file_size(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    return in ? static_cast<std::size_t>(in.tellg()) : 0;
}

std::string read_from(const std::string& path, std::size_t offset) {
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

long long counter(const galera_cluster& c, std::size_t node, const char* name) {
    return std::stoll("0" + c.wsrep_status(node, name));
}

}  // namespace

TEST_CASE("galera cluster: replication, rejected queries, certification conflict, node loss and rejoin", "[galera]") {
    const auto t0 = clock_type::now();
    auto t_teardown = t0;
    {
    auto c = galera_cluster::start();
    std::printf("timing: 3-node Galera cluster bootstrapped (SST joins) in %lld ms\n",
                static_cast<long long>(c.startup_time().count()));
    REQUIRE(c.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        auto s = c.wsrep_status(i);
        INFO("node " << i);
        CHECK(s["wsrep_cluster_size"] == "3");
        CHECK(s["wsrep_local_state_comment"] == "Synced");
        CHECK(s["wsrep_cluster_status"] == "Primary");
        CHECK(s["wsrep_ready"] == "ON");
        CHECK(s["wsrep_connected"] == "ON");
        for (std::size_t j = 0; j < 3; ++j)
            CHECK(s["wsrep_incoming_addresses"].find("127.0.0.1:" + std::to_string(c.endpoint(j).port)) !=
                  std::string::npos);
        CHECK(c.endpoint(i).host == "127.0.0.1");
        CHECK(c.endpoint(i).port != 3306);
    }
    // The application user (from node 0, replicated with the schema) exists everywhere, without SUPER.
    for (std::size_t i = 0; i < 3; ++i) {
        auto m = capi_connect(c.endpoint(i));
        CHECK(capi_scalar(m.get(), "SELECT @@port") == std::to_string(c.endpoint(i).port));
        CHECK(capi_scalar(m.get(), "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE "
                                   "PRIVILEGE_TYPE = 'SUPER'") == "0");
    }

    // 1. A write on node 0 is visible on nodes 1 and 2.
    auto n0 = causal_session(c.endpoint(0));
    capi_exec(n0.get(), "CREATE TABLE t (k INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(32))");
    capi_exec(n0.get(), "INSERT INTO t VALUES (1, 0, 'counter'), (2, 0, 'written on node 0')");
    for (std::size_t i : {1u, 2u}) {
        auto m = causal_session(c.endpoint(i));
        CHECK(capi_scalar(m.get(), "SELECT note FROM t WHERE k = 2") == "written on node 0");
    }

    // 2. wsrep_reject_queries=ALL: the application user connects, but statements on tables get
    //    1047 with SQLSTATE 08S01, in a new session and in one opened before; NONE restores service.
    {
        auto before = capi_connect(c.endpoint(1));
        c.set_reject_queries(1, "ALL");
        auto fresh = capi_connect(c.endpoint(1));
        for (MYSQL* m : {fresh.get(), before.get()}) {
            for (const char* sql : {"SELECT v FROM t WHERE k = 1", "INSERT INTO t VALUES (3, 0, 'rejected')"}) {
                auto r = try_sql(m, sql);
                INFO(sql << " -> " << r.code << " " << r.sqlstate << " " << r.message);
                CHECK(r.code == 1047);
                CHECK(r.sqlstate == "08S01");
            }
        }
        CHECK(capi_scalar(fresh.get(), "SELECT 1") == "1");  // no table: still answered
        c.set_reject_queries(1, "NONE");
        CHECK(try_sql(fresh.get(), "SELECT v FROM t WHERE k = 1").code == 0);
        CHECK(capi_scalar(n0.get(), "SELECT COUNT(*) FROM t WHERE k = 3") == "0");
    }

    // 3. Certification conflict: the same row updated in open transactions on nodes 0 and 1. Node 1
    //    commits first; node 0's COMMIT then fails with 1213 (40001), and node 1's value stands.
    {
        const long long aborts_before = counter(c, 0, "wsrep_local_bf_aborts") + counter(c, 0, "wsrep_local_cert_failures");
        auto a = capi_connect(c.endpoint(0));
        auto b = capi_connect(c.endpoint(1));
        capi_exec(a.get(), "BEGIN");
        capi_exec(b.get(), "BEGIN");
        capi_exec(a.get(), "UPDATE t SET v = v + 1 WHERE k = 1");
        capi_exec(b.get(), "UPDATE t SET v = v + 10 WHERE k = 1");
        auto won = try_sql(b.get(), "COMMIT");
        INFO("node 1 COMMIT: " << won.code << " " << won.message);
        REQUIRE(won.code == 0);
        auto lost = try_sql(a.get(), "COMMIT");
        INFO("node 0 COMMIT: " << lost.code << " " << lost.sqlstate << " " << lost.message);
        CHECK(lost.code == 1213);
        CHECK(lost.sqlstate == "40001");
        const long long aborts_after = counter(c, 0, "wsrep_local_bf_aborts") + counter(c, 0, "wsrep_local_cert_failures");
        CHECK(aborts_after >= aborts_before + 1);  // Galera counted it: a BF abort or a certification failure
        for (std::size_t i = 0; i < 3; ++i) {
            auto m = causal_session(c.endpoint(i));
            CHECK(capi_scalar(m.get(), "SELECT v FROM t WHERE k = 1") == "10");
        }
    }

    // 4. SIGKILL of node 2: nodes 0 and 1 keep accepting writes (the first one waits for the view
    //    change, bounded by the session's read timeout) and shrink to a cluster of 2.
    auto t = clock_type::now();
    c.kill(2);
    CHECK_FALSE(c.running(2));
    CHECK_THROWS_AS(capi_connect(c.endpoint(2)), server_error);
    {
        auto w = causal_session(c.endpoint(0));
        auto r = try_sql(w.get(), "INSERT INTO t VALUES (10, 0, 'node 2 down, via 0')");
        INFO(r.message);
        REQUIRE(r.code == 0);
        std::printf("timing: first write on node 0 after SIGKILL of node 2 returned after %lld ms\n", ms_since(t));
        auto w1 = causal_session(c.endpoint(1));
        REQUIRE(try_sql(w1.get(), "INSERT INTO t VALUES (11, 0, 'node 2 down, via 1')").code == 0);
    }
    c.wait_cluster_size(0, 2, 30s);
    c.wait_cluster_size(1, 2, 30s);
    std::printf("timing: SIGKILL of node 2 -> cluster of 2 on nodes 0 and 1 in %lld ms\n", ms_since(t));
    for (int k = 20; k < 30; ++k)
        REQUIRE(try_sql(n0.get(), "INSERT INTO t VALUES (" + std::to_string(k) + ", 0, 'node 2 down')").code == 0);
    CHECK(c.wsrep_status(0, "wsrep_cluster_status") == "Primary");

    // 5. start(2) rejoins by IST from its recovered position (no full copy); it has what was
    //    written meanwhile. Only the log written by this start counts: the first join was an SST.
    const std::string log_path = c.dir() + "/node2/error.log";
    const auto log_before = file_size(log_path);
    t = clock_type::now();
    c.start(2);
    std::printf("timing: start(node 2) until Synced in a cluster of 3: %lld ms\n", ms_since(t));
    CHECK(c.running(2));
    for (std::size_t i = 0; i < 3; ++i) CHECK(c.wsrep_status(i, "wsrep_cluster_size") == "3");
    {
        auto m = causal_session(c.endpoint(2));
        CHECK(capi_scalar(m.get(), "SELECT COUNT(*) FROM t WHERE k >= 10") == "12");
        CHECK(capi_scalar(m.get(), "SELECT v FROM t WHERE k = 1") == "10");
        REQUIRE(try_sql(m.get(), "INSERT INTO t VALUES (40, 0, 'written on the rejoined node')").code == 0);
    }
    CHECK(capi_scalar(n0.get(), "SELECT note FROM t WHERE k = 40") == "written on the rejoined node");
    const std::string rejoin_log = read_from(log_path, log_before);
    INFO(rejoin_log);
    CHECK(rejoin_log.find("rsync IST completed on joiner") != std::string::npos);
    CHECK(rejoin_log.find("rsync SST completed on joiner") == std::string::npos);
    t_teardown = clock_type::now();
    }
    std::printf("timing: teardown (3 nodes stopped, directory removed) %lld ms\n", ms_since(t_teardown));
    std::printf("timing: whole Galera test %lld ms\n", ms_since(t0));
}
