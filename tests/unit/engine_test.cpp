// The sans-I/O engines as event sequences: no driver, no threads, no real clock. Every action,
// every stop reason, and the safety invariant as a property over random event sequences.
#include <lifeline/detail/operation_engine.hpp>
#include <lifeline/detail/transaction_engine.hpp>

#include <catch2/catch.hpp>

#include <random>
#include <string>

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

    explicit harness(default_policy p = {})
        : policy(p), state(p.health), breaker(p.breaker), monitor(p.probe), budget(relaxed(p.budget)), bo(p.backoff, 42) {}
    static retry_budget_policy relaxed(retry_budget_policy b) {
        b.min_retries_per_second = 1e9;
        return b;
    }
    retry_gate gate(duration d = 10s) { return retry_gate(policy.retry.max_attempts, deadline::after(d, now), &budget, bo); }
    operation_engine<default_policy> op(operation_spec s, duration d = 10s) {
        return operation_engine<default_policy>(policy, state, breaker, monitor, gate(d), &budget, s);
    }
    transaction_engine<default_policy> tx(transaction_options o, duration d = 10s) {
        return transaction_engine<default_policy>(policy, state, breaker, monitor, gate(d), &budget, o);
    }
    // Advances time by a wait action's delay and resumes.
    template <class E>
    next_action wait_out(E& e, const next_action& a) {
        REQUIRE((a.type == action_type::wait || a.type == action_type::await_endpoint));
        now += a.delay;
        return e.resume(waited{}, now);
    }
};

session_ref session(std::uint64_t id, std::int64_t started = 1000, std::uint64_t server_id = 1) {
    session_ref r;
    r.id = id;
    r.lock_hi = 0xabc;
    r.lock_lo = id;  // each session's own lock name
    r.lock_certain = true;
    r.server.server_id = server_id;
    r.server.host_hash = fnv1a("db");
    r.server.port = 3306;
    r.server.started_at = started;
    r.server.known = true;
    return r;
}

connected up(std::uint64_t id, std::int64_t started = 1000, std::uint64_t server_id = 1) {
    connected c;
    c.ok = true;
    c.session = session(id, started, server_id);
    c.wait_timeout = 28800s;
    c.max_allowed_packet = 1 << 20;
    return c;
}

// What fencing finds on the server.
fenced holds_its_lock(std::uint64_t id) {  // the old session is alive
    fenced f;
    f.ok = true;
    f.lock_holder = id;
    f.present = f.present_is_ours = true;
    return f;
}
fenced ended() {  // nobody holds the lock, nobody carries the id
    fenced f;
    f.ok = true;
    return f;
}
fenced id_reused(bool ours) {  // a session carries the old id but holds no lock
    fenced f;
    f.ok = true;
    f.present = true;
    f.present_is_ours = ours;
    return f;
}
killed kill_ok() {
    killed k;
    k.ok = true;
    return k;
}

connected refused(unsigned code = 2002) {
    connected c;
    c.diag.code = code;
    c.diag.sqlstate = "HY000";
    c.diag.where = phase::connect;
    return c;
}

attempted ok_attempt() {
    attempted a;
    a.ok = true;
    return a;
}

attempted failed(unsigned code, phase where, const char* state = "HY000") {
    attempted a;
    a.diag.code = code;
    a.diag.sqlstate = state;
    a.diag.where = where;
    a.open_after = true;
    return a;
}

attempted lost_in_flight() { return failed(2013, phase::read_result); }
attempted gone_before_send() { return failed(2006, phase::send); }

operation_spec write_spec() { return operation_spec{}; }
operation_spec idempotent_spec() {
    operation_spec s;
    s.idempotent = true;
    return s;
}
operation_spec verify_spec() {
    operation_spec s;
    s.can_verify = true;
    return s;
}

}  // namespace

TEST_CASE("engine: first use connects, then attempts; success is done with no error", "[unit][safety]") {
    harness h;
    auto e = h.op(write_spec());
    auto a = e.start(h.now);
    REQUIRE(a.type == action_type::connect);
    a = e.resume(up(7), h.now);
    REQUIRE(a.type == action_type::attempt);
    a = e.resume(ok_attempt(), h.now);
    CHECK(a.type == action_type::done);
    CHECK_FALSE(a.ec);
    CHECK(e.attempts() == 1);
    CHECK(h.state.open);
    CHECK(h.state.current.id == 7);
}

TEST_CASE("engine: an open session is probed; alive and hot -> attempt with zero round trips", "[unit][safety]") {
    harness h;
    h.state.open = true;
    h.state.health.on_connected(h.now, 28800s, 1);
    h.now += 1ms;  // past the probe bypass
    auto e = h.op(write_spec());
    auto a = e.start(h.now);
    REQUIRE(a.type == action_type::probe);
    a = e.resume(probed{socket_status::alive}, h.now);
    CHECK(a.type == action_type::attempt);
}

TEST_CASE("engine: a session that completed a round trip within probe_bypass is not polled again", "[unit][safety]") {
    harness h;
    h.state.open = true;
    h.state.health.on_connected(h.now, 28800s, 1);
    h.now += 10us;
    auto e = h.op(write_spec());
    CHECK(e.start(h.now).type == action_type::attempt);  // no probe: it was healthy 10 µs ago
    h.now += 100us;
    auto later = h.op(write_spec());
    CHECK(later.start(h.now).type == action_type::probe);
    // ready() (and so a pool's validation) the same way.
    h.state.health.on_used(h.now);
    operation_spec check;
    check.sends = false;
    auto ready = h.op(check);
    CHECK(ready.start(h.now).type == action_type::done);
}

