// lifeline — failover: which server of a cluster is the writer, learnt from the servers.
//
// A connection given a host list (connect_options::hosts, or mysql://u@h1:3306,h2:3307/db) shares
// one `cluster_view` per host list with every other connection of the process. The view is the
// decision half of failover and is pure bookkeeping (time is passed in, no I/O): it orders the
// hosts to try for a role, records what each connect learnt (the server's own answer to
// `SELECT @@global.read_only, @@wsrep_on, ...` — never the list's order), denies a host that just
// failed for a short window, and says what a fault means. The I/O layer (detail/cluster_io.hpp)
// only connects where the view says, asks the server, and reports back.
//
//   role of a server         MariaDB/MySQL: read_only = 0 -> writer, 1 -> replica
//                            Galera (@@wsrep_on): Synced + wsrep_ready + Primary component ->
//                            writer (every synced node accepts writes); otherwise not_ready
//   a connect failed         -> down, skipped for cluster_policy::deny_window
//   1290 / 1836 / 1792       -> that server is not the writer (now): replica
//   1047 (Galera not ready)  -> not_ready, skipped for the deny window
//   2013 / 2006 / 1053 ...   -> what was learnt about it is stale: asked again at the next connect
//   learnt longer ago than cluster_policy::role_ttl -> stale too (it only orders the next tries:
//   every connect asks the server again before the session is used)
//
// The same header holds the other pure parts of failover: GTID positions and the rule that says
// when a lost COMMIT (or an unknown outcome) may be resolved on a new writer (judge_failover),
// and the routing tags of cluster_connection (lifeline/cluster_connection.hpp).
#ifndef LIFELINE_CLUSTER_HPP
#define LIFELINE_CLUSTER_HPP

#include <lifeline/clock.hpp>
#include <lifeline/detail/server_identity.hpp>
#include <lifeline/options.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lifeline {

enum class server_role : std::uint8_t {
    unknown,    // never asked, or what was learnt is stale (a fault, or older than role_ttl)
    writer,     // accepts writes
    replica,    // read-only
    not_ready,  // Galera node not synced / not in the primary component / rejecting (1047)
    down,       // the last connect to it failed
};

constexpr std::string_view to_string(server_role r) noexcept {
    switch (r) {
    case server_role::unknown: return "unknown";
    case server_role::writer: return "writer";
    case server_role::replica: return "replica";
    case server_role::not_ready: return "not_ready";
    case server_role::down: return "down";
    }
    return "invalid";
}

struct cluster_policy {
    // What a connect learnt about a server orders the next connects this long; a fault that may
    // mean failover makes it stale at once. Every connect asks the server again anyway.
    duration role_ttl = std::chrono::seconds(1);
    // A server whose connect failed (or that said "not ready", 1047) is not tried for this long,
    // unless every server is denied. Keeps a dead old primary (whose connects may hang until
    // connect_timeout) out of the search for the new one.
    duration deny_window = std::chrono::seconds(1);

    std::string validate() const {
        std::string why;
        if (role_ttl.count() < 0) why += "cluster_policy.role_ttl must be >= 0 (e.g. 1s); ";
        if (deny_window.count() < 0) why += "cluster_policy.deny_window must be >= 0 (e.g. 1s); ";
        return why;
    }
};

// What one connect learnt about a server (detail/cluster_sql.hpp asks; the app user can read it all).
struct server_facts {
    bool read_only = false;          // @@global.read_only
    bool galera = false;             // @@wsrep_on
    bool wsrep_ready = false;        // Galera: status wsrep_ready = ON
    bool synced = false;             // Galera: status wsrep_local_state_comment = Synced
    bool primary_component = false;  // Galera: status wsrep_cluster_status = Primary
    bool rejecting = false;          // Galera: wsrep_reject_queries != NONE, or a query got 1047
    std::optional<bool> semi_sync;   // status Rpl_semi_sync_master_status (nullopt: not readable)
    detail::server_identity identity{};  // from the connect's identity query (server_identity.hpp)
};

constexpr server_role role_of(const server_facts& f) noexcept {
    if (f.galera) return (f.wsrep_ready && f.synced && f.primary_component && !f.rejecting) ? server_role::writer
                                                                                             : server_role::not_ready;
    return f.read_only ? server_role::replica : server_role::writer;
}

