// Failover in the sans-I/O engines, as event sequences (no driver, no threads, no clock): a
// read-only answer re-sent to the writer, a transaction replayed off a demoted primary, and the
// lost COMMIT / unknown outcome judged across servers (across_servers fence) — plus the safety
// invariant as a property over random sequences that include failovers.
#include <lifeline/detail/operation_engine.hpp>
#include <lifeline/detail/transaction_engine.hpp>

#include <catch2/catch.hpp>

#include <random>

using namespace lifeline;
using namespace lifeline::detail;
using namespace std::chrono_literals;

namespace {

struct harness {
    default_policy policy;
    link_state state;
    circuit_breaker breaker;
    endpoint_monitor monitor;
    retry_budget budget;
    backoff bo;
    steady_time now = steady_time{} + 1h;

    explicit harness(bool cluster = true, default_policy p = {})
        : policy(p), state(p.health), breaker(p.breaker), monitor(p.probe), budget(relaxed(p.budget)), bo(p.backoff, 7) {
        state.cluster = cluster;
        state.can_reroute = cluster;
    }
    static retry_budget_policy relaxed(retry_budget_policy b) {
        b.min_retries_per_second = 1e9;
        return b;
    }
    retry_gate gate(duration d) { return retry_gate(policy.retry.max_attempts, deadline::after(d, now), &budget, bo); }
    operation_engine<default_policy> op(operation_spec s, duration d = 10s) {
        return operation_engine<default_policy>(policy, state, breaker, monitor, gate(d), &budget, s);
    }
    transaction_engine<default_policy> tx(transaction_options o, duration d = 10s) {
        return transaction_engine<default_policy>(policy, state, breaker, monitor, gate(d), &budget, o);
    }
    template <class E>
    next_action wait_out(E& e, const next_action& a) {
        REQUIRE((a.type == action_type::wait || a.type == action_type::await_endpoint));
        now += a.delay;
        return e.resume(waited{}, now);
    }
    // Waits and probes until the engine asks for something else.
    template <class E>
    next_action settle(E& e, next_action a) {
        for (int i = 0; i < 10; ++i) {
            if (a.type == action_type::wait || a.type == action_type::await_endpoint) a = wait_out(e, a);
            else if (a.type == action_type::probe) a = e.resume(probed{socket_status::alive}, now);
            else break;
        }
        return a;
    }
};

connected up(std::uint64_t id, std::uint64_t server_id) {
    connected c;
    c.ok = true;
    c.session.id = id;
    c.session.lock_hi = 0xabc;
    c.session.lock_lo = id;
    c.session.lock_certain = true;
    c.session.server.server_id = server_id;
    c.session.server.host_hash = fnv1a("db");
    c.session.server.port = 3306;
    c.session.server.started_at = 1000;
    c.session.server.known = true;
    c.wait_timeout = 28800s;
    c.max_allowed_packet = 1 << 20;
    return c;
}
attempted ok_attempt() {
    attempted a;
    a.ok = true;
    return a;
}
attempted failed(unsigned code, phase where = phase::read_result, const char* state = "HY000") {
    attempted a;
    a.diag.code = code;
    a.diag.sqlstate = state;
    a.diag.where = where;
    return a;
}
fenced across(bool old_fenced, bool acked, bool covers) {
    fenced f;
    f.ok = true;
    f.old_server_fenced = old_fenced;
    f.acknowledged_replicated = acked;
    f.new_server_covers = covers;
    f.diag.client_message = "failover check: evidence";
    return f;
}
began began_ok() {
    began b;
    b.ok = true;
    return b;
}
committed commit_lost() {
    committed c;
    c.diag.code = 2013;
    c.diag.sqlstate = "HY000";
    c.diag.where = phase::read_result;
    return c;
}
transaction_options resolved() {
    transaction_options o;
    o.replayable = true;
    o.resolve_commit = true;
    return o;
}

}  // namespace

TEST_CASE("failover decide: a read-only answer is re-sent only when the connection can reroute", "[unit][failover]") {
    const classification ro = classify(failure{1290, "HY000", phase::read_result, false});
    CHECK(ro.action == remedy::reroute_to_primary);
    CHECK(ro.statement == outcome::not_executed);
    decision_input in;
    CHECK(decide(ro, in).step == next_step::fail);
    CHECK(decide(ro, in).error == errc::read_only_server);
    in.can_reroute = true;
    CHECK(decide(ro, in).step == next_step::retry);
    CHECK_FALSE(decide(ro, in).error);
    in.in_transaction = true;  // inside the caller's own open transaction: never a single statement
    CHECK(decide(ro, in).step == next_step::fail);
    // Nothing else changes with can_reroute: an unknown outcome is still not re-sent undeclared.
    const classification lost = classify(failure{2013, "HY000", phase::read_result, false});
    decision_input w;
    w.can_reroute = true;
    CHECK(decide(lost, w).error == errc::outcome_unknown);
}

