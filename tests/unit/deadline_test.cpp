// Deadline arithmetic and the clocks it runs on: remaining time never negative, clamping a
// step's timeout to the time left, whole-second C API timeouts rounded up, and the manual clock.
#include <lifeline/clock.hpp>
#include <lifeline/deadline.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <limits>
#include <thread>
#include <vector>

using namespace lifeline;
using namespace std::chrono_literals;

TEST_CASE("manual_clock: moves only when told; copies share one time line", "[unit][retry]") {
    manual_clock c;
    const steady_time t0 = c.now();
    CHECK(t0.time_since_epoch() == 1h);  // documented start
    CHECK(c.now() == t0);
    c.advance(250ms);
    CHECK(c.now() - t0 == 250ms);
    c.sleep_for(1s);  // a manual sleep is time passing
    CHECK(c.now() - t0 == 1250ms);
    c.advance(-5s);  // a steady clock never goes back
    CHECK(c.now() - t0 == 1250ms);
    manual_clock copy = c;
    copy.advance(1s);
    CHECK(c.now() - t0 == 2250ms);
    c.set(t0);
    CHECK(copy.now() == t0);
    manual_clock other(steady_time{} + 5s);
    CHECK(other.now().time_since_epoch() == 5s);
    CHECK(c.now() == t0);  // independent clocks stay independent
}

TEST_CASE("manual_clock: advancing from several threads loses no time", "[unit][retry]") {
    manual_clock c;
    const steady_time t0 = c.now();
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([c]() mutable {
            for (int k = 0; k < 10000; ++k) {
                c.advance(1us);
                (void)c.now();
            }
        });
    for (auto& t : ts) t.join();
    CHECK(c.now() - t0 == 40000us);
}

TEST_CASE("system_clock_source: steady, and sleeps for real", "[unit][retry]") {
    const steady_time a = system_clock_source::now();
    system_clock_source::sleep_for(2ms);
    system_clock_source::sleep_for(-1s);  // returns at once
    const steady_time b = system_clock_source::now();
    CHECK(b - a >= 2ms);
    CHECK(b - a < 5s);
}

namespace {
struct no_sleep {
    steady_time now() const { return {}; }
};
struct wrong_now {
    int now() const { return 0; }
    void sleep_for(duration) {}
};
}  // namespace

TEST_CASE("is_clock_v recognizes the Clock shape", "[unit][retry]") {
    STATIC_REQUIRE(is_clock_v<system_clock_source>);
    STATIC_REQUIRE(is_clock_v<manual_clock>);
    STATIC_REQUIRE_FALSE(is_clock_v<no_sleep>);
    STATIC_REQUIRE_FALSE(is_clock_v<wrong_now>);
    STATIC_REQUIRE_FALSE(is_clock_v<int>);
}

TEST_CASE("deadline: remaining time counts down and never goes negative", "[unit][retry]") {
    manual_clock c;
    const deadline d = deadline::after(3s, c.now());
    CHECK_FALSE(d.is_none());
    CHECK(d.at() == c.now() + 3s);
    CHECK(d.remaining(c.now()) == 3s);
    CHECK_FALSE(d.expired(c.now()));
    c.advance(2500ms);
    CHECK(d.remaining(c.now()) == 500ms);
    c.advance(500ms);
    CHECK(d.remaining(c.now()) == 0s);
    CHECK(d.expired(c.now()));  // exactly at the deadline: expired
    c.advance(1h);
    CHECK(d.remaining(c.now()) == 0s);
    CHECK(d.expired(c.now()));
    CHECK(deadline::until(c.now()).expired(c.now()));
}

TEST_CASE("deadline: none never expires; absurd or negative spans are handled", "[unit][retry]") {
    manual_clock c;
    const deadline n = deadline::none();
    CHECK(n.is_none());
    CHECK(n.remaining(c.now()) == duration::max());
    CHECK_FALSE(n.expired(c.now()));
    CHECK_FALSE(n.expired(steady_time::max()));
    CHECK(n.clamp(5s, c.now()) == 5s);
    CHECK(deadline::after(duration::max(), c.now()).is_none());  // would overflow: no deadline
    CHECK(deadline::after(duration::max() - 1s, c.now()).is_none());
    const deadline past = deadline::after(-1s, c.now());
    CHECK(past.expired(c.now()));
    CHECK(past.remaining(c.now()) == 0s);
    CHECK(deadline::after(0s, c.now()).expired(c.now()));
}

TEST_CASE("deadline: clamp shrinks a step's timeout to the time left", "[unit][retry]") {
    manual_clock c;
    const deadline d = deadline::after(2s, c.now());
    CHECK(d.clamp(30s, c.now()) == 2s);       // io_timeout 30 s, 2 s left: 2 s
    CHECK(d.clamp(500ms, c.now()) == 500ms);  // a shorter step keeps its own bound
    CHECK(d.clamp(-1s, c.now()) == 0s);       // never negative
    c.advance(1900ms);
    CHECK(d.clamp(5s, c.now()) == 100ms);
    c.advance(1s);
    CHECK(d.clamp(5s, c.now()) == 0s);
}

TEST_CASE("deadline: earliest and equality", "[unit][retry]") {
    manual_clock c;
    const deadline a = deadline::after(1s, c.now()), b = deadline::after(2s, c.now());
    CHECK(earliest(a, b) == a);
    CHECK(earliest(b, a) == a);
    CHECK(earliest(deadline::none(), b) == b);
    CHECK(a != b);
    CHECK(deadline::none() == deadline::none());
}

TEST_CASE("to_whole_seconds: rounds up, at least 1, and says by how much it overshoots", "[unit][retry]") {
    struct row {
        duration in;
        unsigned seconds;
        duration overshoot;
    };
    const row rows[] = {
        {1ns, 1, 1s - 1ns},
        {300ms, 1, 700ms},
        {999ms, 1, 1ms},
        {1s, 1, 0s},
        {1s + 1ns, 2, 1s - 1ns},
        {1500ms, 2, 500ms},
        {2s, 2, 0s},
        {59s + 999ms, 60, 1ms},
        {0s, 1, 1s},   // 0 would mean "no timeout" to the driver
        {-3s, 1, 1s},  // already late: the smallest timeout there is
    };
    for (const row& r : rows) {
        INFO(r.in.count() << " ns");
        const whole_seconds w = to_whole_seconds(r.in);
        CHECK(w.seconds == r.seconds);
        CHECK(w.overshoot == r.overshoot);
    }
    const whole_seconds huge = to_whole_seconds(duration::max());
    CHECK(huge.seconds == std::numeric_limits<unsigned>::max());
}

TEST_CASE("deadline: remaining_seconds gives the C API timeout for the time left", "[unit][retry]") {
    manual_clock c;
    const deadline d = deadline::after(2300ms, c.now());
    whole_seconds w = d.remaining_seconds(c.now());
    CHECK(w.seconds == 3);
    CHECK(w.overshoot == 700ms);  // a caller that cannot accept 700 ms late enforces it otherwise
    c.advance(2s);
    w = d.remaining_seconds(c.now());
    CHECK(w.seconds == 1);
    CHECK(w.overshoot == 700ms);
    c.advance(1s);
    w = d.remaining_seconds(c.now());
    CHECK(w.seconds == 1);  // expired: still never 0 ("forever")
    const whole_seconds none = deadline::none().remaining_seconds(c.now());
    CHECK(none.seconds == 0);  // no deadline: no timeout
    CHECK(none.overshoot == 0s);
}