// What a failed statement says about the server it ran on.
enum class host_fault : std::uint8_t {
    none,        // nothing about the server's role (a syntax error, a deadlock, ...)
    not_writer,  // 1290 read_only, 1836 read-only mode, 1792 read-only transaction
    not_ready,   // 1047: Galera node not ready for queries
    lost,        // the connection broke (2013, 2006, 2055, 1053 shutdown, ...): ask again
};

constexpr host_fault fault_of(unsigned code) noexcept {
    switch (code) {
    case 0: return host_fault::none;
    case 1290:
    case 1836:
    case 1792: return host_fault::not_writer;
    case 1047: return host_fault::not_ready;
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1927:  // ER_CONNECTION_KILLED
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT
        return host_fault::lost;
    default: break;
    }
    if (code >= 2000 && code <= 2999) return host_fault::lost;  // client library: the connection
    return host_fault::none;
}

// --- GTID positions (MariaDB domain-server-sequence) ------------------------------------------
// The last sequence number seen per (domain, server), as in @@gtid_binlog_state; @@gtid_slave_pos
// and @@gtid_current_pos add their one entry per domain.
class gtid_state {
public:
    using key = std::pair<std::uint32_t, std::uint32_t>;  // domain, server_id

    // "0-1-5,0-2-7,1-3-2" (spaces and empty lists allowed). false if it is not such a list.
    bool add(std::string_view list) {
        while (!list.empty()) {
            const std::size_t comma = list.find(',');
            std::string_view one = trim(list.substr(0, comma));
            list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
            if (one.empty()) continue;
            std::uint64_t parts[3] = {0, 0, 0};
            int n = 0;
            std::size_t i = 0;
            while (n < 3) {
                std::size_t start = i;
                std::uint64_t v = 0;
                while (i < one.size() && one[i] >= '0' && one[i] <= '9') {
                    v = v * 10 + static_cast<std::uint64_t>(one[i] - '0');
                    ++i;
                }
                if (i == start) return false;
                parts[n++] = v;
                if (n < 3) {
                    if (i >= one.size() || one[i] != '-') return false;
                    ++i;
                }
            }
            if (i != one.size() || parts[0] > 0xffffffffu || parts[1] > 0xffffffffu) return false;
            auto& seq = last_[key{static_cast<std::uint32_t>(parts[0]), static_cast<std::uint32_t>(parts[1])}];
            seq = std::max(seq, parts[2]);
        }
        return true;
    }
    static std::optional<gtid_state> parse(std::string_view list) {
        gtid_state g;
        if (!g.add(list)) return std::nullopt;
        return g;
    }

    // Everything `other` has applied, this has too: for each (domain, server) `other` saw, this
    // saw at least the same sequence number. (Per server, not per domain: a promoted replica's
    // own new transactions continue the domain's sequence and must not hide an old writer's
    // transaction it never received.)
    bool covers(const gtid_state& other) const {
        for (const auto& [k, seq] : other.last_) {
            auto it = last_.find(k);
            if (it == last_.end() || it->second < seq) return false;
        }
        return true;
    }
    bool empty() const noexcept { return last_.empty(); }
    std::string to_string() const {
        std::string s;
        for (const auto& [k, seq] : last_) {
            if (!s.empty()) s += ',';
            s += std::to_string(k.first) + '-' + std::to_string(k.second) + '-' + std::to_string(seq);
        }
        return s;
    }

private:
    static std::string_view trim(std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t')) s.remove_suffix(1);
        return s;
    }
    std::map<key, std::uint64_t> last_;
};

// --- resolving an unknown outcome on a new writer ---------------------------------------------
// A COMMIT (or a statement) whose answer was lost on the old writer, and the connection came back
// on another server. What lifeline asked the servers (detail/cluster_io.hpp):
struct failover_evidence {
    bool galera = false;
    bool old_known = false;             // the old session's server is one of the hosts (by identity)
    bool old_reachable = false;         // a connect to it succeeded just now
    server_facts old_facts{};           // ... and what it said
    std::optional<bool> old_semi_sync;  // Rpl_semi_sync_master_status as lifeline last read it there
    std::vector<gtid_state> others;     // the GTID state of every other reachable server (old included)
    std::optional<gtid_state> current;  // the new writer's, read after all the others
    server_facts current_facts{};
    bool barrier_passed = false;        // Galera: a causal read (wsrep_sync_wait) completed on the new node
};

struct failover_verdict {
    bool old_fenced = false;       // the old writer cannot commit any more
    bool acked_replicated = false; // whatever the old writer acknowledged reached another server
    bool covers = false;           // the new writer has applied everything any reachable server has
    std::string why;               // the evidence, for diagnostics
    bool sound() const noexcept { return old_fenced && acked_replicated && covers; }
};

