// lifeline — the blocking connection's core: its state, and the loops that execute the engines'
// actions through the blocking I/O layer (session_io.hpp). lifeline::connection (connection.hpp)
// is the public face over it. No decision is made here: each loop asks its engine for the next
// action, runs it, reports the outcome, and counts and tells the observer what happened.
#ifndef LIFELINE_DETAIL_BLOCKING_CORE_HPP
#define LIFELINE_DETAIL_BLOCKING_CORE_HPP

#include <lifeline/call_options.hpp>
#include <lifeline/declaration.hpp>
#include <lifeline/detail/cluster_io.hpp>  // failover
#include <lifeline/detail/operation_engine.hpp>
#include <lifeline/detail/session_io.hpp>
#include <lifeline/detail/session_sql.hpp>
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

namespace lifeline::detail {

// Optional driver member: `static std::string check_options(const connect_options&)` says what the
// driver cannot do with valid options (empty: fine). Checked when a connection is built.
template <class T, class = void>
struct has_check_options : std::false_type {};
template <class T>
struct has_check_options<T, std::void_t<decltype(T::check_options(std::declval<const connect_options&>()))>>
    : std::true_type {};
template <class T>
std::string check_driver_options(const connect_options& o) {
    if constexpr (has_check_options<T>::value) return T::check_options(o);
    else return {};
}

template <class Driver, class Policy>
class blocking_core {
public:
    using traits = driver_traits<Driver>;
    using native_handle = typename traits::native_handle;
    using declaration_type = declaration<native_handle>;
    using session_spec = basic_session<native_handle>;
    using clock_type = typename Policy::clock_type;

    // What a transaction function gets: statements run on the transaction's session, without
    // per-statement retries (inside a transaction only the whole may be replayed).
    class transaction_context {
    public:
        result execute(std::string_view sql) { return c_.tx_statement(sql); }
        result query(std::string_view sql) { return c_.tx_statement(sql); }
        native_handle native() noexcept { return c_.io_.native(); }  // outside lifeline's watch

    private:
        friend class blocking_core;
        explicit transaction_context(blocking_core& c) noexcept : c_(c) {}
        blocking_core& c_;
    };

    blocking_core(connect_options options, Policy policy, session_spec spec, clock_type clock)
        : options_(std::move(options)), policy_(std::move(policy)), spec_(std::move(spec)), clock_(std::move(clock)),
          endpoint_(endpoint_name(options_)),
          io_(options_, clock_), state_(policy_.health), backoff_(policy_.backoff, entropy_seed(this)),
          rng_(entropy_seed(this) * 2654435761u) {
        std::string why = validate(options_);
        if (why.empty()) why = check_driver_options<traits>(options_);
        if (auto p = policy_.validate(); !p.empty()) why += (why.empty() ? "" : "; ") + p;
        if (!why.empty()) {
            diagnostics d;
            d.client_message = why;
            throw error(errc::invalid_option, std::move(d));
        }
        budget_ = shared_retry_budget(policy_.budget);
        breaker_ = shared_breaker(endpoint_, policy_.breaker);
        monitor_ = shared_monitor(endpoint_, policy_.probe);
        if (!options_.hosts.empty()) set_cluster(shared_cluster_view(options_.hosts));  // failover
    }

    // Failover (cluster.hpp): the view this connection's connects follow (shared per host list).
    void set_cluster(std::shared_ptr<cluster_view> v) {
        cluster_ = std::move(v);
        host_ = static_cast<std::size_t>(-1);
        state_.cluster = cluster_ != nullptr;
        state_.can_reroute = state_.cluster && options_.target == target_role::writer;
    }
    // The host of the current session (failover; npos without a host list or a session).
    std::size_t current_host() const noexcept { return io_.open() ? host_ : static_cast<std::size_t>(-1); }

    // --- operations (each returns its error; diag and the result are filled) -----------------------
    std::error_code statement(std::string_view sql, const declaration_type& decl, call_options co, diagnostics& diag,
                              result& r) {
        const statement_effects fx = effects_(sql);
        const operation_spec spec{true, decl.idempotent(), decl.can_verify(), false, sql.size(), fx.acknowledges_loss,
                                  fail_fast(co)};
        return operate(spec, decl, co, diag, r, sql, [&](attempted& e) {
            begin_result(r);
            if (fx.changes_session) io_.mark_dirty();
            e.lock_uncertain = fx.may_release_locks;
            return traits::execute(io_.session(), sql, &r, e.diag);
        });
    }

