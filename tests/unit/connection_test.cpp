// The retry loop and the health-check state machine, driven by a scripted fake driver and an
// injected clock: no server, deterministic.
#include "fake_fixture.hpp"

#include <lifeline/connection.hpp>

#include <catch2/catch.hpp>

#include <memory>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;

namespace {

using test_policy = fake_policy;
using fixture = basic_fake_fixture<>;
using fake_connection = fixture::connection_type;
connect_options opts() { return fake_options(); }

fault lost_in_read(bool applied) {
    fault f;
    f.code = 2013;
    f.where = phase::read_result;
    f.applied = applied;
    return f;
}

}  // namespace

TEST_CASE("a statement that never ran is re-sent, even when not idempotent", "[unit][retry]") {
    fixture f;
    f.db->connect();
    fault gone;
    gone.code = 2006;
    gone.where = phase::send;
    f.srv.execute_faults.push_back(gone);
    auto r = f.db->execute("INSERT INTO t VALUES (1)");
    CHECK(r.attempts == 2);
    CHECK(f.srv.applied["INSERT INTO t VALUES (1)"] == 1);
    CHECK(f.srv.connects == 2);  // reconnected once
}

TEST_CASE("a non-idempotent write with an unknown outcome is never re-sent", "[unit][retry]") {
    fixture f;
    f.db->connect();
    f.srv.execute_faults.push_back(lost_in_read(true));
    std::error_code ec;
    diagnostics d;
    f.db->execute("INSERT INTO t VALUES (1)", {}, {}, ec, d);
    CHECK(ec == errc::outcome_unknown);
    CHECK(d.code == 2013);
    CHECK(f.srv.applied["INSERT INTO t VALUES (1)"] == 1);  // exactly what the caller was told: maybe
    CHECK_THROWS_AS(([&] {
                        f.srv.execute_faults.push_back(lost_in_read(false));
                        f.db->execute("INSERT INTO t VALUES (2)");
                    }()),
                    lifeline::error);
    CHECK(f.srv.applied.count("INSERT INTO t VALUES (2)") == 0);
}

TEST_CASE("an idempotent statement with an unknown outcome is retried", "[unit][retry]") {
    fixture f;
    f.srv.execute_faults.push_back(lost_in_read(false));
    auto r = f.db->query("SELECT v FROM t", lifeline::idempotent);
    CHECK(r.attempts == 2);
    CHECK(r.scalar() == std::optional<std::string>("1"));
}

TEST_CASE("the caller's check decides an unknown write: applied -> done, not applied -> re-sent", "[unit][retry]") {
    fixture f;
    int checks = 0;
    SECTION("applied") {
        f.srv.execute_faults.push_back(lost_in_read(true));
        auto r = f.db->execute("INSERT INTO t VALUES (1)", verify_with([&](fake_session* s) {
                                   ++checks;
                                   CHECK(s->open);
                                   return f.srv.applied["INSERT INTO t VALUES (1)"] ? write_check::applied
                                                                                    : write_check::not_applied;
                               }));
        CHECK(r.verified);
        CHECK(checks == 1);
        CHECK(f.srv.applied["INSERT INTO t VALUES (1)"] == 1);
    }
    SECTION("not applied") {
        f.srv.execute_faults.push_back(lost_in_read(false));
        auto r = f.db->execute("INSERT INTO t VALUES (1)", verify_with([&](fake_session*) {
                                   ++checks;
                                   return f.srv.applied["INSERT INTO t VALUES (1)"] ? write_check::applied
                                                                                    : write_check::not_applied;
                               }));
        CHECK_FALSE(r.verified);
        CHECK(checks == 1);
        CHECK(f.srv.applied["INSERT INTO t VALUES (1)"] == 1);
    }
    SECTION("inconclusive") {
        f.srv.execute_faults.push_back(lost_in_read(true));
        std::error_code ec;
        diagnostics d;
        f.db->execute("INSERT INTO t VALUES (1)", verify_with([&](fake_session*) { return write_check::unknown; }), {}, ec, d);
        CHECK(ec == errc::outcome_unknown);
        CHECK(f.srv.applied["INSERT INTO t VALUES (1)"] == 1);
    }
}

