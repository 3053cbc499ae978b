// lifeline — a process-wide retry budget: retries stay a fraction of requests, so an outage does
// not multiply the load on a server that is already struggling (as Envoy's retry budget, Finagle's
// RetryBudget and failsafe-go's budget do; Polly and resilience4j have none).
//
// Over a sliding window, a retry is granted while
//     retries_in_window + 1 <= ratio * requests_in_window + min_retries_per_second * window_seconds
// The window is a ring of 10 sub-windows: counts older than the window drop out as time passes,
// so once an outage ends (or ages out) the budget refills by itself. The window therefore covers
// between 0.9 and 1.0 x `window` of history. A granted retry counts against the budget until it
// leaves the window too (as in Finagle): in a long outage the grants come in bursts as old ones
// age out, but no `window` ever holds more than the rule allows. Backoff jitter spreads a burst.
//
// Thread-safe. record_request() is on every operation's path: one acquire load and one relaxed
// atomic add to a counter of the calling CPU's own (a counter every thread wrote would move
// between CPUs on each operation), except once per sub-window when it rotates a slot under a
// tiny mutex.
// try_acquire_retry() is on the retry path and takes the mutex, so concurrent retries cannot
// overdraw the budget. Time is passed in (clock-injectable).
#ifndef LIFELINE_RETRY_BUDGET_HPP
#define LIFELINE_RETRY_BUDGET_HPP

#include <lifeline/clock.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>

#if defined(__linux__)
#include <sched.h>
#endif

namespace lifeline {

struct retry_budget_policy {
    double ratio = 0.2;                          // retries allowed per request in the window (Envoy: 20 %)
    unsigned min_retries_per_second = 3;         // floor, so a quiet service can still retry (Envoy: 3)
    duration window = std::chrono::seconds(10);  // how far back requests and retries count (Finagle: 10 s)

    // Empty if usable; else each problem, naming the field and the fix ("...; " separated).
    std::string validate() const {
        std::string why;
        if (!(ratio >= 0.0) || !std::isfinite(ratio))
            why += "retry_budget_policy.ratio must be a finite number >= 0 (e.g. 0.2; 0 allows only the floor); ";
        if (window.count() <= 0) why += "retry_budget_policy.window must be > 0 (e.g. 10s); ";
        return why;
    }
};

struct retry_budget_stats {
    std::uint64_t requests = 0;  // requests in the window
    std::uint64_t retries = 0;   // retries granted in the window
    double limit = 0;            // retries the window allows now
    std::uint64_t granted = 0;   // retries granted since construction
    std::uint64_t denied = 0;    // retries refused since construction
};

class retry_budget {
public:
    static constexpr std::int64_t slots = 10;

    explicit retry_budget(const retry_budget_policy& p = {})
        : policy_(p), slot_ticks_(std::max<std::int64_t>(1, to_ticks(p.window) / slots)) {}

    retry_budget(const retry_budget&) = delete;
    retry_budget& operator=(const retry_budget&) = delete;

