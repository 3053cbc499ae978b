// lifeline — the sans-I/O core shared by the operation and transaction engines.
//
// An engine never touches a driver, a socket or a clock: the I/O layer (blocking: connection.hpp;
// async: async_connection.hpp) asks it for the next action, executes it, and feeds back what
// happened together with the current time:
//
//     auto a = engine.start(now);
//     while (a.type != action_type::done) { ...execute a...; a = engine.resume(<event>, now); }
//
// So every decision (classify, decide, retry or stop, fence, verify) is made here, once, and is
// unit-tested as event sequences with no threads and no real clock (tests/unit/engine_test.cpp).
//
// This header holds what both engines share: the actions and events, the connection's persistent
// state (`link_state`), the single place where a retry is allowed or stopped (`retry_gate`), and
// `engine_base`, which makes the session usable (socket probe, ping after the idle window,
// connect + session restore, with retries) and fences an old session before anything may be
// re-sent.
#ifndef LIFELINE_DETAIL_ENGINE_CORE_HPP
#define LIFELINE_DETAIL_ENGINE_CORE_HPP

#include <lifeline/backoff.hpp>
#include <lifeline/circuit_breaker.hpp>
#include <lifeline/classification.hpp>
#include <lifeline/clock.hpp>
#include <lifeline/deadline.hpp>
#include <lifeline/declaration.hpp>
#include <lifeline/endpoint_monitor.hpp>
#include <lifeline/detail/server_identity.hpp>
#include <lifeline/error.hpp>
#include <lifeline/health.hpp>
#include <lifeline/observer.hpp>
#include <lifeline/retry_budget.hpp>
#include <lifeline/server_info.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace lifeline::detail {

// --- actions ---------------------------------------------------------------------------------
enum class action_type : std::uint8_t {
    probe,     // poll the session's socket (no round trip)            -> resume(probed)
    ping,      // COM_PING                                               -> resume(pinged)
    connect,   // close the old session, connect, restore the session   -> resume(connected)
    fence,     // on the current session: inspect the old session `target`    -> resume(fenced)
    kill,      // KILL CONNECTION target.id (shown to be ours by fence)    -> resume(killed)
    verify,    // run the caller's check                                 -> resume(verified)
    attempt,   // send the statement / run the callable                  -> resume(attempted)
    begin,     // transaction: START TRANSACTION (+ token row)           -> resume(began)
    body,      // transaction: run the function                          -> resume(body_done)
    commit,    // transaction: COMMIT                                    -> resume(committed)
    rollback,  // transaction: ROLLBACK                                  -> resume(rolled_back)
    lookup,    // transaction: look the token up                        -> resume(looked_up)
    wait,      // sleep / timer for `delay`                              -> resume(waited)
    await_endpoint,  // the server is down and another caller probes it: wait up to `delay`
                     // for its verdict (endpoint_monitor::wait_for_change(epoch)) -> resume(waited)
    done,      // finished: `ec` (empty on success); diagnostics in engine.diag()
};

constexpr std::string_view to_string(action_type a) noexcept {
    switch (a) {
    case action_type::probe: return "probe";
    case action_type::ping: return "ping";
    case action_type::connect: return "connect";
    case action_type::fence: return "fence";
    case action_type::kill: return "kill";
    case action_type::verify: return "verify";
    case action_type::attempt: return "attempt";
    case action_type::begin: return "begin";
    case action_type::body: return "body";
    case action_type::commit: return "commit";
    case action_type::rollback: return "rollback";
    case action_type::lookup: return "lookup";
    case action_type::wait: return "wait";
    case action_type::await_endpoint: return "await_endpoint";
    case action_type::done: return "done";
    }
    return "unknown";
}

struct next_action {
    action_type type = action_type::done;
    deadline bound = deadline::none();  // the I/O step must end by then (watchdog, timer)
    duration delay{};                   // wait: how long
    session_ref target{};               // fence, kill: the old session
    std::uint64_t epoch = 0;            // await_endpoint: the monitor's state it waits to change
    std::error_code ec;                 // done: the result (empty: success)
    // Failover (cluster.hpp): fence `target`, which lived on another server than the current
    // session (the writer changed). The I/O layer gathers the evidence of judge_failover() instead
    // of looking the session up here; an I/O layer that cannot answers fenced{} (= unknown).
    bool across_servers = false;
};

