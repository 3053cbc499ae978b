// Failover through lifeline on a real replicated MariaDB (tests/support/topology.hpp: a primary and
// two replicas, GTID, semi-sync AFTER_SYNC): lifeline finds the writer by asking the servers,
// reroutes after a kill + promotion and after a read-only switch, routes declared reads to
// replicas (read-your-writes with MASTER_GTID_WAIT), and resolves a COMMIT whose answer was lost
// across a failover only when the evidence is sound. Each case starts its own topology (label
// failover); timings are printed as `timing:` lines.
#include "failover_support.hpp"
#include "topology.hpp"

#include <lifeline/testing/fault_proxy.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <future>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;

namespace {

void create_table(replicated_topology& topo, const std::string& ddl) {
    auto m = capi_connect(topo.endpoint(topo.primary()));
    capi_exec(m.get(), ddl);
    for (std::size_t i = 0; i < topo.size(); ++i)
        if (i != topo.primary()) REQUIRE(topo.wait_replicated(i, 20s));
}

std::string scalar_on(const endpoint& e, const std::string& sql) {
    auto m = capi_connect(e);
    return capi_scalar(m.get(), sql);
}

// What an orchestrator does (cluster-recipes-verified.md A.4): kill the primary, promote the most
// advanced replica read-only, repoint the others to it, wait for a semi-sync replica, then make it
// writable ("promotion finished"), so no write on it ever falls back to asynchronous.
struct failover_times {
    std::size_t old_primary, new_primary;
    steady::time_point killed, promoted;
};
failover_times fail_over(replicated_topology& topo) {
    failover_times f{};
    f.old_primary = topo.primary();
    topo.kill_primary();
    f.killed = steady::now();
    f.new_primary = topo.most_advanced_replica();
    topo.promote(f.new_primary, /*writable*/ false);
    unsigned replicas = 0;
    for (std::size_t i = 0; i < topo.size(); ++i)
        if (i != f.new_primary && i != f.old_primary && topo.running(i)) {
            topo.repoint(i, f.new_primary);
            ++replicas;
        }
    if (replicas) topo.wait_semi_sync_clients(f.new_primary, 1, 20s);
    topo.set_read_only(f.new_primary, false);
    f.promoted = steady::now();
    return f;
}

}  // namespace

TEST_CASE("failover: the primary is killed under writes and a replica promoted; lifeline's writes go on",
          "[failover][lifeline_promote]") {
    auto topo = replicated_topology::start();
    std::printf("timing: topology of 3 up in %lld ms\n", static_cast<long long>(topo.startup_time().count()));
    create_table(topo, "CREATE TABLE t (k BIGINT PRIMARY KEY, note VARCHAR(16))");
    const connect_options o = cluster_options(topo);

    cluster_writer w1(o, "t", 1000000, 20s), w2(o, "t", 2000000, 20s);
    wait_until(30s, "100 acknowledged writes", [&] { return w1.acked() + w2.acked() >= 100; });
    REQUIRE(topo.global_status(0, "Rpl_semi_sync_master_status") == "ON");
    REQUIRE(topo.global_status(0, "Rpl_semi_sync_master_no_tx") == "0");

    const failover_times f = fail_over(topo);
    const auto promoted = f.promoted;
    // The first write through lifeline that completes after the promotion (the event, not a sleep).
    wait_until(20s, "a lifeline write after the promotion", [&] {
        return w1.first_success_after(promoted) != steady::time_point{} || w2.first_success_after(promoted) != steady::time_point{};
    });
    auto first = w1.first_success_after(promoted);
    const auto first2 = w2.first_success_after(promoted);
    if (first == steady::time_point{} || (first2 != steady::time_point{} && first2 < first)) first = first2;
    const int acked_at_promotion = w1.acked() + w2.acked();
    wait_until(30s, "100 more acknowledged writes", [&] { return w1.acked() + w2.acked() >= acked_at_promotion + 100; });
    w1.stop();
    w2.stop();

    std::vector<write_outcome> all = w1.outcomes();
    for (const auto& w : w2.outcomes()) all.push_back(w);
    const auto on_new = keys_on(topo.endpoint(f.new_primary), "t");
    std::size_t acked = 0, missing = 0, duplicates = 0, failures = 0, verified = 0, resent = 0;
    for (const auto& w : all) {
        verified += w.verified;
        resent += w.attempts > 1;
        if (w.ec) {
            ++failures;
            INFO("key " << w.key << ": " << w.ec.message() << " — " << w.why);
            CHECK_FALSE(w.ec);  // every write was acknowledged within its deadline, none unknown
            continue;
        }
        ++acked;
        missing += on_new.count(w.key) == 0;
    }
    for (auto it = on_new.begin(); it != on_new.end(); it = on_new.upper_bound(*it)) duplicates += on_new.count(*it) > 1;
    CHECK(missing == 0);
    CHECK(duplicates == 0);
    CHECK(failures == 0);
    // Nothing was written to a read-only node: the surviving replica replicates without error.
    const std::size_t other = 3 - f.old_primary - f.new_primary;
    REQUIRE(topo.wait_replicated(other, 20s));
    CHECK(topo.replica_status(other)["Last_SQL_Errno"] == "0");
    CHECK(keys_on(topo.endpoint(other), "t") == on_new);
    const long long promoted_to_first = ms_between(promoted, first);
    std::printf("timing: %zu writes acknowledged (%zu verified applied after an unknown outcome, %zu re-sent), %zu "
                "missing on the new primary, %zu failed\n",
                acked, verified, resent, missing, failures);
    // The issue's target (<= 1 s) is a benchmark figure (bench_failover); here the bound is the
    // writes' own deadline (every write above succeeded within it).
    std::printf("timing: kill -> promoted %lld ms; promotion finished -> first lifeline write %lld ms (target <= 1000)\n",
                ms_between(f.killed, promoted), promoted_to_first);
}

