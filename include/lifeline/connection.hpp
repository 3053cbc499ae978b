// lifeline — a resilient connection: classify, retry what is safe, reconnect, restore the session.
//
//   lifeline::connection<lifeline::capi> db{options};          // lifeline/driver/capi.hpp
//   auto r = db.query("SELECT name FROM users WHERE id = 7", lifeline::idempotent);
//   db.execute("INSERT INTO ledger ...");                          // not idempotent: never sent twice
//   db.run([](MYSQL* m) { return existing_code(m); }, lifeline::idempotent);
//
// One deadline per operation covers the health check, reconnects, backoff and every attempt; a
// blocking call is cut at the deadline by the watchdog. A statement is re-sent only if it
// certainly did not run, or the caller declared it idempotent, or the caller's check says it was
// not applied. Inside an open transaction a single statement is never retried.
//
// Not thread-safe: one connection per thread at a time (use lifeline::pool to share).
#ifndef LIFELINE_CONNECTION_HPP
#define LIFELINE_CONNECTION_HPP

#include <lifeline/classification.hpp>
#include <lifeline/clock.hpp>
#include <lifeline/declaration.hpp>
#include <lifeline/detail/socket_probe.hpp>
#include <lifeline/detail/sql_text.hpp>
#include <lifeline/detail/watchdog.hpp>
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
#include <map>
#include <memory>
#include <mutex>
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
    std::chrono::milliseconds deadline{0};  // 0: the policy's retry.deadline
};

// Counters of one connection (cheap: plain integers, the connection is single-threaded).
struct connection_stats {
    std::uint64_t operations = 0, attempts = 0, retries = 0, reconnects = 0, pings = 0, socket_checks = 0,
                  verifications = 0, gave_up = 0;
};

namespace detail {

// Process-wide retry budget and per-endpoint circuit breakers shared by every connection.
inline std::shared_ptr<retry_budget> shared_retry_budget(const retry_budget_policy& p) {
    static std::mutex m;
    static std::shared_ptr<retry_budget> b;
    std::lock_guard<std::mutex> lock(m);
    if (!b) b = std::make_shared<retry_budget>(p);
    return b;
}

inline std::shared_ptr<circuit_breaker> shared_breaker(const std::string& endpoint, const circuit_breaker_policy& p) {
    static std::mutex m;
    static std::map<std::string, std::weak_ptr<circuit_breaker>> breakers;
    std::lock_guard<std::mutex> lock(m);
    auto& w = breakers[endpoint];
    auto b = w.lock();
    if (!b) {
        b = std::make_shared<circuit_breaker>(p);
        w = b;
    }
    return b;
}

inline std::uint64_t seed_from_address(const void* p) {
    return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p)) ^
           static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

}  // namespace detail

template <class Driver, class Policy = default_policy>
class connection {
    static_assert(check_driver_traits<Driver>(), "see the static_assert above");

public:
    using traits = driver_traits<Driver>;
    using native_handle = typename traits::native_handle;
    using declaration_type = declaration<native_handle>;
    using session_spec = basic_session<native_handle>;
    using clock_type = typename Policy::clock_type;

    // Validates options and policy; throws lifeline::error (errc::invalid_option) saying what to fix.
    // Does not connect: the first operation does (or call connect()).
    explicit connection(connect_options options, Policy policy = {}, session_spec session = {},
                        clock_type clock = {})
        : options_(std::move(options)),
          policy_(std::move(policy)),
          spec_(std::move(session)),
          clock_(std::move(clock)),
          endpoint_(options_.unix_socket.empty() ? options_.host + ":" + std::to_string(options_.port)
                                                 : options_.unix_socket),
          backoff_(policy_.backoff, detail::seed_from_address(this)),
          health_(policy_.health),
          rng_(detail::seed_from_address(this) * 2654435761u) {
        std::string why = validate(options_);
        std::string pwhy = policy_.validate();
        if (!pwhy.empty()) why += (why.empty() ? "" : "; ") + pwhy;
        if (!why.empty()) {
            diagnostics d;
            d.server_message = why;
            throw error(make_error_code(errc::invalid_option), std::move(d));
        }
        budget_ = detail::shared_retry_budget(policy_.budget);
        breaker_ = detail::shared_breaker(endpoint_, policy_.breaker);
        slot_ = detail::watchdog::instance().make_slot();
    }

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() { drop_session(); }

    // --- configuration ---------------------------------------------------------------------
    void set_observer(std::shared_ptr<observer> o) { observer_ = std::move(o); }
    // Replace the process-wide retry budget (e.g. one per service, or one per test).
    void set_retry_budget(std::shared_ptr<retry_budget> b) { budget_ = std::move(b); }
    void set_circuit_breaker(std::shared_ptr<circuit_breaker> b) { breaker_ = std::move(b); }
    // The session to keep; applies from the next (re)connect on.
    session_spec& session() noexcept { return spec_; }
    const Policy& policy() const noexcept { return policy_; }
    const connect_options& options() const noexcept { return options_; }
    const connection_stats& stats() const noexcept { return stats_; }
    const std::string& endpoint() const noexcept { return endpoint_; }

