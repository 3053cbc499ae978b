// lifeline — the async connection's core: the blocking core's twin (blocking_core.hpp), with the
// same engines and the same SQL (session_sql.hpp), only the I/O differs.
//
// Each operation asks its engine (operation_engine / transaction_engine) for the next action,
// executes it WITHOUT BLOCKING, and feeds back what happened — so classification, retries,
// verification, fencing, transaction replay and commit resolution are decided by exactly the
// code the blocking connection uses. Executing an action means running one or more driver steps
// of a non-blocking session (async_driver_traits.hpp): start the step; while the driver says it
// must wait, watch its socket with posix::stream_descriptor::async_wait (read / write) and one
// steady_timer (the action's deadline, and the driver's own io_timeout); resume the step.
//
// Rules this file keeps:
//   - Nothing here blocks the io thread: no blocking driver call, no sleep, no condition variable.
//     Backoff and "wait for the endpoint's prober" are timers.
//   - The driver owns its socket. The stream_descriptor only watches it and is release()d — never
//     closed — before the descriptor object goes, before the driver closes the socket, and as soon
//     as the driver closed or replaced it (it is fetched again at every wait, so a reconnect's new
//     socket is watched, and re-registered at every wait while connecting).
//   - A deadline that passes during a step, or cancel(), ABANDONS the step: the waits are
//     cancelled, the socket shut down and the handle freed (a handle left mid-step would answer
//     the next statement with the old one's result). The engine hears `cut = true`, exactly as from
//     the blocking watchdog.
//   - One operation at a time per connection (errc::operation_in_progress otherwise); the handler
//     is never invoked from inside the initiating function.
//   - Everything runs on the connection's executor: one thread, or a strand.
#ifndef LIFELINE_DETAIL_ASYNC_CORE_HPP
#define LIFELINE_DETAIL_ASYNC_CORE_HPP

#include <utility>  // before any Boost header (Asio 1.18's awaitable.hpp needs std::exchange)

#include <lifeline/async_declaration.hpp>
#include <lifeline/async_driver_traits.hpp>
#include <lifeline/call_options.hpp>
#include <lifeline/detail/async_handler.hpp>
#include <lifeline/detail/operation_engine.hpp>
#include <lifeline/detail/session_sql.hpp>
#include <lifeline/detail/shared_guards.hpp>
#include <lifeline/detail/socket_probe.hpp>
#include <lifeline/detail/sql_text.hpp>
#include <lifeline/detail/transaction_engine.hpp>
#include <lifeline/error.hpp>
#include <lifeline/observer.hpp>
#include <lifeline/options.hpp>
#include <lifeline/policy.hpp>
#include <lifeline/result.hpp>
#include <lifeline/session.hpp>
#include <lifeline/transaction.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace lifeline {

// What async_transaction() completes with: the blocking transaction_result, plus the exception
// the transaction function ended with, if it threw one of its own (the transaction was then
// rolled back and not replayed; the error_code is std::errc::operation_canceled).
struct async_transaction_result : transaction_result {
    std::exception_ptr exception;
};

namespace detail {

template <class Core>
class basic_async_transaction_context;

// The body's "I am done" callback: copyable (a std::function, a co_spawn completion), callable
// once. If every copy is dropped without a call, the transaction ends as if the function threw.
class async_body_done {
public:
    async_body_done() = default;
    void operator()(std::exception_ptr e = nullptr) const {
        if (state_) state_->finish(std::move(e));
    }

private:
    template <class, class>
    friend class async_core;
    struct state {
        std::function<void(std::exception_ptr)> deliver;  // posts to the core's executor
        std::atomic<bool> called{false};
        void finish(std::exception_ptr e) {
            if (!called.exchange(true)) deliver(std::move(e));
        }
        ~state() {
            if (!called.exchange(true) && deliver)
                deliver(std::make_exception_ptr(std::logic_error(
                    "the transaction function dropped its completion callback without calling it")));
        }
    };
    explicit async_body_done(std::shared_ptr<state> s) : state_(std::move(s)) {}
    std::shared_ptr<state> state_;
};

template <class Driver, class Policy>
class async_core : public std::enable_shared_from_this<async_core<Driver, Policy>> {
    static_assert(std::is_same_v<typename Policy::clock_type, system_clock_source>,
                  "lifeline: async_connection waits with real timers: its Policy's clock_type must be "
                  "lifeline::system_clock_source");

public:
    using traits = async_driver_traits<Driver>;
    using session_type = typename traits::session_type;
    using native_handle = typename traits::native_handle;
    using spec_type = basic_session<native_handle>;
    using executor_type = boost::asio::any_io_executor;
    using clock_type = typename Policy::clock_type;
    using time_point = std::chrono::steady_clock::time_point;
    using statement_handler = async_handler<std::error_code, result>;
    using done_handler = async_handler<std::error_code>;
    using transaction_handler = async_handler<std::error_code, async_transaction_result>;
    using context_type = basic_async_transaction_context<async_core>;
    using body_type = std::function<void(context_type&, async_body_done)>;

    async_core(executor_type ex, connect_options options, Policy policy, spec_type spec)
        : options_(std::move(options)), policy_(std::move(policy)), spec_(std::move(spec)),
          endpoint_(options_.unix_socket.empty() ? options_.host + ":" + std::to_string(options_.port) : options_.unix_socket),
          state_(policy_.health), backoff_(policy_.backoff, entropy_seed(this)), rng_(entropy_seed(this) * 2654435761u),
          ex_(std::move(ex)), timer_(ex_), context_(this) {
        std::string why = validate(options_);
        if (auto p = policy_.validate(); !p.empty()) why += (why.empty() ? "" : "; ") + p;
        if (spec_.on_connect)
            why += std::string(why.empty() ? "" : "; ") +
                   "session().on_connect is not supported by async_connection (it would run blocking calls on the io "
                   "thread): register SET statements in session().statements instead";
        if (options_.unix_socket.empty() && !numeric_address(options_.host))
            why += std::string(why.empty() ? "" : "; ") + "connect_options.host '" + options_.host +
                   "' is not a numeric IP address: async_connection never resolves names (the driver's resolver "
                   "blocks the io thread); resolve it first (e.g. asio::ip::tcp::resolver::async_resolve) or use a unix_socket";
        if (!why.empty()) {
            diagnostics d;
            d.client_message = why;
            throw error(errc::invalid_option, std::move(d));
        }
        budget_ = shared_retry_budget(policy_.budget);
        breaker_ = shared_breaker(endpoint_, policy_.breaker);
        monitor_ = shared_monitor(endpoint_, policy_.probe);
    }
    async_core(const async_core&) = delete;
    async_core& operator=(const async_core&) = delete;
    ~async_core() {
        unbind();
        session_.close();
    }

