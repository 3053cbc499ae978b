// lifeline — loading many rows through a connection that may die at any moment (the article's
// FAQ 3: "batch imports into smaller chunks"), without sending a row twice or losing one.
//
//   std::vector<std::tuple<int, std::string, std::optional<double>>> rows = ...;
//   lifeline::bulk_options o;
//   o.load_id = "orders-2024-06-01";                 // names the load: a rerun resumes it
//   o.on_progress = [](const lifeline::bulk_progress& p) { log(p.rows_done, p.bytes_done); };
//   auto r = lifeline::bulk_insert(db, "orders", {"id", "ref", "amount"}, rows, o);
//
// How: the rows go as multi-row INSERTs ("chunks"), each sized under the session's
// max_allowed_packet (the smaller of the server's and the client's, with headroom), each in its own
// transaction that also writes a marker row (lifeline_bulk_marker: load id, first row, row count)
// and runs on a session holding the load's lock (GET_LOCK('lifeline-bulk-<load id>')). A chunk
// that fails — a 2013, a lost COMMIT, a killed session, a restarted server — is resolved, never
// guessed: lifeline takes the load's lock (killing and waiting out any older session of the load
// that still holds it, whose COMMIT might otherwise land later), then looks the chunk's marker up:
// present, it committed; absent, it certainly did not, and it is sent again. Inside each chunk the
// transaction runner replays and resolves a lost COMMIT itself (transaction(), replayable_resolved).
// A rerun with the same load_id and the same rows skips every chunk already committed, also after
// the process died: the markers say which rows are in.
//
// Values: each row is a tuple/pair or a range; a value is an integer, a floating-point number, a
// bool, text (std::string, string_view, const char*), std::nullopt or an std::optional of those
// (empty: NULL). Text is sent as a quoted literal (a quote doubled); text holding a backslash or a
// NUL byte is sent as a hex literal X'...' (exact bytes in any sql_mode and character set: do not
// send such text to a numeric column). A row larger than the packet limit is refused before
// anything is sent (errc::statement_too_large, naming the row).
//
// One load id runs at a time: a second run of the same id takes the load over (its sessions kill
// the first run's). Markers stay (so a rerun of a finished load inserts nothing); markers older
// than a week are deleted, 1000 at a time, when a load starts.
#ifndef LIFELINE_BULK_INSERT_HPP
#define LIFELINE_BULK_INSERT_HPP

#include <lifeline/call_options.hpp>
#include <lifeline/classification.hpp>
#include <lifeline/declaration.hpp>
#include <lifeline/detail/session_sql.hpp>
#include <lifeline/error.hpp>
#include <lifeline/transaction.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace lifeline {

struct bulk_progress {
    std::uint64_t rows_total = 0;     // rows given to this call
    std::uint64_t rows_done = 0;      // rows this call committed
    std::uint64_t bytes_done = 0;     // SQL bytes of the chunks this call committed
    std::uint64_t rows_skipped = 0;   // rows an earlier run of the same load had committed
    std::uint64_t chunks_done = 0;    // chunks this call committed
    std::uint64_t chunk_retries = 0;  // chunks sent again after a failure (each certainly not committed)
    std::uint64_t chunks_resolved = 0;// failed chunks found committed by their marker (never sent again)
};

struct bulk_result : bulk_progress {
    std::uint64_t resume_from = 0;    // the first row not certainly committed (rows_total when done)
    std::string load_id;              // the load's id (generated when none was given)
};

struct bulk_options {
    // Names the load, so a rerun resumes it: 1-48 characters [A-Za-z0-9_.-]. Empty: a random id
    // (resuming only within this call; bulk_result::load_id tells it).
    std::string load_id;
    // Target size of one chunk's INSERT. The packet limit (below) caps it; a row larger than the
    // target goes alone.
    std::uint64_t chunk_bytes = 4u << 20;
    // A chunk's INSERT stays below this share of the session's max_allowed_packet.
    double packet_share = 0.9;
    std::size_t chunk_rows = 0;  // at most this many rows per chunk (0: no limit)
    // Each chunk's transaction() call (replays and commit resolution included); 0: the policy's
    // retry.deadline.
    std::chrono::milliseconds chunk_deadline{0};
    // The whole load; no_deadline: none (a bulk load may take hours; every wait within it is
    // bounded by chunk_deadline).
    std::chrono::milliseconds deadline = no_deadline;
    // Times one chunk may fail (certainly not committed) before the load stops with that error.
    unsigned chunk_attempts = 8;
    // After each committed chunk (and once at the start, with rows_skipped). Runs on the calling
    // thread; an exception it throws stops the load and propagates.
    std::function<void(const bulk_progress&)> on_progress;
};

