// lifeline — how long to wait between attempts: capped exponential backoff with jitter.
//
//   jitter::none          initial * multiplier^n, capped at max
//   jitter::full          uniform[0, min(max, initial * multiplier^n)]      (the default)
//   jitter::decorrelated  min(max, uniform[initial, previous * 3])
// (n = delays already handed out since reset). Full and decorrelated jitter are the two schemes
// AWS's "Exponential Backoff And Jitter" found best: jitter spreads the retries of many clients so
// the end of an outage is not met by a synchronized stampede. Decorrelated jitter grows by its own
// factor 3 and ignores `multiplier`.
//
// `backoff` is a small per-connection object (not thread-safe). Its random numbers come from a
// seeded splitmix64 with a fixed mapping to [0, 1), so a given seed gives the same delays on
// every platform — tests pin a seed; production seeds differ per connection.
#ifndef LIFELINE_BACKOFF_HPP
#define LIFELINE_BACKOFF_HPP

#include <lifeline/clock.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace lifeline {

enum class jitter { none, full, decorrelated };

constexpr std::string_view to_string(jitter j) noexcept {
    switch (j) {
    case jitter::none: return "none";
    case jitter::full: return "full";
    case jitter::decorrelated: return "decorrelated";
    }
    return "unknown";
}

struct backoff_policy {
    duration initial = std::chrono::milliseconds(50);  // first delay (with full jitter: its upper bound)
    duration max = std::chrono::seconds(2);            // cap on any single delay
    double multiplier = 2.0;                           // growth per attempt (none / full jitter)
    jitter kind = jitter::full;

    // Empty if usable; else each problem, naming the field and the fix ("...; " separated).
    std::string validate() const {
        std::string why;
        if (initial.count() <= 0) why += "backoff_policy.initial must be > 0 (e.g. 50ms); ";
        if (max < initial) why += "backoff_policy.max must be >= backoff_policy.initial (e.g. 2s); ";
        if (!(multiplier >= 1.0) || !std::isfinite(multiplier))
            why += "backoff_policy.multiplier must be a finite number >= 1 (e.g. 2.0); ";
        if (kind != jitter::none && kind != jitter::full && kind != jitter::decorrelated)
            why += "backoff_policy.kind must be jitter::none, jitter::full or jitter::decorrelated; ";
        return why;
    }
};

namespace detail {

// splitmix64 (Steele, Lea, Flood 2014): tiny, seedable, every seed (0 too) gives a full-period
// stream. Ample quality for jitter; not for anything secret.
class splitmix64 {
public:
    explicit splitmix64(std::uint64_t seed = 0) noexcept : state_(seed) {}
    std::uint64_t operator()() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, 1): the top 53 bits, so the mapping is exact and portable.
    double unit() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

private:
    std::uint64_t state_;
};

// A seed that differs between objects and runs, for callers that do not pass one.
inline std::uint64_t entropy_seed(const void* salt) noexcept {
    const auto t = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return splitmix64(t ^ static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(salt)))();
}

// ns as double -> duration, clamped to [0, cap]; never converts an out-of-range double.
inline duration clamp_ns(double ns, duration cap) noexcept {
    if (!(ns > 0.0)) return duration::zero();
    if (ns >= static_cast<double>(cap.count())) return cap;
    return duration(static_cast<duration::rep>(ns));
}

}  // namespace detail

class backoff {
public:
    // Seeded from the address and the time: two connections do not share a jitter sequence.
    explicit backoff(const backoff_policy& p = {}) noexcept : backoff(p, detail::entropy_seed(this)) {}
    // A fixed seed gives a reproducible sequence (tests).
    backoff(const backoff_policy& p, std::uint64_t seed) noexcept : policy_(p), rng_(seed) { reset(); }

    // The delay before the next attempt; advances attempt().
    duration next() noexcept {
        const duration cap = std::max(policy_.max, duration::zero());
        duration d{};
        switch (policy_.kind) {
        case jitter::none:
            d = detail::clamp_ns(ceiling_, cap);
            break;
        case jitter::full:
            d = detail::clamp_ns(rng_.unit() * ceiling_, cap);
            break;
        case jitter::decorrelated: {
            // AWS: sleep = min(cap, random_between(base, sleep * 3)). prev * 3 is clamped to the
            // cap before it can grow without bound.
            const double lo = static_cast<double>(policy_.initial.count());
            const double hi = std::max(lo, std::min(previous_ * 3.0, static_cast<double>(cap.count())));
            d = detail::clamp_ns(lo + rng_.unit() * (hi - lo), cap);
            previous_ = static_cast<double>(d.count());
            break;
        }
        }
        // Grow the exponential ceiling, saturating at the cap: no overflow at any attempt count.
        ceiling_ = std::min(ceiling_ * policy_.multiplier, static_cast<double>(cap.count()));
        if (attempt_ != std::numeric_limits<unsigned>::max()) ++attempt_;
        return d;
    }

    // Back to the first delay (call at the start of each operation).
    void reset() noexcept {
        attempt_ = 0;
        ceiling_ = std::min(static_cast<double>(policy_.initial.count()), static_cast<double>(policy_.max.count()));
        previous_ = static_cast<double>(policy_.initial.count());
    }

    // Delays handed out since the last reset (saturates instead of wrapping).
    unsigned attempt() const noexcept { return attempt_; }
    const backoff_policy& policy() const noexcept { return policy_; }

private:
    backoff_policy policy_;
    detail::splitmix64 rng_;
    double ceiling_ = 0;   // initial * multiplier^attempt, capped (ns)
    double previous_ = 0;  // the last decorrelated delay (ns)
    unsigned attempt_ = 0;
};

}  // namespace lifeline

#endif  // LIFELINE_BACKOFF_HPP