TEST_CASE("engine: ready_at_once / ready_if_alive (no engine built) only where the engine itself would finish ok "
          "at once / right after a probe found the socket alive",
          "[unit][safety]") {
    // Random link states around every edge the before-use decision has: open or not, a lost
    // transaction, an open one, the bypass window, ping_after_idle, wait_timeout, the lifetime.
    std::mt19937_64 rng(20261201);
    const duration offsets[] = {0us, 10us, 49us, 50us, 51us, 2ms, 999ms, 1s, 2s, 23039s, 23041s, 1800s, 1900s};
    auto pick = [&] { return offsets[rng() % (sizeof offsets / sizeof offsets[0])]; };
    int at_once = 0, engine_ok_at_once = 0, after_probe_ok = 0;
    for (int i = 0; i < 20000; ++i) {
        default_policy p;
        if (rng() % 8 == 0) p.health.probe_bypass = 0us;
        harness h(p);
        const steady_time t0 = h.now;
        h.state.health.on_connected(t0, rng() % 2 ? 28800s : 0s, rng());  // wait_timeout 28800 s: recycle at 23040 s idle
        const steady_time used = t0 + pick();
        h.state.health.on_used(used);
        if (rng() % 2) h.state.health.on_seen_alive(used + pick());
        if (rng() % 6 == 0) h.state.health.on_closed();
        h.state.open = rng() % 6 != 0;
        h.state.transaction_lost = rng() % 6 == 0;
        h.state.in_transaction = rng() % 4 == 0;
        h.now = used + pick();
        const bool quick = operation_engine<default_policy>::ready_at_once(h.state, h.now);
        operation_spec check;
        check.sends = false;
        auto e = h.op(check);
        const next_action a = e.start(h.now);
        const bool ok_at_once = a.type == action_type::done && !a.ec;
        if (quick) {
            INFO("state #" << i);
            REQUIRE(ok_at_once);  // the shortcut never skips a ping, a probe, a reconnect or an error
        }
        at_once += quick;
        engine_ok_at_once += ok_at_once;
        // The twin (a pool's validation when the session was not seen just now): where it says
        // yes, the engine asks for a probe and nothing else, and finishes ok once the probe
        // finds the socket alive.
        const bool after_alive = operation_engine<default_policy>::ready_if_alive(h.state, h.now);
        if (after_alive && !ok_at_once) {
            INFO("state #" << i);
            REQUIRE(a.type == action_type::probe);
            const next_action b = e.resume(probed{socket_status::alive}, h.now);
            REQUIRE(b.type == action_type::done);
            REQUIRE(!b.ec);
            ++after_probe_ok;
        }
        if (quick) REQUIRE(after_alive);
    }
    // Not vacuous, and not much more conservative than the engine (which also uses a session
    // in a transaction that a recycle would end).
    CHECK(at_once > 1000);
    CHECK(at_once >= engine_ok_at_once * 8 / 10);
    CHECK(after_probe_ok > 1000);
}

TEST_CASE("engine: a poll that found the socket alive opens the bypass window; a skipped poll does not extend it",
          "[unit][safety]") {
    harness h;
    h.state.open = true;
    h.state.health.on_connected(h.now, 28800s, 1);
    h.now += 1ms;
    // A pool's validation: ready() polls...
    operation_spec check;
    check.sends = false;
    auto ready = h.op(check);
    REQUIRE(ready.start(h.now).type == action_type::probe);
    CHECK(ready.resume(probed{socket_status::alive}, h.now).type == action_type::done);
    // ...and the statement right after it does not poll the same socket again.
    h.now += 30us;
    auto first = h.op(write_spec());
    CHECK(first.start(h.now).type == action_type::attempt);
    // 30 + 30 µs after the one real poll: the bypass (50 µs) taken above did not renew the window.
    h.now += 30us;
    auto second = h.op(write_spec());
    CHECK(second.start(h.now).type == action_type::probe);
    // A poll is not a round trip: the server's idle clock keeps running (ping after idle).
    CHECK(h.state.health.idle(h.now) >= 1ms);
    // Only "alive" opens the window.
    h.now += 1ms;
    auto dead = h.op(write_spec());
    REQUIRE(dead.start(h.now).type == action_type::probe);
    CHECK(dead.resume(probed{socket_status::unknown}, h.now).type == action_type::attempt);
    h.now += 10us;
    auto after_unknown = h.op(write_spec());
    CHECK(after_unknown.start(h.now).type == action_type::probe);
}

TEST_CASE("engine: a reply that beat the deadline's cut opens no bypass window: the next use polls", "[unit][safety]") {
    harness h;
    h.state.open = true;
    h.state.health.on_connected(h.now, 28800s, 1);
    h.now += 1ms;
    auto e = h.op(write_spec());
    REQUIRE(e.start(h.now).type == action_type::probe);
    REQUIRE(e.resume(probed{socket_status::alive}, h.now).type == action_type::attempt);
    h.now += 1ms;  // a cut call lasted its deadline: the poll's own window is long over
    attempted cut = ok_attempt();
    cut.cut = true;  // the watchdog shut the socket down as the reply arrived
    CHECK(e.resume(cut, h.now).type == action_type::done);
    h.now += 10us;
    auto next = h.op(write_spec());
    CHECK(next.start(h.now).type == action_type::probe);  // not sent blind on a dead socket
    // The same success without a cut: the next use within the window skips the poll.
    auto e2 = h.op(write_spec());
    REQUIRE(e2.start(h.now).type == action_type::probe);
    REQUIRE(e2.resume(probed{socket_status::alive}, h.now).type == action_type::attempt);
    h.now += 60us;
    CHECK(e2.resume(ok_attempt(), h.now).type == action_type::done);
    h.now += 10us;
    CHECK(h.op(write_spec()).start(h.now).type == action_type::attempt);
}

