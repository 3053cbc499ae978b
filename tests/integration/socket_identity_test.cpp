// Socket identity against the real server: the descriptor an adapter reports through socket_fd()
// is always this session's own socket (or -1), also while other threads connect and close at the
// same time; and a watchdog cut lands on that session only.
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/detail/socket_discovery.hpp>
#include <lifeline/detail/socket_probe.hpp>
#include <lifeline/detail/watchdog.hpp>
#include <lifeline/driver/capi.hpp>
#include <lifeline/driver/jdbc.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

struct tally {
    std::atomic<long> connects{0};
    std::atomic<long> foreign{0};  // socket_fd() named a socket that is not this session's
    std::atomic<long> unknown{0};  // socket_fd() == -1
    std::mutex mutex;
    std::vector<std::string> failures;  // any connect or query that failed (none expected)

    void fail(std::string what) {
        std::lock_guard<std::mutex> lock(mutex);
        if (failures.size() < 20) failures.push_back(std::move(what));
    }
};

// The client port the server sees for this session, asked from the session itself.
template <class Tag>
long server_seen_port(typename driver_traits<Tag>::session_type& s, diagnostics& d) {
    using traits = driver_traits<Tag>;
    result r;
    if (!traits::execute(s, "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()", &r, d))
        return -1;
    auto host = r.scalar();
    if (!host) return -1;
    auto colon = host->rfind(':');
    if (colon == std::string::npos) return -1;
    return std::stol(host->substr(colon + 1));
}

// Checks the session's socket_fd() against the server's view. Returns false on a failed query.
template <class Tag>
bool check_identity(typename driver_traits<Tag>::session_type& s, const endpoint& e, tally& t, const char* who) {
    using traits = driver_traits<Tag>;
    const int fd = traits::socket_fd(s);
    diagnostics d;
    const long port = server_seen_port<Tag>(s, d);
    if (port < 0) {
        t.fail(std::string(who) + ": PROCESSLIST query failed: " + d.server_message);
        return false;
    }
    if (fd < 0) {
        ++t.unknown;
        return true;
    }
    detail::inet_endpoint local, peer;
    const bool mine = detail::local_endpoint(fd, local) && detail::peer_endpoint(fd, peer) &&
                      static_cast<long>(local.port) == port && peer.port == e.port;
    if (!mine) {
        ++t.foreign;
        t.fail(std::string(who) + ": socket_fd " + std::to_string(fd) + " has local port " + std::to_string(local.port) +
               ", the server sees " + std::to_string(port));
    }
    return true;
}

// `threads` threads each connect, check, close, reconnect ... until `duration` has passed.
template <class Tag>
void churn(const endpoint& e, int threads, std::chrono::milliseconds duration, tally& t) {
    using traits = driver_traits<Tag>;
    const auto opts = options_for(e);
    const auto until = steady::now() + duration;
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i)
        pool.emplace_back([&] {
            typename traits::session_type s;
            while (steady::now() < until) {
                diagnostics d;
                if (!traits::connect(s, opts, 5000ms, d)) {
                    t.fail("connect failed: " + std::to_string(d.code) + " " + d.server_message);
                    continue;
                }
                ++t.connects;
                check_identity<Tag>(s, e, t, "churn");
                traits::close(s);
            }
        });
    for (auto& th : pool) th.join();
}

template <class Tag>
void run_churn(const char* driver, int threads, std::chrono::milliseconds duration, bool assert_no_unknown) {
    auto srv = server::attach();
    tally t;
    churn<Tag>(srv.where(), threads, duration, t);
    // Printed on every run (the report quotes it), not only on failure.
    std::cout << driver << ": " << threads << " thread(s), " << duration.count() << " ms: " << t.connects.load()
              << " connects, " << t.foreign.load() << " foreign, " << t.unknown.load() << " unknown\n";
    for (const auto& f : t.failures) std::cout << "  " << f << "\n";
    CHECK(t.failures.empty());
    CHECK(t.connects.load() > 0);
    CHECK(t.foreign.load() == 0);  // never another session's socket
    if (assert_no_unknown) CHECK(t.unknown.load() == 0);
}