namespace detail {

// --- values ------------------------------------------------------------------------------------
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T, class = void>
struct is_tuple_like : std::false_type {};
template <class T>
struct is_tuple_like<T, std::void_t<decltype(std::tuple_size<T>::value)>> : std::true_type {};

inline bool text_needs_hex(std::string_view s) noexcept {
    for (char c : s)
        if (c == '\\' || c == '\0') return true;
    return false;
}

inline std::size_t text_size(std::string_view s) noexcept {
    if (text_needs_hex(s)) return 3 + 2 * s.size();  // X'..'
    std::size_t n = 2 + s.size();
    for (char c : s) n += c == '\'';
    return n;
}

inline void append_hex(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    out += "X'";
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        out += hex[u >> 4];
        out += hex[u & 15];
    }
    out += '\'';
}

// One pass: quotes doubled; at a backslash or NUL the literal is rewritten in hex.
inline void append_text(std::string& out, std::string_view s) {
    const std::size_t start = out.size();
    out += '\'';
    std::size_t from = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '\'') {
            out.append(s.data() + from, i + 1 - from);
            out += '\'';
            from = i + 1;
        } else if (c == '\\' || c == '\0') {
            out.resize(start);
            append_hex(out, s);
            return;
        }
    }
    out.append(s.data() + from, s.size() - from);
    out += '\'';
}

// Encoding modes: exact size only (out null, exact), an upper bound (out null, !exact: no
// formatting, no scanning), or append the literal (out non-null).
template <class V>
bool sql_value(const V& v, std::string* out, std::size_t& size, bool exact = true) {
    using T = std::decay_t<V>;
    if constexpr (std::is_same_v<T, std::nullopt_t>) {
        size = 4;
        if (out) *out += "NULL";
        return true;
    } else if constexpr (is_optional<T>::value) {
        if (!v) return sql_value(std::nullopt, out, size, exact);
        return sql_value(*v, out, size, exact);
    } else if constexpr (std::is_same_v<T, bool>) {
        size = 1;
        if (out) *out += v ? '1' : '0';
        return true;
    } else if constexpr (std::is_integral_v<T>) {
        if (!out && !exact) {
            size = 20;
            return true;
        }
        char buf[24];
        const int n = std::snprintf(buf, sizeof buf, std::is_signed_v<T> ? "%lld" : "%llu",
                                    std::is_signed_v<T> ? static_cast<long long>(v) : static_cast<unsigned long long>(v));
        size = static_cast<std::size_t>(n);
        if (out) out->append(buf, size);
        return true;
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!std::isfinite(static_cast<double>(v))) return false;
        if (!out && !exact) {
            size = 25;
            return true;
        }
        char buf[32];
        const int n = std::snprintf(buf, sizeof buf, "%.17g", static_cast<double>(v));
        size = static_cast<std::size_t>(n);
        if (out) out->append(buf, size);
        return true;
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        const std::string_view s(v);
        if (out) {
            const std::size_t before = out->size();
            append_text(*out, s);
            size = out->size() - before;
        } else {
            size = exact ? text_size(s) : 3 + 2 * s.size();
        }
        return true;
    } else {
        static_assert(std::is_same_v<T, void>,
                      "lifeline::bulk_insert: a value must be an integer, floating-point, bool, text, std::nullopt or "
                      "std::optional of those");
        return false;
    }
}

