// lifeline — the SQL lifeline itself sends, and how it reads the answers. Pure (no driver), shared
// by the blocking and the async I/O layers so both say exactly the same things to the server.
#ifndef LIFELINE_DETAIL_SESSION_SQL_HPP
#define LIFELINE_DETAIL_SESSION_SQL_HPP

#include <lifeline/detail/server_identity.hpp>
#include <lifeline/result.hpp>
#include <lifeline/server_info.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace lifeline::detail {

// 'text' as an SQL string literal (quotes and backslashes escaped).
inline std::string sql_quote(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '\'';
    for (char c : text) {
        if (c == '\'' || c == '\\') out += c;
        out += c;
    }
    out += '\'';
    return out;
}

// `name` as an SQL identifier (backquotes doubled).
inline std::string quote_identifier(std::string_view name) {
    std::string out = "`";
    for (char c : name) {
        if (c == '`') out += c;
        out += c;
    }
    return out + "`";
}

// The registered session as one SET statement (one round trip), or "" when nothing is registered.
// `collation` (connect_options::collation, already validated as a plain name) goes first: the
// handshake set its character set, and a SET NAMES from the session would replace both.
inline std::string session_set_statement(std::string_view charset, std::string_view time_zone, std::string_view sql_mode,
                                         bool track_state, std::string_view collation = {}) {
    std::string s;
    auto add = [&](std::string_view part) {
        s += s.empty() ? "SET " : ", ";
        s += part;
    };
    if (!collation.empty()) add("collation_connection = " + sql_quote(collation));
    if (!charset.empty()) add("NAMES " + std::string(charset));
    if (!time_zone.empty()) add("time_zone = " + sql_quote(time_zone));
    if (!sql_mode.empty()) add("sql_mode = " + sql_quote(sql_mode));
    // The server then reports state changes (user variables, temporary tables, ...) in its OK
    // packets: lifeline notices state a reconnect would lose.
    if (track_state) add("session_track_state_change = ON");
    return s;
}

// What lifeline learns about each new session, in one round trip: the settings it adapts to
// and the server process's identity (see server_identity.hpp). UNIX_TIMESTAMP() and Uptime are
// read in one statement, so both use the same query start and the difference is exact.
// The session's lock name (server_identity.hpp): 'lifeline-' and 32 hex digits.
// A transaction's commit token (lost-COMMIT resolution): 128 random bits as 32 hex digits.
inline std::string commit_token(std::uint64_t a, std::uint64_t b) {
    static const char hex[] = "0123456789abcdef";
    std::string t(32, '0');
    for (int i = 0; i < 16; ++i) {
        t[static_cast<std::size_t>(i)] = hex[(a >> (i * 4)) & 15];
        t[static_cast<std::size_t>(16 + i)] = hex[(b >> (i * 4)) & 15];
    }
    return t;
}

inline std::string lock_name(std::uint64_t hi, std::uint64_t lo) {
    static const char hex[] = "0123456789abcdef";
    std::string s = "lifeline-";
    for (int i = 15; i >= 0; --i) s += hex[(hi >> (i * 4)) & 15];
    for (int i = 15; i >= 0; --i) s += hex[(lo >> (i * 4)) & 15];
    return s;
}

// Variant `i` of the query (i = 0..3), taking the lock `hi`/`lo`. Besides the settings and the
// identity it reads the server's flavour (server_info.hpp): @@version, @@version_comment and, where
// it exists (MariaDB built with Galera support, whether or not it is a node), @@global.wsrep_on.
// A server that answers none of them is still usable, just not fenceable, and its flavour unknown.
inline std::string identity_query(int variant, std::uint64_t hi, std::uint64_t lo) {
    std::string q = "SELECT @@wait_timeout, @@max_allowed_packet, CONNECTION_ID(), @@server_id, @@hostname, @@port, ";
    switch (variant) {
    case 0:  // MariaDB (with wsrep support, as packaged by distributions and MariaDB itself)
        q += "UNIX_TIMESTAMP() - (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'), ";
        q += "GET_LOCK('" + lock_name(hi, lo) + "', 0), @@version, @@version_comment, @@global.wsrep_on";
        return q;
    case 1:  // MariaDB without wsrep, MySQL 5.7
        q += "UNIX_TIMESTAMP() - (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'), ";
        break;
    case 2:  // MySQL 8 (information_schema.GLOBAL_STATUS is gone)
        q += "UNIX_TIMESTAMP() - (SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME = 'Uptime'), ";
        break;
    default:  // anything else: no start instant, no lock, no flavour
        return q + "0, 0, NULL, NULL, NULL";
    }
    return q + "GET_LOCK('" + lock_name(hi, lo) + "', 0), @@version, @@version_comment, NULL";
}
inline constexpr int identity_variants = 4;

