// Failover with the Connector/C++ adapter (lifeline::jdbc): the same host list, role query and
// reroute as with the C API (failover_test.cpp), on a real replicated topology (label failover).
#include "failover_support.hpp"
#include "topology.hpp"

#include <lifeline/driver/jdbc.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <future>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;

TEST_CASE("jdbc failover: the writer is asked, a read-only answer rerouted, a killed primary left behind",
          "[failover][jdbc]") {
    auto topo = replicated_topology::start();
    {
        auto m = capi_connect(topo.endpoint(0));
        capi_exec(m.get(), "CREATE TABLE t (k BIGINT PRIMARY KEY, note VARCHAR(16))");
    }
    REQUIRE(topo.wait_replicated(1, 20s));
    REQUIRE(topo.wait_replicated(2, 20s));
    // The list does not start with the primary: the role comes from the servers.
    connect_options o = cluster_options(topo);
    std::rotate(o.hosts.begin(), o.hosts.begin() + 1, o.hosts.end());  // node 1, node 2, node 0
    lifeline::connection<lifeline::jdbc> db(o);
    db.execute("INSERT INTO t VALUES (1, 'jdbc')");
    CHECK(db.current_host() == 2);  // node 0, third in the list
    const auto view = db.cluster_view_ptr();
    CHECK(view->state(0).role == server_role::replica);
    CHECK(view->state(1).role == server_role::replica);

    // Switchover: node 0 read-only, node 1 promoted; the waiting write lands on node 1.
    topo.set_read_only(0, true);
    auto write = std::async(std::launch::async, [&] {
        std::error_code ec;
        diagnostics d;
        db.execute("INSERT INTO t VALUES (2, 'rerouted')", {}, call_options{20s}, ec, d);
        return std::make_pair(ec, d.client_message);
    });
    wait_until(20s, "lifeline to learn that node 0 is read-only", [&] { return view->state(2).role == server_role::replica; });
    topo.promote(1);
    topo.repoint(2, 1);
    const auto [ec, why] = write.get();
    INFO(why);
    REQUIRE_FALSE(ec);
    CHECK(db.current_host() == 0);  // node 1, first in the list
    CHECK(capi_scalar(capi_connect(topo.endpoint(1)).get(), "SELECT note FROM t WHERE k = 2") == "rerouted");

    // The old primary back as a replica; then the new primary dies and node 2 is promoted (the
    // orchestrator's order: read-only, repoint, semi-sync ack, writable): the writes go on there.
    topo.rejoin_old_primary(0, 1);
    topo.kill_primary();
    topo.promote(2, false);
    topo.repoint(0, 2);
    topo.wait_semi_sync_clients(2, 1, 20s);
    topo.set_read_only(2, false);
    const auto promoted = steady::now();
    db.execute("INSERT INTO t VALUES (3, 'after kill')", verify_with([](sql::Connection& c) {
                   std::unique_ptr<sql::Statement> st(c.createStatement());
                   std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT COUNT(*) FROM t WHERE k = 3"));
                   return rs->next() && rs->getInt(1) == 1 ? write_check::applied : write_check::not_applied;
               }),
               call_options{20s});
    std::printf("timing: jdbc: promotion finished -> write acknowledged %lld ms\n", ms_between(promoted, steady::now()));
    CHECK(db.current_host() == 1);  // node 2
    CHECK(capi_scalar(capi_connect(topo.endpoint(2)).get(), "SELECT note FROM t WHERE k = 3") == "after kill");
}