TEST_CASE("inside an open transaction a single statement is never retried", "[unit][retry]") {
    fixture f;
    f.db->execute("BEGIN");
    f.db->execute("INSERT INTO t VALUES (1)");
    f.srv.execute_faults.push_back(lost_in_read(false));
    std::error_code ec;
    diagnostics d;
    f.db->query("SELECT v FROM t", lifeline::idempotent, {}, ec, d);
    CHECK(ec == errc::transaction_lost);
    CHECK(f.srv.applied["SELECT v FROM t"] == 0);
    // The next statement must not silently run in autocommit on a new connection.
    f.db->execute("INSERT INTO t VALUES (2)", {}, {}, ec, d);
    CHECK(ec == errc::transaction_lost);
    CHECK(f.srv.applied.count("INSERT INTO t VALUES (2)") == 0);
    // Until the caller starts over.
    f.db->execute("BEGIN");
    f.db->execute("INSERT INTO t VALUES (2)");
    CHECK(f.srv.applied["INSERT INTO t VALUES (2)"] == 1);
}

TEST_CASE("KILL QUERY / statement timeout: no retry, and the connection is kept", "[unit][retry]") {
    for (unsigned code : {1317u, 1969u, 3024u}) {
        fixture f;
        f.db->connect();
        fault k;
        k.code = code;
        k.sqlstate = "70100";
        k.where = phase::fetch;
        k.breaks_connection = false;
        f.srv.execute_faults.push_back(k);
        std::error_code ec;
        diagnostics d;
        f.db->query("SELECT SLEEP(5)", lifeline::idempotent, {}, ec, d);
        CHECK(ec == make_driver_error_code(code));
        CHECK(f.srv.connects == 1);
        CHECK(f.db->is_open());
    }
}

TEST_CASE("a statement too large is reported as such, not retried", "[unit][retry]") {
    fixture f;
    fault big;
    big.code = 1153;
    big.sqlstate = "08S01";
    big.where = phase::read_result;
    f.srv.execute_faults.push_back(big);
    std::error_code ec;
    diagnostics d;
    f.db->execute("INSERT INTO t VALUES ('...')", lifeline::idempotent, {}, ec, d);
    CHECK(ec == errc::statement_too_large);
    CHECK(d.code == 1153);
}

TEST_CASE("a statement over max_allowed_packet is refused before sending", "[unit][retry]") {
    fixture f;
    f.db->connect();  // the fake server reports max_allowed_packet = 1 MiB
    std::string big = "INSERT INTO t VALUES ('" + std::string(2 << 20, 'x') + "')";
    std::error_code ec;
    diagnostics d;
    f.db->execute(big, lifeline::idempotent, {}, ec, d);
    CHECK(ec == errc::statement_too_large);
    CHECK(d.client_message.find("nothing was sent") != std::string::npos);
    CHECK(d.server_message.empty());  // lifeline's words never pose as the server's
    CHECK(f.srv.applied.count(big) == 0);
    CHECK(f.srv.connects == 1);  // the connection is kept
    CHECK(f.db->is_open());
}

TEST_CASE("a connection killed while idle is caught before sending; the statement runs once", "[unit][retry]") {
    fixture f;
    f.db->connect();
    REQUIRE(f.srv.connects == 1);
    f.db->native()->kill_idle();  // the server closed its end
    auto r = f.db->execute("INSERT INTO t VALUES (1)");
    CHECK(r.attempts == 1);  // no failed attempt at all: the probe saw the dead socket
    CHECK(f.srv.connects == 2);
    CHECK(f.srv.applied["INSERT INTO t VALUES (1)"] == 1);
    CHECK(f.db->stats().socket_checks >= 1);
}

TEST_CASE("hot connections are never pinged; idle ones are, after the window", "[unit][retry]") {
    fixture f;
    f.db->connect();
    for (int i = 0; i < 100; ++i) {
        f.clock.sleep_for(10ms);
        f.db->query("SELECT 1", lifeline::idempotent);
    }
    CHECK(f.srv.pings == 0);
    f.clock.sleep_for(2s);
    f.db->query("SELECT 1", lifeline::idempotent);
    CHECK(f.srv.pings == 1);
}

