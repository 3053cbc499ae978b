// The async connection with C++20 coroutines (boost::asio::use_awaitable), over the fake
// non-blocking driver: this target is built as C++20 (the rest of lifeline is C++17).
#include <utility>  // before Boost: Asio 1.18's awaitable.hpp uses std::exchange

#include "fake_async_driver.hpp"

#include <lifeline/async_connection.hpp>
#include <lifeline/async_pool.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <string>

#if !defined(BOOST_ASIO_HAS_CO_AWAIT)
#error "this test must be built as C++20 with coroutines"
#endif

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::use_awaitable;

namespace {

struct coro_policy : default_policy {
    coro_policy() {
        retry.deadline = std::chrono::seconds(5);
        backoff.initial = std::chrono::milliseconds(1);
        backoff.max = std::chrono::milliseconds(4);
        budget.min_retries_per_second = 1000;
        breaker.failure_threshold = 1000;
        // The fake server closes sockets between two calls microseconds apart: always probe (as
        // fake_fixture.hpp does for the blocking connection).
        health.probe_bypass = duration::zero();
    }
};
using adb = async_connection<fake_async, coro_policy>;

connect_options numeric_options() {
    connect_options o;
    o.host = "127.0.0.1";
    o.port = 1;
    o.user = "u";
    return o;
}

// Runs a coroutine to completion on a fresh io_context; rethrows what it threw.
template <class F>
void run_coro(asio::io_context& io, F f) {
    std::exception_ptr failed;
    bool finished = false;
    asio::co_spawn(io, std::move(f), [&](std::exception_ptr e) {
        failed = e;
        finished = true;
    });
    io.run();
    REQUIRE(finished);
    if (failed) std::rethrow_exception(failed);
}

}  // namespace

TEST_CASE("async coroutines: co_await a query, a retried query and a verified write", "[async][coro]") {
    fake_server srv;
    fake_server::current() = &srv;
    fake_async_control ctl;
    ctl.latency_ms = 1;
    {
        asio::io_context io;
        adb db(io.get_executor(), numeric_options(), coro_policy{});
        db.set_endpoint_monitor(std::make_shared<endpoint_monitor>());
        run_coro(io, [&]() -> asio::awaitable<void> {
            auto [ec, r] = co_await db.async_query("SELECT 1", lifeline::idempotent, use_awaitable);
            CHECK_FALSE(ec);
            CHECK(r.scalar() == std::optional<std::string>("1"));
            {
                std::lock_guard<std::recursive_mutex> lock(srv.m);
                srv.execute_faults.push_back(make_fault(2013, phase::read_result, true));
            }
            auto [ec2, r2] = co_await db.async_query("SELECT 2", lifeline::idempotent, use_awaitable);
            CHECK_FALSE(ec2);
            CHECK(r2.attempts == 2);
            {
                std::lock_guard<std::recursive_mutex> lock(srv.m);
                srv.execute_faults.push_back(make_fault(2013, phase::read_result, true, true));  // it ran
            }
            const std::string ins = "INSERT INTO t VALUES (1)";
            auto [ec3, r3] = co_await db.async_execute(
                ins, verify_by_query("SELECT COUNT(*) FROM t", [&](const result&) {
                    return srv.times(ins) == 1 ? write_check::applied : write_check::not_applied;
                }),
                use_awaitable);
            CHECK_FALSE(ec3);
            CHECK(r3.verified);
            CHECK(srv.times(ins) == 1);  // verified as applied: not sent again
        });
        CHECK(db.stats().reconnects == 3);
    }
    fake_server::current() = nullptr;
}

TEST_CASE("async coroutines: a transaction whose function is a coroutine is replayed as a whole", "[async][coro]") {
    fake_server srv;
    fake_server::current() = &srv;
    fake_async_control ctl;
    {
        asio::io_context io;
        adb db(io.get_executor(), numeric_options(), coro_policy{});
        db.set_endpoint_monitor(std::make_shared<endpoint_monitor>());
        {
            std::lock_guard<std::recursive_mutex> lock(srv.m);
            srv.execute_faults.push_back(fault{});                                        // START TRANSACTION
            srv.execute_faults.push_back(fault{});                                        // the INSERT
            srv.execute_faults.push_back(make_fault(2013, phase::read_result, true, true));  // the UPDATE; link dies
        }
        int runs = 0;
        run_coro(io, [&]() -> asio::awaitable<void> {
            auto [ec, tr] = co_await db.async_transaction(
                [&](adb::transaction_context& tx) -> asio::awaitable<void> {
                    ++runs;
                    auto [e1, r1] = co_await tx.async_execute("INSERT INTO orders VALUES ('A-1')", use_awaitable);
                    if (e1) co_return;
                    auto [e2, r2] = co_await tx.async_execute("UPDATE stock SET n = n - 1", use_awaitable);
                    if (e2) co_return;  // lifeline rolls back and replays
                },
                lifeline::replayable, use_awaitable);
            CHECK_FALSE(ec);
            CHECK(tr.attempts == 2);
        });
        CHECK(runs == 2);
        CHECK(srv.times("INSERT INTO orders VALUES ('A-1')") == 1);
        CHECK(srv.times("UPDATE stock SET n = n - 1") == 1);
    }
    fake_server::current() = nullptr;
}

TEST_CASE("async coroutines: an exception thrown by the coroutine function is handed back, never replayed",
          "[async][coro]") {
    fake_server srv;
    fake_server::current() = &srv;
    fake_async_control ctl;
    {
        asio::io_context io;
        adb db(io.get_executor(), numeric_options(), coro_policy{});
        db.set_endpoint_monitor(std::make_shared<endpoint_monitor>());
        int runs = 0;
        run_coro(io, [&]() -> asio::awaitable<void> {
            auto [ec, tr] = co_await db.async_transaction(
                [&](adb::transaction_context& tx) -> asio::awaitable<void> {
                    ++runs;
                    co_await tx.async_execute("INSERT INTO orders VALUES ('A-2')", use_awaitable);
                    throw std::runtime_error("out of stock");
                },
                lifeline::replayable, use_awaitable);
            CHECK(ec == std::errc::operation_canceled);
            REQUIRE(tr.exception);
            CHECK_THROWS_WITH(std::rethrow_exception(tr.exception), "out of stock");
        });
        CHECK(runs == 1);
        CHECK(srv.times("INSERT INTO orders VALUES ('A-2')") == 0);  // rolled back
    }
    fake_server::current() = nullptr;
}

TEST_CASE("async coroutines: borrow from the pool with use_awaitable", "[async][coro][pool]") {
    fake_server srv;
    fake_server::current() = &srv;
    fake_async_control ctl;
    {
        asio::io_context io;
        async_pool_options po;
        po.max_size = 2;
        async_pool<fake_async, coro_policy> pool(io.get_executor(), numeric_options(), po, coro_policy{});
        int answered = 0;
        for (int i = 0; i < 6; ++i)
            asio::co_spawn(
                io,
                [&pool, &answered, i]() -> asio::awaitable<void> {
                    auto [ec, c] = co_await pool.async_borrow(2s, use_awaitable);
                    if (ec) co_return;
                    auto [qec, r] = co_await c->async_query("SELECT " + std::to_string(i), lifeline::idempotent, use_awaitable);
                    if (!qec) ++answered;
                },
                asio::detached);
        io.run();
        CHECK(answered == 6);
        CHECK(pool.stats().created <= 2);
    }
    fake_server::current() = nullptr;
}
