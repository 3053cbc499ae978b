// lifeline — what to do with a connection before handing it out: a small, pure state machine
// (one per connection, time passed in).
//
// Hot connections cost no round trip: the only check is a poll() of the socket with timeout 0
// (≈0.2 µs; a COM_PING is a full round trip, ≈56 µs on loopback), which sees a server that closed
// its end (KILL, wait_timeout, shutdown). A COM_PING is sent only after an idle window, because the
// one failure a poll() cannot see is a silent network drop. A connection is recycled before the
// server's wait_timeout would close it (a ping then would cost a round trip only to fail), and
// after a maximum lifetime shortened by a per-connection random jitter, so a pool's connections do
// not all expire at once (HikariCP's maxLifetime).
//
// before_use() decides, in this order:
//   socket dead or unexpected data        -> reconnect
//   never connected (or on_closed())      -> reconnect
//   age  >= jittered max_lifetime         -> recycle
//   idle >= margin * server wait_timeout  -> recycle
//   idle >= ping_after_idle               -> ping   (then on_used() if it answered)
//   otherwise                             -> use    (zero round trips)
#ifndef LIFELINE_HEALTH_HPP
#define LIFELINE_HEALTH_HPP

#include <lifeline/backoff.hpp>  // detail::splitmix64
#include <lifeline/clock.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace lifeline {

// What a zero-round-trip look at the driver's socket says (see detail/socket_probe.hpp).
enum class socket_status : std::uint8_t {
    alive,            // nothing to read, no hang-up: as an idle connection should be
    dead,             // the server closed its end (KILL, wait_timeout, shutdown) or the socket failed
    unexpected_data,  // readable with data while idle: the server spoke unasked (e.g. an error
                      // packet before closing); the session cannot be trusted: reconnect
    unknown,          // no socket to look at (the driver hides it, or socket_check is off)
};

constexpr std::string_view to_string(socket_status s) noexcept {
    switch (s) {
    case socket_status::alive: return "alive";
    case socket_status::dead: return "dead";
    case socket_status::unexpected_data: return "unexpected_data";
    case socket_status::unknown: return "unknown";
    }
    return "unknown";
}

// What to do before handing the connection out.
enum class health_action : std::uint8_t {
    use,        // hand it out as is
    ping,       // COM_PING first; on failure reconnect
    reconnect,  // it is broken: close and connect again
    recycle,    // it works but is too old or about to be closed by the server: replace it
};

constexpr std::string_view to_string(health_action a) noexcept {
    switch (a) {
    case health_action::use: return "use";
    case health_action::ping: return "ping";
    case health_action::reconnect: return "reconnect";
    case health_action::recycle: return "recycle";
    }
    return "unknown";
}

struct health_policy {
    // COM_PING only after this idle time (HikariCP's aliveBypassWindow: 500 ms; Connector/J and
    // MariaDB's poolValidMinDelay: 1 s). 0 pings before every use; duration::max() never pings.
    duration ping_after_idle = std::chrono::seconds(1);
    // Zero-round-trip poll() of the socket before every use. Read by the caller, which passes
    // socket_status::unknown to before_use() when it is off.
    bool socket_check = true;
    // A socket seen healthy less than this ago (a round trip completed, or a poll() found it
    // alive) is not polled again (one system call saved per statement in a burst on one
    // connection, and the second of borrow-then-query on a pool). Within it, a server that closed the
    // connection in between is found by the statement itself (2013; an idempotent statement is
    // retried, a write reports an unknown outcome, or is verified) instead of before it. 0 polls
    // before every use. The same holds for connection::ready() and a pool's validation on borrow:
    // a connection returned and borrowed again within it is handed out without a poll. HikariCP
    // skips its (round-trip) validation for 500 ms the same way.
    duration probe_bypass = std::chrono::microseconds(50);
    // Recycle after this age (HikariCP's maxLifetime default); 0 disables.
    duration max_lifetime = std::chrono::minutes(30);
    // Each connection's lifetime is max_lifetime shortened by up to this fraction (HikariCP: 2.5 %).
    double lifetime_jitter = 0.025;
    // Recycle a connection idle for this fraction of the server's wait_timeout.
    double wait_timeout_margin = 0.8;