// The rule (README "Failover and replicas"). Resolve on the new writer only if
//  (a) the old writer is fenced: unreachable, or it answers read_only = 1 (MariaDB refuses the
//      COMMIT of a transaction with changes once read_only is set, and setting it waits for the
//      commits in progress), or (Galera) it is out of the primary component / not ready;
//  (b) what the old writer acknowledged reached the others: it was reachable and its own GTIDs
//      are compared below, or semi-sync was ON there when lifeline last looked (AFTER_SYNC: a
//      commit is acknowledged only after a replica received it), or Galera (a commit is
//      acknowledged only after its write-set was replicated and certified);
//  (c) the new writer has everything: its GTID state covers every reachable server's, read
//      before its own (so its later writes cannot make it look behind), or (Galera) a causal read
//      on it completed (wsrep_sync_wait: it applied everything ordered before).
// Then "the token is on the new writer" = "committed in the database that survives", and "not
// there" = "not committed": replaying it commits it once.
inline failover_verdict judge_failover(const failover_evidence& ev) {
    failover_verdict v;
    auto add = [&](const std::string& s) { v.why += (v.why.empty() ? "" : "; ") + s; };
    if (!ev.old_known) {
        add("the old session's server is not one of the hosts");
        return v;
    }
    if (ev.galera) {
        v.old_fenced = !ev.old_reachable || !ev.old_facts.primary_component || !ev.old_facts.wsrep_ready;
        add(!ev.old_reachable ? "old node unreachable"
                              : (v.old_fenced ? "old node out of the primary component" : "old node still synced and writable"));
        v.acked_replicated = true;  // Galera acknowledges a commit only after certification
        v.covers = ev.barrier_passed && role_of(ev.current_facts) == server_role::writer;
        add(v.covers ? "causal read on the new node completed" : "no causal read on a synced new node");
        return v;
    }
    v.old_fenced = !ev.old_reachable || ev.old_facts.read_only;
    add(!ev.old_reachable ? "old writer unreachable" : (ev.old_facts.read_only ? "old writer read-only" : "old writer still writable"));
    v.acked_replicated = ev.old_reachable || ev.old_semi_sync == std::optional<bool>(true);
    if (!ev.old_reachable)
        add(ev.old_semi_sync ? (*ev.old_semi_sync ? "semi-sync was ON on the old writer" : "semi-sync was OFF on the old writer")
                             : "semi-sync status of the old writer unknown");
    if (!ev.current) {
        add("the new writer's GTID state is unknown");
        return v;
    }
    v.covers = true;
    for (const auto& g : ev.others) {
        if (!ev.current->covers(g)) {
            v.covers = false;
            add("a reachable server has applied " + g.to_string() + ", more than the new writer's " + ev.current->to_string());
        }
    }
    if (v.covers) add("the new writer covers every reachable server (" + ev.current->to_string() + ")");
    return v;
}

// --- routing tags (cluster_connection.hpp) ---------------------------------------------------------
// A read that may be served by a replica (possibly behind the writer).
struct replica_ok_t {
    explicit constexpr replica_ok_t() = default;
};
// A read that must see this connection's own earlier writes: on a replica after it applied them
// (MASTER_GTID_WAIT; Galera: wsrep_sync_wait), within the deadline, else on the writer.
struct read_your_writes_t {
    explicit constexpr read_your_writes_t() = default;
};
inline constexpr replica_ok_t replica_ok{};
inline constexpr read_your_writes_t read_your_writes{};

// --- the view -------------------------------------------------------------------------------------
struct host_state {
    host_port where;
    server_role role = server_role::unknown;
    steady_time learnt_at{};     // when `role` was learnt (or made stale: then it is unknown)
    steady_time denied_until{};  // not tried before then (unless every host is denied)
    server_facts facts{};        // the last successful probe's answer
    bool has_facts = false;
    steady_time facts_at{};
    std::uint64_t connect_failures = 0;
};

// Shared by every connection to one host list (thread-safe; time is passed in).
class cluster_view {
public:
    explicit cluster_view(std::vector<host_port> hosts, cluster_policy p = {}) : policy_(p) {
        hosts_.reserve(hosts.size());
        for (auto& h : hosts) {
            host_state s;
            s.where = std::move(h);
            hosts_.push_back(std::move(s));
        }
    }
    cluster_view(const cluster_view&) = delete;
    cluster_view& operator=(const cluster_view&) = delete;