inline next_action act(action_type t, const deadline& bound) noexcept {
    next_action a;
    a.type = t;
    a.bound = bound;
    return a;
}

// --- events ------------------------------------------------------------------------------------
struct probed {
    socket_status socket = socket_status::unknown;
};
struct pinged {
    bool ok = false;
    diagnostics diag{};
};
struct connected {
    bool ok = false;
    diagnostics diag{};
    session_ref session{};                // the new session (id + server identity)
    duration wait_timeout{};              // @@wait_timeout (0: unknown)
    std::uint64_t max_allowed_packet = 0; // @@max_allowed_packet (0: unknown)
    std::uint64_t seed = 0;               // picks the session's lifetime jitter
    bool reconnect_option = false;        // the driver turned OPT_RECONNECT on behind our back
    server_info server{};                 // flavour and version (unknown if not learnt)
    bool config_error = false;            // the options cannot work (refused by a hook, ...): not retried
};
// What the server says about the old session (fence_inspect_sql): facts, the engine decides.
struct fenced {
    bool ok = false;               // the inspection ran (false: see connection_lost and diag)
    bool connection_lost = false;  // the inspecting session itself broke
    std::uint64_t lock_holder = 0; // who holds the old session's lock (0: nobody)
    bool locks_unsupported = false;// the server refused the lock function (no answer from it)
    bool present = false;          // a session with the old session's id is on the server
    bool present_is_ours = false;  // ... logged in as lifeline's account
    diagnostics diag{};
    // Failover (across_servers, cluster.hpp judge_failover): facts about the old and new writer.
    bool old_server_fenced = false;         // the old writer cannot commit any more
    bool acknowledged_replicated = false;   // what the old writer acknowledged reached another server
    bool new_server_covers = false;         // the new writer has applied everything any reachable server has
};
struct killed {
    bool ok = false;               // KILL went through, or the session was already gone (1094)
    bool connection_lost = false;
    diagnostics diag{};
};
struct verified {
    write_check check = write_check::unknown;
    bool failed = false;           // the check threw or its statement failed
    bool connection_lost = false;  // ... and the session is gone
    diagnostics diag{};
};
// Whether a failed attempt put anything on the wire (run()'s callables are black boxes).
enum class reach : std::uint8_t {
    none,     // proven: not one byte left for the server during the attempt
    some,     // bytes were written
    unknown,  // cannot tell (no byte counters, the socket changed, ...)
};
struct attempted {
    bool ok = false;
    diagnostics diag{};
    bool cut = false;               // the deadline cut it (the watchdog shut the socket down)
    reach reached = reach::unknown; // for black boxes; ignored for lifeline's own statements
    bool in_txn_before = false;     // a transaction was open (or autocommit off) before it
    bool in_txn_after = false;      // ... after it (meaningful when the session is still open)
    bool open_after = true;         // the session survived (false: the driver or lifeline closed it)
    bool untracked_change = false;  // the server reported unregistered session state changes
    bool nothing_ran = false;       // proven not executed (e.g. the prepare step failed)
    bool lock_uncertain = false;    // the session's lock may have been released (a black box ran)
    bool usage_error = false;       // refused before sending (e.g. wrong parameter count): diag says why
};
struct waited {};

