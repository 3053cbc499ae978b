// lifeline — finding the socket of a driver that does not expose it (Connector/C++ 1.1).
//
// The socket a connect opened is the one that was not open before, whose peer is the server's
// address. lifeline lists this process's socket descriptors before and after the driver's connect
// and keeps the single new one connected to host:port. If it is not exactly one (another thread
// opened a socket to the same server at the same moment), the answer is -1 and lifeline falls back
// to the ping window and the driver's own timeouts: never a wrong descriptor.
#ifndef LIFELINE_DETAIL_SOCKET_DISCOVERY_HPP
#define LIFELINE_DETAIL_SOCKET_DISCOVERY_HPP

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace lifeline::detail {

// Descriptors of this process that are sockets, sorted.
inline std::vector<int> open_sockets() {
    std::vector<int> fds;
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return fds;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        int fd = std::atoi(e->d_name);
        struct stat st;
        if (::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) fds.push_back(fd);
    }
    ::closedir(d);
    std::sort(fds.begin(), fds.end());
    return fds;
}

inline bool peer_is(int fd, const std::string& host, std::uint16_t port) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
    char text[INET6_ADDRSTRLEN] = {};
    std::uint16_t p = 0;
    if (ss.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
        p = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        p = ntohs(a->sin6_port);
    } else {
        return false;
    }
    if (p != port) return false;
    // A host name (not an address literal) cannot be compared without resolving: accept the port.
    in6_addr probe6;
    in_addr probe4;
    bool literal = ::inet_pton(AF_INET, host.c_str(), &probe4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &probe6) == 1;
    return !literal || host == text;
}

// The one socket in `after` but not in `before` whose peer is host:port, else -1.
inline int find_new_socket(const std::vector<int>& before, const std::vector<int>& after, const std::string& host,
                           std::uint16_t port) {
    int found = -1;
    for (int fd : after) {
        if (std::binary_search(before.begin(), before.end(), fd)) continue;
        if (!peer_is(fd, host, port)) continue;
        if (found != -1) return -1;  // ambiguous: do not guess
        found = fd;
    }
    return found;
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_SOCKET_DISCOVERY_HPP
