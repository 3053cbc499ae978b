// lifeline — a resilient connection: classify, retry what is safe, reconnect, restore the session.
//
//   lifeline::connection<lifeline::capi> db{options};          // lifeline/driver/capi.hpp
//   auto r = db.query("SELECT name FROM users WHERE id = 7", lifeline::idempotent);
//   db.execute("INSERT INTO ledger ...");                          // not idempotent: never sent twice
//   db.run([](MYSQL* m) { return existing_code(m); }, lifeline::idempotent);
//
// Every decision is made by the sans-I/O engines (detail/operation_engine.hpp,
// detail/transaction_engine.hpp) and executed by the blocking core (detail/blocking_core.hpp)
// under one deadline per call. This class is the public face: each operation has a throwing form
// and a non-throwing one `(args..., call_options, ec, diag)`. The non-throwing forms report every
// lifeline and driver failure through ec/diag and throw nothing of their own; only an exception
// thrown by your own callable (run(), transaction()) passes through, after lifeline cleaned up.
//
// Not thread-safe: one connection per thread at a time (use lifeline::pool to share). Calling it
// from inside one of its own operations (a transaction function, a run() callable, an observer)
// fails with errc::operation_in_progress.
#ifndef LIFELINE_CONNECTION_HPP
#define LIFELINE_CONNECTION_HPP

#include <lifeline/adopt.hpp>
#include <lifeline/call_options.hpp>
#include <lifeline/detail/blocking_core.hpp>
#include <lifeline/server_info.hpp>

#include <exception>
#include <optional>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace lifeline {

template <class Driver, class Policy = default_policy>
class connection {
    static_assert(check_driver_traits<Driver>(), "see the static_assert above");
    static_assert(check_policy<Policy>(), "see the static_assert above");
    using core_type = detail::blocking_core<Driver, Policy>;

public:
    using traits = driver_traits<Driver>;
    using native_handle = typename traits::native_handle;
    using declaration_type = declaration<native_handle>;
    using session_spec = basic_session<native_handle>;
    using clock_type = typename Policy::clock_type;
    using transaction_context = typename core_type::transaction_context;

    // Validates options and policy; throws lifeline::error (errc::invalid_option) saying what to fix.
    // Does not connect: the first operation does (or call connect()).
    explicit connection(connect_options options, Policy policy = {}, session_spec session = {}, clock_type clock = {})
        : core_(std::move(options), std::move(policy), std::move(session), std::move(clock)) {}
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // --- configuration -------------------------------------------------------------------------------
    void set_observer(std::shared_ptr<observer> o) { core_.observer_ = std::move(o); }
    // Replace the process-wide retry budget / the per-endpoint breaker (e.g. one per service or test).
    void set_retry_budget(std::shared_ptr<retry_budget> b) { core_.budget_ = std::move(b); }
    void set_circuit_breaker(std::shared_ptr<circuit_breaker> b) { core_.breaker_ = std::move(b); }
    // Replace the per-endpoint monitor (endpoint_monitor.hpp) shared by the process's connections.
    void set_endpoint_monitor(std::shared_ptr<endpoint_monitor> m) { core_.monitor_ = std::move(m); }
    // Failover (cluster.hpp): the view of the host list this connection follows (by default one
    // shared per host list), and the host of its current session (npos: none, or no host list).
    void set_cluster_view(std::shared_ptr<cluster_view> v) { core_.set_cluster(std::move(v)); }
    std::shared_ptr<cluster_view> cluster_view_ptr() const noexcept { return core_.cluster_; }
    std::size_t current_host() const noexcept { return core_.current_host(); }
    session_spec& session() noexcept { return core_.spec_; }  // applies from the next (re)connect on
    const Policy& policy() const noexcept { return core_.policy_; }
    const connect_options& options() const noexcept { return core_.options_; }
    const connection_stats& stats() const noexcept { return core_.stats_; }
    const std::string& endpoint() const noexcept { return core_.endpoint_; }