    // --- operations (called on the executor) -----------------------------------------------------
    void start_statement(std::string sql, async_declaration decl, call_options co, statement_handler h) {
        if (refuse_busy(h)) return;
        initiation scope(*this);
        kind_ = op_kind::statement;
        sql_ = std::move(sql);
        decl_ = std::move(decl);
        stmt_handler_ = std::move(h);
        res_ = result{};
        fx_ = effects_of(sql_);
        const operation_spec spec{true, decl_.idempotent(), decl_.can_verify(), false, sql_.size(), fx_.acknowledges_loss,
                                  fail_fast(co)};
        begin_op();
        op_.emplace(policy_, state_, *breaker_, *monitor_, gate(co.deadline), budget_.get(), spec);
        act_ = op_->start(clock_.now());
        run();
    }

    void start_ready(call_options co, done_handler h) {
        if (refuse_busy(h)) return;
        initiation scope(*this);
        kind_ = op_kind::ready;
        done_handler_ = std::move(h);
        const operation_spec spec{false, false, false, false, 0, false, fail_fast(co)};
        begin_op();
        op_.emplace(policy_, state_, *breaker_, *monitor_, gate(co.deadline), budget_.get(), spec);
        act_ = op_->start(clock_.now());
        run();
    }

    void start_transaction(body_type body, const transaction_options& o, transaction_handler h) {
        if (refuse_busy(h)) return;
        initiation scope(*this);
        kind_ = op_kind::transaction;
        body_ = std::move(body);
        tx_opts_ = o;
        tx_handler_ = std::move(h);
        tx_result_ = async_transaction_result{};
        commit_sent_ = false;
        begin_op();
        tx_.emplace(policy_, state_, *breaker_, *monitor_, gate(o.deadline), budget_.get(), o);
        act_ = tx_->start(clock_.now());
        run();
    }

    // The pool's return path (blocking_core::reset_if_dirty): back to the registered session.
    void start_reset(call_options co, done_handler h) {
        if (refuse_busy(h)) return;
        initiation scope(*this);
        kind_ = op_kind::reset;
        done_handler_ = std::move(h);
        begin_op();
        if (!session_.is_open() || !dirty()) return finish_reset(true);
        const auto limit = co.deadline.count() > 0 ? co.deadline : policy_.retry.deadline;
        reset_bound_ = deadline::after(limit, clock_.now());
        io_reset(reset_bound_, &async_core::on_reset_done);
    }

    // One statement of the running transaction's function.
    void start_tx_statement(std::string sql, statement_handler h) {
        if (kind_ != op_kind::transaction || !body_running_) {
            diagnostics d;
            d.client_message = "the transaction is not running (its function already finished, or it was cancelled)";
            tx_stmt_diag_ = d;
            h.post(std::make_error_code(std::errc::operation_canceled), result{});
            return;
        }
        if (tx_stmt_busy_) {
            tx_stmt_diag_ = diagnostics{};
            tx_stmt_diag_.client_message = "another statement of this transaction is still running: await it first";
            h.post(make_error_code(errc::operation_in_progress), result{});
            return;
        }
        if (!tx_->statement_allowed()) {
            tx_stmt_diag_ = tx_->body_failure();
            tx_stmt_diag_.client_message = "refused unsent: an earlier statement of this transaction failed, so it "
                                           "will be rolled back (and replayed if replayable), never committed";
            std::error_code ec = make_driver_error_code(tx_->body_failure().code);
            if (!ec) ec = make_error_code(errc::transaction_lost);
            h.post(ec, result{});
            return;
        }
        tx_stmt_busy_ = true;
        tx_stmt_sql_ = std::move(sql);
        tx_stmt_res_ = result{};
        tx_stmt_handler_ = std::move(h);
        tx_stmt_initiating_ = true;
        io_sql(tx_stmt_sql_, &tx_stmt_res_, tx_bound_, &async_core::on_tx_statement, "the statement");
        tx_stmt_initiating_ = false;
    }

    // Ends the operation in flight (see async_connection.hpp for what the caller is told).
    void cancel() {
        if (!busy_ || cancelling_) return;
        cancelling_ = true;
        if (io_active_) {
            abort_io(abort_kind::cancel);
            return;  // io_aborted() finishes it once every wait is back
        }
        if (body_running_) {
            // The function runs user code between statements: the transaction lives in the
            // session; closing it rolls it back.
            close_session();
            state_.open = false;
        }
        waiting_ = false;
        finish_cancelled();
    }

    // The connection object goes: cancel, release, close. Handlers still queued keep the core
    // alive (shared_ptr) and find nothing to do.
    void shutdown() noexcept {
        closed_ = true;
        try {
            cancel();
        } catch (...) {
        }
        boost::system::error_code ignored;
        timer_.cancel(ignored);
        if (!io_active_) {
            unbind();
            session_.close();
        }
    }

    void close() noexcept {
        if (busy_) cancel();
        if (!io_active_) {
            close_session();
            state_.open = false;
        }
    }

    // --- state ------------------------------------------------------------------------------------
    bool busy() const noexcept { return busy_; }
    bool dirty() const noexcept { return dirty_ || in_transaction(); }
    bool in_transaction() const noexcept { return session_.is_open() && session_.in_transaction(); }
    bool is_open() const noexcept { return session_.is_open(); }
    native_handle native() noexcept { return session_.native(); }
    const health_tracker& health() const noexcept { return state_.health; }
    void acknowledge_transaction_lost() noexcept { state_.transaction_lost = false; }
    std::uint64_t connection_id() const noexcept { return session_.is_open() ? state_.current.id : 0; }
    const diagnostics& last_diagnostics() const noexcept { return diag_; }
    const diagnostics& last_statement_diagnostics() const noexcept { return tx_stmt_diag_; }
    const executor_type& get_executor() const noexcept { return ex_; }
    context_type& context() noexcept { return context_; }
    // The fd the stream_descriptor currently watches (-1: none); for tests of fd ownership.
    int watched_fd() const noexcept { return bound_fd_; }

