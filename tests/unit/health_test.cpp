// The health-check / recycle state machine (pure, manual clock) and the zero-round-trip socket
// probe (real sockets: a socketpair and a loopback TCP pair).
#include <lifeline/clock.hpp>
#include <lifeline/detail/socket_probe.hpp>
#include <lifeline/health.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>

using namespace lifeline;
using namespace std::chrono_literals;

namespace {

health_policy no_jitter() {
    health_policy p;
    p.lifetime_jitter = 0;
    return p;
}

}  // namespace

TEST_CASE("health_policy: defaults and validation", "[unit][retry]") {
    health_policy p;
    CHECK(p.ping_after_idle == 1s);
    CHECK(p.socket_check);
    CHECK(p.max_lifetime == 30min);
    CHECK(p.lifetime_jitter == 0.025);
    CHECK(p.wait_timeout_margin == 0.8);
    CHECK(p.validate().empty());
    p.ping_after_idle = -1ms;
    CHECK_THAT(p.validate(), Catch::Contains("health_policy.ping_after_idle"));
    p = {};
    p.max_lifetime = -1s;
    CHECK_THAT(p.validate(), Catch::Contains("health_policy.max_lifetime"));
    p = {};
    p.lifetime_jitter = 1.0;
    CHECK_THAT(p.validate(), Catch::Contains("health_policy.lifetime_jitter must be in [0, 1)"));
    p.lifetime_jitter = -0.1;
    CHECK_THAT(p.validate(), Catch::Contains("health_policy.lifetime_jitter"));
    p = {};
    p.wait_timeout_margin = 0;
    CHECK_THAT(p.validate(), Catch::Contains("health_policy.wait_timeout_margin must be in (0, 1]"));
    p.wait_timeout_margin = 1.5;
    CHECK_THAT(p.validate(), Catch::Contains("health_policy.wait_timeout_margin"));
    p = {};
    p.max_lifetime = 0s;  // disabled
    p.ping_after_idle = 0s;  // ping before every use
    CHECK(p.validate().empty());
}

TEST_CASE("health_tracker: the decision table", "[unit][retry]") {
    // Defaults without jitter: ping after 1 s idle, lifetime 30 min, recycle at 80 % of wait_timeout.
    struct row {
        const char* what;
        duration age;           // since connect
        duration idle;          // since the last round trip
        duration wait_timeout;  // the server's, 0 = unknown
        socket_status socket;
        health_action expected;
    };
    const row rows[] = {
        {"hot connection", 5s, 10ms, 28800s, socket_status::alive, health_action::use},
        {"hot, socket unknown", 5s, 10ms, 28800s, socket_status::unknown, health_action::use},
        {"just under the ping window", 5s, 999ms, 28800s, socket_status::alive, health_action::use},
        {"idle for the ping window", 5s, 1s, 28800s, socket_status::alive, health_action::ping},
        {"idle, socket unknown", 15s, 10s, 28800s, socket_status::unknown, health_action::ping},
        {"socket dead while hot", 5s, 10ms, 28800s, socket_status::dead, health_action::reconnect},
        {"socket dead while idle", 2h, 1h, 28800s, socket_status::dead, health_action::reconnect},
        {"unexpected data", 5s, 10ms, 28800s, socket_status::unexpected_data, health_action::reconnect},
        {"dead beats old age", 31min, 10ms, 28800s, socket_status::dead, health_action::reconnect},
        {"at max_lifetime", 30min, 10ms, 28800s, socket_status::alive, health_action::recycle},
        {"just under max_lifetime", 30min - 1ms, 10ms, 28800s, socket_status::alive, health_action::use},
        {"idle near wait_timeout", 60s, 8s, 10s, socket_status::alive, health_action::recycle},
        {"idle just under 80 % of wait_timeout", 60s, 8s - 1ms, 10s, socket_status::alive, health_action::ping},
        {"idle long, wait_timeout unknown", 25min, 20min, 0s, socket_status::alive, health_action::ping},
        {"idle 20 min, wait_timeout 8 h", 25min, 20min, 28800s, socket_status::alive, health_action::ping},
        {"idle 29 min of a 36 min wait_timeout", 29min, 29min, 2160s, socket_status::alive,
         health_action::recycle},
    };
    for (const row& r : rows) {
        INFO(r.what);
        manual_clock c;
        health_tracker h(no_jitter());
        REQUIRE(r.idle <= r.age);
        h.on_connected(c.now(), r.wait_timeout, 1);
        c.advance(r.age - r.idle);
        h.on_used(c.now());
        c.advance(r.idle);
        CHECK(h.age(c.now()) == r.age);
        CHECK(h.idle(c.now()) == r.idle);
        CHECK(to_string(h.before_use(c.now(), r.socket)) == to_string(r.expected));
    }
}