    // --- statements (query and execute are the same call: rows and counts come back in result) ---
    result query(std::string_view sql, declaration_type decl = {}, call_options co = {}) {
        return throwing([&](std::error_code& ec, diagnostics& d) { return query(sql, std::move(decl), co, ec, d); });
    }
    result query(std::string_view sql, declaration_type decl, call_options co, std::error_code& ec,
                 diagnostics& diag) noexcept {
        return nothrow<result>(ec, diag, [&](result& r) { return core_.statement(sql, decl, co, diag, r); });
    }
    // Into a result you keep (the hot-path form): each call writes over its columns, rows and cells,
    // so a warm call allocates nothing of lifeline's own (rows beyond a statement's are freed, and
    // made again by a later, longer one). On failure, and for a write the verification found
    // applied, it holds no rows and zero counts. sql (and a prepared statement's args) must not
    // point into `into`: a retry would send what the failed attempt overwrote.
    void query(std::string_view sql, result& into, declaration_type decl = {}, call_options co = {}) {
        throwing([&](std::error_code& ec, diagnostics& d) { return query(sql, into, std::move(decl), co, ec, d); });
    }
    bool query(std::string_view sql, result& into, declaration_type decl, call_options co, std::error_code& ec,
               diagnostics& diag) noexcept {
        nothrow_into(into, ec, diag, [&](result& r) { return core_.statement(sql, decl, co, diag, r); });
        return !ec;
    }
    result execute(std::string_view sql, declaration_type decl = {}, call_options co = {}) {
        return query(sql, std::move(decl), co);
    }
    void execute(std::string_view sql, result& into, declaration_type decl = {}, call_options co = {}) {
        query(sql, into, std::move(decl), co);
    }
    bool execute(std::string_view sql, result& into, declaration_type decl, call_options co, std::error_code& ec,
                 diagnostics& diag) noexcept {
        return query(sql, into, std::move(decl), co, ec, diag);
    }
    result execute(std::string_view sql, declaration_type decl, call_options co, std::error_code& ec,
                   diagnostics& diag) noexcept {
        return query(sql, std::move(decl), co, ec, diag);
    }

    // --- wrapping existing code: f(native_handle) inside the retry loop --------------------------------
    // f is a black box: without a declaration it runs again only if lifeline proves that nothing
    // of it reached the server (the socket's byte counters did not move); otherwise its failure is
    // errc::outcome_unknown (or, with verify_with, the verification's verdict).
    template <class F>
    auto run(F&& f, declaration_type decl = {}, call_options co = {}) {
        std::error_code ec;
        diagnostics diag;
        auto out = run(std::forward<F>(f), std::move(decl), co, ec, diag);
        throw_if(ec, diag);
        if constexpr (!std::is_void_v<run_result_t<F>>) return std::move(*out);
    }
    template <class F>
    auto run(F&& f, declaration_type decl, call_options co, std::error_code& ec, diagnostics& diag) {
        using R = run_result_t<F>;
        std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> out;
        std::exception_ptr own;
        nothrow<int>(ec, diag, [&](int&) { return core_.call(f, out, decl, co, diag, own); });
        if (own) std::rethrow_exception(own);
        if constexpr (std::is_void_v<R>) return static_cast<bool>(out) && !ec;
        else return out;
    }

    // --- prepared statements: prepared again, lazily, on every new session ------------------------------
    // Parameters are bound as text; std::nullopt binds NULL.
    prepared_statement prepare(std::string_view sql) {
        static_assert(detail::has_prepare<traits>::value,
                      "lifeline: driver_traits<Tag> lacks `using statement_type`, `prepare`, `param_count`, "
                      "`execute_prepared` and `close_statement`: this driver does not support prepared statements "
                      "through lifeline (use run() with the driver's own API)");
        return core_.prepare(sql);
    }
    result execute(const prepared_statement& st, const params& args, declaration_type decl = {}, call_options co = {}) {
        return throwing([&](std::error_code& ec, diagnostics& d) { return execute(st, args, std::move(decl), co, ec, d); });
    }
    result execute(const prepared_statement& st, const params& args, declaration_type decl, call_options co,
                   std::error_code& ec, diagnostics& diag) noexcept {
        return nothrow<result>(ec, diag, [&](result& r) { return core_.prepared(st, args, decl, co, diag, r); });
    }
    void execute(const prepared_statement& st, const params& args, result& into, declaration_type decl = {},
                 call_options co = {}) {
        throwing([&](std::error_code& ec, diagnostics& d) { return execute(st, args, into, std::move(decl), co, ec, d); });
    }
    bool execute(const prepared_statement& st, const params& args, result& into, declaration_type decl, call_options co,
                 std::error_code& ec, diagnostics& diag) noexcept {
        nothrow_into(into, ec, diag, [&](result& r) { return core_.prepared(st, args, decl, co, diag, r); });
        return !ec;
    }

    // --- whole transactions (lifeline/transaction.hpp) ---------------------------------------------------
    // fn(transaction_context&) runs between START TRANSACTION and COMMIT. An exception fn throws
    // itself rolls the transaction back and propagates (never replayed).
    template <class F>
    transaction_result transaction(F&& fn, transaction_options o = {}) {
        std::error_code ec;
        diagnostics diag;
        auto r = transaction(std::forward<F>(fn), o, ec, diag);
        throw_if(ec, diag);
        return r;
    }
    template <class F>
    transaction_result transaction(F&& fn, transaction_options o, std::error_code& ec, diagnostics& diag) {
        std::exception_ptr own;
        auto r = nothrow<transaction_result>(ec, diag, [&](transaction_result& tr) { return core_.transact(fn, o, diag, tr, own); });
        if (own) std::rethrow_exception(own);
        return r;
    }

