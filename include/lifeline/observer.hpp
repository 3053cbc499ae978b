// lifeline — events a connection reports to an observer (logging, metrics, tests).
//
// Override what you need; the defaults do nothing. Events are delivered on the thread doing the
// work, synchronously: keep handlers short. SQL text is passed as a view that may be empty; an
// observer decides whether to record it (the spdlog observer logs it only when asked). Passwords
// never appear in any event.
#ifndef LIFELINE_OBSERVER_HPP
#define LIFELINE_OBSERVER_HPP

#include <lifeline/classification.hpp>
#include <lifeline/error.hpp>

#include <chrono>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace lifeline {

struct attempt_event {
    std::string_view endpoint;  // host:port
    std::string_view sql;       // empty for run()
    unsigned attempt;           // 1-based
};

struct retry_event {
    std::string_view endpoint;
    std::string_view sql;
    unsigned attempt;           // statements sent so far (0: a connect failed before the first send)
    classification what;
    const diagnostics& diag;
    std::chrono::nanoseconds delay;  // backoff before the next attempt
    std::string_view reason;
};

// Why a (re)connect happened, for metrics (the pool counts sessions found dead with it).
enum class reconnect_cause : std::uint8_t {
    not_connected,  // first connect, or after lifeline closed a broken session
    found_dead,     // the socket probe saw the server's end closed (KILL, wait_timeout, restart)
    ping_failed,    // the ping after the idle window got no answer
    recycled,       // lifetime or wait_timeout margin reached: replaced while still working
};

struct reconnect_event {
    std::string_view endpoint;
    std::string_view reason;    // e.g. "the server closed the connection", "recycled ..."
    bool ok;
    std::error_code error;      // when !ok
    std::chrono::nanoseconds took;
    reconnect_cause cause = reconnect_cause::not_connected;
};

struct session_restored_event {
    std::string_view endpoint;
    unsigned statements;        // SET statements replayed
};

struct gave_up_event {
    std::string_view endpoint;
    std::string_view sql;
    unsigned attempts;
    std::error_code error;
    const diagnostics& diag;
    std::string_view reason;
};

class observer {
public:
    virtual ~observer() = default;
    virtual void on_attempt(const attempt_event&) {}
    virtual void on_retry(const retry_event&) {}
    virtual void on_reconnect(const reconnect_event&) {}
    virtual void on_session_restored(const session_restored_event&) {}
    virtual void on_gave_up(const gave_up_event&) {}
    virtual void on_ping(std::string_view /*endpoint*/, bool /*ok*/) {}
};

}  // namespace lifeline

#endif  // LIFELINE_OBSERVER_HPP
