// Backoff: exact sequences without jitter, jitter bounds (statistically, generous), the cap,
// reproducibility from a seed, and no overflow at absurd attempt counts.
#include <lifeline/backoff.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <vector>

using namespace lifeline;
using namespace std::chrono_literals;

namespace {

backoff_policy make(duration initial, duration max, double multiplier, jitter kind) {
    backoff_policy p;
    p.initial = initial;
    p.max = max;
    p.multiplier = multiplier;
    p.kind = kind;
    return p;
}

double ns(duration d) { return static_cast<double>(d.count()); }

}  // namespace

TEST_CASE("backoff_policy: the defaults are valid and documented", "[unit][retry]") {
    backoff_policy p;
    CHECK(p.initial == 50ms);
    CHECK(p.max == 2s);
    CHECK(p.multiplier == 2.0);
    CHECK(p.kind == jitter::full);
    CHECK(p.validate().empty());
}

TEST_CASE("backoff_policy: validate names the bad field and the fix", "[unit][retry]") {
    auto why = [](backoff_policy p) { return p.validate(); };
    backoff_policy p;
    p.initial = 0ms;
    CHECK_THAT(why(p), Catch::Contains("backoff_policy.initial must be > 0"));
    p = {};
    p.initial = -5ms;
    CHECK_THAT(why(p), Catch::Contains("backoff_policy.initial"));
    p = {};
    p.max = 10ms;  // below initial
    CHECK_THAT(why(p), Catch::Contains("backoff_policy.max must be >= backoff_policy.initial"));
    p = {};
    p.multiplier = 0.5;
    CHECK_THAT(why(p), Catch::Contains("backoff_policy.multiplier"));
    p.multiplier = std::nan("");
    CHECK_THAT(why(p), Catch::Contains("backoff_policy.multiplier"));
    p.multiplier = HUGE_VAL;
    CHECK_THAT(why(p), Catch::Contains("backoff_policy.multiplier"));
    p = {};
    p.kind = static_cast<jitter>(7);
    CHECK_THAT(why(p), Catch::Contains("backoff_policy.kind"));
    p = {};
    p.initial = 0ms;
    p.multiplier = 0;
    CHECK_THAT(why(p), Catch::Contains("initial") && Catch::Contains("multiplier"));  // all problems at once
    p = {};
    p.multiplier = 1.0;  // constant backoff is fine
    CHECK(why(p).empty());
}

TEST_CASE("backoff: without jitter the sequence is initial * multiplier^n, capped", "[unit][retry]") {
    backoff b(make(50ms, 2s, 2.0, jitter::none), 1);
    std::vector<duration> expected = {50ms, 100ms, 200ms, 400ms, 800ms, 1600ms, 2s, 2s, 2s};
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("attempt " << i);
        CHECK(b.attempt() == i);
        CHECK(b.next() == expected[i]);
    }
    CHECK(b.attempt() == expected.size());
    b.reset();
    CHECK(b.attempt() == 0);
    CHECK(b.next() == 50ms);
    CHECK(b.next() == 100ms);

    backoff constant(make(30ms, 30ms, 1.0, jitter::none), 1);
    for (int i = 0; i < 5; ++i) CHECK(constant.next() == 30ms);

    backoff fractional(make(100ms, 1s, 1.5, jitter::none), 1);
    CHECK(fractional.next() == 100ms);
    CHECK(fractional.next() == 150ms);
    CHECK(fractional.next() == 225ms);
}

TEST_CASE("backoff: full jitter stays in [0, min(max, initial * 2^n)] and spreads uniformly", "[unit][retry]") {
    const auto p = make(50ms, 2s, 2.0, jitter::full);
    backoff b(p, 42);
    // Per attempt index n, over many operations (reset between them).
    constexpr int runs = 4000;
    constexpr int per_run = 8;
    std::vector<std::vector<double>> samples(per_run);
    for (int r = 0; r < runs; ++r) {
        b.reset();
        for (int n = 0; n < per_run; ++n) samples[static_cast<std::size_t>(n)].push_back(ns(b.next()));
    }
    for (int n = 0; n < per_run; ++n) {
        const double ceiling = std::min(ns(2s), ns(50ms) * std::pow(2.0, n));
        const auto& s = samples[static_cast<std::size_t>(n)];
        INFO("attempt " << n << " ceiling " << ceiling);
        const double lo = *std::min_element(s.begin(), s.end());
        const double hi = *std::max_element(s.begin(), s.end());
        double mean = 0;
        for (double v : s) mean += v;
        mean /= static_cast<double>(s.size());
        CHECK(lo >= 0);
        CHECK(hi <= ceiling);
        CHECK(lo < 0.05 * ceiling);  // reaches both ends of the range
        CHECK(hi > 0.95 * ceiling);
        CHECK(mean > 0.45 * ceiling);  // uniform: mean ceiling/2 (sigma ≈ 0.005 * ceiling here)
        CHECK(mean < 0.55 * ceiling);
    }
}

