// lifeline — a resilient connection for Boost.Asio: the same decisions as lifeline::connection,
// without blocking the io thread.
//
//   #include <lifeline/driver/capi_async.hpp>      // the driver; includes this header
//   boost::asio::io_context io;
//   lifeline::async_connection<lifeline::capi> db{io.get_executor(), options};
//   // C++20 coroutine:
//   auto [ec, r] = co_await db.async_query("SELECT name FROM users WHERE id = 7", lifeline::idempotent,
//                                          boost::asio::use_awaitable);
//   // callback:
//   db.async_execute("INSERT INTO ledger ...", [](std::error_code ec, lifeline::result r) { ... });
//
// Every decision — classification, retry, backoff, reconnect + session restore, verification,
// fencing, transaction replay, lost-COMMIT resolution, the deadline — is made by the same sans-I/O
// engines as the blocking connection (detail/operation_engine.hpp, detail/transaction_engine.hpp);
// detail/async_core.hpp executes them with MariaDB Connector/C's non-blocking API
// (driver/capi_async.hpp), watching the driver's socket with posix::stream_descriptor::async_wait
// and timers. C API only: MySQL Connector/C++ 1.1 (lifeline::jdbc) has no asynchronous API.
//
// Asio conventions (Boost 1.74 / Asio 1.18):
//   - Initiating functions use async_initiate: callbacks, use_future and use_awaitable all work.
//     The completion signature is void(std::error_code, T) — lifeline's own error codes, so
//     `ec == lifeline::errc::outcome_unknown` works as with the blocking connection. Asio throws
//     only for a boost::system::error_code first argument: with use_awaitable you get
//     `auto [ec, r] = co_await ...`, with use_future a std::future<std::tuple<std::error_code, T>>.
//     last_diagnostics() holds the failed operation's diagnostics until the next one starts.
//   - One operation at a time per connection: a second one completes at once (posted) with
//     errc::operation_in_progress and does not disturb the first.
//   - Not thread-safe: use a connection from its executor (one io thread, or a strand).
//   - The handler never runs inside the initiating function.
//
// Deadlines (call_options, like the blocking connection) are steady_timers; backoff waits are
// timers, never sleeps. When a deadline passes in the middle of a driver step, lifeline abandons
// the step and closes the session (a handle abandoned mid-step would give the next statement the
// old one's answer), and the engine sees the attempt `cut`, exactly as the blocking watchdog
// reports it.
//
// cancel() is terminal for the operation in flight. Its handler is called (posted) with
// std::errc::operation_canceled — or errc::outcome_unknown if a non-idempotent statement had
// already been sent, errc::commit_unknown if COMMIT had been sent and not resolved: the truth,
// not a comforting "cancelled". The connection afterwards:
//   - CLOSED if a driver step was in flight, or a transaction function was running (the server
//     rolls that transaction back); the next operation reconnects and restores the session;
//   - unchanged and usable if the operation was only waiting (backoff, the endpoint's prober).
// The diagnostics say which.
//
// Addresses: connect_options.host must be a numeric IPv4/IPv6 address (or use unix_socket). The
// driver resolves names with a blocking getaddrinfo(), so async_connection refuses names at
// construction (errc::invalid_option) instead of blocking the io thread; resolve them yourself
// with asio::ip::tcp::resolver::async_resolve.
//
// Not offered here (they would run blocking code on the io thread): run() callables,
// verify_with(check on a native handle) — use verify_by_query (async_declaration.hpp) —,
// session().on_connect, and prepared statements.
#ifndef LIFELINE_ASYNC_CONNECTION_HPP
#define LIFELINE_ASYNC_CONNECTION_HPP

#include <utility>  // before any Boost header (Asio 1.18's awaitable.hpp needs std::exchange)

#include <lifeline/async_declaration.hpp>
#include <lifeline/call_options.hpp>
#include <lifeline/detail/async_core.hpp>

#include <boost/asio/async_result.hpp>

#if defined(BOOST_ASIO_HAS_CO_AWAIT)
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#endif

#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace lifeline {

