// lifeline — what a non-blocking driver must provide to be driven by lifeline::async_connection.
//
// The async I/O layer (detail/async_core.hpp) never blocks: it starts a driver step, and when the
// driver says "I must wait", it watches the driver's socket with Asio (and a timer) and resumes the
// step when the socket is ready. That is exactly the shape of MariaDB Connector/C's non-blocking
// API (mysql_*_start / mysql_*_cont, mysql_get_socket, mysql_get_timeout_value_ms), which
// lifeline/driver/capi_async.hpp wraps; the unit tests use a fake with the same shape.
//
// Specialise `lifeline::async_driver_traits<Tag>` with `using session_type = S;` where S is
// default-constructible and has these members. Every `start_*` and `resume` returns a wait status:
// 0 when the step finished, else a set of `io_wait` bits (the socket must become readable /
// writable, or `timeout()` must pass: io_wait::timeout) after which `resume(<the bits that happened>)` continues it.
//
//   int  start_connect(const connect_options&, std::chrono::milliseconds budget);
//   int  start_query(std::string_view sql, result* out);   // sql must outlive the step
//   int  start_ping();
//   int  start_reset();                                     // COM_RESET_CONNECTION
//   int  resume(int ready);
//   bool ok() const;                        // after a finished step: did it succeed?
//   const diagnostics& error() const;       // ... if not: the driver's error (where = phase)
//   phase where() const;                    // the phase of the step in flight (send / read_result / ...)
//   bool is_open() const;                   // a connected session exists
//   int  socket() const;                    // the fd to watch; -1 if none. The driver owns it.
//   std::chrono::milliseconds timeout() const;   // how long a wait_timeout wait lasts
//   void close() noexcept;                  // idle session: say goodbye without blocking, free it
//   void abandon() noexcept;                // a step is in flight: the handle is poisoned; shut
//                                           // the socket down and free it without any I/O wait
//   bool in_transaction() const;
//   bool untracked_state_changed();
//   bool session_changed();                 // SERVER_SESSION_STATE_CHANGED on the last OK packet
//   bool reconnect_option_enabled();        // must always be false
//   native_handle native();                 // MYSQL* for capi (for reading, never for blocking calls)
#ifndef LIFELINE_ASYNC_DRIVER_TRAITS_HPP
#define LIFELINE_ASYNC_DRIVER_TRAITS_HPP

namespace lifeline {

template <class Tag>
struct async_driver_traits;  // specialise for a non-blocking driver (see above)

// The wait bits (the same values as MariaDB Connector/C's MYSQL_WAIT_*).
struct io_wait {
    static constexpr int read = 1;
    static constexpr int write = 2;
    static constexpr int except = 4;
    static constexpr int timeout = 8;
};

}  // namespace lifeline

#endif  // LIFELINE_ASYNC_DRIVER_TRAITS_HPP
