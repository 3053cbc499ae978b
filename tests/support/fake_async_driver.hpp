// A fake NON-BLOCKING driver for unit tests of the async loop (detail/async_core.hpp): the shape of
// MariaDB Connector/C's mysql_*_start / _cont API over the scripted fake server of fake_driver.hpp.
//
// Each step is decided by the blocking fake (the same SQL semantics, faults, processlist, locks,
// identity), then the answer travels over the session's real socketpair: the step returns
// io_wait::read, and the "server" writes one byte to its end — at once, or later from a responder
// thread (latency). resume() consumes the byte and finishes the step. So the async core really
// watches a socket with Asio, and:
//   - a statement containing "HANG" (or every step while `frozen`) is never answered: only a
//     deadline or cancel() ends it;
//   - a fault that breaks the connection closes the server's end: the client sees EOF;
//   - kill_idle() (KILL while idle) makes the socket poll dead before anything is sent.
// It also checks the fd-ownership rule: the session closes its own client fd, exactly once; if
// anything else (the stream_descriptor) had closed it first, `bad_closes` counts it.
#ifndef LIFELINE_TESTS_SUPPORT_FAKE_ASYNC_DRIVER_HPP
#define LIFELINE_TESTS_SUPPORT_FAKE_ASYNC_DRIVER_HPP

#include "fake_driver.hpp"

#include <lifeline/async_driver_traits.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace lifeline::test {

struct fake_async;  // the driver tag

// Knobs and counters of the non-blocking side (one per test; thread-safe).
struct fake_async_control {
    std::atomic<bool> frozen{false};            // no step is answered
    std::atomic<int> latency_ms{0};             // answers come this late (from the responder thread)
    std::atomic<int> connect_latency_ms{0};     // the connect's answer comes this late
    std::atomic<int> driver_timeout_ms{0};      // > 0: every wait also asks for io_wait::timeout after it
    std::atomic<int> waits{0};                  // socket waits the steps asked for
    std::atomic<int> abandons{0};               // handles abandoned mid-step
    std::atomic<int> closes{0};                 // sessions closed (idle or abandoned)
    std::atomic<int> bad_closes{0};             // a client fd that was already closed by someone else
    std::atomic<int> connecting{0}, max_connecting{0};
    std::atomic<int> driver_timeouts{0};        // resume(io_wait::timeout) calls
    std::mutex m;
    std::vector<int> opened_fds;                // client fds, in order of creation
    std::multiset<int> closed_fds;              // client fds closed by the session

    static fake_async_control*& current() {
        static fake_async_control* c = nullptr;
        return c;
    }

    // Writes one byte to `fd` after `delay` (a dup the responder owns, so a session that closes
    // meanwhile does not matter).
    void answer(int server_fd, int delay_ms) {
        if (server_fd < 0) return;
        if (delay_ms <= 0) {
            const char b = 'a';
            (void)!::send(server_fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            return;
        }
        const int dup = ::fcntl(server_fd, F_DUPFD_CLOEXEC, 0);
        if (dup < 0) return;
        std::lock_guard<std::mutex> lock(rm_);
        queue_.push_back({std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms), dup});
        if (!responder_.joinable()) responder_ = std::thread([this] { respond(); });
        rcv_.notify_all();
    }