// --- the connection's state between operations --------------------------------------------------
struct link_state {
    bool open = false;                  // a driver session exists (the I/O layer closes it when false)
    bool in_transaction = false;        // a transaction was open at the last contact (conservative)
    bool transaction_lost = false;      // sticky until a new transaction, ROLLBACK or acknowledgement
    bool untracked_state = false;       // the server reported session state nobody registered
    bool guard_untracked_state = true;  // report session_state_lost instead of reconnecting silently
    std::uint64_t max_allowed_packet = 0;
    session_ref current{};              // the open session's id and server identity
    server_info server{};               // the server's flavour, learnt at connect (kept across sessions)
    health_tracker health;
    // Failover (cluster.hpp): a host list. The I/O layer picks the server at each connect, so a
    // read-only answer (1290) to a write may be re-sent after reconnecting to the writer, and an
    // old session on a previous writer may be judged across servers (judge_failover).
    bool cluster = false;
    bool can_reroute = false;  // cluster, and this connection's target is the writer

    explicit link_state(const health_policy& h = {}) : health(h) {}
};

// --- the one place where a retry is allowed or stopped -------------------------------------------
enum class stop_reason : std::uint8_t { none, attempts, deadline, budget };

struct gate_verdict {
    stop_reason stop = stop_reason::none;
    duration delay{};
};

// Every retry lifeline makes — a statement, a connect, a transaction replay, a fence poll — asks
// here first. Attempt counts bound sends only; connects and polls are bounded by the deadline
// (and the budget), so a slow restart cannot exhaust an attempt count.
class retry_gate {
public:
    retry_gate(unsigned max_attempts, deadline until, retry_budget* budget, backoff& b) noexcept
        : max_attempts_(max_attempts), until_(until), budget_(budget), backoff_(b) {
        backoff_.reset();
    }

    // After a failure: wait `delay`, then try again, or stop. `sends` = attempts made so far
    // (0 for connects and polls, which no attempt count limits).
    gate_verdict next(steady_time now, unsigned sends, bool wants_backoff) noexcept {
        if (sends > 0 && sends >= max_attempts_) return {stop_reason::attempts, {}};
        if (until_.expired(now)) return {stop_reason::deadline, {}};
        if (budget_ && !budget_->try_acquire_retry(now)) return {stop_reason::budget, {}};
        const duration d = wants_backoff ? backoff_.next() : duration::zero();
        if (!until_.is_none() && d >= until_.remaining(now)) return {stop_reason::deadline, {}};
        return {stop_reason::none, d};
    }
    // Waiting for something the server does by itself (a killed session leaving): no budget,
    // no attempt count; only the deadline.
    gate_verdict poll(steady_time now, duration interval) const noexcept {
        if (until_.expired(now) || (!until_.is_none() && interval >= until_.remaining(now)))
            return {stop_reason::deadline, {}};
        return {stop_reason::none, interval};
    }
    bool expired(steady_time now) const noexcept { return until_.expired(now); }
    const deadline& until() const noexcept { return until_; }
    unsigned max_attempts() const noexcept { return max_attempts_; }

private:
    unsigned max_attempts_;
    deadline until_;
    retry_budget* budget_;
    backoff& backoff_;
};

constexpr std::string_view stop_text(stop_reason r) noexcept {
    switch (r) {
    case stop_reason::none: break;
    case stop_reason::attempts: return "the attempt limit (retry.max_attempts) was reached";
    case stop_reason::deadline: return "the deadline passed";
    case stop_reason::budget: return "the retry budget is exhausted";
    }
    return {};
}

inline std::error_code stop_code(stop_reason r, unsigned driver_code) noexcept {
    switch (r) {
    case stop_reason::none: break;
    case stop_reason::attempts: return make_driver_error_code(driver_code);
    case stop_reason::deadline: return make_error_code(errc::deadline_exceeded);
    case stop_reason::budget: return make_error_code(errc::retry_budget_exhausted);
    }
    return {};
}

// The shared parts of the two engines (see the top of this file). Derived provides:
//   next_action ready(steady_time)              the session is usable: continue
//   std::error_code unknown_error() const       what an unfinished fence/verification means
//   bool outcome_pending() const                something may have run: every failure to finish
//                                               is then unknown_error(), whatever stopped it
//   bool fail_fast() const                      one connect attempt, no connect retries
//   bool probe_bypass_allowed() const           a session seen healthy just now may skip the socket probe
template <class Derived, class Policy>
class engine_base {
public:
    // The result once done: diagnostics of the failure (server text and lifeline's account).
    const diagnostics& diag() const noexcept { return diag_; }
    // Why the last decision was taken (for observers); static text.
    std::string_view why() const noexcept { return why_; }
    // The classification of the last failure (for observers).
    const classification& last_classification() const noexcept { return class_; }
    bool finished() const noexcept { return finished_; }
    // Why the last connect action was asked for.
    reconnect_cause cause() const noexcept { return cause_; }