    connect_options options_;
    Policy policy_;
    spec_type spec_;
    clock_type clock_;
    std::string endpoint_;
    std::shared_ptr<retry_budget> budget_;
    std::shared_ptr<circuit_breaker> breaker_;
    std::shared_ptr<endpoint_monitor> monitor_;
    std::shared_ptr<observer> observer_;
    connection_stats stats_;

private:
    using step_fn = void (async_core::*)();
    enum class op_kind : std::uint8_t { none, statement, ready, transaction, reset };
    enum class abort_kind : std::uint8_t { none, cut, cancel, driver_timeout };

    // Completions decided inside an initiating function are posted, never run inline.
    struct initiation {
        explicit initiation(async_core& c) noexcept : c_(c) { c_.initiating_ = true; }
        ~initiation() { c_.initiating_ = false; }
        async_core& c_;
    };

    static bool numeric_address(const std::string& host) {
        boost::system::error_code ec;
        boost::asio::ip::make_address(host, ec);
        return !ec;
    }

    template <class H>
    bool refuse_busy(H& h) {
        if (!busy_ && !closed_) return false;
        diagnostics d;
        d.client_message = closed_ ? "the connection is closed"
                                   : "another operation of this connection is still running (one at a time per "
                                     "connection): await it, or use another connection (async_pool)";
        if (!busy_) diag_ = d;  // never overwrite the running operation's account
        const std::error_code ec = closed_ ? make_error_code(errc::not_connected) : make_error_code(errc::operation_in_progress);
        if constexpr (std::is_same_v<H, statement_handler>) h.post(ec, result{});
        else if constexpr (std::is_same_v<H, transaction_handler>) h.post(ec, async_transaction_result{});
        else h.post(ec);
        return true;
    }

    void begin_op() {
        busy_ = true;
        cancelling_ = false;
        attempt_started_ = false;
        diag_ = diagnostics{};
        ++stats_.operations;
        state_.guard_untracked_state = spec_.guard_untracked_state;
    }

    bool fail_fast(const call_options& co) const noexcept { return co.fail_fast || policy_.retry.fail_fast; }

    retry_gate gate(std::chrono::milliseconds d) {
        const auto limit = d.count() > 0 ? d : policy_.retry.deadline;
        return retry_gate(policy_.retry.max_attempts, deadline::after(limit, clock_.now()), budget_.get(), backoff_);
    }

    // --- the loop: execute the engine's next action ----------------------------------------------------
    template <class Event>
    void feed(const Event& ev) {
        if constexpr (std::is_same_v<Event, verified> || std::is_same_v<Event, attempted>) {
            act_ = op_->resume(ev, clock_.now());
        } else if constexpr (std::is_same_v<Event, began> || std::is_same_v<Event, body_done> ||
                             std::is_same_v<Event, committed> || std::is_same_v<Event, rolled_back> ||
                             std::is_same_v<Event, looked_up>) {
            act_ = tx_->resume(ev, clock_.now());
        } else {
            act_ = op_ ? op_->resume(ev, clock_.now()) : tx_->resume(ev, clock_.now());
        }
        run();
    }

    template <class F>
    decltype(auto) with_engine(F&& f) {
        if (op_) return f(*op_);
        return f(*tx_);
    }

    void run() {
        for (;;) {
            sync_close();
            switch (act_.type) {
            case action_type::probe:
                if (policy_.health.socket_check) ++stats_.socket_checks;
                act_ = with_engine([&](auto& e) {
                    return e.resume(probed{policy_.health.socket_check ? probe_socket(session_.socket()) : socket_status::unknown},
                                    clock_.now());
                });
                continue;
            case action_type::ping:
                ++stats_.pings;
                return io_ping(act_.bound, &async_core::on_ping);
            case action_type::connect: return do_connect();
            case action_type::fence:
                q_ = fence_inspect_sql(act_.target);
                aux_ = result{};
                return io_sql(q_, &aux_, act_.bound, &async_core::on_fence, "fencing");
            case action_type::kill:
                q_ = kill_sql(act_.target.id);
                return io_sql(q_, nullptr, act_.bound, &async_core::on_kill, "KILL");
            case action_type::verify:
                ++stats_.verifications;
                aux_ = result{};
                return io_sql(decl_.verify_sql(), &aux_, act_.bound, &async_core::on_verify, "the verification query");
            case action_type::attempt: return do_attempt();
            case action_type::wait:
            case action_type::await_endpoint: return do_wait();
            case action_type::begin: return do_begin();
            case action_type::body: return do_body();
            case action_type::commit:
                commit_sent_ = true;
                return io_sql("COMMIT", nullptr, act_.bound, &async_core::on_commit, "COMMIT");
            case action_type::rollback:
                if (!session_.is_open()) {
                    act_ = tx_->resume(rolled_back{false}, clock_.now());
                    continue;
                }
                return io_sql("ROLLBACK", nullptr, act_.bound, &async_core::on_rollback, "ROLLBACK");
            case action_type::lookup:
                ++stats_.verifications;
                q_ = marker_lookup_sql(token_);
                aux_ = result{};
                return io_sql(q_, &aux_, act_.bound, &async_core::on_lookup, "the commit lookup");
            case action_type::done: return finish();
            }
        }
    }

    // The engine says the session is gone: close the driver's.
    void sync_close() {
        if (!state_.open && session_.is_open()) close_session();
    }
    void close_session() noexcept {
        unbind();
        session_.close();
        dirty_ = false;
    }

