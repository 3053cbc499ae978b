// lifeline — the MySQL C API, non-blocking: MariaDB Connector/C's mysql_*_start / mysql_*_cont.
//
//   #include <lifeline/driver/capi_async.hpp>    // also brings lifeline/async_connection.hpp
//   lifeline::async_connection<lifeline::capi> db{io.get_executor(), options};
//
// One `capi_async_session` owns one MYSQL handle in MYSQL_OPT_NONBLOCK mode and runs one step at a
// time (connect, a statement with all its result sets, ping, COM_RESET_CONNECTION) as a small
// state machine: every call returns at once, either finished (0) or with the io_wait bits the
// driver waits for. It decides nothing and never waits itself; detail/async_core.hpp watches the
// socket with Asio and calls resume().
//
// Facts this relies on (measured on this stack: reference async-probe-verified.md):
//   - mysql_get_socket() is -1 until the first _start, may change while connecting, and becomes -1
//     when the driver closes its socket after a fatal error. The driver owns the fd; lifeline only
//     watches it.
//   - An error can arrive at store_result after the query itself succeeded (KILL QUERY: 1317).
//   - A step abandoned partway poisons the handle (the next statement may read the old answer):
//     abandon() shuts the socket down and frees the handle; it is never used again.
//   - mysql_close() blocks when the socket cannot take COM_QUIT (peer frozen, window full):
//     close() uses mysql_close_start and, if that would wait, shuts the socket down first.
//   - mysql_real_connect_start resolves host names with a blocking getaddrinfo(): async_connection
//     therefore accepts only numeric addresses (or a unix socket) and checks that up front.
//
// MariaDB Connector/C only (libmysqlclient has no such API): LIFELINE_CAPI_MARIADB must be set,
// which CMake's lifeline::capi does when it finds libmariadb.
#ifndef LIFELINE_DRIVER_CAPI_ASYNC_HPP
#define LIFELINE_DRIVER_CAPI_ASYNC_HPP

#include <lifeline/async_connection.hpp>
#include <lifeline/async_driver_traits.hpp>
#include <lifeline/driver/capi_error.hpp>
#include <lifeline/driver_traits.hpp>
#include <lifeline/error.hpp>
#include <lifeline/options.hpp>
#include <lifeline/phase.hpp>
#include <lifeline/result.hpp>

#include <mysql.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#ifndef LIFELINE_CAPI_MARIADB
#error "lifeline/driver/capi_async.hpp needs MariaDB Connector/C's non-blocking API (link lifeline::capi with libmariadb)"
#endif

namespace lifeline::detail {

class capi_async_session {
public:
    capi_async_session() = default;
    capi_async_session(const capi_async_session&) = delete;
    capi_async_session& operator=(const capi_async_session&) = delete;
    ~capi_async_session() { abandon(); }