TEST_CASE("backoff: full jitter at the cap is uniform over [0, max]", "[unit][retry]") {
    backoff b(make(1s, 1s, 2.0, jitter::full), 7);
    constexpr int n = 20000;
    int buckets[10] = {};
    for (int i = 0; i < n; ++i) {
        const double v = ns(b.next()) / ns(1s);
        REQUIRE(v >= 0.0);
        REQUIRE(v <= 1.0);
        ++buckets[std::min(9, static_cast<int>(v * 10))];
    }
    for (int k = 0; k < 10; ++k) {
        INFO("decile " << k << ": " << buckets[k]);
        CHECK(buckets[k] > n / 10 * 0.8);  // expected 2000 each, sigma ≈ 42
        CHECK(buckets[k] < n / 10 * 1.2);
    }
}

TEST_CASE("backoff: decorrelated jitter stays in [initial, max] and within 3x the previous delay",
          "[unit][retry]") {
    const auto p = make(50ms, 2s, 2.0, jitter::decorrelated);
    backoff b(p, 99);
    duration prev = p.initial;
    double sum = 0;
    int at_cap_half = 0;
    std::set<duration::rep> distinct;
    constexpr int n = 20000;
    for (int i = 0; i < n; ++i) {
        const duration d = b.next();
        REQUIRE(d >= p.initial);
        REQUIRE(d <= p.max);
        REQUIRE(d <= std::max(p.initial, prev * 3));
        if (d > p.max / 2) ++at_cap_half;
        sum += ns(d);
        distinct.insert(d.count());
        prev = d;
    }
    CHECK(distinct.size() > n / 2);        // really random
    CHECK(at_cap_half > n / 10);           // it climbs to the cap...
    CHECK(sum / n > ns(200ms));            // ...and lives mostly well above initial
    CHECK(sum / n < ns(2s));
    b.reset();
    const duration first = b.next();  // after reset: uniform[initial, 3 * initial]
    CHECK(first >= 50ms);
    CHECK(first <= 150ms);
}

TEST_CASE("backoff: decorrelated jitter's first delays grow from initial", "[unit][retry]") {
    // The first delay of an operation is in [initial, 3 * initial], over many seeds.
    const auto p = make(100ms, 10s, 2.0, jitter::decorrelated);
    double mean = 0;
    for (std::uint64_t seed = 0; seed < 2000; ++seed) {
        backoff b(p, seed);
        const duration d = b.next();
        REQUIRE(d >= 100ms);
        REQUIRE(d <= 300ms);
        mean += ns(d);
    }
    mean /= 2000;
    CHECK(mean > ns(180ms));  // uniform[100, 300]: 200 ms
    CHECK(mean < ns(220ms));
}

TEST_CASE("backoff: the same seed gives the same delays; different seeds differ", "[unit][retry]") {
    for (jitter k : {jitter::full, jitter::decorrelated}) {
        INFO(to_string(k));
        const auto p = make(10ms, 5s, 2.0, k);
        backoff a(p, 12345), b(p, 12345), c(p, 54321);
        int same_as_c = 0;
        for (int i = 0; i < 50; ++i) {
            const duration x = a.next();
            CHECK(x == b.next());
            if (x == c.next()) ++same_as_c;
        }
        CHECK(same_as_c < 5);
    }
    // Unseeded backoffs (seeded from address and time) do not march in step.
    const auto p = make(1s, 1s, 2.0, jitter::full);
    backoff u1(p), u2(p);
    int equal = 0;
    for (int i = 0; i < 20; ++i)
        if (u1.next() == u2.next()) ++equal;
    CHECK(equal < 5);
}

TEST_CASE("backoff: no overflow at attempt 1000 and beyond, whatever the policy", "[unit][retry]") {
    struct row {
        duration initial, max;
        double multiplier;
    };
    const row rows[] = {
        {50ms, 2s, 2.0},
        {1ns, duration::max(), 2.0},
        {1ns, duration::max(), 1e300},
        {1h, duration::max(), 10.0},
        {duration::max(), duration::max(), 2.0},
        {1ms, 24h, 1.0000001},
    };
    for (const row& r : rows) {
        for (jitter k : {jitter::none, jitter::full, jitter::decorrelated}) {
            INFO("initial " << r.initial.count() << " max " << r.max.count() << " mult " << r.multiplier << " "
                            << to_string(k));
            backoff b(make(r.initial, r.max, r.multiplier, k), 3);
            duration last{};
            for (int i = 0; i < 1000; ++i) {
                last = b.next();
                REQUIRE(last >= duration::zero());
                REQUIRE(last <= r.max);
            }
            CHECK(b.attempt() == 1000);
            if (k == jitter::none && r.multiplier >= 2.0) CHECK(last == r.max);  // saturated at the cap
        }
    }
    // A million more: still capped, attempt() still counting.
    backoff b(make(50ms, 2s, 2.0, jitter::none), 1);
    for (int i = 0; i < 1'000'000; ++i) b.next();
    CHECK(b.next() == 2s);
    CHECK(b.attempt() == 1'000'001u);
}

TEST_CASE("backoff: never exceeds max even for an unvalidated policy", "[unit][retry]") {
    // initial > max fails validate(); the object still respects the cap.
    for (jitter k : {jitter::none, jitter::full, jitter::decorrelated}) {
        backoff b(make(5s, 1s, 2.0, k), 5);
        for (int i = 0; i < 100; ++i) REQUIRE(b.next() <= 1s);
    }
}