    // --- actions ----------------------------------------------------------------------------------------
    void do_connect() {
        connect_t0_ = clock_.now();
        close_session();
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(act_.bound.remaining(clock_.now()));
        const auto budget = std::max(std::chrono::milliseconds(1), std::min(options_.connect_timeout, left));
        io_next_ = &async_core::on_connect_step;
        io_what_ = "the connect";
        if (!begin_io(act_.bound)) return;
        connecting_ = true;
        io_continue(session_.start_connect(options_, budget));
    }
    void on_connect_step() {
        connecting_ = false;
        if (!io_ok_) {
            if (io_cut_) io_diag_.server_message = "lifeline: connect did not finish within the operation's deadline";
            return fail_connect();
        }
        if (session_.reconnect_option_enabled()) {
            connected e;
            e.ok = true;
            e.reconnect_option = true;
            close_session();
            return connect_done(e);
        }
        restore_.clear();
        const std::string set =
            session_set_statement(spec_.charset, spec_.time_zone, spec_.sql_mode, spec_.guard_untracked_state);
        if (!set.empty()) restore_.push_back(set);
        for (const auto& s : spec_.statements) restore_.push_back(s);
        restore_i_ = 0;
        restore_next_ = &async_core::learn_start;
        restore_bound_ = act_.bound;
        next_restore();
    }
    void next_restore() {
        if (restore_i_ < restore_.size())
            return io_sql(restore_[restore_i_], nullptr, restore_bound_, &async_core::on_restore_step, "restoring the session");
        (this->*restore_next_)();
    }
    void on_restore_step() {
        if (!io_ok_) {
            if (kind_ == op_kind::reset) return finish_reset(false);
            return fail_connect();
        }
        ++restore_i_;
        next_restore();
    }
    void learn_start() {
        hi_ = nonce();
        lo_ = nonce();
        variant_ = 0;
        learn_next();
    }
    void learn_next() {
        aux_ = result{};
        q_ = identity_query(variant_, hi_, lo_);
        io_sql(q_, &aux_, act_.bound, &async_core::on_learn_step, "reading the session's settings");
    }
    void on_learn_step() {
        session_facts facts;
        if (io_ok_ && parse_session_facts(aux_, hi_, lo_, facts)) return connect_ok(facts);
        if (io_cut_ || (!io_ok_ && broken(io_diag_))) return fail_connect();
        if (++variant_ < identity_variants) return learn_next();
        connect_ok(session_facts{});  // a server that answers none of them: usable, just not fenceable
    }
    void connect_ok(const session_facts& facts) {
        connected e;
        e.ok = true;
        e.session = facts.session;
        e.wait_timeout = facts.wait_timeout;
        e.max_allowed_packet = facts.max_allowed_packet;
        e.seed = rng_();
        dirty_ = false;
        connect_done(e);
    }
    void fail_connect() {
        connected e;
        e.diag = io_diag_;
        e.diag.where = phase::connect;
        close_session();
        connect_done(e);
    }
    void connect_done(const connected& c) {
        ++stats_.reconnects;
        if (observer_) {
            const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now() - connect_t0_);
            with_engine([&](auto& e) {
                observer_->on_reconnect(reconnect_event{endpoint_, e.why(), c.ok,
                                                        c.ok ? std::error_code{} : make_driver_error_code(c.diag.code), took,
                                                        e.cause()});
                return 0;
            });
            if (c.ok && restored_statements())
                observer_->on_session_restored(session_restored_event{endpoint_, restored_statements()});
        }
        feed(c);
    }
    unsigned restored_statements() const noexcept {
        return static_cast<unsigned>(!spec_.charset.empty()) + !spec_.time_zone.empty() + !spec_.sql_mode.empty() +
               static_cast<unsigned>(spec_.statements.size());
    }

    void on_ping() {
        pinged p;
        p.ok = io_ok_;
        if (!p.ok) p.diag = io_diag_;
        if (observer_) observer_->on_ping(endpoint_, p.ok);
        feed(p);
    }

    void on_fence() {
        fenced e;
        if (!io_ok_) {
            e.connection_lost = io_cut_ || broken(io_diag_);
            e.diag = io_diag_;
            return feed(e);
        }
        if (aux_.rows.size() != 1 || aux_.rows[0].size() != 2) {
            e.diag.client_message = "unexpected answer while fencing";
            return feed(e);
        }
        e.ok = true;
        e.lock_holder = to_u64(aux_.rows[0][0]);
        e.present = aux_.rows[0][1].has_value();
        e.present_is_ours = aux_.rows[0][1] == std::optional<std::string>(options_.user);
        feed(e);
    }

    void on_kill() {
        killed e;
        e.ok = io_ok_;
        if (!e.ok && !io_cut_ && io_diag_.code == code::er_no_such_thread) e.ok = true;  // it ended meanwhile
        if (!e.ok) {
            e.diag = io_diag_;
            e.connection_lost = io_cut_ || broken(io_diag_);
        }
        feed(e);
    }

    void on_verify() {
        verified e;
        if (!io_ok_) {
            e.failed = true;
            e.connection_lost = io_cut_ || broken(io_diag_) || !session_.is_open();
            e.diag = io_diag_;
            e.diag.client_message = io_cut_ ? "the verification query was cut by the deadline" : "the verification query failed";
            return feed(e);
        }
        try {
            e.check = decl_.verify(aux_);
        } catch (...) {
            e.failed = true;
            e.diag.client_message = "the verification check threw";
        }
        feed(e);
    }

    void do_attempt() {
        ++stats_.attempts;
        if (observer_) observer_->on_attempt(attempt_event{endpoint_, sql_, op_->attempts()});
        attempt_started_ = true;
        res_.rows.clear();
        res_.columns.clear();
        if (fx_.changes_session) dirty_ = true;
        in_txn_before_ = session_.in_transaction();
        io_sql(sql_, &res_, act_.bound, &async_core::on_attempt, "the statement");
    }
    void on_attempt() {
        attempted e;
        e.in_txn_before = in_txn_before_;
        e.ok = io_ok_;
        e.cut = io_cut_;
        e.nothing_ran = io_unsent_;
        e.open_after = session_.is_open();
        if (e.open_after) e.in_txn_after = session_.in_transaction();
        e.lock_uncertain = fx_.may_release_locks;
        if (e.ok) {
            if (spec_.guard_untracked_state) e.untracked_change = session_.untracked_state_changed();
            dirty_ = dirty_ || session_.session_changed();
        } else {
            e.diag = io_diag_;
        }
        feed(e);
    }

    void do_wait() {
        const bool endpoint = act_.type == action_type::await_endpoint;
        if (endpoint) ++stats_.endpoint_waits;
        else ++stats_.retries;
        if (observer_)
            with_engine([&](auto& e) {
                observer_->on_retry(retry_event{endpoint_, kind_ == op_kind::statement ? std::string_view(sql_) : std::string_view{},
                                                e.attempts(), e.last_classification(), e.diag(), act_.delay, e.why()});
                return 0;
            });
        // A timer, never a sleep. The endpoint's verdict is not signalled to the io thread; the
        // engine keeps `delay` within the prober's interval, so the wait ends within one probe.
        waiting_ = true;
        wait_until_ = std::chrono::steady_clock::now() + act_.delay;
        arm_timer(wait_until_);
    }
    void wait_over() {
        waiting_ = false;
        feed(waited{});
    }