struct session_facts {
    std::chrono::seconds wait_timeout{0};
    std::uint64_t max_allowed_packet = 0;
    session_ref session{};
    server_info server{};
};

inline std::uint64_t to_u64(const std::optional<std::string>& v) noexcept {
    if (!v || v->empty()) return 0;
    return std::strtoull(v->c_str(), nullptr, 10);
}
inline std::int64_t to_i64(const std::optional<std::string>& v) noexcept {
    if (!v || v->empty()) return 0;
    return std::strtoll(v->c_str(), nullptr, 10);
}

// Reads the answer to identity_query(); false if it is not shaped like one.
inline bool parse_session_facts(const result& r, std::uint64_t hi, std::uint64_t lo, session_facts& out) {
    if (r.rows.size() != 1 || r.rows[0].size() != 11) return false;
    const auto& row = r.rows[0];
    out.wait_timeout = std::chrono::seconds(to_i64(row[0]));
    out.max_allowed_packet = to_u64(row[1]);
    out.session.id = to_u64(row[2]);
    out.session.server.server_id = to_u64(row[3]);
    out.session.server.host_hash = fnv1a(row[4].value_or(std::string()));
    out.session.server.port = static_cast<std::uint32_t>(to_u64(row[5]));
    out.session.server.started_at = to_i64(row[6]);
    out.session.server.known = out.session.id != 0;
    if (row[7] == std::optional<std::string>("1")) {
        out.session.lock_hi = hi;
        out.session.lock_lo = lo;
        out.session.lock_certain = true;
    }
    out.server = make_server_info(row[8].value_or(std::string()), row[9].value_or(std::string()),
                                  row[10].value_or(std::string()));
    return true;
}

// Fencing, on a new session: who holds the old session's lock, and who carries its id now?
// One row: IS_USED_LOCK (the holder's id, or NULL), the account of session `id` (NULL: none).
inline std::string fence_inspect_sql(const session_ref& old_session) {
    std::string q = "SELECT ";
    q += old_session.has_lock() ? "IS_USED_LOCK('" + lock_name(old_session.lock_hi, old_session.lock_lo) + "')" : "NULL";
    q += ", (SELECT USER FROM information_schema.PROCESSLIST WHERE ID = " + std::to_string(old_session.id) + ")";
    return q;
}
inline std::string relock_sql(const session_ref& s) {
    return "SELECT GET_LOCK('" + lock_name(s.lock_hi, s.lock_lo) + "', 0)";
}
inline std::string kill_sql(std::uint64_t id) { return "KILL CONNECTION " + std::to_string(id); }
inline std::string kill_query_sql(std::uint64_t id) { return "KILL QUERY " + std::to_string(id); }

// Commit resolution (transaction.hpp documents the table).
inline constexpr std::string_view marker_table_sql =
    "CREATE TABLE IF NOT EXISTS lifeline_commit_marker (token CHAR(32) NOT NULL PRIMARY KEY, "
    "created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY (created_at)) ENGINE=InnoDB";
inline std::string marker_insert_sql(std::string_view token) {
    return "INSERT INTO lifeline_commit_marker (token) VALUES ('" + std::string(token) + "')";
}
inline std::string marker_lookup_sql(std::string_view token) {
    return "SELECT COUNT(*) FROM lifeline_commit_marker WHERE token = '" + std::string(token) + "'";
}
inline constexpr std::string_view marker_cleanup_sql =
    "DELETE FROM lifeline_commit_marker WHERE created_at < NOW(6) - INTERVAL 1 HOUR LIMIT 1000";

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_SESSION_SQL_HPP