    next_action resume(const probed& e, steady_time now) {
        // Only a real look counts: the bypass below must not renew its own window.
        if (e.socket == socket_status::alive) state_.health.on_seen_alive(now);
        return after_probe(e.socket, now);
    }

private:
    next_action after_probe(socket_status socket, steady_time now) {
        if (!state_.open) return connect(now, "not connected", reconnect_cause::not_connected);
        health_action a = state_.health.before_use(now, socket);
        // Recycling would end an open transaction: keep the session until the transaction ends.
        if (a == health_action::recycle && state_.in_transaction)
            a = state_.health.idle(now) >= state_.health.policy().ping_after_idle ? health_action::ping : health_action::use;
        switch (a) {
        case health_action::use: return self().ready(now);
        case health_action::ping: return act(action_type::ping, gate_.until());
        case health_action::reconnect: return connect(now, "the server closed the connection", reconnect_cause::found_dead);
        case health_action::recycle:
            return connect(now, "recycled (lifetime or before wait_timeout)", reconnect_cause::recycled);
        }
        return connect(now, "not connected", reconnect_cause::not_connected);
    }

public:
    next_action resume(const pinged& e, steady_time now) {
        if (e.ok) {
            state_.health.on_used(now);
            return self().ready(now);
        }
        diag_ = e.diag;
        return connect(now, "ping failed", reconnect_cause::ping_failed);
    }

    next_action resume(const connected& e, steady_time now) {
        if (e.ok && e.reconnect_option) {
            state_.open = false;  // refuse a driver that reconnects behind our back
            return finish(make_error_code(errc::invalid_option),
                          "the driver enabled OPT_RECONNECT; lifeline never uses it (it loses the session silently)");
        }
        if (!e.ok && e.config_error) {
            // The options cannot work (a refusing pre_connect hook, ...): the server is not to blame.
            monitor_.on_result(now, false, false, token_);
            token_ = false;
            state_.open = false;
            diag_ = e.diag;
            diag_.where = phase::connect;
            return finish(make_error_code(errc::invalid_option), "could not connect with these options");
        }
        // A refusal no retry can help (a failed TLS verification, an authentication plugin) is the
        // configuration's fault, not a sign that the server is down.
        const bool permanent = !e.ok && policy_.classify(failure{e.diag.code, e.diag.sqlstate, phase::connect, false,
                                                                 state_.server.flavor, state_.server.galera})
                                                .action == remedy::do_not_retry;
        const bool connectivity = !e.ok && !permanent && connectivity_failure(e.diag.code);
        monitor_.on_result(now, e.ok, connectivity, token_);
        token_ = false;
        if (e.ok) {
            breaker_.on_success(now);
            state_.open = true;
            state_.in_transaction = false;
            state_.untracked_state = false;
            state_.current = e.session;
            if (e.server.known()) state_.server = e.server;
            if (e.max_allowed_packet) state_.max_allowed_packet = e.max_allowed_packet;
            state_.health.on_connected(now, e.wait_timeout, e.seed);
            return self().ready(now);
        }
        state_.open = false;
        diag_ = e.diag;
        diag_.where = phase::connect;
        class_ = policy_.classify(
            failure{e.diag.code, e.diag.sqlstate, phase::connect, false, state_.server.flavor, state_.server.galera});
        if (class_.action == remedy::do_not_retry) return finish_driver(class_.reason);
        if (self().fail_fast()) return finish_driver("could not connect (fail_fast: one connect attempt)");
        // The server is not there: the endpoint's monitor paces the next try (one prober for the
        // whole process), so no backoff or retry budget is spent here.
        if (connectivity) return connect(now, "connect failed", reconnect_cause::not_connected);
        // It answered, and said no (too many connections, host blocked, ...): back off, and let
        // the breaker count it.
        breaker_.on_failure(now);
        const gate_verdict v = gate_.next(now, 0, true);
        if (v.stop != stop_reason::none) return finish(stop_code(v.stop, diag_.code), "could not connect", stop_text(v.stop));
        return wait(v.delay, after::prepare, "connect refused by the server");
    }

