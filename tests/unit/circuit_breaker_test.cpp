// The per-endpoint circuit breaker: closed -> open after consecutive failures, open -> half-open
// after open_for, probes, and behaviour under concurrent use.
#include <lifeline/circuit_breaker.hpp>
#include <lifeline/clock.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace lifeline;
using namespace std::chrono_literals;

namespace {

circuit_breaker_policy make(unsigned threshold, duration open_for, unsigned probes) {
    circuit_breaker_policy p;
    p.failure_threshold = threshold;
    p.open_for = open_for;
    p.half_open_probes = probes;
    return p;
}

// Opens b at c.now() by failing it `threshold` times.
void trip(circuit_breaker& b, const manual_clock& c) {
    for (unsigned i = 0; i < b.policy().failure_threshold; ++i) b.on_failure(c.now());
}

}  // namespace

TEST_CASE("circuit_breaker_policy: defaults and validation", "[unit][retry]") {
    circuit_breaker_policy p;
    CHECK(p.failure_threshold == 5);
    CHECK(p.open_for == 1s);
    CHECK(p.half_open_probes == 1);
    CHECK(p.validate().empty());
    p.failure_threshold = 0;
    CHECK_THAT(p.validate(), Catch::Contains("circuit_breaker_policy.failure_threshold must be >= 1"));
    p = {};
    p.open_for = 0s;
    CHECK_THAT(p.validate(), Catch::Contains("circuit_breaker_policy.open_for must be > 0"));
    p = {};
    p.half_open_probes = 0;
    CHECK_THAT(p.validate(), Catch::Contains("circuit_breaker_policy.half_open_probes"));
}

TEST_CASE("circuit_breaker: opens after failure_threshold consecutive failures", "[unit][retry]") {
    manual_clock c;
    circuit_breaker b(make(3, 1s, 1));
    CHECK(b.state(c.now()) == breaker_state::closed);
    b.on_failure(c.now());
    b.on_failure(c.now());
    CHECK(b.allow(c.now()));
    CHECK(b.stats(c.now()).consecutive_failures == 2);
    b.on_success(c.now());  // not consecutive any more
    CHECK(b.stats(c.now()).consecutive_failures == 0);
    b.on_failure(c.now());
    b.on_failure(c.now());
    CHECK(b.state(c.now()) == breaker_state::closed);
    b.on_failure(c.now());
    CHECK(b.state(c.now()) == breaker_state::open);
    CHECK_FALSE(b.allow(c.now()));
    CHECK_FALSE(b.allow(c.now()));
    const auto s = b.stats(c.now());
    CHECK(s.times_opened == 1);
    CHECK(s.rejected == 2);
}

TEST_CASE("circuit_breaker: open -> half-open after open_for; a probe's success closes it", "[unit][retry]") {
    manual_clock c;
    circuit_breaker b(make(2, 1s, 1));
    trip(b, c);
    c.advance(999ms);
    CHECK(b.state(c.now()) == breaker_state::open);
    CHECK_FALSE(b.allow(c.now()));
    c.advance(1ms);
    CHECK(b.state(c.now()) == breaker_state::half_open);
    CHECK(b.allow(c.now()));        // the probe
    CHECK_FALSE(b.allow(c.now()));  // only one
    b.on_success(c.now());
    CHECK(b.state(c.now()) == breaker_state::closed);
    for (int i = 0; i < 10; ++i) CHECK(b.allow(c.now()));
}

TEST_CASE("circuit_breaker: a failed probe reopens it for another open_for", "[unit][retry]") {
    manual_clock c;
    circuit_breaker b(make(2, 1s, 1));
    trip(b, c);
    c.advance(1s);
    REQUIRE(b.allow(c.now()));
    b.on_failure(c.now());  // one failure is enough while half-open
    CHECK(b.state(c.now()) == breaker_state::open);
    CHECK(b.stats(c.now()).times_opened == 2);
    c.advance(500ms);
    CHECK_FALSE(b.allow(c.now()));
    c.advance(500ms);
    CHECK(b.state(c.now()) == breaker_state::half_open);
    CHECK(b.allow(c.now()));
}