    std::size_t size() const noexcept { return hosts_.size(); }
    const host_port& host(std::size_t i) const noexcept { return hosts_[i].where; }
    const cluster_policy& policy() const noexcept { return policy_; }

    // The order in which to try the hosts for `want` (a new vector; the I/O layer connects in
    // this order, asks each server, reports with learnt()/connect_failed(), and stops at the first
    // that serves()). Hosts denied now are left out, unless all are (then soonest-free first).
    std::vector<std::size_t> candidates(target_role want, steady_time now) const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<std::size_t> fresh_match, unknown, fresh_other, failed_before, denied;
        const std::size_t n = hosts_.size();
        const std::size_t start = want == target_role::prefer_replica ? rotation_++ % (n ? n : 1) : 0;
        for (std::size_t k = 0; k < n; ++k) {
            const std::size_t i = (start + k) % n;
            const host_state& h = hosts_[i];
            if (now < h.denied_until) {
                denied.push_back(i);
                continue;
            }
            const server_role r = fresh_role(h, now);
            // Its deny window is over, but the last word about it was a failure: after the others
            // (a blackholed host costs a whole connect timeout).
            if (h.role == server_role::down || h.role == server_role::not_ready) failed_before.push_back(i);
            else if (r == server_role::unknown) unknown.push_back(i);
            else if (matches(i, r, want, false)) fresh_match.push_back(i);
            else fresh_other.push_back(i);
        }
        // The writer it used last first (Galera: all write to one node, which avoids certification
        // conflicts between this process's own connections).
        if (want == target_role::writer && preferred_writer_ < n) {
            auto it = std::find(fresh_match.begin(), fresh_match.end(), preferred_writer_);
            if (it != fresh_match.end()) std::rotate(fresh_match.begin(), it, it + 1);
        }
        std::vector<std::size_t> out;
        out.reserve(n);
        out.insert(out.end(), fresh_match.begin(), fresh_match.end());
        out.insert(out.end(), unknown.begin(), unknown.end());
        // A replica that said read-only a moment ago may have been promoted since: last, not never.
        out.insert(out.end(), fresh_other.begin(), fresh_other.end());
        out.insert(out.end(), failed_before.begin(), failed_before.end());
        if (out.empty()) {
            std::sort(denied.begin(), denied.end(),
                      [&](std::size_t a, std::size_t b) { return hosts_[a].denied_until < hosts_[b].denied_until; });
            out = denied;
        }
        return out;
    }

    // Does host i (whose facts were just learnt) serve `want`? For prefer_replica the writer
    // serves only as the fallback (after every replica candidate failed).
    bool serves(std::size_t i, target_role want, bool fallback = false) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return matches(i, hosts_[i].role, want, fallback);
    }

    // A connect to host i succeeded and the server said `f`.
    void learnt(std::size_t i, const server_facts& f, steady_time now) {
        std::lock_guard<std::mutex> lock(mutex_);
        host_state& h = hosts_[i];
        const server_role r = role_of(f);
        set_role(h, r, now);
        h.facts = f;
        h.has_facts = true;
        h.facts_at = now;
        h.denied_until = r == server_role::not_ready ? now + policy_.deny_window : steady_time{};
        galera_ = galera_ || f.galera;
    }
    // The semi-sync status read again on host i (at BEGIN, when the last reading was old).
    void learnt_semi_sync(std::size_t i, std::optional<bool> on, steady_time now) {
        std::lock_guard<std::mutex> lock(mutex_);
        hosts_[i].facts.semi_sync = on;
        hosts_[i].facts_at = now;
    }
    // A connect to host i failed for a connectivity reason (refused, unreachable, timed out).
    void connect_failed(std::size_t i, steady_time now) {
        std::lock_guard<std::mutex> lock(mutex_);
        host_state& h = hosts_[i];
        set_role(h, server_role::down, now);
        h.denied_until = now + policy_.deny_window;
        ++h.connect_failures;
    }
    // A statement on host i failed with `code`; what that says about the server (fault_of).
    void fault(std::size_t i, unsigned code, steady_time now) {
        std::lock_guard<std::mutex> lock(mutex_);
        host_state& h = hosts_[i];
        switch (fault_of(code)) {
        case host_fault::none: return;
        case host_fault::not_writer:
            if (h.role == server_role::writer && !h.facts.galera) set_role(h, server_role::replica, now);
            else if (h.role == server_role::writer) set_role(h, server_role::unknown, now);
            return;
        case host_fault::not_ready:
            set_role(h, server_role::not_ready, now);
            h.denied_until = now + policy_.deny_window;
            return;
        case host_fault::lost:
            if (h.role != server_role::unknown) set_role(h, server_role::unknown, now);
            return;
        }
    }
    // The connection chose host i for `want` (remembered as the preferred writer).
    void chose(std::size_t i, target_role want) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (want == target_role::writer && preferred_writer_ != i) {
            preferred_writer_ = i;
            epoch_.fetch_add(1, std::memory_order_acq_rel);
        }
    }

    // The host whose last identity (server_id, host name, port, start) is `id`.
    std::optional<std::size_t> find(const detail::server_identity& id) const {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!id.known) return std::nullopt;
        for (std::size_t i = 0; i < hosts_.size(); ++i) {
            const auto& k = hosts_[i].facts.identity;
            if (hosts_[i].has_facts && k.known && k.server_id == id.server_id && k.host_hash == id.host_hash &&
                k.port == id.port)
                return i;
        }
        return std::nullopt;
    }

    host_state state(std::size_t i) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return hosts_[i];
    }
    std::vector<host_state> snapshot() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return hosts_;
    }
    // The writer as last learnt and still fresh (Galera: the preferred node).
    std::optional<std::size_t> writer(steady_time now) const {
        std::lock_guard<std::mutex> lock(mutex_);
        if (preferred_writer_ < hosts_.size() && fresh_role(hosts_[preferred_writer_], now) == server_role::writer)
            return preferred_writer_;
        for (std::size_t i = 0; i < hosts_.size(); ++i)
            if (fresh_role(hosts_[i], now) == server_role::writer) return i;
        return std::nullopt;
    }
    // Bumped on every change of a host's role and of the preferred writer.
    std::uint64_t epoch() const noexcept { return epoch_.load(std::memory_order_acquire); }
    bool galera() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return galera_;
    }
    // "h1:3306,h2:3307": the key under which connections share the view.
    std::string key() const { return key_of(hosts_list()); }
    static std::string key_of(const std::vector<host_port>& hosts) {
        std::string k;
        for (const auto& h : hosts) {
            if (!k.empty()) k += ',';
            k += (h.host.find(':') != std::string::npos ? "[" + h.host + "]" : h.host) + ':' + std::to_string(h.port);
        }
        return k;
    }

