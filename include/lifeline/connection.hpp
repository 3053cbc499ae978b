// lifeline — a resilient connection: classify, retry what is safe, reconnect, restore the session.
//
//   lifeline::connection<lifeline::capi> db{options};          // lifeline/driver/capi.hpp
//   auto r = db.query("SELECT name FROM users WHERE id = 7", lifeline::idempotent);
//   db.execute("INSERT INTO ledger ...");                          // not idempotent: never sent twice
//   db.run([](MYSQL* m) { return existing_code(m); }, lifeline::idempotent);
//
// Every decision is made by the sans-I/O engines (detail/operation_engine.hpp,
// detail/transaction_engine.hpp); this class only executes their actions through the blocking I/O
// layer (detail/session_io.hpp), under one deadline per call. Each operation has a throwing form
// and a non-throwing one `(args..., options, ec, diag)`; the non-throwing forms throw nothing of
// lifeline's or the driver's — only an exception thrown by your own callable (run(), transaction())
// passes through.
//
// Not thread-safe: one connection per thread at a time (use lifeline::pool to share).
#ifndef LIFELINE_CONNECTION_HPP
#define LIFELINE_CONNECTION_HPP

#include <lifeline/declaration.hpp>
#include <lifeline/detail/operation_engine.hpp>
#include <lifeline/detail/session_io.hpp>
#include <lifeline/detail/shared_guards.hpp>
#include <lifeline/detail/sql_text.hpp>
#include <lifeline/detail/transaction_engine.hpp>
#include <lifeline/driver_traits.hpp>
#include <lifeline/error.hpp>
#include <lifeline/observer.hpp>
#include <lifeline/options.hpp>
#include <lifeline/policy.hpp>
#include <lifeline/result.hpp>
#include <lifeline/session.hpp>
#include <lifeline/statement.hpp>
#include <lifeline/transaction.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace lifeline {

struct call_options {
    // The whole call: health check, reconnects, backoff and every attempt. 0: the policy's
    // retry.deadline; std::chrono::milliseconds::max(): no deadline (only io_timeout bounds a read).
    std::chrono::milliseconds deadline{0};
    // true: one connect attempt if the session must be (re)opened, no waiting for the server to
    // come back (a pool that paces its own connects uses it; so can a caller that prefers an
    // immediate error to waiting within its deadline).
    bool fail_fast = false;
};

// Counters of one connection (plain integers: the connection is single-threaded).
struct connection_stats {
    std::uint64_t operations = 0, attempts = 0, retries = 0, reconnects = 0, pings = 0, socket_checks = 0,
                  verifications = 0, gave_up = 0;
};

template <class Driver, class Policy = default_policy>
class connection {
    static_assert(check_driver_traits<Driver>(), "see the static_assert above");
    static_assert(check_policy<Policy>(), "see the static_assert above");

public:
    using traits = driver_traits<Driver>;
    using native_handle = typename traits::native_handle;
    using declaration_type = declaration<native_handle>;
    using session_spec = basic_session<native_handle>;
    using clock_type = typename Policy::clock_type;