TEST_CASE("circuit_breaker: half-open lets half_open_probes calls through", "[unit][retry]") {
    manual_clock c;
    circuit_breaker b(make(1, 2s, 3));
    trip(b, c);
    c.advance(2s);
    CHECK(b.allow(c.now()));
    CHECK(b.allow(c.now()));
    CHECK(b.allow(c.now()));
    CHECK_FALSE(b.allow(c.now()));
    b.on_success(c.now());  // any probe succeeding closes it
    CHECK(b.state(c.now()) == breaker_state::closed);
}

TEST_CASE("circuit_breaker: probes that never report back do not keep it shut", "[unit][retry]") {
    manual_clock c;
    circuit_breaker b(make(1, 1s, 1));
    trip(b, c);
    c.advance(1s);
    REQUIRE(b.allow(c.now()));  // this probe's caller vanishes
    c.advance(999ms);
    CHECK_FALSE(b.allow(c.now()));
    c.advance(1ms);
    CHECK(b.allow(c.now()));  // a new probe after another open_for
    CHECK(b.state(c.now()) == breaker_state::half_open);
}

TEST_CASE("circuit_breaker: late reports while open neither extend nor close it wrongly", "[unit][retry]") {
    manual_clock c;
    circuit_breaker b(make(2, 1s, 1));
    trip(b, c);
    c.advance(800ms);
    b.on_failure(c.now());  // a call let through before it opened, failing late
    c.advance(200ms);
    CHECK(b.state(c.now()) == breaker_state::half_open);  // open_for counts from the opening
    CHECK(b.stats(c.now()).times_opened == 1);

    // A late success proves the endpoint accepts connections: closed at once.
    circuit_breaker b2(make(1, 10s, 1));
    b2.on_failure(c.now());
    REQUIRE(b2.state(c.now()) == breaker_state::open);
    b2.on_success(c.now());
    CHECK(b2.state(c.now()) == breaker_state::closed);
    CHECK(b2.allow(c.now()));
}

TEST_CASE("circuit_breaker: reset closes it and forgets failures", "[unit][retry]") {
    manual_clock c;
    circuit_breaker b(make(2, 1h, 1));
    trip(b, c);
    REQUIRE_FALSE(b.allow(c.now()));
    b.reset();
    CHECK(b.allow(c.now()));
    b.on_failure(c.now());
    CHECK(b.state(c.now()) == breaker_state::closed);  // one failure, threshold 2
}

TEST_CASE("circuit_breaker: state names", "[unit][retry]") {
    CHECK(to_string(breaker_state::closed) == "closed");
    CHECK(to_string(breaker_state::open) == "open");
    CHECK(to_string(breaker_state::half_open) == "half_open");
}

TEST_CASE("circuit_breaker: many threads hammering it keep it consistent", "[unit][retry]") {
    manual_clock c;
    circuit_breaker b(make(5, 10ms, 2));
    constexpr int threads = 8, iterations = 20000;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> allowed{0}, refused{0};
    std::thread ticker([&] {
        while (!stop.load()) {
            c.advance(1ms);
            std::this_thread::yield();
        }
    });
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < iterations; ++i) {
                const steady_time now = c.now();
                if (b.allow(now)) {
                    allowed.fetch_add(1);
                    // Mostly failing endpoint, with some successes: every transition gets exercised.
                    if ((i + t) % 7 == 0) b.on_success(c.now());
                    else b.on_failure(c.now());
                } else {
                    refused.fetch_add(1);
                }
                (void)b.state(c.now());
            }
        });
    for (auto& th : ts) th.join();
    stop = true;
    ticker.join();
    const auto s = b.stats(c.now());
    CHECK(allowed.load() + refused.load() == static_cast<std::uint64_t>(threads) * iterations);
    CHECK(s.rejected == refused.load());
    CHECK(s.times_opened > 0);
    CHECK(refused.load() > 0);
    // Whatever happened, it can still be closed and used.
    b.reset();
    CHECK(b.allow(c.now()));
}
