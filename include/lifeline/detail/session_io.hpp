// lifeline — the blocking I/O layer: executes the engines' actions on one driver session.
//
// It decides nothing (that is the engines' job, engine_core.hpp); it runs one step and reports what
// happened as an engine event. Every blocking driver call it makes — connect, the session-restore
// statements, ping, the statement or callable, the verification check, fencing, ROLLBACK, COMMIT,
// the token lookup, the marker cleanup, the pool's reset — runs under the caller's deadline: the
// watchdog (watchdog.hpp) shuts the socket down when it passes, so no call outlives it.
#ifndef LIFELINE_DETAIL_SESSION_IO_HPP
#define LIFELINE_DETAIL_SESSION_IO_HPP

#include <lifeline/adopt.hpp>
#include <lifeline/deadline.hpp>
#include <lifeline/detail/engine_core.hpp>
#include <lifeline/detail/reaper.hpp>
#include <lifeline/detail/session_sql.hpp>
#include <lifeline/detail/socket_probe.hpp>
#include <lifeline/detail/tcp_keepalive.hpp>
#include <lifeline/detail/transaction_engine.hpp>
#include <lifeline/detail/watchdog.hpp>
#include <lifeline/detail/wire_counter.hpp>
#include <lifeline/driver_traits.hpp>
#include <lifeline/options.hpp>
#include <lifeline/result.hpp>
#include <lifeline/server_info.hpp>
#include <lifeline/session.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace lifeline::detail {

// Optional driver members (driver_traits.hpp documents them).
template <class T, class = void>
struct has_wire_bytes : std::false_type {};
template <class T>
struct has_wire_bytes<T, std::void_t<decltype(T::wire_bytes(std::declval<typename T::session_type&>()))>> : std::true_type {};
template <class T, class = void>
struct has_reset_session : std::false_type {};
template <class T>
struct has_reset_session<T, std::void_t<decltype(T::reset_session(std::declval<typename T::session_type&>(),
                                                                   std::declval<diagnostics&>()))>> : std::true_type {};
template <class T, class = void>
struct writes_over_result : std::false_type {};
template <class T>
struct writes_over_result<T, std::enable_if_t<T::writes_over_result>> : std::true_type {};
template <class T, class = void>
struct has_session_changed : std::false_type {};
template <class T>
struct has_session_changed<T, std::void_t<decltype(T::session_changed(std::declval<typename T::session_type&>()))>>
    : std::true_type {};

// Thrown by a driver adapter's connect()/adopt() when the options cannot work (a pre_connect hook
// refused or threw, a hook made for the other driver): the connect fails with errc::invalid_option
// and is not retried.
struct connect_refused {
    std::string why;
};

template <class Driver, class Clock>
class session_io;

// The job the reaper (reaper.hpp) runs for a cut session: a side connection with the same options,
// the cut session looked up, and KILL CONNECTION if it is provably that session.
template <class Driver>
void stop_cut_session(const connect_options& options, const session_ref& target);

template <class Driver, class Clock>
class session_io {
public:
    using traits = driver_traits<Driver>;
    using native_handle = typename traits::native_handle;
    using spec_type = basic_session<native_handle>;

    session_io(const connect_options& options, Clock& clock)
        : options_(options), clock_(clock), slot_(watchdog::instance().make_slot()) {}
    session_io(const session_io&) = delete;
    session_io& operator=(const session_io&) = delete;
    ~session_io() { close(); }

    typename traits::session_type& session() noexcept { return session_; }
    const typename traits::session_type& session() const noexcept { return session_; }
    bool open() const noexcept { return traits::is_open(session_); }
    native_handle native() noexcept { return traits::native(session_); }

    // Closes lifeline's prepared statements, then the session (the server rolls back an open
    // transaction).
    void close() noexcept {
        if constexpr (has_prepare<traits>::value) {
            for (auto& h : statements_)
                if (h) traits::close_statement(*h);
            statements_.clear();
        }
        if (traits::is_open(session_)) traits::close(session_);
        dirty_ = false;
        current_ = session_ref{};
    }