TEST_CASE("engine: idle past the window -> ping; a failed ping -> connect; dead socket -> connect", "[unit][safety]") {
    harness h;
    h.state.open = true;
    h.state.health.on_connected(h.now, 28800s, 1);
    h.now += 2s;
    {
        auto e = h.op(write_spec());
        auto a = e.start(h.now);
        a = e.resume(probed{socket_status::alive}, h.now);
        REQUIRE(a.type == action_type::ping);
        pinged p;
        p.diag.code = 2006;
        a = e.resume(p, h.now);
        CHECK(a.type == action_type::connect);
        CHECK(e.cause() == reconnect_cause::ping_failed);
    }
    h.state.open = true;
    auto e = h.op(write_spec());
    auto a = e.start(h.now);
    a = e.resume(probed{socket_status::dead}, h.now);
    CHECK(a.type == action_type::connect);
    CHECK(e.cause() == reconnect_cause::found_dead);
}

TEST_CASE("engine: never recycles a session with an open transaction", "[unit][safety]") {
    default_policy p;
    p.health.max_lifetime = 1min;
    harness h(p);
    h.state.open = true;
    h.state.in_transaction = true;
    h.state.health.on_connected(h.now, 28800s, 1);
    h.now += 2min;  // past the lifetime, but a transaction is open: using it is the only safe choice
    auto e = h.op(write_spec());
    auto a = e.start(h.now);
    a = e.resume(probed{socket_status::alive}, h.now);
    CHECK(a.type == action_type::ping);  // idle past the ping window, not recycled
}

TEST_CASE("engine: not executed -> reconnect and re-send, even without a declaration", "[unit][safety]") {
    harness h;
    auto e = h.op(write_spec());
    auto a = e.start(h.now);
    a = e.resume(up(1), h.now);
    a = e.resume(gone_before_send(), h.now);
    if (a.type == action_type::wait) a = h.wait_out(e, a);
    REQUIRE(a.type == action_type::connect);
    CHECK_FALSE(h.state.open);
    a = e.resume(up(2), h.now);
    REQUIRE(a.type == action_type::attempt);
    a = e.resume(ok_attempt(), h.now);
    CHECK_FALSE(a.ec);
    CHECK(e.attempts() == 2);
}

TEST_CASE("engine: unknown outcome of a write -> outcome_unknown, nothing re-sent", "[unit][safety]") {
    harness h;
    auto e = h.op(write_spec());
    e.start(h.now);
    e.resume(up(1), h.now);
    auto a = e.resume(lost_in_flight(), h.now);
    REQUIRE(a.type == action_type::done);
    CHECK(a.ec == errc::outcome_unknown);
    CHECK(e.attempts() == 1);
    CHECK_FALSE(h.state.open);  // the broken session is closed
}

TEST_CASE("engine: unknown outcome, idempotent -> re-sent", "[unit][safety]") {
    harness h;
    auto e = h.op(idempotent_spec());
    e.start(h.now);
    e.resume(up(1), h.now);
    auto a = e.resume(lost_in_flight(), h.now);
    if (a.type == action_type::wait) a = h.wait_out(e, a);
    REQUIRE(a.type == action_type::connect);
    a = e.resume(up(2), h.now);
    REQUIRE(a.type == action_type::attempt);
}

TEST_CASE("engine: verification runs only after the old session is fenced", "[unit][safety]") {
    harness h;
    auto e = h.op(verify_spec());
    e.start(h.now);
    e.resume(up(5), h.now);
    auto a = e.resume(lost_in_flight(), h.now);
    if (a.type == action_type::wait) a = h.wait_out(e, a);
    REQUIRE(a.type == action_type::connect);
    a = e.resume(up(9), h.now);  // same server process, a newer id
    REQUIRE(a.type == action_type::fence);
    CHECK(a.target.id == 5);
    SECTION("alive: KILL, then gone -> verify -> not applied -> re-send") {
        a = e.resume(holds_its_lock(5), h.now);
        REQUIRE(a.type == action_type::kill);
        CHECK(a.target.id == 5);
        a = e.resume(kill_ok(), h.now);
        a = h.wait_out(e, a);
        REQUIRE(a.type == action_type::probe);
        a = e.resume(probed{socket_status::alive}, h.now);
        REQUIRE(a.type == action_type::fence);
        a = e.resume(ended(), h.now);
        REQUIRE(a.type == action_type::verify);
        verified v;
        v.check = write_check::not_applied;
        a = e.resume(v, h.now);
        REQUIRE(a.type == action_type::attempt);
        CHECK(e.attempts() == 2);
    }
    SECTION("applied -> done, verified, not re-sent") {
        a = e.resume(ended(), h.now);
        verified v;
        v.check = write_check::applied;
        a = e.resume(v, h.now);
        CHECK(a.type == action_type::done);
        CHECK_FALSE(a.ec);
        CHECK(e.verified_applied());
        CHECK(e.attempts() == 1);
    }
    SECTION("the check cannot tell -> outcome_unknown") {
        e.resume(ended(), h.now);
        verified v;
        a = e.resume(v, h.now);
        CHECK(a.ec == errc::outcome_unknown);
    }
    SECTION("the check itself fails -> verification_failed") {
        e.resume(ended(), h.now);
        verified v;
        v.failed = true;
        a = e.resume(v, h.now);
        CHECK(a.ec == errc::verification_failed);
    }
    SECTION("the old id carried by a session without the old lock: another session (a restart); no KILL") {
        a = e.resume(id_reused(true), h.now);
        CHECK(a.type == action_type::verify);
    }
    SECTION("another session holds the old lock: impossible for ours -> outcome_unknown, no KILL") {
        a = e.resume(holds_its_lock(77), h.now);
        CHECK(a.ec == errc::outcome_unknown);
    }
    SECTION("KILL refused -> outcome_unknown") {
        a = e.resume(holds_its_lock(5), h.now);
        killed k;
        k.diag.code = 1095;
        a = e.resume(k, h.now);
        CHECK(a.ec == errc::outcome_unknown);
    }
    SECTION("the fencing session breaks -> connect again, fence again") {
        fenced f;
        f.connection_lost = true;
        a = e.resume(f, h.now);
        a = h.wait_out(e, a);
        REQUIRE(a.type == action_type::connect);
        a = e.resume(up(11), h.now);
        CHECK(a.type == action_type::fence);
        CHECK(a.target.id == 5);
    }
}