    // --- lifeline's own calls ----------------------------------------------------------------
    // query and execute are the same call: rows (if any) and counts come back in `result`.
    result query(std::string_view sql, declaration_type decl = {}, call_options co = {}) {
        std::error_code ec;
        diagnostics diag;
        result r = query(sql, std::move(decl), ec, diag, co);
        if (ec) throw error(ec, std::move(diag));
        return r;
    }
    result query(std::string_view sql, declaration_type decl, std::error_code& ec, diagnostics& diag,
                 call_options co = {}) noexcept {
        result r;
        try {
            note_transaction_statement(sql);
            if (max_allowed_packet_ && sql.size() + 1 > max_allowed_packet_) {
                ec = make_error_code(errc::statement_too_large);
                diag = diagnostics{};
                diag.where = phase::send;
                diag.server_message = "statement of " + std::to_string(sql.size()) +
                                      " bytes exceeds the server's max_allowed_packet of " +
                                      std::to_string(max_allowed_packet_) + "; nothing was sent";
                return r;
            }
            operate(sql, decl, co, ec, diag, r, [&](diagnostics& d) {
                if (max_allowed_packet_ && sql.size() + 1 > max_allowed_packet_) {
                    // Learnt only now (first connect of this call): refuse as the server would.
                    d = diagnostics{};
                    d.code = 1153;  // ER_NET_PACKET_TOO_LARGE
                    d.sqlstate = "08S01";
                    d.where = phase::send;
                    d.server_message = "statement exceeds max_allowed_packet; nothing was sent";
                    return false;
                }
                r.rows.clear();
                r.columns.clear();
                return traits::execute(session_, sql, &r, d);
            });
        } catch (const std::exception& e) {
            fail_internal(ec, diag, e.what());
        }
        return r;
    }
    result execute(std::string_view sql, declaration_type decl = {}, call_options co = {}) {
        return query(sql, std::move(decl), co);
    }
    result execute(std::string_view sql, declaration_type decl, std::error_code& ec, diagnostics& diag,
                   call_options co = {}) noexcept {
        return query(sql, std::move(decl), ec, diag, co);
    }

    // --- wrapping existing code --------------------------------------------------------------
    // Hands the native handle to f inside the retry loop and classifies what it reports (C API:
    // mysql_errno() after f returns; JDBC: a thrown sql::SQLException). f must be safe to call
    // again under the declaration given: with no declaration it is called again only if it
    // certainly did not reach the server.
    template <class F>
    auto run(F&& f, declaration_type decl = {}, call_options co = {}) {
        std::error_code ec;
        diagnostics diag;
        auto out = run(std::forward<F>(f), std::move(decl), ec, diag, co);
        if (ec) throw error(ec, std::move(diag));
        if constexpr (!std::is_void_v<run_result_t<F>>) return std::move(*out);
    }
    template <class F>
    auto run(F&& f, declaration_type decl, std::error_code& ec, diagnostics& diag, call_options co = {}) {
        using R = run_result_t<F>;
        using stored = std::conditional_t<std::is_void_v<R>, bool, R>;
        std::optional<stored> out;
        operate({}, decl, co, ec, diag, dummy_,
                [&](diagnostics& d) { return traits::invoke(session_, f, out, d); });
        if constexpr (std::is_void_v<R>) return static_cast<bool>(out) && !ec;
        else return out;
    }

    // --- prepared statements -----------------------------------------------------------------
    // Registers sql; it is prepared on first use and again on every new session (a reconnect loses
    // the server-side statement). Parameters are bound as text; std::nullopt binds NULL.
    prepared_statement prepare(std::string_view sql) {
        static_assert(detail::has_prepare<traits>::value,
                      "lifeline: driver_traits<Tag> lacks `using statement_type`, `prepare`, `param_count`, "
                      "`execute_prepared` and `close_statement`: this driver does not support prepared statements "
                      "through lifeline (use run() with the driver's own API)");
        prepared_sql_.emplace_back(sql);
        return prepared_statement(prepared_sql_.size());
    }
    result execute(const prepared_statement& st, const params& args, declaration_type decl = {}, call_options co = {}) {
        std::error_code ec;
        diagnostics diag;
        result r = execute(st, args, std::move(decl), ec, diag, co);
        if (ec) throw error(ec, std::move(diag));
        return r;
    }
    result execute(const prepared_statement& st, const params& args, declaration_type decl, std::error_code& ec,
                   diagnostics& diag, call_options co = {}) noexcept {
        result r;
        if (!st.valid() || st.id() > prepared_sql_.size()) {
            ec = make_error_code(errc::invalid_option);
            diag = diagnostics{};
            diag.server_message = "prepared_statement does not belong to this connection: use the handle prepare() returned";
            return r;
        }
        try {
            const std::string& sql = prepared_sql_[st.id() - 1];
            operate(sql, decl, co, ec, diag, r, [&](diagnostics& d) {
                if (statements_.size() < prepared_sql_.size()) statements_.resize(prepared_sql_.size());
                auto& h = statements_[st.id() - 1];
                if (!h && !traits::prepare(session_, sql, h, d)) {
                    only_prepared_ = true;  // preparing runs nothing, whatever the error
                    return false;
                }
                if (traits::param_count(*h) != args.size()) {
                    bad_arguments_ = "statement takes " + std::to_string(traits::param_count(*h)) +
                                     " parameter(s), " + std::to_string(args.size()) + " given: " + sql;
                    return true;  // nothing sent; reported below
                }
                r.rows.clear();
                r.columns.clear();
                return traits::execute_prepared(session_, *h, args, &r, d);
            });
            if (!bad_arguments_.empty()) {
                ec = make_error_code(errc::invalid_option);
                diag = diagnostics{};
                diag.server_message = std::move(bad_arguments_);
                bad_arguments_.clear();
            }
        } catch (const std::exception& e) {
            fail_internal(ec, diag, e.what());
        }
        return r;
    }