TEST_CASE("failover engine: a write refused as read-only (1290) is re-sent after reconnecting to the writer",
          "[unit][failover]") {
    harness h;
    auto e = h.op(operation_spec{});
    auto a = e.start(h.now);
    a = e.resume(up(1, 1), h.now);
    REQUIRE(a.type == action_type::attempt);
    a = e.resume(failed(1290), h.now);
    CHECK_FALSE(h.state.open);  // the session on the read-only server is closed: the next connect finds the writer
    a = h.settle(e, a);
    REQUIRE(a.type == action_type::connect);
    a = e.resume(up(7, 2), h.now);  // the new writer
    REQUIRE(a.type == action_type::attempt);
    a = e.resume(ok_attempt(), h.now);
    CHECK(a.type == action_type::done);
    CHECK_FALSE(a.ec);
    CHECK(e.attempts() == 2);
    // 1836 (read-only mode) and 1792 (read-only transaction) mean the same.
    for (unsigned code : {1836u, 1792u}) {
        harness h2;
        auto e2 = h2.op(operation_spec{});
        e2.start(h2.now);
        e2.resume(up(1, 1), h2.now);
        auto b = h2.settle(e2, e2.resume(failed(code, phase::read_result, code == 1792 ? "25006" : "HY000"), h2.now));
        CHECK(b.type == action_type::connect);
    }
}

TEST_CASE("failover engine: read-only answers are bounded by the attempt limit; one server: read_only_server",
          "[unit][failover]") {
    harness h;
    auto e = h.op(operation_spec{});
    auto a = e.start(h.now);
    a = e.resume(up(1, 1), h.now);
    std::uint64_t id = 2;
    while (a.type != action_type::done) {
        if (a.type == action_type::attempt) a = e.resume(failed(1290), h.now);
        else if (a.type == action_type::connect) a = e.resume(up(id++, 1), h.now);
        else a = h.settle(e, a);
    }
    CHECK(a.ec == make_driver_error_code(1290));
    CHECK(e.attempts() == h.policy.retry.max_attempts);

    harness single(false);
    auto s = single.op(operation_spec{});
    s.start(single.now);
    s.resume(up(1, 1), single.now);
    a = s.resume(failed(1290), single.now);
    CHECK(a.type == action_type::done);
    CHECK(a.ec == errc::read_only_server);
}

TEST_CASE("failover engine: a transaction that ran on a demoted primary is replayed on the writer", "[unit][failover]") {
    harness h;
    auto e = h.tx(resolved());
    e.start(h.now);
    e.resume(up(1, 1), h.now);
    e.resume(began_ok(), h.now);
    statement_done s;
    s.diag.code = 1290;
    s.diag.sqlstate = "HY000";
    s.diag.where = phase::read_result;
    CHECK_FALSE(e.statement_finished(s));
    auto a = e.resume(body_done{}, h.now);
    CHECK_FALSE(h.state.open);  // closed: the server rolls the transaction back; never COMMIT there
    a = h.settle(e, a);
    REQUIRE(a.type == action_type::connect);
    a = e.resume(up(9, 2), h.now);
    REQUIRE(a.type == action_type::begin);
    CHECK(e.runs() == 2);

    SECTION("not replayable: the server's 1290, nothing committed") {
        harness n;
        transaction_options o;
        auto t = n.tx(o);
        t.start(n.now);
        t.resume(up(1, 1), n.now);
        t.resume(began_ok(), n.now);
        t.statement_finished(s);
        a = t.resume(body_done{}, n.now);
        CHECK(a.type == action_type::done);
        CHECK(a.ec == make_driver_error_code(1290));
    }
}

TEST_CASE("failover engine: BEGIN's token row refused as read-only: reconnect (one server: read_only_server)",
          "[unit][failover]") {
    for (bool cluster : {true, false}) {
        harness h(cluster);
        auto e = h.tx(resolved());
        e.start(h.now);
        e.resume(up(1, 1), h.now);
        began b;
        b.diag.code = 1290;
        b.diag.sqlstate = "HY000";
        b.diag.where = phase::read_result;
        auto a = e.resume(b, h.now);
        if (cluster) {
            CHECK_FALSE(h.state.open);
            a = h.settle(e, a);
            REQUIRE(a.type == action_type::connect);
            a = e.resume(up(2, 2), h.now);
            CHECK(a.type == action_type::begin);
        } else {
            CHECK(a.type == action_type::done);
            CHECK(a.ec == errc::read_only_server);
        }
    }
}