private:
    std::vector<host_port> hosts_list() const {
        std::vector<host_port> v;
        for (const auto& h : hosts_) v.push_back(h.where);
        return v;
    }
    server_role fresh_role(const host_state& h, steady_time now) const {
        if (h.role == server_role::unknown) return h.role;
        if (now - h.learnt_at > policy_.role_ttl) return server_role::unknown;
        return h.role;
    }
    // With mutex_ held.
    bool matches(std::size_t i, server_role r, target_role want, bool fallback) const {
        if (want == target_role::writer) return r == server_role::writer;
        if (r == server_role::replica) return true;
        if (r != server_role::writer) return false;
        if (fallback) return true;
        // Galera: every synced node is a writer; a "replica" read goes to another one than the writer.
        return hosts_[i].facts.galera && preferred_writer_ < hosts_.size() && i != preferred_writer_;
    }
    void set_role(host_state& h, server_role r, steady_time now) {
        if (h.role != r) epoch_.fetch_add(1, std::memory_order_acq_rel);
        h.role = r;
        h.learnt_at = now;
    }

    const cluster_policy policy_;
    mutable std::mutex mutex_;
    std::vector<host_state> hosts_;
    std::size_t preferred_writer_ = static_cast<std::size_t>(-1);
    mutable std::size_t rotation_ = 0;  // spreads prefer_replica connections over the replicas
    bool galera_ = false;
    std::atomic<std::uint64_t> epoch_{0};
};

namespace detail {

// One view per host list, alive while some connection holds it (like shared_by_endpoint).
inline std::shared_ptr<cluster_view> shared_cluster_view(const std::vector<host_port>& hosts, const cluster_policy& p = {}) {
    static std::mutex m;
    static std::map<std::string, std::weak_ptr<cluster_view>> all;
    std::lock_guard<std::mutex> lock(m);
    auto& w = all[cluster_view::key_of(hosts)];
    auto v = w.lock();
    if (!v) {
        v = std::make_shared<cluster_view>(hosts, p);
        w = v;
    }
    return v;
}

}  // namespace detail

}  // namespace lifeline

#endif  // LIFELINE_CLUSTER_HPP
