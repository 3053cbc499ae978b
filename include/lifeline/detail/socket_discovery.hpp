// lifeline — finding the socket of a driver that does not expose it (Connector/C++ 1.1).
//
// Descriptor numbers are no identity: another thread can close and open sockets while a connect
// runs, so "the new number connected to host:port" can be that thread's socket (measured on the
// old number-based scheme, 8 threads reconnecting for 5 s: 34 foreign sockets adopted and 835
// lookups abandoned in 5,838 connects). So:
//   1. Sockets are told apart by (st_dev, st_ino), which no other open socket shares: stat() of
//      /proc/self/fd/N for descriptors that may be other threads' (this does not use them, so
//      ThreadSanitizer's descriptor tracking stays quiet), fstat() on our own duplicate. Before
//      the connect lifeline records the identities of this process's sockets; candidates
//      afterwards are the sockets with a new identity whose peer is host:port.
//   2. The server has the last word: it reports each session's client address in
//      information_schema.PROCESSLIST.HOST ("127.0.0.1:49058"), asked in the same round trip as
//      CONNECTION_ID() right after connect. Only a candidate whose local address (getsockname)
//      is that address can be this session's socket: a TCP connection's address pair is unique.
//   3. The winner is duplicated at once (socket_ref.hpp) and the checks are made again on the
//      duplicate, which cannot change identity under us; the session keeps that duplicate.
// Anything ambiguous or unconfirmed (no candidate, two candidates, the server's view is missing
// or is a name without a port, a proxy in between so the server sees another address) gives no
// socket: lifeline then falls back to the ping window and the driver's own timeouts. Never a
// wrong descriptor. Unix-socket connections are not looked up (the adapter passes TCP only).
#ifndef LIFELINE_DETAIL_SOCKET_DISCOVERY_HPP
#define LIFELINE_DETAIL_SOCKET_DISCOVERY_HPP

#include <lifeline/detail/socket_ref.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace lifeline::detail {

// What identifies an open socket (not its descriptor number).
struct socket_identity {
    dev_t dev = 0;
    ino_t ino = 0;
    friend bool operator<(const socket_identity& a, const socket_identity& b) noexcept {
        return a.dev != b.dev ? a.dev < b.dev : a.ino < b.ino;
    }
    friend bool operator==(const socket_identity& a, const socket_identity& b) noexcept {
        return a.dev == b.dev && a.ino == b.ino;
    }
};

inline bool identity_of(int fd, socket_identity& out) noexcept {
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
    out = socket_identity{st.st_dev, st.st_ino};
    return true;
}

// The same, through /proc/self/fd/N: for descriptors that may be other threads' (reading their
// identity must not count as using them, e.g. under ThreadSanitizer's descriptor tracking).
inline bool identity_of_listed(int fd, socket_identity& out) noexcept {
    char path[40];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct stat st;
    if (::stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
    out = socket_identity{st.st_dev, st.st_ino};
    return true;
}

// Calls f(fd) for each open descriptor number of this process.
template <class F>
void for_each_fd(F&& f) {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return;
    const int own = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        int fd = std::atoi(e->d_name);
        if (fd != own) f(fd);
    }
    ::closedir(d);
}

// Identities of this process's sockets, sorted.
inline std::vector<socket_identity> socket_identities() {
    std::vector<socket_identity> ids;
    for_each_fd([&](int fd) {
        socket_identity id;
        if (identity_of_listed(fd, id)) ids.push_back(id);
    });
    std::sort(ids.begin(), ids.end());
    return ids;
}

// An address as text (inet_ntop form, IPv4-mapped IPv6 shown as IPv4) and a port.
struct inet_endpoint {
    std::string address;
    std::uint16_t port = 0;
};

inline bool endpoint_of(const sockaddr_storage& ss, inet_endpoint& out) {
    char text[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
        out.port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) ::inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], text, sizeof text);
        else ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        out.port = ntohs(a->sin6_port);
    } else {
        return false;
    }
    out.address = text;
    return true;
}

inline bool peer_endpoint(int fd, inet_endpoint& out) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    return ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && endpoint_of(ss, out);
}

inline bool local_endpoint(int fd, inet_endpoint& out) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    return ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && endpoint_of(ss, out);
}

// An IP literal in canonical text (IPv4-mapped IPv6 as IPv4); empty if `text` is not a literal.
inline std::string canonical_address(const std::string& text) {
    in_addr a4;
    if (::inet_pton(AF_INET, text.c_str(), &a4) == 1) {
        char out[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &a4, out, sizeof out);
        return out;
    }
    in6_addr a6;
    if (::inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
        char out[INET6_ADDRSTRLEN] = {};
        if (IN6_IS_ADDR_V4MAPPED(&a6)) ::inet_ntop(AF_INET, &a6.s6_addr[12], out, sizeof out);
        else ::inet_ntop(AF_INET6, &a6, out, sizeof out);
        return out;
    }
    return {};
}

