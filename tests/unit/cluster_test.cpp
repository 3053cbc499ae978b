// Failover, the pure half (cluster.hpp, detail/cluster_sql.hpp): the role a server's answer means,
// what a fault says, the order in which a view tries its hosts (deny window, TTL, preferred
// writer, replica rotation, fallback), GTID coverage, the rule that allows resolving a lost COMMIT
// on a new writer, and the host list of a DSN. No server, no I/O, no real clock.
#include <lifeline/cluster.hpp>
#include <lifeline/detail/cluster_sql.hpp>
#include <lifeline/options.hpp>

#include <catch2/catch.hpp>

#include <set>

using namespace lifeline;
using namespace std::chrono_literals;

namespace {

std::vector<host_port> three() { return {{"10.0.0.1", 3306}, {"10.0.0.2", 3306}, {"10.0.0.3", 3307}}; }

server_facts writer_facts(std::uint64_t server_id = 1) {
    server_facts f;
    f.read_only = false;
    f.semi_sync = true;
    f.identity.known = true;
    f.identity.server_id = server_id;
    f.identity.port = 3306;
    f.identity.host_hash = detail::fnv1a("db");
    return f;
}
server_facts replica_facts(std::uint64_t server_id) {
    server_facts f = writer_facts(server_id);
    f.read_only = true;
    return f;
}
server_facts galera_facts(bool synced = true) {
    server_facts f;
    f.galera = true;
    f.wsrep_ready = synced;
    f.synced = synced;
    f.primary_component = synced;
    return f;
}

const steady_time t0 = steady_time{} + 1h;

}  // namespace

TEST_CASE("cluster: a server's answer decides its role, never its place in the list", "[unit][failover]") {
    CHECK(role_of(writer_facts()) == server_role::writer);
    CHECK(role_of(replica_facts(2)) == server_role::replica);
    CHECK(role_of(galera_facts()) == server_role::writer);  // every synced Galera node takes writes
    CHECK(role_of(galera_facts(false)) == server_role::not_ready);
    server_facts f = galera_facts();
    f.primary_component = false;  // a partitioned node
    CHECK(role_of(f) == server_role::not_ready);
    f = galera_facts();
    f.rejecting = true;  // wsrep_reject_queries = ALL
    CHECK(role_of(f) == server_role::not_ready);
    f = galera_facts();
    f.read_only = true;  // Galera's wsrep state decides; read_only is not how Galera says "replica"
    CHECK(role_of(f) == server_role::writer);
}

TEST_CASE("cluster: what a failed statement says about its server", "[unit][failover]") {
    for (unsigned c : {1290u, 1836u, 1792u}) CHECK(fault_of(c) == host_fault::not_writer);
    CHECK(fault_of(1047) == host_fault::not_ready);
    for (unsigned c : {2013u, 2006u, 2055u, 2003u, 1053u, 1927u, 4031u}) CHECK(fault_of(c) == host_fault::lost);
    for (unsigned c : {0u, 1062u, 1213u, 1205u, 1064u, 1317u}) CHECK(fault_of(c) == host_fault::none);
}

TEST_CASE("cluster view: first connects go in list order; a learnt writer comes first", "[unit][failover]") {
    cluster_view v(three());
    CHECK(v.candidates(target_role::writer, t0) == std::vector<std::size_t>{0, 1, 2});
    v.learnt(0, replica_facts(1), t0);
    v.learnt(1, replica_facts(2), t0);
    v.learnt(2, writer_facts(3), t0);
    CHECK(v.serves(2, target_role::writer));
    CHECK_FALSE(v.serves(0, target_role::writer));
    // The writer first; replicas that said read-only a moment ago last, not never (they may
    // have been promoted since).
    CHECK(v.candidates(target_role::writer, t0) == std::vector<std::size_t>{2, 0, 1});
    CHECK(v.writer(t0) == std::optional<std::size_t>(2));
    // Past the TTL what was learnt is only "unknown": list order again, writer no longer known.
    const steady_time later = t0 + v.policy().role_ttl + 1ms;
    CHECK(v.candidates(target_role::writer, later) == std::vector<std::size_t>{0, 1, 2});
    CHECK_FALSE(v.writer(later));
}