    // --- whole transactions (lifeline/transaction.hpp) ------------------------------------------
    // What the transaction function gets: statements run on the transaction's session, without
    // per-statement retries (inside a transaction only the whole may be replayed).
    class transaction_context {
    public:
        result execute(std::string_view sql) { return c_.tx_statement(sql); }
        result query(std::string_view sql) { return c_.tx_statement(sql); }
        native_handle native() noexcept { return traits::native(c_.session_); }

    private:
        friend class connection;
        explicit transaction_context(connection& c) noexcept : c_(c) {}
        connection& c_;
    };

    // Runs fn(transaction_context&) between START TRANSACTION and COMMIT; see transaction.hpp.
    // An exception fn throws itself rolls the transaction back and propagates (never replayed).
    template <class F>
    transaction_result transaction(F&& fn, transaction_options o = {}) {
        std::error_code ec;
        diagnostics diag;
        auto r = transaction(std::forward<F>(fn), o, ec, diag);
        if (ec) throw error(ec, std::move(diag));
        return r;
    }
    template <class F>
    transaction_result transaction(F&& fn, transaction_options o, std::error_code& ec, diagnostics& diag) {
        transaction_result tr;
        ec.clear();
        diag = diagnostics{};
        ++stats_.operations;
        budget_->record_request(clock_.now());
        const auto until = clock_.now() + (o.deadline.count() > 0 ? o.deadline : policy_.retry.deadline);
        backoff_.reset();
        transaction_lost_ = false;  // starting a new transaction acknowledges an earlier loss
        for (unsigned n = 1;; ++n) {
            tr.attempts = n;
            if (!ensure_ready(until, ec, diag)) {
                if (!should_retry_connect(n, until, ec, diag)) {
                    give_up({}, n, ec, diag, "could not connect for the transaction");
                    return tr;
                }
                continue;
            }
            tx_until_ = until;
            tx_fired_ = false;
            const std::uint64_t session_id = traits::connection_id(session_);
            std::string token;
            bool ok = true;
            try {
                if (o.resolve_commit && !marker_ready_) {
                    tx_statement("CREATE TABLE IF NOT EXISTS lifeline_commit_marker (token CHAR(32) NOT NULL PRIMARY KEY, "
                                 "created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY (created_at)) "
                                 "ENGINE=InnoDB");
                    marker_ready_ = true;
                }
                tx_statement("START TRANSACTION");
                if (o.resolve_commit) {
                    token = make_token();
                    tx_statement("INSERT INTO lifeline_commit_marker (token) VALUES ('" + token + "')");
                }
                transaction_context tx(*this);
                fn(tx);
                tx_committing_ = true;
                tx_statement("COMMIT");
                tx_committing_ = false;
            } catch (const detail::transaction_statement_failed&) {
                ok = false;
                tx_committing_ = false;
            } catch (...) {
                tx_committing_ = false;
                rollback_quietly();
                throw;
            }
            in_transaction_at_last_contact_ = false;  // handled here, not by reconnect()
            if (ok) {
                health_.on_used(clock_.now());
                if (o.resolve_commit) clean_markers();
                ec.clear();
                diag = diagnostics{};
                return tr;
            }
            diagnostics d = tx_diag_;
            classification c = policy_.classify(failure{d.code, d.sqlstate, d.where, true});
            if (tx_fired_) c.connection = connection_state::broken;
            const bool lost_commit = d.where == phase::commit && c.statement == outcome::unknown;
            // After a lost COMMIT the old session is to be fenced, never reused (not even to roll back).
            if (c.connection == connection_state::broken || lost_commit) drop_session();
            else rollback_quietly();
            diag = d;
            if (lost_commit) {
                if (!o.resolve_commit) {
                    ec = make_error_code(errc::commit_unknown);
                    give_up({}, n, ec, diag, "COMMIT's answer was lost; commit resolution is off");
                    return tr;
                }
                ++stats_.verifications;
                switch (resolve_commit(session_id, token, until)) {
                case write_check::applied:
                    tr.commit_resolved = true;
                    ec.clear();
                    diag = diagnostics{};
                    return tr;
                case write_check::unknown:
                    ec = make_error_code(errc::commit_unknown);
                    diag.server_message += " (commit resolution could not finish within the deadline)";
                    give_up({}, n, ec, diag, "commit outcome unknown");
                    return tr;
                case write_check::not_applied:
                    tr.commit_resolved = true;  // certainly not committed: replay below if allowed
                    break;
                }
            } else {
                const bool replay_worthy =
                    c.action == remedy::retry_transaction &&
                    (d.code != 1205 || o.replay_on_lock_wait_timeout);
                if (!replay_worthy) {
                    ec = c.connection == connection_state::broken ? make_error_code(errc::transaction_lost)
                                                                  : make_driver_error_code(d.code);
                    give_up({}, n, ec, diag, c.reason);
                    return tr;
                }
            }
            // The transaction certainly did not commit. Replay it, if allowed and within limits.
            std::error_code stop;
            if (!o.replayable)  // a usable connection: the server's own error (1213, 1205) says it best
                stop = (c.connection == connection_state::usable && !lost_commit) ? make_driver_error_code(d.code)
                                                                                  : make_error_code(errc::transaction_lost);
            else if (n >= policy_.retry.max_attempts) stop = make_error_code(errc::transaction_lost);
            else if (remaining(until).count() == 0) stop = make_error_code(errc::deadline_exceeded);
            else if (!budget_->try_acquire_retry(clock_.now())) stop = make_error_code(errc::retry_budget_exhausted);
            auto delay = stop ? std::chrono::nanoseconds(0) : backoff_.next();
            if (!stop && delay >= remaining(until)) stop = make_error_code(errc::deadline_exceeded);
            if (stop) {
                ec = stop;
                give_up({}, n, ec, diag, o.replayable ? "transaction not committed; replay limit reached"
                                                      : "transaction not committed; not declared replayable");
                return tr;
            }
            ++stats_.retries;
            if (observer_) observer_->on_retry(retry_event{endpoint_, {}, n, c, diag, delay, "replaying the transaction"});
            if (delay.count() > 0) clock_.sleep_for(delay);
        }
    }

