// (e) detection: with the server frozen (SIGSTOP, standing in for a silent network drop), how long
// until the caller gets its answer, against the call's deadline.
//
// Two cases, 3 trials each, deadline 1000 ms per call (call_options), `SELECT 1` declared
// idempotent (so lifeline would retry if it could):
//   hot:   a connected, recently used lifeline connection; the query is sent and never answered:
//          the watchdog must cut the blocking read at the deadline;
//   fresh: a new lifeline connection; the TCP connect succeeds (the kernel accepts) but the
//          handshake never comes: the non-blocking connect must stop at the deadline.
// The figure is the worst elapsed/deadline over all trials (target ≤ 1.10).
#include "bench_common.hpp"

using namespace lifeline;
using namespace lifeline::bench;

int main() {
    return guarded("bench_detection", [] {
        auto srv = test::server::attach();
        const auto e = srv.where();
        const auto opts = lifeline_options(e);
        const auto deadline = std::chrono::milliseconds(1000);
        const double deadline_ms = static_cast<double>(deadline.count());
        constexpr int trials = 3;

        std::vector<double> hot, fresh;
        for (int t = 0; t < trials; ++t) {
            {
                connection<capi> db{opts};
                db.connect();
                db.query("SELECT 1", idempotent);
                srv.freeze();
                std::error_code ec;
                diagnostics diag;
                auto t0 = steady::now();
                db.query("SELECT 1", idempotent, call_options{deadline}, ec, diag);
                hot.push_back(ms_since(t0));
                srv.thaw();
                info("detection hot trial " + std::to_string(t + 1) + ": answer after " + std::to_string(hot.back()) +
                     " ms (deadline " + std::to_string(deadline.count()) + " ms): " +
                     (ec ? ec.message() : std::string("succeeded")));
                if (!ec) throw test::server_error("a query against a frozen server succeeded");
            }
            {
                connection<capi> db{opts};
                srv.freeze();
                std::error_code ec;
                diagnostics diag;
                auto t0 = steady::now();
                db.query("SELECT 1", idempotent, call_options{deadline}, ec, diag);
                fresh.push_back(ms_since(t0));
                srv.thaw();
                info("detection fresh trial " + std::to_string(t + 1) + ": answer after " +
                     std::to_string(fresh.back()) + " ms (deadline " + std::to_string(deadline.count()) +
                     " ms): " + (ec ? ec.message() : std::string("succeeded")));
                if (!ec) throw test::server_error("a connect to a frozen server succeeded");
            }
        }
        const double hot_max = *std::max_element(hot.begin(), hot.end());
        const double fresh_max = *std::max_element(fresh.begin(), fresh.end());
        figure("detection_frozen_hot_connection_max_elapsed_over_deadline", hot_max / deadline_ms, "ratio", "<=", 1.10);
        figure("detection_frozen_fresh_connect_max_elapsed_over_deadline", fresh_max / deadline_ms, "ratio", "<=",
               1.10);
        return 0;
    });
}
