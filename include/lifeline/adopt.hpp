// lifeline — wrapping a driver connection your code has already opened.
//
//   MYSQL* m = legacy_connect();                                   // yours, already open
//   lifeline::connection<lifeline::capi> db{lifeline::options_of(m)};  // host, user, TLS... read from it
//   db.adopt(m, lifeline::ownership::take);                        // now lifeline's session
//
//   std::unique_ptr<sql::Connection> c(driver->connect(props));    // Connector/C++
//   lifeline::connection<lifeline::jdbc> db{options};              // its password cannot be read back
//   db.adopt(std::move(c));
//
// Adopting applies lifeline's per-session setup to the handle, exactly as after its own connects:
// MYSQL_OPT_RECONNECT is switched off (lifeline reconnects itself and restores the session;
// Connector/C++ cannot switch OPT_RECONNECT off after connect, and Debian's build cannot even
// report it: open such a connection with OPT_RECONNECT = false), the session gets its own
// descriptor for the socket and the connect_options' TCP
// keepalive and TCP_USER_TIMEOUT, the registered session (connection::session()) is replayed, and
// the identity query takes the session's lock and learns the server's flavour. A handle with a
// result left unread, or already broken, fails the adoption (the error says why).
//
// The connection's connect_options are what every reconnect uses: give the ones the handle was
// opened with (for the C API, lifeline::options_of(MYSQL*) reads them from the handle, all but
// what the driver does not keep: the pre_connect hook, attributes, keepalive settings).
#ifndef LIFELINE_ADOPT_HPP
#define LIFELINE_ADOPT_HPP

#include <cstdint>

namespace lifeline {

enum class ownership : std::uint8_t {
    // lifeline owns the handle from now on: it closes it (mysql_close, or deletes the
    // sql::Connection) when it replaces the session (a reconnect), on close() and in its destructor.
    take,
    // The caller keeps it (C API only): lifeline never closes it. When lifeline replaces the
    // session or on close() it merely stops using the handle, which the caller then closes. While
    // lifeline uses it, a deadline cut shuts its socket down, as for lifeline's own sessions; keep
    // the handle alive until the connection has let it go (close(), a reconnect, its destructor).
    borrow,
};

}  // namespace lifeline

#endif  // LIFELINE_ADOPT_HPP
