// (g) async throughput: `SELECT 1` back to back, for a fixed time, by
//   async:    64 lifeline::async_connection<capi> on ONE io_context thread (callbacks; each
//             connection sends its next query from the previous one's handler);
//   raw_nb:   a hand-written raw non-blocking C API loop on ONE thread: 64 MYSQL* in
//             MYSQL_OPT_NONBLOCK mode, mysql_real_query_start / _cont + mysql_store_result_start /
//             _cont, driven by poll() over their sockets; the row read into a string like lifeline;
//   blocking: 64 lifeline::connection<capi>, one per thread, 64 threads.
// All clients are connected first; then 12 cycles of windows raw_nb, async, blocking,
// blocking, async, raw_nb (interleaved to cancel drift). Only queries answered inside a window
// count; the ones in flight at its end are drained before the next window. Each figure is the
// median over cycles of (async queries/s) / (the other side's queries/s in the same cycle).
// Figures: async / raw_nb (issue 11's target: >= 0.95) and async / blocking (reported, no target).
#include "bench_common.hpp"

#include <lifeline/driver/capi_async.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <thread>

using namespace lifeline;
using namespace lifeline::bench;

namespace {

constexpr int clients = 64;
constexpr auto window = std::chrono::milliseconds(400);
constexpr int cycles = 12;

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Other work on the machine moves every figure here: say how busy it was.
std::string load_average() {
    std::FILE* f = std::fopen("/proc/loadavg", "r");
    if (!f) return "unknown";
    char buf[64] = {};
    const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
    std::fclose(f);
    std::string s = ok ? buf : "unknown";
    return s.substr(0, s.find(' ', s.find(' ', s.find(' ') + 1) + 1));
}

// --- raw: non-blocking C API, poll() loop, one thread ---------------------------------------------
class raw_nonblocking {
public:
    explicit raw_nonblocking(const test::endpoint& e) {
        for (int i = 0; i < clients; ++i) {
            auto c = std::make_unique<conn>();
            c->m = mysql_init(nullptr);
            mysql_options(c->m, MYSQL_OPT_NONBLOCK, nullptr);
            MYSQL* ret = nullptr;
            int st = mysql_real_connect_start(&ret, c->m, e.host.c_str(), e.app_user.c_str(), e.app_password.c_str(),
                                              e.database.c_str(), e.port, nullptr, 0);
            while (st) st = mysql_real_connect_cont(&ret, c->m, wait_one(c->m, st));
            if (!ret) throw test::server_error(std::string("raw connect: ") + mysql_error(c->m));
            conns_.push_back(std::move(c));
        }
    }
    ~raw_nonblocking() {
        for (auto& c : conns_) mysql_close(c->m);
    }

    double run_window() {
        const auto t0 = steady::now(), until = t0 + window;
        unsigned long long done = 0;
        bool stopping = false;
        for (auto& c : conns_) run(*c, done, stopping);
        std::vector<pollfd> fds(conns_.size());
        for (;;) {
            std::size_t active = 0;
            for (std::size_t i = 0; i < conns_.size(); ++i) {
                conn& c = *conns_[i];
                fds[i].fd = c.status ? static_cast<int>(mysql_get_socket(c.m)) : -1;
                fds[i].events = static_cast<short>(((c.status & MYSQL_WAIT_READ) ? POLLIN : 0) |
                                                   ((c.status & MYSQL_WAIT_WRITE) ? POLLOUT : 0));
                fds[i].revents = 0;
                if (c.status) ++active;
            }
            if (!active) break;
            if (::poll(fds.data(), fds.size(), 1000) < 0) continue;
            if (!stopping && steady::now() >= until) stopping = true;
            for (std::size_t i = 0; i < conns_.size(); ++i) {
                if (!fds[i].revents) continue;
                conn& c = *conns_[i];
                int ready = 0;
                if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ready |= MYSQL_WAIT_READ;
                if (fds[i].revents & POLLOUT) ready |= MYSQL_WAIT_WRITE;
                if (step(c, ready) && !stopping) {  // a query finished: count it, send the next
                    ++done;
                    run(c, done, stopping);
                }
            }
        }
        return static_cast<double>(done) / seconds(window);
    }

private:
    struct conn {
        MYSQL* m = nullptr;
        int status = 0;
        bool storing = false;
        int ret = 0;
        MYSQL_RES* res = nullptr;
        std::string sink;
    };

    static int wait_one(MYSQL* m, int st) {
        pollfd p{static_cast<int>(mysql_get_socket(m)), 0, 0};
        if (st & MYSQL_WAIT_READ) p.events |= POLLIN;
        if (st & MYSQL_WAIT_WRITE) p.events |= POLLOUT;
        ::poll(&p, 1, 5000);
        int ready = 0;
        if (p.revents & (POLLIN | POLLERR | POLLHUP)) ready |= MYSQL_WAIT_READ;
        if (p.revents & POLLOUT) ready |= MYSQL_WAIT_WRITE;
        return ready ? ready : (st & MYSQL_WAIT_TIMEOUT);
    }

    // Sends queries until one has to wait (one that finishes at once is counted, the next sent).
    void run(conn& c, unsigned long long& done, bool stopping) {
        for (;;) {
            c.storing = false;
            c.status = mysql_real_query_start(&c.ret, c.m, "SELECT 1", 8);
            if (c.status || !advance(c) || stopping) return;
            ++done;
        }
    }
    // true when the query (and its result) is complete.
    bool step(conn& c, int ready) {
        c.status = c.storing ? mysql_store_result_cont(&c.res, c.m, ready) : mysql_real_query_cont(&c.ret, c.m, ready);
        if (c.status) return false;
        return advance(c);
    }
    bool advance(conn& c) {
        if (!c.storing) {
            if (c.ret != 0) throw test::server_error(std::string("raw query: ") + mysql_error(c.m));
            c.storing = true;
            c.status = mysql_store_result_start(&c.res, c.m);
            if (c.status) return false;
        }
        if (!c.res) throw test::server_error(std::string("raw store: ") + mysql_error(c.m));
        while (MYSQL_ROW row = mysql_fetch_row(c.res)) {
            unsigned long* len = mysql_fetch_lengths(c.res);
            c.sink.assign(row[0] ? row[0] : "", row[0] ? len[0] : 0);
        }
        mysql_free_result(c.res);
        c.res = nullptr;
        c.status = 0;
        return true;
    }