    // --- connection management ---------------------------------------------------------------
    // Connects now (within the policy deadline) instead of on first use.
    void connect() {
        std::error_code ec;
        diagnostics diag;
        connect(ec, diag);
        if (ec) throw error(ec, std::move(diag));
    }
    void connect(std::error_code& ec, diagnostics& diag) noexcept { ready(std::chrono::milliseconds(0), ec, diag); }
    // The before-use check alone, under its own deadline (0: the policy's): socket poll, ping
    // after the idle window, recycle or reconnect with the session restored. Sends no statement.
    bool ready(std::chrono::milliseconds deadline, std::error_code& ec, diagnostics& diag) noexcept {
        ec.clear();
        diag = diagnostics{};
        if (transaction_lost_) {  // sticky, as for every other call (see acknowledge_transaction_lost)
            ec = make_error_code(errc::transaction_lost);
            diag.server_message = "a previous statement lost the open transaction";
            return false;
        }
        try {
            const auto until = clock_.now() + (deadline.count() > 0 ? deadline : policy_.retry.deadline);
            backoff_.reset();
            for (unsigned n = 1;; ++n) {
                if (ensure_ready(until, ec, diag)) {
                    ec.clear();
                    diag = diagnostics{};
                    return true;
                }
                if (!should_retry_connect(n, until, ec, diag)) return false;
            }
        } catch (const std::exception& e) {
            fail_internal(ec, diag, e.what());
            return false;
        }
    }
    // A transaction is open on the current session (C API: the server's status flag).
    bool in_transaction() const noexcept { return traits::is_open(session_) && traits::in_transaction(session_); }
    const health_tracker& health() const noexcept { return health_; }
    bool is_open() const noexcept { return traits::is_open(session_); }
    // The raw handle, outside any resilience (nullptr/invalid when not connected).
    native_handle native() noexcept { return traits::native(session_); }
    // Closes the driver connection; the next operation reconnects.
    void close() noexcept { drop_session(); }
    // After errc::transaction_lost, operations keep failing until the caller acknowledges that the
    // transaction is gone (so no statement silently runs in autocommit on a new connection).
    // Issuing BEGIN, START TRANSACTION or ROLLBACK through lifeline acknowledges it too.
    void acknowledge_transaction_lost() noexcept { transaction_lost_ = false; }
    std::uint64_t connection_id() noexcept { return traits::connection_id(session_); }

private:
    template <class F>
    using run_result_t = std::invoke_result_t<F&, native_handle>;