    // Refused, unreachable, handshake lost, the server shutting down: nobody is serving there.
    // Anything else the server said (access denied, too many connections) means it is up.
    static bool connectivity_failure(unsigned code) noexcept {
        return code == 0 || detail::is_client_code(code) || code == code::er_server_shutdown;
    }

    next_action resume(const fenced& e, steady_time now) {
        if (across_) return fenced_across(e, now);
        if (!e.ok) {
            diag_ = e.diag;
            if (e.connection_lost) {
                state_.open = false;
                return retry_connect(now, "lost the connection while fencing");
            }
            return finish(self().unknown_error(), "could not look the old session up on the server");
        }
        const session_ref& t = fence_target_;
        if (t.has_lock() && !e.locks_unsupported && e.lock_holder != 0) {
            if (e.lock_holder == t.id) return kill_target();  // alive, and certainly lifeline's own
            return finish(self().unknown_error(), "another session holds the old session's lock");
        }
        if (!e.present) return fenced_off(now);  // nobody carries its id: it has ended
        // Some session carries the old id but does not hold its lock.
        if (t.has_lock() && t.lock_certain && !e.locks_unsupported)
            return fenced_off(now);  // the old one would hold its lock: this is another session (a restart)
        switch (judge(t, state_.current)) {
        case process_verdict::restarted: return fenced_off(now);
        case process_verdict::same_server:
            return finish(self().unknown_error(),
                          "a session carries the old session's id and the server's start instant is unknown: not killed");
        case process_verdict::same_process:
            if (e.present_is_ours && !t.has_lock()) return kill_target();  // no lock to go by: the id, the account
            return finish(self().unknown_error(),
                          e.present_is_ours
                              ? "the old session's id is in use but lifeline cannot prove the session is its own "
                                "(its lock may have been released by the caller's code): not killed"
                              : "the old session's id belongs to another account on this server: not killed");
        case process_verdict::different_server:
        case process_verdict::unknown: break;
        }
        return finish(self().unknown_error(), "the old session cannot be identified on this server");
    }

    next_action resume(const killed& e, steady_time now) {
        if (!e.ok) {
            diag_ = e.diag;
            if (e.connection_lost) {
                state_.open = false;
                return retry_connect(now, "lost the connection while fencing");
            }
            return finish(self().unknown_error(), "could not shut the old session out (KILL failed)");
        }
        // It may still be rolling back; look again until it has left the server.
        poll_interval_ = std::min<duration>(poll_interval_ * 2, std::chrono::milliseconds(50));
        const gate_verdict v = gate_.poll(now, poll_interval_);
        if (v.stop != stop_reason::none)
            return finish(self().unknown_error(), "the old session was killed but had not left the server by the deadline");
        return wait(v.delay, after::prepare, "waiting for the killed session to leave the server");
    }

    next_action resume(const waited&, steady_time now) {
        switch (after_wait_) {
        case after::prepare: return prepare(now);
        case after::ready: return self().ready(now);
        }
        return prepare(now);
    }

protected:
    enum class after : std::uint8_t { prepare, ready };

    engine_base(const Policy& p, link_state& s, circuit_breaker& b, endpoint_monitor& m, retry_gate g)
        : policy_(p), state_(s), breaker_(b), monitor_(m), gate_(g) {}

    Derived& self() noexcept { return static_cast<Derived&>(*this); }

    // Seen healthy a moment ago (a round trip completed, or a poll found it alive): no need to poll again.
    static bool seen_just_now(const link_state& s, steady_time now) noexcept {
        const duration bypass = s.health.policy().probe_bypass;
        return bypass.count() > 0 && s.health.connected() && s.health.unseen(now) < bypass;
    }