    // f(native_handle) into out; its own exception lands in `own` (rethrown by the caller).
    template <class F, class Out>
    std::error_code call(F& f, Out& out, const declaration_type& decl, call_options co, diagnostics& diag,
                         std::exception_ptr& own) {
        const operation_spec spec{true, decl.idempotent(), decl.can_verify(), true, 0, false, fail_fast(co)};
        result unused;
        return operate(spec, decl, co, diag, unused, {}, [&](attempted& e) {
            out.reset();
            try {
                return traits::invoke(io_.session(), f, out, e.diag);
            } catch (...) {
                // It may have left a result unread or a command half sent: the session is not
                // trusted any more (an open transaction is then lost, and reported so).
                own = std::current_exception();
                e.usage_error = true;
                e.diag.client_message = "the callable threw; lifeline closed the session, whose state is unknown";
                io_.close();
                return false;
            }
        });
    }

    prepared_statement prepare(std::string_view sql) {
        prepared_sql_.emplace_back(sql);
        return prepared_statement(prepared_sql_.size());
    }
    std::error_code prepared(const prepared_statement& st, const params& args, const declaration_type& decl,
                             call_options co, diagnostics& diag, result& r) {
        if (!st.valid() || st.id() > prepared_sql_.size()) {
            r.clear();
            diag.client_message = "prepared_statement does not belong to this connection: use the handle prepare() returned";
            return make_error_code(errc::invalid_option);
        }
        const std::string& sql = prepared_sql_[st.id() - 1];
        const operation_spec spec{true, decl.idempotent(), decl.can_verify(), false, sql.size(), false, fail_fast(co)};
        return operate(spec, decl, co, diag, r, sql, [&](attempted& e) { return run_prepared(st.id() - 1, sql, args, r, e); });
    }

    // An already-open driver handle becomes the session (lifeline/adopt.hpp). The handle always
    // goes to the driver adapter (so ownership::take is honoured whatever happens); its outcome is
    // fed to the engine as a connect's, so a failure after that reconnects as usual.
    template <class Handle>
    std::error_code adopt(Handle&& handle, ownership own, call_options co, diagnostics& diag) {
        ++stats_.operations;
        ++stats_.reconnects;
        close();
        const operation_spec spec{false, false, false, false, 0, false, fail_fast(co)};
        operation_engine<Policy> e(policy_, state_, *breaker_, *monitor_, gate(co.deadline), budget_.get(), spec);
        const auto limit = co.deadline.count() > 0 ? co.deadline : policy_.retry.deadline;
        const deadline bound = deadline::after(limit, clock_.now());
        next_action a = e.resume(io_.adopt(bound, spec_, rng_(), std::forward<Handle>(handle), own), clock_.now());
        for (;;) {
            sync();
            if (a.type == action_type::done) {
                diag = e.diag();
                if (a.ec) give_up({}, e.attempts(), a.ec, diag, e.why());
                return a.ec;
            }
            a = common_step(e, a, {});
        }
    }

    std::error_code ready(call_options co, diagnostics& diag) {
        // A pool's validation on borrow, mostly: a session seen healthy a moment ago and due for
        // nothing needs no engine, nor one that the probe the engine would make first finds
        // alive (the engine's own predicates say so; they decide, this skips). Anything else, a
        // dead socket included, runs the engine (which then probes again).
        const steady_time t = now();
        if (operation_engine<Policy>::ready_at_once(state_, t)) {
            ++stats_.operations;
            return {};
        }
        if (policy_.health.socket_check && operation_engine<Policy>::ready_if_alive(state_, t)) {
            ++stats_.socket_checks;
            if (io_.probe(true) == socket_status::alive) {
                state_.health.on_seen_alive(t);  // as resume(probed) does
                ++stats_.operations;
                return {};
            }
        }
        const operation_spec spec{false, false, false, false, 0, false, fail_fast(co)};
        result unused;
        return operate(spec, declaration_type{}, co, diag, unused, {}, [](attempted&) { return true; });
    }

    template <class F>
    std::error_code transact(F& fn, const transaction_options& o, diagnostics& diag, transaction_result& tr,
                             std::exception_ptr& own);