    // Counts one operation (not its retries). Call once per operation, before its first attempt.
    void record_request(steady_time now) noexcept {
        const std::int64_t e = epoch_of(now);
        slot& s = slot_for(e);
        std::atomic<std::uint64_t>& n = s.requests[stripe_of_caller()].n;
        if (s.epoch.load(std::memory_order_acquire) == e) {
            n.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        std::lock_guard<std::mutex> lock(mutex_);
        rotate(s, e);
        n.fetch_add(1, std::memory_order_relaxed);
    }

    // Takes one retry from the budget; false means "do not retry: fail fast".
    bool try_acquire_retry(steady_time now) noexcept {
        const std::int64_t e = epoch_of(now);
        std::lock_guard<std::mutex> lock(mutex_);
        slot& s = rotate(slot_for(e), e);
        const counts c = sum(e);
        if (static_cast<double>(c.retries) + 1.0 > limit(c.requests) + 1e-9) {
            ++denied_;
            return false;
        }
        s.retries.fetch_add(1, std::memory_order_relaxed);
        ++granted_;
        return true;
    }

    retry_budget_stats stats(steady_time now) const {
        const std::int64_t e = epoch_of(now);
        std::lock_guard<std::mutex> lock(mutex_);
        const counts c = sum(e);
        retry_budget_stats st;
        st.requests = c.requests;
        st.retries = c.retries;
        st.limit = limit(c.requests);
        st.granted = granted_;
        st.denied = denied_;
        return st;
    }

    const retry_budget_policy& policy() const noexcept { return policy_; }

private:
    static constexpr std::int64_t empty = std::numeric_limits<std::int64_t>::min();

    // Request counters per CPU: each on its own cache line, so operations on different CPUs do
    // not pass one line back and forth. Sums read them all (the retry path, under mutex_).
    static constexpr std::size_t stripes = 8;
    struct alignas(64) stripe {
        std::atomic<std::uint64_t> n{0};
    };
    struct slot {
        std::atomic<std::int64_t> epoch{empty};  // which sub-window the counts belong to
        std::atomic<std::uint64_t> retries{0};
        std::array<stripe, stripes> requests{};
        std::uint64_t requests_total() const noexcept {
            std::uint64_t t = 0;
            for (const stripe& x : requests) t += x.n.load(std::memory_order_relaxed);
            return t;
        }
    };
    static std::size_t stripe_of_caller() noexcept {
#if defined(__linux__)
        const int cpu = sched_getcpu();  // glibc reads it from rseq: no system call
        return cpu < 0 ? 0 : static_cast<std::size_t>(cpu) % stripes;
#else
        return 0;
#endif
    }
    struct counts {
        std::uint64_t requests = 0, retries = 0;
    };

    static std::int64_t to_ticks(duration d) noexcept {
        return std::chrono::duration_cast<steady_time::duration>(d).count();
    }
    // Floor division, so times before the clock's epoch (a manual clock set there) work too.
    std::int64_t epoch_of(steady_time now) const noexcept {
        const std::int64_t t = now.time_since_epoch().count();
        std::int64_t q = t / slot_ticks_;
        if (t % slot_ticks_ < 0) --q;
        return q;
    }
    slot& slot_for(std::int64_t e) noexcept { return ring_[static_cast<std::size_t>(((e % slots) + slots) % slots)]; }

    // With mutex_ held: makes s hold sub-window e. A caller whose `now` is older than the slot's
    // sub-window (a stale timestamp) just adds to it: the count is real, only slightly misdated.
    slot& rotate(slot& s, std::int64_t e) noexcept {
        if (s.epoch.load(std::memory_order_relaxed) < e) {
            for (stripe& x : s.requests) x.n.store(0, std::memory_order_relaxed);
            s.retries.store(0, std::memory_order_relaxed);
            s.epoch.store(e, std::memory_order_release);  // publishes the zeroed counts
        }
        return s;
    }

    // With mutex_ held: totals of the sub-windows in (e - slots, e].
    counts sum(std::int64_t e) const noexcept {
        counts c;
        for (const slot& s : ring_) {
            const std::int64_t se = s.epoch.load(std::memory_order_acquire);
            if (se != empty && se <= e && e - se < slots) {
                c.requests += s.requests_total();
                c.retries += s.retries.load(std::memory_order_relaxed);
            }
        }
        return c;
    }

    double limit(std::uint64_t requests) const noexcept {
        return policy_.ratio * static_cast<double>(requests) +
               static_cast<double>(policy_.min_retries_per_second) *
                   std::chrono::duration<double>(policy_.window).count();
    }

    retry_budget_policy policy_;
    std::int64_t slot_ticks_;
    std::array<slot, slots> ring_{};
    mutable std::mutex mutex_;
    std::uint64_t granted_ = 0;  // guarded by mutex_
    std::uint64_t denied_ = 0;   // guarded by mutex_
};

}  // namespace lifeline

#endif  // LIFELINE_RETRY_BUDGET_HPP