    socket_status probe(bool enabled) const noexcept {
        return enabled ? probe_socket(traits::socket_fd(session_)) : socket_status::unknown;
    }

    pinged ping(const deadline& bound) {
        pinged e;
        bool cut = false;
        e.ok = guarded(bound, cut, [&] { return traits::ping(session_, e.diag); });
        if (cut) cut_account(e.diag, "ping");
        return e;
    }

    // Connect, restore the registered session, learn the session's facts.
    connected connect(const deadline& bound, const spec_type& spec, std::uint64_t seed) {
        return connect(bound, spec, seed, options_);
    }
    // Failover (cluster_io.hpp): the same, to `where` (the options with one host of the list).
    connected connect(const deadline& bound, const spec_type& spec, std::uint64_t seed, const connect_options& where) {
        connected e;
        close();
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(bound.remaining(clock_.now()));
        const auto budget = std::max(std::chrono::milliseconds(1), std::min(where.connect_timeout, left));
        bool ok = false;
        try {
            ok = traits::connect(session_, where, budget, e.diag);
        } catch (const connect_refused& r) {
            return refused(e, r);
        }
        if (!ok) {
            e.diag.where = phase::connect;
            close();
            return e;
        }
        return set_up(bound, spec, seed, e);
    }

    // An already-open driver connection becomes this session (lifeline/adopt.hpp): the same
    // per-session setup as after connect (OPT_RECONNECT off, the socket's own descriptor, TCP
    // keepalive, the registered session, identity and lock, flavour).
    template <class Handle>
    connected adopt(const deadline& bound, const spec_type& spec, std::uint64_t seed, Handle&& handle, ownership own) {
        connected e;
        close();
        bool ok = false;
        try {
            ok = traits::adopt(session_, std::forward<Handle>(handle), own, options_, e.diag);
        } catch (const connect_refused& r) {
            return refused(e, r);
        }
        if (!ok) {
            e.diag.where = phase::connect;
            e.config_error = true;  // nothing to retry: the handle was not usable
            close();
            return e;
        }
        return set_up(bound, spec, seed, e);
    }

    // The server behind the current (or last) session.
    const server_info& server() const noexcept { return server_; }
    // The current session's identity (as connect learnt it; empty when closed).
    const session_ref& current() const noexcept { return current_; }
    // Each blocking call of the running operation lasts at most this long (0: only its deadline).
    void set_call_io_timeout(std::chrono::milliseconds t) noexcept { io_cap_ = t; }
    // false: a cut does not queue a stop on the server (the reaper's own side connections).
    void set_stop_on_cut(bool on) noexcept { stop_on_cut_ = on; }

    // On the current session: who holds the old session's lock, who carries its id (facts only;
    // the engine decides).
    fenced fence(const session_ref& target, const deadline& bound) {
        fenced e;
        result r;
        bool cut = false;
        const std::string q = fence_inspect_sql(target);
        if (!guarded(bound, cut, [&] { return traits::execute(session_, q, &r, e.diag); }) || cut) {
            e.connection_lost = cut || broken(e.diag);
            if (cut) cut_account(e.diag, "fencing");
            return e;
        }
        if (r.rows.size() != 1 || r.rows[0].size() != 2) {
            e.diag.client_message = "unexpected answer while fencing";
            return e;
        }
        e.ok = true;
        e.lock_holder = to_u64(r.rows[0][0]);
        e.present = r.rows[0][1].has_value();
        e.present_is_ours = r.rows[0][1] == std::optional<std::string>(options_.user);
        return e;
    }

    killed kill(const session_ref& target, const deadline& bound) {
        killed e;
        bool cut = false;
        const std::string q = kill_sql(target.id);
        e.ok = guarded(bound, cut, [&] { return traits::execute(session_, q, nullptr, e.diag); }) && !cut;
        if (!e.ok && e.diag.code == code::er_no_such_thread) e.ok = true;  // it ended meanwhile
        if (!e.ok) e.connection_lost = cut || broken(e.diag);
        if (e.ok) e.diag = diagnostics{};
        return e;
    }