TEST_CASE("failover: a write refused as read-only (1290) is rerouted to the new writer; a transaction replayed",
          "[failover][read_only_reroute]") {
    topology_options to;
    auto topo = replicated_topology::start(to);
    create_table(topo, "CREATE TABLE t (k BIGINT PRIMARY KEY, note VARCHAR(16))");
    lifeline::connection<lifeline::capi> db(cluster_options(topo));
    db.execute("INSERT INTO t VALUES (1, 'node 0')");
    const auto view = db.cluster_view_ptr();
    REQUIRE(view);
    CHECK(db.current_host() == 0);
    CHECK(view->state(0).role == server_role::writer);
    CHECK(view->state(0).facts.semi_sync == std::optional<bool>(true));  // readable by the app user

    // A switchover: the old writer is made read-only first (its session stays open), then node 1
    // promoted. The write meanwhile gets 1290, is re-sent nowhere until a writer exists, then on node 1.
    const std::string before = topo.gtid_binlog_pos(0);
    topo.set_read_only(0, true);
    auto write = std::async(std::launch::async, [&] {
        std::error_code ec;
        diagnostics d;
        db.execute("INSERT INTO t VALUES (2, 'rerouted')", {}, call_options{20s}, ec, d);
        return std::make_pair(ec, d.client_message);
    });
    wait_until(20s, "lifeline to learn that node 0 is read-only", [&] { return view->state(0).role == server_role::replica; });
    topo.promote(1);
    const auto promoted = steady::now();
    topo.repoint(2, 1);
    const auto [ec, why] = write.get();
    INFO(why);
    REQUIRE_FALSE(ec);
    std::printf("timing: read-only switchover: promotion finished -> the waiting write acknowledged %lld ms\n",
                ms_between(promoted, steady::now()));
    CHECK(db.current_host() == 1);
    CHECK(scalar_on(topo.endpoint(1), "SELECT note FROM t WHERE k = 2") == "rerouted");
    CHECK(scalar_on(topo.endpoint(0), "SELECT COUNT(*) FROM t WHERE k = 2") == "0");
    CHECK(topo.gtid_binlog_pos(0) == before);  // the read-only node accepted nothing

    // A transaction on the writer, which turns read-only inside the body: refused (1290), rolled
    // back by closing the session, replayed on the next writer.
    int runs = 0;
    bool switched = false;
    std::promise<void> inside, read_only_set;
    auto tr_future = std::async(std::launch::async, [&] {
        std::error_code tec;
        diagnostics td;
        auto tr = db.transaction(
            [&](auto& tx) {
                ++runs;
                tx.execute("INSERT INTO t VALUES (3, 'tx')");
                if (runs == 1) {  // the test makes node 1 read-only now
                    inside.set_value();
                    read_only_set.get_future().wait();
                } else {
                    switched = true;
                }
                tx.execute("INSERT INTO t VALUES (4, 'tx')");
            },
            [] {
                transaction_options o = lifeline::replayable_resolved;
                o.deadline = 20s;
                return o;
            }(),
            tec, td);
        return std::make_tuple(tec, td.client_message, tr);
    });
    inside.get_future().wait();
    // Between the two statements of run 1: make node 1 read-only (the second INSERT gets 1290),
    // then promote node 2.
    topo.set_read_only(1, true);
    read_only_set.set_value();
    wait_until(20s, "lifeline to learn that node 1 is read-only", [&] { return view->state(1).role == server_role::replica; });
    topo.promote(2);
    const auto [tec, twhy, tr] = tr_future.get();
    INFO(twhy);
    REQUIRE_FALSE(tec);
    CHECK(runs == 2);
    CHECK(switched);
    CHECK(db.current_host() == 2);
    CHECK(scalar_on(topo.endpoint(2), "SELECT COUNT(*) FROM t WHERE k IN (3, 4)") == "2");
    CHECK(scalar_on(topo.endpoint(1), "SELECT COUNT(*) FROM t WHERE k IN (3, 4)") == "0");
}