    fake_async_control() { current() = this; }
    ~fake_async_control() {
        {
            std::lock_guard<std::mutex> lock(rm_);
            stop_ = true;
        }
        rcv_.notify_all();
        if (responder_.joinable()) responder_.join();
        for (auto& q : queue_) ::close(q.fd);
        current() = nullptr;
    }
    fake_async_control(const fake_async_control&) = delete;
    fake_async_control& operator=(const fake_async_control&) = delete;

private:
    struct pending {
        std::chrono::steady_clock::time_point at;
        int fd;
    };
    void respond() {
        std::unique_lock<std::mutex> lock(rm_);
        while (!stop_) {
            if (queue_.empty()) {
                rcv_.wait(lock);
                continue;
            }
            auto first = queue_.begin();
            for (auto it = queue_.begin(); it != queue_.end(); ++it)
                if (it->at < first->at) first = it;
            if (std::chrono::steady_clock::now() < first->at) {
                const auto at = first->at;  // a copy: the queue may grow (and move) while we wait
                rcv_.wait_until(lock, at);
                continue;
            }
            const int fd = first->fd;
            queue_.erase(first);
            const char b = 'a';
            (void)!::send(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            ::close(fd);
        }
    }
    std::mutex rm_;
    std::condition_variable rcv_;
    std::vector<pending> queue_;
    std::thread responder_;
    bool stop_ = false;
};

class fake_async_session {
public:
    using blocking = driver_traits<fake>;

    fake_async_session() = default;
    fake_async_session(const fake_async_session&) = delete;
    fake_async_session& operator=(const fake_async_session&) = delete;
    ~fake_async_session() { abandon(); }

    int start_connect(const connect_options& o, std::chrono::milliseconds budget) {
        abandon();
        begin(kind::connect, phase::connect);
        options_ = o;
        budget_ = budget;
        auto* c = ctl();
        const int now = ++c->connecting;
        int seen = c->max_connecting.load();
        while (now > seen && !c->max_connecting.compare_exchange_weak(seen, now)) {
        }
        connecting_ = true;
        if (int ms = c->connect_latency_ms.load(); ms > 0) {
            // The answer (refused or accepted) comes later: a socket of its own to wait on.
            int fds[2];
            if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return fail(2002, phase::connect);
            pre_client_ = fds[0];
            pre_server_ = fds[1];
            c->answer(pre_server_, ms);
            return wait_read();
        }
        return do_connect();
    }

    int start_query(std::string_view sql, result* out) {
        begin(kind::query, phase::read_result);
        auto* c = ctl();
        if (c->frozen || sql.find("HANG") != std::string_view::npos) {
            if (!s_.open || s_.server_fd < 0) return fail(2006, phase::send);
            return wait_read();  // never answered
        }
        pending_ok_ = blocking::execute(s_, sql, out, pending_err_);
        return answer_later();
    }

    int start_ping() {
        begin(kind::ping, phase::send);
        pending_ok_ = blocking::ping(s_, pending_err_);
        if (!pending_ok_) return finish();
        if (ctl()->frozen) return wait_read();
        return answer_later();
    }

    int start_reset() {
        begin(kind::reset, phase::read_result);
        pending_ok_ = blocking::reset_session(s_, pending_err_);
        if (!pending_ok_) return finish();
        return answer_later();
    }

    int resume(int ready) {
        ++ctl()->waits;
        if (ready & io_wait::timeout) {
            ++ctl()->driver_timeouts;
            pending_ok_ = false;
            blocking::fail(2013, where_, pending_err_, "Lost connection to server during query (read timeout)");
            return finish();
        }
        const int fd = kind_ == kind::connect && pre_client_ >= 0 ? pre_client_ : s_.client_fd;
        char buf[16];
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return io_wait::read;  // spurious
        if (kind_ == kind::connect && pre_client_ >= 0) {
            close_pre();
            return do_connect();
        }
        if (n == 0 && pending_ok_) {
            // The server's end closed while the statement ran (KILL, crash): lost mid-query.
            pending_ok_ = false;
            blocking::fail(2013, phase::read_result, pending_err_, "Lost connection to server during query");
        }
        return finish();
    }

    bool ok() const noexcept { return ok_; }
    const diagnostics& error() const noexcept { return error_; }
    phase where() const noexcept { return where_; }
    bool is_open() const noexcept { return s_.open; }
    int socket() const noexcept {
        if (kind_ == kind::connect && pre_client_ >= 0) return pre_client_;
        return s_.open ? s_.client_fd : -1;
    }
    std::chrono::milliseconds timeout() const noexcept { return std::chrono::milliseconds(ctl()->driver_timeout_ms.load()); }

