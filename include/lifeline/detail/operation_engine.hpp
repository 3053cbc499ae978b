// lifeline — the sans-I/O engine of one operation: a statement, a prepared statement, a run()
// callable, or just "make the session usable" (ready/connect). See engine_core.hpp for the shape.
//
//   start  -> [probe -> ping?] or connect (retried with backoff) -> [fence -> verify]? -> attempt
//   attempt failed -> classify (Policy) -> decide (Policy) -> retry / verify first / done
//
// The invariant it keeps (tests/unit/engine_test.cpp checks it over event sequences): a
// non-idempotent statement whose outcome is unknown is never sent again unless the old session
// was fenced (killed and gone from the same server process, or that process restarted) and the
// caller's check then said `not_applied`. A run() callable is a black box: unless it is declared
// idempotent, it runs again only when the I/O layer proved that not one byte reached the server
// during it (reach::none); otherwise its failure is an unknown outcome.
#ifndef LIFELINE_DETAIL_OPERATION_ENGINE_HPP
#define LIFELINE_DETAIL_OPERATION_ENGINE_HPP

#include <lifeline/detail/engine_core.hpp>
#include <lifeline/policy.hpp>

namespace lifeline::detail {

struct operation_spec {
    bool sends = true;                   // false: ready()/connect() — make the session usable, send nothing
    bool idempotent = false;             // declared by the caller
    bool can_verify = false;             // the caller gave a verification check
    bool black_box = false;              // run(): lifeline cannot see the statements inside
    std::uint64_t statement_size = 0;    // bytes, for the max_allowed_packet check (0: not applicable)
    bool acknowledges_loss = false;      // BEGIN / START TRANSACTION / ROLLBACK: the caller is starting over
    bool fail_fast = false;              // one connect attempt: do not wait for the server to come back
};

template <class Policy>
class operation_engine : public engine_base<operation_engine<Policy>, Policy> {
    using base = engine_base<operation_engine<Policy>, Policy>;
    friend base;

public:
    operation_engine(const Policy& policy, link_state& state, circuit_breaker& breaker, endpoint_monitor& monitor,
                     retry_gate gate,
                     retry_budget* budget, const operation_spec& spec)
        : base(policy, state, breaker, monitor, gate), budget_(budget), spec_(spec) {}

    next_action start(steady_time now) {
        if (spec_.acknowledges_loss) this->state_.transaction_lost = false;
        if (this->state_.transaction_lost)
            return this->finish(make_error_code(errc::transaction_lost),
                                "a previous statement lost the open transaction; call acknowledge_transaction_lost() "
                                "or issue ROLLBACK/BEGIN");
        if (too_large()) return refuse_too_large();
        if (spec_.sends && budget_) budget_->record_request(now);
        return this->prepare(now);
    }

    using base::resume;

    // What an engine for "make the session usable" (a spec that sends nothing: ready(), a pool's
    // validation on borrow) would conclude at once, with no I/O and no engine built: true only
    // when start() -> prepare() -> after_probe() -> ready() finishes ok without any action (the
    // session is open, seen healthy just now, and due for neither a ping nor a recycle). false:
    // run the engine. Conservative: every doubt answers false.
    static bool ready_at_once(const link_state& s, steady_time now) noexcept {
        return base::seen_just_now(s, now) && ready_if_alive(s, now);
    }
    // Its twin for a session not seen just now: true only when such an engine would finish ok
    // right after a socket probe that found the socket alive, with no other action. The caller
    // probes; only `alive` may skip the engine, and it tells the health tracker as
    // resume(probed) does. Conservative: every doubt answers false.
    static bool ready_if_alive(const link_state& s, steady_time now) noexcept {
        return !s.transaction_lost && s.open && s.health.before_use(now, socket_status::alive) == health_action::use;
    }

    next_action resume(const verified& e, steady_time /*now*/) {
        if (e.failed) {
            if (e.connection_lost) this->state_.open = false;
            this->diag_ = e.diag;
            return this->finish(make_error_code(errc::verification_failed),
                                "the verification check failed, so whether the statement ran is still unknown");
        }
        switch (e.check) {
        case write_check::applied:
            verified_ = true;
            return this->finish_ok();
        case write_check::unknown:
            return this->finish(make_error_code(errc::outcome_unknown),
                                "the verification check could not tell whether the statement was applied");
        case write_check::not_applied:
            break;
        }
        verify_pending_ = false;
        unknown_pending_ = false;  // proven not applied, with the old session fenced: safe to send
        return send();
    }