    // --- wrapping a driver connection your code already opened (lifeline/adopt.hpp) ------------------
    // The handle replaces the current session (C API: MYSQL*; Connector/C++:
    // std::unique_ptr<sql::Connection>); reconnects use this connection's options. Fails with
    // errc::invalid_option when the handle cannot be used (not connected, OPT_RECONNECT that cannot
    // be switched off, a TLS promise it does not keep); with ownership::take the handle is then
    // closed.
    template <class Handle>
    void adopt(Handle&& handle, ownership own = ownership::take, call_options co = {}) {
        throwing([&](std::error_code& ec, diagnostics& d) { return adopt(std::forward<Handle>(handle), own, co, ec, d); });
    }
    template <class Handle>
    bool adopt(Handle&& handle, ownership own, call_options co, std::error_code& ec, diagnostics& diag) noexcept {
        nothrow<int>(ec, diag, [&](int&) { return core_.adopt(std::forward<Handle>(handle), own, co, diag); });
        return !ec;
    }

    // The server behind the connection (flavour, version, Galera), as learnt at the last connect.
    const server_info& server() const noexcept { return core_.server(); }

    // --- connection management -----------------------------------------------------------------------
    void connect(call_options co = {}) {
        throwing([&](std::error_code& ec, diagnostics& d) { return connect(co, ec, d); });
    }
    bool connect(call_options co, std::error_code& ec, diagnostics& diag) noexcept { return ready(co, ec, diag); }
    // The before-use check alone (socket poll, ping after the idle window, recycle or reconnect with
    // the session restored), under the deadline. Sends no statement.
    bool ready(call_options co, std::error_code& ec, diagnostics& diag) noexcept {
        nothrow<int>(ec, diag, [&](int&) { return core_.ready(co, diag); });
        return !ec;
    }
    // Back to the registered session if the current one changed (SET, USE, variables, temporary
    // tables, locks, an open transaction, a run() callable): COM_RESET_CONNECTION and the session
    // replayed. false: it could not, and the session is closed. The pool calls it on return.
    bool reset_if_dirty(call_options co, diagnostics& diag) noexcept {
        std::error_code ec;
        bool ok = false;
        nothrow<int>(ec, diag, [&](int&) {
            ok = core_.reset_if_dirty(co, diag);
            return std::error_code{};
        });
        return ok && !ec;
    }
    bool dirty() const noexcept { return core_.dirty(); }

    // A transaction is open on the current session (or autocommit is off): from the server's status.
    bool in_transaction() const noexcept { return core_.in_transaction(); }
    const health_tracker& health() const noexcept { return core_.health(); }
    bool is_open() const noexcept { return core_.is_open(); }
    native_handle native() noexcept { return core_.native(); }  // the raw handle, outside any resilience
    void close() noexcept { core_.close(); }                    // the next operation reconnects
    // After errc::transaction_lost every operation fails until the caller acknowledges it (or
    // issues ROLLBACK / BEGIN / START TRANSACTION, or starts a transaction()).
    void acknowledge_transaction_lost() noexcept { core_.acknowledge_transaction_lost(); }
    std::uint64_t connection_id() const noexcept { return core_.connection_id(); }

private:
    template <class F>
    using run_result_t = std::invoke_result_t<F&, native_handle>;

    template <class F>
    auto throwing(F&& f) {
        std::error_code ec;
        diagnostics d;
        auto r = f(ec, d);
        throw_if(ec, d);
        return r;
    }

    // The non-throwing contract, in one place: no re-entrant use; lifeline's own surprises (out of
    // memory, a throwing observer) become errc::internal_error and close the session.
    template <class R, class F>
    R nothrow(std::error_code& ec, diagnostics& diag, F&& f) noexcept {
        R out{};
        nothrow_into(out, ec, diag, std::forward<F>(f));
        return out;
    }
    template <class R, class F>
    void nothrow_into(R& out, std::error_code& ec, diagnostics& diag, F&& f) noexcept {
        ec.clear();
        diag.clear();
        if (core_.busy()) {
            ec = make_error_code(errc::operation_in_progress);
            diag.client_message = "called from inside another operation of the same connection (a transaction function, "
                                  "a run() callable or an observer): use the transaction context or another connection";
            out = R{};
            return;
        }
        auto scope = core_.enter();
        try {
            ec = f(out);
            return;
        } catch (const std::exception& e) {
            diag.client_message = e.what();
        } catch (...) {
            diag.client_message = "an exception that is not a std::exception";
        }
        ec = make_error_code(errc::internal_error);
        core_.close();  // lifeline's own view of the session can no longer be trusted
        out = R{};
    }

    core_type core_;
};

}  // namespace lifeline

#endif  // LIFELINE_CONNECTION_HPP