    // Empty if usable; else each problem, naming the field and the fix ("...; " separated).
    std::string validate() const {
        std::string why;
        if (probe_bypass.count() < 0) why += "health_policy.probe_bypass must be >= 0 (e.g. 50us; 0 polls every time); ";
        if (ping_after_idle.count() < 0)
            why += "health_policy.ping_after_idle must be >= 0 (e.g. 1s; duration::max() never pings); ";
        if (max_lifetime.count() < 0) why += "health_policy.max_lifetime must be >= 0 (e.g. 30min; 0 disables); ";
        if (!(lifetime_jitter >= 0.0 && lifetime_jitter < 1.0))
            why += "health_policy.lifetime_jitter must be in [0, 1) (e.g. 0.025); ";
        if (!(wait_timeout_margin > 0.0 && wait_timeout_margin <= 1.0))
            why += "health_policy.wait_timeout_margin must be in (0, 1] (e.g. 0.8); ";
        return why;
    }
};

// Per connection; not thread-safe (a connection is used by one thread at a time).
class health_tracker {
public:
    explicit health_tracker(const health_policy& p = {}) noexcept : policy_(p) {}

    // A new session is up. server_wait_timeout: the session's @@wait_timeout (0 = unknown: no
    // idle recycling). seed: picks this connection's lifetime jitter.
    void on_connected(steady_time now, duration server_wait_timeout, std::uint64_t seed) noexcept {
        connected_ = true;
        connected_at_ = last_used_ = last_seen_ = now;
        idle_limit_ = duration::max();
        if (server_wait_timeout.count() > 0)
            idle_limit_ = scaled(server_wait_timeout, policy_.wait_timeout_margin);
        lifetime_ = duration::max();
        if (policy_.max_lifetime.count() > 0) {
            const double cut = policy_.lifetime_jitter * detail::splitmix64(seed).unit();  // [0, jitter)
            lifetime_ = scaled(policy_.max_lifetime, 1.0 - cut);
        }
    }
    // After each successful round trip (a statement or a ping): the server's idle clock restarts.
    void on_used(steady_time now) noexcept {
        if (now > last_used_) last_used_ = now;
        if (now > last_seen_) last_seen_ = now;
    }
    // A poll() of the socket found it alive. Feeds only the probe bypass: the server's idle clock
    // (wait_timeout, ping_after_idle) does not restart for a look at the socket.
    void on_seen_alive(steady_time now) noexcept {
        if (now > last_seen_) last_seen_ = now;
    }
    // The session is gone (closed, or found broken).
    void on_closed() noexcept { connected_ = false; }

    health_action before_use(steady_time now, socket_status s) const noexcept {
        if (s == socket_status::dead || s == socket_status::unexpected_data) return health_action::reconnect;
        if (!connected_) return health_action::reconnect;
        if (age(now) >= lifetime_) return health_action::recycle;
        const duration idle_for = idle(now);
        if (idle_for >= idle_limit_) return health_action::recycle;
        if (idle_for >= policy_.ping_after_idle) return health_action::ping;
        return health_action::use;
    }

    bool connected() const noexcept { return connected_; }
    // Time since on_connected (0 if never connected or the clock went back).
    duration age(steady_time now) const noexcept { return since(connected_at_, now); }
    // Time since the last successful round trip.
    duration idle(steady_time now) const noexcept { return since(last_used_, now); }
    // Time since the socket was last seen healthy (a round trip, or a poll() that found it alive).
    duration unseen(steady_time now) const noexcept { return since(last_seen_, now); }
    // This connection's jittered max lifetime (duration::max() when disabled).
    duration lifetime() const noexcept { return lifetime_; }
    // Idle time after which it is recycled (duration::max() when wait_timeout is unknown).
    duration idle_limit() const noexcept { return idle_limit_; }
    const health_policy& policy() const noexcept { return policy_; }

private:
    static duration since(steady_time t, steady_time now) noexcept {
        return now > t ? std::chrono::duration_cast<duration>(now - t) : duration::zero();
    }
    // d * f for f in (0, 1]: never overflows, never rounds to more than d.
    static duration scaled(duration d, double f) noexcept {
        const double ns = std::floor(static_cast<double>(d.count()) * f);
        if (!(ns > 0.0)) return duration::zero();
        if (ns >= static_cast<double>(d.count())) return d;
        return duration(static_cast<duration::rep>(ns));
    }

    health_policy policy_;
    bool connected_ = false;
    steady_time connected_at_{};
    steady_time last_used_{};
    steady_time last_seen_{};
    duration idle_limit_ = duration::max();
    duration lifetime_ = duration::max();
};

}  // namespace lifeline

#endif  // LIFELINE_HEALTH_HPP