    using time_point = decltype(std::declval<clock_type&>().now());

    // One statement of a transaction, under the transaction's deadline; throws on failure.
    result tx_statement(std::string_view sql) {
        result r;
        diagnostics d;
        bool fired;
        // COMMIT may use only half of the time left: if its answer never comes, the other half
        // is for fencing the session and looking the token up, within the same deadline.
        auto until = tx_committing_ ? clock_.now() + (tx_until_ - clock_.now()) / 2 : tx_until_;
        if (call_with_deadline(until, fired, [&] { return traits::execute(session_, sql, &r, d); })) return r;
        if (tx_committing_ && (d.where == phase::read_result || d.where == phase::send)) d.where = phase::commit;
        tx_fired_ = fired;
        tx_diag_ = std::move(d);
        throw detail::transaction_statement_failed{};
    }

    void rollback_quietly() noexcept {
        if (!traits::is_open(session_)) return;
        diagnostics d;
        if (!traits::execute(session_, "ROLLBACK", nullptr, d)) drop_session();
    }

    // After COMMIT's answer was lost: reconnect, fence the old session, look the token up.
    write_check resolve_commit(std::uint64_t old_id, const std::string& token, time_point until) {
        const std::string kill = "KILL CONNECTION " + std::to_string(old_id);
        const std::string alive =
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + std::to_string(old_id);
        const std::string lookup = "SELECT COUNT(*) FROM lifeline_commit_marker WHERE token = '" + token + "'";
        for (unsigned n = 1; remaining(until).count() > 0; ++n) {
            std::error_code ec;
            diagnostics d;
            if (ensure_ready(until, ec, d)) {
                result r;
                // KILL fails with 1094 (unknown thread) when the old session is already gone: fine.
                if (!run_bounded(kill, nullptr, d, until) && d.code != 1094 && !traits::is_open(session_)) continue;
                bool fenced = false;
                while (remaining(until).count() > 0) {
                    r = result{};
                    if (!run_bounded(alive, &r, d, until)) break;
                    if (r.scalar() == std::optional<std::string>("0")) {
                        fenced = true;
                        break;
                    }
                    clock_.sleep_for(std::chrono::milliseconds(10));
                }
                if (fenced) {
                    r = result{};
                    if (run_bounded(lookup, &r, d, until) && r.scalar())
                        return *r.scalar() == "1" ? write_check::applied : write_check::not_applied;
                }
            }
            auto delay = backoff_.next();
            if (delay >= remaining(until)) break;
            clock_.sleep_for(delay);
        }
        return write_check::unknown;
    }

    // One blocking driver call, cut by the watchdog at `until`; `fired` says whether it was.
    template <class Call>
    bool call_with_deadline(time_point until, bool& fired, Call&& call) {
        detail::watchdog_guard guard(slot_.get(), traits::socket_fd(session_), to_steady(until));
        bool ok = call();
        fired = guard.release();
        return ok;
    }

    bool run_bounded(std::string_view sql, result* r, diagnostics& d, time_point until) {
        bool fired;
        bool ok = call_with_deadline(until, fired, [&] { return traits::execute(session_, sql, r, d); });
        if (!ok && (fired || policy_.classify(failure{d.code, d.sqlstate, d.where, false}).connection ==
                                 connection_state::broken))
            drop_session();
        return ok;
    }

    std::string make_token() {
        static const char hex[] = "0123456789abcdef";
        std::string t(32, '0');
        std::uint64_t a = rng_(), b = rng_();
        for (int i = 0; i < 16; ++i) {
            t[static_cast<std::size_t>(i)] = hex[(a >> (i * 4)) & 15];
            t[static_cast<std::size_t>(16 + i)] = hex[(b >> (i * 4)) & 15];
        }
        return t;
    }

    // Old tokens only matter while a resolution could still ask for them: delete in small batches.
    void clean_markers() noexcept {
        if (++commits_since_cleanup_ < 100) return;
        commits_since_cleanup_ = 0;
        diagnostics d;
        traits::execute(session_,
                        "DELETE FROM lifeline_commit_marker WHERE created_at < NOW(6) - INTERVAL 1 HOUR LIMIT 1000",
                        nullptr, d);
    }

    void drop_session() noexcept {
        if constexpr (detail::has_prepare<traits>::value) {
            for (auto& h : statements_)
                if (h) traits::close_statement(*h);
            statements_.clear();
        }
        traits::close(session_);
    }

    void note_transaction_statement(std::string_view sql) {
        if (detail::starts_with_keyword(sql, "BEGIN") || detail::starts_with_keyword(sql, "START TRANSACTION") ||
            detail::starts_with_keyword(sql, "ROLLBACK"))
            transaction_lost_ = false;
    }

