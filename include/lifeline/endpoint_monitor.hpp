// lifeline — is the server accepting connections? One monitor per endpoint, shared by every
// connection of the process, so an outage costs the server one probe at a time, not one connect
// per caller, and the first moment it accepts again is noticed within one probe interval.
//
//   up    --a connect fails for a connectivity reason-->  down (probe scheduled)
//   down  --the prober's connect succeeds-->              up   (every waiter is told at once)
//   down  --the prober's connect fails-->                 down (next probe after a capped,
//                                                               jittered backoff)
//
// While down, exactly one caller at a time holds the probe token and makes a real connect (on
// success it keeps the session: the probe is the caller's own work). Every other caller waits for
// the verdict within its own deadline instead of failing at once or adding its own connect —
// unless it asked to fail fast. Probes start milliseconds apart and are capped at max_interval,
// which also caps the connects a down server sees from the whole process (1 / min_interval per
// second at most).
//
// Only connectivity failures mark an endpoint down (refused, unreachable, handshake lost); a
// server that answers "access denied" or "too many connections" is up and saying no: that is the
// circuit breaker's business (circuit_breaker.hpp). Thread-safe; time is passed in (the waiting
// itself is the I/O layer's).
#ifndef LIFELINE_ENDPOINT_MONITOR_HPP
#define LIFELINE_ENDPOINT_MONITOR_HPP

#include <lifeline/backoff.hpp>
#include <lifeline/clock.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

namespace lifeline {

struct probe_policy {
    duration initial = std::chrono::milliseconds(16);       // first probe after the endpoint went down
    duration max_interval = std::chrono::milliseconds(50);  // probes never further apart (recovery noticed within it)
    duration min_interval = std::chrono::milliseconds(16);  // ... nor closer: at most 62.5 connects/s per process
    double multiplier = 2.0;

    std::string validate() const {
        std::string why;
        if (initial.count() < 0) why += "probe_policy.initial must be >= 0 (e.g. 16ms); ";
        if (min_interval.count() < 0) why += "probe_policy.min_interval must be >= 0 (e.g. 16ms); ";
        if (max_interval < min_interval || max_interval.count() <= 0)
            why += "probe_policy.max_interval must be > 0 and >= min_interval (e.g. 50ms); ";
        if (!(multiplier >= 1.0)) why += "probe_policy.multiplier must be >= 1 (e.g. 2); ";
        return why;
    }
};

struct endpoint_stats {
    bool down = false;
    std::uint64_t probes = 0;        // connects made as the prober while down
    std::uint64_t outages = 0;       // times it went down
    std::uint64_t waits = 0;         // callers told to wait for a verdict
};

class endpoint_monitor {
public:
    enum class verdict : std::uint8_t {
        go,         // connect now (while down: as the prober, holding the token)
        wait,       // down and not your turn: wait until `at` (or an earlier verdict), then ask again
    };
    struct answer {
        verdict v = verdict::go;
        bool token = false;   // this caller is the prober: report its outcome with on_result()
        steady_time at{};     // wait: ask again then (the next probe's time, or the token's expiry)
        std::uint64_t epoch = 0;  // for wait_for_change()
    };

    explicit endpoint_monitor(const probe_policy& p = {}) : policy_(p), rng_(detail::entropy_seed(this)) {}
    endpoint_monitor(const endpoint_monitor&) = delete;
    endpoint_monitor& operator=(const endpoint_monitor&) = delete;

    // May this caller connect now? `budget` bounds its connect: a token it does not report back
    // within it is considered lost (the caller gave up), so an abandoned probe cannot stall others.
    answer request(steady_time now, duration budget) {
        if (!down_.load(std::memory_order_acquire)) return {verdict::go, false, {}, 0};
        std::lock_guard<std::mutex> lock(mutex_);
        answer a;
        a.epoch = epoch_;
        if (!down_.load(std::memory_order_relaxed)) return a;
        if (token_held_ && now >= token_expires_) token_held_ = false;  // its holder vanished
        if (!token_held_ && now >= next_probe_) {
            token_held_ = true;
            token_expires_ = now + std::max(budget, policy_.max_interval);
            ++probes_;
            a.token = true;
            return a;
        }
        ++waits_;
        a.v = verdict::wait;
        a.at = token_held_ ? std::min(token_expires_, now + policy_.max_interval) : next_probe_;
        return a;
    }

    // A connect finished. connectivity_failure: refused, unreachable, handshake lost (not an
    // answer from the server such as access denied). `token`: the caller was the prober.
    void on_result(steady_time now, bool ok, bool connectivity_failure, bool token) {
        if (ok && !token && !down_.load(std::memory_order_acquire)) return;  // the hot path: nothing to do
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (token) token_held_ = false;
            if (ok) {
                if (down_.load(std::memory_order_relaxed)) ++epoch_;
                down_.store(false, std::memory_order_release);
                interval_ = duration::zero();
            } else if (connectivity_failure) {
                if (!down_.load(std::memory_order_relaxed)) {
                    down_.store(true, std::memory_order_release);
                    ++outages_;
                    interval_ = duration::zero();
                }
                next_probe_ = now + next_interval();
                ++epoch_;
            } else if (token) {
                ++epoch_;  // the prober gave up without a verdict: let another take its turn
            }
        }
        changed_.notify_all();
    }

    // Waits (real time) until the state changes from `epoch` or `timeout` passes.
    void wait_for_change(std::uint64_t epoch, duration timeout) {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait_for(lock, timeout, [&] { return epoch_ != epoch; });
    }

    bool down() const noexcept { return down_.load(std::memory_order_acquire); }
    endpoint_stats stats() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return endpoint_stats{down_.load(std::memory_order_relaxed), probes_, outages_, waits_};
    }
    const probe_policy& policy() const noexcept { return policy_; }

private:
    // With mutex_ held: capped exponential with full jitter, within [min_interval, max_interval].
    duration next_interval() {
        const double base = interval_.count() == 0 ? static_cast<double>(policy_.initial.count())
                                                   : static_cast<double>(interval_.count()) * policy_.multiplier;
        const double capped = std::min(base, static_cast<double>(policy_.max_interval.count()));
        interval_ = duration(static_cast<duration::rep>(capped));
        const double jittered = capped * (0.5 + 0.5 * rng_.unit());
        const auto d = duration(static_cast<duration::rep>(jittered));
        return std::clamp(d, policy_.min_interval, policy_.max_interval);
    }

    probe_policy policy_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::atomic<bool> down_{false};
    bool token_held_ = false;
    steady_time token_expires_{};
    steady_time next_probe_{};
    duration interval_{};
    std::uint64_t epoch_ = 0;
    std::uint64_t probes_ = 0, outages_ = 0, waits_ = 0;
    detail::splitmix64 rng_;
};

}  // namespace lifeline

#endif  // LIFELINE_ENDPOINT_MONITOR_HPP
