// lifeline — did anything leave for the server? The kernel's byte counters of a TCP socket.
//
// run() hands the native handle to a callable lifeline cannot see into. If the callable fails, its
// last error says nothing about the statements before it, so a non-idempotent callable may run
// again only when lifeline can prove that not one byte reached the server during it. Linux keeps
// two counters that prove it (tcp_info, kernel >= 4.19): tcpi_bytes_sent (bytes transmitted,
// retransmissions included: it only grows) and tcpi_notsent_bytes (written by the application,
// not yet transmitted). Nothing was written between two readings iff bytes_sent did not move and
// nothing waits unsent: a write either went out (bytes_sent grows) or is still queued.
//
// glibc's <netinet/tcp.h> predates those fields and clashes with <linux/tcp.h>, so the prefix of
// the kernel's struct (an append-only ABI) is mirrored here and the length the kernel returns is
// checked. Not TCP (a Unix socket, a socketpair), an old kernel, or any error: no answer
// (std::nullopt), and lifeline then assumes the worst.
#ifndef LIFELINE_DETAIL_WIRE_COUNTER_HPP
#define LIFELINE_DETAIL_WIRE_COUNTER_HPP

#include <cstddef>
#include <cstdint>
#include <optional>

#if defined(__linux__)
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#define LIFELINE_HAS_WIRE_COUNTER 1
#else
#define LIFELINE_HAS_WIRE_COUNTER 0
#endif

namespace lifeline::detail {

#if LIFELINE_HAS_WIRE_COUNTER

// struct tcp_info of linux/tcp.h up to tcpi_bytes_sent (Linux 4.19).
struct kernel_tcp_info {
    std::uint8_t state, ca_state, retransmits, probes, backoff, options, wscale, app_limited;
    std::uint32_t rto, ato, snd_mss, rcv_mss;
    std::uint32_t unacked, sacked, lost, retrans, fackets;
    std::uint32_t last_data_sent, last_ack_sent, last_data_recv, last_ack_recv;
    std::uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering;
    std::uint32_t rcv_rtt, rcv_space;
    std::uint32_t total_retrans;
    std::uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
    std::uint32_t segs_out, segs_in;
    std::uint32_t notsent_bytes, min_rtt, data_segs_in, data_segs_out;
    std::uint64_t delivery_rate;
    std::uint64_t busy_time, rwnd_limited, sndbuf_limited;
    std::uint32_t delivered, delivered_ce;
    std::uint64_t bytes_sent;
};

// A monotone count of the bytes the application has handed to this TCP socket, as far as the
// kernel can prove: bytes transmitted plus bytes still queued. nullopt when it cannot say.
inline std::optional<std::uint64_t> wire_bytes_out(int fd) noexcept {
    if (fd < 0) return std::nullopt;
    kernel_tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, 11 /* TCP_INFO */, &info, &len) != 0) return std::nullopt;
    if (len < offsetof(kernel_tcp_info, bytes_sent) + sizeof info.bytes_sent) return std::nullopt;
    return info.bytes_sent + info.notsent_bytes;
}

// Two descriptors refer to the same socket object (the same inode).
inline bool same_socket(int a, int b) noexcept {
    struct stat sa {}, sb {};
    if (a < 0 || b < 0 || ::fstat(a, &sa) != 0 || ::fstat(b, &sb) != 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

#else

inline std::optional<std::uint64_t> wire_bytes_out(int) noexcept { return std::nullopt; }
inline bool same_socket(int a, int b) noexcept { return a >= 0 && a == b; }

#endif

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_WIRE_COUNTER_HPP