    // --- transaction actions ----------------------------------------------------------------------------
    void do_begin() {
        token_ = tx_opts_.resolve_commit ? make_token() : std::string();
        begin_stage_ = (!token_.empty() && !marker_ready_) ? 0 : 1;
        begin_step();
    }
    void begin_step() {
        switch (begin_stage_) {
        case 0: return io_sql(marker_table_sql, nullptr, act_.bound, &async_core::on_begin, "START TRANSACTION");
        case 1: return io_sql("START TRANSACTION", nullptr, act_.bound, &async_core::on_begin, "START TRANSACTION");
        default:
            q_ = marker_insert_sql(token_);
            return io_sql(q_, nullptr, act_.bound, &async_core::on_begin, "START TRANSACTION");
        }
    }
    void on_begin() {
        if (!io_ok_) {
            began e;
            e.diag = io_diag_;
            e.cut = io_cut_;
            e.open_after = session_.is_open();
            return feed(e);
        }
        if (begin_stage_ == 0) marker_ready_ = true;
        ++begin_stage_;
        if (begin_stage_ == 2 && token_.empty()) begin_stage_ = 3;
        if (begin_stage_ <= 2) return begin_step();
        began e;
        e.ok = true;
        e.open_after = session_.is_open();
        feed(e);
    }

    void do_body() {
        tx_bound_ = act_.bound;
        body_running_ = true;
        body_threw_ = nullptr;
        const std::uint64_t gen = ++body_gen_;
        auto st = std::make_shared<async_body_done::state>();
        // The callback keeps the core (and so the transaction context the function uses) alive
        // until the function has finished, even if the connection object goes first.
        std::shared_ptr<async_core> self = this->shared_from_this();
        executor_type ex = ex_;
        st->deliver = [self, ex, gen](std::exception_ptr e) {
            boost::asio::post(ex, [self, gen, e]() { self->body_finished(gen, e); });
        };
        async_body_done done(std::move(st));
        try {
            body_(context_, std::move(done));
        } catch (...) {
            body_finished(gen, std::current_exception());  // the copy given away may still call: ignored
        }
    }
    void body_finished(std::uint64_t gen, std::exception_ptr e) {
        if (gen != body_gen_ || !body_running_ || kind_ != op_kind::transaction) return;
        ++body_gen_;  // later calls are stale
        if (tx_stmt_busy_) {
            // It ended without awaiting its statement: finish when the statement does.
            body_end_pending_ = true;
            body_threw_ = e;
            return;
        }
        end_body(e);
    }
    void end_body(std::exception_ptr e) {
        body_running_ = false;
        body_end_pending_ = false;
        // After a failed statement the function's exit, thrown or not, is that failure's
        // consequence: the engine decides (rollback, replay). Only an exception on a healthy
        // transaction is the function's own decision to abandon it.
        const bool own = e && tx_->statement_allowed();
        if (own) tx_result_.exception = e;
        feed(body_done{own});
    }

    void on_tx_statement() {
        statement_done e;
        e.ok = io_ok_;
        e.cut = io_cut_;
        e.open_after = session_.is_open();
        if (e.ok) {
            e.in_txn_after = session_.in_transaction();
            if (!e.in_txn_after)
                e.diag.client_message = "the statement `" + tx_stmt_sql_.substr(0, 80) + (tx_stmt_sql_.size() > 80 ? "..." : "") +
                                        "` ended the transaction";
        } else {
            e.diag = io_diag_;
        }
        const bool go_on = tx_->statement_finished(e);
        std::error_code ec;
        if (!go_on) {
            if (e.ok) ec = make_error_code(errc::implicit_commit);
            else if (e.cut) ec = make_error_code(errc::deadline_exceeded);
            else ec = make_driver_error_code(e.diag.code);
            if (!ec) ec = make_error_code(errc::transaction_lost);
        }
        tx_stmt_diag_ = e.diag;
        tx_stmt_busy_ = false;
        auto h = std::move(tx_stmt_handler_);
        result r = std::move(tx_stmt_res_);
        if (body_end_pending_) {
            h.post(ec, std::move(r));
            return end_body(body_threw_);
        }
        if (tx_stmt_initiating_) h.post(ec, std::move(r));
        else h.complete(ec, std::move(r));
    }

    void on_commit() {
        committed c;
        c.ok = io_ok_;
        c.cut = io_cut_;
        c.open_after = session_.is_open();
        if (!c.ok) c.diag = io_diag_;
        if (c.ok && tx_opts_.resolve_commit && ++commits_since_cleanup_ >= 100) {
            // Best effort: old tokens only matter while a resolution could ask.
            commits_since_cleanup_ = 0;
            pending_commit_ = c;
            return io_sql(marker_cleanup_sql, nullptr, act_.bound, &async_core::on_cleanup, "the marker cleanup");
        }
        feed(c);
    }
    void on_cleanup() { feed(pending_commit_); }

    void on_rollback() { feed(rolled_back{io_ok_}); }

    void on_lookup() {
        looked_up e;
        e.ok = io_ok_ && aux_.scalar().has_value();
        e.open_after = session_.is_open() && !io_cut_;
        if (e.ok) e.found = *aux_.scalar() != "0";
        else e.diag = io_diag_;
        feed(e);
    }