TEST_CASE("cluster view: a host whose connect failed is denied for the window, unless all are", "[unit][failover]") {
    cluster_policy p;
    p.deny_window = 1s;
    cluster_view v(three(), p);
    v.learnt(0, writer_facts(1), t0);
    v.learnt(1, replica_facts(2), t0);
    v.learnt(2, replica_facts(3), t0);
    v.connect_failed(0, t0);  // the primary died
    CHECK(v.state(0).role == server_role::down);
    CHECK(v.candidates(target_role::writer, t0 + 10ms) == std::vector<std::size_t>{1, 2});
    // The window is over: tried again, but after the others (its last word was a failure, and a
    // blackholed host costs a whole connect timeout).
    CHECK(v.candidates(target_role::writer, t0 + 1001ms) == std::vector<std::size_t>{1, 2, 0});
    // All denied: the one free soonest first (better than trying nothing).
    v.connect_failed(2, t0 + 100ms);
    v.connect_failed(1, t0 + 50ms);
    CHECK(v.candidates(target_role::writer, t0 + 200ms) == std::vector<std::size_t>{0, 1, 2});
    // A host that answers again is no longer denied.
    v.learnt(2, writer_facts(3), t0 + 300ms);
    CHECK(v.candidates(target_role::writer, t0 + 300ms) == std::vector<std::size_t>{2});
}

TEST_CASE("cluster view: faults that may mean failover make what was learnt stale", "[unit][failover]") {
    cluster_view v(three());
    v.learnt(0, writer_facts(1), t0);
    v.learnt(1, replica_facts(2), t0);
    const auto e0 = v.epoch();
    v.fault(0, 1290, t0 + 1ms);  // the writer said read-only: demoted
    CHECK(v.state(0).role == server_role::replica);
    CHECK(v.epoch() > e0);
    CHECK_FALSE(v.writer(t0 + 1ms));
    v.learnt(1, writer_facts(2), t0 + 2ms);  // promoted
    CHECK(v.candidates(target_role::writer, t0 + 2ms).front() == 1);
    v.fault(1, 2013, t0 + 3ms);  // the connection broke: ask again, but no deny window
    CHECK(v.state(1).role == server_role::unknown);
    CHECK(v.candidates(target_role::writer, t0 + 3ms).front() == 1);
    v.fault(1, 1062, t0 + 4ms);  // a duplicate key says nothing about the server
    CHECK(v.state(1).role == server_role::unknown);
    v.fault(2, 1047, t0 + 5ms);  // Galera node not ready: denied
    CHECK(v.state(2).role == server_role::not_ready);
    CHECK(v.candidates(target_role::writer, t0 + 6ms) == std::vector<std::size_t>{1, 0});
}

TEST_CASE("cluster view: replica reads spread over the replicas and fall back to the writer", "[unit][failover]") {
    cluster_view v(three());
    v.learnt(0, writer_facts(1), t0);
    v.learnt(1, replica_facts(2), t0);
    v.learnt(2, replica_facts(3), t0);
    std::set<std::size_t> firsts;
    for (int i = 0; i < 6; ++i) {
        const auto c = v.candidates(target_role::prefer_replica, t0);
        REQUIRE(c.size() == 3);
        CHECK(c.back() == 0);  // the writer only as the last resort
        firsts.insert(c.front());
    }
    CHECK(firsts == std::set<std::size_t>{1, 2});
    CHECK(v.serves(1, target_role::prefer_replica));
    CHECK_FALSE(v.serves(0, target_role::prefer_replica));
    CHECK(v.serves(0, target_role::prefer_replica, /*fallback*/ true));
    CHECK_FALSE(v.serves(1, target_role::writer));
}