    // One attempt. call(attempted&) -> bool runs the statement or callable and fills e.diag (and,
    // if it knows, e.nothing_ran / e.usage_error). black_box: a run() callable.
    template <class Call>
    attempted attempt(const deadline& bound, bool black_box, bool guard_state, Call&& call) {
        attempted e;
        e.in_txn_before = traits::in_transaction(session_);
        std::optional<std::uint64_t> before;
        if (black_box) before = wire_bytes();
        e.ok = guarded(bound, e.cut, [&] { return call(e); });
        if (e.lock_uncertain || black_box) current_.lock_certain = false;
        e.open_after = traits::is_open(session_);
        if (e.open_after) e.in_txn_after = traits::in_transaction(session_);
        if (e.ok) {
            if (guard_state) e.untracked_change = traits::untracked_state_changed(session_);
            if constexpr (has_session_changed<traits>::value) dirty_ = dirty_ || traits::session_changed(session_);
            if (black_box) dirty_ = true;  // whatever it did to the session, lifeline cannot see it
            e.lock_uncertain = black_box;
            return e;
        }
        e.lock_uncertain = black_box;
        if (e.cut) cut_account(e.diag, "the statement");
        if (black_box) {
            const std::optional<std::uint64_t> after = wire_bytes();
            e.reached = (before && after) ? (*before == *after ? reach::none : reach::some) : reach::unknown;
            dirty_ = true;
        }
        return e;
    }

    // The caller's verification check, on a fresh session, under the deadline.
    template <class Check>
    verified verify(const deadline& bound, Check&& check) {
        verified e;
        bool cut = false, threw = false;
        guarded(bound, cut, [&] {
            try {
                e.check = check(traits::native(session_));
            } catch (...) {
                threw = true;
            }
            return true;
        });
        if (cut || threw) {
            e.failed = true;
            e.connection_lost = cut || probe_socket(traits::socket_fd(session_)) == socket_status::dead;
            e.diag.client_message = cut ? "the verification check was cut by the deadline" : "the verification check threw";
        }
        return e;
    }

    // --- transaction steps ------------------------------------------------------------------------
    began begin(const deadline& bound, std::string_view token, bool& marker_ready) {
        began e;
        auto run = [&](std::string_view sql) {
            return guarded(bound, e.cut, [&] { return traits::execute(session_, sql, nullptr, e.diag); });
        };
        bool ok = true;
        if (!token.empty() && !marker_ready) {
            ok = run(marker_table_sql);  // DDL: before START TRANSACTION, never inside it
            if (ok) marker_ready = true;
        }
        if (ok) ok = run("START TRANSACTION");
        if (ok && !token.empty()) ok = run(marker_insert_sql(token));
        e.ok = ok;
        e.open_after = traits::is_open(session_);
        if (!ok && e.cut) cut_account(e.diag, "START TRANSACTION");
        return e;
    }

    statement_done tx_statement(std::string_view sql, const deadline& bound, result* out) {
        statement_done e;
        e.ok = guarded(bound, e.cut, [&] { return traits::execute(session_, sql, out, e.diag); });
        e.open_after = traits::is_open(session_);
        if (e.ok) {
            e.in_txn_after = traits::in_transaction(session_);
            if (!e.in_txn_after)
                e.diag.client_message = "the statement `" + std::string(sql.substr(0, 80)) +
                                        (sql.size() > 80 ? "..." : "") + "` ended the transaction";
        } else if (e.cut) {
            cut_account(e.diag, "the statement");
        }
        return e;
    }

    committed commit(const deadline& bound) {
        committed e;
        e.ok = guarded(bound, e.cut, [&] { return traits::execute(session_, "COMMIT", nullptr, e.diag); });
        e.open_after = traits::is_open(session_);
        if (!e.ok && e.cut) cut_account(e.diag, "COMMIT");
        return e;
    }

    rolled_back rollback(const deadline& bound) {
        rolled_back e;
        diagnostics d;
        bool cut = false;
        e.ok = traits::is_open(session_) &&
               guarded(bound, cut, [&] { return traits::execute(session_, "ROLLBACK", nullptr, d); });
        return e;
    }

