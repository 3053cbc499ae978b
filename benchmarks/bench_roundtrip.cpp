// (a) `SELECT 1` round trip on one thread: raw MYSQL* vs lifeline::connection<capi> vs
// lifeline::pool<capi> borrow + query + return (a pool of one connection).
//
// Like for like in what each side keeps: the raw loop reads each value into a string it keeps, so
// lifeline reads into a result it keeps (query(sql, into, ...), the hot-path form) and the pool side does the same
// through its borrowed connection. The convenience form that returns a fresh result (3
// allocations a query) is measured beside them and printed as `reported` lines (no target).
//
// Raw, lifeline, pool, fresh-result and streamed-raw batches alternate (raw, lifeline, pool,
// fresh, streamed, streamed, fresh, pool, lifeline, raw, ...) on hot connections to the same
// server, so drift (CPU frequency, server caches, noisy neighbours) hits every side alike. Each batch gives µs/query. Two figures per
// side, both held to the target: median(side's batches) / median(raw batches), and the median
// over rounds of (side's batch / raw batch of the same round). They differ when a side's batch
// times are bimodal (see benchmarks/README.md).
//
// The raw loop reads with mysql_store_result, the C API's usual pattern; lifeline's adapter reads
// with mysql_use_result (rows straight into the result, without the driver's own copy). A raw
// loop that also streams is measured beside them and printed as a `reported` line (no target), so
// the figures can be read with and without that difference.
#include "bench_common.hpp"

#include <cstring>

#if __has_include(<lifeline/pool.hpp>)
#include <lifeline/pool.hpp>
#define LIFELINE_BENCH_HAVE_POOL 1
#endif

using namespace lifeline;
using namespace lifeline::bench;

