// lifeline — what a caller says about one call, and the counters a connection keeps.
#ifndef LIFELINE_CALL_OPTIONS_HPP
#define LIFELINE_CALL_OPTIONS_HPP

#include <chrono>
#include <cstdint>

namespace lifeline {

// No deadline for this call: call_options{lifeline::no_deadline}. For statements that run for
// minutes (README "Long statements"): nothing of lifeline's cuts them; a network that drops the
// connection is found by TCP keepalive / TCP_USER_TIMEOUT (connect_options).
inline constexpr std::chrono::milliseconds no_deadline = std::chrono::milliseconds::max();

struct call_options {
    // The whole call: health check, reconnects, backoff and every attempt. 0: the policy's
    // retry.deadline; lifeline::no_deadline (milliseconds::max()): none at all.
    std::chrono::milliseconds deadline{0};
    // true: one connect attempt if the session must be (re)opened, no waiting for the server to
    // come back (a pool that paces its own connects uses it; so can a caller that prefers an
    // immediate error to waiting within its deadline).
    bool fail_fast = false;
    // Each single wait for the server within the call (one attempt, the health check, a connect's
    // session restore) lasts at most this long, whatever the deadline; 0: only the deadline. Cut
    // like a deadline (the socket shut down, the statement stopped on the server); an idempotent
    // statement may then be retried within the deadline, as after a read timeout.
    std::chrono::milliseconds io_timeout{0};
};

// Counters of one connection (plain integers: a connection is used by one thread at a time).
struct connection_stats {
    std::uint64_t operations = 0, attempts = 0, retries = 0, reconnects = 0, pings = 0, socket_checks = 0,
                  verifications = 0, gave_up = 0;
    std::uint64_t endpoint_waits = 0;  // waits for the endpoint's prober while the server was down
};

}  // namespace lifeline

#endif  // LIFELINE_CALL_OPTIONS_HPP