    std::vector<std::unique_ptr<conn>> conns_;
};

// --- async lifeline: 64 connections, one io thread ------------------------------------------------
class async_side {
public:
    explicit async_side(const connect_options& o) {
        for (int i = 0; i < clients; ++i) dbs_.push_back(std::make_unique<async_connection<capi>>(io_.get_executor(), o));
        int ok = 0;
        for (auto& d : dbs_)
            d->async_connect([&](std::error_code ec) {
                if (ec) throw test::server_error("async connect: " + ec.message());
                ++ok;
            });
        io_.run();
        if (ok != clients) throw test::server_error("async connect: not every connection came up");
    }
    ~async_side() {
        dbs_.clear();
        io_.restart();
        io_.run();
    }

    double run_window() {
        unsigned long long done = 0;
        bool stopping = false;
        std::function<void(std::size_t)> next = [&](std::size_t i) {
            dbs_[i]->async_query("SELECT 1", lifeline::idempotent, [&, i](std::error_code ec, result r) {
                if (ec) throw test::server_error("async query: " + ec.message());
                sink_ = std::move(*r.scalar());
                if (stopping) return;
                ++done;
                next(i);
            });
        };
        boost::asio::steady_timer stop(io_, window);
        stop.async_wait([&](boost::system::error_code) { stopping = true; });
        for (std::size_t i = 0; i < dbs_.size(); ++i) next(i);
        io_.restart();
        io_.run();  // returns once the queries in flight at the window's end have been answered
        return static_cast<double>(done) / seconds(window);
    }

private:
    boost::asio::io_context io_;
    std::vector<std::unique_ptr<async_connection<capi>>> dbs_;
    std::string sink_;
};

// --- blocking lifeline: 64 connections, 64 threads ------------------------------------------------
class blocking_side {
public:
    explicit blocking_side(const connect_options& o) {
        for (int i = 0; i < clients; ++i) {
            dbs_.push_back(std::make_unique<connection<capi>>(o));
            dbs_.back()->connect();
        }
    }
    double run_window() {
        std::atomic<bool> go{false}, stop{false};
        std::vector<unsigned long long> counts(dbs_.size(), 0);
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < dbs_.size(); ++i)
            threads.emplace_back([&, i] {
                std::string sink;
                while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
                unsigned long long c = 0;
                while (!stop.load(std::memory_order_relaxed)) {
                    sink = *dbs_[i]->query("SELECT 1", idempotent).scalar();
                    if (!stop.load(std::memory_order_relaxed)) ++c;
                }
                counts[i] = c;
            });
        go.store(true, std::memory_order_release);
        std::this_thread::sleep_for(window);
        stop.store(true);
        for (auto& t : threads) t.join();
        unsigned long long total = 0;
        for (auto c : counts) total += c;
        return static_cast<double>(total) / seconds(window);
    }

private:
    std::vector<std::unique_ptr<connection<capi>>> dbs_;
};

}  // namespace

int main() {
    return guarded("bench_async", [] {
        auto srv = test::server::attach();
        const auto e = srv.where();
        const auto opts = lifeline_options(e);
        raw_nonblocking raw(e);
        async_side async(opts);
        blocking_side blocking(opts);
        raw.run_window();  // warm-up
        async.run_window();
        blocking.run_window();
        std::vector<double> over_raw, over_blocking;
        double raw_sum = 0, async_sum = 0, blocking_sum = 0;
        for (int c = 0; c < cycles; ++c) {
            double r = 0, a = 0, b = 0;
            r += raw.run_window();
            a += async.run_window();
            b += blocking.run_window();
            b += blocking.run_window();
            a += async.run_window();
            r += raw.run_window();
            over_raw.push_back(a / r);
            over_blocking.push_back(a / b);
            raw_sum += r / 2;
            async_sum += a / 2;
            blocking_sum += b / 2;
            info("cycle " + std::to_string(c) + ": raw non-blocking 1 thread " + std::to_string(r / 2) +
                 " q/s, async lifeline 1 thread " + std::to_string(a / 2) + " q/s, blocking lifeline 64 threads " +
                 std::to_string(b / 2) + " q/s");
        }
        info("async throughput, 64 connections, mean of " + std::to_string(cycles) + " cycles: raw non-blocking loop " +
             std::to_string(raw_sum / cycles) + " q/s (1 thread), async lifeline " + std::to_string(async_sum / cycles) +
             " q/s (1 thread), blocking lifeline " + std::to_string(blocking_sum / cycles) + " q/s (64 threads)");
        auto spread = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return "min " + std::to_string(v.front()) + ", max " + std::to_string(v.back());
        };
        info("async / raw non-blocking per cycle: " + spread(over_raw) + "; async / blocking per cycle: " +
             spread(over_blocking) + "; load average at the end: " + load_average());
        figure("async_64conn_1thread_over_raw_nonblocking_1thread_median", median(over_raw), "ratio", ">=", 0.95);
        reported("async_64conn_1thread_over_blocking_64conn_64threads_median", median(over_blocking), "ratio");
        return 0;
    });
}