    looked_up lookup(std::string_view token, const deadline& bound) {
        looked_up e;
        result r;
        bool cut = false;
        const std::string sql = marker_lookup_sql(token);
        e.ok = guarded(bound, cut, [&] { return traits::execute(session_, sql, &r, e.diag); }) && r.scalar();
        e.open_after = traits::is_open(session_) && !cut;
        if (e.ok) e.found = *r.scalar() != "0";
        return e;
    }

    // Best effort, after a successful COMMIT: old tokens only matter while a resolution could ask.
    void clean_markers(const deadline& bound) noexcept {
        diagnostics d;
        bool cut = false;
        guarded(bound, cut, [&] { return traits::execute(session_, marker_cleanup_sql, nullptr, d); });
    }

    // The pool's return path: a session whose state changed goes back to the registered state
    // (COM_RESET_CONNECTION, then the session replayed); false: it could not, close it.
    // `current` is the session's identity: the reset released its lock, which is taken again.
    bool reset(const deadline& bound, const spec_type& spec, session_ref& current, diagnostics& d) {
        if constexpr (has_reset_session<traits>::value) {
            bool cut = false;
            if (!guarded(bound, cut, [&] { return traits::reset_session(session_, d); }) || cut) return false;
            if constexpr (has_prepare<traits>::value) {
                for (auto& h : statements_)  // the server closed them; the handles are stale
                    if (h) traits::close_statement(*h);
                statements_.clear();
            }
            // COM_RESET_CONNECTION keeps the current schema: go back to the registered one.
            if (!options_.database.empty()) {
                const std::string use = "USE " + quote_identifier(options_.database);
                if (!guarded(bound, cut, [&] { return traits::execute(session_, use, nullptr, d); }) || cut) return false;
            }
            if (!restore(bound, spec, d)) return false;
            if (current.has_lock()) {
                result r;
                const std::string q = relock_sql(current);
                current.lock_certain = guarded(bound, cut, [&] { return traits::execute(session_, q, &r, d); }) && !cut &&
                                       r.scalar() == std::optional<std::string>("1");
                current_.lock_certain = current.lock_certain;
                if (cut) return false;
            }
            dirty_ = false;
            return true;
        } else {
            (void)bound;
            (void)spec;
            (void)current;
            d.client_message = "this driver cannot reset a session; it is closed instead";
            return false;
        }
    }

    // The session differs from the registered one (SET, USE, temporary tables, user variables,
    // locks, a run() callable, ...): the pool resets it before the next borrower gets it.
    bool dirty() const noexcept { return dirty_; }
    void mark_dirty() noexcept { dirty_ = true; }

    // lifeline's prepared statements on this session (re-prepared lazily after every reconnect).
    template <class Handle = typename statement_type_of<traits>::type>
    std::optional<Handle>& statement(std::size_t index) {
        if (statements_.size() <= index) statements_.resize(index + 1);
        return statements_[index];
    }

