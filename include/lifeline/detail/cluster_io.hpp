// lifeline — failover, the I/O half: connect where the cluster view says, ask the server its role,
// report back; gather the evidence judge_failover() weighs. Decides nothing itself: the order of
// the hosts and what an answer means are the view's (cluster.hpp), retrying is the engines'.
#ifndef LIFELINE_DETAIL_CLUSTER_IO_HPP
#define LIFELINE_DETAIL_CLUSTER_IO_HPP

#include <lifeline/cluster.hpp>
#include <lifeline/detail/cluster_sql.hpp>
#include <lifeline/detail/engine_core.hpp>
#include <lifeline/detail/session_io.hpp>

#include <string>
#include <utility>

namespace lifeline::detail {

inline connect_options options_for_host(const connect_options& o, const host_port& h) {
    connect_options one = o;
    one.host = h.host;
    one.port = h.port;
    return one;
}

inline std::string host_text(const host_port& h) {
    return (h.host.find(':') != std::string::npos ? "[" + h.host + "]" : h.host) + ":" + std::to_string(h.port);
}

struct role_probe {
    bool ok = false;
    bool connection_lost = false;
    bool not_ready = false;  // 1047: a Galera node that serves nothing
    role_answer answer{};
    diagnostics diag{};
};

// The role query on `io`'s session, under `bound` (variants for MariaDB, MySQL, anything else).
template <class Driver, class Clock>
role_probe probe_role(session_io<Driver, Clock>& io, const deadline& bound) {
    using traits = driver_traits<Driver>;
    role_probe p;
    for (int variant = 0; variant < role_query_variants; ++variant) {
        result r;
        bool cut = false;
        diagnostics d;
        const std::string q = role_query(variant);
        const bool ok = io.guarded(bound, cut, [&] { return traits::execute(io.session(), q, &r, d); });
        if (ok && !cut && parse_role_answer(r, p.answer)) {
            p.ok = true;
            return p;
        }
        p.diag = d;
        if (d.code == 1047) {  // Galera: this node answers nothing that touches a table
            p.not_ready = true;
            p.answer.facts.galera = true;
            p.answer.facts.rejecting = true;
            return p;
        }
        if (cut || !traits::is_open(io.session()) ||
            classify(failure{d.code, d.sqlstate, d.where, false}).connection == connection_state::broken) {
            p.connection_lost = true;
            if (cut && p.diag.code == 0) p.diag.code = 2013;
            return p;
        }
    }
    return p;
}

// Connect for `want`: try the hosts in the view's order, ask each server its role, keep the first
// session that serves (prefer_replica: a replica, else the writer as the fallback). `chosen` is
// the host. A failure says, per host, what was found.
template <class Driver, class Clock>
connected cluster_connect(session_io<Driver, Clock>& io, cluster_view& view, const connect_options& options,
                          target_role want, const deadline& bound,
                          const typename session_io<Driver, Clock>::spec_type& spec, std::uint64_t seed, Clock& clock,
                          std::size_t& chosen) {
    chosen = static_cast<std::size_t>(-1);
    const std::vector<std::size_t> order = view.candidates(want, clock.now());
    std::string account;
    auto note = [&](std::size_t i, const std::string& what) {
        account += (account.empty() ? "" : "; ") + host_text(view.host(i)) + " " + what;
    };
    bool any_answered = false;   // some server was up and said its role: the role is missing now
    connected refusal;           // a server that answered the connect with an error (not connectivity)
    bool any_refusal = false;
    connected lost;              // the last connectivity failure
    std::size_t fallback = static_cast<std::size_t>(-1);
    auto attempt = [&](std::size_t i, bool as_fallback, bool more_to_try) -> std::optional<connected> {
        const connect_options where = options_for_host(options, view.host(i));
        // While other hosts remain, one may take at most half of the time left (a blackholed host
        // must not eat the whole deadline); the last one gets all of it.
        const steady_time now = clock.now();
        const deadline sub = more_to_try && !bound.is_none() ? deadline::after(bound.remaining(now) / 2, now) : bound;
        connected c = io.connect(sub, spec, seed, where);
        if (!c.ok) {
            if (c.diag.code == 0 || is_client_code(c.diag.code) || c.diag.code == 1053) {
                view.connect_failed(i, clock.now());
                note(i, "unreachable (" + std::to_string(c.diag.code) + (c.diag.server_message.empty() ? "" : ": " + c.diag.server_message) + ")");
                lost = c;
            } else {
                note(i, "refused the connect (" + std::to_string(c.diag.code) + ")");
                refusal = c;
                any_refusal = true;
            }
            return std::nullopt;
        }
        if (c.reconnect_option) return c;
        role_probe p = probe_role(io, sub);
        if (!p.ok && !p.not_ready) {
            io.close();
            view.connect_failed(i, clock.now());
            note(i, "lost while asked its role (" + std::to_string(p.diag.code) + ")");
            lost.diag = p.diag;
            lost.diag.where = phase::connect;
            return std::nullopt;
        }
        server_facts f = p.answer.facts;
        f.identity = c.session.server;
        view.learnt(i, f, clock.now());
        any_answered = true;
        if (view.serves(i, want, as_fallback)) {
            view.chose(i, want);
            chosen = i;
            return c;
        }
        io.close();
        const server_role r = role_of(f);
        note(i, std::string(to_string(r)));
        if (r == server_role::writer && fallback == static_cast<std::size_t>(-1)) fallback = i;
        return std::nullopt;
    };
    for (std::size_t k = 0; k < order.size(); ++k) {
        if (bound.expired(clock.now())) break;
        if (auto c = attempt(order[k], false, k + 1 < order.size())) return *c;
    }
    if (want == target_role::prefer_replica && fallback != static_cast<std::size_t>(-1) && !bound.expired(clock.now())) {
        account += "; no replica: the writer serves the reads";
        if (auto c = attempt(fallback, true, false)) return *c;
    }
    // Nobody serves the role now. A server that was up and said no role (a failover in progress)
    // counts as "not accepting": the engine waits for the endpoint's prober, as for a dead server.
    connected fail;
    if (!any_answered && any_refusal) fail = refusal;
    else if (!any_answered) fail = lost;
    if (any_answered) {
        fail.diag = diagnostics{};
        fail.diag.code = 0;
    }
    fail.ok = false;
    fail.diag.where = phase::connect;
    fail.diag.client_message = std::string("no ") + (want == target_role::writer ? "writer" : "server to read from") +
                               " among " + std::to_string(view.size()) + " hosts: " +
                               (account.empty() ? "no time left to try any" : account);
    return fail;
}

// At BEGIN (commit resolution on): the role and semi-sync status of the current server again,
// when what the view knows is older than its TTL (the status can switch off at any time).
template <class Driver, class Clock>
void refresh_facts(session_io<Driver, Clock>& io, cluster_view& view, std::size_t host, const deadline& bound, Clock& clock) {
    if (host >= view.size()) return;
    const steady_time now = clock.now();
    const host_state h = view.state(host);
    if (h.has_facts && now - h.facts_at <= view.policy().role_ttl) return;
    role_probe p = probe_role(io, bound);
    if (!p.ok) return;  // the BEGIN that follows meets the same problem and reports it
    server_facts f = p.answer.facts;
    f.identity = h.facts.identity;
    view.learnt(host, f, clock.now());
}

// The evidence for judge_failover(): the old session `target` lived on another server than the
// current one (host `current`). Asks every other host (a fresh session each, never the current
// one's), then the current server last; Galera: a causal read on it.
template <class Driver, class Clock>
fenced fence_across(session_io<Driver, Clock>& io, cluster_view& view, const connect_options& options,
                    std::size_t current, const session_ref& target, const deadline& bound, Clock& clock) {
    using traits = driver_traits<Driver>;
    fenced e;
    failover_evidence ev;
    ev.galera = view.galera();
    const std::optional<std::size_t> old = view.find(target.server);
    ev.old_known = old.has_value();
    if (old) ev.old_semi_sync = view.state(*old).facts.semi_sync;
    std::size_t unreadable = 0;
    for (std::size_t i = 0; i < view.size(); ++i) {
        if (i == current) continue;
        const steady_time now = clock.now();
        if (bound.expired(now)) {
            e.diag.client_message = "no time left to ask every server about the failover";
            return e;
        }
        // Each server gets at most half of what is left: a blackholed one cannot eat it all.
        const deadline sub = bound.is_none() ? deadline::after(options.connect_timeout, now)
                                             : deadline::after(bound.remaining(now) / 2, now);
        const connect_options where = options_for_host(options, view.host(i));
        session_io<Driver, Clock> other(where, clock);
        connected c = other.connect(sub, typename session_io<Driver, Clock>::spec_type{}, 0, where);
        if (!c.ok) {
            const bool connectivity = c.diag.code == 0 || is_client_code(c.diag.code) || c.diag.code == 1053;
            if (connectivity) {
                if (old && i == *old) ev.old_reachable = false;
                continue;  // unreachable: it can neither commit nor be compared
            }
            // Up, but it would not let lifeline in: it can be neither ruled out nor compared.
            ++unreadable;
            if (old && i == *old) {
                ev.old_reachable = true;
                ev.old_facts.read_only = false;
            }
            continue;
        }
        role_probe p = probe_role(other, sub);
        if (old && i == *old) {
            ev.old_reachable = true;
            ev.old_facts = p.answer.facts;
            // 1047 also comes from a node that rejects queries (wsrep_reject_queries) while it is
            // still in the primary component, where a COMMIT in flight may still replicate: not fenced.
            if (p.not_ready) ev.old_facts.wsrep_ready = ev.old_facts.primary_component = true;
        }
        if (!p.ok) {
            if (!p.not_ready) ++unreadable;
            continue;
        }
        if (!ev.galera) {
            if (auto g = gtid_of(p.answer)) ev.others.push_back(std::move(*g));
            else ++unreadable;
        }
    }
    // The new writer last: everything the others applied came from it or before it.
    role_probe p = probe_role(io, bound);
    if (!p.ok) {
        e.connection_lost = p.connection_lost;
        e.diag = p.diag;
        e.diag.client_message = "could not ask the new writer about the failover";
        return e;
    }
    ev.current_facts = p.answer.facts;
    ev.current = gtid_of(p.answer);
    if (ev.galera) {
        result r;
        bool cut = false;
        diagnostics d;
        ev.barrier_passed = io.guarded(bound, cut, [&] { return traits::execute(io.session(), causal_barrier_sql, &r, d); }) && !cut;
        if (cut || (!ev.barrier_passed && !traits::is_open(io.session()))) {
            e.connection_lost = true;
            e.diag = d;
            return e;
        }
    }
    failover_verdict v = judge_failover(ev);
    if (unreadable) {
        v.covers = false;
        v.why += "; " + std::to_string(unreadable) + " reachable server(s) could not be read";
    }
    e.ok = true;
    e.old_server_fenced = v.old_fenced;
    e.acknowledged_replicated = v.acked_replicated;
    e.new_server_covers = v.covers;
    e.diag.client_message = "failover check: " + v.why;
    return e;
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_CLUSTER_IO_HPP