    // --- the pool's reset ----------------------------------------------------------------------------
    void on_reset_done() {
        if (!io_ok_) return finish_reset(false);
        if (!options_.database.empty()) {
            q_ = "USE " + quote_identifier(options_.database);
            return io_sql(q_, nullptr, reset_bound_, &async_core::on_reset_use, "the session reset");
        }
        on_reset_use();
    }
    void on_reset_use() {
        if (!io_ok_) return finish_reset(false);
        restore_.clear();
        const std::string set =
            session_set_statement(spec_.charset, spec_.time_zone, spec_.sql_mode, spec_.guard_untracked_state);
        if (!set.empty()) restore_.push_back(set);
        for (const auto& s : spec_.statements) restore_.push_back(s);
        restore_i_ = 0;
        restore_bound_ = reset_bound_;
        restore_next_ = &async_core::on_reset_restored;
        next_restore();
    }
    void on_reset_restored() {
        if (!state_.current.has_lock()) return on_relocked();
        q_ = relock_sql(state_.current);
        aux_ = result{};
        io_sql(q_, &aux_, reset_bound_, &async_core::on_relocked_query, "the session reset");
    }
    void on_relocked_query() {
        if (io_cut_) return finish_reset(false);
        state_.current.lock_certain = io_ok_ && aux_.scalar() == std::optional<std::string>("1");
        on_relocked();
    }
    void on_relocked() {
        dirty_ = false;
        state_.in_transaction = false;
        state_.untracked_state = false;
        finish_reset(true);
    }
    void finish_reset(bool ok) {
        std::error_code ec;
        if (!ok) {
            diag_ = io_diag_;
            if (diag_.client_message.empty()) diag_.client_message = "the session could not be reset; it was closed";
            close_session();
            state_.open = false;
            ec = make_driver_error_code(diag_.code);
            if (!ec) ec = make_error_code(errc::not_connected);
        }
        complete_done(ec);
    }

    // --- ending an operation -------------------------------------------------------------------------
    void finish() {
        sync_close();
        const std::error_code ec = act_.ec;
        if (kind_ == op_kind::transaction) {
            tx_result_.attempts = tx_->runs();
            tx_result_.commit_resolved = tx_->commit_resolved();
            diag_ = tx_->diag();
            std::error_code out = ec;
            if (ec) {
                give_up({}, tx_->runs(), ec, tx_->why());
            } else if (tx_result_.exception) {
                out = std::make_error_code(std::errc::operation_canceled);
                diag_.client_message = "the transaction function threw; the transaction was rolled back and not "
                                       "replayed (its exception is in async_transaction_result::exception)";
            }
            tx_.reset();
            auto r = std::move(tx_result_);
            auto h = std::move(tx_handler_);
            const bool post = initiating_;
            end_op();
            deliver(h, post, out, std::move(r));
            return;
        }
        if (ec || op_->verified_applied()) res_.clear();  // as the blocking core: no half-read or unanswered rows
        res_.attempts = op_->attempts();
        res_.verified = op_->verified_applied();
        diag_ = op_->diag();
        if (ec) give_up(kind_ == op_kind::statement ? std::string_view(sql_) : std::string_view{}, op_->attempts(), ec, op_->why());
        op_.reset();
        if (kind_ == op_kind::statement) {
            auto h = std::move(stmt_handler_);
            result r = std::move(res_);
            const bool post = initiating_;
            end_op();
            deliver(h, post, ec, std::move(r));
        } else {
            complete_done(ec);
        }
    }

    void complete_done(std::error_code ec) {
        auto h = std::move(done_handler_);
        op_.reset();
        const bool post = initiating_;
        end_op();
        deliver(h, post, ec);
    }

    // Every path that gets here holds the core (a wait's or timer's handler, a posted call, or
    // the connection object whose method runs), so `this` outlives the user's handler even if
    // that destroys the connection.
    template <class H, class... A>
    void deliver(H& h, bool post, A&&... a) {
        if (post) h.post(std::forward<A>(a)...);
        else h.complete(std::forward<A>(a)...);  // usually inline: the handler may start the next one
        // The deadline timer stays armed across back-to-back operations (no re-arm, no cancel per
        // statement); once the connection is left idle it must not keep io_context::run() busy.
        if (!busy_ && timer_armed_) {
            boost::system::error_code ignored;
            timer_.cancel(ignored);
            timer_armed_ = false;
        }
    }

    void end_op() {
        busy_ = false;
        kind_ = op_kind::none;
        body_running_ = false;
        body_end_pending_ = false;
        tx_stmt_busy_ = false;
        waiting_ = false;
    }

    // cancel(): the caller is told operation_canceled — or, if a write may have reached the
    // server, the unknown outcome it really is.
    void finish_cancelled() {
        const bool closed = !session_.is_open();
        if (closed && state_.in_transaction && kind_ != op_kind::transaction) state_.transaction_lost = true;
        if (closed) {
            state_.open = false;
            state_.in_transaction = false;
        }
        std::error_code ec = std::make_error_code(std::errc::operation_canceled);
        std::string why = "cancelled by cancel()";
        if (kind_ == op_kind::statement && attempt_started_ && !decl_.idempotent()) {
            ec = make_error_code(errc::outcome_unknown);
            why += " after the statement was sent: whether it ran is unknown";
        } else if (kind_ == op_kind::transaction && commit_sent_ && !(tx_ && tx_->commit_resolved())) {
            ec = make_error_code(errc::commit_unknown);
            why += " after COMMIT was sent: whether the transaction committed is unknown";
        } else if (kind_ == op_kind::transaction) {
            why += "; the transaction was not committed (its session was closed, the server rolled it back)";
        }
        why += closed ? "; the session was closed (the next operation reconnects)" : "; the session is unchanged and usable";
        diagnostics d = op_ ? op_->diag() : tx_ ? tx_->diag() : diagnostics{};
        d.client_message = why;
        diag_ = d;
        ++stats_.gave_up;
        if (tx_stmt_busy_) {
            auto sh = std::move(tx_stmt_handler_);
            tx_stmt_busy_ = false;
            sh.post(std::make_error_code(std::errc::operation_canceled), result{});
        }
        ++body_gen_;  // the function's completion, if it still comes, is stale
        op_.reset();
        tx_.reset();
        cancelling_ = false;
        // Posted: cancel() is the caller's own call, its handler never runs inside it.
        switch (kind_) {
        case op_kind::statement: {
            auto h = std::move(stmt_handler_);
            end_op();
            return deliver(h, true, ec, result{});
        }
        case op_kind::transaction: {
            auto h = std::move(tx_handler_);
            async_transaction_result r = std::move(tx_result_);
            end_op();
            return deliver(h, true, ec, std::move(r));
        }
        case op_kind::ready:
        case op_kind::reset: {
            auto h = std::move(done_handler_);
            end_op();
            return deliver(h, true, ec);
        }
        case op_kind::none: end_op(); break;
        }
    }