    // Make the session usable: probe an open one, connect otherwise.
    next_action prepare(steady_time now) {
        if (!state_.open) return connect(now, "not connected", reconnect_cause::not_connected);
        if (self().probe_bypass_allowed() && seen_just_now(state_, now)) return after_probe(socket_status::alive, now);
        return act(action_type::probe, gate_.until());
    }

    next_action connect(steady_time now, std::string_view reason, lifeline::reconnect_cause cause) {
        why_ = reason;
        cause_ = cause;
        if (state_.open && state_.in_transaction) {
            // The transaction lived in the old session: a new one would silently run the next
            // statements in autocommit mode (the mysql_reconnect trap). Report it instead.
            state_.open = false;
            state_.transaction_lost = true;
            diag_.where = phase::connect;
            return finish(make_error_code(errc::transaction_lost), "the connection died inside an open transaction");
        }
        state_.open = false;
        if (state_.untracked_state && state_.guard_untracked_state) {
            state_.untracked_state = false;  // reported once; the next call continues on a fresh session
            diag_.where = phase::connect;
            return finish(make_error_code(errc::session_state_lost),
                          "the connection was lost with session state lifeline was not asked to keep (user "
                          "variables, temporary tables or prepared statements); register it in session() to have "
                          "it restored");
        }
        if (!breaker_.allow(now)) {
            diag_.where = phase::connect;
            return finish(make_error_code(errc::circuit_open), "the circuit breaker is open after repeated refusals");
        }
        if (gate_.expired(now))
            return finish(make_error_code(errc::deadline_exceeded),
                          monitor_.down() ? "the server did not accept connections before the deadline"
                                          : "no time left to connect");
        const duration left = gate_.until().is_none() ? duration::max() : gate_.until().remaining(now);
        const endpoint_monitor::answer ans = monitor_.request(now, left);
        if (ans.v == endpoint_monitor::verdict::go) {
            token_ = ans.token;
            return act(action_type::connect, gate_.until());
        }
        if (self().fail_fast()) {
            diag_.where = phase::connect;
            return finish(make_error_code(errc::server_unavailable), "the server is not accepting connections");
        }
        // Wait for the prober's verdict (or the next probe), within the deadline.
        why_ = "waiting for the server to accept connections again";
        after_wait_ = after::prepare;
        next_action a = act(action_type::await_endpoint, gate_.until());
        a.delay = std::min(ans.at > now ? duration(ans.at - now) : duration::zero(), left);
        a.epoch = ans.epoch;
        return a;
    }

    // Connect again after a failure that broke the session while lifeline itself was talking.
    next_action retry_connect(steady_time now, std::string_view reason) {
        const gate_verdict v = gate_.next(now, 0, true);
        if (v.stop != stop_reason::none) return finish(stop_code(v.stop, diag_.code), reason, stop_text(v.stop));
        return wait(v.delay, after::prepare, reason);
    }