    // --- steps -----------------------------------------------------------------------------
    int start_connect(const connect_options& o, std::chrono::milliseconds budget) {
        abandon();
        begin(step::connect, phase::connect);
        m_ = mysql_init(nullptr);
        if (!m_) {
            error_ = capi::make_diagnostics(static_cast<MYSQL*>(nullptr), phase::connect);
            return done(false);
        }
        mysql_options(m_, MYSQL_OPT_NONBLOCK, nullptr);
        // Whole seconds, rounded up: the driver's own bound; lifeline's timer is the real one.
        const unsigned connect_s = static_cast<unsigned>(std::max<long long>(1, (budget.count() + 999) / 1000));
        mysql_options(m_, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
        if (o.io_timeout.count() > 0) {
            const unsigned io_s = static_cast<unsigned>(std::max<long long>(1, (o.io_timeout.count() + 999) / 1000));
            mysql_options(m_, MYSQL_OPT_READ_TIMEOUT, &io_s);
            mysql_options(m_, MYSQL_OPT_WRITE_TIMEOUT, &io_s);
        }
        // The driver keeps pointers to these only during the step: they live here until it ends.
        host_ = o.host;
        user_ = o.user;
        password_ = o.password;
        database_ = o.database;
        unix_socket_ = o.unix_socket;
        connected_ = nullptr;
        const int st = mysql_real_connect_start(&connected_, m_, host_.c_str(), user_.c_str(), password_.c_str(),
                                                database_.empty() ? nullptr : database_.c_str(), o.port,
                                                unix_socket_.empty() ? nullptr : unix_socket_.c_str(),
                                                CLIENT_MULTI_RESULTS);
        return advance(st);
    }

    // The statement and every result set it returns (rows into *out when out is not null).
    int start_query(std::string_view sql, result* out) {
        begin(step::send, phase::send);
        out_ = out;
        int_ret_ = 0;
        const int st = mysql_send_query_start(&int_ret_, m_, sql.data(), static_cast<unsigned long>(sql.size()));
        return advance(st);
    }

    int start_ping() {
        begin(step::ping, phase::send);
        int_ret_ = 0;
        return advance(mysql_ping_start(&int_ret_, m_));
    }

    int start_reset() {
        begin(step::reset, phase::read_result);
        int_ret_ = 0;
        return advance(mysql_reset_connection_start(&int_ret_, m_));
    }

    int resume(int ready) {
        switch (step_) {
        case step::connect: return advance(mysql_real_connect_cont(&connected_, m_, ready));
        case step::send: return advance(mysql_send_query_cont(&int_ret_, m_, ready));
        case step::read: return advance(mysql_read_query_result_cont(&bool_ret_, m_, ready));
        case step::store: return advance(mysql_store_result_cont(&res_, m_, ready));
        case step::next: return advance(mysql_next_result_cont(&int_ret_, m_, ready));
        case step::ping: return advance(mysql_ping_cont(&int_ret_, m_, ready));
        case step::reset: return advance(mysql_reset_connection_cont(&int_ret_, m_, ready));
        case step::none: break;
        }
        return 0;
    }

    bool ok() const noexcept { return ok_; }
    const diagnostics& error() const noexcept { return error_; }
    phase where() const noexcept { return where_; }
    bool is_open() const noexcept { return m_ != nullptr && open_; }
    int socket() const noexcept { return m_ ? static_cast<int>(mysql_get_socket(m_)) : -1; }
    std::chrono::milliseconds timeout() const noexcept {
        return std::chrono::milliseconds(m_ ? mysql_get_timeout_value_ms(m_) : 0);
    }

    // --- ending the session ---------------------------------------------------------------------
    // An idle session: COM_QUIT, without blocking. mysql_close_start finishes at once unless the
    // socket cannot take the 5 bytes; then the socket is shut down and the close finishes at once.
    void close() noexcept {
        if (!m_) return;
        if (step_ != step::none) return abandon();
        MYSQL* m = std::exchange(m_, nullptr);
        open_ = false;
        int st = mysql_close_start(m);
        if (st == 0) return;
        const int fd = static_cast<int>(mysql_get_socket(m));
        if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
        // Measured: one round at most once the socket is shut down. Bounded all the same: a
        // leaked handle is better than an io thread spinning forever.
        for (int i = 0; st != 0 && i < 64; ++i) st = mysql_close_cont(m, st & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE));
    }

    // A step is (or may be) in flight: the protocol state is unknown, so nothing more is written
    // (COM_QUIT could land inside a half-sent packet). Shut down, then free.
    void abandon() noexcept {
        if (!m_) return;
        MYSQL* m = std::exchange(m_, nullptr);
        open_ = false;
        step_ = step::none;
        free_result();
        const int fd = static_cast<int>(mysql_get_socket(m));
        if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
        mysql_close(m);
    }

    // --- session facts ------------------------------------------------------------------------
    bool in_transaction() const noexcept { return (server_status() & SERVER_STATUS_IN_TRANS) != 0; }
    bool session_changed() const noexcept { return (server_status() & SERVER_SESSION_STATE_CHANGED) != 0; }
    bool untracked_state_changed() const noexcept {
        // Only an OK packet carries fresh tracking data (see driver/capi.hpp).
        if (!m_ || mysql_field_count(m_) != 0) return false;
        const char* data = nullptr;
        size_t len = 0;
        if (mysql_session_track_get_first(m_, SESSION_TRACK_STATE_CHANGE, &data, &len) != 0) return false;
        return len == 1 && data[0] == '1';
    }
    bool reconnect_option_enabled() const noexcept {
        if (!m_) return false;
        my_bool on = 0;
        mysql_get_option(m_, MYSQL_OPT_RECONNECT, &on);
        return on != 0;
    }
    MYSQL* native() const noexcept { return m_; }

private:
    enum class step { none, connect, send, read, store, next, ping, reset };