// "(v1,v2,...)" for one row; false: a value cannot be sent (its index in `bad`).
template <class Row>
bool sql_row(const Row& row, std::string* out, std::size_t& size, std::size_t& columns, std::size_t& bad,
             bool exact = true) {
    size = 2;
    columns = 0;
    bool ok = true;
    if (out) *out += '(';
    auto one = [&](const auto& v) {
        if (!ok) return;
        if (columns > 0) {
            ++size;
            if (out) *out += ',';
        }
        std::size_t n = 0;
        if (!sql_value(v, out, n, exact)) {
            ok = false;
            bad = columns;
            return;
        }
        size += n;
        ++columns;
    };
    if constexpr (is_tuple_like<Row>::value) {
        std::apply([&](const auto&... v) { (one(v), ...); }, row);
    } else {
        for (const auto& v : row) one(v);
    }
    if (out) *out += ')';
    return ok;
}

inline bool valid_load_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 48) return false;
    for (char c : id)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return false;
    return true;
}

inline constexpr std::string_view bulk_marker_table_sql =
    "CREATE TABLE IF NOT EXISTS lifeline_bulk_marker (load_id VARCHAR(48) NOT NULL, first_row BIGINT UNSIGNED NOT "
    "NULL, row_count BIGINT UNSIGNED NOT NULL, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), "
    "PRIMARY KEY (load_id, first_row), KEY (created_at)) ENGINE=InnoDB";
inline constexpr std::string_view bulk_marker_cleanup_sql =
    "DELETE FROM lifeline_bulk_marker WHERE created_at < NOW(6) - INTERVAL 7 DAY LIMIT 1000";

inline std::string bulk_lock_name(std::string_view load_id) { return "lifeline-bulk-" + std::string(load_id); }

// Inside a chunk's transaction: the marker row, written only by a session that holds (or now
// takes) the load's lock. CASE evaluates one branch: a session takes the lock once, and one
// RELEASE_LOCK at the end frees it.
inline std::string bulk_marker_insert_sql(std::string_view load_id, std::uint64_t first, std::uint64_t count) {
    const std::string lock = sql_quote(bulk_lock_name(load_id));
    return "INSERT INTO lifeline_bulk_marker (load_id, first_row, row_count) SELECT " + sql_quote(load_id) + ", " +
           std::to_string(first) + ", " + std::to_string(count) + " FROM DUAL WHERE (CASE WHEN IS_USED_LOCK(" + lock +
           ") = CONNECTION_ID() THEN 1 ELSE GET_LOCK(" + lock + ", 0) END) = 1";
}

// The load's lock is held by another session (of this load: a previous run's, or this run's
// before a reconnect). Thrown from the chunk's transaction function, which rolls it back.
struct bulk_lock_busy {};

// A failure a rerun of the chunk cannot fix.
inline bool bulk_permanent(const std::error_code& ec, const diagnostics& d) noexcept {
    if (ec.category() == category()) {
        switch (static_cast<errc>(ec.value())) {
        case errc::invalid_option:
        case errc::invalid_dsn:
        case errc::statement_too_large:
        case errc::implicit_commit:
        case errc::read_only_server:
        case errc::internal_error:
        case errc::session_state_lost:
        case errc::operation_in_progress: return true;
        default: return false;
        }
    }
    const classification c = classify(failure{d.code, d.sqlstate, d.where, true});
    return c.action == remedy::do_not_retry || c.action == remedy::shrink_payload || c.statement == outcome::failed;
}

}  // namespace detail

