// lifeline — time as the retry machinery sees it: an injectable steady clock.
//
// Every building block (deadline, backoff, retry_budget, circuit_breaker, health_tracker) takes
// `now` as an argument instead of reading a clock, so it is a pure function of its inputs and is
// tested without sleeping. The retry loop reads time and sleeps through one Clock object:
//
//   Clock: a copyable type with
//     steady_time now()             monotonic: never goes back between calls
//     void sleep_for(duration d)    blocks for d (d <= 0: returns at once); a test clock advances
//                                   its time instead of blocking, so backoff costs no wall time
//
// `system_clock_source` (std::chrono::steady_clock, the default) and `manual_clock` (tests) are
// Clocks; `is_clock_v<T>` checks the shape at compile time.
#ifndef LIFELINE_CLOCK_HPP
#define LIFELINE_CLOCK_HPP

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>

namespace lifeline {

using steady_time = std::chrono::steady_clock::time_point;
using duration = std::chrono::nanoseconds;

// The default Clock: the process's steady clock and a real sleep.
struct system_clock_source {
    static steady_time now() noexcept { return std::chrono::steady_clock::now(); }
    static void sleep_for(duration d) {
        if (d.count() > 0) std::this_thread::sleep_for(d);
    }
};

// A Clock that moves only when told to. Copies share one time line, so a connection holding a
// copy sees what the test does to the original (and its backoff sleeps advance the test's time).
// Thread-safe: the time is one atomic.
class manual_clock {
public:
    // Starts at a fixed point well after the clock's epoch, so code that treats a zero
    // time_point as "never" cannot pass by accident.
    manual_clock() : manual_clock(steady_time{} + std::chrono::hours(1)) {}
    explicit manual_clock(steady_time start)
        : ticks_(std::make_shared<std::atomic<rep>>(start.time_since_epoch().count())) {}

    steady_time now() const noexcept {
        return steady_time(steady_time::duration(ticks_->load(std::memory_order_acquire)));
    }
    // Moves time forward by d. A negative d is ignored: a steady clock never goes back.
    void advance(duration d) noexcept {
        const auto ticks = std::chrono::duration_cast<steady_time::duration>(d).count();
        if (ticks > 0) ticks_->fetch_add(ticks, std::memory_order_acq_rel);
    }
    // Jumps to t (forwards or, for tests that want it, backwards).
    void set(steady_time t) noexcept { ticks_->store(t.time_since_epoch().count(), std::memory_order_release); }
    // A manual clock's sleep is time passing: it returns at once.
    void sleep_for(duration d) noexcept { advance(d); }

private:
    using rep = steady_time::duration::rep;
    std::shared_ptr<std::atomic<rep>> ticks_;
};

namespace detail {

template <class C, class = void>
struct is_clock : std::false_type {};

template <class C>
struct is_clock<C, std::void_t<decltype(std::declval<C&>().sleep_for(std::declval<duration>()))>>
    : std::is_convertible<decltype(std::declval<C&>().now()), steady_time> {};

}  // namespace detail

// True if C has `steady_time now()` and `sleep_for(duration)`.
template <class C>
inline constexpr bool is_clock_v = detail::is_clock<C>::value;

}  // namespace lifeline

#endif  // LIFELINE_CLOCK_HPP
