// (f) outage load: connect attempts per second that 64 callers send to a down server — lifeline
// (default policy: shared retry budget + per-endpoint circuit breaker) vs a naive retry loop on
// the raw driver.
//
// The "down server" is a loopback TCP listener on 127.0.0.1 (a free port) that accepts every
// connection and closes it at once, counting accepts: the client sees 2013 "Lost connection ...
// reading initial communication packet", as from a server dying during the handshake. Nothing
// but 127.0.0.1 is contacted. Each side runs 64 threads for 3 s against its own listener:
//   naive:    mysql_init + mysql_real_connect, on failure mysql_close and try again at once;
//   lifeline: one lifeline::connection<capi> per thread, db.query("SELECT 1", idempotent) in a
//             loop, calling again at once after each failure (as 64 request handlers would).
// Figures (the issue sets no number; these targets are the benchmark author's): lifeline's
// attempts/s ≤ 64 (fewer than one attempt per caller per second), and lifeline/naive ≤ 0.01.
#include "bench_common.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

using namespace lifeline;
using namespace lifeline::bench;

namespace {

constexpr int callers = 64;
constexpr auto phase_time = std::chrono::seconds(3);

class counting_listener {
public:
    counting_listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw test::server_error("socket() failed");
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 4096) != 0)
            throw test::server_error("bind/listen on 127.0.0.1 failed");
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { loop(); });
    }
    ~counting_listener() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    unsigned port() const { return port_; }
    unsigned long long accepted() const { return accepted_.load(); }

private:
    void loop() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            for (;;) {
                int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) break;
                ++accepted_;
                ::close(c);
            }
        }
    }
    int fd_ = -1;
    unsigned port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<unsigned long long> accepted_{0};
    std::thread thread_;
};

// Runs body(i, stop) on `callers` threads for phase_time; returns the listener's accepts/s.
template <class Body>
double run_phase(counting_listener& l, Body body) {
    std::atomic<bool> stop{false};
    const auto a0 = l.accepted();
    const auto t0 = steady::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < callers; ++i) threads.emplace_back([&, i] { body(i, stop); });
    std::this_thread::sleep_for(phase_time);
    stop = true;
    for (auto& t : threads) t.join();
    const double secs = std::chrono::duration<double>(steady::now() - t0).count();
    return static_cast<double>(l.accepted() - a0) / secs;
}

}  // namespace

int main() {
    return guarded("bench_outage", [] {
        auto srv = test::server::attach();  // only for the credentials; the down server is the listener
        const auto e = srv.where();

        // naive retry loop on the raw driver
        std::atomic<unsigned long long> naive_attempts{0};
        double naive_rate = 0;
        {
            counting_listener l;
            naive_rate = run_phase(l, [&](int, std::atomic<bool>& stop) {
                while (!stop) {
                    MYSQL* m = mysql_init(nullptr);
                    unsigned timeout = 5;
                    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
                    ++naive_attempts;
                    bool ok = mysql_real_connect(m, "127.0.0.1", e.app_user.c_str(), e.app_password.c_str(),
                                                 e.database.c_str(), l.port(), nullptr, 0) != nullptr;
                    mysql_close(m);
                    if (ok) return;
                }
            });
        }
        // lifeline, default policy
        double ll_rate = 0;
        unsigned long long ll_attempts = 0, ll_calls = 0;
        {
            counting_listener l;
            auto opts = lifeline_options(e);
            opts.port = static_cast<std::uint16_t>(l.port());
            std::vector<std::unique_ptr<connection<capi>>> dbs;
            for (int i = 0; i < callers; ++i) dbs.push_back(std::make_unique<connection<capi>>(opts));
            std::vector<unsigned long long> calls(callers, 0);
            ll_rate = run_phase(l, [&](int i, std::atomic<bool>& stop) {
                while (!stop) {
                    std::error_code ec;
                    diagnostics diag;
                    dbs[static_cast<std::size_t>(i)]->query("SELECT 1", idempotent, {}, ec, diag);
                    ++calls[static_cast<std::size_t>(i)];
                    if (!ec) return;
                }
            });
            for (int i = 0; i < callers; ++i) {
                ll_attempts += dbs[static_cast<std::size_t>(i)]->stats().reconnects;
                ll_calls += calls[static_cast<std::size_t>(i)];
            }
        }
        const double secs = std::chrono::duration<double>(phase_time).count();
        info("outage: naive raw loop " + std::to_string(naive_rate) + " accepts/s (" +
             std::to_string(naive_attempts.load()) + " attempts counted in-process in ~" + std::to_string(secs) +
             " s); lifeline " + std::to_string(ll_rate) + " accepts/s (" + std::to_string(ll_attempts) +
             " connect attempts in lifeline's stats, " + std::to_string(ll_calls) + " failed calls)");
        figure("outage_64_callers_lifeline_attempts_per_s", ll_rate, "attempts/s", "<=", 64);
        figure("outage_64_callers_lifeline_over_naive", naive_rate > 0 ? ll_rate / naive_rate : 1, "ratio", "<=",
               0.01);
        return 0;
    });
}
