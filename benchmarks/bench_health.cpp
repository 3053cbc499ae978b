// (c) health-check cost: COM_PINGs sent per 10 000 queries on hot connections.
//
// Four lifeline connections, used round-robin for 10 000 `SELECT 1` (each is used again within
// microseconds, far inside the 1 s ping window). The server counts COM_PING in
// Com_admin_commands; MariaDB 10.11 keeps it per session (information_schema.SESSION_STATUS, read
// through each connection itself) and globally (GLOBAL_STATUS, read from a separate admin
// connection before and after). A control run of 10 raw mysql_ping() calls first shows the
// counter moves by exactly 10 on this server.
#include "bench_common.hpp"

#include <memory>

using namespace lifeline;
using namespace lifeline::bench;

int main() {
    return guarded("bench_health", [] {
        auto srv = test::server::attach();
        const auto e = srv.where();
        auto admin = test::capi_connect(e, test::capi_options{true});

        // Control: does the counter see COM_PING?
        {
            auto raw = test::capi_connect(e);
            long long g0 = status_counter(admin.get(), "GLOBAL", "Com_admin_commands");
            long long s0 = status_counter(raw.get(), "SESSION", "Com_admin_commands");
            for (int i = 0; i < 10; ++i) mysql_ping(raw.get());
            long long s1 = status_counter(raw.get(), "SESSION", "Com_admin_commands");
            long long g1 = status_counter(admin.get(), "GLOBAL", "Com_admin_commands");
            info("control: 10 raw mysql_ping() -> session Com_admin_commands +" + std::to_string(s1 - s0) +
                 ", global +" + std::to_string(g1 - g0));
            if (s1 - s0 != 10 || g1 - g0 != 10)
                throw test::server_error("Com_admin_commands does not count COM_PING one for one on this server");
        }

        constexpr int conns = 4, queries = 10000;
        std::vector<std::unique_ptr<connection<capi>>> dbs;
        for (int i = 0; i < conns; ++i) {
            dbs.push_back(std::make_unique<connection<capi>>(lifeline_options(e)));
            dbs.back()->connect();
        }
        auto session_pings = [](connection<capi>& db) {
            auto r = db.query("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
                              "WHERE VARIABLE_NAME = 'Com_admin_commands'",
                              idempotent);
            return std::stoll(*r.scalar());
        };
        std::vector<long long> before;
        for (auto& db : dbs) before.push_back(session_pings(*db));
        const long long g0 = status_counter(admin.get(), "GLOBAL", "Com_admin_commands");
        auto t0 = steady::now();
        for (int i = 0; i < queries; ++i) dbs[i % conns]->query("SELECT 1", idempotent);
        const double ms = ms_since(t0);
        const long long g1 = status_counter(admin.get(), "GLOBAL", "Com_admin_commands");
        long long session_total = 0, lifeline_pings = 0, socket_checks = 0, reconnects = 0;
        for (int i = 0; i < conns; ++i) {
            session_total += session_pings(*dbs[i]) - before[i];
            lifeline_pings += static_cast<long long>(dbs[i]->stats().pings);
            socket_checks += static_cast<long long>(dbs[i]->stats().socket_checks);
            reconnects += static_cast<long long>(dbs[i]->stats().reconnects);
        }
        info("health: " + std::to_string(queries) + " queries on " + std::to_string(conns) + " hot connections in " +
             std::to_string(ms) + " ms; session Com_admin_commands +" + std::to_string(session_total) +
             ", global +" + std::to_string(g1 - g0) + "; lifeline stats: pings " + std::to_string(lifeline_pings) +
             ", socket checks " + std::to_string(socket_checks) + ", reconnects " + std::to_string(reconnects));
        figure("health_com_ping_per_10k_hot_queries_session_counter", static_cast<double>(session_total) * 10000 / queries,
               "pings", "<=", 0);
        figure("health_com_ping_per_10k_hot_queries_global_counter", static_cast<double>(g1 - g0) * 10000 / queries,
               "pings", "<=", 0);
        return 0;
    });
}