    // One blocking call, cut by the watchdog at `bound`; `cut` says whether it was.
    // With a per-call io timeout (set_call_io_timeout) the call also ends that long after it began.
    // A cut of a known session queues its stop on the server (reaper.hpp).
    template <class Call>
    bool guarded(const deadline& bound, bool& cut, Call&& call) {
        deadline effective = bound;
        bool by_io_timeout = false;
        if (io_cap_.count() > 0) {
            const deadline cap = deadline::after(io_cap_, clock_.now());
            if (cap.at() < bound.at()) {
                effective = cap;
                by_io_timeout = true;
            }
        }
        if (effective.is_none()) {
            cut = false;
            return call();
        }
        watchdog_guard guard(slot_.get(), traits::socket_fd(session_), to_steady(effective));
        const bool ok = call();
        cut = guard.release();  // a call that succeeded as the deadline fired did succeed; the
        if (cut) on_cut(by_io_timeout);  // socket is shut down and the next probe finds it dead
        return ok;
    }

private:
    bool restore(const deadline& bound, const spec_type& spec, diagnostics& d) {
        bool cut = false;
        auto run = [&](std::string_view sql) {
            return guarded(bound, cut, [&] { return traits::execute(session_, sql, nullptr, d); });
        };
        const std::string set =
            session_set_statement(spec.charset, spec.time_zone, spec.sql_mode, spec.guard_untracked_state, options_.collation);
        if (!set.empty() && !run(set)) return cut_or(d, "restoring the session");
        for (const auto& s : spec.statements)
            if (!run(s)) return cut_or(d, "restoring the session");
        if (spec.on_connect) {
            std::optional<bool> ok;
            auto cb = [&](native_handle h) { return spec.on_connect(h); };
            if (!guarded(bound, cut, [&] { return traits::invoke(session_, cb, ok, d); }) || !ok || !*ok) {
                if (d.code == 0 && d.client_message.empty()) d.client_message = "session on_connect callback returned false";
                return cut_or(d, "the on_connect callback");
            }
        }
        return true;
    }

    bool learn(const deadline& bound, session_facts& facts, diagnostics& d) {
        const std::uint64_t hi = nonce(), lo = nonce();
        // Start with the variant this server answered last time: one round trip per reconnect.
        for (int variant = identity_variant_; variant < identity_variants; ++variant) {
            result r;
            bool cut = false;
            diagnostics qd;
            const std::string q = identity_query(variant, hi, lo);
            const bool ok = guarded(bound, cut, [&] { return traits::execute(session_, q, &r, qd); });
            if (ok && !cut && parse_session_facts(r, hi, lo, facts)) {
                identity_variant_ = variant;
                return true;
            }
            if (cut || (!ok && broken(qd))) {
                d = qd;
                return cut_or(d, "reading the session's settings");
            }
        }
        facts = session_facts{};  // a server that answers none of them: usable, just not fenceable
        return true;
    }