TEST_CASE("failover engine: a lost COMMIT and a new writer: resolved only on sound evidence", "[unit][failover]") {
    harness h;
    auto e = h.tx(resolved());
    e.start(h.now);
    e.resume(up(5, 1), h.now);
    e.resume(began_ok(), h.now);
    e.resume(body_done{}, h.now);
    auto a = h.settle(e, e.resume(commit_lost(), h.now));
    REQUIRE(a.type == action_type::connect);
    a = e.resume(up(8, 2), h.now);  // another server: the writer changed
    REQUIRE(a.type == action_type::fence);
    CHECK(a.across_servers);
    CHECK(a.target.id == 5);
    CHECK(a.target.server.server_id == 1);
    SECTION("sound: looked up on the new writer") {
        a = e.resume(across(true, true, true), h.now);
        REQUIRE(a.type == action_type::lookup);
        looked_up l;
        l.ok = l.found = true;
        a = e.resume(l, h.now);
        CHECK(a.type == action_type::done);
        CHECK_FALSE(a.ec);
        CHECK(e.commit_resolved());
    }
    SECTION("sound, not found: not committed, replayed on the new writer") {
        a = e.resume(across(true, true, true), h.now);
        looked_up l;
        l.ok = true;
        a = h.settle(e, e.resume(l, h.now));
        CHECK(a.type == action_type::begin);
        CHECK(e.runs() == 2);
    }
    SECTION("old writer still writable -> commit_unknown, nothing looked up or replayed") {
        a = e.resume(across(false, true, true), h.now);
        CHECK(a.ec == errc::commit_unknown);
        CHECK(e.diag().client_message.find("still writable") != std::string::npos);
        CHECK(e.diag().client_message.find("evidence") != std::string::npos);  // the I/O layer's account
    }
    SECTION("semi-sync was off -> commit_unknown") {
        a = e.resume(across(true, false, true), h.now);
        CHECK(a.ec == errc::commit_unknown);
        CHECK(e.diag().client_message.find("semi-sync") != std::string::npos);
    }
    SECTION("a replica is ahead of the new writer -> commit_unknown") {
        a = e.resume(across(true, true, false), h.now);
        CHECK(a.ec == errc::commit_unknown);
    }
    SECTION("an I/O layer that cannot gather the evidence answers fenced{} -> commit_unknown") {
        a = e.resume(fenced{}, h.now);
        CHECK(a.ec == errc::commit_unknown);
    }
    SECTION("the new writer's session breaks during the check -> connect and check again") {
        fenced f;
        f.connection_lost = true;
        a = h.settle(e, e.resume(f, h.now));
        REQUIRE(a.type == action_type::connect);
        a = e.resume(up(11, 3), h.now);
        CHECK(a.type == action_type::fence);
        CHECK(a.across_servers);
    }
    SECTION("back on the old server after all: the ordinary fence on it") {
        fenced f;
        f.connection_lost = true;
        a = h.settle(e, e.resume(f, h.now));
        a = e.resume(up(12, 1), h.now);
        REQUIRE(a.type == action_type::fence);
        CHECK_FALSE(a.across_servers);
    }
}

TEST_CASE("failover engine: without a host list a new server still means commit_unknown", "[unit][failover]") {
    harness h(false);
    auto e = h.tx(resolved());
    e.start(h.now);
    e.resume(up(5, 1), h.now);
    e.resume(began_ok(), h.now);
    e.resume(body_done{}, h.now);
    auto a = h.settle(e, e.resume(commit_lost(), h.now));
    a = e.resume(up(8, 2), h.now);
    CHECK(a.ec == errc::commit_unknown);
}

TEST_CASE("failover engine: an unknown write verified on the new writer after the failover check", "[unit][failover]") {
    harness h;
    operation_spec s;
    s.can_verify = true;
    auto e = h.op(s);
    e.start(h.now);
    e.resume(up(5, 1), h.now);
    auto a = h.settle(e, e.resume(failed(2013), h.now));
    REQUIRE(a.type == action_type::connect);
    a = e.resume(up(3, 2), h.now);
    REQUIRE(a.type == action_type::fence);
    REQUIRE(a.across_servers);
    SECTION("sound -> verify -> not applied -> re-sent") {
        a = e.resume(across(true, true, true), h.now);
        REQUIRE(a.type == action_type::verify);
        verified v;
        v.check = write_check::not_applied;
        a = e.resume(v, h.now);
        CHECK(a.type == action_type::attempt);
        CHECK(e.attempts() == 2);
    }
    SECTION("not sound -> outcome_unknown, never verified or re-sent") {
        a = e.resume(across(true, false, true), h.now);
        CHECK(a.ec == errc::outcome_unknown);
        CHECK(e.attempts() == 1);
    }
}

