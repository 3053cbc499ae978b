// The process-wide retry budget: a floor, a ratio of requests, refusal during a long outage,
// recovery once the window has passed, and consistency under concurrent use.
#include <lifeline/clock.hpp>
#include <lifeline/retry_budget.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

using namespace lifeline;
using namespace std::chrono_literals;

namespace {

retry_budget_policy make(double ratio, unsigned min_per_second, duration window) {
    retry_budget_policy p;
    p.ratio = ratio;
    p.min_retries_per_second = min_per_second;
    p.window = window;
    return p;
}

int grant_all(retry_budget& b, steady_time now, int tries) {
    int granted = 0;
    for (int i = 0; i < tries; ++i)
        if (b.try_acquire_retry(now)) ++granted;
    return granted;
}

}  // namespace

TEST_CASE("retry_budget_policy: defaults and validation", "[unit][retry]") {
    retry_budget_policy p;
    CHECK(p.ratio == 0.2);
    CHECK(p.min_retries_per_second == 3);
    CHECK(p.window == 10s);
    CHECK(p.validate().empty());
    p.ratio = -0.1;
    CHECK_THAT(p.validate(), Catch::Contains("retry_budget_policy.ratio"));
    p.ratio = std::nan("");
    CHECK_THAT(p.validate(), Catch::Contains("retry_budget_policy.ratio"));
    p = {};
    p.window = 0s;
    CHECK_THAT(p.validate(), Catch::Contains("retry_budget_policy.window must be > 0"));
    p = {};
    p.ratio = 0;
    p.min_retries_per_second = 0;  // "never retry" is a valid, if strict, choice
    CHECK(p.validate().empty());
}

TEST_CASE("retry_budget: the floor allows min_retries_per_second x window with no traffic", "[unit][retry]") {
    manual_clock c;
    retry_budget b(make(0.2, 3, 10s));
    CHECK(grant_all(b, c.now(), 100) == 30);
    const auto s = b.stats(c.now());
    CHECK(s.retries == 30);
    CHECK(s.requests == 0);
    CHECK(s.limit == Approx(30.0));
    CHECK(s.granted == 30);
    CHECK(s.denied == 70);
}

TEST_CASE("retry_budget: retries are a fraction of requests in the window", "[unit][retry]") {
    manual_clock c;
    retry_budget b(make(0.2, 0, 10s));
    CHECK_FALSE(b.try_acquire_retry(c.now()));  // no requests, no floor: nothing
    for (int i = 0; i < 100; ++i) b.record_request(c.now());
    CHECK(grant_all(b, c.now(), 100) == 20);
    for (int i = 0; i < 10; ++i) b.record_request(c.now());
    CHECK(grant_all(b, c.now(), 100) == 2);  // 110 requests: 22 retries in all
    CHECK(b.stats(c.now()).requests == 110);

    retry_budget tenth(make(0.1, 0, 10s));
    for (int i = 0; i < 10; ++i) tenth.record_request(c.now());
    CHECK(grant_all(tenth, c.now(), 5) == 1);  // 0.1 x 10 is exactly 1, not 0
}

TEST_CASE("retry_budget: blocks retries during a long outage and recovers after the window",
          "[unit][retry]") {
    manual_clock c;
    const auto p = make(0.2, 1, 10s);
    retry_budget b(p);
    // Healthy traffic: 50 requests/s for a minute, no retries wanted.
    for (int s = 0; s < 60; ++s) {
        for (int i = 0; i < 50; ++i) b.record_request(c.now());
        c.advance(1s);
    }
    // Outage: every request fails and would retry 3 times (100 requests/s for 2 minutes).
    std::uint64_t requests = 0, wanted = 0, granted = 0;
    std::vector<std::uint64_t> granted_per_second;
    for (int s = 0; s < 120; ++s) {
        std::uint64_t this_second = 0;
        for (int i = 0; i < 100; ++i) {
            c.advance(10ms);
            b.record_request(c.now());
            ++requests;
            for (int r = 0; r < 3; ++r) {
                ++wanted;
                if (!b.try_acquire_retry(c.now())) break;  // the loop fails fast
                const auto st = b.stats(c.now());       // a grant never overdraws the window
                REQUIRE(static_cast<double>(st.retries) <= st.limit + 1e-9);
                ++granted;
                ++this_second;
            }
        }
        granted_per_second.push_back(this_second);
    }
    INFO("granted " << granted << " of " << wanted << " wanted retries for " << requests << " requests");
    // Without a budget the outage would triple the load (300 retries/s); with it, about 20 % + floor.
    CHECK(static_cast<double>(granted) <= 0.2 * static_cast<double>(requests) * 1.1 + 120.0 * 1.0 + 50);
    CHECK(granted >= static_cast<std::uint64_t>(0.15 * static_cast<double>(requests)));
    CHECK(b.stats(c.now()).denied > 0);
    // Steady state of the outage: about 0.2 x 1000 + 10 retries per 10 s window (without a
    // budget: 3000). They come in bursts as old retries leave the window; any 10 s holds no more.
    for (std::size_t s = 10; s + 10 <= granted_per_second.size(); ++s) {
        std::uint64_t in_window = 0;
        for (std::size_t k = s; k < s + 10; ++k) in_window += granted_per_second[k];
        INFO("seconds " << s << ".." << s + 9);
        CHECK(static_cast<double>(in_window) <= 0.2 * 1000 + 10 + 25);
        CHECK(static_cast<double>(in_window) >= 0.2 * 1000 - 25);
    }

    // The outage ends: traffic is healthy again, and after a window the budget is full again
    // (nothing of the outage's retries is still held against it).
    for (int s = 0; s < 10; ++s) {
        for (int i = 0; i < 50; ++i) b.record_request(c.now());
        c.advance(1s);
    }
    c.advance(1s);
    const auto st = b.stats(c.now());
    CHECK(st.retries == 0);
    CHECK(st.requests <= 500);
    CHECK(st.requests >= 400);  // 0.9..1.0 of the window is counted
    CHECK(b.try_acquire_retry(c.now()));
}

