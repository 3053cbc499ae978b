// lifeline — what a driver must provide to be wrapped by lifeline::connection.
//
// Specialise `lifeline::driver_traits<Tag>` for a driver tag type. lifeline ships two:
// `lifeline::capi` (MySQL C API, lifeline/driver/capi.hpp) and `lifeline::jdbc` (Connector/C++ 1.1,
// lifeline/driver/jdbc.hpp). A specialisation provides:
//
//   using session_type  = ...;   // owns one driver connection; default-constructible, movable
//   using native_handle = ...;   // what run() callables and callbacks get: MYSQL*, sql::Connection&
//   static constexpr const char* name;
//   static bool connect(session_type&, const connect_options&, std::chrono::milliseconds budget,
//                       diagnostics& out);       // must never enable OPT_RECONNECT
//   static void close(session_type&) noexcept;
//   static bool is_open(const session_type&) noexcept;
//   static native_handle native(session_type&) noexcept;
//   static int socket_fd(const session_type&) noexcept;   // -1 if the driver hides its socket
//           // The watchdog shutdown()s and the probe poll()s it: it must stay this session's socket
//           // for the session's whole life. Return the session's OWN descriptor (a dup taken at
//           // connect, closed in close()), never the driver's number, which the driver may close
//           // and the process may hand to another connection (see detail/socket_ref.hpp).
//   static bool ping(session_type&, diagnostics& out);
//   static bool execute(session_type&, std::string_view sql, result* out, diagnostics& out);
//           // records in out.where the phase of a failure: send / read_result / fetch; appends
//           // its rows to *out (null: discard), which lifeline empties before each attempt —
//           // unless the adapter declares writes_over_result (below)
//   template <class F, class Out> static bool invoke(session_type&, F& f, Out& out, diagnostics& d);
//           // runs user code f(native_handle) into out (a std::optional; see detail::call_into);
//           // false + diagnostics if it failed (C API: mysql_errno() after f returns; JDBC: a
//           // thrown sql::SQLException)
//   static bool in_transaction(const session_type&) noexcept;
//           // conservative: true if a transaction is open, if autocommit is off (the next
//           // statement opens one) or if the adapter cannot tell
//   static bool reconnect_option_enabled(session_type&) noexcept;   // must always be false
//   static bool untracked_state_changed(session_type&) noexcept;    // session_track_state_change
//   static std::uint64_t connection_id(session_type&) noexcept;
//
// Optional, for prepared statements through lifeline (prepare()/execute(statement, params)):
//   using statement_type = ...;  // one server-side prepared statement; movable
//   static bool prepare(session_type&, std::string_view sql, std::optional<statement_type>& out, diagnostics&);
//   static std::size_t param_count(statement_type&) noexcept;
//   static bool execute_prepared(session_type&, statement_type&, const params&, result*, diagnostics&);
//   static void close_statement(statement_type&) noexcept;   // before the session is closed
//
// Optional, used when present (detail/session_io.hpp detects them):
//   static constexpr bool writes_over_result = true;   // execute / execute_prepared write over
//           // *out, which then holds the previous statement's result: a lifeline::result_writer
//           // (result.hpp) constructed first thing, before any way out, keeps its storage and
//           // leaves exactly this statement's result. lifeline then stops emptying it, and a
//           // result kept across calls (connection::query(sql, into, ...)) allocates nothing
//   static bool reset_session(session_type&, diagnostics&);   // COM_RESET_CONNECTION; without it a
//           // pooled session whose state changed is closed on return instead of reset
//   static bool session_changed(session_type&) noexcept;      // the last OK packet reported a state
//           // change (SERVER_SESSION_STATE_CHANGED)
//   static std::optional<std::uint64_t> wire_bytes(session_type&) noexcept;  // bytes put on the wire
//           // so far; default: the kernel's counters of socket_fd() (detail/wire_counter.hpp)
//
// `check_driver_traits<Tag>()` static_asserts each member with a message naming it and the fix.
#ifndef LIFELINE_DRIVER_TRAITS_HPP
#define LIFELINE_DRIVER_TRAITS_HPP

#include <lifeline/error.hpp>
#include <lifeline/options.hpp>
#include <lifeline/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

namespace lifeline {

template <class Tag>
struct driver_traits;  // specialise for your driver tag; see the list above

struct capi;  // MySQL C API (MariaDB Connector/C or libmysqlclient): include lifeline/driver/capi.hpp
struct jdbc;  // MySQL Connector/C++ 1.1 JDBC API: include lifeline/driver/jdbc.hpp

namespace detail {

// Calls f(h) and stores its result in out (std::optional<R>, or std::optional<bool> for void).
template <class F, class H, class Out>
void call_into(F& f, H&& h, Out& out) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, H>>) {
        f(std::forward<H>(h));
        out.emplace(true);
    } else {
        out.emplace(f(std::forward<H>(h)));
    }
}

template <class T, class = void>
struct is_complete : std::false_type {};
template <class T>
struct is_complete<T, std::void_t<decltype(sizeof(T))>> : std::true_type {};

#define LIFELINE_DETAIL_HAS(name, ...)                           \
    template <class T, class = void>                             \
    struct has_##name : std::false_type {};                      \
    template <class T>                                           \
    struct has_##name<T, std::void_t<__VA_ARGS__>> : std::true_type {};

// Members are checked by calling them as lifeline will (so overloads are fine and a wrong
// signature is caught here, with a readable message, instead of deep inside connection.hpp).
template <class T>
using session_t = typename T::session_type;
template <class T>
T& lvalue();

struct probe_callable {  // stands for user code handed to run()
    template <class H>
    void operator()(H&&) const {}
};

