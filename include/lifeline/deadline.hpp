// lifeline — one deadline per operation, covering everything it does: health check, reconnects,
// backoff sleeps and every attempt. Each step asks how much time is left and shrinks its own
// timeout to fit, so the caller gets an answer by the deadline whatever fails on the way.
//
//   auto d = deadline::after(5s, clock.now());
//   driver_timeout = d.clamp(options.io_timeout, clock.now());
//   if (d.expired(clock.now())) ...  // report errc::deadline_exceeded
//
// A value type, pure: time is always passed in.
#ifndef LIFELINE_DEADLINE_HPP
#define LIFELINE_DEADLINE_HPP

#include <lifeline/clock.hpp>

#include <algorithm>
#include <chrono>
#include <limits>

namespace lifeline {

// A timeout in the whole seconds the MySQL C API takes (MYSQL_OPT_READ_TIMEOUT/WRITE_TIMEOUT are
// unsigned int seconds). `overshoot` is how much later than asked the driver's timeout can fire
// because of the rounding up: a caller for whom that is too coarse enforces the deadline another
// way (lifeline's watchdog does).
struct whole_seconds {
    unsigned seconds = 0;          // 0 means "no timeout", as it does for the C API
    duration overshoot{0};         // seconds - asked, in [0, 1s]; 1s when asked for <= 0
};

// d rounded up to whole seconds, at least 1 (0 s would mean "wait forever" to the driver).
inline whole_seconds to_whole_seconds(duration d) noexcept {
    using std::chrono::seconds;
    if (d.count() <= 0) return {1, seconds(1)};
    constexpr auto max_s = static_cast<seconds::rep>(std::numeric_limits<unsigned>::max());
    const seconds floor_s = std::chrono::duration_cast<seconds>(d);  // d > 0: truncation is floor
    seconds up = floor_s < d ? floor_s + seconds(1) : floor_s;
    if (up.count() > max_s) return {std::numeric_limits<unsigned>::max(), duration::zero()};
    return {static_cast<unsigned>(up.count()), up - d};
}

class deadline {
public:
    // d from now, saturating: a d too large to represent from `now` (e.g. milliseconds::max(),
    // whatever its unit) means no deadline; a d <= 0 is an already expired deadline. Never
    // overflows, so `call_options{std::chrono::milliseconds::max()}` simply means "no deadline".
    template <class Rep, class Period>
    static deadline after(std::chrono::duration<Rep, Period> d, steady_time now) noexcept {
        if (d.count() <= 0) return deadline(now);
        // Compare in the caller's unit first: converting a huge d to nanoseconds would overflow.
        using D = std::chrono::duration<Rep, Period>;
        const auto room = steady_time::max() - now;  // >= 0 for any real `now`
        if (std::chrono::duration_cast<D>(room) <= d) return none();
        return deadline(now + std::chrono::duration_cast<steady_time::duration>(d));
    }
    // At a given instant.
    static deadline until(steady_time t) noexcept { return deadline(t); }
    // Never expires.
    static deadline none() noexcept { return deadline(steady_time::max()); }

    bool is_none() const noexcept { return at_ == steady_time::max(); }
    // The instant (steady_time::max() for none()).
    steady_time at() const noexcept { return at_; }

    // Time left, never negative; duration::max() without a deadline.
    duration remaining(steady_time now) const noexcept {
        if (is_none()) return duration::max();
        return at_ > now ? std::chrono::duration_cast<duration>(at_ - now) : duration::zero();
    }
    bool expired(steady_time now) const noexcept { return !is_none() && now >= at_; }

    // min(d, remaining), never negative: shrinks a step's own timeout (connect, read, a backoff
    // sleep) to the time the operation has left.
    duration clamp(duration d, steady_time now) const noexcept {
        return std::max(duration::zero(), std::min(d, remaining(now)));
    }

    // The time left as a C API timeout: rounded up to whole seconds, at least 1; {0, 0} ("no
    // timeout") without a deadline. Rounding up never cuts an attempt short; the overshoot says by
    // how much the driver may outlive the deadline.
    whole_seconds remaining_seconds(steady_time now) const noexcept {
        if (is_none()) return {};
        return to_whole_seconds(remaining(now));
    }

    friend bool operator==(const deadline& a, const deadline& b) noexcept { return a.at_ == b.at_; }
    friend bool operator!=(const deadline& a, const deadline& b) noexcept { return a.at_ != b.at_; }
    // The earlier of two deadlines (an operation inside another keeps the tighter bound).
    friend deadline earliest(const deadline& a, const deadline& b) noexcept { return a.at_ <= b.at_ ? a : b; }

private:
    explicit deadline(steady_time at) noexcept : at_(at) {}
    steady_time at_;
};

}  // namespace lifeline

#endif  // LIFELINE_DEADLINE_HPP
