// lifeline::pool<capi> against the real server: threads, a restart, a stopped server.
// Catch2's assertions are not thread-safe: threads count into atomics, asserts come after join.
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/driver/capi.hpp>
#include <lifeline/pool.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <poll.h>
#include <set>
#include <thread>
#include <vector>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

using capi_pool = lifeline::pool<lifeline::capi>;

// Own budget and breaker per pool so one test's outage does not starve the next.
pool_options popts(std::size_t min_size, std::size_t max_size) {
    pool_options p;
    p.min_size = min_size;
    p.max_size = max_size;
    p.housekeeping_interval = 50ms;
    p.refill_jitter = 100ms;
    default_policy d;
    p.budget = std::make_shared<retry_budget>(d.budget);
    p.breaker = std::make_shared<circuit_breaker>(d.breaker);
    return p;
}

// Restarts the server if a test left it stopped, so later tests in this process have one.
struct running_guard {
    server& s;
    ~running_guard() {
        try {
            if (!s.running()) s.start_again();
        } catch (...) {
        }
    }
};

// Records every connect attempt (one reconnect event each) as a [start, end] interval.
struct connect_log final : observer {
    std::mutex m;
    std::vector<std::pair<clk::time_point, clk::time_point>> spans;
    void on_reconnect(const reconnect_event& e) override {
        const auto end = clk::now();
        std::lock_guard<std::mutex> lock(m);
        spans.emplace_back(end - std::chrono::duration_cast<clk::duration>(e.took), end);
    }
    // Most connects that overlapped in time.
    std::size_t max_overlap() {
        std::lock_guard<std::mutex> lock(m);
        std::vector<std::pair<clk::time_point, int>> edges;
        for (auto& s : spans) {
            edges.emplace_back(s.first, +1);
            edges.emplace_back(s.second, -1);
        }
        std::sort(edges.begin(), edges.end(), [](auto& a, auto& b) {
            return a.first != b.first ? a.first < b.first : a.second < b.second;  // ends first
        });
        int now = 0, most = 0;
        for (auto& e : edges) most = std::max(most, now += e.second);
        return static_cast<std::size_t>(most);
    }
    std::size_t count() {
        std::lock_guard<std::mutex> lock(m);
        return spans.size();
    }
};

}  // namespace

TEST_CASE("capi pool: 8 threads borrow and return", "[pool][capi]") {
    auto srv = server::attach();
    capi_pool p(options_for(srv.where()), popts(1, 4));
    std::atomic<int> ok{0}, failed{0}, max_out{0}, out{0};
    std::mutex m;
    std::set<std::string> ids;
    std::vector<std::thread> ts;
    for (int i = 0; i < 8; ++i)
        ts.emplace_back([&] {
            for (int n = 0; n < 50; ++n) {
                std::error_code ec;
                diagnostics d;
                auto c = p.borrow(10s, ec, d, "pool_capi_test.cpp");
                if (!c) {
                    ++failed;
                    continue;
                }
                const int now = ++out;
                int seen = max_out.load();
                while (now > seen && !max_out.compare_exchange_weak(seen, now)) {
                }
                auto r = c->query("SELECT CONNECTION_ID()", lifeline::idempotent, {}, ec, d);
                --out;
                if (ec || !r.scalar()) {
                    ++failed;
                    continue;
                }
                ++ok;
                std::lock_guard<std::mutex> lock(m);
                ids.insert(*r.scalar());
            }
        });
    for (auto& t : ts) t.join();
    CHECK(failed == 0);
    CHECK(ok == 8 * 50);
    CHECK(max_out <= 4);
    CHECK(ids.size() <= 4);
    auto s = p.stats();
    CHECK(s.in_use == 0);
    CHECK(s.created <= 4);
    CHECK(s.exhausted == 0);
}

TEST_CASE("capi pool: a statement error does not cost the next borrower its connection", "[pool][capi]") {
    auto srv = server::attach();
    capi_pool p(options_for(srv.where()), popts(0, 1));
    std::uint64_t id = 0;
    {
        auto c = p.borrow(10s);
        id = c->connection_id();
        std::error_code ec;
        diagnostics d;
        c->query("SELECT * FROM no_such_table", lifeline::idempotent, {}, ec, d);
        CHECK(d.code == 1146);  // mysql_errno() stays 1146 until the next successful call
    }
    auto c = p.borrow(10s);
    CHECK(c->connection_id() == id);
    CHECK(c->query("SELECT 2", lifeline::idempotent).scalar() == std::optional<std::string>("2"));
    auto s = p.stats();
    CHECK(s.created == 1);
    CHECK(s.connect_failures == 0);
}

TEST_CASE("capi pool: a server restart is survived without handing out a dead connection", "[pool][capi]") {
    auto srv = server::attach();
    running_guard guard{srv};
    capi_pool p(options_for(srv.where()), popts(0, 4));
    {
        std::vector<capi_pool::pooled> warm;
        for (int i = 0; i < 4; ++i) warm.push_back(p.borrow(10s));
        for (auto& c : warm) c->query("SELECT 1", lifeline::idempotent);
    }
    REQUIRE(p.stats().idle == 4);
    srv.restart();  // every pooled session is gone
    std::atomic<int> ok{0}, dead{0}, failed{0}, multi_attempt{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 8; ++i)
        ts.emplace_back([&] {
            for (int n = 0; n < 20; ++n) {
                std::error_code ec;
                diagnostics d;
                auto c = p.borrow(20s, ec, d);
                if (!c) {
                    ++failed;
                    continue;
                }
                // Straight to the driver, outside lifeline: is what we were handed alive?
                if (mysql_ping(c->native()) != 0) ++dead;
                auto r = c->query("SELECT 1", lifeline::idempotent, {}, ec, d);
                if (ec) ++failed;
                else ++ok;
                if (r.attempts > 1) ++multi_attempt;
            }
        });
    for (auto& t : ts) t.join();
    CHECK(dead == 0);
    CHECK(failed == 0);
    CHECK(ok == 8 * 20);
    CHECK(multi_attempt == 0);
    CHECK(p.stats().broken >= 1);
}