    // Validates options and policy; throws lifeline::error (errc::invalid_option) saying what to fix.
    // Does not connect: the first operation does (or call connect()).
    explicit connection(connect_options options, Policy policy = {}, session_spec session = {}, clock_type clock = {})
        : options_(std::move(options)), policy_(std::move(policy)), spec_(std::move(session)), clock_(std::move(clock)),
          endpoint_(options_.unix_socket.empty() ? options_.host + ":" + std::to_string(options_.port) : options_.unix_socket),
          io_(options_, clock_), state_(policy_.health), backoff_(policy_.backoff, detail::entropy_seed(this)),
          rng_(detail::entropy_seed(this) * 2654435761u) {
        std::string why = validate(options_);
        if (auto p = policy_.validate(); !p.empty()) why += (why.empty() ? "" : "; ") + p;
        if (!why.empty()) {
            diagnostics d;
            d.client_message = why;
            throw error(errc::invalid_option, std::move(d));
        }
        budget_ = detail::shared_retry_budget(policy_.budget);
        breaker_ = detail::shared_breaker(endpoint_, policy_.breaker);
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // --- configuration ---------------------------------------------------------------------------
    void set_observer(std::shared_ptr<observer> o) { observer_ = std::move(o); }
    void set_retry_budget(std::shared_ptr<retry_budget> b) { budget_ = std::move(b); }
    void set_circuit_breaker(std::shared_ptr<circuit_breaker> b) { breaker_ = std::move(b); }
    session_spec& session() noexcept { return spec_; }  // applies from the next (re)connect on
    const Policy& policy() const noexcept { return policy_; }
    const connect_options& options() const noexcept { return options_; }
    const connection_stats& stats() const noexcept { return stats_; }
    const std::string& endpoint() const noexcept { return endpoint_; }

    // --- statements (query and execute are the same call: rows and counts come back in result) ---
    result query(std::string_view sql, declaration_type decl = {}, call_options co = {}) {
        return throwing([&](std::error_code& ec, diagnostics& d) { return query(sql, std::move(decl), co, ec, d); });
    }
    result query(std::string_view sql, declaration_type decl, call_options co, std::error_code& ec,
                 diagnostics& diag) noexcept {
        return guard_internal(ec, diag, [&] {
            result r;
            detail::operation_spec spec{true, decl.idempotent(), decl.can_verify(), false, sql.size(),
                                        detail::acknowledges_transaction_loss(sql), co.fail_fast};
            ec = operate(spec, decl, co, diag, r, sql, [&](detail::attempted& e) {
                r.rows.clear();
                r.columns.clear();
                if (detail::changes_session(sql)) io_.mark_dirty();
                e.lock_uncertain = detail::may_release_locks(sql);
                return traits::execute(io_.session(), sql, &r, e.diag);
            });
            return r;
        });
    }
    result execute(std::string_view sql, declaration_type decl = {}, call_options co = {}) { return query(sql, std::move(decl), co); }
    result execute(std::string_view sql, declaration_type decl, call_options co, std::error_code& ec, diagnostics& diag) noexcept {
        return query(sql, std::move(decl), co, ec, diag);
    }

    // --- wrapping existing code: f(native_handle) inside the retry loop ----------------------------
    // f is a black box: without a declaration it runs again only if lifeline proves that nothing
    // of it reached the server (the socket's byte counters did not move); otherwise its failure
    // is errc::outcome_unknown (or its verification, with verify_with).
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
        std::exception_ptr own;  // the callable's own exception: rethrown once lifeline is done
        guard_internal(ec, diag, [&] {
            detail::operation_spec spec{true, decl.idempotent(), decl.can_verify(), true, 0, false, co.fail_fast};
            result unused;
            ec = operate(spec, decl, co, diag, unused, {}, [&](detail::attempted& e) {
                out.reset();
                try {
                    return traits::invoke(io_.session(), f, out, e.diag);
                } catch (...) {
                    // It may have left a result unread or a command half sent: the session is
                    // not trusted any more (an open transaction is then lost, and reported so).
                    own = std::current_exception();
                    e.usage_error = true;
                    e.diag.client_message = "the callable threw; lifeline closed the session, whose state is unknown";
                    io_.close();
                    return false;
                }
            });
            return 0;
        });
        if (own) std::rethrow_exception(own);
        if constexpr (std::is_void_v<R>) return static_cast<bool>(out) && !ec;
        else return out;
    }

    // --- prepared statements: prepared again, lazily, on every new session --------------------------
    prepared_statement prepare(std::string_view sql) {
        static_assert(detail::has_prepare<traits>::value,
                      "lifeline: driver_traits<Tag> lacks `using statement_type`, `prepare`, `param_count`, "
                      "`execute_prepared` and `close_statement`: this driver does not support prepared statements "
                      "through lifeline (use run() with the driver's own API)");
        prepared_sql_.emplace_back(sql);
        return prepared_statement(prepared_sql_.size());
    }
    result execute(const prepared_statement& st, const params& args, declaration_type decl = {}, call_options co = {}) {
        return throwing([&](std::error_code& ec, diagnostics& d) { return execute(st, args, std::move(decl), co, ec, d); });
    }
    result execute(const prepared_statement& st, const params& args, declaration_type decl, call_options co,
                   std::error_code& ec, diagnostics& diag) noexcept {
        return guard_internal(ec, diag, [&] {
            result r;
            if (!st.valid() || st.id() > prepared_sql_.size()) {
                ec = make_error_code(errc::invalid_option);
                diag = diagnostics{};
                diag.client_message = "prepared_statement does not belong to this connection: use the handle prepare() returned";
                return r;
            }
            const std::string& sql = prepared_sql_[st.id() - 1];
            detail::operation_spec spec{true, decl.idempotent(), decl.can_verify(), false, sql.size(), false, co.fail_fast};
            ec = operate(spec, decl, co, diag, r, sql, [&](detail::attempted& e) { return run_prepared(st.id() - 1, sql, args, r, e); });
            return r;
        });
    }