    next_action resume(const attempted& e, steady_time now) {
        link_state& st = this->state_;
        st.open = e.open_after;
        if (e.lock_uncertain) st.current.lock_certain = false;
        if (e.ok) {
            st.in_transaction = e.in_txn_after;
            // A reply that beat the watchdog's shutdown by a hair leaves a dead socket: the next
            // use must poll it, so the bypass window is not opened.
            if (!e.cut) st.health.on_used(now);
            if (e.untracked_change) st.untracked_state = true;
            return this->finish_ok();
        }
        this->diag_ = e.diag;
        if (e.usage_error) {
            if (!e.open_after && e.in_txn_before) st.transaction_lost = true;
            st.in_transaction = e.open_after && e.in_txn_after;
            return this->finish(make_error_code(errc::invalid_option), "refused before sending");
        }
        classification c = this->policy_.classify(
            failure{e.diag.code, e.diag.sqlstate, e.diag.where, e.in_txn_before, st.server.flavor, st.server.galera});
        if (e.cut) c.connection = connection_state::broken;  // lifeline shut the socket down
        if (e.nothing_ran || (spec_.black_box && e.reached == reach::none)) {
            c = not_executed(c);
        } else if (spec_.black_box && !spec_.idempotent && retry_minded(c)) {
            // The callable's earlier statements may have taken effect: its last error says
            // nothing about them.
            c.statement = outcome::unknown;
            c.action = remedy::verify_then_retry;
        }
        this->class_ = c;
        if (c.connection == connection_state::broken) {
            if (e.in_txn_before) st.transaction_lost = true;
            st.open = false;
            st.in_transaction = false;
        } else {
            st.in_transaction = e.in_txn_after;
        }
        const decision dec =
            this->policy_.decide(c, decision_input{spec_.idempotent, spec_.can_verify, e.in_txn_before, st.can_reroute});
        // A callable that failed inside a transaction it began itself (its COMMIT never ran): the
        // next BEGIN or DDL on this session would commit that transaction implicitly. Unless the
        // caller is told the outcome is unknown (then it stays open, in_transaction() says so,
        // and the caller decides), the session is closed and the server rolls it back: before a
        // definite "failed" (which must stay true) and before any retry (which starts clean).
        const bool own_txn_open = spec_.black_box && st.open && st.in_transaction && !e.in_txn_before;
        if (dec.step == next_step::fail) {
            std::error_code ec = dec.error ? dec.error : make_driver_error_code(e.diag.code);
            if (!ec) ec = make_error_code(errc::outcome_unknown);  // a driver that failed without a number
            if (e.cut && !dec.error) ec = make_error_code(errc::deadline_exceeded);
            if (ec == errc::transaction_lost) st.transaction_lost = true;
            if (ec == errc::outcome_unknown && c.connection == connection_state::broken) st.open = false;
            if (own_txn_open && !base::is_unknown_family(ec) && !unknown_pending_) {
                st.open = false;
                st.in_transaction = false;
            }
            return this->finish(ec, dec.why);
        }
        if (own_txn_open) {
            st.open = false;
            st.in_transaction = false;
        }
        if (dec.step == next_step::verify_then_retry) {
            // Verify on a new session, after the old one is shut out: it may still be running the
            // statement (waiting for a lock, say) and commit it after the check.
            verify_pending_ = true;
            unknown_pending_ = true;
            this->arm_fence(st.current);
            st.open = false;
        }
        // Failover: the server refused as read-only; the next connect finds the writer (cluster.hpp).
        if (dec.step == next_step::retry && c.action == remedy::reroute_to_primary) st.open = false;
        // Failover: a Galera node that is not ready (1047) serves nothing until it rejoins; on one
        // server lifeline waits on the same session, with a host list another node can serve now.
        if (dec.step == next_step::retry && st.cluster && e.diag.code == code::er_unknown_com_error) st.open = false;
        if (c.statement == outcome::unknown && !spec_.idempotent) unknown_pending_ = true;
        const bool backoff = dec.backoff || sends_ > 1 || c.connection == connection_state::usable;
        const gate_verdict v = this->gate_.next(now, sends_, backoff);
        if (v.stop != stop_reason::none) return this->finish(stop_code(v.stop, e.diag.code), "not retried", stop_text(v.stop));
        return this->wait(v.delay, base::after::prepare, dec.why);
    }

    unsigned attempts() const noexcept { return sends_; }
    bool verified_applied() const noexcept { return verified_; }

private:
    // engine_base's continuation: the session is usable.
    next_action ready(steady_time now) {
        if (!spec_.sends) return this->finish_ok();
        if (too_large()) return refuse_too_large();  // learnt at this call's connect
        if (this->fence_pending_) return this->fence_or_continue(now);
        if (verify_pending_) return act(action_type::verify, this->gate_.until());
        return send();
    }
    std::error_code unknown_error() const noexcept { return make_error_code(errc::outcome_unknown); }
    bool outcome_pending() const noexcept { return unknown_pending_; }
    bool fail_fast() const noexcept { return spec_.fail_fast; }
    bool probe_bypass_allowed() const noexcept { return true; }

    next_action send() {
        ++sends_;
        return act(action_type::attempt, this->gate_.until());
    }

    bool too_large() const noexcept {
        const auto limit = this->state_.max_allowed_packet;
        return spec_.statement_size && limit && spec_.statement_size + 1 > limit;
    }
    next_action refuse_too_large() {
        this->diag_ = diagnostics{};
        this->diag_.where = phase::send;
        this->diag_.client_message = "statement of " + std::to_string(spec_.statement_size) +
                                     " bytes exceeds the server's max_allowed_packet of " +
                                     std::to_string(this->state_.max_allowed_packet) + "; nothing was sent";
        return this->finish(make_error_code(errc::statement_too_large), "refused before sending");
    }

    // Would a retry be considered for this failure (as opposed to "failed for good")?
    static bool retry_minded(const classification& c) noexcept {
        return c.statement != outcome::failed && c.action != remedy::do_not_retry && c.action != remedy::shrink_payload;
    }
    static classification not_executed(classification c) noexcept {
        if (c.statement == outcome::failed || c.statement == outcome::not_executed) return c;
        c.statement = outcome::not_executed;
        c.action = c.connection == connection_state::broken ? remedy::reconnect_and_retry : remedy::retry_after_backoff;
        return c;
    }

    retry_budget* budget_;
    operation_spec spec_;
    unsigned sends_ = 0;
    bool verify_pending_ = false;
    bool unknown_pending_ = false;  // a non-idempotent statement may have run: any stop is outcome_unknown
    bool verified_ = false;
};

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_OPERATION_ENGINE_HPP