TEST_CASE("failover: reads declared replica_ok go to a replica; read_your_writes waits for the write or reads the writer",
          "[failover][replica_reads]") {
    auto topo = replicated_topology::start();
    create_table(topo, "CREATE TABLE t (k BIGINT PRIMARY KEY, note VARCHAR(16))");
    cluster_connection<capi> db(cluster_options(topo));
    db.ryw_wait = 300ms;
    const std::string primary_id = scalar_on(topo.endpoint(0), "SELECT @@server_id");

    auto r = db.query("SELECT @@server_id", lifeline::replica_ok);
    REQUIRE(r.scalar());
    CHECK(*r.scalar() != primary_id);
    CHECK(db.stats().reads_on_replica == 1);
    CHECK(db.writer().current_host() == replicated_topology::none);  // nothing went to the writer yet
    CHECK(db.reader().current_host() != 0);

    // Read-your-writes: the replica waits until it applied the write, then serves it.
    db.execute("INSERT INTO t VALUES (1, 'mine')");
    CHECK(db.writer().current_host() == 0);
    r = db.query("SELECT CONCAT(note, '@', @@server_id) FROM t WHERE k = 1", lifeline::read_your_writes);
    REQUIRE(r.scalar());
    CHECK(r.scalar()->rfind("mine@", 0) == 0);
    CHECK(*r.scalar() != "mine@" + primary_id);
    CHECK(db.stats().ryw_waits == 1);
    CHECK(db.stats().ryw_fallbacks == 0);

    // The replicas stop applying: replica_ok reads are stale, read_your_writes falls back to the
    // writer after ryw_wait.
    topo.admin_sql(1, "STOP SLAVE SQL_THREAD");
    topo.admin_sql(2, "STOP SLAVE SQL_THREAD");
    db.execute("INSERT INTO t VALUES (2, 'lagging')");
    CHECK(db.query("SELECT COUNT(*) FROM t WHERE k = 2", lifeline::replica_ok).scalar() == std::optional<std::string>("0"));
    const auto t = steady::now();
    r = db.query("SELECT CONCAT(note, '@', @@server_id) FROM t WHERE k = 2", lifeline::read_your_writes, call_options{10s});
    const long long took = ms_between(t, steady::now());
    REQUIRE(r.scalar());
    CHECK(*r.scalar() == "lagging@" + primary_id);
    CHECK(db.stats().ryw_fallbacks == 1);
    CHECK(took >= 250);   // it waited for the replica (MASTER_GTID_WAIT, 0.3 s) ...
    CHECK(took < 10000);  // ... within the deadline
    std::printf("timing: read_your_writes on a stopped replica fell back to the writer after %lld ms\n", took);
    topo.admin_sql(1, "START SLAVE SQL_THREAD");
    topo.admin_sql(2, "START SLAVE SQL_THREAD");
    REQUIRE(topo.wait_replicated(1, 20s));
    REQUIRE(topo.wait_replicated(2, 20s));

    // No replica: the reads go to the writer.
    topo.stop(1);
    topo.stop(2);
    r = db.query("SELECT @@server_id", lifeline::replica_ok, call_options{10s});
    CHECK(r.scalar() == std::optional<std::string>(primary_id));
    CHECK(db.stats().reads_on_writer >= 1);
    topo.start(1);
    topo.start(2);

    // The primary dies: replica reads go on while there is no writer (nobody is promoted here).
    cluster_connection<capi> reads(cluster_options(topo));
    REQUIRE(reads.query("SELECT COUNT(*) FROM t", lifeline::replica_ok).scalar() == std::optional<std::string>("2"));
    topo.kill_primary();
    const auto killed = steady::now();
    for (int i = 0; i < 20; ++i) {
        r = reads.query("SELECT COUNT(*) FROM t", lifeline::replica_ok, call_options{5s});
        CHECK(r.scalar() == std::optional<std::string>("2"));
    }
    std::printf("timing: 20 replica reads with the primary dead took %lld ms\n", ms_between(killed, steady::now()));
    // ... and a write waits for a writer within its deadline, then says so.
    std::error_code ec;
    diagnostics d;
    const auto w0 = steady::now();
    reads.execute("INSERT INTO t VALUES (3, 'nowhere')", {}, call_options{1500ms}, ec, d);
    CHECK(ec == errc::deadline_exceeded);
    CHECK(ms_between(w0, steady::now()) < 4000);
    INFO(d.client_message);
    CHECK(d.client_message.find("no writer") != std::string::npos);
}