TEST_CASE("health_tracker: never connected or closed means reconnect", "[unit][retry]") {
    manual_clock c;
    health_tracker h;
    CHECK_FALSE(h.connected());
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::reconnect);
    h.on_connected(c.now(), 0s, 1);
    CHECK(h.connected());
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::use);
    h.on_closed();
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::reconnect);
}

TEST_CASE("health_tracker: 0 COM_PINGs for 10 000 hot queries; one after an idle window", "[unit][retry]") {
    manual_clock c;
    health_tracker h;  // defaults
    h.on_connected(c.now(), 28800s, 7);
    int pings = 0, other = 0;
    for (int i = 0; i < 10000; ++i) {
        c.advance(50ms);  // a query every 50 ms: the connection never idles for 1 s
        switch (h.before_use(c.now(), socket_status::alive)) {
        case health_action::use: break;
        case health_action::ping: ++pings; break;
        default: ++other; break;
        }
        c.advance(2ms);  // the query's round trip
        h.on_used(c.now());
    }
    CHECK(pings == 0);
    CHECK(other == 0);
    c.advance(1500ms);
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::ping);
    h.on_used(c.now());  // the ping answered: hot again
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::use);
}

TEST_CASE("health_tracker: ping_after_idle 0 pings before every use; max never pings", "[unit][retry]") {
    manual_clock c;
    health_policy p = no_jitter();
    p.ping_after_idle = 0s;
    health_tracker always(p);
    always.on_connected(c.now(), 0s, 1);
    CHECK(always.before_use(c.now(), socket_status::alive) == health_action::ping);
    p.ping_after_idle = duration::max();
    health_tracker never(p);
    never.on_connected(c.now(), 0s, 1);
    c.advance(29min);
    CHECK(never.before_use(c.now(), socket_status::alive) == health_action::use);
}

TEST_CASE("health_tracker: max_lifetime 0 never recycles for age", "[unit][retry]") {
    manual_clock c;
    health_policy p = no_jitter();
    p.max_lifetime = 0s;
    health_tracker h(p);
    h.on_connected(c.now(), 0s, 1);
    CHECK(h.lifetime() == duration::max());
    c.advance(24h * 365);
    h.on_used(c.now());
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::use);
}

TEST_CASE("health_tracker: lifetime is max_lifetime minus up to 2.5 % of jitter, per connection",
          "[unit][retry]") {
    const health_policy p;  // 30 min, 2.5 %
    const duration lo = 30min - 45s;  // 2.5 % of 30 min
    duration shortest = 30min, longest = 0s;
    double mean = 0;
    constexpr int n = 5000;
    for (std::uint64_t seed = 0; seed < n; ++seed) {
        health_tracker h(p);
        h.on_connected(steady_time{}, 0s, seed);
        const duration l = h.lifetime();
        REQUIRE(l <= 30min);
        REQUIRE(l > lo);
        shortest = std::min(shortest, l);
        longest = std::max(longest, l);
        mean += std::chrono::duration<double>(l).count();
    }
    mean /= n;
    CHECK(shortest < lo + 2s);   // spread over the whole range
    CHECK(longest > 30min - 2s);
    CHECK(mean == Approx(1800.0 - 22.5).margin(2.0));  // uniform: 1.25 % earlier on average
    // Deterministic per seed.
    health_tracker a(p), b(p);
    a.on_connected(steady_time{}, 0s, 123);
    b.on_connected(steady_time{} + 5h, 0s, 123);
    CHECK(a.lifetime() == b.lifetime());
}