LIFELINE_DETAIL_HAS(session_type, typename T::session_type)
LIFELINE_DETAIL_HAS(native_handle, typename T::native_handle)
LIFELINE_DETAIL_HAS(connect, std::enable_if_t<std::is_convertible_v<decltype(T::connect(
    lvalue<session_t<T>>(), std::declval<const connect_options&>(), std::chrono::milliseconds{}, lvalue<diagnostics>())), bool>>)
LIFELINE_DETAIL_HAS(close, decltype(T::close(lvalue<session_t<T>>())))
LIFELINE_DETAIL_HAS(is_open, std::enable_if_t<std::is_convertible_v<decltype(T::is_open(std::declval<const session_t<T>&>())), bool>>)
LIFELINE_DETAIL_HAS(native, std::enable_if_t<std::is_same_v<decltype(T::native(lvalue<session_t<T>>())), typename T::native_handle>>)
LIFELINE_DETAIL_HAS(socket_fd, std::enable_if_t<std::is_convertible_v<decltype(T::socket_fd(std::declval<const session_t<T>&>())), int>>)
LIFELINE_DETAIL_HAS(ping, std::enable_if_t<std::is_convertible_v<decltype(T::ping(lvalue<session_t<T>>(), lvalue<diagnostics>())), bool>>)
LIFELINE_DETAIL_HAS(execute, std::enable_if_t<std::is_convertible_v<decltype(T::execute(
    lvalue<session_t<T>>(), std::string_view{}, std::declval<result*>(), lvalue<diagnostics>())), bool>>)
LIFELINE_DETAIL_HAS(invoke, std::enable_if_t<std::is_convertible_v<decltype(T::invoke(
    lvalue<session_t<T>>(), lvalue<probe_callable>(), lvalue<std::optional<bool>>(), lvalue<diagnostics>())), bool>>)
LIFELINE_DETAIL_HAS(in_transaction, std::enable_if_t<std::is_convertible_v<decltype(T::in_transaction(std::declval<const session_t<T>&>())), bool>>)
LIFELINE_DETAIL_HAS(reconnect_option_enabled, std::enable_if_t<std::is_convertible_v<decltype(T::reconnect_option_enabled(lvalue<session_t<T>>())), bool>>)
LIFELINE_DETAIL_HAS(untracked_state_changed, std::enable_if_t<std::is_convertible_v<decltype(T::untracked_state_changed(lvalue<session_t<T>>())), bool>>)
LIFELINE_DETAIL_HAS(connection_id, std::enable_if_t<std::is_convertible_v<decltype(T::connection_id(lvalue<session_t<T>>())), std::uint64_t>>)
LIFELINE_DETAIL_HAS(prepare, typename T::statement_type)
#undef LIFELINE_DETAIL_HAS

// The statement type of a driver that supports prepared statements, else a placeholder.
template <class T, bool = has_prepare<T>::value>
struct statement_type_of {
    using type = typename T::statement_type;
};
template <class T>
struct statement_type_of<T, false> {
    struct type {};
};

}  // namespace detail

template <class Tag>
constexpr bool check_driver_traits() {
    using T = driver_traits<Tag>;
    static_assert(detail::is_complete<T>::value,
                  "lifeline: driver_traits<Tag> is not specialised for this driver tag. Include the "
                  "adapter header (lifeline/driver/capi.hpp or lifeline/driver/jdbc.hpp) or write a "
                  "specialisation (see lifeline/driver_traits.hpp).");
    if constexpr (detail::is_complete<T>::value) {
        static_assert(detail::has_session_type<T>::value,
                      "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `using session_type = ...;` (the type that owns one driver connection).");
        static_assert(detail::has_native_handle<T>::value,
                      "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `using native_handle = ...;` (what run() hands to user code).");
        static_assert(detail::has_connect<T>::value,
                      "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static bool connect(session_type&, const connect_options&, std::chrono::milliseconds, diagnostics&)`.");
        static_assert(detail::has_close<T>::value, "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static void close(session_type&) noexcept`.");
        static_assert(detail::has_is_open<T>::value, "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static bool is_open(const session_type&) noexcept`.");
        static_assert(detail::has_native<T>::value, "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static native_handle native(session_type&) noexcept`.");
        static_assert(detail::has_socket_fd<T>::value,
                      "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static int socket_fd(const session_type&) noexcept` (return -1 if the driver hides its socket).");
        static_assert(detail::has_ping<T>::value, "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static bool ping(session_type&, diagnostics&)`.");
        static_assert(detail::has_execute<T>::value,
                      "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static bool execute(session_type&, std::string_view, result*, diagnostics&)`.");
        static_assert(detail::has_invoke<T>::value,
                      "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `template <class F, class Out> static bool invoke(session_type&, F&, Out&, diagnostics&)` (runs run()'s user code; see detail::call_into).");
        static_assert(detail::has_in_transaction<T>::value,
                      "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static bool in_transaction(const session_type&) noexcept`.");
        static_assert(detail::has_reconnect_option_enabled<T>::value,
                      "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static bool reconnect_option_enabled(session_type&) noexcept` (lifeline asserts OPT_RECONNECT stays off).");
        static_assert(detail::has_untracked_state_changed<T>::value,
                      "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static bool untracked_state_changed(session_type&) noexcept` (return false if the driver cannot tell).");
        static_assert(detail::has_connection_id<T>::value,
                      "lifeline: driver_traits<Tag> lacks (or has the wrong signature for) `static std::uint64_t connection_id(session_type&) noexcept`.");
    }
    return true;
}

}  // namespace lifeline

#endif  // LIFELINE_DRIVER_TRAITS_HPP
