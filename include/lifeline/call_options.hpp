// lifeline — what a caller says about one call, and the counters a connection keeps.
#ifndef LIFELINE_CALL_OPTIONS_HPP
#define LIFELINE_CALL_OPTIONS_HPP

#include <chrono>
#include <cstdint>

namespace lifeline {

struct call_options {
    // The whole call: health check, reconnects, backoff and every attempt. 0: the policy's
    // retry.deadline; std::chrono::milliseconds::max(): no deadline (only io_timeout bounds a read).
    std::chrono::milliseconds deadline{0};
    // true: one connect attempt if the session must be (re)opened, no waiting for the server to
    // come back (a pool that paces its own connects uses it; so can a caller that prefers an
    // immediate error to waiting within its deadline).
    bool fail_fast = false;
};

// Counters of one connection (plain integers: a connection is used by one thread at a time).
struct connection_stats {
    std::uint64_t operations = 0, attempts = 0, retries = 0, reconnects = 0, pings = 0, socket_checks = 0,
                  verifications = 0, gave_up = 0;
    std::uint64_t endpoint_waits = 0;  // waits for the endpoint's prober while the server was down
};

}  // namespace lifeline

#endif  // LIFELINE_CALL_OPTIONS_HPP
