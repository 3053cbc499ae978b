// lifeline — TCP keepalive and TCP_USER_TIMEOUT on a session's socket.
//
// A firewall, NAT or load balancer that forgets an idle connection drops its packets without a
// word (the article's cause 5: limits of 60-350 s). Connector/C turns SO_KEEPALIVE on with the
// kernel's timing (a first probe after 7200 s), far too late; so after every connect lifeline sets
// the timing of the connect_options on the session's own descriptor (a dup of the driver's: the
// options belong to the socket, not the descriptor, so the driver's socket gets them):
//   - TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT: an idle connection probes the peer; one whose
//     probes go unanswered is ended by the kernel, and a driver blocked reading it gets an error.
//     This keeps the firewall's state alive too, and it is what ends a read that waits on a
//     connection the network dropped (a long statement's result that never comes).
//   - TCP_USER_TIMEOUT: data left unacknowledged (or a zero window not reopening) for that long
//     ends the connection: a write into a black hole fails instead of waiting forever. With
//     keepalive on, the kernel also uses it as the keepalive give-up time.
// Neither sees a peer whose kernel still answers while its process does not (a frozen server, a
// userspace proxy whose upstream is gone): those are bounded by the call's deadline.
#ifndef LIFELINE_DETAIL_TCP_KEEPALIVE_HPP
#define LIFELINE_DETAIL_TCP_KEEPALIVE_HPP

#include <lifeline/options.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <string>

namespace lifeline::detail {

// What the socket has, as read back with getsockopt (for tests and diagnostics).
struct tcp_settings {
    bool ok = false;  // false: not a TCP socket, or getsockopt failed
    bool keepalive = false;
    int idle_s = 0, interval_s = 0, count = 0;
    unsigned user_timeout_ms = 0;
};

// Is fd a TCP socket (not a Unix socket)?
inline bool is_tcp_socket(int fd) noexcept {
    if (fd < 0) return false;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
    return addr.ss_family == AF_INET || addr.ss_family == AF_INET6;
}

// Applies the options' keepalive timing and user timeout to fd. Returns an empty string on success
// (or when there is nothing to do: no socket, a Unix socket, everything 0), else what failed.
inline std::string apply_tcp_options(int fd, const connect_options& o) noexcept {
    if (!is_tcp_socket(fd)) return {};
    auto set = [fd](int level, int name, int value) { return ::setsockopt(fd, level, name, &value, sizeof value) == 0; };
    if (o.tcp_keepalive_idle.count() > 0) {
        if (!set(SOL_SOCKET, SO_KEEPALIVE, 1) || !set(IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(o.tcp_keepalive_idle.count())) ||
            !set(IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(o.tcp_keepalive_interval.count())) ||
            !set(IPPROTO_TCP, TCP_KEEPCNT, static_cast<int>(o.tcp_keepalive_count)))
            return "could not set TCP keepalive on the session's socket";
    }
#ifdef TCP_USER_TIMEOUT
    if (o.tcp_user_timeout.count() > 0) {
        const unsigned ms = static_cast<unsigned>(o.tcp_user_timeout.count());
        if (::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms) != 0)
            return "could not set TCP_USER_TIMEOUT on the session's socket";
    }
#endif
    return {};
}

inline tcp_settings read_tcp_options(int fd) noexcept {
    tcp_settings s;
    if (!is_tcp_socket(fd)) return s;
    auto get = [fd](int level, int name, int& out) {
        socklen_t len = sizeof out;
        return ::getsockopt(fd, level, name, &out, &len) == 0;
    };
    int ka = 0;
    s.ok = get(SOL_SOCKET, SO_KEEPALIVE, ka) && get(IPPROTO_TCP, TCP_KEEPIDLE, s.idle_s) &&
           get(IPPROTO_TCP, TCP_KEEPINTVL, s.interval_s) && get(IPPROTO_TCP, TCP_KEEPCNT, s.count);
    s.keepalive = ka != 0;
#ifdef TCP_USER_TIMEOUT
    unsigned ut = 0;
    socklen_t len = sizeof ut;
    s.ok = s.ok && ::getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, &len) == 0;
    s.user_timeout_ms = ut;
#endif
    return s;
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_TCP_KEEPALIVE_HPP