TEST_CASE("registered session state is replayed on every new connection", "[unit][retry]") {
    fixture f;
    f.db->session().time_zone = "+00:00";
    f.db->session().statements = {"SET @app = 'lifeline'"};
    f.db->connect();
    f.srv.log.clear();
    fault gone;
    gone.code = 2006;
    gone.where = phase::send;
    f.srv.execute_faults.push_back(gone);
    f.db->query("SELECT @app", lifeline::idempotent);
    // The registered settings go in one SET (one round trip), then the caller's statements.
    std::vector<std::string> expected = {"exec:SELECT @app", "connect",
                                         "exec:SET time_zone = '+00:00', session_track_state_change = ON",
                                         "exec:SET @app = 'lifeline'"};
    REQUIRE(f.srv.log.size() >= expected.size());
    CHECK(std::vector<std::string>(f.srv.log.begin(), f.srv.log.begin() + 4) == expected);
    CHECK(f.srv.log.back() == "exec:SELECT @app");
}

TEST_CASE("unregistered session state makes a reconnect report instead of continuing", "[unit][retry]") {
    fixture f;
    f.db->connect();
    f.srv.state_change_next = true;
    f.db->execute("SET @x = 42");  // not registered
    f.db->native()->kill_idle();
    std::error_code ec;
    diagnostics d;
    f.db->query("SELECT @x", lifeline::idempotent, {}, ec, d);
    CHECK(ec == errc::session_state_lost);
    // Reported once; the caller can go on with a fresh session.
    f.db->query("SELECT @x", lifeline::idempotent, {}, ec, d);
    CHECK_FALSE(ec);
}

TEST_CASE("one deadline covers connects, backoff and attempts", "[unit][retry]") {
    test_policy p;
    p.retry.max_attempts = 1000;
    p.retry.deadline = 3s;
    p.breaker.failure_threshold = 1000;
    fixture f(p);
    for (int i = 0; i < 1000; ++i) {
        fault refused;
        refused.code = 2002;
        refused.where = phase::connect;
        f.srv.connect_faults.push_back(refused);
    }
    auto t0 = f.clock.now();
    std::error_code ec;
    diagnostics d;
    f.db->query("SELECT 1", lifeline::idempotent, {}, ec, d);
    auto waited = f.clock.now() - t0;
    CHECK(ec == errc::deadline_exceeded);
    CHECK(waited <= 3s);
    CHECK(f.srv.connects > 3);
}

TEST_CASE("success after failed connects reports success, not the last connect error", "[unit][retry]") {
    fixture f;
    for (int i = 0; i < 2; ++i) {
        fault refused;
        refused.code = 2002;
        refused.where = phase::connect;
        f.srv.connect_faults.push_back(refused);
    }
    std::error_code ec;
    diagnostics d;
    auto r = f.db->query("SELECT 1", lifeline::idempotent, {}, ec, d);
    CHECK_FALSE(ec);
    CHECK(d.code == 0);
    CHECK(r.attempts == 1);  // attempts count sends; the two refused connects sent nothing
    CHECK(f.srv.connects == 3);
    CHECK(r.scalar() == std::optional<std::string>("1"));
}

TEST_CASE("access denied at connect is not retried", "[unit][retry]") {
    fixture f;
    fault denied;
    denied.code = 1045;
    denied.sqlstate = "28000";
    denied.where = phase::connect;
    f.srv.connect_faults.push_back(denied);
    std::error_code ec;
    diagnostics d;
    f.db->query("SELECT 1", lifeline::idempotent, {}, ec, d);
    CHECK(ec == make_driver_error_code(1045));
    CHECK(d.where == phase::connect);
    CHECK(f.srv.connects == 1);
}

TEST_CASE("the retry budget stops retries in a long outage and recovers after", "[unit][retry]") {
    test_policy p;
    p.budget.ratio = 0.1;
    p.budget.min_retries_per_second = 0;
    p.retry.max_attempts = 2;
    fixture f(p);
    f.db->connect();
    int exhausted = 0, retried = 0;
    for (int i = 0; i < 100; ++i) {
        f.srv.execute_faults.push_back(lost_in_read(false));
        fault again = lost_in_read(false);
        f.srv.execute_faults.push_back(again);
        std::error_code ec;
        diagnostics d;
        auto r = f.db->query("SELECT 1", lifeline::idempotent, {}, ec, d);
        if (ec == errc::retry_budget_exhausted) ++exhausted;
        if (r.attempts > 1) ++retried;
        f.srv.execute_faults.clear();
    }
    CHECK(exhausted > 50);
    CHECK(retried <= 20);
    f.clock.sleep_for(p.budget.window * 2);
    for (int i = 0; i < 50; ++i) f.db->query("SELECT 1", lifeline::idempotent);  // healthy traffic refills
    f.srv.execute_faults.push_back(lost_in_read(false));
    auto r = f.db->query("SELECT 1", lifeline::idempotent);
    CHECK(r.attempts == 2);
}