TEST_CASE("retry_budget: exhausted with no traffic at all, it recovers when the window passes",
          "[unit][retry]") {
    manual_clock c;
    retry_budget b(make(0.2, 0, 2s));
    for (int i = 0; i < 10; ++i) b.record_request(c.now());
    CHECK(grant_all(b, c.now(), 10) == 2);
    CHECK_FALSE(b.try_acquire_retry(c.now()));
    c.advance(2s + 1ms);  // the requests age out with the retries: still nothing
    CHECK_FALSE(b.try_acquire_retry(c.now()));
    b.record_request(c.now());
    for (int i = 0; i < 9; ++i) b.record_request(c.now());
    CHECK(grant_all(b, c.now(), 10) == 2);  // the old retries no longer count
}

TEST_CASE("retry_budget: the window slides in tenths", "[unit][retry]") {
    manual_clock c;
    retry_budget b(make(0.5, 0, 10s));
    c.set(steady_time{} + 100s);  // on a sub-window boundary
    for (int i = 0; i < 10; ++i) b.record_request(c.now());
    c.advance(5s);
    for (int i = 0; i < 10; ++i) b.record_request(c.now());
    CHECK(b.stats(c.now()).requests == 20);
    c.advance(4999ms);  // t = 9.999 s after the first batch: still in the window
    CHECK(b.stats(c.now()).requests == 20);
    c.advance(1ms);  // the first batch's sub-window leaves the window
    CHECK(b.stats(c.now()).requests == 10);
    c.advance(5s);
    CHECK(b.stats(c.now()).requests == 0);
    // A caller with a stale timestamp (older than a rotated slot) is still counted.
    b.record_request(c.now() - 30s);
    CHECK(b.stats(c.now()).requests <= 1);
}

TEST_CASE("retry_budget: works before the clock's epoch too (floor division)", "[unit][retry]") {
    manual_clock c(steady_time{} - 3s);
    retry_budget b(make(1.0, 0, 1s));
    b.record_request(c.now());
    CHECK(b.try_acquire_retry(c.now()));
    CHECK_FALSE(b.try_acquire_retry(c.now()));
    c.advance(1s);
    CHECK(b.stats(c.now()).requests == 0);
}

TEST_CASE("retry_budget: concurrent use never overdraws the budget", "[unit][retry]") {
    manual_clock c;
    retry_budget b(make(0.2, 0, 1s));
    constexpr int threads = 8, per_thread = 20000;
    std::atomic<std::uint64_t> granted{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> ts;
    // One thread moves time slowly, so slots rotate while the others work.
    std::thread ticker([&] {
        while (!stop.load()) {
            c.advance(1ms);
            (void)b.stats(c.now());
            std::this_thread::yield();
        }
    });
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i) {
                b.record_request(c.now());
                if (i % 2 == 0 && b.try_acquire_retry(c.now())) granted.fetch_add(1);
            }
        });
    for (auto& t : ts) t.join();
    stop = true;
    ticker.join();
    const auto s = b.stats(c.now());
    CHECK(s.granted == granted.load());
    CHECK(s.granted + s.denied == static_cast<std::uint64_t>(threads) * per_thread / 2);
    // Whatever the interleaving, grants never exceeded 20 % of the requests seen.
    CHECK(static_cast<double>(s.granted) <= 0.2 * threads * per_thread + 1);
    CHECK(s.granted > 0);
}

TEST_CASE("retry_budget: concurrent use at a fixed instant grants exactly the budget", "[unit][retry]") {
    manual_clock c;
    retry_budget b(make(0.25, 0, 10s));
    constexpr int threads = 8, per_thread = 1000;
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i) b.record_request(c.now());
        });
    for (auto& t : ts) t.join();
    std::atomic<int> granted{0};
    ts.clear();
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i)
                if (b.try_acquire_retry(c.now())) granted.fetch_add(1);
        });
    for (auto& t : ts) t.join();
    CHECK(granted.load() == threads * per_thread / 4);  // no relaxed add lost, no overdraw
}