TEST_CASE("engine: without a certain lock, a reused id is judged by the server's identity", "[unit][safety]") {
    harness h;
    auto e = h.op(verify_spec());
    e.start(h.now);
    connected c = up(5);
    e.resume(c, h.now);
    attempted black = lost_in_flight();
    black.lock_uncertain = true;  // e.g. a run() callable ran: it may have released the lock
    auto a = e.resume(black, h.now);
    if (a.type == action_type::wait) a = h.wait_out(e, a);
    a = e.resume(up(9), h.now);  // same process as far as identity goes (same start, higher id)
    REQUIRE(a.type == action_type::fence);
    SECTION("ours, alive without its lock: lifeline cannot prove it is its own -> outcome_unknown, no KILL") {
        a = e.resume(id_reused(true), h.now);
        CHECK(a.ec == errc::outcome_unknown);
    }
    SECTION("gone: fenced") {
        a = e.resume(ended(), h.now);
        CHECK(a.type == action_type::verify);
    }
}

TEST_CASE("engine: a server without user locks falls back to the id and the account", "[unit][safety]") {
    harness h;
    auto e = h.op(verify_spec());
    e.start(h.now);
    connected c = up(5);
    c.session.lock_hi = c.session.lock_lo = 0;
    c.session.lock_certain = false;
    e.resume(c, h.now);
    auto a = e.resume(lost_in_flight(), h.now);
    if (a.type == action_type::wait) a = h.wait_out(e, a);
    a = e.resume(up(9), h.now);
    REQUIRE(a.type == action_type::fence);
    SECTION("ours: KILL") { CHECK(e.resume(id_reused(true), h.now).type == action_type::kill); }
    SECTION("another account's: never KILLed -> outcome_unknown") {
        CHECK(e.resume(id_reused(false), h.now).ec == errc::outcome_unknown);
    }
}

TEST_CASE("engine: the killed session never leaves by the deadline -> outcome_unknown", "[unit][safety]") {
    harness h;
    auto e = h.op(verify_spec(), 1s);
    e.start(h.now);
    e.resume(up(5), h.now);
    auto a = e.resume(lost_in_flight(), h.now);
    if (a.type == action_type::wait) a = h.wait_out(e, a);
    a = e.resume(up(9), h.now);
    int kills = 0;
    while (a.type != action_type::done) {
        if (a.type == action_type::fence) a = e.resume(holds_its_lock(5), h.now);
        else if (a.type == action_type::kill) a = e.resume(kill_ok(), h.now), ++kills;
        else if (a.type == action_type::probe) a = e.resume(probed{socket_status::alive}, h.now);
        else a = h.wait_out(e, a);
    }
    CHECK(a.ec == errc::outcome_unknown);
    CHECK(kills > 1);
}

TEST_CASE("engine: fencing judges the server's identity before any KILL", "[unit][safety]") {
    SECTION("restarted (other start instant): the old session died with it; no KILL, verify at once") {
        harness h;
        auto e = h.op(verify_spec());
        e.start(h.now);
        e.resume(up(5, 1000), h.now);
        auto a = e.resume(lost_in_flight(), h.now);
        if (a.type == action_type::wait) a = h.wait_out(e, a);
        a = e.resume(up(2, 2000), h.now);
        CHECK(a.type == action_type::verify);
    }
    SECTION("restarted within the same second (the id did not grow): no KILL") {
        harness h;
        auto e = h.op(verify_spec());
        e.start(h.now);
        e.resume(up(5, 1000), h.now);
        auto a = e.resume(lost_in_flight(), h.now);
        if (a.type == action_type::wait) a = h.wait_out(e, a);
        a = e.resume(up(3, 1000), h.now);
        CHECK(a.type == action_type::verify);
    }
    SECTION("a different server (failover, a proxy's other backend): outcome_unknown, nothing killed") {
        harness h;
        auto e = h.op(verify_spec());
        e.start(h.now);
        e.resume(up(5, 1000, 1), h.now);
        auto a = e.resume(lost_in_flight(), h.now);
        if (a.type == action_type::wait) a = h.wait_out(e, a);
        a = e.resume(up(9, 1000, 2), h.now);
        CHECK(a.type == action_type::done);
        CHECK(a.ec == errc::outcome_unknown);
    }
    SECTION("identity unknown: outcome_unknown") {
        harness h;
        auto e = h.op(verify_spec());
        e.start(h.now);
        connected c = up(5);
        c.session.server.known = false;
        e.resume(c, h.now);
        auto a = e.resume(lost_in_flight(), h.now);
        if (a.type == action_type::wait) a = h.wait_out(e, a);
        a = e.resume(up(9), h.now);
        CHECK(a.ec == errc::outcome_unknown);
    }
}

