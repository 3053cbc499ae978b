// lifeline — the sans-I/O engine of one transaction() call: replay, poisoning, implicit-commit
// detection and the lost COMMIT's resolution. See engine_core.hpp for the shape.
//
//   ready -> begin (START TRANSACTION, token row) -> body (the caller's function) -> commit
//   a statement in the body failed (even if the function swallowed the exception)
//        -> the transaction is poisoned: later statements are refused unsent, COMMIT is never
//           sent; roll back (or the server did, with the connection) and replay or report
//   the session left the transaction during the body (DDL, LOCK TABLES, ...)
//        -> errc::implicit_commit: what ran before is durable, nothing after it ran
//   COMMIT's answer lost -> reconnect, fence the old session (same server process only),
//        look the token up: committed, or not (then replayed if replayable); commit_unknown
//        only if that cannot finish by the deadline or on that server
#ifndef LIFELINE_DETAIL_TRANSACTION_ENGINE_HPP
#define LIFELINE_DETAIL_TRANSACTION_ENGINE_HPP

#include <lifeline/detail/engine_core.hpp>
#include <lifeline/policy.hpp>
#include <lifeline/transaction.hpp>

namespace lifeline::detail {

// Events of the transaction's own steps.
struct began {
    bool ok = false;
    diagnostics diag{};
    bool cut = false;
    bool open_after = true;
};
struct body_done {
    bool threw = false;  // the function's own exception (not a lifeline statement failure)
};
struct committed {
    bool ok = false;
    diagnostics diag{};
    bool cut = false;
    bool open_after = true;
};
struct rolled_back {
    bool ok = false;
};
struct looked_up {
    bool ok = false;      // false: the lookup itself failed (diag)
    bool found = false;   // the token row exists: the transaction committed
    diagnostics diag{};
    bool open_after = true;
};
// One statement inside the body, as the I/O layer saw it.
struct statement_done {
    bool ok = false;
    diagnostics diag{};
    bool cut = false;
    bool open_after = true;
    bool in_txn_after = true;  // false after success: the statement ended the transaction
};

template <class Policy>
class transaction_engine : public engine_base<transaction_engine<Policy>, Policy> {
    using base = engine_base<transaction_engine<Policy>, Policy>;
    friend base;

public:
    transaction_engine(const Policy& policy, link_state& state, circuit_breaker& breaker, endpoint_monitor& monitor,
                     retry_gate gate,
                       retry_budget* budget, const transaction_options& options)
        : base(policy, state, breaker, monitor, gate), budget_(budget), opt_(options) {}

    next_action start(steady_time now) {
        this->state_.transaction_lost = false;  // starting a new transaction acknowledges an earlier loss
        if (budget_) budget_->record_request(now);
        return this->prepare(now);
    }

    using base::resume;

    next_action resume(const began& e, steady_time now) {
        this->state_.open = e.open_after;
        if (e.ok) {
            this->state_.in_transaction = true;
            return act(action_type::body, this->gate_.until());
        }
        // Nothing of the function ran: starting again is safe whatever the declaration.
        this->diag_ = e.diag;
        classification c = this->policy_.classify(failure{e.diag.code, e.diag.sqlstate, e.diag.where, false,
                                                          this->state_.server.flavor, this->state_.server.galera});
        if (e.cut) c.connection = connection_state::broken;
        this->class_ = c;
        if (c.connection == connection_state::broken) this->state_.open = false;
        this->state_.in_transaction = false;
        if (c.statement == outcome::failed || c.action == remedy::do_not_retry)
            return this->finish_driver("could not start the transaction");
        // A read-only server refused the token row (or the marker table): failover finds the
        // writer at the next connect; with one server, starting again here fails the same way.
        if (c.action == remedy::reroute_to_primary) {
            if (!this->state_.can_reroute)
                return this->finish(make_error_code(errc::read_only_server), "could not start the transaction: the server is read-only");
            this->state_.open = false;
        }
        const gate_verdict v = this->gate_.next(now, 0, true);
        if (v.stop != stop_reason::none)
            return this->finish(stop_code(v.stop, e.diag.code), "could not start the transaction", stop_text(v.stop));
        return this->wait(v.delay, base::after::prepare, "starting the transaction again");
    }