namespace {

// A COMMIT through the fault proxy in front of the primary: its answer is lost (cut after the
// server committed, or before it reached it) and the proxy refuses new connections, so lifeline
// can only come back on another server; the test then kills the primary and promotes a replica.
struct lost_commit_run {
    std::error_code ec;
    std::string why;
    transaction_result tr;
    int runs = 0;
};

lost_commit_run commit_through_failover(replicated_topology& topo, const std::string& ref,
                                        lifeline::testing::commit_cut cut, failover_times& f) {
    const std::size_t p = topo.primary();
    lifeline::testing::fault_proxy proxy(topo.endpoint(p).host, static_cast<std::uint16_t>(topo.endpoint(p).port));
    connect_options o = cluster_options(topo);
    o.hosts[p].port = proxy.port();  // the primary only through the proxy
    lifeline::connection<lifeline::capi> db(o);
    db.connect();
    REQUIRE(db.current_host() == p);
    lost_commit_run out;
    auto done = std::async(std::launch::async, [&] {
        transaction_options to = lifeline::replayable_resolved;
        to.deadline = 30s;
        diagnostics d;
        out.tr = db.transaction(
            [&](auto& tx) {
                ++out.runs;
                tx.execute("INSERT INTO ledger (ref) VALUES ('" + ref + "')");
                if (out.runs == 1) {
                    proxy.refuse_new(true);
                    proxy.cut_on_commit(cut);
                }
            },
            to, out.ec, d);
        out.why = d.client_message;
    });
    wait_until(20s, "the COMMIT to be cut", [&] { return proxy.stats().commits_cut == 1; });
    f = fail_over(topo);
    done.get();
    return out;
}

std::string count_ref(const endpoint& e, const std::string& ref) {
    return scalar_on(e, "SELECT COUNT(*) FROM ledger WHERE ref = '" + ref + "'");
}

}  // namespace

TEST_CASE("failover: a COMMIT whose answer was lost is resolved on the new writer (committed / not committed)",
          "[failover][commit_across]") {
    auto topo = replicated_topology::start();
    create_table(topo, "CREATE TABLE ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, ref VARCHAR(16)) ENGINE=InnoDB");

    // The server committed (and a replica acknowledged it: AFTER_SYNC), the answer never came.
    failover_times f{};
    auto a = commit_through_failover(topo, "A", lifeline::testing::commit_cut::after_forward, f);
    INFO(a.why);
    REQUIRE_FALSE(a.ec);
    CHECK(a.tr.commit_resolved);
    CHECK(a.runs == 1);  // found on the new writer: not replayed
    CHECK(count_ref(topo.endpoint(f.new_primary), "A") == "1");
    std::printf("timing: lost COMMIT (committed) resolved across the failover; promotion -> resolved %lld ms\n",
                ms_between(f.promoted, steady::now()));

    // The old primary back as a replica; then a COMMIT that never reached the server.
    topo.rejoin_old_primary(f.old_primary, f.new_primary);
    auto b = commit_through_failover(topo, "B", lifeline::testing::commit_cut::before_forward, f);
    INFO(b.why);
    REQUIRE_FALSE(b.ec);
    CHECK(b.tr.commit_resolved);
    CHECK(b.runs == 2);  // not found on the new writer: replayed there, once
    CHECK(count_ref(topo.endpoint(f.new_primary), "B") == "1");
    CHECK(count_ref(topo.endpoint(f.new_primary), "A") == "1");
}

