// lifeline — routing by declaration over a replicated cluster: writes to the writer, declared
// reads to a replica.
//
//   lifeline::cluster_connection<lifeline::capi> db{lifeline::parse_dsn("mysql://app@db1:3306,db2:3306,db3:3306/shop")};
//   db.execute("INSERT INTO orders ...");                                  // the writer
//   db.transaction(fn, lifeline::replayable_resolved);                     // the writer
//   db.query("SELECT ... report ...", lifeline::replica_ok);               // a replica (may lag)
//   db.query("SELECT ... my order ...", lifeline::read_your_writes);       // a replica that applied
//                                                                          // my writes, else the writer
//
// It holds two lifeline::connection: one whose target is the writer and one that prefers a
// replica (connect_options::target), sharing one cluster_view, so a reader keeps its session
// between reads and the writer's session is never spent on a read. (Routing each read by
// reconnecting would cost a connect and the session's restore per read; two sessions cost one
// idle connection.) Without a replica (all down, or none configured) the reader's session is on
// the writer. Every operation without a routing tag goes to the writer. Not thread-safe (like
// connection); one per thread, or one per borrowed pair.
//
// read_your_writes: after this object sent anything to the writer, the next such read asks the
// writer for its binlog position (@@gtid_binlog_pos, which includes this session's writes) and
// waits on the replica with MASTER_GTID_WAIT, for at most `ryw_wait` and half of the call's
// deadline; the read runs there if the replica applied it (on the same replica session: a
// reconnect in between sends the read to the writer), else on the writer. Galera: the read runs
// as a causal read (SET STATEMENT wsrep_sync_wait = 1 FOR ...) on its node instead.
#ifndef LIFELINE_CLUSTER_CONNECTION_HPP
#define LIFELINE_CLUSTER_CONNECTION_HPP

#include <lifeline/cluster.hpp>
#include <lifeline/connection.hpp>
#include <lifeline/detail/cluster_sql.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace lifeline {

struct cluster_connection_stats {
    std::uint64_t reads_on_replica = 0;  // replica_ok / read_your_writes reads served by a replica
    std::uint64_t reads_on_writer = 0;   // ... served by the writer (no replica, or a fallback)
    std::uint64_t ryw_waits = 0;         // read_your_writes that waited on a replica (MASTER_GTID_WAIT)
    std::uint64_t ryw_fallbacks = 0;     // ... whose replica had not caught up in time: read on the writer
    std::uint64_t reader_moves = 0;      // the reader's session left the writer for a replica
};

template <class Driver, class Policy = default_policy>
class cluster_connection {
public:
    using connection_type = connection<Driver, Policy>;
    using declaration_type = typename connection_type::declaration_type;
    using session_spec = typename connection_type::session_spec;
    using clock_type = typename connection_type::clock_type;

    // options.hosts must list the cluster (throws lifeline::error, errc::invalid_option, otherwise).
    explicit cluster_connection(const connect_options& options, Policy policy = {}, session_spec session = {},
                                clock_type clock = {})
        : writer_(with_target(options, target_role::writer), policy, session, clock),
          reader_(with_target(options, target_role::prefer_replica), policy, session, clock) {}

    connection_type& writer() noexcept { return writer_; }
    connection_type& reader() noexcept { return reader_; }
    const cluster_connection_stats& stats() const noexcept { return stats_; }
    // Longest a read_your_writes read waits for a replica to catch up before it goes to the writer.
    std::chrono::milliseconds ryw_wait{500};

    // --- the writer: writes, transactions, and anything not declared otherwise ---------------------
    result query(std::string_view sql, declaration_type decl = {}, call_options co = {}) {
        wrote_ = true;
        return writer_.query(sql, std::move(decl), co);
    }
    result query(std::string_view sql, declaration_type decl, call_options co, std::error_code& ec,
                 diagnostics& diag) noexcept {
        wrote_ = true;
        return writer_.query(sql, std::move(decl), co, ec, diag);
    }
    result execute(std::string_view sql, declaration_type decl = {}, call_options co = {}) {
        return query(sql, std::move(decl), co);
    }
    result execute(std::string_view sql, declaration_type decl, call_options co, std::error_code& ec,
                   diagnostics& diag) noexcept {
        return query(sql, std::move(decl), co, ec, diag);
    }
    template <class F>
    transaction_result transaction(F&& fn, transaction_options o = {}) {
        wrote_ = true;
        return writer_.transaction(std::forward<F>(fn), o);
    }
    template <class F>
    transaction_result transaction(F&& fn, transaction_options o, std::error_code& ec, diagnostics& diag) {
        wrote_ = true;
        return writer_.transaction(std::forward<F>(fn), o, ec, diag);
    }
    template <class F>
    auto run(F&& f, declaration_type decl = {}, call_options co = {}) {
        wrote_ = true;
        return writer_.run(std::forward<F>(f), std::move(decl), co);
    }