TEST_CASE("health_tracker: the jittered lifetime is what recycles", "[unit][retry]") {
    manual_clock c;
    health_tracker h;  // defaults, with jitter
    h.on_connected(c.now(), 0s, 99);
    const duration life = h.lifetime();
    REQUIRE(life < 30min);
    c.advance(life - 1ms);
    h.on_used(c.now());
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::use);
    c.advance(1ms);
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::recycle);
    // A fresh session starts the count again.
    h.on_connected(c.now(), 0s, 100);
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::use);
}

TEST_CASE("health_tracker: idle_limit follows the server's wait_timeout", "[unit][retry]") {
    manual_clock c;
    health_tracker h(no_jitter());
    h.on_connected(c.now(), 0s, 1);
    CHECK(h.idle_limit() == duration::max());
    h.on_connected(c.now(), 28800s, 1);
    CHECK(h.idle_limit() == 23040s);
    h.on_connected(c.now(), 1s, 1);  // SET SESSION wait_timeout=1: recycle after 800 ms idle
    CHECK(h.idle_limit() == 800ms);
    c.advance(800ms);
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::recycle);
}

TEST_CASE("health_tracker: a clock that goes back reads as no time passed", "[unit][retry]") {
    manual_clock c;
    health_tracker h(no_jitter());
    h.on_connected(c.now(), 10s, 1);
    const steady_time t = c.now();
    c.set(t - 1h);
    CHECK(h.age(c.now()) == 0s);
    CHECK(h.idle(c.now()) == 0s);
    CHECK(h.before_use(c.now(), socket_status::alive) == health_action::use);
    h.on_used(c.now());  // an older time never moves last use backwards
    c.set(t + 500ms);
    CHECK(h.idle(c.now()) == 500ms);
}

TEST_CASE("socket_status and health_action names", "[unit][retry]") {
    CHECK(to_string(socket_status::alive) == "alive");
    CHECK(to_string(socket_status::dead) == "dead");
    CHECK(to_string(socket_status::unexpected_data) == "unexpected_data");
    CHECK(to_string(socket_status::unknown) == "unknown");
    CHECK(to_string(health_action::use) == "use");
    CHECK(to_string(health_action::ping) == "ping");
    CHECK(to_string(health_action::reconnect) == "reconnect");
    CHECK(to_string(health_action::recycle) == "recycle");
}

// --- probe_socket on real sockets ------------------------------------------------------------

namespace {

struct fd_pair {
    int client = -1, server = -1;
    fd_pair() = default;
    fd_pair(const fd_pair&) = delete;
    fd_pair& operator=(const fd_pair&) = delete;
    ~fd_pair() {
        close_client();
        close_server();
    }
    void close_client() {
        if (client >= 0) ::close(client);
        client = -1;
    }
    void close_server() {
        if (server >= 0) ::close(server);
        server = -1;
    }
};

void make_socketpair(fd_pair& p) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    p.client = fds[0];
    p.server = fds[1];
}

