// lifeline — failover: the SQL lifeline sends to learn a server's role, and how it reads the
// answers. Pure (no driver), like session_sql.hpp. Everything here is readable by an application
// account without SUPER, REPLICATION or PROCESS privileges (checked against MariaDB 10.11 by the
// failover integration tests): global variables, and information_schema.GLOBAL_STATUS.
#ifndef LIFELINE_DETAIL_CLUSTER_SQL_HPP
#define LIFELINE_DETAIL_CLUSTER_SQL_HPP

#include <lifeline/cluster.hpp>
#include <lifeline/result.hpp>

#include <cctype>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace lifeline::detail {

// Variant `i` of the role query (0: MariaDB, 1: MySQL 8, 2: anything). One row:
// read_only, wsrep_on, wsrep_reject_queries, "NAME=value,..." of the status variables below,
// gtid_binlog_state, gtid_slave_pos.
inline std::string role_query(int variant) {
    switch (variant) {
    case 0:
        return "SELECT @@global.read_only, @@wsrep_on, @@global.wsrep_reject_queries, (SELECT "
               "GROUP_CONCAT(CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE)) FROM information_schema.GLOBAL_STATUS WHERE "
               "VARIABLE_NAME IN ('WSREP_READY', 'WSREP_LOCAL_STATE_COMMENT', 'WSREP_CLUSTER_STATUS', "
               "'RPL_SEMI_SYNC_MASTER_STATUS')), @@global.gtid_binlog_state, @@global.gtid_slave_pos";
    case 1:
        return "SELECT @@global.read_only OR @@global.super_read_only, 0, 'NONE', (SELECT "
               "GROUP_CONCAT(CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE)) FROM performance_schema.global_status WHERE "
               "VARIABLE_NAME IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_source_status')), NULL, NULL";
    default: return "SELECT @@global.read_only, 0, 'NONE', NULL, NULL, NULL";
    }
}
inline constexpr int role_query_variants = 3;

struct role_answer {
    server_facts facts{};
    std::optional<std::string> gtid_binlog_state;  // MariaDB only
    std::optional<std::string> gtid_slave_pos;
};

inline bool equals_nocase(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

// Reads the answer to role_query(); false if it is not shaped like one.
inline bool parse_role_answer(const result& r, role_answer& out) {
    if (r.rows.size() != 1 || r.rows[0].size() != 6) return false;
    const auto& row = r.rows[0];
    auto flag = [](const std::optional<std::string>& v) { return v && (*v == "1" || equals_nocase(*v, "ON")); };
    out = role_answer{};
    out.facts.read_only = flag(row[0]);
    out.facts.galera = flag(row[1]);
    out.facts.rejecting = out.facts.galera && row[2] && !row[2]->empty() && !equals_nocase(*row[2], "NONE");
    std::string_view status = row[3] ? std::string_view(*row[3]) : std::string_view{};
    while (!status.empty()) {
        const std::size_t comma = status.find(',');
        std::string_view kv = status.substr(0, comma);
        status = comma == std::string_view::npos ? std::string_view{} : status.substr(comma + 1);
        const std::size_t eq = kv.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view k = kv.substr(0, eq), v = kv.substr(eq + 1);
        if (equals_nocase(k, "WSREP_READY")) out.facts.wsrep_ready = equals_nocase(v, "ON");
        else if (equals_nocase(k, "WSREP_LOCAL_STATE_COMMENT")) out.facts.synced = equals_nocase(v, "Synced");
        else if (equals_nocase(k, "WSREP_CLUSTER_STATUS")) out.facts.primary_component = equals_nocase(v, "Primary");
        else if (equals_nocase(k, "RPL_SEMI_SYNC_MASTER_STATUS") || equals_nocase(k, "RPL_SEMI_SYNC_SOURCE_STATUS"))
            out.facts.semi_sync = equals_nocase(v, "ON");
    }
    out.gtid_binlog_state = row[4];
    out.gtid_slave_pos = row[5];
    return true;
}

// The GTID state of an answer: the binlog state (per domain and server) and the replica position.
inline std::optional<gtid_state> gtid_of(const role_answer& a) {
    if (!a.gtid_binlog_state && !a.gtid_slave_pos) return std::nullopt;
    gtid_state g;
    if (a.gtid_binlog_state && !g.add(*a.gtid_binlog_state)) return std::nullopt;
    if (a.gtid_slave_pos && !g.add(*a.gtid_slave_pos)) return std::nullopt;
    return g;
}

// Read-your-writes on a replica: wait (server side, bounded) until it applied `pos`. Answers 0
// (applied), -1 (timed out) or NULL (not a GTID replica).
// `pos` comes from the server (gtid_binlog_pos): digits, '-' and ','; anything else gives "".
inline std::string gtid_wait_sql(std::string_view pos, std::chrono::milliseconds timeout) {
    for (char c : pos)
        if (!((c >= '0' && c <= '9') || c == '-' || c == ',')) return {};
    const long long ms = std::max<long long>(0, static_cast<long long>(timeout.count()));
    return "SELECT MASTER_GTID_WAIT('" + std::string(pos) + "', " + std::to_string(ms / 1000) + "." +
           std::to_string(1000 + ms % 1000).substr(1) + ")";
}
// What the writer has binlogged so far: a read-your-writes read waits for at least this.
inline constexpr std::string_view writer_position_sql = "SELECT @@global.gtid_binlog_pos";
// Galera: a causal read. The node first applies every write-set the cluster ordered before it.
inline std::string causal_sql(std::string_view sql) {
    return "SET STATEMENT wsrep_sync_wait = 1 FOR " + std::string(sql);
}
// Galera: a causal barrier (the failover check): once it answers, the node has applied
// everything the cluster committed before it was sent.
inline constexpr std::string_view causal_barrier_sql = "SET STATEMENT wsrep_sync_wait = 1 FOR SELECT COUNT(*) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_READY'";

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_CLUSTER_SQL_HPP