    // --- whole transactions (lifeline/transaction.hpp) ---------------------------------------------
    class transaction_context {
    public:
        result execute(std::string_view sql) { return c_.tx_statement(sql); }
        result query(std::string_view sql) { return c_.tx_statement(sql); }
        native_handle native() noexcept { return c_.io_.native(); }  // outside lifeline's watch

    private:
        friend class connection;
        explicit transaction_context(connection& c) noexcept : c_(c) {}
        connection& c_;
    };

    template <class F>
    transaction_result transaction(F&& fn, transaction_options o = {}) {
        std::error_code ec;
        diagnostics diag;
        auto r = transaction(std::forward<F>(fn), o, ec, diag);
        throw_if(ec, diag);
        return r;
    }
    template <class F>
    transaction_result transaction(F&& fn, transaction_options o, std::error_code& ec, diagnostics& diag);

    // --- connection management ---------------------------------------------------------------------
    void connect(call_options co = {}) {
        throwing([&](std::error_code& ec, diagnostics& d) { return connect(co, ec, d); });
    }
    bool connect(call_options co, std::error_code& ec, diagnostics& diag) noexcept { return ready(co, ec, diag); }
    // The before-use check alone (socket poll, ping after the idle window, recycle or reconnect with
    // the session restored), under the deadline. Sends no statement.
    bool ready(call_options co, std::error_code& ec, diagnostics& diag) noexcept {
        return guard_internal(ec, diag, [&] {
            detail::operation_spec spec{false, false, false, false, 0, false, co.fail_fast};
            result unused;
            ec = operate(spec, declaration_type{}, co, diag, unused, {}, [](detail::attempted&) { return true; });
            return !ec;
        });
    }
    // Back to the registered session if the current one changed (the pool's return path);
    // false: it could not, and the session is closed (the next use reconnects).
    bool reset_if_dirty(call_options co, diagnostics& diag) noexcept;
    bool dirty() const noexcept { return io_.dirty() || in_transaction(); }

    bool in_transaction() const noexcept { return io_.open() && traits::in_transaction(io_.session()); }
    const health_tracker& health() const noexcept { return state_.health; }
    bool is_open() const noexcept { return io_.open(); }
    native_handle native() noexcept { return io_.native(); }  // outside any resilience
    void close() noexcept {
        io_.close();
        state_.open = false;
    }
    // After errc::transaction_lost every operation fails until the caller acknowledges it (or
    // issues ROLLBACK / BEGIN / START TRANSACTION, or starts a transaction()).
    void acknowledge_transaction_lost() noexcept { state_.transaction_lost = false; }
    std::uint64_t connection_id() const noexcept { return io_.open() ? state_.current.id : 0; }

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
    // The non-throwing contract: lifeline's own surprises (e.g. out of memory) become internal_error.
    // (Callables' own exceptions are caught before they get here and rethrown after.)
    template <class F>
    auto guard_internal(std::error_code& ec, diagnostics& diag, F&& f) noexcept -> decltype(f()) {
        ec.clear();
        diag = diagnostics{};
        try {
            return f();
        } catch (const std::exception& e) {
            diag.client_message = e.what();
        } catch (...) {
            diag.client_message = "an exception that is not a std::exception";
        }
        ec = make_error_code(errc::internal_error);
        close();  // lifeline's own view of the session can no longer be trusted
        return decltype(f()){};
    }

    detail::retry_gate gate(std::chrono::milliseconds d) {
        const auto limit = d.count() > 0 ? d : policy_.retry.deadline;
        return detail::retry_gate(policy_.retry.max_attempts, deadline::after(limit, clock_.now()), budget_.get(), backoff_);
    }