// A connected TCP pair on 127.0.0.1 (the "server" end is the accepted socket).
void make_tcp_pair(fd_pair& p) {
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    p.client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(p.client >= 0);
    REQUIRE(::connect(p.client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    p.server = ::accept(listener, nullptr, nullptr);
    ::close(listener);
    REQUIRE(p.server >= 0);
}

// TCP delivers a FIN or RST asynchronously: poll until the probe's answer changes (or 2 s).
socket_status settle(int fd, socket_status from = socket_status::alive) {
    socket_status s = detail::probe_socket(fd);
    for (int i = 0; i < 200 && s == from; ++i) {
        std::this_thread::sleep_for(10ms);
        s = detail::probe_socket(fd);
    }
    return s;
}

void write_byte(int fd, char c) { REQUIRE(::send(fd, &c, 1, MSG_NOSIGNAL) == 1); }

}  // namespace

TEST_CASE("probe_socket: no socket is unknown", "[unit][retry]") {
    CHECK(detail::probe_socket(-1) == socket_status::unknown);
    CHECK(detail::probe_socket(-42) == socket_status::unknown);
}

TEST_CASE("probe_socket: socketpair", "[unit][retry]") {
    fd_pair p;
    make_socketpair(p);

    SECTION("an idle healthy connection is alive, however often it is probed") {
        for (int i = 0; i < 100; ++i) REQUIRE(detail::probe_socket(p.client) == socket_status::alive);
    }
    SECTION("peer closed: dead") {
        p.close_server();
        CHECK(detail::probe_socket(p.client) == socket_status::dead);
    }
    SECTION("peer shut down its writing side: dead") {
        REQUIRE(::shutdown(p.server, SHUT_WR) == 0);
        CHECK(detail::probe_socket(p.client) == socket_status::dead);
    }
    SECTION("data pending on an idle connection: unexpected_data, and the probe consumed nothing") {
        write_byte(p.server, 'x');
        CHECK(detail::probe_socket(p.client) == socket_status::unexpected_data);
        CHECK(detail::probe_socket(p.client) == socket_status::unexpected_data);
        char c = 0;
        REQUIRE(::recv(p.client, &c, 1, 0) == 1);
        CHECK(c == 'x');
        CHECK(detail::probe_socket(p.client) == socket_status::alive);  // drained: alive again
    }
    SECTION("an error packet then close (a server that explains before hanging up): not usable") {
        write_byte(p.server, 'e');
        p.close_server();
        const socket_status s = detail::probe_socket(p.client);
        CHECK((s == socket_status::dead || s == socket_status::unexpected_data));
        health_tracker h;
        h.on_connected(steady_time{}, 0s, 1);
        CHECK(h.before_use(steady_time{}, s) == health_action::reconnect);
    }
    SECTION("our own writing side shut down does not make an idle connection look dead") {
        REQUIRE(::shutdown(p.client, SHUT_WR) == 0);
        CHECK(detail::probe_socket(p.client) == socket_status::alive);
    }
}

TEST_CASE("probe_socket: a descriptor that is not open is dead", "[unit][retry]") {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    ::close(fds[1]);
    ::close(fds[0]);
    CHECK(detail::probe_socket(fds[0]) == socket_status::dead);  // POLLNVAL
}

TEST_CASE("probe_socket: loopback TCP", "[unit][retry]") {
    fd_pair p;
    make_tcp_pair(p);

    SECTION("idle healthy connection: alive") {
        CHECK(detail::probe_socket(p.client) == socket_status::alive);
        CHECK(detail::probe_socket(p.server) == socket_status::alive);
    }
    SECTION("the server closed its end (KILL, wait_timeout): dead") {
        p.close_server();
        CHECK(settle(p.client) == socket_status::dead);
    }
    SECTION("the server shut down its writing side (FIN): dead") {
        REQUIRE(::shutdown(p.server, SHUT_WR) == 0);
        CHECK(settle(p.client) == socket_status::dead);
    }
    SECTION("the connection was reset (RST): dead") {
        linger l{};
        l.l_onoff = 1;
        l.l_linger = 0;  // close() sends RST instead of FIN
        REQUIRE(::setsockopt(p.server, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0);
        p.close_server();
        CHECK(settle(p.client) == socket_status::dead);
    }
    SECTION("data pending: unexpected_data, nothing consumed") {
        write_byte(p.server, 'y');
        CHECK(settle(p.client) == socket_status::unexpected_data);
        char c = 0;
        REQUIRE(::recv(p.client, &c, 1, 0) == 1);
        CHECK(c == 'y');
        CHECK(detail::probe_socket(p.client) == socket_status::alive);
    }
}

TEST_CASE("probe_socket: cheap enough to run before every use", "[unit][retry]") {
    fd_pair p;
    make_socketpair(p);
    constexpr int n = 10000;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) REQUIRE(detail::probe_socket(p.client) == socket_status::alive);
    const auto per = (std::chrono::steady_clock::now() - t0) / n;
    INFO("per probe: " << std::chrono::duration_cast<std::chrono::nanoseconds>(per).count() << " ns");
    CHECK(per < 50us);  // generous (sanitizers); measured ≈0.2 µs bare
}
