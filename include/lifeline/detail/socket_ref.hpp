// lifeline — a session's own reference to its driver's socket.
//
// The watchdog shutdown()s, and the liveness probe poll()s, a session's socket from lifeline's
// side. Doing that through the driver's descriptor NUMBER is unsafe: Connector/C closes its socket
// itself on errors such as 2013, and the number can then be handed to another thread's new
// connection, whose socket lifeline would cut or poll. So each session keeps its OWN descriptor
// (fcntl(F_DUPFD_CLOEXEC) of the driver's, taken right after connect) for as long as the session
// lives. A duplicate refers to the very same socket object: shutdown() and poll() on it act on the
// session's connection and on nothing else, whatever the driver does with its own number. The
// duplicate is closed only by the session's close()/destructor/move-assignment, never while a
// (possibly watchdog-guarded) driver call runs, so the number the watchdog holds stays this
// session's for the whole call.
//
// Cost: while the session lives, the socket stays open even after the driver closed its own
// descriptor (the driver has already given up on it; lifeline drops such a session at once).
#ifndef LIFELINE_DETAIL_SOCKET_REF_HPP
#define LIFELINE_DETAIL_SOCKET_REF_HPP

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace lifeline::detail {

class socket_ref {
public:
    socket_ref() noexcept = default;
    // Takes ownership of an open descriptor (normally one made by duplicate()).
    explicit socket_ref(int owned_fd) noexcept : fd_(owned_fd < 0 ? -1 : owned_fd) {}
    // A new descriptor for the socket behind fd (close-on-exec); empty if fd < 0 or dup failed.
    static socket_ref duplicate(int fd) noexcept {
        if (fd < 0) return {};
        return socket_ref(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    }

    socket_ref(socket_ref&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    socket_ref& operator=(socket_ref&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    socket_ref(const socket_ref&) = delete;
    socket_ref& operator=(const socket_ref&) = delete;
    ~socket_ref() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);  // never retried on EINTR: Linux releases the number anyway
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_SOCKET_REF_HPP