// The invariant with failovers in the sequences: an unknown write is re-sent only after its old
// session was shown gone on its own server, or the failover check was sound, and the caller's
// check then said not applied.
TEST_CASE("failover engine property: no unknown write re-sent without a sound fence and a check", "[unit][failover]") {
    std::mt19937_64 rng(20261212);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
    int resends_after_unknown = 0, across_checks = 0, reroutes = 0;
    for (int run = 0; run < 4000; ++run) {
        default_policy p;
        p.breaker.failure_threshold = 1000000;
        p.retry.max_attempts = 1 + static_cast<unsigned>(pick(5));
        harness h(true, p);
        operation_spec s;
        s.can_verify = pick(3) != 0;
        auto e = h.op(s, std::chrono::seconds(1 + pick(5)));
        bool unknown = false, fenced_ok = false, verified_no = false;
        std::uint64_t next_id = 10, server = 1;
        auto a = e.start(h.now);
        for (int step = 0; step < 200 && a.type != action_type::done; ++step) {
            switch (a.type) {
            case action_type::probe: a = e.resume(probed{pick(4) ? socket_status::alive : socket_status::dead}, h.now); break;
            case action_type::ping: {
                pinged pg;
                pg.ok = pick(2) == 0;
                a = e.resume(pg, h.now);
                break;
            }
            case action_type::connect: {
                if (pick(5) == 0) {
                    connected c;
                    c.diag.code = 2003;
                    c.diag.where = phase::connect;
                    a = e.resume(c, h.now);
                } else {
                    if (pick(3) == 0) server = 1 + static_cast<std::uint64_t>(pick(3));  // a failover (or back)
                    a = e.resume(up(next_id++, server), h.now);
                }
                break;
            }
            case action_type::fence: {
                fenced f;
                if (a.across_servers) {
                    ++across_checks;
                    f = across(pick(2) == 0, pick(2) == 0, pick(2) == 0);
                    if (pick(8) == 0) f = fenced{};
                    if (f.ok && f.old_server_fenced && f.acknowledged_replicated && f.new_server_covers) fenced_ok = true;
                } else {
                    f.ok = true;  // gone on its own server
                    fenced_ok = true;
                }
                a = e.resume(f, h.now);
                break;
            }
            case action_type::kill: {
                killed k;
                k.ok = true;
                a = e.resume(k, h.now);
                break;
            }
            case action_type::verify: {
                CHECK(fenced_ok);
                verified v;
                v.check = pick(2) ? write_check::not_applied : write_check::applied;
                if (v.check == write_check::not_applied) verified_no = true;
                a = e.resume(v, h.now);
                break;
            }
            case action_type::attempt: {
                if (unknown && !(fenced_ok && verified_no)) ++resends_after_unknown;
                unknown = fenced_ok = verified_no = false;
                static const unsigned codes[] = {0, 2013, 1290, 1047, 2006, 1290, 1213};
                const unsigned code = codes[pick(7)];
                attempted at = code == 0 ? ok_attempt() : failed(code, code == 2006 ? phase::send : phase::read_result,
                                                                 code == 1047 ? "08S01" : code == 1213 ? "40001" : "HY000");
                if (code == 1290) ++reroutes;
                unknown = code == 2013;
                a = e.resume(at, h.now);
                break;
            }
            case action_type::wait:
            case action_type::await_endpoint: a = h.wait_out(e, a); break;
            default: FAIL("unexpected action " << to_string(a.type)); break;
            }
        }
    }
    CHECK(across_checks > 100);
    CHECK(reroutes > 100);
    CHECK(resends_after_unknown == 0);
}

TEST_CASE("failover engine: a Galera node that is not ready (1047): another node with a host list, the same "
          "session on one server",
          "[unit][failover]") {
    for (bool cluster : {true, false}) {
        INFO("host list: " << cluster);
        harness h(cluster);
        auto e = h.op(operation_spec{});
        auto a = e.start(h.now);
        connected c = up(1, 1);
        c.server.flavor = server_flavor::mariadb;
        c.server.galera = true;  // learnt at connect (@@wsrep_on)
        a = e.resume(c, h.now);
        REQUIRE(a.type == action_type::attempt);
        a = e.resume(failed(1047, phase::read_result, "08S01"), h.now);
        // One server: the flavour row says the session is fine and reconnecting to the same node
        // does not help. A host list: leave the node, the next connect picks a synced one.
        CHECK(h.state.open == !cluster);
        a = h.settle(e, a);
        CHECK(a.type == (cluster ? action_type::connect : action_type::attempt));
    }
}