TEST_CASE("engine: run() callables are black boxes", "[unit][safety]") {
    operation_spec s;
    s.black_box = true;
    SECTION("nothing reached the server -> re-run, even not idempotent") {
        harness h;
        auto e = h.op(s);
        e.start(h.now);
        e.resume(up(1), h.now);
        attempted f = gone_before_send();
        f.reached = reach::none;
        auto a = e.resume(f, h.now);
        if (a.type == action_type::wait) a = h.wait_out(e, a);
        CHECK(a.type == action_type::connect);
    }
    SECTION("bytes reached it and its last error says 'rolled back' (1205) -> outcome_unknown, not re-run") {
        harness h;
        auto e = h.op(s);
        e.start(h.now);
        e.resume(up(1), h.now);
        attempted f = failed(1205, phase::read_result);
        f.reached = reach::some;
        auto a = e.resume(f, h.now);
        CHECK(a.type == action_type::done);
        CHECK(a.ec == errc::outcome_unknown);
        CHECK(e.attempts() == 1);
    }
    SECTION("its last error says 'not executed' (2006) but it sent earlier statements -> outcome_unknown") {
        harness h;
        auto e = h.op(s);
        e.start(h.now);
        e.resume(up(1), h.now);
        attempted f = gone_before_send();
        f.reached = reach::some;
        CHECK(e.resume(f, h.now).ec == errc::outcome_unknown);
    }
    SECTION("no byte counters -> the worst case") {
        harness h;
        auto e = h.op(s);
        e.start(h.now);
        e.resume(up(1), h.now);
        attempted f = gone_before_send();
        f.reached = reach::unknown;
        CHECK(e.resume(f, h.now).ec == errc::outcome_unknown);
    }
    SECTION("a failure for good (1062) stays the server's error") {
        harness h;
        auto e = h.op(s);
        e.start(h.now);
        e.resume(up(1), h.now);
        attempted f = failed(1062, phase::read_result, "23000");
        f.reached = reach::some;
        auto a = e.resume(f, h.now);
        CHECK(a.ec == make_driver_error_code(1062));
    }
    SECTION("the callable opened its own transaction and it broke: not transaction_lost (it was its own)") {
        harness h;
        auto e = h.op(s);
        e.start(h.now);
        e.resume(up(1), h.now);
        attempted f = lost_in_flight();
        f.reached = reach::some;
        f.in_txn_before = false;
        f.open_after = false;
        auto a = e.resume(f, h.now);
        CHECK(a.ec == errc::outcome_unknown);
        CHECK_FALSE(h.state.transaction_lost);
    }
}

TEST_CASE("engine: inside a transaction a statement is never retried; the loss is sticky", "[unit][safety]") {
    harness h;
    auto e = h.op(idempotent_spec());
    e.start(h.now);
    e.resume(up(1), h.now);
    attempted f = lost_in_flight();
    f.in_txn_before = true;
    auto a = e.resume(f, h.now);
    CHECK(a.ec == errc::transaction_lost);
    CHECK(h.state.transaction_lost);
    auto next = h.op(idempotent_spec());
    CHECK(next.start(h.now).ec == errc::transaction_lost);  // nothing runs in autocommit silently
    operation_spec rollback = idempotent_spec();
    rollback.acknowledges_loss = true;
    auto ack = h.op(rollback);
    CHECK(ack.start(h.now).type == action_type::connect);
}

TEST_CASE("engine: a dead session found before use with a transaction open -> transaction_lost", "[unit][safety]") {
    harness h;
    h.state.open = true;
    h.state.in_transaction = true;
    h.state.health.on_connected(h.now, 28800s, 1);
    auto e = h.op(idempotent_spec());
    auto a = e.start(h.now);
    a = e.resume(probed{socket_status::dead}, h.now);
    CHECK(a.ec == errc::transaction_lost);
    CHECK(h.state.transaction_lost);
    CHECK_FALSE(h.state.open);
}

TEST_CASE("engine: stop reasons", "[unit][safety]") {
    SECTION("attempts: the driver's own error") {
        default_policy p;
        p.retry.max_attempts = 2;
        harness h(p);
        auto e = h.op(idempotent_spec());
        auto a = e.start(h.now);
        int sends = 0;
        while (a.type != action_type::done) {
            if (a.type == action_type::connect) a = e.resume(up(static_cast<std::uint64_t>(10 + sends)), h.now);
            else if (a.type == action_type::attempt) ++sends, a = e.resume(gone_before_send(), h.now);
            else if (a.type == action_type::wait) a = h.wait_out(e, a);
            else a = e.resume(probed{socket_status::alive}, h.now);
        }
        CHECK(sends == 2);
        CHECK(a.ec == make_driver_error_code(2006));
    }
    SECTION("deadline: connects are bounded by it, not by an attempt count") {
        default_policy p;
        p.breaker.failure_threshold = 1000000;
        harness h(p);
        auto e = h.op(idempotent_spec(), 3s);
        const auto t0 = h.now;
        auto a = e.start(h.now);
        int connects = 0;
        while (a.type != action_type::done) {
            if (a.type == action_type::connect) ++connects, a = e.resume(refused(), h.now);
            else a = h.wait_out(e, a);
        }
        CHECK(a.ec == errc::deadline_exceeded);
        CHECK(h.now - t0 <= 3s);
        CHECK(connects > static_cast<int>(p.retry.max_attempts));
    }
    SECTION("budget") {
        harness h;
        retry_budget_policy tight;
        tight.min_retries_per_second = 0;
        tight.ratio = 0;
        retry_budget none(tight);
        retry_gate g(4, deadline::after(10s, h.now), &none, h.bo);
        operation_engine<default_policy> e(h.policy, h.state, h.breaker, h.monitor, g, &none, idempotent_spec());
        e.start(h.now);
        e.resume(up(1), h.now);
        auto a = e.resume(gone_before_send(), h.now);
        CHECK(a.ec == errc::retry_budget_exhausted);
    }
    SECTION("circuit open") {
        default_policy p;
        p.breaker.failure_threshold = 1;
        harness h(p);
        h.breaker.on_failure(h.now);
        auto e = h.op(idempotent_spec());
        CHECK(e.start(h.now).ec == errc::circuit_open);
    }
    SECTION("a connect error that a retry cannot fix (1045) is reported at once") {
        harness h;
        auto e = h.op(idempotent_spec());
        e.start(h.now);
        auto a = e.resume(refused(1045), h.now);
        CHECK(a.ec == make_driver_error_code(1045));
    }
    SECTION("fail_fast: one connect attempt") {
        harness h;
        operation_spec s = idempotent_spec();
        s.fail_fast = true;
        auto e = h.op(s);
        e.start(h.now);
        auto a = e.resume(refused(), h.now);
        CHECK(a.ec == make_driver_error_code(2002));
    }
    SECTION("a driver that enables OPT_RECONNECT is refused") {
        harness h;
        auto e = h.op(idempotent_spec());
        e.start(h.now);
        connected c = up(1);
        c.reconnect_option = true;
        CHECK(e.resume(c, h.now).ec == errc::invalid_option);
        CHECK_FALSE(h.state.open);
    }
    SECTION("statement too large: refused before sending, even when learnt at this call's connect") {
        harness h;
        operation_spec s = write_spec();
        s.statement_size = 2u << 20;
        auto e = h.op(s);
        e.start(h.now);
        auto a = e.resume(up(1), h.now);
        CHECK(a.ec == errc::statement_too_large);
        CHECK(e.attempts() == 0);
    }
    SECTION("unregistered session state would be lost by a reconnect -> session_state_lost, once") {
        harness h;
        h.state.open = true;
        h.state.untracked_state = true;
        h.state.health.on_connected(h.now, 28800s, 1);
        auto e = h.op(idempotent_spec());
        e.start(h.now);
        CHECK(e.resume(probed{socket_status::dead}, h.now).ec == errc::session_state_lost);
        auto again = h.op(idempotent_spec());
        CHECK(again.start(h.now).type == action_type::connect);
    }
    SECTION("a read-only server: read_only_server, not retried") {
        harness h;
        auto e = h.op(write_spec());
        e.start(h.now);
        e.resume(up(1), h.now);
        CHECK(e.resume(failed(1290, phase::read_result, "HY000"), h.now).ec == errc::read_only_server);
    }
    SECTION("cut by the deadline: deadline_exceeded, or outcome_unknown for a write") {
        harness h;
        auto e = h.op(idempotent_spec(), 1s);
        e.start(h.now);
        e.resume(up(1), h.now);
        attempted cut = lost_in_flight();
        cut.cut = true;
        h.now += 1s;
        CHECK(e.resume(cut, h.now).ec == errc::deadline_exceeded);
        auto w = h.op(write_spec(), 1s);
        w.start(h.now);
        w.resume(up(2), h.now);
        CHECK(w.resume(cut, h.now).ec == errc::outcome_unknown);
    }
    SECTION("a refused prepared statement (wrong parameter count) is a usage error, session kept") {
        harness h;
        auto e = h.op(write_spec());
        e.start(h.now);
        e.resume(up(1), h.now);
        attempted u;
        u.usage_error = true;
        CHECK(e.resume(u, h.now).ec == errc::invalid_option);
        CHECK(h.state.open);
    }
}