    // --- declared reads ------------------------------------------------------------------------------
    // A replica may serve it (it may lag behind the writer). Retried like an idempotent read.
    result query(std::string_view sql, replica_ok_t, call_options co = {}) {
        std::error_code ec;
        diagnostics diag;
        result r = query(sql, replica_ok, co, ec, diag);
        throw_if(ec, diag);
        return r;
    }
    result query(std::string_view sql, replica_ok_t, call_options co, std::error_code& ec, diagnostics& diag) noexcept {
        place_reader();
        result r = reader_.query(sql, idempotent, co, ec, diag);
        if (!ec) count_read();
        return r;
    }
    // It sees this object's earlier writes (see the top of the file).
    result query(std::string_view sql, read_your_writes_t, call_options co = {}) {
        std::error_code ec;
        diagnostics diag;
        result r = query(sql, read_your_writes, co, ec, diag);
        throw_if(ec, diag);
        return r;
    }
    result query(std::string_view sql, read_your_writes_t, call_options co, std::error_code& ec,
                 diagnostics& diag) noexcept {
        using steady = std::chrono::steady_clock;
        const auto limit = co.deadline.count() > 0 ? co.deadline : writer_.policy().retry.deadline;
        const bool bounded = limit != std::chrono::milliseconds::max();
        const auto until = bounded ? steady::now() + limit : steady::time_point::max();
        auto left = [&] {
            if (!bounded) return std::chrono::milliseconds::max();
            return std::max(std::chrono::milliseconds(1),
                            std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now()));
        };
        auto on_writer = [&]() -> result {
            ++stats_.reads_on_writer;
            return writer_.query(sql, idempotent, call_options{left(), co.fail_fast}, ec, diag);
        };
        // What the writer holds now, if this object wrote since it last asked: its binlog position,
        // and which server that is (after a failover, the new writer: it has every acknowledged write).
        if (wrote_) {
            result pos = writer_.query(detail::writer_position_sql, idempotent, call_options{left(), co.fail_fast}, ec, diag);
            if (ec) return result{};
            position_ = pos.scalar() ? *pos.scalar() : std::string();
            position_host_ = writer_.current_host();
            wrote_ = false;
        }
        place_reader();
        if (!reader_.ready(call_options{left(), co.fail_fast}, ec, diag)) return result{};
        const std::shared_ptr<cluster_view> view = reader_.cluster_view_ptr();
        const bool galera = view && view->galera();
        if (galera) {  // a causal read on whatever node the reader is on
            result r = reader_.query(detail::causal_sql(sql), idempotent, call_options{left(), co.fail_fast}, ec, diag);
            if (!ec) count_read();
            return r;
        }
        // The reader's session is on the server that gave the position (it has the writes), or
        // nothing was written: read there. (Never judged by the server's role: a demoted writer's
        // sessions read what it had, not what the new writer got since.)
        const std::size_t host = reader_.current_host();
        const std::uint64_t session = reader_.connection_id();
        if (position_.empty() || (host != static_cast<std::size_t>(-1) && host == position_host_)) {
            result r = reader_.query(sql, idempotent, call_options{left(), co.fail_fast}, ec, diag);
            if (!ec && reader_.current_host() == host && reader_.connection_id() == session) {
                count_read();
                return r;
            }
            if (ec && position_.empty()) return r;
            ec.clear();
            diag = diagnostics{};
        } else {
            ++stats_.ryw_waits;
            const auto wait = std::min(ryw_wait, bounded ? left() / 2 : ryw_wait);
            const std::string q = detail::gtid_wait_sql(position_, wait);
            std::error_code wec;
            diagnostics wd;
            result w = q.empty() ? result{} : reader_.query(q, idempotent, call_options{left(), co.fail_fast}, wec, wd);
            auto same_session = [&] { return reader_.current_host() == host && reader_.connection_id() == session; };
            if (!wec && w.scalar() == std::optional<std::string>("0") && same_session()) {
                result r = reader_.query(sql, idempotent, call_options{left(), co.fail_fast}, ec, diag);
                // Read on the session that waited, or not at all: another replica may not have caught up.
                if (!ec && same_session()) {
                    count_read();
                    return r;
                }
                ec.clear();
                diag = diagnostics{};
            }
        }
        ++stats_.ryw_fallbacks;
        return on_writer();
    }

private:
    static connect_options with_target(connect_options o, target_role t) {
        if (o.hosts.empty()) {
            diagnostics d;
            d.client_message = "cluster_connection needs a host list (connect_options::hosts, or mysql://user@h1:3306,h2:3306/db)";
            throw error(errc::invalid_option, std::move(d));
        }
        o.target = t;
        return o;
    }
    // A reader that landed on the writer (no replica then, or its replica was promoted) goes back
    // to a replica when the view knows one: at most once per role_ttl, so a cluster without
    // replicas is not reconnected to on every read.
    void place_reader() {
        const std::shared_ptr<cluster_view> view = reader_.cluster_view_ptr();
        const std::size_t host = reader_.current_host();
        if (!view || host >= view->size() || view->galera()) return;
        const steady_time now = std::chrono::steady_clock::now();
        if (now - last_placed_ < view->policy().role_ttl) return;
        if (view->state(host).role != server_role::writer) return;
        last_placed_ = now;
        for (std::size_t i = 0; i < view->size(); ++i) {
            const host_state h = view->state(i);
            if (i != host && h.role == server_role::replica && now >= h.denied_until) {
                reader_.close();  // the next read connects, replicas first
                ++stats_.reader_moves;
                return;
            }
        }
    }
    void count_read() {
        const std::shared_ptr<cluster_view> view = reader_.cluster_view_ptr();
        const std::size_t host = reader_.current_host();
        const bool writer = view && host < view->size() && view->state(host).role == server_role::writer &&
                            !view->galera();
        ++(writer ? stats_.reads_on_writer : stats_.reads_on_replica);
    }

    connection_type writer_;
    connection_type reader_;
    bool wrote_ = false;       // something went to the writer since position_ was read
    std::string position_;     // the writer's @@gtid_binlog_pos after this object's last writes
    std::size_t position_host_ = static_cast<std::size_t>(-1);  // ... and the host it came from
    steady_time last_placed_{};
    cluster_connection_stats stats_;
};

}  // namespace lifeline

#endif  // LIFELINE_CLUSTER_CONNECTION_HPP