// Inserts `rows` into `table` (columns in order) through `db` (a lifeline::connection), chunk by
// chunk (see the top). Non-throwing shape: ec/diag say why it stopped; bulk_result says how far it
// got (resume_from: rerun with the same load_id to continue).
template <class Connection, class Rows>
bulk_result bulk_insert(Connection& db, std::string_view table, const std::vector<std::string>& columns, const Rows& rows,
                        const bulk_options& o, std::error_code& ec, diagnostics& diag) {
    using clock = std::chrono::steady_clock;
    ec.clear();
    diag = diagnostics{};
    bulk_result res;
    auto fail = [&](std::error_code e, std::string why) {
        ec = e;
        if (!why.empty()) diag.client_message = diag.client_message.empty() ? why : why + "; " + diag.client_message;
        return res;
    };
    res.load_id = o.load_id;
    if (res.load_id.empty()) {
        static const char hex[] = "0123456789abcdef";
        std::random_device rd;
        std::mt19937_64 g((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
        for (int i = 0; i < 32; ++i) res.load_id += hex[g() & 15];
    }
    if (!detail::valid_load_id(res.load_id))
        return fail(make_error_code(errc::invalid_option),
                    "bulk_options.load_id must have 1-48 characters from A-Z a-z 0-9 _ . -");
    if (columns.empty()) return fail(make_error_code(errc::invalid_option), "bulk_insert needs at least one column");
    if (table.empty()) return fail(make_error_code(errc::invalid_option), "bulk_insert needs a table name");
    if (!(o.packet_share > 0.0 && o.packet_share <= 1.0) || o.chunk_bytes == 0 || o.chunk_attempts == 0)
        return fail(make_error_code(errc::invalid_option),
                    "bulk_options: packet_share must be in (0, 1], chunk_bytes and chunk_attempts > 0");

    // "INSERT INTO `schema`.`table` (`a`, `b`) VALUES "
    std::string head = "INSERT INTO ";
    if (const auto dot = table.find('.'); dot != std::string_view::npos)
        head += detail::quote_identifier(table.substr(0, dot)) + "." + detail::quote_identifier(table.substr(dot + 1));
    else head += detail::quote_identifier(table);
    head += " (";
    for (std::size_t i = 0; i < columns.size(); ++i) head += (i ? ", " : "") + detail::quote_identifier(columns[i]);
    head += ") VALUES ";

    const auto started = clock::now();
    const bool bounded = o.deadline != no_deadline;
    auto left = [&]() -> std::chrono::milliseconds {
        if (!bounded) return no_deadline;
        const auto l = o.deadline - std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
        return std::max(std::chrono::milliseconds(1), l);
    };
    auto expired = [&] { return bounded && clock::now() - started >= o.deadline; };
    auto chunk_co = [&] {
        const auto own = o.chunk_deadline.count() > 0 ? o.chunk_deadline : db.policy().retry.deadline;
        return bounded ? std::min(own, left()) : own;
    };
    auto query = [&](const std::string& sql, result& out) {
        diagnostics d;
        std::error_code e;
        out = db.query(sql, idempotent, call_options{chunk_co()}, e, d);
        if (e) {
            ec = e;
            diag = d;
        }
        return !e;
    };

    // The packet limit: the session's max_allowed_packet (the server's; a smaller client limit
    // set in connect_options applies too).
    result r;
    if (!query("SELECT @@max_allowed_packet", r) || !r.scalar()) return fail(ec ? ec : make_error_code(errc::internal_error),
                                                                            "could not read max_allowed_packet");
    std::uint64_t packet = detail::to_u64(r.scalar());
    if (db.options().max_allowed_packet && (packet == 0 || db.options().max_allowed_packet < packet))
        packet = db.options().max_allowed_packet;
    const auto hard = static_cast<std::uint64_t>(static_cast<double>(packet) * o.packet_share);
    const std::uint64_t target = std::min<std::uint64_t>(o.chunk_bytes, hard);

    // Every row checked before anything is sent: its values, its column count, its size. An
    // upper bound is cheap (no formatting); only a row whose bound reaches the limit is measured.
    std::uint64_t total = 0;
    for (const auto& row : rows) {
        std::size_t size = 0, n = 0, bad = 0;
        const std::uint64_t index = total++;
        if (!detail::sql_row(row, nullptr, size, n, bad, false))
            return fail(make_error_code(errc::invalid_option),
                        "row " + std::to_string(index) + ", value " + std::to_string(bad) +
                            ": a floating-point value that is NaN or infinite cannot be inserted; nothing was sent");
        if (n != columns.size())
            return fail(make_error_code(errc::invalid_option), "row " + std::to_string(index) + " has " +
                                                                   std::to_string(n) + " values for " +
                                                                   std::to_string(columns.size()) +
                                                                   " columns; nothing was sent");
        if (head.size() + size + 1 > hard) {
            detail::sql_row(row, nullptr, size, n, bad, true);
            if (head.size() + size + 1 > hard)
                return fail(make_error_code(errc::statement_too_large),
                            "row " + std::to_string(index) + " needs " + std::to_string(head.size() + size) +
                                " bytes as an INSERT, above the limit of " + std::to_string(hard) + " (" +
                                std::to_string(static_cast<int>(o.packet_share * 100)) + " % of max_allowed_packet " +
                                std::to_string(packet) + "); nothing was sent");
        }
    }
    res.rows_total = total;

    // The load's lock, and what an earlier run committed.
    const std::string lock = detail::sql_quote(detail::bulk_lock_name(res.load_id));
    auto take_lock = [&]() -> bool {
        // Held by another session of this load: kill it, wait until it has left, take the lock. Its
        // COMMIT, if one was in flight, has then landed or never will.
        const auto give_up_at = clock::now() + chunk_co();
        for (int round = 0;; ++round) {
            if (!query("SELECT CASE WHEN IS_USED_LOCK(" + lock + ") = CONNECTION_ID() THEN 1 ELSE GET_LOCK(" + lock +
                           ", 0) END",
                       r))
                return false;
            if (r.scalar() == std::optional<std::string>("1")) return true;
            if (!query("SELECT IS_USED_LOCK(" + lock + ")", r)) return false;
            const std::uint64_t holder = detail::to_u64(r.scalar());
            if (holder != 0) {
                diagnostics d;
                std::error_code e;
                db.execute(detail::kill_sql(holder), {}, call_options{chunk_co()}, e, d);
                if (e && d.code != 1094) {  // 1094: it ended meanwhile
                    ec = e;
                    diag = d;
                    diag.client_message = "the load's lock is held by session " + std::to_string(holder) +
                                          ", which lifeline could not end";
                    return false;
                }
            }
            if (expired() || clock::now() >= give_up_at) {
                ec = make_error_code(errc::deadline_exceeded);
                diag.client_message = "the load's lock was still held by another session at the deadline";
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50, 1 << std::min(round, 6))));
        }
    };
    std::vector<std::pair<std::uint64_t, std::uint64_t>> done;  // committed [first, first + count), sorted
    {
        diagnostics d;
        std::error_code e;
        db.execute(std::string(detail::bulk_marker_table_sql), {}, call_options{chunk_co()}, e, d);
        if (!e) db.execute(std::string(detail::bulk_marker_cleanup_sql), {}, call_options{chunk_co()}, e, d);
        if (e) {
            diag = d;
            return fail(e, "could not prepare lifeline_bulk_marker");
        }
    }
    if (!take_lock()) return fail(ec, "could not take the load's lock");
    if (!query("SELECT first_row, row_count FROM lifeline_bulk_marker WHERE load_id = " + detail::sql_quote(res.load_id) +
                   " ORDER BY first_row",
               r))
        return fail(ec, "could not read the load's markers");
    for (const auto& row : r.rows) done.emplace_back(detail::to_u64(row[0]), detail::to_u64(row[1]));
    auto committed_at = [&](std::uint64_t i) {  // the committed range containing row i, or done.end()
        auto it = std::upper_bound(done.begin(), done.end(), std::make_pair(i, ~std::uint64_t{0}));
        if (it == done.begin()) return done.end();
        --it;
        return i < it->first + it->second ? it : done.end();
    };
    for (const auto& d : done) res.rows_skipped += std::min<std::uint64_t>(d.second, res.rows_total - std::min(res.rows_total, d.first));
    if (o.on_progress) o.on_progress(res);

    // The chunks.
    std::string sql;
    auto it = std::begin(rows);
    std::uint64_t i = 0;
    res.resume_from = 0;
    while (i < res.rows_total) {
        if (auto c = committed_at(i); c != done.end()) {  // an earlier run committed these
            const std::uint64_t to = std::min(res.rows_total, c->first + c->second);
            std::advance(it, static_cast<std::ptrdiff_t>(to - i));
            i = to;
            res.resume_from = i;
            continue;
        }
        // Rows [i, j), encoded once: up to the target size (at least one row), not into a
        // committed range. The row that does not fit any more is taken back and starts the next.
        auto next_committed = std::upper_bound(done.begin(), done.end(), std::make_pair(i, ~std::uint64_t{0}));
        const std::uint64_t stop = next_committed == done.end() ? res.rows_total : next_committed->first;
        sql.clear();
        sql.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(target, hard)) + 1024);
        sql += head;
        std::uint64_t j = i;
        auto end = it;
        while (j < stop && (o.chunk_rows == 0 || j - i < o.chunk_rows)) {
            const std::size_t before = sql.size();
            if (j > i) sql += ',';
            std::size_t size = 0, n = 0, bad = 0;
            detail::sql_row(*end, &sql, size, n, bad);
            if (j > i && sql.size() > target) {
                sql.resize(before);
                break;
            }
            ++j;
            ++end;
        }
        const std::string marker = detail::bulk_marker_insert_sql(res.load_id, i, j - i);

        for (unsigned attempt = 1;; ++attempt) {
            std::error_code e;
            diagnostics d;
            bool lock_busy = false;
            try {
                transaction_options to;
                to.replayable = true;
                to.resolve_commit = true;
                to.deadline = chunk_co();
                db.transaction(
                    [&](auto& tx) {
                        if (tx.execute(marker).affected_rows != 1) throw detail::bulk_lock_busy{};
                        tx.execute(sql);
                    },
                    to, e, d);
            } catch (const detail::bulk_lock_busy&) {
                lock_busy = true;
                e = make_error_code(errc::transaction_lost);
                d.client_message = "the load's lock was held by another session";
            }
            if (!e) break;  // committed
            if (!lock_busy && detail::bulk_permanent(e, d)) {
                ec = e;
                diag = d;
                res.resume_from = i;
                return fail(e, "rows " + std::to_string(i) + "-" + std::to_string(j - 1) + " failed for good");
            }
            // Resolve: take the load's lock (no older session of the load is left), then the
            // marker says whether this chunk committed.
            if (!take_lock() ||
                !query("SELECT COUNT(*) FROM lifeline_bulk_marker WHERE load_id = " + detail::sql_quote(res.load_id) +
                           " AND first_row = " + std::to_string(i),
                       r)) {
                res.resume_from = i;
                return fail(ec, "rows " + std::to_string(i) + "-" + std::to_string(j - 1) +
                                    " may or may not be committed; rerun with load_id " + res.load_id + " to resolve and resume");
            }
            if (r.scalar() != std::optional<std::string>("0")) {
                ++res.chunks_resolved;
                break;  // it committed: never sent again
            }
            if (attempt >= o.chunk_attempts || expired()) {
                ec = e;
                diag = d;
                res.resume_from = i;
                return fail(expired() ? make_error_code(errc::deadline_exceeded) : e,
                            "rows " + std::to_string(i) + "-" + std::to_string(j - 1) + " were not committed after " +
                                std::to_string(attempt) + " attempt(s); rerun with load_id " + res.load_id + " to resume");
            }
            ++res.chunk_retries;
        }
        res.rows_done += j - i;
        res.bytes_done += sql.size();
        ++res.chunks_done;
        it = end;
        i = j;
        res.resume_from = i;
        if (o.on_progress) o.on_progress(res);
    }
    res.resume_from = res.rows_total;
    // Free the load's lock (taken once per session).
    {
        diagnostics d;
        std::error_code e;
        db.query("SELECT RELEASE_LOCK(" + lock + ")", idempotent, call_options{chunk_co()}, e, d);
    }
    return res;
}

// Throwing shape: lifeline::error; what the load achieved is lost with the exception, so prefer
// the non-throwing shape when resuming matters (or keep bulk_options::load_id).
template <class Connection, class Rows>
bulk_result bulk_insert(Connection& db, std::string_view table, const std::vector<std::string>& columns, const Rows& rows,
                        const bulk_options& o = {}) {
    std::error_code ec;
    diagnostics diag;
    bulk_result r = bulk_insert(db, table, columns, rows, o, ec, diag);
    throw_if(ec, diag);
    return r;
}

}  // namespace lifeline

#endif  // LIFELINE_BULK_INSERT_HPP
