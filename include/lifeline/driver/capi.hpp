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

#include <lifeline/adopt.hpp>
#include <lifeline/connection.hpp>
#include <lifeline/detail/socket_probe.hpp>
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
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lifeline {


namespace detail {

// Owns one MYSQL handle (or borrows one: lifeline/adopt.hpp) and the session's own descriptor for
// its socket (see the top).
class capi_session {
public:
    capi_session() = default;
    capi_session(capi_session&& o) noexcept
        : m_(std::exchange(o.m_, nullptr)), owned_(o.owned_), socket_(std::move(o.socket_)) {}
    capi_session& operator=(capi_session&& o) noexcept {
        if (this != &o) {
            reset();
            m_ = std::exchange(o.m_, nullptr);
            owned_ = o.owned_;
            socket_ = std::move(o.socket_);
        }
        return *this;
    }
    capi_session(const capi_session&) = delete;
    capi_session& operator=(const capi_session&) = delete;
    ~capi_session() { reset(); }

    MYSQL* get() const noexcept { return m_; }
    void adopt(MYSQL* m, bool owned = true) noexcept {
        reset();
        m_ = m;
        owned_ = owned;
    }
    // After a successful connect: the session's own reference to the driver's socket.
    void take_socket() noexcept {
        socket_ = m_ ? socket_ref::duplicate(static_cast<int>(mysql_get_socket(m_))) : socket_ref{};
    }
    // This session's descriptor, or -1. Deliberately not re-derived from mysql_get_socket(): after
    // the driver dropped its socket, a number it reports is no evidence of anything.
    int socket() const noexcept { return m_ ? socket_.get() : -1; }
    void reset() noexcept {
        if (m_ && owned_) mysql_close(m_);  // a borrowed handle is the caller's to close
        m_ = nullptr;
        owned_ = true;
        socket_.reset();  // after the driver's close: the dup outlived every use of the socket
    }

private:
    MYSQL* m_ = nullptr;
    bool owned_ = true;
    socket_ref socket_;
};

// The connect_options that lifeline applies to a handle before connecting (TLS, handshake
// character set, compression, max_allowed_packet, attributes). Returns what failed, or "".
inline std::string capi_apply_options(MYSQL* m, const connect_options& o) {
    std::string failed;
    auto opt = [&](mysql_option which, const void* arg, const char* name) {
        if (mysql_options(m, which, arg) != 0 && failed.empty()) failed = std::string("the driver refused ") + name;
    };
    auto text = [&](mysql_option which, const std::string& v, const char* name) {
        if (!v.empty()) opt(which, v.c_str(), name);
    };
#ifdef LIFELINE_CAPI_MARIADB
    // MariaDB Connector/C 3.3 has no ssl-mode: "use TLS if offered" is MYSQL_OPT_SSL_ENFORCE (which,
    // despite its name, falls back to plaintext), a CA makes it verify the chain, and
    // MYSQL_OPT_SSL_VERIFY_SERVER_CERT adds the host name check (and refuses a server without TLS).
    // lifeline checks after the handshake that TLS is really in use (capi_tls_in_use).
    const my_bool use_tls = o.ssl != ssl_mode::disabled;
    opt(MYSQL_OPT_SSL_ENFORCE, &use_tls, "MYSQL_OPT_SSL_ENFORCE");
    if (use_tls) {
        text(MYSQL_OPT_SSL_CA, o.ssl_ca, "MYSQL_OPT_SSL_CA");
        text(MYSQL_OPT_SSL_CAPATH, o.ssl_capath, "MYSQL_OPT_SSL_CAPATH");
        text(MYSQL_OPT_SSL_CERT, o.ssl_cert, "MYSQL_OPT_SSL_CERT");
        text(MYSQL_OPT_SSL_KEY, o.ssl_key, "MYSQL_OPT_SSL_KEY");
        text(MYSQL_OPT_SSL_CIPHER, o.ssl_cipher, "MYSQL_OPT_SSL_CIPHER");
        text(MYSQL_OPT_SSL_CRL, o.ssl_crl, "MYSQL_OPT_SSL_CRL");
        text(MARIADB_OPT_TLS_VERSION, o.tls_version, "MARIADB_OPT_TLS_VERSION");
        const my_bool verify_host = o.ssl == ssl_mode::verify_identity;
        opt(MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify_host, "MYSQL_OPT_SSL_VERIFY_SERVER_CERT");
    }
#else
    // libmysqlclient 5.7.11+: ssl-mode as such.
    unsigned mode = SSL_MODE_DISABLED;
    switch (o.ssl) {
    case ssl_mode::disabled: mode = SSL_MODE_DISABLED; break;
    case ssl_mode::preferred: mode = SSL_MODE_PREFERRED; break;
    case ssl_mode::required: mode = SSL_MODE_REQUIRED; break;
    case ssl_mode::verify_ca: mode = SSL_MODE_VERIFY_CA; break;
    case ssl_mode::verify_identity: mode = SSL_MODE_VERIFY_IDENTITY; break;
    }
    opt(MYSQL_OPT_SSL_MODE, &mode, "MYSQL_OPT_SSL_MODE");
    text(MYSQL_OPT_SSL_CA, o.ssl_ca, "MYSQL_OPT_SSL_CA");
    text(MYSQL_OPT_SSL_CAPATH, o.ssl_capath, "MYSQL_OPT_SSL_CAPATH");
    text(MYSQL_OPT_SSL_CERT, o.ssl_cert, "MYSQL_OPT_SSL_CERT");
    text(MYSQL_OPT_SSL_KEY, o.ssl_key, "MYSQL_OPT_SSL_KEY");
    text(MYSQL_OPT_SSL_CIPHER, o.ssl_cipher, "MYSQL_OPT_SSL_CIPHER");
    text(MYSQL_OPT_SSL_CRL, o.ssl_crl, "MYSQL_OPT_SSL_CRL");
    text(MYSQL_OPT_TLS_VERSION, o.tls_version, "MYSQL_OPT_TLS_VERSION");
#endif
    text(MYSQL_SET_CHARSET_NAME, o.charset, "MYSQL_SET_CHARSET_NAME");
    if (o.compress) opt(MYSQL_OPT_COMPRESS, nullptr, "MYSQL_OPT_COMPRESS");
    if (o.max_allowed_packet) {
#ifdef LIFELINE_CAPI_MARIADB
        const std::size_t packet = static_cast<std::size_t>(o.max_allowed_packet);
#else
        const unsigned long packet = static_cast<unsigned long>(o.max_allowed_packet);
#endif
        opt(MYSQL_OPT_MAX_ALLOWED_PACKET, &packet, "MYSQL_OPT_MAX_ALLOWED_PACKET");
    }
    for (const auto& [k, v] : o.attributes)
        if (mysql_optionsv(m, MYSQL_OPT_CONNECT_ATTR_ADD, k.c_str(), v.c_str()) != 0 && failed.empty())
            failed = "the driver refused the connection attribute " + k;
    return failed;
}

// TLS is in use on the handle's connection.
inline bool capi_tls_in_use(MYSQL* m) noexcept {
    const char* cipher = mysql_get_ssl_cipher(m);
    return cipher != nullptr && *cipher != '\0';
}

// Modes from required up promise TLS: say so when the server did not give it (a client error
// 2026, CR_SSL_CONNECTION_ERROR, which is never retried).
inline bool capi_check_tls(MYSQL* m, const connect_options& o, diagnostics& out) {
    if (o.ssl == ssl_mode::disabled || o.ssl == ssl_mode::preferred || capi_tls_in_use(m)) return true;
    out = diagnostics{};
    out.code = 2026;  // CR_SSL_CONNECTION_ERROR
    out.sqlstate = "HY000";
    out.where = phase::connect;
    out.driver = "capi";
    out.client_message = "ssl_mode is " + std::string(to_string(o.ssl)) +
                         " but the server did not use TLS (it offers none: configure ssl_cert and ssl_key on the "
                         "server); lifeline closed the connection before any statement";
    return false;
}

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
        if (std::string failed = detail::capi_apply_options(m, o); !failed.empty()) {
            s.reset();
            throw detail::connect_refused{failed + " (check the connect_options)"};
        }
        run_pre_connect(s, o);
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
        if (!detail::capi_check_tls(m, o, out)) {
            s.reset();
            return false;
        }
        s.take_socket();
        return true;
    }

    // An open handle becomes the session (lifeline/adopt.hpp): MYSQL_OPT_RECONNECT is switched off,
    // the session takes its own descriptor for the socket. The TLS promise of the connection's
    // options is checked on it too.
    static bool adopt(session_type& s, MYSQL* m, ownership own, const connect_options& o, diagnostics& out) {
        s.reset();
        out = diagnostics{};
        out.where = phase::connect;
        out.driver = "capi";
        if (!m) {
            out.code = 2008;  // CR_OUT_OF_MEMORY: what a null handle means
            out.client_message = "adopt() was given a null MYSQL*";
            return false;
        }
        s.adopt(m, own == ownership::take);
        const my_bool off = 0;
        mysql_options(m, MYSQL_OPT_RECONNECT, &off);  // lifeline reconnects itself (and restores the session)
        if (static_cast<int>(mysql_get_socket(m)) < 0 || mysql_get_server_info(m) == nullptr) {
            out.code = 2006;  // CR_SERVER_GONE_ERROR
            out.client_message = "adopt() was given a MYSQL* that is not connected";
            s.reset();
            return false;
        }
        // A result left unread would answer lifeline's first statement: the stream would be out of
        // step for good. (A command sent with mysql_send_query whose answer has not arrived yet
        // cannot be told apart from an idle handle: do not adopt one mid-command.)
        if (m->status != MYSQL_STATUS_READY || mysql_more_results(m) ||
            detail::probe_socket(static_cast<int>(mysql_get_socket(m))) == socket_status::unexpected_data) {
            out.code = 2014;  // CR_COMMANDS_OUT_OF_SYNC
            out.client_message = "adopt() was given a MYSQL* with a result left unread (read or free it first: "
                                 "mysql_store_result / mysql_free_result / mysql_next_result)";
            s.reset();
            return false;
        }
        if (!detail::capi_check_tls(m, o, out)) {
            s.reset();
            return false;
        }
        s.take_socket();
        return true;
    }

    // What this adapter cannot do with valid options.
    static std::string check_options(const connect_options& o) {
        if (!o.pre_connect.accepts<MYSQL*>())
            return "connect_options.pre_connect takes sql::ConnectOptionsMap& (Connector/C++) but this connection "
                   "uses the C API: make it a function of MYSQL*";
#ifdef LIFELINE_CAPI_MARIADB
        if (!o.charset.empty() && mariadb_get_charset_by_name(o.charset.c_str()) == nullptr)
            return "connect_options.charset '" + o.charset +
                   "' is not a character set MariaDB Connector/C knows (e.g. utf8mb4, latin1, binary)";
#endif
        return {};
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

    static constexpr bool writes_over_result = true;  // execute / execute_prepared use result_writer
    static bool execute(session_type& s, std::string_view sql, result* res, diagnostics& out) {
        result_writer w(res);  // first: every way out leaves only this statement's result
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
            // Rows are read as they arrive, straight into the result (mysql_use_result): lifeline
            // keeps every row anyway, and mysql_store_result would first copy them all into a
            // block of its own (a malloc and free of 8 KB and more per statement, measured).
            MYSQL_RES* r = mysql_use_result(m);
            if (r) {
                const unsigned n = mysql_num_fields(r);
                try {
                    if (w) {
                        MYSQL_FIELD* fields = mysql_fetch_fields(r);
                        w.begin_set(n);
                        for (unsigned i = 0; i < n; ++i) w.column(i, fields[i].name, fields[i].name_length);
                    }
                    while (MYSQL_ROW row = mysql_fetch_row(r)) {
                        if (!w) continue;
                        unsigned long* len = mysql_fetch_lengths(r);
                        w.begin_row();
                        for (unsigned i = 0; i < n; ++i) {
                            if (row[i]) w.cell(i, row[i], len[i]);
                            else w.null(i);
                        }
                    }
                } catch (...) {
                    // Out of memory while keeping a row: the rest of the rows is still on the wire,
                    // so the stream is out of step and the caller closes the session (the
                    // non-throwing contract does). Free the result without reading them.
                    r->handle = nullptr;
                    mysql_free_result(r);
                    throw;
                }
                // The end of the rows or a failure while reading them (the connection lost
                // mid-result, a server error after some rows): only mysql_errno() tells which.
                const bool failed = mysql_errno(m) != 0;
                if (failed) out = capi::make_diagnostics(m, phase::fetch);
                mysql_free_result(r);
                if (failed) return false;
            } else if (mysql_errno(m) != 0 || mysql_field_count(m) != 0) {
                // A result set the driver could not start reading: mysql_use_result sets no error
                // when its own allocation fails (mysql_store_result would say 2008).
                out = capi::make_diagnostics(m, phase::fetch);
                if (out.code == 0) {
                    out.code = 2008;  // CR_OUT_OF_MEMORY
                    out.sqlstate = "HY000";
                    out.client_message = "the driver could not start reading the result set (out of memory)";
                }
                return false;
            } else if (w) {
                w.counts(mysql_affected_rows(m), mysql_insert_id(m));
            }
            if (!mysql_more_results(m)) break;  // what mysql_next_result() would answer with -1
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
        result_writer w(res);  // first: every way out leaves only this statement's result
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
            if (w) w.counts(mysql_stmt_affected_rows(st), mysql_stmt_insert_id(st));
            return true;
        }
        unsigned n = mysql_num_fields(meta);
        MYSQL_FIELD* fields = mysql_fetch_fields(meta);
        if (w) {
            w.begin_set(n);
            for (unsigned i = 0; i < n; ++i) w.column(i, fields[i].name, fields[i].name_length);
        }
        mysql_free_result(meta);
        if (mysql_stmt_store_result(st) != 0) {
            d = capi::make_diagnostics(st, phase::fetch);
            return false;
        }
        // Bind with no buffer to learn each value's length, then fetch each column into its cell.
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
        std::string discard;  // cells go here when the caller wants no result
        while (ok) {
            int rc = mysql_stmt_fetch(st);
            if (rc == MYSQL_NO_DATA) break;
            if (rc == 1) {
                ok = false;
                break;
            }
            if (w) w.begin_row();
            for (unsigned i = 0; i < n && ok; ++i) {
                if (out_null[i]) {
                    if (w) w.null(i);
                    continue;
                }
                char* buf = w ? w.cell_buffer(i, out_len[i]) : (discard.resize(out_len[i]), discard.data());
                MYSQL_BIND col;
                std::memset(&col, 0, sizeof col);
                col.buffer_type = MYSQL_TYPE_STRING;
                col.buffer = buf;
                col.buffer_length = out_len[i];
                if (out_len[i] && mysql_stmt_fetch_column(st, &col, i, 0) != 0) ok = false;
            }
        }
        if (!ok) d = capi::make_diagnostics(st, phase::fetch);
        mysql_stmt_free_result(st);
        return ok;
    }

    // The server's status from the last OK packet: a transaction is open, or autocommit is off
    // (then the next statement opens one, and a reconnect would silently run it in autocommit).
    static bool in_transaction(const session_type& s) noexcept {
        if (!s.get()) return false;
        // The handle's field, as mariadb_get_infov(MARIADB_CONNECTION_SERVER_STATUS) returns it,
        // without the call: this runs after every statement.
        const unsigned status = s.get()->server_status;
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
        return (s.get()->server_status & SERVER_SESSION_STATE_CHANGED) != 0;
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

private:
    // The caller's hook, last before the connect (connect_options::pre_connect).
    static void run_pre_connect(session_type& s, const connect_options& o) {
        if (!o.pre_connect) return;
        std::string why;
        bool ok = false;
        try {
            ok = o.pre_connect.run<MYSQL*>(s.get(), why);
        } catch (const std::exception& e) {
            why = std::string("connect_options.pre_connect threw: ") + e.what();
        } catch (...) {
            why = "connect_options.pre_connect threw";
        }
        if (ok) return;
        s.reset();
        throw detail::connect_refused{why};
    }
};

// The connect_options a handle was opened with, for an adopted handle's reconnects
// (lifeline/adopt.hpp): host, port, user, password, schema, Unix socket, connect and read
// timeouts, TLS, character set, compression, max_allowed_packet. What the driver does not keep
// (the pre_connect hook, connection attributes, TCP keepalive) keeps lifeline's defaults.
inline connect_options options_of(MYSQL* m) {
    connect_options o;
    if (!m) return o;
    auto str = [](const char* p) { return p ? std::string(p) : std::string(); };
    o.user = str(m->user);
    o.password = str(m->passwd);
    o.database = str(m->db);
    o.unix_socket = str(m->unix_socket);
    o.port = static_cast<std::uint16_t>(m->port);
    o.host = str(m->host);
    if (!o.unix_socket.empty() && o.host == "localhost") o.host.clear();
    else o.unix_socket.clear();  // the driver also records its default socket for TCP handles
#ifdef LIFELINE_CAPI_MARIADB
    unsigned timeout = 0;
    if (mysql_get_optionv(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout) == 0 && timeout > 0)
        o.connect_timeout = std::chrono::seconds(timeout);
    timeout = 0;
    if (mysql_get_optionv(m, MYSQL_OPT_READ_TIMEOUT, &timeout) == 0) o.io_timeout = std::chrono::seconds(timeout);
    auto opt_str = [&](mysql_option which) {
        const char* v = nullptr;
        return mysql_get_optionv(m, which, &v) == 0 ? str(v) : std::string();
    };
    o.ssl_ca = opt_str(MYSQL_OPT_SSL_CA);
    o.ssl_capath = opt_str(MYSQL_OPT_SSL_CAPATH);
    o.ssl_cert = opt_str(MYSQL_OPT_SSL_CERT);
    o.ssl_key = opt_str(MYSQL_OPT_SSL_KEY);
    o.ssl_cipher = opt_str(MYSQL_OPT_SSL_CIPHER);
    o.ssl_crl = opt_str(MYSQL_OPT_SSL_CRL);
    o.tls_version = opt_str(MARIADB_OPT_TLS_VERSION);
    my_bool verify = 0, enforce = 0;
    mysql_get_optionv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    mysql_get_optionv(m, MYSQL_OPT_SSL_ENFORCE, &enforce);
    if (verify) o.ssl = ssl_mode::verify_identity;
    else if (!o.ssl_ca.empty() || !o.ssl_capath.empty()) o.ssl = ssl_mode::verify_ca;
    else if (detail::capi_tls_in_use(m)) o.ssl = ssl_mode::required;
    else if (enforce) o.ssl = ssl_mode::preferred;
    else o.ssl = ssl_mode::disabled;
    std::size_t packet = 0;
    if (mysql_get_optionv(m, MYSQL_OPT_MAX_ALLOWED_PACKET, &packet) == 0 && packet != 0 &&
        packet != static_cast<std::size_t>(1) << 30)
        o.max_allowed_packet = packet;
    const char* cs = nullptr;
    if (mysql_get_optionv(m, MYSQL_SET_CHARSET_NAME, &cs) == 0 && cs) o.charset = cs;
    o.compress = (m->client_flag & CLIENT_COMPRESS) != 0;
#endif
    return o;
}

}  // namespace lifeline

#endif  // LIFELINE_DRIVER_CAPI_HPP
