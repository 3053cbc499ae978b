// A kept result and a write whose reply was lost (the fault proxy cuts it after the server
// committed): the caller's check finds it applied, and the result says so with no rows, columns
// or counts of the statement before — the reply that would have carried them never came.
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/driver/capi.hpp>
#include <lifeline/testing/fault_proxy.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
using lifeline::testing::cut_kind;
using lifeline::testing::direction;
using lifeline::testing::fault_proxy;

TEST_CASE("result reuse: a write verified applied after its reply was lost leaves nothing stale",
          "[result][proxy][capi]") {
    auto srv = server::attach();
    {
        auto direct = capi_connect(srv.where());
        capi_exec(direct.get(), "CREATE TABLE lost_reply (k VARCHAR(20) PRIMARY KEY) ENGINE=InnoDB");
    }
    fault_proxy proxy(srv.where().host, static_cast<std::uint16_t>(srv.where().port));
    connect_options o = options_for(srv.where());
    o.host = proxy.host();
    o.port = proxy.port();
    connection<capi> db{o};
    result kept;
    // A prepared INSERT, prepared on the server before the fault (lifeline prepares lazily), so
    // the adapter fails inside mysql_stmt_execute.
    auto insert = db.prepare("INSERT INTO lost_reply VALUES (?)");
    db.execute(insert, {std::string("warm-up")}, kept);
    db.query("SELECT 'stale' AS s UNION ALL SELECT 'rows'", kept, idempotent);
    REQUIRE(kept.rows.size() == 2);

    // From now on every reply is cut, until the first cut: then the proxy passes again. Any
    // session lifeline opens afterwards needed server bytes for its handshake, so it runs in
    // pass mode: the verification cannot be cut.
    std::atomic<bool> done{false};
    std::thread healer([&] {
        while (!done.load() && proxy.stats().cuts == 0) std::this_thread::sleep_for(1ms);
        proxy.pass();
    });
    proxy.cut_after(0, direction::server_to_client, cut_kind::rst);
    int checks = 0;
    std::error_code ec;
    diagnostics d;
    const bool ok = db.execute(insert, {std::string("order-1")}, kept,
                               verify_with([&](MYSQL* m) {
                                   ++checks;
                                   return capi_scalar(m, "SELECT COUNT(*) FROM lost_reply WHERE k = 'order-1'") == "1"
                                              ? write_check::applied
                                              : write_check::not_applied;
                               }),
                               call_options{30s}, ec, d);
    done = true;
    healer.join();
    INFO(ec.message() << " | " << d.client_message << " | " << d.server_message);
    REQUIRE(ok);
    CHECK(proxy.stats().cuts >= 1);
    CHECK(checks == 1);
    CHECK(kept.verified);
    CHECK(kept.attempts == 1);
    CHECK(kept.rows.empty());
    CHECK(kept.columns.empty());
    CHECK(kept.affected_rows == 0);
    CHECK(kept.insert_id == 0);
    auto direct = capi_connect(srv.where());
    CHECK(capi_scalar(direct.get(), "SELECT COUNT(*) FROM lost_reply WHERE k = 'order-1'") == "1");  // once, not twice
}