template <class Driver, class Policy = default_policy>
class async_connection {
    static_assert(check_policy<Policy>(), "see the static_assert above");
    using core_type = detail::async_core<Driver, Policy>;

public:
    using executor_type = boost::asio::any_io_executor;
    using native_handle = typename core_type::native_handle;
    using session_spec = typename core_type::spec_type;
    using transaction_context = typename core_type::context_type;
    using body_done = detail::async_body_done;

    // Validates options and policy; throws lifeline::error (errc::invalid_option) saying what to
    // fix (also for a host name instead of a numeric address). Does not connect.
    async_connection(executor_type ex, connect_options options, Policy policy = {}, session_spec session = {})
        : core_(std::make_shared<core_type>(std::move(ex), std::move(options), std::move(policy), std::move(session))) {}
    async_connection(const async_connection&) = delete;
    async_connection& operator=(const async_connection&) = delete;
    // Cancels the operation in flight (its handler is called with operation_canceled, or the
    // unknown outcome), closes the session.
    ~async_connection() { core_->shutdown(); }

    executor_type get_executor() const noexcept { return core_->get_executor(); }

    // --- configuration (as lifeline::connection) ------------------------------------------------
    void set_observer(std::shared_ptr<observer> o) { core_->observer_ = std::move(o); }
    void set_retry_budget(std::shared_ptr<retry_budget> b) { core_->budget_ = std::move(b); }
    void set_circuit_breaker(std::shared_ptr<circuit_breaker> b) { core_->breaker_ = std::move(b); }
    void set_endpoint_monitor(std::shared_ptr<endpoint_monitor> m) { core_->monitor_ = std::move(m); }
    session_spec& session() noexcept { return core_->spec_; }  // applies from the next (re)connect on
    const Policy& policy() const noexcept { return core_->policy_; }
    const connect_options& options() const noexcept { return core_->options_; }
    const connection_stats& stats() const noexcept { return core_->stats_; }
    const std::string& endpoint() const noexcept { return core_->endpoint_; }

    // --- statements: void(std::error_code, lifeline::result) -------------------------------------
    template <class Token>
    auto async_query(std::string_view sql, async_declaration decl, call_options co, Token&& token) {
        return boost::asio::async_initiate<Token, void(std::error_code, result)>(
            [c = core_](auto handler, std::string text, async_declaration d, call_options o) {
                c->start_statement(std::move(text), std::move(d), o,
                                   typename core_type::statement_handler(std::move(handler), c->get_executor()));
            },
            token, std::string(sql), std::move(decl), co);
    }
    template <class Token>
    auto async_query(std::string_view sql, async_declaration decl, Token&& token) {
        return async_query(sql, std::move(decl), call_options{}, std::forward<Token>(token));
    }
    template <class Token>
    auto async_query(std::string_view sql, Token&& token) {
        return async_query(sql, async_declaration{}, call_options{}, std::forward<Token>(token));
    }
    // The same call (rows and counts come back in result either way).
    template <class Token>
    auto async_execute(std::string_view sql, async_declaration decl, call_options co, Token&& token) {
        return async_query(sql, std::move(decl), co, std::forward<Token>(token));
    }
    template <class Token>
    auto async_execute(std::string_view sql, async_declaration decl, Token&& token) {
        return async_query(sql, std::move(decl), call_options{}, std::forward<Token>(token));
    }
    template <class Token>
    auto async_execute(std::string_view sql, Token&& token) {
        return async_query(sql, async_declaration{}, call_options{}, std::forward<Token>(token));
    }

    // --- whole transactions: void(std::error_code, async_transaction_result) ---------------------
    // The function runs between START TRANSACTION and COMMIT, its statements through the context
    // (tx.async_execute). It is asynchronous itself, in one of two shapes:
    //   - fn(transaction_context& tx, body_done done): call done() when finished (done(exception)
    //     to abandon the transaction: rolled back, never replayed). A copyable callable.
    //   - C++20: fn(transaction_context& tx) -> boost::asio::awaitable<void>; lifeline co_spawns it.
    // It may run more than once (replay): build everything it writes inside it. See transaction.hpp
    // for replay and commit resolution; they are the blocking connection's, decided by the same engine.
    template <class F, class Token>
    auto async_transaction(F&& fn, transaction_options o, Token&& token) {
        return boost::asio::async_initiate<Token, void(std::error_code, async_transaction_result)>(
            [c = core_](auto handler, typename core_type::body_type body, transaction_options opts) {
                c->start_transaction(std::move(body), opts,
                                     typename core_type::transaction_handler(std::move(handler), c->get_executor()));
            },
            token, make_body(std::forward<F>(fn)), o);
    }