    // Before each statement of the body: false means refuse it unsent (the transaction is poisoned).
    bool statement_allowed() const noexcept { return !poisoned_; }

    // After each statement of the body: false means the body must stop (the I/O layer throws).
    bool statement_finished(const statement_done& e) {
        this->state_.open = e.open_after;
        if (!e.ok) {
            poisoned_ = true;
            failure_ = e.diag;
            failure_cut_ = e.cut;
            return false;
        }
        if (!e.in_txn_after) {
            poisoned_ = true;
            implicit_ = true;
            failure_ = e.diag;  // the I/O layer names the statement in client_message
            this->state_.in_transaction = false;
            return false;
        }
        return true;
    }

    next_action resume(const body_done& e, steady_time now) {
        if (e.threw) {
            // The function's own exception: roll back, then the I/O layer rethrows it. Never replayed.
            abandoning_ = true;
            if (this->state_.open && this->state_.in_transaction) return act(action_type::rollback, this->gate_.until());
            return this->finish_ok();
        }
        if (implicit_) {
            this->diag_ = failure_;
            return this->finish(make_error_code(errc::implicit_commit),
                                "a statement of the transaction function committed the transaction implicitly; "
                                "the work before it is durable, nothing after it ran, COMMIT was not sent");
        }
        if (poisoned_) return failed(failure_, failure_cut_, false, now);
        // COMMIT may use only half of the time left: if its answer never comes, the other half is
        // for reconnecting, fencing the old session and looking the token up, within the deadline.
        next_action a = act(action_type::commit, half_of_remaining(now));
        return a;
    }

    next_action resume(const committed& e, steady_time now) {
        this->state_.open = e.open_after;
        if (e.ok) {
            this->state_.in_transaction = false;
            if (!e.cut) this->state_.health.on_used(now);  // cut: the socket is dead (see operation_engine)
            return this->finish_ok();
        }
        diagnostics d = e.diag;
        // The COMMIT was sent if the failure came after the send: its answer is what was lost.
        if (d.where == phase::read_result || d.where == phase::fetch) d.where = phase::commit;
        if (e.cut && d.where == phase::send && d.code == 0) d.where = phase::commit;
        return failed(d, e.cut, true, now);
    }

    next_action resume(const rolled_back& e, steady_time now) {
        if (!e.ok) this->state_.open = false;  // a session that cannot roll back is not reused
        this->state_.in_transaction = false;
        if (abandoning_) return this->finish_ok();
        return replay_or_stop(now);
    }

    next_action resume(const looked_up& e, steady_time now) {
        this->state_.open = e.open_after;
        if (!e.ok) {
            this->diag_ = e.diag;
            this->state_.open = false;
            return this->retry_connect(now, "the token lookup failed");
        }
        lookup_pending_ = false;
        lost_commit_ = false;
        commit_resolved_ = true;
        if (e.found) return this->finish_ok();
        // Certainly not committed (the old session is fenced): replay if allowed.
        resolved_not_committed_ = true;
        return replay_or_stop(now);
    }

    unsigned runs() const noexcept { return runs_; }
    unsigned attempts() const noexcept { return runs_; }
    bool commit_resolved() const noexcept { return commit_resolved_; }
    // Lifeline's account of the failure that poisoned the body (for the exception message).
    const diagnostics& body_failure() const noexcept { return failure_; }

private:
    next_action ready(steady_time now) {
        if (this->fence_pending_) return this->fence_or_continue(now);
        if (lookup_pending_) return act(action_type::lookup, this->gate_.until());
        ++runs_;
        poisoned_ = implicit_ = false;
        failure_ = diagnostics{};
        failure_cut_ = false;
        return act(action_type::begin, this->gate_.until());
    }
    std::error_code unknown_error() const noexcept { return make_error_code(errc::commit_unknown); }
    bool outcome_pending() const noexcept { return lost_commit_; }
    bool fail_fast() const noexcept { return false; }
    bool probe_bypass_allowed() const noexcept { return true; }

    deadline half_of_remaining(steady_time now) const noexcept {
        const deadline& d = this->gate_.until();
        if (d.is_none()) return d;
        return deadline::after(d.remaining(now) / 2, now);
    }