TEST_CASE("engine: once something may have run, every stop says outcome_unknown", "[unit][safety]") {
    default_policy p;
    p.breaker.failure_threshold = 1000000;
    harness h(p);
    auto e = h.op(verify_spec(), 2s);
    e.start(h.now);
    e.resume(up(1), h.now);
    auto a = e.resume(lost_in_flight(), h.now);
    while (a.type != action_type::done) {
        if (a.type == action_type::connect) a = e.resume(refused(), h.now);  // the server stays down
        else a = h.wait_out(e, a);
    }
    CHECK(a.ec == errc::outcome_unknown);  // not deadline_exceeded: the caller must know it may have run
    INFO(e.diag().client_message);
    CHECK(e.diag().client_message.find("deadline") != std::string::npos);
}

// --- transactions ---------------------------------------------------------------------------------

namespace {
transaction_options resolved() {
    transaction_options o;
    o.replayable = true;
    o.resolve_commit = true;
    return o;
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
    c.open_after = true;
    return c;
}
statement_done stmt_ok(bool in_txn_after = true) {
    statement_done s;
    s.ok = true;
    s.in_txn_after = in_txn_after;
    return s;
}
statement_done stmt_failed(unsigned code, const char* state = "HY000") {
    statement_done s;
    s.diag.code = code;
    s.diag.sqlstate = state;
    s.diag.where = phase::read_result;
    return s;
}
}  // namespace

TEST_CASE("transaction engine: begin, body, commit", "[unit][safety]") {
    harness h;
    auto e = h.tx(resolved());
    auto a = e.start(h.now);
    a = e.resume(up(1), h.now);
    REQUIRE(a.type == action_type::begin);
    a = e.resume(began_ok(), h.now);
    REQUIRE(a.type == action_type::body);
    CHECK(e.statement_allowed());
    CHECK(e.statement_finished(stmt_ok()));
    a = e.resume(body_done{}, h.now);
    REQUIRE(a.type == action_type::commit);
    CHECK(a.bound.remaining(h.now) <= 5s);  // half of the time left: the rest is for resolution
    committed c;
    c.ok = true;
    a = e.resume(c, h.now);
    CHECK(a.type == action_type::done);
    CHECK_FALSE(a.ec);
}

TEST_CASE("transaction engine: a swallowed failure poisons the transaction: no COMMIT", "[unit][safety]") {
    harness h;
    transaction_options o;
    o.replayable = false;
    auto e = h.tx(o);
    e.start(h.now);
    e.resume(up(1), h.now);
    e.resume(began_ok(), h.now);
    CHECK(e.statement_finished(stmt_ok()));
    CHECK_FALSE(e.statement_finished(stmt_failed(1213, "40001")));  // deadlock: the body is told to stop
    CHECK_FALSE(e.statement_allowed());  // the function swallowed it; later statements are refused unsent
    auto a = e.resume(body_done{}, h.now);  // ... and it returned normally
    REQUIRE(a.type == action_type::rollback);  // never commit
    a = e.resume(rolled_back{true}, h.now);
    CHECK(a.type == action_type::done);
    CHECK(a.ec == make_driver_error_code(1213));
}

TEST_CASE("transaction engine: a poisoned replayable transaction is replayed whole", "[unit][safety]") {
    harness h;
    auto e = h.tx(resolved());
    e.start(h.now);
    e.resume(up(1), h.now);
    e.resume(began_ok(), h.now);
    e.statement_finished(stmt_failed(1213, "40001"));
    auto a = e.resume(body_done{}, h.now);
    a = e.resume(rolled_back{true}, h.now);
    a = h.wait_out(e, a);
    REQUIRE(a.type == action_type::probe);
    a = e.resume(probed{socket_status::alive}, h.now);
    CHECK(a.type == action_type::begin);
    CHECK(e.runs() == 2);
    CHECK(e.statement_allowed());
}