    // --- session management: void(std::error_code) ------------------------------------------------
    // The before-use check alone (socket poll, ping after the idle window, recycle or reconnect
    // with the session restored), under the deadline. Sends no statement.
    template <class Token>
    auto async_ready(call_options co, Token&& token) {
        return boost::asio::async_initiate<Token, void(std::error_code)>(
            [c = core_](auto handler, call_options o) {
                c->start_ready(o, typename core_type::done_handler(std::move(handler), c->get_executor()));
            },
            token, co);
    }
    template <class Token>
    auto async_connect(call_options co, Token&& token) {
        return async_ready(co, std::forward<Token>(token));
    }
    template <class Token>
    auto async_connect(Token&& token) {
        return async_ready(call_options{}, std::forward<Token>(token));
    }
    // Back to the registered session if the current one changed (SET, USE, variables, temporary
    // tables, locks, an open transaction): COM_RESET_CONNECTION and the session replayed; on
    // failure the session is closed (the next use reconnects). The pool calls it on return.
    template <class Token>
    auto async_reset_if_dirty(call_options co, Token&& token) {
        return boost::asio::async_initiate<Token, void(std::error_code)>(
            [c = core_](auto handler, call_options o) {
                c->start_reset(o, typename core_type::done_handler(std::move(handler), c->get_executor()));
            },
            token, co);
    }

    // Ends the operation in flight (see the top of this file). On the connection's executor.
    void cancel() { core_->cancel(); }
    // Closes the session (cancelling an operation in flight); the next operation reconnects.
    void close() noexcept { core_->close(); }

    // --- state --------------------------------------------------------------------------------------
    // The last finished operation's diagnostics (its failure; empty after a success).
    const diagnostics& last_diagnostics() const noexcept { return core_->last_diagnostics(); }
    bool busy() const noexcept { return core_->busy(); }  // an operation is in flight
    bool dirty() const noexcept { return core_->dirty(); }
    bool in_transaction() const noexcept { return core_->in_transaction(); }
    bool is_open() const noexcept { return core_->is_open(); }
    const health_tracker& health() const noexcept { return core_->health(); }
    void acknowledge_transaction_lost() noexcept { core_->acknowledge_transaction_lost(); }
    std::uint64_t connection_id() const noexcept { return core_->connection_id(); }
    // The raw handle, for reading state only: a blocking call on it stalls the io thread.
    native_handle native() noexcept { return core_->native(); }
    // The socket the connection currently watches (-1: none).
    int watched_fd() const noexcept { return core_->watched_fd(); }

private:
    template <class F>
    typename core_type::body_type make_body(F&& fn) {
        using Fn = std::decay_t<F>;
        if constexpr (std::is_invocable_v<Fn&, transaction_context&, body_done>) {
            return typename core_type::body_type(std::forward<F>(fn));
        }
#if defined(BOOST_ASIO_HAS_CO_AWAIT)
        else if constexpr (std::is_invocable_v<Fn&, transaction_context&>) {
            return [f = Fn(std::forward<F>(fn))](transaction_context& tx, body_done done) mutable {
                boost::asio::co_spawn(tx.get_executor(), f(tx), std::move(done));
            };
        }
#endif
        else {
            static_assert(std::is_invocable_v<Fn&, transaction_context&, body_done>,
                          "lifeline: async_transaction's function must be fn(transaction_context&, body_done) "
                          "(or, in C++20, fn(transaction_context&) -> boost::asio::awaitable<void>)");
            return {};
        }
    }

    std::shared_ptr<core_type> core_;
};

}  // namespace lifeline

#endif  // LIFELINE_ASYNC_CONNECTION_HPP