    void fail_internal(std::error_code& ec, diagnostics& diag, const char* what) {
        ec = make_error_code(errc::internal_error);
        diag = diagnostics{};
        diag.server_message = what;
    }

    std::chrono::milliseconds remaining(time_point until) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_.now());
        return left.count() > 0 ? left : std::chrono::milliseconds(0);
    }

    // Makes the session usable: cheap liveness check, ping after the idle window, reconnect +
    // session restore. Returns false with ec/diag set when it cannot.
    bool ensure_ready(time_point until, std::error_code& ec, diagnostics& diag) {
        if (traits::is_open(session_)) {
            socket_status s = socket_status::unknown;
            if (policy_.health.socket_check) {
                s = detail::probe_socket(traits::socket_fd(session_));
                ++stats_.socket_checks;
            }
            switch (health_.before_use(clock_.now(), s)) {
            case health_action::use:
                return true;
            case health_action::ping: {
                ++stats_.pings;
                diagnostics pd;
                bool ok = traits::ping(session_, pd);
                if (observer_) observer_->on_ping(endpoint_, ok);
                if (ok) {
                    health_.on_used(clock_.now());
                    return true;
                }
                return reconnect(until, "ping failed", ec, diag);
            }
            case health_action::reconnect:
                return reconnect(until, "the server closed the connection", ec, diag);
            case health_action::recycle:
                return reconnect(until, "recycled (lifetime or before wait_timeout)", ec, diag);
            }
        }
        return reconnect(until, "not connected", ec, diag);
    }

    bool reconnect(time_point until, std::string_view reason, std::error_code& ec, diagnostics& diag) {
        const bool was_open = traits::is_open(session_);
        if (was_open && in_transaction_at_last_contact_) {
            // The transaction lived in the old session: reconnecting would silently continue in
            // autocommit mode (the mysql_reconnect trap). Report it instead.
            drop_session();
            transaction_lost_ = true;
        }
        drop_session();
        if (transaction_lost_) {
            ec = make_error_code(errc::transaction_lost);
            diag = diagnostics{};
            diag.where = phase::connect;
            diag.server_message = "the connection died inside an open transaction";
            return false;
        }
        if (untracked_state_ && spec_.guard_untracked_state) {
            untracked_state_ = false;  // reported once; the next call continues on a fresh session
            ec = make_error_code(errc::session_state_lost);
            diag = diagnostics{};
            diag.where = phase::connect;
            diag.server_message =
                "the connection was lost with session state lifeline was not asked to keep (user variables, "
                "temporary tables or prepared statements); register it in session() to have it restored";
            return false;
        }
        auto now = clock_.now();
        if (!breaker_->allow(now)) {
            ec = make_error_code(errc::circuit_open);
            diag = diagnostics{};
            diag.where = phase::connect;
            diag.server_message = "circuit breaker for " + endpoint_ + " is open after repeated connect failures";
            return false;
        }
        auto budget = std::min(options_.connect_timeout, remaining(until));
        if (budget.count() <= 0) {
            ec = make_error_code(errc::deadline_exceeded);
            return false;
        }
        const auto t0 = clock_.now();
        diagnostics cd;
        bool ok = traits::connect(session_, options_, budget, cd);
        if (ok && traits::reconnect_option_enabled(session_)) {
            drop_session();  // a driver that turned it on behind our back: refuse
            ec = make_error_code(errc::invalid_option);
            diag = diagnostics{};
            diag.server_message = "the driver enabled OPT_RECONNECT; lifeline never uses it";
            return false;
        }
        if (ok) ok = restore_session(cd);
        ++stats_.reconnects;
        if (observer_)
            observer_->on_reconnect(reconnect_event{endpoint_, reason, ok, ok ? std::error_code{} : make_driver_error_code(cd.code),
                                                    std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now() - t0)});
        if (!ok) {
            breaker_->on_failure(clock_.now());
            drop_session();
            diag = std::move(cd);
            diag.where = phase::connect;
            ec = make_driver_error_code(diag.code);
            if (!ec) ec = make_error_code(errc::not_connected);
            return false;
        }
        breaker_->on_success(clock_.now());
        in_transaction_at_last_contact_ = false;
        untracked_state_ = false;
        return true;
    }

    bool restore_session(diagnostics& d) {
        unsigned replayed = 0;
        auto run_sql = [&](const std::string& sql) {
            ++replayed;
            if (traits::execute(session_, sql, nullptr, d)) return true;
            d.where = phase::connect;
            return false;
        };
        if (!spec_.charset.empty() && !run_sql("SET NAMES " + spec_.charset)) return false;
        if (!spec_.time_zone.empty() && !run_sql("SET time_zone = '" + spec_.time_zone + "'")) return false;
        if (!spec_.sql_mode.empty() && !run_sql("SET sql_mode = '" + spec_.sql_mode + "'")) return false;
        for (const auto& s : spec_.statements)
            if (!run_sql(s)) return false;
        if (spec_.on_connect) {
            std::optional<bool> ok;
            auto cb = [&](native_handle h) { return spec_.on_connect(h); };
            if (!traits::invoke(session_, cb, ok, d) || !*ok) {
                d.where = phase::connect;
                if (d.code == 0) d.server_message = "session on_connect callback returned false";
                return false;
            }
        }
        // Learn wait_timeout (to recycle before it) and max_allowed_packet (to refuse a statement
        // the server would answer by dropping the connection: 1153, or 2006 while sending).
        result r;
        std::chrono::seconds wait_timeout{0};
        std::string probe = spec_.guard_untracked_state
                                ? "SET SESSION session_track_state_change = ON"
                                : std::string();
        if (!probe.empty() && !traits::execute(session_, probe, nullptr, d)) {
            // Servers without state tracking (very old ones) are still usable: just not guarded.
        }
        if (traits::execute(session_, "SELECT @@wait_timeout, @@max_allowed_packet", &r, d)) {
            if (auto v = r.scalar()) wait_timeout = std::chrono::seconds(std::stoll(*v));
            if (!r.rows.empty() && r.rows[0].size() > 1 && r.rows[0][1])
                max_allowed_packet_ = std::stoull(*r.rows[0][1]);
        } else {
            d.where = phase::connect;
            return false;
        }
        health_.on_connected(clock_.now(), wait_timeout, rng_());
        if (observer_ && replayed) observer_->on_session_restored(session_restored_event{endpoint_, replayed});
        return true;
    }

    template <class Attempt>
    void operate(std::string_view sql, const declaration_type& decl, call_options co, std::error_code& ec,
                 diagnostics& diag, result& res, Attempt&& attempt) {
        ec.clear();
        diag = diagnostics{};
        ++stats_.operations;
        budget_->record_request(clock_.now());
        const auto start = clock_.now();
        const auto until = start + (co.deadline.count() > 0 ? co.deadline : policy_.retry.deadline);
        backoff_.reset();
        bool unknown_pending = false;  // a non-idempotent statement may have run
        for (unsigned n = 1;; ++n) {
            res.attempts = n;
            if (transaction_lost_) {
                ec = make_error_code(errc::transaction_lost);
                diag.server_message = "a previous statement lost the open transaction; call "
                                      "acknowledge_transaction_lost() or issue ROLLBACK/BEGIN";
                return give_up(sql, n, ec, diag, "transaction lost earlier");
            }
            if (!ensure_ready(until, ec, diag)) {
                if (!should_retry_connect(n, until, ec, diag)) {
                    if (unknown_pending) ec = make_error_code(errc::outcome_unknown);
                    return give_up(sql, n, ec, diag, "could not connect");
                }
                continue;
            }
            if (unknown_pending) {
                // Reconnected after an unknown outcome: ask the caller's check before re-sending.
                ++stats_.verifications;
                write_check w = write_check::unknown;
                try {
                    w = decl.verify(traits::native(session_));
                } catch (...) {
                    w = write_check::unknown;
                }
                if (w == write_check::applied) {
                    res.verified = true;
                    ec.clear();
                    return;
                }
                if (w == write_check::unknown) {
                    ec = make_error_code(errc::outcome_unknown);
                    diag.server_message += " (the verification check could not tell whether it was applied)";
                    return give_up(sql, n, ec, diag, "verification inconclusive");
                }
                unknown_pending = false;  // not applied: safe to send again
            }
            const bool in_txn = traits::in_transaction(session_);
            if (observer_) observer_->on_attempt(attempt_event{endpoint_, sql, n});
            ++stats_.attempts;
            diagnostics d;
            bool fired;
            bool ok = call_with_deadline(until, fired, [&] { return attempt(d); });
            in_transaction_at_last_contact_ = traits::is_open(session_) && traits::in_transaction(session_);
            if (ok) {
                ec.clear();  // earlier failed attempts or connects are history now
                diag = diagnostics{};
                health_.on_used(clock_.now());
                if (spec_.guard_untracked_state && sql.size() && traits::untracked_state_changed(session_))
                    untracked_state_ = true;
                return;
            }
            failure f{d.code, d.sqlstate, d.where, in_txn};
            classification c = policy_.classify(f);
            if (fired) c.connection = connection_state::broken;  // we shut the socket down
            if (only_prepared_ && (c.statement == outcome::unknown || c.statement == outcome::interrupted)) {
                c.statement = outcome::not_executed;
                if (c.connection == connection_state::broken) c.action = remedy::reconnect_and_retry;
            }
            only_prepared_ = false;
            if (c.connection == connection_state::broken) {
                if (in_txn) transaction_lost_ = true;
                in_transaction_at_last_contact_ = false;
                drop_session();
            }
            diag = d;
            decision dec = policy_.decide(c, decision_input{decl.idempotent(), decl.can_verify(), in_txn});
            if (dec.step == next_step::fail) {
                ec = dec.error ? dec.error : make_driver_error_code(d.code);
                if (fired && !dec.error) ec = make_error_code(errc::deadline_exceeded);
                if (dec.error == make_error_code(errc::transaction_lost)) transaction_lost_ = true;
                return give_up(sql, n, ec, diag, dec.why);
            }
            const bool unknown = c.statement == outcome::unknown && !decl.idempotent();
            if (dec.step == next_step::verify_then_retry) {
                unknown_pending = true;
                drop_session();  // verify on a fresh connection: the old one may still be running it
            }
            // Retry limits: attempts, deadline, process-wide budget.
            std::error_code stop;
            if (n >= policy_.retry.max_attempts) stop = make_driver_error_code(d.code);
            else if (fired || remaining(until).count() == 0) stop = make_error_code(errc::deadline_exceeded);
            else if (!budget_->try_acquire_retry(clock_.now())) stop = make_error_code(errc::retry_budget_exhausted);
            if (stop) {
                ec = unknown ? make_error_code(errc::outcome_unknown) : stop;
                return give_up(sql, n, ec, diag, "retry limit reached");
            }
            auto delay = std::chrono::nanoseconds(0);
            if (dec.backoff || n > 1 || c.connection == connection_state::usable) delay = backoff_.next();
            if (delay >= remaining(until)) {
                ec = unknown ? make_error_code(errc::outcome_unknown) : make_error_code(errc::deadline_exceeded);
                return give_up(sql, n, ec, diag, "no time left for another attempt");
            }
            ++stats_.retries;
            if (observer_) observer_->on_retry(retry_event{endpoint_, sql, n, c, diag, delay, dec.why});
            if (delay.count() > 0) clock_.sleep_for(delay);
        }
    }

    bool should_retry_connect(unsigned n, time_point until, std::error_code& ec, diagnostics& diag) {
        // lifeline's own verdicts (transaction lost, session lost, circuit open, deadline) end it.
        if (ec.category() == category()) return false;
        failure f{diag.code, diag.sqlstate, phase::connect, false};
        classification c = policy_.classify(f);
        if (c.action == remedy::do_not_retry) return false;
        if (n >= policy_.retry.max_attempts) return false;
        if (remaining(until).count() == 0) {
            ec = make_error_code(errc::deadline_exceeded);
            return false;
        }
        if (!budget_->try_acquire_retry(clock_.now())) {
            ec = make_error_code(errc::retry_budget_exhausted);
            return false;
        }
        auto delay = backoff_.next();
        if (delay >= remaining(until)) {
            ec = make_error_code(errc::deadline_exceeded);
            return false;
        }
        ++stats_.retries;
        if (observer_) observer_->on_retry(retry_event{endpoint_, {}, n, c, diag, delay, "connect failed"});
        clock_.sleep_for(delay);
        return true;
    }

    void give_up(std::string_view sql, unsigned n, const std::error_code& ec, const diagnostics& diag,
                 std::string_view why) {
        ++stats_.gave_up;
        if (observer_) observer_->on_gave_up(gave_up_event{endpoint_, sql, n, ec, diag, why});
    }

    // The watchdog runs on the real steady clock; an injected clock only drives lifeline's logic.
    std::chrono::steady_clock::time_point to_steady(time_point until) {
        if constexpr (std::is_same_v<time_point, std::chrono::steady_clock::time_point>) {
            if constexpr (std::is_same_v<clock_type, system_clock_source>) return until;
        }
        return std::chrono::steady_clock::now() + remaining(until);
    }

    connect_options options_;
    Policy policy_;
    session_spec spec_;
    clock_type clock_;
    std::string endpoint_;
    typename traits::session_type session_{};
    backoff backoff_;
    health_tracker health_;
    std::mt19937_64 rng_;
    std::shared_ptr<retry_budget> budget_;
    std::shared_ptr<circuit_breaker> breaker_;
    std::shared_ptr<detail::watchdog::slot> slot_;
    std::shared_ptr<observer> observer_;
    connection_stats stats_;
    result dummy_;
    bool in_transaction_at_last_contact_ = false;
    bool transaction_lost_ = false;
    bool untracked_state_ = false;
    std::uint64_t max_allowed_packet_ = 0;  // from the server at connect; 0 = unknown
    std::vector<std::string> prepared_sql_;  // what prepare() registered, by id - 1
    std::vector<std::optional<typename detail::statement_type_of<traits>::type>> statements_;  // this session's handles
    std::string bad_arguments_;
    bool only_prepared_ = false;  // the failed attempt was a prepare: nothing was executed
    // transaction() state
    time_point tx_until_{};
    diagnostics tx_diag_;
    bool tx_fired_ = false;
    bool tx_committing_ = false;
    bool marker_ready_ = false;
    unsigned commits_since_cleanup_ = 0;
};

}  // namespace lifeline

#endif  // LIFELINE_CONNECTION_HPP
