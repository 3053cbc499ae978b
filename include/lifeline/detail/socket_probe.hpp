// lifeline — is the server still at the other end of this idle socket? One poll(), no round trip.
//
// After KILL CONNECTION or wait_timeout the server closes its end: the socket polls readable with
// POLLRDHUP and a MSG_PEEK read returns 0 (measured, see the fault matrix); a healthy idle
// connection polls nothing. So the check costs one system call (≈0.2 µs), not a COM_PING.
//
// Readable *with data* on an idle connection: in the MySQL protocol the server speaks only when
// asked, so unread bytes mean either an error packet sent before closing (MariaDB on some kills,
// MySQL 8's 4031 on interactive timeout) or a session left mid-result by a bug. Either way the
// next reply would be misread: reported as `unexpected_data`, which health_tracker treats like a
// dead socket (go-sql-driver/mysql's conncheck does the same). With TLS the bytes may also be a
// record the TLS layer has not consumed yet; a needless reconnect is the price of never
// misreading a reply.
//
// A silent network drop is the one case this cannot see: only a read timeout (lifeline's
// deadline) or TCP keepalive finds it — hence the ping after an idle window.
//
// POSIX only; needs no driver header. Elsewhere it answers `unknown` (rely on the ping window).
#ifndef LIFELINE_DETAIL_SOCKET_PROBE_HPP
#define LIFELINE_DETAIL_SOCKET_PROBE_HPP

#include <lifeline/health.hpp>

#if defined(__unix__) || defined(__APPLE__)
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#define LIFELINE_HAS_SOCKET_PROBE 1
#else
#define LIFELINE_HAS_SOCKET_PROBE 0
#endif

namespace lifeline::detail {

#if LIFELINE_HAS_SOCKET_PROBE

// The state of an idle connection's socket, without blocking or consuming anything.
// fd < 0 (no socket) -> unknown.
inline socket_status probe_socket(int fd) noexcept {
    if (fd < 0) return socket_status::unknown;
#ifdef POLLRDHUP
    constexpr short hangup = POLLRDHUP;  // Linux: the peer shut down its writing side (FIN)
#else
    constexpr short hangup = 0;          // elsewhere the FIN shows as readable + recv() == 0
#endif
    pollfd p{};
    p.fd = fd;
    p.events = static_cast<short>(POLLIN | hangup);
    int r;
    do {
        r = ::poll(&p, 1, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return socket_status::unknown;  // ENOMEM and the like: say nothing rather than guess
    if (r == 0) return socket_status::alive;
    // POLLNVAL: the driver reports an fd that is not open; the connection cannot be used.
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL | hangup)) return socket_status::dead;
    if (!(p.revents & POLLIN)) return socket_status::alive;
    char c;
    ssize_t n;
    do {
        n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n > 0) return socket_status::unexpected_data;
    if (n == 0) return socket_status::dead;  // EOF: the server closed its end
    if (errno == EAGAIN || errno == EWOULDBLOCK) return socket_status::alive;  // spurious wake-up
    return socket_status::dead;  // ECONNRESET and other socket errors
}

#else

inline socket_status probe_socket(int /*fd*/) noexcept { return socket_status::unknown; }

#endif

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_SOCKET_PROBE_HPP