    // Runs one operation: the engine decides, this loop executes.
    template <class Attempt>
    std::error_code operate(const detail::operation_spec& spec, const declaration_type& decl, call_options co,
                            diagnostics& diag, result& r, std::string_view sql, Attempt&& attempt) {
        ++stats_.operations;
        state_.guard_untracked_state = spec_.guard_untracked_state;
        detail::operation_engine<Policy> e(policy_, state_, *breaker_, gate(co.deadline), budget_.get(), spec);
        detail::next_action a = e.start(clock_.now());
        for (;;) {
            sync();
            switch (a.type) {
            case detail::action_type::attempt:
                ++stats_.attempts;
                if (observer_) observer_->on_attempt(attempt_event{endpoint_, sql, e.attempts()});
                a = e.resume(io_.attempt(a.bound, spec.black_box, spec_.guard_untracked_state && !sql.empty(), attempt), clock_.now());
                break;
            case detail::action_type::verify:
                ++stats_.verifications;
                a = e.resume(io_.verify(a.bound, [&](native_handle h) { return decl.verify(h); }), clock_.now());
                break;
            case detail::action_type::done:
                sync();
                r.attempts = e.attempts();
                r.verified = e.verified_applied();
                diag = e.diag();
                if (a.ec) give_up(sql, e.attempts(), a.ec, diag, e.why());
                return a.ec;
            default:
                a = common_step(e, a, sql);
            }
        }
    }

    // The actions both engines share.
    template <class Engine>
    detail::next_action common_step(Engine& e, const detail::next_action& a, std::string_view sql) {
        using detail::action_type;
        switch (a.type) {
        case action_type::probe:
            if (policy_.health.socket_check) ++stats_.socket_checks;
            return e.resume(detail::probed{io_.probe(policy_.health.socket_check)}, clock_.now());
        case action_type::ping: {
            ++stats_.pings;
            detail::pinged p = io_.ping(a.bound);
            if (observer_) observer_->on_ping(endpoint_, p.ok);
            return e.resume(p, clock_.now());
        }
        case action_type::connect: {
            const auto t0 = clock_.now();
            detail::connected c = io_.connect(a.bound, spec_, rng_());
            ++stats_.reconnects;
            if (observer_) {
                const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now() - t0);
                observer_->on_reconnect(reconnect_event{endpoint_, e.why(), c.ok, c.ok ? std::error_code{} : make_driver_error_code(c.diag.code), took, e.cause()});
                if (c.ok && restored_statements()) observer_->on_session_restored(session_restored_event{endpoint_, restored_statements()});
            }
            return e.resume(c, clock_.now());
        }
        case action_type::fence:
            return e.resume(io_.fence(a.target, a.bound), clock_.now());
        case action_type::kill:
            return e.resume(io_.kill(a.target, a.bound), clock_.now());
        case action_type::wait:
            ++stats_.retries;
            if (observer_) observer_->on_retry(retry_event{endpoint_, sql, e.attempts(), e.last_classification(), e.diag(), a.delay, e.why()});
            clock_.sleep_for(a.delay);
            return e.resume(detail::waited{}, clock_.now());
        default:
            break;
        }
        detail::next_action bug;  // unreachable: each loop handles its engine's own actions
        bug.ec = make_error_code(errc::internal_error);
        return bug;
    }

    // The engine says the session is gone: close the driver's.
    void sync() noexcept {
        if (!state_.open && io_.open()) io_.close();
    }

    unsigned restored_statements() const noexcept {
        return static_cast<unsigned>(!spec_.charset.empty()) + !spec_.time_zone.empty() + !spec_.sql_mode.empty() +
               static_cast<unsigned>(spec_.statements.size()) + static_cast<bool>(spec_.on_connect);
    }

    bool run_prepared(std::size_t index, const std::string& sql, const params& args, result& r, detail::attempted& e) {
        auto& h = io_.statement(index);
        if (!h && !traits::prepare(io_.session(), sql, h, e.diag)) {
            e.nothing_ran = true;  // preparing runs nothing, whatever the error
            return false;
        }
        if (traits::param_count(*h) != args.size()) {
            e.usage_error = true;
            e.diag.client_message = "statement takes " + std::to_string(traits::param_count(*h)) + " parameter(s), " +
                                    std::to_string(args.size()) + " given: " + sql;
            return false;
        }
        r.rows.clear();
        r.columns.clear();
        return traits::execute_prepared(io_.session(), *h, args, &r, e.diag);
    }

    // One statement of a transaction body: refused unsent once the transaction is poisoned.
    result tx_statement(std::string_view sql) {
        result r;
        if (!tx_ || !tx_->statement_allowed()) throw detail::transaction_statement_failed{};
        if (!tx_->statement_finished(io_.tx_statement(sql, tx_bound_, &r))) throw detail::transaction_statement_failed{};
        return r;
    }

    std::string make_token() {
        static const char hex[] = "0123456789abcdef";
        std::string t(32, '0');
        const std::uint64_t a = rng_(), b = rng_();
        for (int i = 0; i < 16; ++i) {
            t[static_cast<std::size_t>(i)] = hex[(a >> (i * 4)) & 15];
            t[static_cast<std::size_t>(16 + i)] = hex[(b >> (i * 4)) & 15];
        }
        return t;
    }

    void give_up(std::string_view sql, unsigned n, const std::error_code& ec, const diagnostics& diag, std::string_view why) {
        ++stats_.gave_up;
        if (observer_) observer_->on_gave_up(gave_up_event{endpoint_, sql, n, ec, diag, why});
    }

    connect_options options_;
    Policy policy_;
    session_spec spec_;
    clock_type clock_;
    std::string endpoint_;
    detail::session_io<Driver, clock_type> io_;
    detail::link_state state_;
    backoff backoff_;
    std::mt19937_64 rng_;
    std::shared_ptr<retry_budget> budget_;
    std::shared_ptr<circuit_breaker> breaker_;
    std::shared_ptr<observer> observer_;
    connection_stats stats_;
    std::vector<std::string> prepared_sql_;  // what prepare() registered, by id - 1
    detail::transaction_engine<Policy>* tx_ = nullptr;  // while a transaction body runs
    deadline tx_bound_ = deadline::none();
    bool marker_ready_ = false;
    unsigned commits_since_cleanup_ = 0;
};