TEST_CASE("the circuit breaker opens after repeated refusals by a server that is up", "[unit][retry]") {
    test_policy p;
    p.breaker.failure_threshold = 3;
    p.retry.max_attempts = 10;
    fixture f(p);
    for (int i = 0; i < 10; ++i) {
        fault busy;
        busy.code = 1040;  // too many connections: the server answered, and said no
        busy.sqlstate = "08004";
        busy.where = phase::connect;
        f.srv.connect_faults.push_back(busy);
    }
    std::error_code ec;
    diagnostics d;
    f.db->query("SELECT 1", lifeline::idempotent, {}, ec, d);
    CHECK(ec == errc::circuit_open);
    CHECK(f.srv.connects == 3);
}

TEST_CASE("a down server is probed by one connect at a time, paced by the endpoint monitor", "[unit][retry]") {
    test_policy p;
    p.retry.deadline = 2s;
    fixture f(p);
    f.srv.down = true;
    const auto t0 = f.clock.now();
    std::error_code ec;
    diagnostics d;
    f.db->query("SELECT 1", lifeline::idempotent, {}, ec, d);
    CHECK(ec == errc::deadline_exceeded);
    CHECK_THAT(d.client_message, Catch::Contains("did not accept connections"));
    CHECK(f.clock.now() - t0 <= 2s);
    // Probes at most every min_interval: 2 s / 16 ms = 125 at most, and never idle for long.
    CHECK(f.srv.connects <= 2000 / 16 + 1);
    CHECK(f.srv.connects >= 2000 / 50 - 1);
    // Failing fast instead of waiting: one connect if it is this caller's turn, else none.
    const int before = f.srv.connects;
    call_options fast;
    fast.fail_fast = true;
    f.db->query("SELECT 1", lifeline::idempotent, fast, ec, d);
    CHECK((ec == errc::server_unavailable || ec == make_driver_error_code(2003)));
    CHECK(f.srv.connects - before <= 1);
    // The server comes back: the next caller's probe finds it within one probe interval.
    f.srv.down = false;
    const auto t1 = f.clock.now();
    f.db->query("SELECT 1", lifeline::idempotent, {}, ec, d);
    CHECK_FALSE(ec);
    CHECK(f.clock.now() - t1 <= p.probe.max_interval);
}

TEST_CASE("a driver that turns OPT_RECONNECT on is refused", "[unit][retry]") {
    fixture f;
    f.srv.reconnect_option = true;
    std::error_code ec;
    diagnostics d;
    f.db->connect({}, ec, d);
    CHECK(ec == errc::invalid_option);
    CHECK(!f.db->is_open());
}

TEST_CASE("run() wraps existing code: it is re-run only under the declaration", "[unit][retry]") {
    fixture f;
    f.db->connect();
    int calls = 0;
    f.srv.execute_faults.push_back(lost_in_read(true));
    std::error_code ec;
    diagnostics d;
    f.db->run(
        [&](fake_session* s) {
            ++calls;
            fake_exec(s, "UPDATE t SET v = v + 1");
        },
        {}, {}, ec, d);
    CHECK(ec == errc::outcome_unknown);
    CHECK(calls == 1);
    f.srv.execute_faults.push_back(lost_in_read(true));
    int n = f.db->run(
        [&](fake_session* s) {
            ++calls;
            fake_exec(s, "SELECT 1");
            return 7;
        },
        lifeline::idempotent);
    CHECK(n == 7);
    CHECK(calls == 3);
}

TEST_CASE("invalid options and policies are rejected with what to fix", "[unit][retry]") {
    fake_server srv;
    fake_server::current() = &srv;
    connect_options o = opts();
    o.user.clear();
    try {
        fake_connection c(o, test_policy{});
        FAIL("accepted an empty user");
    } catch (const lifeline::error& e) {
        CHECK(e.code() == errc::invalid_option);
        CHECK(std::string(e.what()).find("connect_options.user") != std::string::npos);
    }
    test_policy p;
    p.retry.max_attempts = 0;
    try {
        fake_connection c(opts(), p);
        FAIL("accepted max_attempts = 0");
    } catch (const lifeline::error& e) {
        CHECK(std::string(e.what()).find("retry_policy.max_attempts") != std::string::npos);
    }
    fake_server::current() = nullptr;
}

