// lifeline — driver traits for the MySQL C API (MariaDB Connector/C or libmysqlclient).
//
//   #include <lifeline/driver/capi.hpp>
//   lifeline::connection<lifeline::capi> db{options};
//   db.run([](MYSQL* m) { return mysql_query(m, "UPDATE ..."); }, lifeline::idempotent);
//
// Never enables MYSQL_OPT_RECONNECT: lifeline reconnects itself and restores the session.
// With MariaDB Connector/C the connect is non-blocking under lifeline's own deadline (ms
// precision); with libmysqlclient it uses MYSQL_OPT_CONNECT_TIMEOUT, rounded up to seconds.
//
// Socket identity: right after connect the session takes its own descriptor for the driver's
// socket (fcntl(F_DUPFD_CLOEXEC), detail/socket_ref.hpp) and keeps it until close(). socket_fd()
// returns that descriptor, so the deadline watchdog's shutdown() and the liveness probe's poll()
// act on this session's socket object and never on another connection that got the driver's old
// descriptor number after Connector/C closed it itself (it does on 2013). After such a close the
// duplicate still holds the (dead or shut down) socket until lifeline drops the session.
//
// in_transaction() is the server's own status (SERVER_STATUS_IN_TRANS from the last OK packet)
// and is also true while autocommit is off: the next statement would open a transaction.
#ifndef LIFELINE_DRIVER_CAPI_HPP
#define LIFELINE_DRIVER_CAPI_HPP

#include <lifeline/connection.hpp>
#include <lifeline/detail/socket_ref.hpp>
#include <lifeline/driver/capi_error.hpp>
#include <lifeline/driver_traits.hpp>
#include <lifeline/error.hpp>
#include <lifeline/options.hpp>
#include <lifeline/result.hpp>
#include <lifeline/statement.hpp>
#include <lifeline/detail/wire_counter.hpp>

#include <mysql.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lifeline {


namespace detail {

// Owns one MYSQL handle and the session's own descriptor for its socket (see the top).
class capi_session {
public:
    capi_session() = default;
    capi_session(capi_session&& o) noexcept : m_(std::exchange(o.m_, nullptr)), socket_(std::move(o.socket_)) {}
    capi_session& operator=(capi_session&& o) noexcept {
        if (this != &o) {
            reset();
            m_ = std::exchange(o.m_, nullptr);
            socket_ = std::move(o.socket_);
        }
        return *this;
    }
    capi_session(const capi_session&) = delete;
    capi_session& operator=(const capi_session&) = delete;
    ~capi_session() { reset(); }

    MYSQL* get() const noexcept { return m_; }
    void adopt(MYSQL* m) noexcept {
        reset();
        m_ = m;
    }
    // After a successful connect: the session's own reference to the driver's socket.
    void take_socket() noexcept {
        socket_ = m_ ? socket_ref::duplicate(static_cast<int>(mysql_get_socket(m_))) : socket_ref{};
    }
    // This session's descriptor, or -1. Deliberately not re-derived from mysql_get_socket(): after
    // the driver dropped its socket, a number it reports is no evidence of anything.
    int socket() const noexcept { return m_ ? socket_.get() : -1; }
    void reset() noexcept {
        if (m_) mysql_close(m_);
        m_ = nullptr;
        socket_.reset();  // after the driver's close: the dup outlived every use of the socket
    }

private:
    MYSQL* m_ = nullptr;
    socket_ref socket_;
};

#ifdef LIFELINE_CAPI_MARIADB
// Non-blocking connect driven by poll() so the budget is honoured to the millisecond (a frozen
// server otherwise holds a blocking connect for whole seconds).
inline bool capi_connect_nonblocking(MYSQL* m, const connect_options& o, std::chrono::milliseconds budget) {
    using clock = std::chrono::steady_clock;
    const auto until = clock::now() + budget;
    mysql_options(m, MYSQL_OPT_NONBLOCK, nullptr);
    MYSQL* ret = nullptr;
    const char* sock = o.unix_socket.empty() ? nullptr : o.unix_socket.c_str();
    const char* db = o.database.empty() ? nullptr : o.database.c_str();
    int status = mysql_real_connect_start(&ret, m, o.host.c_str(), o.user.c_str(), o.password.c_str(), db, o.port,
                                          sock, CLIENT_MULTI_RESULTS);
    while (status) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()).count();
        if (left <= 0) return false;
        pollfd p{mysql_get_socket(m), 0, 0};
        if (status & MYSQL_WAIT_READ) p.events |= POLLIN;
        if (status & MYSQL_WAIT_WRITE) p.events |= POLLOUT;
        if (status & MYSQL_WAIT_EXCEPT) p.events |= POLLPRI;
        long timeout = left;
        if (status & MYSQL_WAIT_TIMEOUT) timeout = std::min<long>(timeout, mysql_get_timeout_value_ms(m));
        int r = ::poll(&p, 1, static_cast<int>(timeout));
        int events = 0;
        if (r == 0) {
            if (!(status & MYSQL_WAIT_TIMEOUT)) continue;  // our own budget: re-check it
            events = MYSQL_WAIT_TIMEOUT;
        } else if (r > 0) {
            if (p.revents & (POLLIN | POLLERR | POLLHUP)) events |= MYSQL_WAIT_READ;
            if (p.revents & POLLOUT) events |= MYSQL_WAIT_WRITE;
            if (p.revents & POLLPRI) events |= MYSQL_WAIT_EXCEPT;
        } else {
            continue;  // EINTR
        }
        status = mysql_real_connect_cont(&ret, m, events);
    }
    return ret != nullptr;
}
#endif

}  // namespace detail