template <class Driver, class Policy>
template <class F>
transaction_result connection<Driver, Policy>::transaction(F&& fn, transaction_options o, std::error_code& ec,
                                                           diagnostics& diag) {
    using detail::action_type;
    transaction_result tr;
    std::exception_ptr own;  // the function's own exception: rethrown after the rollback
    guard_internal(ec, diag, [&] {
        ++stats_.operations;
        detail::transaction_engine<Policy> e(policy_, state_, *breaker_, gate(o.deadline), budget_.get(), o);
        std::string token;
        detail::next_action a = e.start(clock_.now());
        for (;;) {
            sync();
            switch (a.type) {
            case action_type::begin:
                token = o.resolve_commit ? make_token() : std::string();
                a = e.resume(io_.begin(a.bound, token, marker_ready_), clock_.now());
                break;
            case action_type::body: {
                tx_ = &e;
                tx_bound_ = a.bound;
                try {
                    transaction_context ctx(*this);
                    fn(ctx);
                } catch (const detail::transaction_statement_failed&) {
                } catch (...) {
                    own = std::current_exception();
                }
                tx_ = nullptr;
                a = e.resume(detail::body_done{own != nullptr}, clock_.now());
                break;
            }
            case action_type::commit: {
                detail::committed c = io_.commit(a.bound);
                if (c.ok && o.resolve_commit && ++commits_since_cleanup_ >= 100) {
                    commits_since_cleanup_ = 0;
                    io_.clean_markers(a.bound);
                }
                a = e.resume(c, clock_.now());
                break;
            }
            case action_type::rollback: a = e.resume(io_.rollback(a.bound), clock_.now()); break;
            case action_type::lookup:
                ++stats_.verifications;
                a = e.resume(io_.lookup(token, a.bound), clock_.now());
                break;
            case action_type::done:
                sync();
                tr.attempts = e.runs();
                tr.commit_resolved = e.commit_resolved();
                ec = a.ec;
                diag = e.diag();
                if (ec) give_up({}, e.runs(), ec, diag, e.why());
                return 0;
            default: a = common_step(e, a, {});
            }
        }
    });
    if (own) std::rethrow_exception(own);
    return tr;
}

template <class Driver, class Policy>
bool connection<Driver, Policy>::reset_if_dirty(call_options co, diagnostics& diag) noexcept {
    if (!io_.open() || !dirty()) return true;
    const auto limit = co.deadline.count() > 0 ? co.deadline : policy_.retry.deadline;
    if (io_.reset(deadline::after(limit, clock_.now()), spec_, state_.current, diag)) {
        state_.in_transaction = false;
        state_.untracked_state = false;
        return true;
    }
    close();
    return false;
}

}  // namespace lifeline

#endif  // LIFELINE_CONNECTION_HPP