    // A statement of the body or the COMMIT failed.
    next_action failed(const diagnostics& d, bool cut, bool at_commit, steady_time now) {
        this->diag_ = d;
        classification c = this->policy_.classify(
            failure{d.code, d.sqlstate, d.where, true, this->state_.server.flavor, this->state_.server.galera});
        if (cut) {
            c.connection = connection_state::broken;
            if (at_commit && c.statement != outcome::not_executed) c.statement = outcome::unknown;
        }
        this->class_ = c;
        if (at_commit && c.statement == outcome::unknown) {
            // The lost COMMIT: the old session is never reused, not even to roll back.
            this->state_.open = false;
            this->state_.in_transaction = false;
            lost_commit_ = true;
            if (!opt_.resolve_commit)
                return this->finish(make_error_code(errc::commit_unknown), "COMMIT's answer was lost; commit resolution is off");
            lookup_pending_ = true;
            this->arm_fence(this->state_.current);
            return this->retry_connect(now, "resolving the lost COMMIT");
        }
        if (c.action == remedy::reroute_to_primary && this->state_.can_reroute) {
            // Failover: the transaction ran on a server that is no longer the writer, which refused
            // it; nothing of it committed. Closing the session rolls it back; replay on the writer.
            this->state_.open = false;
            this->state_.in_transaction = false;
            replay_worthy_ = true;
            return replay_or_stop(now);
        }
        broken_ = c.connection == connection_state::broken;
        // A lock wait timeout rolls back only the statement (1205): replaying the whole is an option.
        replay_worthy_ = c.action == remedy::retry_transaction &&
                         (c.statement != outcome::statement_rolled_back || opt_.replay_on_lock_wait_timeout);
        if (broken_) {
            this->state_.open = false;  // the server rolls the transaction back with the session
            this->state_.in_transaction = false;
            return replay_or_stop(now);
        }
        return act(action_type::rollback, this->gate_.until());
    }

    // The transaction certainly did not commit. Replay it, if allowed and within limits.
    next_action replay_or_stop(steady_time now) {
        if (resolved_not_committed_ && !opt_.replayable)
            return this->finish(make_error_code(errc::transaction_lost),
                                "COMMIT's answer was lost; resolved: not committed; not declared replayable");
        if (!resolved_not_committed_ && !replay_worthy_) {
            std::error_code ec = broken_ ? make_error_code(errc::transaction_lost) : make_driver_error_code(this->diag_.code);
            if (!ec) ec = make_error_code(errc::transaction_lost);
            return this->finish(ec, this->class_.reason);
        }
        if (!opt_.replayable) {
            // A usable connection: the server's own error (1213, 1205) says it best.
            std::error_code ec = broken_ ? make_error_code(errc::transaction_lost) : make_driver_error_code(this->diag_.code);
            if (!ec) ec = make_error_code(errc::transaction_lost);
            return this->finish(ec, "transaction not committed; not declared replayable");
        }
        const gate_verdict v = this->gate_.next(now, runs_, true);
        if (v.stop == stop_reason::attempts)
            return this->finish(make_error_code(errc::transaction_lost), "transaction not committed; replay limit reached");
        if (v.stop != stop_reason::none)
            return this->finish(stop_code(v.stop, 0), "transaction not committed, not replayed", stop_text(v.stop));
        resolved_not_committed_ = broken_ = replay_worthy_ = false;
        return this->wait(v.delay, base::after::prepare, "replaying the transaction");
    }

    retry_budget* budget_;
    transaction_options opt_;
    unsigned runs_ = 0;
    bool poisoned_ = false;
    bool implicit_ = false;
    bool abandoning_ = false;
    bool lost_commit_ = false;      // COMMIT's outcome is unknown until the lookup answers
    bool lookup_pending_ = false;
    bool commit_resolved_ = false;  // a lost COMMIT was resolved during this call (reported)
    bool resolved_not_committed_ = false;  // ... and this run's COMMIT did not land
    bool broken_ = false;
    bool replay_worthy_ = false;
    bool failure_cut_ = false;
    diagnostics failure_;
};

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_TRANSACTION_ENGINE_HPP
