// lifeline — a per-endpoint circuit breaker: after repeated connection failures, fail fast for a
// while instead of adding load (and making every caller wait for its own timeout), then let a few
// probes through to see whether the endpoint is back.
//
//   closed    --failure_threshold consecutive failures-->  open
//   open      --open_for elapsed-->                         half_open   (lazily, on the next call)
//   half_open --a probe succeeds-->                         closed
//   half_open --a probe fails-->                            open        (for another open_for)
//
// Only connection-level failures should be reported (connect refused, handshake lost, the server
// going away); a syntax error or a deadlock says nothing about the endpoint. The caller decides.
//
// Thread-safe: allow() on a closed breaker and on_success() with no failures counted are
// lock-free reads (the common case); transitions take a tiny mutex. Time is passed in.
#ifndef LIFELINE_CIRCUIT_BREAKER_HPP
#define LIFELINE_CIRCUIT_BREAKER_HPP

#include <lifeline/clock.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace lifeline {

struct circuit_breaker_policy {
    unsigned failure_threshold = 5;               // consecutive failures that open it
    duration open_for = std::chrono::seconds(1);  // how long it stays open before probing
    unsigned half_open_probes = 1;                // calls let through while half-open

    // Empty if usable; else each problem, naming the field and the fix ("...; " separated).
    std::string validate() const {
        std::string why;
        if (failure_threshold == 0) why += "circuit_breaker_policy.failure_threshold must be >= 1 (e.g. 5); ";
        if (open_for.count() <= 0) why += "circuit_breaker_policy.open_for must be > 0 (e.g. 1s); ";
        if (half_open_probes == 0) why += "circuit_breaker_policy.half_open_probes must be >= 1; ";
        return why;
    }
};

enum class breaker_state : std::uint8_t { closed, open, half_open };

constexpr std::string_view to_string(breaker_state s) noexcept {
    switch (s) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
    }
    return "unknown";
}

struct circuit_breaker_stats {
    breaker_state state = breaker_state::closed;
    unsigned consecutive_failures = 0;
    std::uint64_t times_opened = 0;  // closed/half_open -> open transitions
    std::uint64_t rejected = 0;      // allow() calls answered false
};

class circuit_breaker {
public:
    explicit circuit_breaker(const circuit_breaker_policy& p = {}) : policy_(p) {}

    circuit_breaker(const circuit_breaker&) = delete;
    circuit_breaker& operator=(const circuit_breaker&) = delete;

    // May a call (a connect) go ahead now? While half-open, true for at most half_open_probes
    // calls; if none of them reports back within open_for, another batch is let through, so a
    // probe whose caller vanished cannot keep the breaker shut for good.
    bool allow(steady_time now) {
        if (state_.load(std::memory_order_acquire) == breaker_state::closed) return true;
        std::lock_guard<std::mutex> lock(mutex_);
        advance(now);
        switch (state_.load(std::memory_order_relaxed)) {
        case breaker_state::closed:
            return true;
        case breaker_state::half_open:
            if (probes_ > 0 && now - probes_since_ >= policy_.open_for) probes_ = 0;  // probes lost
            if (probes_ < policy_.half_open_probes) {
                if (probes_++ == 0) probes_since_ = now;
                return true;
            }
            break;
        case breaker_state::open:
            break;
        }
        ++rejected_;
        return false;
    }

    // A call reached the endpoint. Closes the breaker from any state: even a success from a call
    // let through before it opened proves the endpoint accepts connections again.
    void on_success(steady_time /*now*/) {
        if (state_.load(std::memory_order_acquire) == breaker_state::closed &&
            failures_.load(std::memory_order_relaxed) == 0)
            return;
        std::lock_guard<std::mutex> lock(mutex_);
        failures_.store(0, std::memory_order_relaxed);
        probes_ = 0;
        state_.store(breaker_state::closed, std::memory_order_release);
    }

    // A connection-level failure. Late failures of calls let through before the breaker opened
    // do not extend the open period.
    void on_failure(steady_time now) {
        std::lock_guard<std::mutex> lock(mutex_);
        advance(now);
        switch (state_.load(std::memory_order_relaxed)) {
        case breaker_state::closed: {
            const unsigned f = failures_.load(std::memory_order_relaxed) + 1;
            failures_.store(f, std::memory_order_relaxed);
            if (f >= policy_.failure_threshold) open(now);
            break;
        }
        case breaker_state::half_open:
            failures_.store(failures_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            open(now);  // the probe failed: back to failing fast
            break;
        case breaker_state::open:
            break;
        }
    }

    // The state at `now` (an open breaker whose open_for has passed reads half_open).
    breaker_state state(steady_time now) {
        if (state_.load(std::memory_order_acquire) == breaker_state::closed) return breaker_state::closed;
        std::lock_guard<std::mutex> lock(mutex_);
        advance(now);
        return state_.load(std::memory_order_relaxed);
    }

    circuit_breaker_stats stats(steady_time now) {
        std::lock_guard<std::mutex> lock(mutex_);
        advance(now);
        circuit_breaker_stats s;
        s.state = state_.load(std::memory_order_relaxed);
        s.consecutive_failures = failures_.load(std::memory_order_relaxed);
        s.times_opened = times_opened_;
        s.rejected = rejected_;
        return s;
    }

    // Back to closed with no failures counted (e.g. an operator knows the endpoint is back).
    void reset() {
        std::lock_guard<std::mutex> lock(mutex_);
        failures_.store(0, std::memory_order_relaxed);
        probes_ = 0;
        state_.store(breaker_state::closed, std::memory_order_release);
    }

    const circuit_breaker_policy& policy() const noexcept { return policy_; }

private:
    // With mutex_ held.
    void open(steady_time now) {
        opened_at_ = now;
        probes_ = 0;
        ++times_opened_;
        state_.store(breaker_state::open, std::memory_order_release);
    }
    // With mutex_ held: open -> half_open once open_for has passed.
    void advance(steady_time now) {
        if (state_.load(std::memory_order_relaxed) == breaker_state::open && now - opened_at_ >= policy_.open_for) {
            probes_ = 0;
            state_.store(breaker_state::half_open, std::memory_order_release);
        }
    }

    circuit_breaker_policy policy_;
    mutable std::mutex mutex_;
    std::atomic<breaker_state> state_{breaker_state::closed};  // written under mutex_, read lock-free
    std::atomic<unsigned> failures_{0};                        // written under mutex_, read lock-free
    unsigned probes_ = 0;                                      // half-open probes let through
    steady_time probes_since_{};                               // when the current batch began
    steady_time opened_at_{};
    std::uint64_t times_opened_ = 0;
    std::uint64_t rejected_ = 0;
};

}  // namespace lifeline

#endif  // LIFELINE_CIRCUIT_BREAKER_HPP