    void give_up(std::string_view sql, unsigned n, const std::error_code& ec, std::string_view why) {
        ++stats_.gave_up;
        if (observer_) observer_->on_gave_up(gave_up_event{endpoint_, sql, n, ec, diag_, why});
    }

    // --- driver steps: start, wait, resume --------------------------------------------------------------
    // After each step: io_ok_ / io_diag_, io_cut_ (the deadline abandoned it: the session is
    // closed), io_unsent_ (the deadline had passed before anything was sent).
    void io_sql(std::string_view sql, result* out, const deadline& bound, step_fn next, const char* what) {
        io_next_ = next;
        io_what_ = what;
        if (!session_.is_open()) {
            io_ok_ = false;
            io_cut_ = false;
            io_unsent_ = true;
            io_diag_ = diagnostics{};
            io_diag_.code = 2006;  // CR_SERVER_GONE_ERROR: what the driver says without a session
            io_diag_.sqlstate = "HY000";
            io_diag_.where = phase::send;
            io_diag_.client_message = "no session (it was closed)";
            return (this->*next)();
        }
        if (!begin_io(bound)) return;
        io_continue(session_.start_query(sql, out));
    }
    void io_ping(const deadline& bound, step_fn next) {
        io_next_ = next;
        io_what_ = "ping";
        if (!begin_io(bound)) return;
        io_continue(session_.start_ping());
    }
    void io_reset(const deadline& bound, step_fn next) {
        io_next_ = next;
        io_what_ = "the session reset";
        if (!begin_io(bound)) return;
        io_continue(session_.start_reset());
    }

    // false: the deadline has passed already; nothing was started and io_next_ has run.
    bool begin_io(const deadline& bound) {
        io_unsent_ = false;
        if (bound.expired(clock_.now())) {
            io_ok_ = false;
            io_cut_ = true;
            io_unsent_ = true;
            io_diag_ = cut_account(phase::send);
            (this->*io_next_)();
            return false;
        }
        io_bound_ = bound.is_none() ? time_point::max() : bound.at();
        io_active_ = true;
        return true;
    }

    void io_continue(int st) {
        if (st == 0) return io_finished();
        io_wait(st);
    }