TEST_CASE("transaction engine: a statement that ends the transaction -> implicit_commit, no COMMIT, no replay",
          "[unit][safety]") {
    harness h;
    auto e = h.tx(resolved());
    e.start(h.now);
    e.resume(up(1), h.now);
    e.resume(began_ok(), h.now);
    CHECK(e.statement_finished(stmt_ok()));
    CHECK_FALSE(e.statement_finished(stmt_ok(false)));  // e.g. CREATE TABLE
    CHECK_FALSE(e.statement_allowed());
    auto a = e.resume(body_done{}, h.now);
    CHECK(a.type == action_type::done);
    CHECK(a.ec == errc::implicit_commit);
    CHECK(e.runs() == 1);
}

TEST_CASE("transaction engine: the function's own exception rolls back; never replayed", "[unit][safety]") {
    harness h;
    auto e = h.tx(resolved());
    e.start(h.now);
    e.resume(up(1), h.now);
    e.resume(began_ok(), h.now);
    auto a = e.resume(body_done{true}, h.now);
    REQUIRE(a.type == action_type::rollback);
    a = e.resume(rolled_back{true}, h.now);
    CHECK(a.type == action_type::done);
    CHECK_FALSE(a.ec);  // the I/O layer rethrows the function's exception
    CHECK(e.runs() == 1);
}

TEST_CASE("transaction engine: the lost COMMIT is resolved after fencing", "[unit][safety]") {
    harness h;
    auto e = h.tx(resolved());
    e.start(h.now);
    e.resume(up(5), h.now);
    e.resume(began_ok(), h.now);
    e.resume(body_done{}, h.now);
    auto a = e.resume(commit_lost(), h.now);
    if (a.type == action_type::wait) a = h.wait_out(e, a);
    REQUIRE(a.type == action_type::connect);
    CHECK_FALSE(h.state.open);  // the old session is never reused, not even to roll back
    a = e.resume(up(8), h.now);
    REQUIRE(a.type == action_type::fence);
    CHECK(a.target.id == 5);
    a = e.resume(ended(), h.now);
    REQUIRE(a.type == action_type::lookup);
    SECTION("found: committed, not replayed") {
        looked_up l;
        l.ok = l.found = true;
        a = e.resume(l, h.now);
        CHECK(a.type == action_type::done);
        CHECK_FALSE(a.ec);
        CHECK(e.commit_resolved());
        CHECK(e.runs() == 1);
    }
    SECTION("absent: not committed, replayed") {
        looked_up l;
        l.ok = true;
        a = e.resume(l, h.now);
        a = h.wait_out(e, a);
        a = e.resume(probed{socket_status::alive}, h.now);
        CHECK(a.type == action_type::begin);
        CHECK(e.commit_resolved());
    }
}

TEST_CASE("transaction engine: a lost COMMIT on a different server -> commit_unknown", "[unit][safety]") {
    harness h;
    auto e = h.tx(resolved());
    e.start(h.now);
    e.resume(up(5, 1000, 1), h.now);
    e.resume(began_ok(), h.now);
    e.resume(body_done{}, h.now);
    auto a = e.resume(commit_lost(), h.now);
    if (a.type == action_type::wait) a = h.wait_out(e, a);
    a = e.resume(up(8, 1000, 2), h.now);
    CHECK(a.ec == errc::commit_unknown);
}

TEST_CASE("transaction engine: a lost COMMIT after a restart is looked up without any KILL", "[unit][safety]") {
    harness h;
    auto e = h.tx(resolved());
    e.start(h.now);
    e.resume(up(5, 1000), h.now);
    e.resume(began_ok(), h.now);
    e.resume(body_done{}, h.now);
    auto a = e.resume(commit_lost(), h.now);
    if (a.type == action_type::wait) a = h.wait_out(e, a);
    a = e.resume(up(5, 1500), h.now);  // restarted: the same id 5 is another session now
    CHECK(a.type == action_type::lookup);
}

TEST_CASE("transaction engine: resolution that cannot finish -> commit_unknown", "[unit][safety]") {
    default_policy p;
    p.breaker.failure_threshold = 1000000;
    harness h(p);
    auto e = h.tx(resolved(), 2s);
    e.start(h.now);
    e.resume(up(5), h.now);
    e.resume(began_ok(), h.now);
    e.resume(body_done{}, h.now);
    auto a = e.resume(commit_lost(), h.now);
    while (a.type != action_type::done) {
        if (a.type == action_type::connect) a = e.resume(refused(), h.now);
        else a = h.wait_out(e, a);
    }
    CHECK(a.ec == errc::commit_unknown);
}

TEST_CASE("transaction engine: without resolution a lost COMMIT is commit_unknown at once", "[unit][safety]") {
    harness h;
    transaction_options o;
    o.replayable = true;
    auto e = h.tx(o);
    e.start(h.now);
    e.resume(up(5), h.now);
    e.resume(began_ok(), h.now);
    e.resume(body_done{}, h.now);
    auto a = e.resume(commit_lost(), h.now);
    CHECK(a.ec == errc::commit_unknown);
    CHECK(e.diag().where == phase::commit);
}

TEST_CASE("transaction engine: the connection lost before COMMIT -> replayed (not declared: transaction_lost)",
          "[unit][safety]") {
    for (bool replayable : {true, false}) {
        harness h;
        transaction_options o;
        o.replayable = replayable;
        auto e = h.tx(o);
        e.start(h.now);
        e.resume(up(5), h.now);
        e.resume(began_ok(), h.now);
        statement_done lost = stmt_failed(2013);
        lost.open_after = true;
        e.statement_finished(lost);
        auto a = e.resume(body_done{}, h.now);
        if (replayable) {
            REQUIRE(a.type == action_type::wait);
            a = h.wait_out(e, a);
            CHECK(a.type == action_type::connect);
        } else {
            CHECK(a.ec == errc::transaction_lost);
        }
    }
}

