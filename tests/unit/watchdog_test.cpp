// The deadline watchdog: cuts a blocked driver read at the deadline, never a finished one; and the
// process-wide shared parts (budget, breaker, watchdog) under many threads (also run under TSan).
#include <lifeline/circuit_breaker.hpp>
#include <lifeline/detail/socket_probe.hpp>
#include <lifeline/detail/watchdog.hpp>
#include <lifeline/retry_budget.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace lifeline;
using namespace std::chrono_literals;

namespace {
struct sock_pair {
    int a = -1, b = -1;
    sock_pair() {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
        a = fds[0];
        b = fds[1];
    }
    ~sock_pair() {
        if (a >= 0) ::close(a);
        if (b >= 0) ::close(b);
    }
};
}  // namespace

TEST_CASE("watchdog: a blocked read is cut at the deadline, and only then", "[unit][retry][concurrency]") {
    auto& w = detail::watchdog::instance();
    auto slot = w.make_slot();
    sock_pair s;
    auto t0 = std::chrono::steady_clock::now();
    bool fired;
    {
        detail::watchdog_guard g(slot.get(), s.a, t0 + 200ms);
        char c;
        ssize_t n = ::recv(s.a, &c, 1, 0);  // blocks: nobody writes
        CHECK(n == 0);                      // shut down by the watchdog
        fired = g.release();
    }
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(fired);
    CHECK(took >= 200ms);
    CHECK(took < 2s);  // generous: loaded CI machines
    // Disarmed in time: nothing happens to the socket.
    sock_pair s2;
    {
        detail::watchdog_guard g(slot.get(), s2.a, std::chrono::steady_clock::now() + 50ms);
        CHECK_FALSE(g.release());
    }
    std::this_thread::sleep_for(100ms);
    CHECK(detail::probe_socket(s2.a) == socket_status::alive);
}

TEST_CASE("concurrency: budget, breaker and watchdog under many threads", "[unit][retry][concurrency]") {
    retry_budget budget;
    circuit_breaker breaker;
    std::atomic<int> granted{0}, spurious_fires{0}, socket_errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            // Catch2 assertions are not thread-safe: count here, assert after join.
            auto slot = detail::watchdog::instance().make_slot();
            int fds[2];
            if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
                ++socket_errors;
                return;
            }
            for (int i = 0; i < 2000; ++i) {
                auto now = std::chrono::steady_clock::now();
                budget.record_request(now);
                if (i % 10 == t % 10 && budget.try_acquire_retry(now)) ++granted;
                if (breaker.allow(now)) {
                    if (i % 3 == 0) breaker.on_failure(now);
                    else breaker.on_success(now);
                }
                detail::watchdog_guard g(slot.get(), fds[0], now + 1s);
                if (g.release()) ++spurious_fires;
            }
            ::close(fds[0]);
            ::close(fds[1]);
        });
    }
    for (auto& th : threads) th.join();
    CHECK(socket_errors == 0);
    CHECK(spurious_fires == 0);
    auto stats = budget.stats(std::chrono::steady_clock::now());
    CHECK(stats.requests == 16000u);
    CHECK(static_cast<std::uint64_t>(granted.load()) == stats.retries);
    CHECK(stats.retries <= 0.2 * 16000 + 30);
}
