// (b) throughput with 1, 4, 16 and 64 threads running `SELECT 1` back to back for a fixed time:
//   raw:  a raw MYSQL* per thread (the reference);
//   pool: one lifeline::pool<capi> (min_size = max_size = threads) shared by all threads, each
//         query a borrow + query + return;
//   connection_per_thread: a lifeline::connection<capi> per thread.
// All clients are connected first; then 32 cycles of windows raw, connection, pool, raw, pool,
// connection run per thread count (interleaved to cancel drift; no side runs twice in a row).
// Each window runs 50 ms unmeasured, then counts queries for 200 ms. Each figure is the median
// over cycles of (queries/s of the side) / (raw queries/s in the same cycle).
//
// Why the warm-up and the order (measured here, 2 vCPUs, client and server on the same machine):
// the first ~50 ms after the load moves to other connections run up to 3x faster (the scheduler
// has not yet spread the client and server threads over the CPUs), then every side settles to
// the same steady state. With 200 ms windows counted from the start, a side that ran twice in a
// row (the old order ran the pool twice) lost that burst in its second window: the pool measured
// 0.83-0.90 of raw while its borrow + return cost 0.2-0.4 µs of a 55-100 µs query.
#include "bench_common.hpp"

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>

#if __has_include(<lifeline/pool.hpp>)
#include <lifeline/pool.hpp>
#define LIFELINE_BENCH_HAVE_POOL 1
#endif

using namespace lifeline;
using namespace lifeline::bench;

namespace {

constexpr auto warmup = std::chrono::milliseconds(50);
constexpr auto window = std::chrono::milliseconds(200);
// 32: at 1 thread two 200 ms windows of the same side differ by up to 15 % on this VM, and at 4
// threads the cycle ratios spread over about +-5 % (p10..p90, printed in the log): the median of 8
// cycle ratios moved by 5-8 points between runs, the median of 16 still by 3-5.
constexpr int cycles = 32;

// Runs the (already connected) clients together for one window (warm-up, then measured); returns
// queries per second over the measured part.
template <class Client>
double run_window(std::vector<std::unique_ptr<Client>>& clients) {
    const std::size_t n = clients.size();
    enum : int { waiting, warming, measuring, stopped };
    std::atomic<int> phase{waiting};
    std::vector<unsigned long long> counts(n, 0);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < n; ++i)
        threads.emplace_back([&, i] {
            while (phase.load(std::memory_order_acquire) == waiting) std::this_thread::yield();
            unsigned long long c = 0;
            for (int p; (p = phase.load(std::memory_order_relaxed)) != stopped;) {
                clients[i]->select1();
                c += p == measuring;
            }
            counts[i] = c;
        });
    phase.store(warming, std::memory_order_release);
    std::this_thread::sleep_for(warmup);
    auto t0 = steady::now();
    phase.store(measuring, std::memory_order_relaxed);
    std::this_thread::sleep_for(window);
    phase.store(stopped, std::memory_order_relaxed);
    double secs = std::chrono::duration<double>(steady::now() - t0).count();
    for (auto& t : threads) t.join();
    unsigned long long total = 0;
    for (auto c : counts) total += c;
    return static_cast<double>(total) / secs;
}

struct raw_client {
    test::mysql_handle m;
    std::string sink;
    void select1() {
        if (!raw_select(m.get(), "SELECT 1", 8, sink)) throw test::server_error(mysql_error(m.get()));
    }
};

struct lifeline_client {
    explicit lifeline_client(const connect_options& o) : db(o) { db.connect(); }
    connection<capi> db;
    result kept;  // read into a kept result, as the raw client keeps its string
    std::string sink;
    void select1() {
        db.query("SELECT 1", kept, idempotent);
        sink = *kept.rows[0][0];
    }
};

#ifdef LIFELINE_BENCH_HAVE_POOL
struct pool_client {
    pool<capi>* p;
    result kept;
    std::string sink;
    void select1() {
        auto c = p->borrow();
        c->query("SELECT 1", kept, idempotent);
        sink = *kept.rows[0][0];
    }
};
#endif

}  // namespace

int main() {
    return guarded("bench_throughput", [] {
        auto srv = test::server::attach();
        const auto e = srv.where();
        const auto opts = lifeline_options(e);
        auto make_raw = [&] { return std::make_unique<raw_client>(raw_client{test::capi_connect(e), {}}); };
        auto make_ll = [&] { return std::make_unique<lifeline_client>(opts); };
        for (unsigned n : {1u, 4u, 16u, 64u}) {
            std::vector<std::unique_ptr<raw_client>> raws;
            std::vector<std::unique_ptr<lifeline_client>> lls;
            for (unsigned i = 0; i < n; ++i) {
                raws.push_back(make_raw());
                lls.push_back(make_ll());
            }
#ifdef LIFELINE_BENCH_HAVE_POOL
            pool_options po;
            po.min_size = n;
            po.max_size = n;
            pool<capi> shared{opts, po};
            {  // open all n connections before timing
                std::vector<pool<capi>::pooled> held;
                for (unsigned i = 0; i < n; ++i) held.push_back(shared.borrow());
            }
            std::vector<std::unique_ptr<pool_client>> pools;
            for (unsigned i = 0; i < n; ++i) pools.push_back(std::make_unique<pool_client>(pool_client{&shared, {}, {}}));
#endif
            run_window(raws);  // warm-up
            run_window(lls);
            std::vector<double> ll_ratio, pool_ratio;
            double raw_sum = 0, ll_sum = 0, pool_sum = 0;
            for (int c = 0; c < cycles; ++c) {
                double raw = 0, ll = 0, pl = 0;
                raw += run_window(raws);
                ll += run_window(lls);
#ifdef LIFELINE_BENCH_HAVE_POOL
                pl += run_window(pools);
#endif
                raw += run_window(raws);
#ifdef LIFELINE_BENCH_HAVE_POOL
                pl += run_window(pools);
#endif
                ll += run_window(lls);
                ll_ratio.push_back(ll / raw);
                pool_ratio.push_back(pl / raw);
                raw_sum += raw / 2;
                ll_sum += ll / 2;
                pool_sum += pl / 2;
            }
            info("throughput " + std::to_string(n) + " threads, mean of " + std::to_string(cycles) + " cycles: raw " +
                 std::to_string(raw_sum / cycles) + " q/s, lifeline connection per thread " +
                 std::to_string(ll_sum / cycles) + " q/s, pool " + std::to_string(pool_sum / cycles) + " q/s");
            info("throughput " + std::to_string(n) + " threads, cycle ratios p10 .. p25 .. median .. p75 .. p90: " +
                 "connection per thread " + spread(ll_ratio) + "; pool " + spread(pool_ratio));
#ifdef LIFELINE_BENCH_HAVE_POOL
            figure("throughput_" + std::to_string(n) + "t_pool_over_raw_median", median(pool_ratio), "ratio", ">=",
                   0.95);
#else
            not_measured("throughput_" + std::to_string(n) + "t_pool_over_raw", "include/lifeline/pool.hpp does not exist");
#endif
            figure("throughput_" + std::to_string(n) + "t_lifeline_connection_per_thread_over_raw_median",
                   median(ll_ratio), "ratio", ">=", 0.95);
        }
        return 0;
    });
}