    void begin(step s, phase p) noexcept {
        step_ = s;
        where_ = p;
        ok_ = false;
        error_ = diagnostics{};
    }

    unsigned server_status() const noexcept {
        unsigned status = 0;
        if (m_) mariadb_get_infov(m_, MARIADB_CONNECTION_SERVER_STATUS, &status);
        return status;
    }

    int done(bool ok) {
        step_ = step::none;
        ok_ = ok;
        return 0;
    }
    int fail(phase p) {
        error_ = capi::make_diagnostics(m_, p);
        return done(false);
    }

    // One driver call returned `st`: wait, or finish this part and start the next.
    int advance(int st) {
        while (st == 0) {
            switch (step_) {
            case step::connect:
                if (!connected_) {
                    error_ = capi::make_diagnostics(m_, phase::connect);
                    if (error_.code == 0) {  // nothing said: report it as the lost handshake it is
                        error_.code = 2013;
                        error_.sqlstate = "HY000";
                        error_.server_message = "lifeline: the connect ended without an answer";
                    }
                    return done(false);
                }
                open_ = true;
                return done(true);
            case step::send:
                if (int_ret_ != 0) return fail(phase::send);
                step_ = step::read;
                where_ = phase::read_result;
                bool_ret_ = 0;
                st = mysql_read_query_result_start(&bool_ret_, m_);
                break;
            case step::read:
                if (bool_ret_ != 0) return fail(phase::read_result);
                st = start_store();
                break;
            case step::next:
                if (int_ret_ > 0) return fail(phase::fetch);
                if (int_ret_ < 0) return done(true);
                st = start_store();
                break;
            case step::store:
                if (res_) {
                    take_rows();
                } else if (mysql_errno(m_) != 0) {
                    return fail(phase::fetch);
                } else if (out_) {
                    out_->affected_rows = mysql_affected_rows(m_);
                    out_->insert_id = mysql_insert_id(m_);
                }
                if (!mysql_more_results(m_)) return done(true);
                step_ = step::next;
                int_ret_ = 0;
                st = mysql_next_result_start(&int_ret_, m_);
                break;
            case step::ping:
                if (int_ret_ != 0) return fail(phase::send);
                return done(true);
            case step::reset:
                if (int_ret_ != 0) return fail(phase::read_result);
                return done(true);
            case step::none: return 0;
            }
        }
        return st;
    }

    int start_store() {
        step_ = step::store;
        where_ = phase::fetch;
        res_ = nullptr;
        return mysql_store_result_start(&res_, m_);
    }

    // A stored result is in memory: reading its rows does no I/O.
    void take_rows() {
        if (out_) {
            const unsigned n = mysql_num_fields(res_);
            MYSQL_FIELD* fields = mysql_fetch_fields(res_);
            out_->columns.clear();
            for (unsigned i = 0; i < n; ++i) out_->columns.emplace_back(fields[i].name, fields[i].name_length);
            while (MYSQL_ROW row = mysql_fetch_row(res_)) {
                unsigned long* len = mysql_fetch_lengths(res_);
                auto& out_row = out_->rows.emplace_back();
                out_row.reserve(n);
                for (unsigned i = 0; i < n; ++i) {
                    if (row[i]) out_row.emplace_back(std::in_place, row[i], len[i]);
                    else out_row.emplace_back(std::nullopt);
                }
            }
        }
        free_result();
    }
    void free_result() noexcept {
        if (res_) mysql_free_result(res_);
        res_ = nullptr;
    }

    MYSQL* m_ = nullptr;
    bool open_ = false;
    step step_ = step::none;
    phase where_ = phase::send;
    bool ok_ = false;
    diagnostics error_;
    // The steps' out-parameters: the driver writes them when a step finishes.
    MYSQL* connected_ = nullptr;
    int int_ret_ = 0;
    my_bool bool_ret_ = 0;
    MYSQL_RES* res_ = nullptr;
    result* out_ = nullptr;
    std::string host_, user_, password_, database_, unix_socket_;
};

}  // namespace lifeline::detail

namespace lifeline {

template <>
struct async_driver_traits<capi> {
    using session_type = detail::capi_async_session;
    using native_handle = MYSQL*;
    static constexpr const char* name = "capi (non-blocking)";
};

}  // namespace lifeline

#endif  // LIFELINE_DRIVER_CAPI_ASYNC_HPP