    // Before re-sending anything after an unknown outcome: shut the old session out.
    next_action fence_or_continue(steady_time now) {
        switch (judge(fence_target_, state_.current)) {
        case process_verdict::restarted: return fenced_off(now);  // it died with the old process
        case process_verdict::different_server:
            if (state_.cluster) {  // failover: gather the evidence across the servers (cluster.hpp)
                next_action a = act(action_type::fence, gate_.until());
                a.target = fence_target_;
                a.across_servers = true;
                across_ = true;
                return a;
            }
            return finish(self().unknown_error(),
                          "reconnected to a different server than the one that ran the statement: its fate cannot "
                          "be checked there");
        case process_verdict::unknown:
            return finish(self().unknown_error(), "the server's identity is unknown, so the old session cannot be fenced");
        case process_verdict::same_server:
        case process_verdict::same_process: break;
        }
        next_action a = act(action_type::fence, gate_.until());
        a.target = fence_target_;
        return a;
    }
    // Failover: the old session lived on the previous writer; the I/O layer asked every server
    // (cluster_io.hpp) and judge_failover() weighed it. Its fate may be read on the new writer
    // only if the old writer cannot commit any more and the new one has everything it acknowledged.
    next_action fenced_across(const fenced& e, steady_time now) {
        across_ = false;
        diag_ = e.diag;
        if (!e.ok) {
            if (e.connection_lost) {
                state_.open = false;
                return retry_connect(now, "lost the connection while checking the failover");
            }
            return finish(self().unknown_error(), "the writer changed and the servers could not be asked about it");
        }
        if (!e.old_server_fenced)
            return finish(self().unknown_error(),
                          "the writer changed while the old writer is still writable: the old session may still "
                          "commit there");
        if (!e.acknowledged_replicated)
            return finish(self().unknown_error(),
                          "the writer changed and nothing shows that what the old writer acknowledged reached "
                          "another server (semi-sync off or unknown)");
        if (!e.new_server_covers)
            return finish(self().unknown_error(),
                          "the writer changed and the new writer has not applied everything another server has: "
                          "its answer could be wrong");
        diag_ = diagnostics{};
        return fenced_off(now);
    }
    next_action fenced_off(steady_time now) {
        fence_pending_ = false;
        return self().ready(now);
    }
    next_action kill_target() {
        next_action a = act(action_type::kill, gate_.until());
        a.target = fence_target_;
        return a;
    }

    void arm_fence(const session_ref& target) noexcept {
        fence_pending_ = true;
        fence_target_ = target;
        poll_interval_ = std::chrono::milliseconds(1);
    }

    next_action wait(duration d, after next, std::string_view reason) {
        why_ = reason;
        after_wait_ = next;
        next_action a = act(action_type::wait, gate_.until());
        a.delay = d;
        return a;
    }

    // Ends the operation with ec; `why` becomes lifeline's account in diag().client_message.
    // While something may have run (outcome_pending), whatever stopped lifeline — the deadline,
    // the budget, a failed connect — the caller's answer is the unknown outcome, with the reason.
    next_action finish(std::error_code ec, std::string_view why, std::string_view detail = {}) {
        finished_ = true;
        why_ = why;
        std::string text(why);
        if (!detail.empty()) {
            text += ": ";
            text += detail;
        }
        if (ec && self_const().outcome_pending() && !is_unknown_family(ec)) {
            text += "; what was sent before may have taken effect, so its outcome stays unknown";
            ec = self_const().unknown_error();
        }
        if (ec) diag_.client_message = diag_.client_message.empty() ? text : text + "; " + diag_.client_message;
        next_action a;
        a.ec = ec;
        return a;
    }
    static bool is_unknown_family(const std::error_code& ec) noexcept {
        return ec == errc::outcome_unknown || ec == errc::commit_unknown || ec == errc::verification_failed;
    }
    next_action finish_driver(std::string_view why) {
        std::error_code ec = make_driver_error_code(diag_.code);
        if (!ec) ec = make_error_code(errc::not_connected);
        return finish(ec, why);
    }
    next_action finish_ok() {
        finished_ = true;
        diag_.clear();  // earlier failed attempts or connects are history now
        return next_action{};
    }

    const Derived& self_const() const noexcept { return static_cast<const Derived&>(*this); }

    const Policy& policy_;
    link_state& state_;
    circuit_breaker& breaker_;
    endpoint_monitor& monitor_;
    retry_gate gate_;
    bool token_ = false;  // this operation's connect is the endpoint's probe
    diagnostics diag_;
    classification class_{connection_state::usable, outcome::not_executed, remedy::do_not_retry, {}};
    std::string_view why_;
    lifeline::reconnect_cause cause_ = lifeline::reconnect_cause::not_connected;
    bool finished_ = false;
    bool fence_pending_ = false;
    bool across_ = false;  // the fence in flight is a failover check (across_servers)
    session_ref fence_target_{};
    duration poll_interval_ = std::chrono::milliseconds(1);
    after after_wait_ = after::prepare;
};

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_ENGINE_CORE_HPP