int main() {
    return guarded("bench_roundtrip", [] {
        auto srv = test::server::attach();
        const auto& e = srv.where();
        constexpr int warmup = 2000, batches = 300, per_batch = 200;
        const char* sql = "SELECT 1";
        const std::size_t len = std::strlen(sql);

        auto raw = test::capi_connect(e);
        connection<capi> db{lifeline_options(e)};
        db.connect();

        std::string sink;
        auto raw_batch = [&](int n) {
            auto t0 = steady::now();
            for (int i = 0; i < n; ++i)
                if (!raw_select(raw.get(), sql, len, sink)) throw test::server_error(mysql_error(raw.get()));
            return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / n;
        };
        auto streamed_batch = [&](int n) {  // raw, reading as lifeline's adapter does
            auto t0 = steady::now();
            for (int i = 0; i < n; ++i) {
                if (mysql_real_query(raw.get(), sql, static_cast<unsigned long>(len)) != 0)
                    throw test::server_error(mysql_error(raw.get()));
                MYSQL_RES* r = mysql_use_result(raw.get());
                if (!r) throw test::server_error(mysql_error(raw.get()));
                while (MYSQL_ROW row = mysql_fetch_row(r)) {
                    unsigned long* lengths = mysql_fetch_lengths(r);
                    sink.assign(row[0] ? row[0] : "", row[0] ? lengths[0] : 0);
                }
                if (mysql_errno(raw.get()) != 0) throw test::server_error(mysql_error(raw.get()));
                mysql_free_result(r);
            }
            return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / n;
        };
        result kept;
        auto ll_batch = [&](int n) {
            auto t0 = steady::now();
            for (int i = 0; i < n; ++i) {
                db.query(sql, kept, idempotent);
                sink = *kept.rows[0][0];
            }
            return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / n;
        };
        auto fresh_batch = [&](int n) {
            auto t0 = steady::now();
            for (int i = 0; i < n; ++i) {
                auto r = db.query(sql, idempotent);
                sink = *r.rows[0][0];
            }
            return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / n;
        };
#ifdef LIFELINE_BENCH_HAVE_POOL
        pool_options po;
        po.min_size = 1;
        po.max_size = 1;
        pool<capi> pl{lifeline_options(e), po};
        auto pool_batch = [&](int n) {
            auto t0 = steady::now();
            for (int i = 0; i < n; ++i) {
                auto c = pl.borrow();
                c->query(sql, kept, idempotent);
                sink = *kept.rows[0][0];
            }
            return std::chrono::duration<double, std::nano>(steady::now() - t0).count() / n;
        };
#else
        auto pool_batch = [](int) { return 0.0; };
#endif
        raw_batch(warmup);
        streamed_batch(warmup);
        ll_batch(warmup);
        fresh_batch(warmup);
        pool_batch(warmup);

        std::vector<double> raw_ns, streamed_ns, ll_ns, fresh_ns, pool_ns, ratios, fresh_ratios, pool_ratios, streamed_ratios;
        for (int b = 0; b < batches; ++b) {
            double r, s, l, f, p;
            if (b % 2 == 0) {
                r = raw_batch(per_batch);
                l = ll_batch(per_batch);
                p = pool_batch(per_batch);
                f = fresh_batch(per_batch);
                s = streamed_batch(per_batch);
            } else {
                s = streamed_batch(per_batch);
                f = fresh_batch(per_batch);
                p = pool_batch(per_batch);
                l = ll_batch(per_batch);
                r = raw_batch(per_batch);
            }
            streamed_ns.push_back(s);
            streamed_ratios.push_back(l / s);
            raw_ns.push_back(r);
            ll_ns.push_back(l);
            fresh_ns.push_back(f);
            pool_ns.push_back(p);
            ratios.push_back(l / r);
            fresh_ratios.push_back(f / r);
            pool_ratios.push_back(p / r);
        }
        const double rm = median(raw_ns), lm = median(ll_ns);
        info("roundtrip: " + std::to_string(batches) + " interleaved batch pairs x " + std::to_string(per_batch) +
             " queries; median raw " + std::to_string(rm / 1000) + " us, lifeline " + std::to_string(lm / 1000) +
             " us, lifeline/raw of medians " + std::to_string(lm / rm));
        info("roundtrip: the form returning a fresh result each query (3 allocations): median " +
             std::to_string(median(fresh_ns) / 1000) + " us (the figures read into a kept result, as the raw loop "
             "reads into a kept string; this form is reported beside them)");
        info("roundtrip: raw reading with mysql_use_result (as lifeline's adapter does): median " +
             std::to_string(median(streamed_ns) / 1000) + " us, " + std::to_string(median(streamed_ns) / rm) +
             " of the raw loop's (mysql_store_result)");
        reported("roundtrip_select1_lifeline_over_raw_use_result_ratio_of_medians", lm / median(streamed_ns), "ratio");
        reported("roundtrip_select1_lifeline_over_raw_use_result_median_of_paired_ratios", median(streamed_ratios),
                 "ratio");
        reported("roundtrip_select1_lifeline_fresh_result_over_raw_ratio_of_medians", median(fresh_ns) / rm, "ratio");
        reported("roundtrip_select1_lifeline_fresh_result_over_raw_median_of_paired_ratios", median(fresh_ratios),
                 "ratio");
        auto us = [](std::vector<double> v) {
            for (auto& x : v) x /= 1000;
            return spread(v);
        };
        info("roundtrip: batch us p10 .. p25 .. median .. p75 .. p90: raw " + us(raw_ns) + "; lifeline " + us(ll_ns) +
             "; pool " + us(pool_ns) + "; paired lifeline/raw " + spread(ratios));
        info("lifeline stats: pings " + std::to_string(db.stats().pings) + ", reconnects " +
             std::to_string(db.stats().reconnects) + ", retries " + std::to_string(db.stats().retries));
        figure("roundtrip_select1_lifeline_over_raw_ratio_of_medians", lm / rm, "ratio", "<=", 1.03);
        figure("roundtrip_select1_lifeline_over_raw_median_of_paired_ratios", median(ratios), "ratio", "<=", 1.03);
#ifdef LIFELINE_BENCH_HAVE_POOL
        const double pm = median(pool_ns);
        info("roundtrip: median pool borrow+query+return " + std::to_string(pm / 1000) + " us, pool/raw of medians " +
             std::to_string(pm / rm));
        figure("roundtrip_select1_pool_borrow_query_return_over_raw_ratio_of_medians", pm / rm, "ratio", "<=", 1.05);
        figure("roundtrip_select1_pool_borrow_query_return_over_raw_median_of_paired_ratios", median(pool_ratios),
               "ratio", "<=", 1.05);
#else
        not_measured("roundtrip_select1_pool_borrow_query_return_over_raw", "include/lifeline/pool.hpp does not exist");
#endif
        return 0;
    });
}
