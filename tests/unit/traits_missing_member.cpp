// Compile-fail test (ctest unit.traits_static_assert, EXCLUDE_FROM_ALL): a driver_traits
// specialisation that lacks `ping` must stop the build with check_driver_traits()'s
// static_assert naming the member and its signature. Everything else is present, in the shapes
// of tests/support/fake_driver.hpp. This file must NOT compile.
//
// Positive control: with LIFELINE_TEST_TRAITS_COMPLETE defined (target
// traits_missing_member_control, part of every build) the same file declares `ping` and must
// compile, which proves `ping` is the only thing the static_assert can be complaining about.
#include <lifeline/connection.hpp>
#include <lifeline/driver_traits.hpp>
#include <lifeline/error.hpp>
#include <lifeline/options.hpp>
#include <lifeline/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace traits_test {
struct no_ping;  // the driver tag
struct session {
    bool open = false;
};
}  // namespace traits_test

template <>
struct lifeline::driver_traits<traits_test::no_ping> {
    using session_type = traits_test::session;
    using native_handle = traits_test::session*;
    static constexpr const char* name = "no_ping";

    static bool connect(session_type& s, const connect_options&, std::chrono::milliseconds, diagnostics&) {
        s.open = true;
        return true;
    }
    static void close(session_type& s) noexcept { s.open = false; }
    static bool is_open(const session_type& s) noexcept { return s.open; }
    static native_handle native(session_type& s) noexcept { return &s; }
    static int socket_fd(const session_type&) noexcept { return -1; }
#ifdef LIFELINE_TEST_TRAITS_COMPLETE
    static bool ping(session_type&, diagnostics&) { return true; }
#else
    // static bool ping(session_type&, diagnostics&);   <- deliberately missing
#endif
    static bool execute(session_type&, std::string_view, result*, diagnostics&) { return true; }
    template <class F, class Out>
    static bool invoke(session_type& s, F& f, Out& out, diagnostics&) {
        detail::call_into(f, &s, out);
        return true;
    }
    static bool in_transaction(const session_type&) noexcept { return false; }
    static bool reconnect_option_enabled(session_type&) noexcept { return false; }
    static bool untracked_state_changed(session_type&) noexcept { return false; }
    static std::uint64_t connection_id(session_type&) noexcept { return 1; }
};

int main() {
    // What a user writes: build a connection and use it.
    lifeline::connect_options o;
    o.user = "app";
    lifeline::connection<traits_test::no_ping> db{o};
    db.query("SELECT 1", lifeline::idempotent);
    return 0;
}