TEST_CASE("failover: a lost COMMIT stays commit_unknown when the evidence is not sound",
          "[failover][commit_unknown]") {
    auto topo = replicated_topology::start();
    create_table(topo, "CREATE TABLE ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, ref VARCHAR(16)) ENGINE=InnoDB");

    // Semi-sync off on the old primary: what it acknowledged may exist on it alone.
    topo.admin_sql(0, "SET GLOBAL rpl_semi_sync_master_enabled = OFF");
    REQUIRE(topo.global_status(0, "Rpl_semi_sync_master_status") == "OFF");
    failover_times f{};
    auto c = commit_through_failover(topo, "C", lifeline::testing::commit_cut::after_forward, f);
    INFO(c.why);
    CHECK(c.ec == errc::commit_unknown);
    CHECK(c.runs == 1);
    CHECK(c.why.find("semi-sync") != std::string::npos);
    std::printf("semi-sync off: %s: %s\n", c.ec.message().c_str(), c.why.c_str());

    // A replica that acknowledged the COMMIT is left out of the promotion: it has applied more
    // than the new writer, whose "not found" would be wrong.
    topo.rejoin_old_primary(f.old_primary, f.new_primary);
    topo.wait_semi_sync_clients(f.new_primary, 2, 20s);
    const std::size_t lagging = f.old_primary;  // rejoined: a replica now
    const std::size_t acking = 3 - f.old_primary - f.new_primary;
    topo.admin_sql(lagging, "STOP SLAVE IO_THREAD");
    wait_until(20s, "one semi-sync client left",
               [&] { return topo.global_status(topo.primary(), "Rpl_semi_sync_master_clients") == "1"; });
    // The orchestrator here promotes the lagging replica and leaves the other alone (no repoint):
    // not what an orchestrator should do, which is the point.
    const std::size_t p = topo.primary();
    lifeline::testing::fault_proxy proxy(topo.endpoint(p).host, static_cast<std::uint16_t>(topo.endpoint(p).port));
    connect_options o = cluster_options(topo);
    o.hosts[p].port = proxy.port();
    lifeline::connection<lifeline::capi> db(o);
    db.connect();
    lost_commit_run d;
    auto done = std::async(std::launch::async, [&] {
        transaction_options to = lifeline::replayable_resolved;
        to.deadline = 30s;
        diagnostics dg;
        d.tr = db.transaction(
            [&](auto& tx) {
                ++d.runs;
                tx.execute("INSERT INTO ledger (ref) VALUES ('D')");
                proxy.refuse_new(true);
                proxy.cut_on_commit(lifeline::testing::commit_cut::after_forward);
            },
            to, d.ec, dg);
        d.why = dg.client_message;
    });
    wait_until(20s, "the COMMIT to be cut", [&] { return proxy.stats().commits_cut == 1; });
    REQUIRE(topo.wait_replicated(acking, topo.gtid_binlog_pos(p), 20s));
    topo.kill_primary();
    topo.promote(lagging);
    done.get();
    INFO(d.why);
    CHECK(d.ec == errc::commit_unknown);
    CHECK(d.runs == 1);
    CHECK(d.why.find("more than the new writer") != std::string::npos);
    std::printf("replica ahead: %s: %s\n", d.ec.message().c_str(), d.why.c_str());
    CHECK(count_ref(topo.endpoint(acking), "D") == "1");   // it did commit ...
    CHECK(count_ref(topo.endpoint(lagging), "D") == "0");  // ... and the new writer has not got it
}