    // 64 random bits per call: process-wide seed (random_device once) and a counter.
    static std::uint64_t nonce() noexcept {
        static const std::uint64_t seed = [] {
            std::random_device rd;
            return (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ entropy_seed(&rd);
        }();
        static std::atomic<std::uint64_t> counter{0};
        return splitmix64(seed + 0x9e3779b97f4a7c15ull * ++counter)();
    }

    bool cut_or(diagnostics& d, std::string_view what) {
        if (d.code == 0) cut_account(d, what);
        return false;
    }

    // lifeline's account of a call it cut at the deadline (or the call's io timeout), and of the
    // stop it queued on the server.
    void cut_account(diagnostics& d, std::string_view what) {
        if (d.code == 0) {
            d.code = code::cr_server_lost;  // what the driver reports for the socket lifeline shut down
            d.sqlstate = "HY000";
        }
        d.client_message = std::string(cut_by_io_timeout_ ? "lifeline's io_timeout (call_options::io_timeout) cut "
                                                           : "lifeline's deadline cut ") +
                           std::string(what) + " (the socket was shut down)" + cut_note_;
    }

    // After the watchdog cut a call: stop what the session may still be running on the server.
    void on_cut(bool by_io_timeout) {
        cut_by_io_timeout_ = by_io_timeout;
        cut_note_.clear();
        if (!stop_on_cut_) return;
        if (current_.id == 0 || !current_.server.known) {
            cut_note_ = "; the server may still be running it (the session's identity is unknown, so lifeline does "
                        "not stop it there)";
            return;
        }
        const connect_options options = options_;
        const session_ref target = current_;
        const bool queued = reaper::instance().submit([options, target] { stop_cut_session<Driver>(options, target); });
        cut_note_ = queued ? "; lifeline is stopping it on the server: KILL CONNECTION " + std::to_string(target.id) +
                                 " from a side connection, once it has proved that session is this one"
                           : "; the server may still be running it (lifeline's queue of statements to stop is full)";
    }

    bool broken(const diagnostics& d) const noexcept {
        return classify(failure{d.code, d.sqlstate, d.where, false, server_.flavor, server_.galera}).connection ==
               connection_state::broken;
    }

    connected refused(connected& e, const connect_refused& r) {
        e.diag = diagnostics{};
        e.diag.where = phase::connect;
        e.diag.client_message = r.why;
        e.config_error = true;
        close();
        return e;
    }

    // After the driver connected (or a handle was adopted): the per-session setup and facts.
    connected set_up(const deadline& bound, const spec_type& spec, std::uint64_t seed, connected& e) {
        if (traits::reconnect_option_enabled(session_)) {
            e.ok = true;
            e.reconnect_option = true;
            close();
            return e;
        }
        // Best effort: a socket that refuses the options still works, only without the early
        // detection of dropped connections.
        (void)apply_tcp_options(traits::socket_fd(session_), options_);
        if (!restore(bound, spec, e.diag)) {
            e.diag.where = phase::connect;
            close();
            return e;
        }
        session_facts facts;
        if (!learn(bound, facts, e.diag)) {
            e.diag.where = phase::connect;
            close();
            return e;
        }
        e.ok = true;
        e.session = facts.session;
        e.wait_timeout = facts.wait_timeout;
        // What the driver sends is bounded by the smaller of the two limits.
        e.max_allowed_packet = facts.max_allowed_packet;
        if (options_.max_allowed_packet && (e.max_allowed_packet == 0 || options_.max_allowed_packet < e.max_allowed_packet))
            e.max_allowed_packet = options_.max_allowed_packet;
        e.server = facts.server;
        e.seed = seed;
        current_ = facts.session;
        if (facts.server.known()) server_ = facts.server;
        dirty_ = false;
        return e;
    }

    std::optional<std::uint64_t> wire_bytes() noexcept {
        if constexpr (has_wire_bytes<traits>::value) return traits::wire_bytes(session_);
        else return wire_bytes_out(traits::socket_fd(session_));
    }

    // The watchdog runs on the real steady clock; an injected clock only drives the decisions.
    std::chrono::steady_clock::time_point to_steady(const deadline& bound) const {
        if constexpr (std::is_same_v<Clock, system_clock_source>) {
            return bound.at();  // the same clock: no reading needed
        } else {
            const auto left = bound.remaining(clock_.now());
            return std::chrono::steady_clock::now() + left;
        }
    }

    const connect_options& options_;
    Clock& clock_;
    typename traits::session_type session_{};
    std::shared_ptr<watchdog::slot> slot_;
    std::vector<std::optional<typename statement_type_of<traits>::type>> statements_;
    bool dirty_ = false;
    session_ref current_{};
    server_info server_{};
    int identity_variant_ = 0;
    std::chrono::milliseconds io_cap_{0};
    bool stop_on_cut_ = true;
    bool cut_by_io_timeout_ = false;
    std::string cut_note_;
};

template <class Driver>
void stop_cut_session(const connect_options& options, const session_ref& target) {
    using native_handle = typename driver_traits<Driver>::native_handle;
    system_clock_source clock;
    session_io<Driver, system_clock_source> io(options, clock);
    io.set_stop_on_cut(false);  // never a stop for the stopper
    const deadline bound = deadline::after(reaper::kStopBudget, clock.now());
    basic_session<native_handle> spec;
    spec.guard_untracked_state = false;
    reaper& r = reaper::instance();
    const connected c = io.connect(bound, spec, 0);
    if (!c.ok || c.reconnect_option) return r.record(reaper::result_kind::failed);
    const fenced f = io.fence(target, bound);
    if (!f.ok) return r.record(reaper::result_kind::failed);
    switch (judge_stop(target, c.session, f)) {
    case stop_verdict::kill: {
        const killed k = io.kill(target, bound);
        return r.record(k.ok ? reaper::result_kind::killed : reaper::result_kind::failed);
    }
    case stop_verdict::gone: return r.record(reaper::result_kind::gone);
    case stop_verdict::not_provable:
    case stop_verdict::other_server: return r.record(reaper::result_kind::refused);
    }
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_SESSION_IO_HPP
