// lifeline — the session state a connection keeps across reconnects.
//
// lifeline replays what is registered here on every new connection, before any user work: the
// schema comes from connect_options.database; then character set, time zone, sql_mode, the SET
// statements in order, and finally the callback. State the server reports as changed that was NOT
// registered (user variables, temporary tables, prepared statements made outside lifeline, found
// through the server's session_track_state_change) would be lost by a reconnect: lifeline then
// reports errc::session_state_lost instead of silently continuing in a different session.
#ifndef LIFELINE_SESSION_HPP
#define LIFELINE_SESSION_HPP

#include <functional>
#include <string>
#include <vector>

namespace lifeline {

template <class Handle>
struct basic_session {
    std::string charset;                  // SET NAMES <charset>; empty: the server default
    std::string time_zone;                // SET time_zone = '<tz>'
    std::string sql_mode;                 // SET sql_mode = '<mode>'
    std::vector<std::string> statements;  // further SET statements, replayed in order
    // Called last on every new connection; return false (with the driver's error set) to fail it.
    std::function<bool(Handle)> on_connect;
    // Report errc::session_state_lost when unregistered session state would be lost by a reconnect.
    bool guard_untracked_state = true;
};

}  // namespace lifeline

#endif  // LIFELINE_SESSION_HPP