// Thread A runs SELECT SLEEP(5) under a 300 ms watchdog deadline while thread B connects,
// queries and closes in a loop: A is cut at its deadline with 2013, B never sees a failure.
template <class Tag>
void watchdog_cut_is_local(const char* driver) {
    using traits = driver_traits<Tag>;
    auto srv = server::attach();
    const auto opts = options_for(srv.where());
    tally t;

    typename traits::session_type a;
    diagnostics ad;
    REQUIRE(traits::connect(a, opts, 5000ms, ad));
    REQUIRE(traits::socket_fd(a) >= 0);  // else the watchdog could not act at all
    auto slot = detail::watchdog::instance().make_slot();

    std::atomic<bool> a_done{false};
    std::atomic<long> b_cycles{0};
    std::thread b([&] {
        typename traits::session_type s;
        while (!a_done.load()) {
            diagnostics d;
            if (!traits::connect(s, opts, 5000ms, d)) {
                t.fail("B connect failed: " + std::to_string(d.code) + " " + d.server_message);
                continue;
            }
            ++t.connects;
            result r;
            if (!traits::execute(s, "SELECT 1", &r, d) || r.scalar() != std::optional<std::string>("1"))
                t.fail("B query failed: " + std::to_string(d.code) + " " + d.server_message);
            check_identity<Tag>(s, srv.where(), t, "B");
            traits::close(s);
            ++b_cycles;
        }
    });
    // A starts once B is really cycling (an event, bounded), so the two overlap.
    const auto b_started_by = steady::now() + 10s;
    while (b_cycles.load() == 0 && steady::now() < b_started_by) std::this_thread::yield();

    result ar;
    const auto t0 = steady::now();
    bool ok, fired;
    {
        detail::watchdog_guard guard(slot.get(), traits::socket_fd(a), t0 + 300ms);
        ok = traits::execute(a, "SELECT SLEEP(5)", &ar, ad);
        fired = guard.release();
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
    const long cycles_during_a = b_cycles.load();
    a_done.store(true);
    b.join();
    traits::close(a);

    std::cout << driver << ": A cut after " << took.count() << " ms (code " << ad.code << "); B ran "
              << cycles_during_a << " connect/query/close cycles meanwhile, " << t.foreign.load() << " foreign, "
              << t.unknown.load() << " unknown\n";
    for (const auto& f : t.failures) std::cout << "  " << f << "\n";
    CHECK_FALSE(ok);
    CHECK(fired);
    CHECK(ad.code == 2013);
    CHECK(took >= 300ms);
    CHECK(took < 300ms + 2500ms);  // generous slack for a loaded machine; uncut it would take 5 s
    CHECK(cycles_during_a > 0);
    CHECK(t.failures.empty());     // B never saw a failure
    CHECK(t.foreign.load() == 0);
}

}  // namespace

// --- Connector/C++ (socket found by identity + the server's view) -------------------------------

TEST_CASE("socket identity jdbc: one thread reconnecting always finds its own socket", "[safety][socket_identity][jdbc]") {
    run_churn<lifeline::jdbc>("jdbc", 1, 1500ms, true);
}

TEST_CASE("socket identity jdbc: 8 threads reconnecting for 5 s never adopt a foreign socket",
          "[safety][socket_identity][jdbc]") {
    // No unknown either: a socket is identified by (st_dev, st_ino) and confirmed by the address
    // the server reports, so other threads' connects cannot make a lookup ambiguous. Only the
    // descriptor limit (dup failing) could; this test stays far below it.
    run_churn<lifeline::jdbc>("jdbc", 8, 5000ms, true);
}

TEST_CASE("socket identity jdbc: a watchdog cut hits only its own session", "[safety][socket_identity][jdbc]") {
    watchdog_cut_is_local<lifeline::jdbc>("jdbc");
}