namespace detail {

// Owns one MYSQL_STMT.
class capi_statement {
public:
    explicit capi_statement(MYSQL_STMT* s) noexcept : s_(s) {}
    capi_statement(capi_statement&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
    capi_statement& operator=(capi_statement&& o) noexcept {
        std::swap(s_, o.s_);
        return *this;
    }
    capi_statement(const capi_statement&) = delete;
    capi_statement& operator=(const capi_statement&) = delete;
    ~capi_statement() { reset(); }
    MYSQL_STMT* get() const noexcept { return s_; }
    void reset() noexcept {
        if (s_) mysql_stmt_close(s_);
        s_ = nullptr;
    }

private:
    MYSQL_STMT* s_;
};

}  // namespace detail

template <>
struct driver_traits<capi> {
    using session_type = detail::capi_session;
    using statement_type = detail::capi_statement;
    using native_handle = MYSQL*;
    static constexpr const char* name = "capi";

    static bool connect(session_type& s, const connect_options& o, std::chrono::milliseconds budget, diagnostics& out) {
        s.reset();
        MYSQL* m = mysql_init(nullptr);
        if (!m) {
            out = diagnostics{};
            out.code = 2008;  // CR_OUT_OF_MEMORY
            out.client_message = "mysql_init failed: out of memory";
            out.where = phase::connect;
            return false;
        }
        s.adopt(m);
        // Whole seconds, rounded up: the driver's own bound; lifeline's budget is the real one.
        unsigned connect_s = static_cast<unsigned>(std::max<long long>(1, (budget.count() + 999) / 1000));
        mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
        if (o.io_timeout.count() > 0) {
            unsigned io_s = static_cast<unsigned>(std::max<long long>(1, (o.io_timeout.count() + 999) / 1000));
            mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &io_s);
            mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &io_s);
        }
        // The server reports session-state changes in OK packets (MariaDB 10.2+, MySQL 5.7+):
        // lifeline uses it to notice state a reconnect would lose.
        bool ok = false;
#ifdef LIFELINE_CAPI_MARIADB
        ok = detail::capi_connect_nonblocking(m, o, budget);
#else
        const char* sock = o.unix_socket.empty() ? nullptr : o.unix_socket.c_str();
        const char* db = o.database.empty() ? nullptr : o.database.c_str();
        ok = mysql_real_connect(m, o.host.c_str(), o.user.c_str(), o.password.c_str(), db, o.port, sock,
                                CLIENT_MULTI_RESULTS) != nullptr;
#endif
        if (!ok) {
            out = capi::make_diagnostics(m, phase::connect);
            if (out.code == 0) {  // our budget ran out before the driver said anything
                out.code = 2013;
                out.sqlstate = "HY000";
                out.client_message = "connect did not finish within the operation's deadline";
            }
            s.reset();
            return false;
        }
        s.take_socket();
        return true;
    }

    static void close(session_type& s) noexcept { s.reset(); }
    static bool is_open(const session_type& s) noexcept { return s.get() != nullptr; }
    static native_handle native(session_type& s) noexcept { return s.get(); }
    // The session's own descriptor for the driver's socket (see the top), or -1.
    static int socket_fd(const session_type& s) noexcept { return s.socket(); }

    static bool ping(session_type& s, diagnostics& out) {
        if (mysql_ping(s.get()) == 0) return true;
        out = capi::make_diagnostics(s.get(), phase::send);
        return false;
    }

    static bool execute(session_type& s, std::string_view sql, result* res, diagnostics& out) {
        MYSQL* m = s.get();
        if (mysql_send_query(m, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
            out = capi::make_diagnostics(m, phase::send);
            return false;
        }
        if (mysql_read_query_result(m) != 0) {
            out = capi::make_diagnostics(m, phase::read_result);
            return false;
        }
        for (;;) {
            MYSQL_RES* r = mysql_store_result(m);
            if (r) {
                if (res) {
                    unsigned n = mysql_num_fields(r);
                    MYSQL_FIELD* fields = mysql_fetch_fields(r);
                    res->columns.clear();
                    for (unsigned i = 0; i < n; ++i) res->columns.emplace_back(fields[i].name, fields[i].name_length);
                    while (MYSQL_ROW row = mysql_fetch_row(r)) {
                        unsigned long* len = mysql_fetch_lengths(r);
                        auto& out_row = res->rows.emplace_back();
                        out_row.reserve(n);
                        for (unsigned i = 0; i < n; ++i) {
                            if (row[i]) out_row.emplace_back(std::in_place, row[i], len[i]);
                            else out_row.emplace_back(std::nullopt);
                        }
                    }
                }
                mysql_free_result(r);
            } else if (mysql_errno(m) != 0) {
                out = capi::make_diagnostics(m, phase::fetch);
                return false;
            } else if (res) {
                res->affected_rows = mysql_affected_rows(m);
                res->insert_id = mysql_insert_id(m);
            }
            int more = mysql_next_result(m);
            if (more == -1) break;
            if (more > 0) {
                out = capi::make_diagnostics(m, phase::fetch);
                return false;
            }
        }
        return true;
    }

    // User code inside run(): lifeline looks at mysql_errno() after it returns. Code that handled
    // an error itself and went on successfully leaves it at 0.
    template <class F, class Out>
    static bool invoke(session_type& s, F& f, Out& out, diagnostics& d) {
        // mysql_errno() keeps the last command's error until the next command: clear it, or user
        // code that sends nothing would inherit an earlier statement's failure.
        MYSQL* m = s.get();
        m->net.last_errno = 0;
        m->net.last_error[0] = '\0';
        std::memcpy(m->net.sqlstate, "00000", 6);
        detail::call_into(f, s.get(), out);
        if (mysql_errno(s.get()) == 0) return true;
        d = capi::make_diagnostics(s.get(), phase::read_result);
        out.reset();
        return false;
    }

    // --- prepared statements (all parameters and results as text) ------------------------------
    static bool prepare(session_type& s, std::string_view sql, std::optional<statement_type>& out, diagnostics& d) {
        MYSQL_STMT* st = mysql_stmt_init(s.get());
        if (!st) {
            d = capi::make_diagnostics(s.get(), phase::send);
            if (d.code == 0) d.code = 2008;
            return false;
        }
        statement_type owned(st);
        if (mysql_stmt_prepare(st, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
            d = capi::make_diagnostics(st, phase::read_result);
            return false;
        }
        out.emplace(std::move(owned));
        return true;
    }
    static std::size_t param_count(statement_type& st) noexcept { return mysql_stmt_param_count(st.get()); }
    static void close_statement(statement_type& st) noexcept { st.reset(); }

    static bool execute_prepared(session_type&, statement_type& h, const params& args, result* res, diagnostics& d) {
        MYSQL_STMT* st = h.get();
        std::vector<MYSQL_BIND> in(args.size());
        std::vector<unsigned long> lengths(args.size());
        std::vector<char> nulls(args.size());
        for (std::size_t i = 0; i < args.size(); ++i) {
            std::memset(&in[i], 0, sizeof(MYSQL_BIND));
            in[i].buffer_type = MYSQL_TYPE_STRING;
            nulls[i] = !args[i].has_value();
            in[i].is_null = reinterpret_cast<decltype(in[i].is_null)>(&nulls[i]);
            if (args[i]) {
                in[i].buffer = const_cast<char*>(args[i]->data());
                in[i].buffer_length = lengths[i] = static_cast<unsigned long>(args[i]->size());
                in[i].length = &lengths[i];
            }
        }
        if ((!args.empty() && mysql_stmt_bind_param(st, in.data())) || mysql_stmt_execute(st) != 0) {
            d = capi::make_diagnostics(st, phase::read_result);
            return false;
        }
        MYSQL_RES* meta = mysql_stmt_result_metadata(st);
        if (!meta) {
            if (res) {
                res->affected_rows = mysql_stmt_affected_rows(st);
                res->insert_id = mysql_stmt_insert_id(st);
            }
            return true;
        }
        unsigned n = mysql_num_fields(meta);
        MYSQL_FIELD* fields = mysql_fetch_fields(meta);
        if (res)
            for (unsigned i = 0; i < n; ++i) res->columns.emplace_back(fields[i].name, fields[i].name_length);
        mysql_free_result(meta);
        if (mysql_stmt_store_result(st) != 0) {
            d = capi::make_diagnostics(st, phase::fetch);
            return false;
        }
        // Bind with no buffer to learn each value's length, then fetch each column into a string.
        std::vector<MYSQL_BIND> out(n);
        std::vector<unsigned long> out_len(n);
        std::vector<char> out_null(n);
        for (unsigned i = 0; i < n; ++i) {
            std::memset(&out[i], 0, sizeof(MYSQL_BIND));
            out[i].buffer_type = MYSQL_TYPE_STRING;
            out[i].length = &out_len[i];
            out[i].is_null = reinterpret_cast<decltype(out[i].is_null)>(&out_null[i]);
        }
        bool ok = mysql_stmt_bind_result(st, out.data()) == 0;
        while (ok) {
            int rc = mysql_stmt_fetch(st);
            if (rc == MYSQL_NO_DATA) break;
            if (rc == 1) {
                ok = false;
                break;
            }
            std::vector<std::optional<std::string>> row;
            for (unsigned i = 0; i < n; ++i) {
                if (out_null[i]) {
                    row.emplace_back(std::nullopt);
                    continue;
                }
                std::string v(out_len[i], '\0');
                MYSQL_BIND col;
                std::memset(&col, 0, sizeof col);
                col.buffer_type = MYSQL_TYPE_STRING;
                col.buffer = v.data();
                col.buffer_length = out_len[i];
                if (out_len[i] && mysql_stmt_fetch_column(st, &col, i, 0) != 0) {
                    ok = false;
                    break;
                }
                row.emplace_back(std::move(v));
            }
            if (ok && res) res->rows.push_back(std::move(row));
        }
        if (!ok) d = capi::make_diagnostics(st, phase::fetch);
        mysql_stmt_free_result(st);
        return ok;
    }

    // The server's status from the last OK packet: a transaction is open, or autocommit is off
    // (then the next statement opens one, and a reconnect would silently run it in autocommit).
    static bool in_transaction(const session_type& s) noexcept {
        if (!s.get()) return false;
        unsigned status = 0;
#ifdef LIFELINE_CAPI_MARIADB
        if (mariadb_get_infov(s.get(), MARIADB_CONNECTION_SERVER_STATUS, &status) != 0) return true;  // cannot tell
#else
        status = s.get()->server_status;
#endif
        return (status & SERVER_STATUS_IN_TRANS) != 0 || (status & SERVER_STATUS_AUTOCOMMIT) == 0;
    }

    static bool reconnect_option_enabled(session_type& s) noexcept {
        if (!s.get()) return false;
        my_bool on = 0;
        mysql_get_option(s.get(), MYSQL_OPT_RECONNECT, &on);
        return on != 0;
    }

    static bool untracked_state_changed(session_type& s) noexcept {
        // Only an OK packet carries fresh tracking data; after a result set the driver still holds
        // the previous OK's (measured: a SELECT after a SET reported the SET's change again).
        if (mysql_field_count(s.get()) != 0) return false;
        const char* data = nullptr;
        size_t len = 0;
        if (mysql_session_track_get_first(s.get(), SESSION_TRACK_STATE_CHANGE, &data, &len) != 0) return false;
        return len == 1 && data[0] == '1';
    }

    static std::uint64_t connection_id(session_type& s) noexcept { return s.get() ? mysql_thread_id(s.get()) : 0; }

    // --- optional members (driver_traits.hpp) -------------------------------------------------
    // COM_RESET_CONNECTION: rolls back, drops user variables, temporary tables, prepared
    // statements and locks, restores the account's defaults; the pool's return path.
    static bool reset_session(session_type& s, diagnostics& d) {
        if (mysql_reset_connection(s.get()) == 0) return true;
        d = capi::make_diagnostics(s.get(), phase::read_result);
        return false;
    }
    // The last OK packet said the session's state changed (a tracked variable, the schema, user
    // variables, temporary tables...): the pool resets such a session before lending it again.
    static bool session_changed(session_type& s) noexcept {
        unsigned status = 0;
#ifdef LIFELINE_CAPI_MARIADB
        mariadb_get_infov(s.get(), MARIADB_CONNECTION_SERVER_STATUS, &status);
#else
        status = s.get()->server_status;
#endif
        return (status & SERVER_SESSION_STATE_CHANGED) != 0;
    }
    // Bytes this session has put on the wire (detail/wire_counter.hpp), for run()'s black boxes.
    // If the callable replaced the driver's socket (reconnected the handle), lifeline's own
    // reference no longer sees its traffic: no answer.
    static std::optional<std::uint64_t> wire_bytes(session_type& s) noexcept {
        const int own = socket_fd(s);
        const int driver_fd = s.get() ? static_cast<int>(mysql_get_socket(s.get())) : -1;
        if (driver_fd >= 0 && !detail::same_socket(driver_fd, own)) return std::nullopt;
        return detail::wire_bytes_out(own);
    }
};

}  // namespace lifeline

#endif  // LIFELINE_DRIVER_CAPI_HPP
