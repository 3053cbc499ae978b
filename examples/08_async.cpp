// 08 — async: Boost.Asio + C++20 coroutines on ONE io_context thread, with the same decisions as
// the blocking connection (classify, retry only what is safe, reconnect and restore, verify,
// fence, replay transactions, resolve a lost COMMIT). MariaDB Connector/C's non-blocking API only:
// Connector/C++ 1.1 has no async API. Numeric addresses only (the driver's resolver would block).
#include <utility>  // before Boost: Asio 1.18's awaitable.hpp uses std::exchange

#include <lifeline/async_pool.hpp>
#include <lifeline/driver/capi_async.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "example_env.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

namespace asio = boost::asio;
using asio::use_awaitable;
using namespace std::chrono_literals;
using db_type = lifeline::async_connection<lifeline::capi>;

static int problems = 0;
static void expect(bool ok, const char* what) {
    if (!ok) {
        ++problems;
        std::printf("08 async: UNEXPECTED: %s\n", what);
    }
}

// KILL CONNECTION `id` once it is really running a statement, polled on another async connection
// of the same thread: the io thread keeps serving both.
static asio::awaitable<void> kill_when_busy(db_type& admin, std::uint64_t id) {
    asio::steady_timer pause(co_await asio::this_coro::executor);
    const std::string busy = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + std::to_string(id) +
                             " AND COMMAND = 'Query' AND TIME_MS > 50";
    for (int i = 0; i < 500; ++i) {
        auto [ec, r] = co_await admin.async_query(busy, lifeline::idempotent, use_awaitable);
        if (!ec && r.scalar() == std::optional<std::string>("1")) break;
        pause.expires_after(10ms);
        co_await pause.async_wait(use_awaitable);
    }
    co_await admin.async_execute("KILL CONNECTION " + std::to_string(id), use_awaitable);
}

static asio::awaitable<void> demo() {
    auto ex = co_await asio::this_coro::executor;
    db_type db{ex, example_options()};
    db.session().time_zone = "+00:00";  // replayed on every reconnect, like the blocking connection

    // 1. A query: the completion is (std::error_code, lifeline::result).
    auto [ec, r] = co_await db.async_query("SELECT VERSION()", lifeline::idempotent, use_awaitable);
    expect(!ec, "SELECT VERSION() failed");
    std::printf("08 async: connected to %s (session %llu)\n", r.scalar().value_or("?").c_str(),
                static_cast<unsigned long long>(db.connection_id()));

    // 2. KILL CONNECTION in the middle of an idempotent query: reconnected and re-sent, without
    //    blocking the thread (the killer runs on it at the same time).
    db_type admin{ex, example_options(true)};
    const auto victim = db.connection_id();
    asio::co_spawn(ex, kill_when_busy(admin, victim), asio::detached);
    auto [kec, kr] = co_await db.async_query("SELECT SLEEP(1), 'survived'", lifeline::idempotent, use_awaitable);
    expect(!kec && kr.rows.size() == 1 && kr.rows[0][1] == std::optional<std::string>("survived"),
           "the killed query did not come back");
    expect(kr.attempts == 2 && db.connection_id() != victim, "the kill did not land mid-query");
    std::printf("08 async: KILL CONNECTION mid-query survived: %u attempts, new session %llu\n", kr.attempts,
                static_cast<unsigned long long>(db.connection_id()));

    // 3. A transaction whose function is a coroutine; replayed as a whole if it breaks before COMMIT,
    //    its COMMIT resolved by a token if the answer is lost.
    co_await db.async_execute("CREATE TABLE IF NOT EXISTS async_orders (ref VARCHAR(20) PRIMARY KEY, qty INT)",
                              use_awaitable);
    co_await db.async_execute("DELETE FROM async_orders", lifeline::idempotent, use_awaitable);
    auto [tec, tr] = co_await db.async_transaction(
        [](db_type::transaction_context& tx) -> asio::awaitable<void> {
            auto [e1, r1] = co_await tx.async_execute("INSERT INTO async_orders VALUES ('A-1', 1)", use_awaitable);
            if (e1) co_return;  // lifeline rolls back, and replays if it may
            co_await tx.async_execute("UPDATE async_orders SET qty = qty + 1 WHERE ref = 'A-1'", use_awaitable);
        },
        lifeline::replayable_resolved, use_awaitable);
    expect(!tec, "the transaction failed");
    std::printf("08 async: transaction committed (%u run(s)): %s\n", tr.attempts, tec ? tec.message().c_str() : "ok");

    // 4. A write that must not run twice, with a verification query for an unknown outcome.
    auto [wec, wr] = co_await db.async_execute(
        "INSERT INTO async_orders VALUES ('B-7', 7)",
        lifeline::verify_by_query("SELECT COUNT(*) FROM async_orders WHERE ref = 'B-7'",
                                  [](const lifeline::result& res) {
                                      return res.scalar() == std::optional<std::string>("1") ? lifeline::write_check::applied
                                                                                              : lifeline::write_check::not_applied;
                                  }),
        use_awaitable);
    expect(!wec, "the verified write failed");

    // 5. A deadline: a statement that would take 3 s gets 300 ms.
    auto [dec, dr] = co_await db.async_query("SELECT SLEEP(3)", lifeline::idempotent, lifeline::call_options{300ms},
                                             use_awaitable);
    expect(dec == lifeline::errc::deadline_exceeded, "the deadline did not cut the statement");
    std::printf("08 async: SLEEP(3) with a 300 ms deadline: %s\n", dec.message().c_str());

    // 6. A pool: 16 coroutines share 4 connections, all on this one thread.
    lifeline::async_pool_options po;
    po.max_size = 4;
    lifeline::async_pool<lifeline::capi> pool{ex, example_options(), po};
    int done = 0;
    for (int i = 0; i < 16; ++i)
        asio::co_spawn(
            ex,
            [&pool, &done, i]() -> asio::awaitable<void> {
                auto [bec, c] = co_await pool.async_borrow(5s, use_awaitable);
                if (bec) co_return;
                auto [qec, q] = co_await c->async_query("SELECT " + std::to_string(i), lifeline::idempotent, use_awaitable);
                if (!qec && q.scalar() == std::optional<std::string>(std::to_string(i))) ++done;
            },
            asio::detached);
    asio::steady_timer wait(ex);
    for (int i = 0; i < 500 && done < 16; ++i) {
        wait.expires_after(10ms);
        co_await wait.async_wait(use_awaitable);
    }
    expect(done == 16, "not every pooled query finished");
    const auto ps = pool.stats();
    std::printf("08 async: 16 coroutines through a pool of %zu: %d answered, %llu connection(s) opened\n", ps.max_size, done,
                static_cast<unsigned long long>(ps.created));
}

int main() {
    asio::io_context io;  // run() on this one thread: every connection above shares it
    asio::co_spawn(io, demo(), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            std::printf("08 async: FAILED: %s\n", x.what());
            ++problems;
        }
    });
    io.run();
    std::printf("08 async: %s\n", problems ? "problems found" : "done");
    return problems ? 1 : 0;
}