// --- the invariant, as a property over random event sequences ---------------------------------------

TEST_CASE("engine property: an unknown write is never re-sent without a fenced verification", "[unit][safety]") {
    std::mt19937_64 rng(20261201);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
    int resends_after_unknown = 0, sequences = 0;
    for (int run = 0; run < 4000; ++run) {
        default_policy p;
        p.breaker.failure_threshold = 1000000;
        p.retry.max_attempts = 1 + static_cast<unsigned>(pick(5));
        harness h(p);
        operation_spec s;
        s.can_verify = pick(2) == 0;
        s.black_box = pick(3) == 0;
        auto e = h.op(s, std::chrono::seconds(1 + pick(5)));
        bool unknown = false;     // a send may have taken effect and has not been proven otherwise
        bool fenced_ok = false;   // since then: the old session was shown gone (or restarted)
        bool verified_no = false; // since then: the check said not applied
        bool old_gone = false;    // the old session was killed (the next inspection finds it gone)
        std::uint64_t next_id = 10;
        std::int64_t start = 1000;
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
                const int r = pick(6);
                if (r == 0) a = e.resume(refused(), h.now);
                else {
                    if (r == 1) start += 10, next_id = 1;  // the server restarted
                    const auto c = up(next_id++, start);
                    if (unknown && r == 1) old_gone = fenced_ok = true;  // a restart ends the old session
                    a = e.resume(c, h.now);
                }
                break;
            }
            case action_type::fence: {
                // What the server shows is consistent with the model: the old session holds its lock
                // until it is killed (then it is gone), unless the server restarted.
                fenced f;
                const int r = pick(6);
                if (r == 0) f.connection_lost = true;
                else if (r == 1) f.diag.code = 1142;  // refused
                else if (fenced_ok || old_gone) f = ended();
                else f = holds_its_lock(a.target.id);
                if (f.ok && f.lock_holder == 0) fenced_ok = true;
                a = e.resume(f, h.now);
                break;
            }
            case action_type::kill: {
                killed k;
                k.ok = pick(4) != 0;
                if (k.ok) old_gone = true;
                a = e.resume(k, h.now);
                break;
            }
            case action_type::verify: {
                CHECK(fenced_ok);  // verification only after fencing
                verified v;
                const int r = pick(4);
                v.check = r == 0 ? write_check::applied : r == 1 ? write_check::not_applied : write_check::unknown;
                v.failed = r == 3;
                if (v.check == write_check::not_applied && !v.failed) verified_no = true;
                a = e.resume(v, h.now);
                break;
            }
            case action_type::attempt: {
                if (unknown && !(fenced_ok && verified_no)) ++resends_after_unknown;
                unknown = fenced_ok = verified_no = old_gone = false;
                static const unsigned codes[] = {0, 2013, 2006, 1205, 1213, 1317, 1062, 2013};
                const unsigned code = codes[pick(8)];
                attempted at;
                if (code == 0) at = ok_attempt();
                else {
                    at = failed(code, code == 2006 ? phase::send : phase::read_result);
                    at.cut = pick(6) == 0;
                    at.reached = static_cast<reach>(pick(3));
                    const classification c = classify(failure{code, at.diag.sqlstate, at.diag.where, false});
                    // Could this attempt have taken effect, from what a black box or the server says?
                    if (s.black_box) unknown = at.reached != reach::none && c.statement != outcome::failed;
                    else unknown = c.statement == outcome::unknown;
                }
                a = e.resume(at, h.now);
                break;
            }
            case action_type::wait:
            case action_type::await_endpoint: a = h.wait_out(e, a); break;
            default: FAIL("unexpected action " << to_string(a.type)); break;
            }
        }
        ++sequences;
    }
    CHECK(sequences == 4000);
    CHECK(resends_after_unknown == 0);
}

TEST_CASE("engine: while the server is down one caller probes; the others wait for its verdict", "[unit][safety]") {
    harness h;
    auto a1 = h.op(idempotent_spec());
    link_state other(h.policy.health);  // a second connection to the same endpoint
    backoff other_backoff(h.policy.backoff, 7);
    operation_engine<default_policy> a2(h.policy, other, h.breaker, h.monitor,
                                        retry_gate(4, deadline::after(10s, h.now), &h.budget, other_backoff),
                                        &h.budget, idempotent_spec());
    auto x = a1.start(h.now);
    REQUIRE(x.type == action_type::connect);
    x = a1.resume(refused(2003), h.now);  // the endpoint goes down
    CHECK(h.monitor.down());
    REQUIRE(x.type == action_type::await_endpoint);  // a1 waits for the next probe time
    auto y = a2.start(h.now);
    REQUIRE(y.type == action_type::await_endpoint);  // so does a2: nobody may connect before it
    h.now += x.delay;
    x = a1.resume(waited{}, h.now);
    REQUIRE(x.type == action_type::connect);  // a1 holds the probe token
    y = a2.resume(waited{}, h.now);
    REQUIRE(y.type == action_type::await_endpoint);  // a2 may not add its own connect
    x = a1.resume(up(3), h.now);  // the probe succeeds: the endpoint is up for everyone
    CHECK_FALSE(h.monitor.down());
    y = a2.resume(waited{}, h.now);
    CHECK(y.type == action_type::connect);
    CHECK(h.monitor.stats().probes == 1);
}

TEST_CASE("engine: a refusal by a server that is up does not mark it down; access denied is not retried",
          "[unit][safety]") {
    harness h;
    auto e = h.op(idempotent_spec());
    e.start(h.now);
    auto a = e.resume(refused(1045), h.now);
    CHECK(a.ec == make_driver_error_code(1045));
    CHECK_FALSE(h.monitor.down());
}