TEST_CASE("cluster view: Galera writes go to one node while it stays synced; reads to another", "[unit][failover]") {
    cluster_view v(three());
    for (std::size_t i = 0; i < 3; ++i) v.learnt(i, galera_facts(), t0);
    CHECK(v.galera());
    v.chose(1, target_role::writer);
    for (int i = 0; i < 3; ++i) CHECK(v.candidates(target_role::writer, t0).front() == 1);
    CHECK_FALSE(v.serves(1, target_role::prefer_replica));  // reads prefer a node that is not the writer
    CHECK(v.serves(0, target_role::prefer_replica));
    CHECK(v.candidates(target_role::prefer_replica, t0).back() == 1);
    v.learnt(1, galera_facts(false), t0 + 1ms);  // left the primary component
    CHECK(v.state(1).role == server_role::not_ready);
    const auto c = v.candidates(target_role::writer, t0 + 2ms);
    CHECK(std::find(c.begin(), c.end(), 1u) == c.end());  // denied
}

TEST_CASE("cluster view: the old session's server is found by its identity", "[unit][failover]") {
    cluster_view v(three());
    v.learnt(0, writer_facts(1), t0);
    v.learnt(1, replica_facts(2), t0);
    CHECK(v.find(writer_facts(1).identity) == std::optional<std::size_t>(0));
    CHECK(v.find(replica_facts(2).identity) == std::optional<std::size_t>(1));
    CHECK_FALSE(v.find(writer_facts(9).identity));
    detail::server_identity unknown;
    CHECK_FALSE(v.find(unknown));
    CHECK(v.key() == "10.0.0.1:3306,10.0.0.2:3306,10.0.0.3:3307");
    CHECK(cluster_view::key_of({{"::1", 3306}}) == "[::1]:3306");
}

TEST_CASE("gtid: per domain and server, so a promoted replica cannot hide what it never got", "[unit][failover]") {
    auto g = [](const char* s) {
        auto p = gtid_state::parse(s);
        REQUIRE(p);
        return *p;
    };
    CHECK(g("0-1-100").covers(g("0-1-99")));
    CHECK(g("0-1-100").covers(g("0-1-100")));
    CHECK_FALSE(g("0-1-99").covers(g("0-1-100")));
    // The promoted replica got up to 0-1-99, then wrote 0-2-100 and 0-2-101 itself. The old
    // writer's 0-1-100 (acked by another replica) is not in it, although 101 > 100.
    CHECK_FALSE(g("0-1-99,0-2-101").covers(g("0-1-100")));
    CHECK(g("0-1-100,0-2-101").covers(g("0-1-100")));
    CHECK(g("0-1-5, 1-3-7").covers(g("1-3-7")));
    CHECK_FALSE(g("0-1-5").covers(g("1-3-1")));  // another domain
    CHECK(g("").covers(g("")));
    CHECK(g("0-1-5").covers(g("")));
    CHECK(g("0-1-5,0-1-9").to_string() == "0-1-9");
    for (const char* bad : {"x", "0-1", "0-1-", "0--1-2", "0-1-2-3", "a-b-c", "0-1-2;"}) CHECK_FALSE(gtid_state::parse(bad));
}