    void io_wait(int st) {
        const int fd = session_.socket();
        if (fd < 0) {
            // The driver waits on a socket it does not have: it cannot finish. Treat it as a
            // lost connection, without waiting for anything.
            io_abort_ = abort_kind::cut;
            return io_aborted();
        }
        if (fd != bound_fd_ || connecting_) bind(fd);  // a reconnect's (or a connect attempt's) new socket
        io_ready_ = 0;
        io_waits_ = 0;
        if (st & (io_wait::read | io_wait::except)) {
            ++io_waits_;
            sd_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                            [self = this->shared_from_this()](const boost::system::error_code& ec) {
                                self->on_ready(ec, io_wait::read);
                            });
        }
        if (st & io_wait::write) {
            ++io_waits_;
            sd_->async_wait(boost::asio::posix::stream_descriptor::wait_write,
                            [self = this->shared_from_this()](const boost::system::error_code& ec) {
                                self->on_ready(ec, io_wait::write);
                            });
        }
        io_driver_expiry_ = (st & io_wait::timeout) ? std::chrono::steady_clock::now() + session_.timeout() : time_point::max();
        const time_point wake = std::min(io_bound_, io_driver_expiry_);
        if (wake != time_point::max()) arm_timer(wake);
    }

    // Each wait holds the core (shared_ptr): a handler that runs after the connection object is
    // gone, or is destroyed with its io_context, never touches freed memory.
    void on_ready(const boost::system::error_code& ec, int ev) {
        --io_waits_;
        if (!ec) {
            io_ready_ |= ev;
            if (io_waits_ > 0 && sd_) sd_->cancel();  // the first one wins
        }
        if (io_waits_ > 0) return;
        if (io_abort_ == abort_kind::cut || io_abort_ == abort_kind::cancel) return io_aborted();
        if (io_abort_ == abort_kind::driver_timeout) {
            io_abort_ = abort_kind::none;
            io_ready_ = io_wait::timeout;
        }
        if (io_ready_ == 0) {
            // Every wait came back aborted without a reason of ours (cannot happen while the
            // descriptor is ours): do not spin, treat it as lost.
            io_abort_ = abort_kind::cut;
            return io_aborted();
        }
        io_continue(session_.resume(io_ready_));
    }

    void io_finished() {
        io_active_ = false;
        connecting_ = false;
        // The driver closed its socket after a fatal error: stop watching that number now.
        if (session_.socket() != bound_fd_) unbind();
        io_ok_ = session_.ok();
        io_cut_ = false;
        if (!io_ok_) io_diag_ = session_.error();
        (this->*io_next_)();
    }

    void abort_io(abort_kind why) {
        io_abort_ = why;
        if (io_waits_ > 0) {
            if (sd_) sd_->cancel();  // the waits come back aborted; on_ready continues
            return;
        }
        if (why == abort_kind::driver_timeout) {
            io_abort_ = abort_kind::none;
            return io_continue(session_.resume(io_wait::timeout));
        }
        io_aborted();
    }

    // Every wait is back after a cut or cancel: the step is abandoned, the handle is poisoned.
    void io_aborted() {
        const abort_kind why = io_abort_;
        const phase where = session_.where();
        io_abort_ = abort_kind::none;
        io_active_ = false;
        connecting_ = false;
        unbind();
        session_.abandon();
        dirty_ = false;
        if (why == abort_kind::cancel || closed_) return finish_cancelled();
        io_ok_ = false;
        io_cut_ = true;
        io_diag_ = cut_account(where);
        (this->*io_next_)();
    }

    diagnostics cut_account(phase where) const {
        diagnostics d;
        d.code = code::cr_server_lost;  // what the driver reports for a session lost mid-statement
        d.sqlstate = "HY000";
        d.where = where;
        d.client_message = "lifeline's deadline cut " + std::string(io_what_) + " (the session was closed)";
        return d;
    }

    // --- the one timer: deadlines, the driver's timeout, waits ------------------------------------
    // Lazy: an earlier pending expiry is kept (its handler re-checks and re-arms), so a hot
    // connection does not re-arm (or cancel) a timer for every statement; deliver() cancels it
    // when the connection is left idle.
    void arm_timer(time_point t) {
        if (timer_armed_ && timer_at_ <= t) return;
        timer_at_ = t;
        timer_armed_ = true;
        timer_.expires_at(t);
        std::weak_ptr<async_core> weak = this->shared_from_this();
        timer_.async_wait([weak](const boost::system::error_code& ec) {
            if (ec == boost::asio::error::operation_aborted) return;
            if (auto self = weak.lock()) self->on_timer();
        });
    }
    void on_timer() {
        if (std::chrono::steady_clock::now() < timer_at_) return;  // superseded by a re-arm
        timer_armed_ = false;
        if (closed_) return;
        const time_point now = std::chrono::steady_clock::now();
        if (io_active_ && io_abort_ == abort_kind::none) {
            if (now >= io_bound_) return abort_io(abort_kind::cut);
            if (now >= io_driver_expiry_) return abort_io(abort_kind::driver_timeout);
            const time_point wake = std::min(io_bound_, io_driver_expiry_);
            if (wake != time_point::max()) arm_timer(wake);
            return;
        }
        if (waiting_) {
            if (now >= wait_until_) return wait_over();
            arm_timer(wait_until_);
        }
    }

    void bind(int fd) {
        unbind();
        sd_.emplace(ex_, fd);
        bound_fd_ = fd;
    }
    // release(), never close: the driver owns the fd.
    void unbind() noexcept {
        if (sd_) {
            try {
                sd_->release();
            } catch (...) {
            }
            sd_.reset();
        }
        bound_fd_ = -1;
    }

    // --- helpers ------------------------------------------------------------------------------------
    static bool broken(const diagnostics& d) noexcept {
        return classify(failure{d.code, d.sqlstate, d.where, false}).connection == connection_state::broken;
    }

    static std::uint64_t nonce() noexcept {
        static const std::uint64_t seed = [] {
            std::random_device rd;
            return (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ entropy_seed(&rd);
        }();
        static std::atomic<std::uint64_t> counter{0};
        return splitmix64(seed + 0x9e3779b97f4a7c15ull * ++counter)();
    }

    std::string make_token() {
        const std::uint64_t a = rng_(), b = rng_();
        return commit_token(a, b);
    }

    // --- members ------------------------------------------------------------------------------------
    link_state state_;
    backoff backoff_;
    std::mt19937_64 rng_;
    session_type session_;
    executor_type ex_;
    std::optional<boost::asio::posix::stream_descriptor> sd_;
    int bound_fd_ = -1;
    boost::asio::steady_timer timer_;
    bool timer_armed_ = false;
    time_point timer_at_{};

    // the operation
    op_kind kind_ = op_kind::none;
    bool busy_ = false, closed_ = false, initiating_ = false, cancelling_ = false;
    std::optional<operation_engine<Policy>> op_;
    std::optional<transaction_engine<Policy>> tx_;
    next_action act_;
    std::string sql_;
    statement_effects fx_;  // what the statement's text says (sql_text.hpp)
    async_declaration decl_;
    result res_, aux_;
    std::string q_;
    diagnostics diag_;
    statement_handler stmt_handler_;
    done_handler done_handler_;
    transaction_handler tx_handler_;
    bool attempt_started_ = false, in_txn_before_ = false;
    bool waiting_ = false;
    time_point wait_until_{};
    steady_time connect_t0_{};
    bool dirty_ = false;

    // connect / restore / learn / reset
    std::vector<std::string> restore_;
    std::size_t restore_i_ = 0;
    step_fn restore_next_ = nullptr;
    deadline restore_bound_ = deadline::none(), reset_bound_ = deadline::none();
    std::uint64_t hi_ = 0, lo_ = 0;
    int variant_ = 0;

    // the transaction
    context_type context_;
    body_type body_;
    transaction_options tx_opts_;
    async_transaction_result tx_result_;
    std::string token_;
    int begin_stage_ = 0;
    bool marker_ready_ = false, commit_sent_ = false;
    unsigned commits_since_cleanup_ = 0;
    committed pending_commit_;
    deadline tx_bound_ = deadline::none();
    bool body_running_ = false, body_end_pending_ = false;
    std::exception_ptr body_threw_;
    std::uint64_t body_gen_ = 0;
    bool tx_stmt_busy_ = false, tx_stmt_initiating_ = false;
    std::string tx_stmt_sql_;
    result tx_stmt_res_;
    statement_handler tx_stmt_handler_;
    diagnostics tx_stmt_diag_;

    // the driver step in flight
    bool io_active_ = false, connecting_ = false;
    int io_waits_ = 0, io_ready_ = 0;
    abort_kind io_abort_ = abort_kind::none;
    time_point io_bound_{}, io_driver_expiry_{};
    step_fn io_next_ = nullptr;
    const char* io_what_ = "";
    bool io_ok_ = false, io_cut_ = false, io_unsent_ = false;
    diagnostics io_diag_;
};

// What a transaction function gets: its statements run on the transaction's session, one at a
// time, without per-statement retries (only the whole transaction is replayed).
template <class Core>
class basic_async_transaction_context {
public:
    using executor_type = boost::asio::any_io_executor;

    // void(std::error_code, lifeline::result). A failed statement poisons the transaction: later
    // statements are refused unsent, COMMIT is never sent; end the function (co_return / call
    // done) and lifeline rolls back and replays if it may.
    template <class Token>
    auto async_execute(std::string_view sql, Token&& token) {
        return boost::asio::async_initiate<Token, void(std::error_code, result)>(
            [c = c_](auto handler, std::string text) {
                c->start_tx_statement(std::move(text), typename Core::statement_handler(std::move(handler), c->get_executor()));
            },
            token, std::string(sql));
    }
    template <class Token>
    auto async_query(std::string_view sql, Token&& token) {
        return async_execute(sql, std::forward<Token>(token));
    }
    // The last statement's diagnostics (valid once its handler ran, until the next statement).
    const diagnostics& last_diagnostics() const noexcept { return c_->last_statement_diagnostics(); }
    executor_type get_executor() const noexcept { return c_->get_executor(); }
    auto native() const noexcept { return c_->native(); }  // for reading state only: never block on it

private:
    friend Core;
    explicit basic_async_transaction_context(Core* c) noexcept : c_(c) {}
    Core* c_;
};

}  // namespace detail
}  // namespace lifeline

#endif  // LIFELINE_DETAIL_ASYNC_CORE_HPP