TEST_CASE("socket identity jdbc: the session keeps its own descriptor, distinct from the driver's",
          "[safety][socket_identity][jdbc]") {
    using traits = driver_traits<lifeline::jdbc>;
    auto srv = server::attach();
    traits::session_type s;
    diagnostics d;
    REQUIRE(traits::connect(s, options_for(srv.where()), 5000ms, d));
    CHECK(s.socket_lookup == detail::discovery_outcome::found);
    const int fd = traits::socket_fd(s);
    REQUIRE(fd >= 0);
    detail::socket_identity mine;
    REQUIRE(detail::identity_of(fd, mine));
    // Exactly one OTHER descriptor in the process refers to the same socket: the driver's own.
    int others = 0;
    detail::for_each_fd([&](int n) {
        detail::socket_identity id;
        if (n != fd && detail::identity_of(n, id) && id == mine) ++others;
    });
    CHECK(others == 1);
    // Moving the session moves the descriptor; closing closes it exactly once.
    traits::session_type moved(std::move(s));
    CHECK(traits::socket_fd(moved) == fd);
    CHECK(traits::socket_fd(s) == -1);  // NOLINT(bugprone-use-after-move): moved-from is empty
    traits::close(moved);
    CHECK(traits::socket_fd(moved) == -1);
    CHECK(::fcntl(fd, F_GETFD) == -1);
}

// --- MariaDB Connector/C -------------------------------------------------------------------------

TEST_CASE("socket identity capi: one thread reconnecting always has its own socket", "[safety][socket_identity][capi]") {
    run_churn<lifeline::capi>("capi", 1, 1500ms, true);
}

TEST_CASE("socket identity capi: 8 threads reconnecting for 5 s never see a foreign socket",
          "[safety][socket_identity][capi]") {
    run_churn<lifeline::capi>("capi", 8, 5000ms, true);
}

TEST_CASE("socket identity capi: a watchdog cut hits only its own session", "[safety][socket_identity][capi]") {
    watchdog_cut_is_local<lifeline::capi>("capi");
}

TEST_CASE("socket identity capi: after the driver dropped its socket, socket_fd() still names only this session's",
          "[safety][socket_identity][capi]") {
    using traits = driver_traits<lifeline::capi>;
    auto srv = server::attach();
    const auto opts = options_for(srv.where());
    traits::session_type s;
    diagnostics d;
    REQUIRE(traits::connect(s, opts, 5000ms, d));
    const int fd = traits::socket_fd(s);
    REQUIRE(fd >= 0);
    const int driver_fd = static_cast<int>(mysql_get_socket(s.get()));
    CHECK(driver_fd != fd);
    detail::socket_identity mine;
    REQUIRE(detail::identity_of(fd, mine));

    // KILL the session; its next query fails with 2013/2006 and Connector/C closes its own descriptor.
    admin_kill(srv.where(), traits::connection_id(s));
    result r;
    bool failed = false;
    const auto until = steady::now() + 10s;
    while (!failed && steady::now() < until) failed = !traits::execute(s, "SELECT 1", &r, d);
    REQUIRE(failed);
    // Another connection may now get the driver's old number...
    traits::session_type other;
    REQUIRE(traits::connect(other, opts, 5000ms, d));
    // ...but this session's descriptor is still the same socket object, and not the other's.
    detail::socket_identity now;
    REQUIRE(detail::identity_of(traits::socket_fd(s), now));
    CHECK(now == mine);
    detail::socket_identity others;
    REQUIRE(detail::identity_of(traits::socket_fd(other), others));
    CHECK_FALSE(others == mine);
    // The dead session's socket probes dead; the new one alive.
    CHECK(detail::probe_socket(traits::socket_fd(s)) == socket_status::dead);
    CHECK(detail::probe_socket(traits::socket_fd(other)) == socket_status::alive);
}