TEST_CASE("failover rule: when a lost COMMIT may be resolved on the new writer", "[unit][failover]") {
    failover_evidence ev;
    ev.old_known = true;
    ev.old_reachable = false;
    ev.old_semi_sync = true;
    ev.others = {*gtid_state::parse("0-1-99")};
    ev.current = gtid_state::parse("0-1-100,0-2-101");
    SECTION("old writer dead, semi-sync was on, the new writer covers every reachable server: sound") {
        const auto v = judge_failover(ev);
        CHECK(v.old_fenced);
        CHECK(v.acked_replicated);
        CHECK(v.covers);
        CHECK(v.sound());
    }
    SECTION("semi-sync was off (or unknown): what it acknowledged may exist only on the dead writer") {
        ev.old_semi_sync = false;
        CHECK_FALSE(judge_failover(ev).sound());
        ev.old_semi_sync.reset();
        CHECK_FALSE(judge_failover(ev).acked_replicated);
    }
    SECTION("a reachable replica applied more than the new writer: not sound") {
        ev.others.push_back(*gtid_state::parse("0-1-101"));
        const auto v = judge_failover(ev);
        CHECK_FALSE(v.covers);
        CHECK(v.why.find("0-1-101") != std::string::npos);
    }
    SECTION("old writer reachable and read-only: fenced; its own GTIDs are compared, semi-sync not needed") {
        ev.old_reachable = true;
        ev.old_semi_sync = false;
        ev.old_facts = replica_facts(1);
        ev.others.push_back(*gtid_state::parse("0-1-100"));
        CHECK(judge_failover(ev).sound());
        ev.others.back() = *gtid_state::parse("0-1-102");  // it committed more than the new writer has
        CHECK_FALSE(judge_failover(ev).sound());
    }
    SECTION("old writer reachable and writable: the old session may still commit: not sound") {
        ev.old_reachable = true;
        ev.old_facts = writer_facts(1);
        const auto v = judge_failover(ev);
        CHECK_FALSE(v.old_fenced);
        CHECK_FALSE(v.sound());
    }
    SECTION("the old server is not one of the hosts, or the new writer's GTIDs are unknown") {
        ev.old_known = false;
        CHECK_FALSE(judge_failover(ev).sound());
        ev.old_known = true;
        ev.current.reset();
        CHECK_FALSE(judge_failover(ev).sound());
    }
    SECTION("Galera: the old node out of the primary component, a causal read on a synced node") {
        ev = failover_evidence{};
        ev.galera = true;
        ev.old_known = true;
        ev.old_reachable = false;
        ev.current_facts = galera_facts();
        ev.barrier_passed = true;
        CHECK(judge_failover(ev).sound());
        ev.barrier_passed = false;
        CHECK_FALSE(judge_failover(ev).sound());
        ev.barrier_passed = true;
        ev.old_reachable = true;
        ev.old_facts = galera_facts();  // still synced: its COMMIT may still replicate
        CHECK_FALSE(judge_failover(ev).sound());
        ev.old_facts = galera_facts(false);
        CHECK(judge_failover(ev).sound());
    }
}

TEST_CASE("cluster sql: the role answer, the GTID wait", "[unit][failover]") {
    result r;
    r.rows.push_back({std::string("1"), std::string("0"), std::string("NONE"),
                      std::string("RPL_SEMI_SYNC_MASTER_STATUS=ON,WSREP_READY=OFF"), std::string("0-1-5,0-2-9"),
                      std::string("0-2-9")});
    detail::role_answer a;
    REQUIRE(detail::parse_role_answer(r, a));
    CHECK(a.facts.read_only);
    CHECK_FALSE(a.facts.galera);
    CHECK(a.facts.semi_sync == std::optional<bool>(true));
    CHECK(role_of(a.facts) == server_role::replica);
    auto g = detail::gtid_of(a);
    REQUIRE(g);
    CHECK(g->to_string() == "0-1-5,0-2-9");

    r.rows[0] = {std::string("0"), std::string("1"), std::string("ALL"),
                 std::string("WSREP_READY=ON,WSREP_LOCAL_STATE_COMMENT=Synced,WSREP_CLUSTER_STATUS=Primary"), std::nullopt,
                 std::nullopt};
    REQUIRE(detail::parse_role_answer(r, a));
    CHECK(a.facts.galera);
    CHECK(a.facts.rejecting);
    CHECK_FALSE(a.facts.semi_sync);
    CHECK(role_of(a.facts) == server_role::not_ready);
    r.rows[0][2] = std::string("NONE");
    REQUIRE(detail::parse_role_answer(r, a));
    CHECK(role_of(a.facts) == server_role::writer);
    r.rows[0].pop_back();
    CHECK_FALSE(detail::parse_role_answer(r, a));

    CHECK(detail::gtid_wait_sql("0-1-5,1-2-3", 1500ms) == "SELECT MASTER_GTID_WAIT('0-1-5,1-2-3', 1.500)");
    CHECK(detail::gtid_wait_sql("0-1-5", 40ms) == "SELECT MASTER_GTID_WAIT('0-1-5', 0.040)");
    CHECK(detail::gtid_wait_sql("0-1-5'); DROP TABLE t; --", 1s).empty());  // only what a server writes
    CHECK(detail::causal_sql("SELECT 1") == "SET STATEMENT wsrep_sync_wait = 1 FOR SELECT 1");
}