// Does `e` match host (an address literal, compared; or a name, which matches any address) : port?
inline bool endpoint_matches(const inet_endpoint& e, const std::string& host, std::uint16_t port) {
    if (e.port != port) return false;
    const std::string literal = canonical_address(host);
    return literal.empty() || literal == e.address;
}

inline bool peer_is(int fd, const std::string& host, std::uint16_t port) {
    inet_endpoint e;
    return peer_endpoint(fd, e) && endpoint_matches(e, host, port);
}

// Splits the server's view of a client, PROCESSLIST.HOST: "127.0.0.1:49058", "[::1]:49058",
// "::ffff:127.0.0.1:49058", "localhost:49058" (name resolution on). False without a port
// ("localhost" alone: a Unix socket).
inline bool parse_processlist_host(std::string_view text, std::string& host, std::uint16_t& port) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon + 1 >= text.size()) return false;
    unsigned long p = 0;
    for (std::size_t i = colon + 1; i < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '9') return false;
        p = p * 10 + static_cast<unsigned long>(text[i] - '0');
        if (p > 65535) return false;
    }
    if (p == 0) return false;
    std::string_view h = text.substr(0, colon);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    if (h.empty()) return false;
    host.assign(h.data(), h.size());
    port = static_cast<std::uint16_t>(p);
    return true;
}

// Why a lookup gave no socket (for tests and diagnostics).
enum class discovery_outcome : std::uint8_t {
    not_attempted,  // Unix socket, or not connected
    found,          // confirmed by the server's view and held as a duplicate
    no_server_view, // PROCESSLIST.HOST missing or without a port
    no_candidate,   // no new socket to host:port has the address the server reports
    ambiguous,      // more than one did (cannot happen for TCP; refused all the same)
    dup_failed,     // fcntl(F_DUPFD_CLOEXEC) failed (descriptor limit)
};

inline const char* to_string(discovery_outcome o) noexcept {
    switch (o) {
    case discovery_outcome::not_attempted: return "not attempted";
    case discovery_outcome::found: return "found";
    case discovery_outcome::no_server_view: return "no server view";
    case discovery_outcome::no_candidate: return "no candidate";
    case discovery_outcome::ambiguous: return "ambiguous";
    case discovery_outcome::dup_failed: return "dup failed";
    }
    return "?";
}

// The session's socket: new since `before`, peer host:port, local address as the server reports
// it (`processlist_host`). Returned as this session's own duplicate, or empty (see outcome).
inline socket_ref adopt_session_socket(const std::vector<socket_identity>& before, const std::string& host,
                                       std::uint16_t port, std::string_view processlist_host,
                                       discovery_outcome& outcome) {
    outcome = discovery_outcome::not_attempted;
    std::string client_host;
    std::uint16_t client_port = 0;
    if (!parse_processlist_host(processlist_host, client_host, client_port)) {
        outcome = discovery_outcome::no_server_view;
        return {};
    }
    auto addresses_match = [&](int fd) {
        inet_endpoint local;
        return peer_is(fd, host, port) && local_endpoint(fd, local) && endpoint_matches(local, client_host, client_port);
    };
    socket_ref found;
    socket_identity found_id;
    bool dup_failed = false;
    for_each_fd([&](int fd) {
        if (outcome == discovery_outcome::ambiguous) return;
        // The number may change hands at any moment (other threads): these checks only select.
        socket_identity id;
        if (!identity_of_listed(fd, id) || std::binary_search(before.begin(), before.end(), id) ||
            !addresses_match(fd))
            return;
        socket_ref dup = socket_ref::duplicate(fd);
        if (!dup) {
            dup_failed = true;
            return;
        }
        // A duplicate cannot change identity under us: decide on it.
        socket_identity dup_id;
        if (!identity_of(dup.get(), dup_id) || !(dup_id == id) || !addresses_match(dup.get())) return;
        if (found && !(found_id == id)) {
            outcome = discovery_outcome::ambiguous;
            return;
        }
        found_id = id;
        found = std::move(dup);
    });
    if (outcome == discovery_outcome::ambiguous) return {};
    if (!found) {
        outcome = dup_failed ? discovery_outcome::dup_failed : discovery_outcome::no_candidate;
        return {};
    }
    outcome = discovery_outcome::found;
    return found;
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_SOCKET_DISCOVERY_HPP