    void close() noexcept {
        close_pre();
        if (!s_.open && s_.client_fd < 0) return;
        if (ctl()) ++ctl()->closes;
        note_close(s_.client_fd);
        blocking::close(s_);
        kind_ = kind::none;
    }
    void abandon() noexcept {
        if (kind_ != kind::none && ctl()) ++ctl()->abandons;
        if (connecting_) {
            connecting_ = false;
            if (ctl()) --ctl()->connecting;
        }
        close_pre();
        if (s_.client_fd >= 0) ::shutdown(s_.client_fd, SHUT_RDWR);
        kind_ = kind::none;
        close();
    }

    bool in_transaction() const noexcept { return blocking::in_transaction(s_); }
    bool untracked_state_changed() noexcept { return s_.open && blocking::untracked_state_changed(s_); }
    bool session_changed() noexcept { return s_.open && blocking::session_changed(s_); }
    bool reconnect_option_enabled() noexcept { return blocking::reconnect_option_enabled(s_); }
    fake_session* native() noexcept { return &s_; }

    // For tests: the server's end of this session (KILL while idle closes it).
    fake_session& blocking_session() noexcept { return s_; }

private:
    enum class kind { none, connect, query, ping, reset };

    static fake_async_control* ctl() noexcept { return fake_async_control::current(); }

    void begin(kind k, phase p) {
        kind_ = k;
        where_ = p;
        ok_ = false;
        error_ = diagnostics{};
        pending_ok_ = false;
        pending_err_ = diagnostics{};
    }

    int do_connect() {
        const bool ok = blocking::connect(s_, options_, budget_, pending_err_);
        if (!ok) {
            pending_err_.where = phase::connect;
            return fail_with(pending_err_);
        }
        {
            std::lock_guard<std::mutex> lock(ctl()->m);
            ctl()->opened_fds.push_back(s_.client_fd);
        }
        pending_ok_ = true;
        if (ctl()->frozen) return wait_read();  // the handshake never comes
        return answer_later();
    }

    int answer_later() {
        if (s_.server_fd >= 0) ctl()->answer(s_.server_fd, ctl()->latency_ms.load());
        return wait_read();
    }
    int wait_read() { return io_wait::read | (ctl()->driver_timeout_ms.load() > 0 ? io_wait::timeout : 0); }

    int finish() {
        if (connecting_) {
            connecting_ = false;
            --ctl()->connecting;
        }
        ok_ = pending_ok_;
        if (!ok_) error_ = pending_err_;
        kind_ = kind::none;
        return 0;
    }
    int fail(unsigned code, phase where) {
        pending_ok_ = false;
        blocking::fail(code, where, pending_err_, "fake: no session");
        return finish();
    }
    int fail_with(const diagnostics& d) {
        pending_ok_ = false;
        pending_err_ = d;
        return finish();
    }

    void close_pre() noexcept {
        if (pre_client_ >= 0) ::close(pre_client_);
        if (pre_server_ >= 0) ::close(pre_server_);
        pre_client_ = pre_server_ = -1;
    }
    static void note_close(int fd) noexcept {
        auto* c = ctl();
        if (fd < 0 || !c) return;
        if (::fcntl(fd, F_GETFD) == -1) ++c->bad_closes;  // closed behind the driver's back
        std::lock_guard<std::mutex> lock(c->m);
        c->closed_fds.insert(fd);
    }

    fake_session s_;
    kind kind_ = kind::none;
    phase where_ = phase::send;
    bool ok_ = false, pending_ok_ = false, connecting_ = false;
    diagnostics error_, pending_err_;
    connect_options options_;
    std::chrono::milliseconds budget_{0};
    int pre_client_ = -1, pre_server_ = -1;
};

}  // namespace lifeline::test

template <>
struct lifeline::async_driver_traits<lifeline::test::fake_async> {
    using session_type = lifeline::test::fake_async_session;
    using native_handle = lifeline::test::fake_session*;
    static constexpr const char* name = "fake (non-blocking)";
};

#endif