TEST_CASE("dsn: a host list, IPv6 in brackets, target; strict as a single host", "[unit][failover][safety]") {
    connect_options o = parse_dsn("mysql://app:pw@db1:3306,db2:3307,[::1]:3308/shop?target=prefer_replica");
    REQUIRE(o.hosts.size() == 3);
    CHECK(o.hosts[0] == host_port{"db1", 3306});
    CHECK(o.hosts[1] == host_port{"db2", 3307});
    CHECK(o.hosts[2] == host_port{"::1", 3308});
    CHECK(o.host == "db1");  // the first, for logs
    CHECK(o.port == 3306);
    CHECK(o.target == target_role::prefer_replica);
    CHECK(o.database == "shop");
    CHECK(parse_dsn(format_dsn(o, true)) == o);
    CHECK(format_dsn(o) == "mysql://app@db1:3306,db2:3307,[::1]:3308/shop?target=prefer_replica");
    // No port: 3306 for that entry.
    o = parse_dsn("mysql://u@a,b:3307/db");
    REQUIRE(o.hosts.size() == 2);
    CHECK(o.hosts[0].port == 3306);
    CHECK(o.target == target_role::writer);
    // One host: no list, exactly as before.
    o = parse_dsn("mysql://u@db1:3307/db");
    CHECK(o.hosts.empty());
    CHECK(o.port == 3307);

    auto rejection = [](const char* dsn) {
        std::error_code ec;
        diagnostics d;
        parse_dsn(dsn, ec, d);
        CHECK(ec == errc::invalid_dsn);
        return d.client_message;
    };
    CHECK(rejection("mysql://u@a,,b/db").find("empty entry") != std::string::npos);
    CHECK(rejection("mysql://u@a,/db").find("empty entry") != std::string::npos);
    CHECK(rejection("mysql://u@,a/db").find("empty entry") != std::string::npos);
    CHECK(rejection("mysql://u@a:3306,a:3306/db").find("twice") != std::string::npos);
    CHECK(rejection("mysql://u@a:0,b/db").find("port 0") != std::string::npos);
    CHECK(rejection("mysql://u@a,b:x/db").find("not a number") != std::string::npos);
    CHECK(rejection("mysql://u@a,::1/db").find("more than one ':'") != std::string::npos);
    CHECK(rejection("mysql://u@a,[::1/db").find("unclosed '['") != std::string::npos);
    CHECK(rejection("mysql://u@a,:3306/db").find("without a host") != std::string::npos);
    CHECK(rejection("mysql://u@localhost,b/db?socket=/s").find("socket") != std::string::npos);
    CHECK(rejection("mysql://u@a/db?target=replica").find("writer or prefer_replica") != std::string::npos);
    CHECK(rejection("mysql://u@a/db?target=prefer_replica").find("needs a host list") != std::string::npos);

    // Built by hand: the list alone is enough; each entry needs a host and a port.
    connect_options h;
    h.user = "app";
    h.host.clear();
    h.hosts = {{"db1", 3306}, {"db2", 3306}};
    CHECK(validate(h).empty());
    h.hosts[1].port = 0;
    CHECK(validate(h).find("port") != std::string::npos);
    h.hosts[1] = {"", 3306};
    CHECK(validate(h).find("empty host") != std::string::npos);
}