TEST_CASE("capi pool: a stopped server gives pool_exhausted within the timeout, naming the connect error",
          "[pool][capi]") {
    auto srv = server::attach();
    running_guard guard{srv};
    capi_pool p(options_for(srv.where()), popts(0, 4));
    srv.stop();
    std::error_code ec;
    diagnostics d;
    const auto t0 = clk::now();
    auto c = p.borrow(1500ms, ec, d);
    const auto took = clk::now() - t0;
    CHECK_FALSE(c);
    CHECK(ec == errc::pool_exhausted);
    CHECK(took >= 1500ms);
    CHECK(took < 1500ms + 5s);  // generous: the bound is the borrow timeout, not wall-clock precision
    CHECK((d.code == 2002 || d.code == 2003));
    CHECK_THAT(d.client_message, Catch::Contains("last connect error") && Catch::Contains("max=4"));
    INFO(d.server_message);
    CHECK_THAT(d.server_message, Catch::Contains("CR_CONN") || Catch::Contains("Can't connect"));
    srv.start_again();
    auto back = p.borrow(20s);
    CHECK(back->query("SELECT 1", lifeline::idempotent).scalar() == std::optional<std::string>("1"));
}

TEST_CASE("capi pool: 16 threads against a stopped server make one connect at a time", "[pool][capi]") {
    auto srv = server::attach();
    running_guard guard{srv};
    auto log = std::make_shared<connect_log>();
    auto po = popts(0, 8);
    po.connection_observer = log;
    capi_pool p(options_for(srv.where()), po);
    srv.stop();
    std::atomic<int> exhausted{0}, other{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 16; ++i)
        ts.emplace_back([&] {
            std::error_code ec;
            diagnostics d;
            auto c = p.borrow(2s, ec, d);
            if (ec == errc::pool_exhausted) ++exhausted;
            else ++other;
        });
    for (auto& t : ts) t.join();
    const auto attempts = log->count();
    INFO("connect attempts in 2 s with 16 borrowers: " << attempts);
    CHECK(exhausted == 16);
    CHECK(other == 0);
    CHECK(attempts >= 1);
    CHECK(log->max_overlap() == 1);
    // One at a time with backoff: far below 16 borrowers each retrying on their own.
    CHECK(attempts <= 200);
    srv.start_again();
}

TEST_CASE("capi pool: a connection returned inside a transaction never hands that transaction on", "[pool][capi]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE pool_txn (v INT) ENGINE=InnoDB");
    }
    capi_pool p(options_for(srv.where()), popts(0, 1));
    {
        auto c = p.borrow(10s);
        c->execute("BEGIN");
        c->execute("INSERT INTO pool_txn VALUES (1)");  // returned without COMMIT or ROLLBACK
    }
    auto c = p.borrow(10s);
    CHECK(c->query("SELECT @@in_transaction", lifeline::idempotent).scalar() == std::optional<std::string>("0"));
    c->execute("INSERT INTO pool_txn VALUES (2)");  // autocommit, on a clean session
    auto m = capi_connect(srv.where());
    CHECK(capi_scalar(m.get(), "SELECT GROUP_CONCAT(v) FROM pool_txn") == "2");  // the abandoned row was rolled back
}

TEST_CASE("capi pool: validating a connection not seen just now is one socket poll; a killed one is reopened",
          "[pool][capi]") {
    auto srv = server::attach();
    capi_pool p(options_for(srv.where()), popts(1, 1));
    unsigned long id = 0;
    int fd = -1;
    {
        auto c = p.borrow(10s);
        c->query("SELECT 1", lifeline::idempotent);
        id = mysql_thread_id(c->native());
        fd = static_cast<int>(mysql_get_socket(c->native()));
    }
    connection_stats s0;
    {
        auto c = p.borrow(10s);
        s0 = c->stats();
    }
    // Healthy, last seen longer ago than the probe bypass (50 µs; the sleep is a lower bound: any
    // longer wait is the same case): the borrow polls once, and no ping, no reconnect.
    std::this_thread::sleep_for(2ms);
    {
        auto c = p.borrow(10s);
        const connection_stats s1 = c->stats();
        CHECK(s1.socket_checks == s0.socket_checks + 1);
        CHECK(s1.operations == s0.operations + 1);
        CHECK(s1.pings == s0.pings);
        CHECK(s1.reconnects == s0.reconnects);
        CHECK(mysql_thread_id(c->native()) == id);
        s0 = s1;
    }
    // Killed while idle in the pool: once its socket shows the close, the next borrow's poll finds
    // it dead, the engine probes again and reconnects, and what is handed out answers.
    admin_kill(srv.where(), id);
    const auto until = clk::now() + 10s;
    bool closed = false;
    while (!closed && clk::now() < until) {
        pollfd pf{fd, POLLIN | POLLRDHUP, 0};
        closed = ::poll(&pf, 1, 100) > 0;
    }
    REQUIRE(closed);
    auto c = p.borrow(10s);
    const connection_stats s2 = c->stats();
    CHECK(s2.reconnects == s0.reconnects + 1);
    CHECK(s2.socket_checks == s0.socket_checks + 2);
    CHECK(mysql_thread_id(c->native()) != id);
    CHECK(mysql_ping(c->native()) == 0);
    CHECK(c->query("SELECT 1", lifeline::idempotent).rows.size() == 1);
}