TEST_CASE("prepared statements are prepared again on every new session", "[unit][retry]") {
    fixture f;
    auto ins = f.db->prepare("INSERT INTO t VALUES (?, ?)");
    f.db->execute(ins, {std::string("a"), std::nullopt});
    CHECK(f.srv.applied["INSERT INTO t VALUES (?, ?) | a NULL"] == 1);
    f.db->execute(ins, {std::string("b"), std::string("2")});
    auto prepares = std::count(f.srv.log.begin(), f.srv.log.end(), "prepare:INSERT INTO t VALUES (?, ?)");
    CHECK(prepares == 1);  // one session, prepared once
    f.db->native()->kill_idle();
    f.db->execute(ins, {std::string("c"), std::string("3")});  // new session: prepared again, sent once
    CHECK(std::count(f.srv.log.begin(), f.srv.log.end(), "prepare:INSERT INTO t VALUES (?, ?)") == 2);
    CHECK(f.srv.applied["INSERT INTO t VALUES (?, ?) | c 3"] == 1);
}

TEST_CASE("prepared statements: a wrong parameter count is refused before sending", "[unit][retry]") {
    fixture f;
    auto ins = f.db->prepare("INSERT INTO t VALUES (?, ?)");
    std::error_code ec;
    diagnostics d;
    f.db->execute(ins, {std::string("only one")}, {}, {}, ec, d);
    CHECK(ec == errc::invalid_option);
    CHECK(d.client_message.find("takes 2 parameter(s), 1 given") != std::string::npos);
    for (auto& kv : f.srv.applied) CHECK(kv.first.rfind("INSERT", 0) != 0);  // nothing of it ran
    lifeline::prepared_statement foreign;
    f.db->execute(foreign, {}, {}, {}, ec, d);
    CHECK(ec == errc::invalid_option);
}

TEST_CASE("a failed prepare is not an unknown outcome: the write is re-sent safely", "[unit][retry]") {
    fixture f;
    auto ins = f.db->prepare("INSERT INTO t VALUES (?)");
    f.db->connect();
    int hidden = f.db->native()->server_fd;  // the server end stays open: the probe sees nothing,
    f.db->native()->server_fd = -1;          // yet the fake server treats the session as dead
    auto r = f.db->execute(ins, {std::string("x")});  // not idempotent, yet safe: nothing ran
    ::close(hidden);
    CHECK(r.attempts == 2);
    CHECK(f.srv.applied["INSERT INTO t VALUES (?) | x"] == 1);
}

TEST_CASE("re-entrant use from inside an operation is refused with operation_in_progress", "[unit][retry]") {
    fixture f;
    f.db->connect();
    std::error_code inner;
    diagnostics d;
    f.db->transaction([&](auto& tx) {
        tx.execute("INSERT INTO t VALUES (1)");
        f.db->execute("INSERT INTO t VALUES (2)", {}, {}, inner, d);  // the connection, not the context
    }, transaction_options{});
    CHECK(inner == errc::operation_in_progress);
    CHECK(f.srv.times("INSERT INTO t VALUES (2)") == 0);
    CHECK(f.srv.times("INSERT INTO t VALUES (1)") == 1);
    std::error_code ec;
    f.db->run([&](fake_session*) { f.db->query("SELECT 1", lifeline::idempotent, {}, inner, d); }, {}, {}, ec, d);
    CHECK_FALSE(ec);
    CHECK(inner == errc::operation_in_progress);
}

TEST_CASE("a callable's own exception passes through; the session it may have left half-used is closed",
          "[unit][retry]") {
    fixture f;
    f.db->connect();
    CHECK_THROWS_AS(f.db->run([](fake_session* s) {
        fake_exec(s, "UPDATE t SET v = 1");
        throw std::runtime_error("the caller's own bug");
    }), std::runtime_error);
    CHECK_FALSE(f.db->is_open());
    CHECK(f.srv.times("UPDATE t SET v = 1") == 1);
    // Inside a transaction that was open before: the loss is reported, never silently autocommit.
    f.db->execute("BEGIN");
    CHECK_THROWS_AS(f.db->run([](fake_session*) { throw std::runtime_error("again"); }), std::runtime_error);
    std::error_code ec;
    diagnostics d;
    f.db->execute("INSERT INTO t VALUES (9)", {}, {}, ec, d);
    CHECK(ec == errc::transaction_lost);
    CHECK(f.srv.times("INSERT INTO t VALUES (9)") == 0);
}