    // Back to the registered session if the current one changed (the pool's return path); false:
    // it could not, and the session is closed (the next use reconnects).
    bool reset_if_dirty(call_options co, diagnostics& diag) {
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

    // --- state ---------------------------------------------------------------------------------------
    bool dirty() const noexcept { return io_.dirty() || in_transaction(); }
    bool in_transaction() const noexcept { return io_.open() && traits::in_transaction(io_.session()); }
    const health_tracker& health() const noexcept { return state_.health; }
    const server_info& server() const noexcept { return state_.server; }
    bool is_open() const noexcept { return io_.open(); }
    native_handle native() noexcept { return io_.native(); }
    void close() noexcept {
        io_.close();
        state_.open = false;
    }
    void acknowledge_transaction_lost() noexcept { state_.transaction_lost = false; }
    std::uint64_t connection_id() const noexcept { return io_.open() ? state_.current.id : 0; }

    // Re-entrant use (e.g. db.query() from inside a transaction function or a run() callable) is
    // refused with errc::operation_in_progress instead of corrupting the operation in flight.
    bool busy() const noexcept { return busy_; }
    struct busy_scope {
        explicit busy_scope(bool& b) noexcept : b_(b) { b_ = true; }
        ~busy_scope() { b_ = false; }
        busy_scope(const busy_scope&) = delete;
        busy_scope& operator=(const busy_scope&) = delete;
        bool& b_;
    };
    busy_scope enter() noexcept { return busy_scope(busy_); }

    connect_options options_;
    Policy policy_;
    session_spec spec_;
    clock_type clock_;
    std::string endpoint_;
    std::shared_ptr<retry_budget> budget_;
    std::shared_ptr<circuit_breaker> breaker_;
    std::shared_ptr<endpoint_monitor> monitor_;
    std::shared_ptr<observer> observer_;
    std::shared_ptr<cluster_view> cluster_;  // failover: null without a host list
    connection_stats stats_;

private:
    // The key for the endpoint's monitor and breaker. A host list's writer and its replica reads
    // are apart: while a failover leaves no writer, reads from the replicas go on.
    static std::string endpoint_name(const connect_options& o) {
        if (!o.hosts.empty())
            return cluster_view::key_of(o.hosts) + (o.target == target_role::writer ? "" : "#prefer_replica");
        return o.unix_socket.empty() ? o.host + ":" + std::to_string(o.port) : o.unix_socket;
    }
    // Failover: tell the view what a failed statement says about its server (cluster.hpp fault_of).
    void note_fault(const diagnostics& d) {
        if (cluster_ && host_ < cluster_->size() && d.code != 0) cluster_->fault(host_, d.code, clock_.now());
    }

    bool fail_fast(const call_options& co) const noexcept { return co.fail_fast || policy_.retry.fail_fast; }

    retry_gate gate(std::chrono::milliseconds d) {
        const auto limit = d.count() > 0 ? d : policy_.retry.deadline;
        return retry_gate(policy_.retry.max_attempts, deadline::after(limit, now()), budget_.get(), backoff_);
    }

    // The clock is read once per step that takes time (a round trip included); the instant socket
    // probe reuses the last reading.
    steady_time now() { return last_now_ = clock_.now(); }

    // Runs one operation: the engine decides, this loop executes.
    template <class Attempt>
    std::error_code operate(const operation_spec& spec, const declaration_type& decl, call_options co, diagnostics& diag,
                            result& r, std::string_view sql, Attempt&& attempt) {
        ++stats_.operations;
        state_.guard_untracked_state = spec_.guard_untracked_state;
        operation_engine<Policy> e(policy_, state_, *breaker_, *monitor_, gate(co.deadline), budget_.get(), spec);
        io_.set_call_io_timeout(co.io_timeout);
        struct io_timeout_scope {
            session_io<Driver, clock_type>& io;
            ~io_timeout_scope() { io.set_call_io_timeout(std::chrono::milliseconds(0)); }
        } scope{io_};
        next_action a = e.start(last_now_);
        for (;;) {
            sync();
            switch (a.type) {
            case action_type::attempt:
                ++stats_.attempts;
                if (observer_) observer_->on_attempt(attempt_event{endpoint_, sql, e.attempts()});
            {
                attempted done = io_.attempt(a.bound, spec.black_box, spec_.guard_untracked_state && !sql.empty(), attempt);
                if (!done.ok) note_fault(done.diag);
                // Read after the reply: the probe bypass counts from when the socket was last seen healthy.
                a = e.resume(done, now());
                break;
            }
            case action_type::verify:
                ++stats_.verifications;
                a = e.resume(io_.verify(a.bound, [&](native_handle h) { return decl.verify(h); }), now());
                break;
            case action_type::done:
                sync();
                // A failed call returns no rows, whatever a failed attempt left half read; nor
                // does a write the caller's check found applied (its own reply never came).
                if (a.ec || e.verified_applied()) r.clear();
                r.attempts = e.attempts();
                r.verified = e.verified_applied();
                if (a.ec) {
                    diag = e.diag();
                    give_up(sql, e.attempts(), a.ec, diag, e.why());
                }
                return a.ec;
            default:
                a = common_step(e, a, sql);
            }
        }
    }

    // The actions both engines share.
    template <class Engine>
    next_action common_step(Engine& e, const next_action& a, std::string_view sql) {
        switch (a.type) {
        case action_type::probe:
            if (policy_.health.socket_check) ++stats_.socket_checks;
            return e.resume(probed{io_.probe(policy_.health.socket_check)}, last_now_);
        case action_type::ping: {
            ++stats_.pings;
            pinged p = io_.ping(a.bound);
            if (observer_) observer_->on_ping(endpoint_, p.ok);
            return e.resume(p, now());
        }
        case action_type::connect: {
            const auto t0 = now();
            connected c = cluster_ ? cluster_connect(io_, *cluster_, options_, options_.target, a.bound, spec_, rng_(), clock_, host_)
                                   : io_.connect(a.bound, spec_, rng_());
            ++stats_.reconnects;
            if (observer_) {
                const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(now() - t0);
                observer_->on_reconnect(reconnect_event{endpoint_, e.why(), c.ok,
                                                        c.ok ? std::error_code{} : make_driver_error_code(c.diag.code), took,
                                                        e.cause()});
                if (c.ok && restored_statements())
                    observer_->on_session_restored(session_restored_event{endpoint_, restored_statements()});
            }
            return e.resume(c, now());
        }
        case action_type::fence:
            if (a.across_servers)  // failover: the evidence across the servers (cluster_io.hpp)
                return e.resume(cluster_ ? fence_across(io_, *cluster_, options_, host_, a.target, a.bound, clock_) : fenced{},
                                now());
            return e.resume(io_.fence(a.target, a.bound), now());
        case action_type::kill: return e.resume(io_.kill(a.target, a.bound), now());
        case action_type::wait:
            ++stats_.retries;
            if (observer_)
                observer_->on_retry(retry_event{endpoint_, sql, e.attempts(), e.last_classification(), e.diag(), a.delay, e.why()});
            clock_.sleep_for(a.delay);
            return e.resume(waited{}, now());
        case action_type::await_endpoint:
            ++stats_.endpoint_waits;
            if (observer_)
                observer_->on_retry(retry_event{endpoint_, sql, e.attempts(), e.last_classification(), e.diag(), a.delay, e.why()});
            // Woken early by the prober's verdict; an injected clock (tests) just lets time pass.
            if constexpr (std::is_same_v<clock_type, system_clock_source>) monitor_->wait_for_change(a.epoch, a.delay);
            else clock_.sleep_for(a.delay);
            return e.resume(waited{}, now());
        default: break;
        }
        next_action bug;  // unreachable: each loop handles its engine's own actions
        bug.ec = make_error_code(errc::internal_error);
        return bug;
    }

    // Before an attempt: an adapter that appends (no writes_over_result) gets an empty result; one
    // that writes over it keeps the storage of the last statement's (a result kept across calls).
    static void begin_result(result& r) noexcept {
        if constexpr (!writes_over_result<traits>::value) r.clear();
    }

    // The engine says the session is gone: close the driver's.
    void sync() noexcept {
        if (!state_.open && io_.open()) io_.close();
    }

    unsigned restored_statements() const noexcept {
        return static_cast<unsigned>(!spec_.charset.empty()) + !spec_.time_zone.empty() + !spec_.sql_mode.empty() +
               static_cast<unsigned>(spec_.statements.size()) + static_cast<bool>(spec_.on_connect);
    }

    bool run_prepared(std::size_t index, const std::string& sql, const params& args, result& r, attempted& e) {
        if constexpr (has_prepare<traits>::value) {
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
            begin_result(r);
            return traits::execute_prepared(io_.session(), *h, args, &r, e.diag);
        } else {
            (void)index, (void)sql, (void)args, (void)r, (void)e;
            return false;
        }
    }

    // One statement of a transaction body: refused unsent once the transaction is poisoned.
    result tx_statement(std::string_view sql) {
        result r;
        if (!tx_ || !tx_->statement_allowed()) throw transaction_statement_failed{};
        statement_done done = io_.tx_statement(sql, tx_bound_, &r);
        if (!done.ok) note_fault(done.diag);
        if (!tx_->statement_finished(done)) throw transaction_statement_failed{};
        return r;
    }

    std::string make_token() {
        const std::uint64_t a = rng_(), b = rng_();
        return commit_token(a, b);
    }

    void give_up(std::string_view sql, unsigned n, const std::error_code& ec, const diagnostics& diag, std::string_view why) {
        ++stats_.gave_up;
        if (observer_) observer_->on_gave_up(gave_up_event{endpoint_, sql, n, ec, diag, why});
    }

    session_io<Driver, clock_type> io_;
    link_state state_;
    backoff backoff_;
    std::mt19937_64 rng_;
    std::vector<std::string> prepared_sql_;  // what prepare() registered, by id - 1
    effects_cache effects_;                  // the last statement's effects_of()
    transaction_engine<Policy>* tx_ = nullptr;  // while a transaction body runs
    deadline tx_bound_ = deadline::none();
    steady_time last_now_{};
    bool marker_ready_ = false;
    bool busy_ = false;
    std::size_t host_ = static_cast<std::size_t>(-1);  // failover: the current session's host in cluster_
    unsigned commits_since_cleanup_ = 0;
};

template <class Driver, class Policy>
template <class F>
std::error_code blocking_core<Driver, Policy>::transact(F& fn, const transaction_options& o, diagnostics& diag,
                                                        transaction_result& tr, std::exception_ptr& own) {
    ++stats_.operations;
    transaction_engine<Policy> e(policy_, state_, *breaker_, *monitor_, gate(o.deadline), budget_.get(), o);
    std::string token;
    next_action a = e.start(now());
    for (;;) {
        sync();
        switch (a.type) {
        case action_type::begin: {
            token = o.resolve_commit ? make_token() : std::string();
            // Failover: a lost COMMIT is resolved on a new writer only if semi-sync was on (cluster.hpp).
            if (cluster_ && o.resolve_commit && io_.open()) refresh_facts(io_, *cluster_, host_, a.bound, clock_);
            began b = io_.begin(a.bound, token, marker_ready_);
            if (!b.ok) note_fault(b.diag);
            a = e.resume(b, now());
            break;
        }
        case action_type::body: {
            tx_ = &e;
            tx_bound_ = a.bound;
            try {
                transaction_context ctx(*this);
                fn(ctx);
            } catch (const transaction_statement_failed&) {
            } catch (...) {
                own = std::current_exception();
            }
            tx_ = nullptr;
            a = e.resume(body_done{own != nullptr}, now());
            break;
        }
        case action_type::commit: {
            committed c = io_.commit(a.bound);
            if (!c.ok) note_fault(c.diag);
            if (c.ok && o.resolve_commit && ++commits_since_cleanup_ >= 100) {
                commits_since_cleanup_ = 0;
                io_.clean_markers(a.bound);
            }
            a = e.resume(c, now());
            break;
        }
        case action_type::rollback: a = e.resume(io_.rollback(a.bound), now()); break;
        case action_type::lookup:
            ++stats_.verifications;
            a = e.resume(io_.lookup(token, a.bound), now());
            break;
        case action_type::done:
            sync();
            tr.attempts = e.runs();
            tr.commit_resolved = e.commit_resolved();
            diag = e.diag();
            if (a.ec) give_up({}, e.runs(), a.ec, diag, e.why());
            return a.ec;
        default: a = common_step(e, a, {});
        }
    }
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_BLOCKING_CORE_HPP
