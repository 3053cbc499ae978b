// lifeline — driver traits for MySQL Connector/C++ 1.1, the JDBC-style API (sql::Connection).
//
//   #include <lifeline/driver/jdbc.hpp>
//   lifeline::connection<lifeline::jdbc> db{options};
//   db.run([](sql::Connection& c) { legacy_report(c); }, lifeline::idempotent);
//
// Sets OPT_RECONNECT to false explicitly: Connector/C++'s reconnect() leans on it and loses the
// session silently; lifeline reconnects itself. Its connect deadline is whole seconds
// (OPT_CONNECT_TIMEOUT), and session-state tracking is not visible (guard_untracked_state has no
// effect).
//
// Socket: Connector/C++ hides it. lifeline finds it at connect by identity and the server's own
// view of the client address (detail/socket_discovery.hpp), and the session keeps its OWN
// descriptor for it (fcntl(F_DUPFD_CLOEXEC), detail/socket_ref.hpp) until close(): socket_fd()
// returns that descriptor or -1, so the zero-round-trip liveness check and the deadline watchdog
// act on this session's socket and never on one that got the driver's descriptor number after
// the driver closed it. -1 (Unix socket, a proxy in between, anything unconfirmed) falls back to
// the ping window and the driver's timeouts.
//
// Transactions: Connector/C++ 1.1's getAutoCommit() is a client-side cache and the server's status
// flags are out of reach, so the session tracks the state itself (detail::jdbc_session):
//   * each statement through execute()/prepared statements is read by describe_statement()
//     (detail/sql_text.hpp): BEGIN / START TRANSACTION / XA START, COMMIT / ROLLBACK (not ROLLBACK
//     TO SAVEPOINT), SET [SESSION] autocommit, statements that commit implicitly;
//   * when the text cannot tell (opaque: CALL, EXECUTE, executable comments, several statements,
//     ...), after user code run through invoke() returns, and after an implicit commit or a
//     server error inside a transaction, the state is asked from the server in one round trip:
//     SELECT @@in_transaction, @@autocommit (MariaDB 10.3+). Where that variable does not exist
//     (MySQL) the state stays unknown;
//   * user code that threw sql::SQLException leaves it unknown until the next confirmation.
// in_transaction() is conservative: true while a transaction is open, while autocommit is off
// (the next statement would open one), while getAutoCommit() says off, and while unknown.
#ifndef LIFELINE_DRIVER_JDBC_HPP
#define LIFELINE_DRIVER_JDBC_HPP

#include <lifeline/adopt.hpp>
#include <lifeline/connection.hpp>
#include <lifeline/detail/socket_discovery.hpp>
#include <lifeline/detail/sql_text.hpp>
#include <lifeline/driver/jdbc_error.hpp>
#include <lifeline/driver_traits.hpp>
#include <lifeline/error.hpp>
#include <lifeline/options.hpp>
#include <lifeline/result.hpp>
#include <lifeline/statement.hpp>

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/parameter_metadata.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lifeline {

namespace detail {

// A fact the session tracks: known true, known false, or not known (treated as the unsafe value).
enum class tristate : std::uint8_t { no, yes, unknown };

struct jdbc_session {
    std::unique_ptr<sql::Connection> conn;
    std::uint64_t id = 0;
    socket_ref socket;  // the session's own descriptor for the driver's socket (or empty)
    discovery_outcome socket_lookup = discovery_outcome::not_attempted;
    // Transaction state (see the top of the file). A new session: none open, autocommit as read.
    tristate transaction = tristate::no;
    tristate autocommit = tristate::yes;
    bool server_reports_transaction = true;  // SELECT @@in_transaction works (false on MySQL)

    jdbc_session() = default;
    jdbc_session(jdbc_session&&) noexcept = default;
    // Member-wise: the old connection is closed by unique_ptr, the old descriptor by socket_ref.
    jdbc_session& operator=(jdbc_session&&) noexcept = default;
    jdbc_session(const jdbc_session&) = delete;
    jdbc_session& operator=(const jdbc_session&) = delete;
    ~jdbc_session() = default;
};

// A prepared statement and what its text says (applied to the session each time it runs).
struct jdbc_statement {
    std::unique_ptr<sql::PreparedStatement> ps;
    statement_info info;
};

}  // namespace detail

template <>
struct driver_traits<jdbc> {
    using session_type = detail::jdbc_session;
    using statement_type = detail::jdbc_statement;
    using native_handle = sql::Connection&;
    static constexpr const char* name = "jdbc";

    static bool connect(session_type& s, const connect_options& o, std::chrono::milliseconds budget, diagnostics& out) {
        close(s);
        sql::ConnectOptionsMap props;
        const bool tcp = o.unix_socket.empty();
        if (tcp) {
            props["hostName"] = sql::SQLString("tcp://" + o.host + ":" + std::to_string(o.port));
        } else {
            props["hostName"] = sql::SQLString("unix://" + o.unix_socket);
        }
        props["userName"] = sql::SQLString(o.user);
        props["password"] = sql::SQLString(o.password);
        if (!o.database.empty()) props["schema"] = sql::SQLString(o.database);
        props["OPT_CONNECT_TIMEOUT"] = static_cast<int>(std::max<long long>(1, (budget.count() + 999) / 1000));
        if (o.io_timeout.count() > 0) {
            int io = static_cast<int>(std::max<long long>(1, (o.io_timeout.count() + 999) / 1000));
            props["OPT_READ_TIMEOUT"] = io;
            props["OPT_WRITE_TIMEOUT"] = io;
        }
        props["OPT_RECONNECT"] = false;  // never: lifeline reconnects itself and restores the session
        apply_options(props, o);
        run_pre_connect(props, o);
        try {
            sql::Driver& driver = driver_instance();
            std::vector<detail::socket_identity> before;
            if (tcp) before = detail::socket_identities();
            s.conn.reset(driver.connect(props));
            return set_up(s, o, tcp, before, out);
        } catch (const sql::SQLException& e) {
            out = jdbc::make_diagnostics(e, phase::connect);
            close(s);
            return false;
        }
    }

    // An open connection becomes the session (lifeline/adopt.hpp). Connector/C++ cannot switch
    // OPT_RECONNECT off after connect: a connection that reports it on is refused. Debian's build
    // (on MariaDB Connector/C) cannot even report it (getClientOption("OPT_RECONNECT") throws
    // "::mysql_get_option()"), so there the caller must have opened it with OPT_RECONNECT = false.
    // Its socket is found after the fact (the peer in connect_options, confirmed by the server's view).
    static bool adopt(session_type& s, std::unique_ptr<sql::Connection> c, ownership own, const connect_options& o,
                      diagnostics& out) {
        close(s);
        if (own != ownership::take)
            throw detail::connect_refused{"a Connector/C++ connection is adopted as a std::unique_ptr, which lifeline "
                                          "takes: ownership::borrow is for the C API's MYSQL*"};
        if (!c) throw detail::connect_refused{"adopt() was given an empty std::unique_ptr<sql::Connection>"};
        s.conn = std::move(c);
        if (reconnect_option_enabled(s)) {
            close(s);
            throw detail::connect_refused{"the adopted sql::Connection was opened with OPT_RECONNECT on, which "
                                          "Connector/C++ cannot switch off: open it with OPT_RECONNECT = false "
                                          "(lifeline reconnects itself and restores the session)"};
        }
        try {
            return set_up(s, o, o.unix_socket.empty(), {}, out);
        } catch (const sql::SQLException& e) {
            out = jdbc::make_diagnostics(e, phase::connect);
            close(s);
            return false;
        }
    }

    // What this adapter cannot do with valid options (every connect_options field maps to a
    // Connector/C++ 1.1 property; the pre_connect hook must take its properties map).
    static std::string check_options(const connect_options& o) {
        if (!o.pre_connect.accepts<sql::ConnectOptionsMap&>())
            return "connect_options.pre_connect takes MYSQL* (the C API) but this connection uses Connector/C++: make "
                   "it a function of sql::ConnectOptionsMap&";
        return {};
    }

    static void close(session_type& s) noexcept {
        if (s.conn) {
            try {
                s.conn->close();
            } catch (...) {
            }
        }
        s.conn.reset();
        s.socket.reset();  // after the driver's own close (see socket_ref.hpp)
        s.socket_lookup = detail::discovery_outcome::not_attempted;
        s.id = 0;
        s.transaction = detail::tristate::no;
        s.autocommit = detail::tristate::yes;
        s.server_reports_transaction = true;
    }
    static bool is_open(const session_type& s) noexcept { return s.conn != nullptr; }
    static native_handle native(session_type& s) noexcept { return *s.conn; }
    // The session's own descriptor for the driver's socket (see the top of the file), or -1.
    static int socket_fd(const session_type& s) noexcept { return s.conn ? s.socket.get() : -1; }

    static bool ping(session_type& s, diagnostics& out) {
        try {
            if (s.conn->isValid()) return true;
        } catch (const sql::SQLException& e) {
            out = jdbc::make_diagnostics(e, phase::send);
            return false;
        }
        out = diagnostics{};
        out.code = 2006;  // CR_SERVER_GONE_ERROR: what isValid() == false means
        out.sqlstate = "HY000";
        out.where = phase::send;
        out.client_message = "Connector/C++ isValid() returned false";  // lifeline's words, not the server's
        out.driver = jdbc::driver_name();
        return false;
    }

    static constexpr bool writes_over_result = true;  // execute / execute_prepared use result_writer
    static bool execute(session_type& s, std::string_view sql_text, result* res, diagnostics& out) {
        result_writer w(res);  // first: every way out leaves only this statement's result
        const detail::statement_info info = detail::describe_statement(sql_text);
        phase where = phase::read_result;
        try {
            std::unique_ptr<sql::Statement> st(s.conn->createStatement());
            bool has_rows = st->execute(sql::SQLString(sql_text.data(), sql_text.size()));
            where = phase::fetch;
            read_results(*st, has_rows, w);
        } catch (const sql::SQLException& e) {
            out = jdbc::make_diagnostics(e, where);
            note_failure(s, info, out.code);
            return false;
        }
        note_statement(s, info);
        return true;
    }

    // --- prepared statements (parameters as text) -------------------------------------------------
    static bool prepare(session_type& s, std::string_view sql_text, std::optional<statement_type>& out, diagnostics& d) {
        try {
            statement_type st;
            st.ps.reset(s.conn->prepareStatement(sql::SQLString(sql_text.data(), sql_text.size())));
            st.info = detail::describe_statement(sql_text);
            st.info.keyword = {};  // a view into the caller's text, which need not outlive this call
            out.emplace(std::move(st));
            return true;
        } catch (const sql::SQLException& e) {
            d = jdbc::make_diagnostics(e, phase::read_result);
            out.reset();
            return false;
        }
    }
    static std::size_t param_count(statement_type& st) noexcept {
        try {
            return static_cast<std::size_t>(st.ps->getParameterMetaData()->getParameterCount());
        } catch (...) {
            return 0;
        }
    }
    static void close_statement(statement_type& st) noexcept {
        try {
            if (st.ps) st.ps->close();
        } catch (...) {
        }
        st.ps.reset();
    }
    static bool execute_prepared(session_type& s, statement_type& h, const params& args, result* res, diagnostics& d) {
        result_writer w(res);  // first: every way out leaves only this statement's result
        phase where = phase::read_result;
        sql::PreparedStatement* st = h.ps.get();
        try {
            for (std::size_t i = 0; i < args.size(); ++i) {
                auto idx = static_cast<unsigned int>(i + 1);
                if (args[i]) st->setString(idx, sql::SQLString(*args[i]));
                else st->setNull(idx, sql::DataType::VARCHAR);
            }
            // Connector/C++ 1.1 prepared statements implement neither getUpdateCount() nor
            // getMoreResults() (they throw after the statement ran): pick query or update up front.
            sql::ResultSetMetaData* md = st->getMetaData();
            if (md == nullptr || md->getColumnCount() == 0) {
                auto n = st->executeUpdate();
                if (w) w.counts(static_cast<std::uint64_t>(n), 0);
            } else {
                std::unique_ptr<sql::ResultSet> rs(st->executeQuery());
                where = phase::fetch;
                if (w) read_rows(*rs, w);
            }
        } catch (const sql::SQLException& e) {
            d = jdbc::make_diagnostics(e, where);
            note_failure(s, h.info, d.code);
            return false;
        }
        note_statement(s, h.info);
        return true;
    }

    // User code inside run(): a thrown sql::SQLException is the failure; other exceptions propagate.
    // User code can do anything to the transaction: the state is unknown while it runs and is
    // confirmed from the server when it returns normally (one round trip).
    template <class F, class Out>
    static bool invoke(session_type& s, F& f, Out& out, diagnostics& d) {
        s.transaction = s.autocommit = detail::tristate::unknown;
        try {
            detail::call_into(f, *s.conn, out);
        } catch (const sql::SQLException& e) {
            d = jdbc::make_diagnostics(e, phase::read_result);
            out.reset();
            return false;  // unknown until the next confirmation
        }
        confirm_state(s);
        return true;
    }

    // Conservative (see the top of the file): true unless the session is known to be outside a
    // transaction with autocommit on.
    static bool in_transaction(const session_type& s) noexcept {
        if (!s.conn) return false;
        if (s.transaction != detail::tristate::no || s.autocommit != detail::tristate::yes) return true;
        try {
            return !s.conn->getAutoCommit();  // setAutoCommit(false) by user code, even if unconfirmed
        } catch (...) {
            return true;
        }
    }

    static bool reconnect_option_enabled(session_type& s) noexcept {
        if (!s.conn) return false;
        try {
            bool on = false;
            s.conn->getClientOption("OPT_RECONNECT", &on);
            return on;
        } catch (...) {
            return false;
        }
    }
    static bool untracked_state_changed(session_type&) noexcept { return false; }
    static std::uint64_t connection_id(session_type& s) noexcept { return s.id; }

private:
    static void read_rows(sql::ResultSet& rs, result_writer& w) {
        sql::ResultSetMetaData* md = rs.getMetaData();
        const unsigned n = md->getColumnCount();
        w.begin_set(n);
        for (unsigned i = 0; i < n; ++i) {
            const sql::SQLString label = md->getColumnLabel(i + 1);
            w.column(i, label.c_str(), label.length());
        }
        while (rs.next()) {
            w.begin_row();
            for (unsigned i = 0; i < n; ++i) {
                const sql::SQLString v = rs.getString(i + 1);
                if (rs.wasNull()) w.null(i);
                else w.cell(i, v.c_str(), v.length());
            }
        }
    }

    // Reads every result of a statement that has run (rows as text, or the update count).
    static void read_results(sql::Statement& st, bool has_rows, result_writer& w) {
        for (;;) {
            if (has_rows) {
                std::unique_ptr<sql::ResultSet> rs(st.getResultSet());
                if (w && rs) read_rows(*rs, w);
            } else if (w) {
                // getUpdateCount() is unsigned in 1.1; "no more results" is its all-ones value.
                auto count = st.getUpdateCount();
                if (count != static_cast<decltype(count)>(-1)) w.counts(count, 0);
            }
            if (!st.getMoreResults()) {
                if (st.getUpdateCount() == static_cast<decltype(st.getUpdateCount())>(-1)) break;
                has_rows = false;
            } else {
                has_rows = true;
            }
        }
    }

    // connect_options -> Connector/C++ 1.1 properties (measured against a TLS server: sslCA makes
    // it verify the chain, sslVerify adds the host name check and refuses a server without TLS,
    // sslEnforce uses TLS when offered but falls back to plaintext, OPT_SSL_MODE is ignored when it
    // is built on MariaDB Connector/C, as Debian's is). TLS from `required` up is checked after
    // the handshake (set_up).
    static void apply_options(sql::ConnectOptionsMap& props, const connect_options& o) {
        if (o.ssl != ssl_mode::disabled) {
            props["sslEnforce"] = true;
            auto text = [&](const char* key, const std::string& v) {
                if (!v.empty()) props[key] = sql::SQLString(v);
            };
            text("sslCA", o.ssl_ca);
            text("sslCAPath", o.ssl_capath);
            text("sslCert", o.ssl_cert);
            text("sslKey", o.ssl_key);
            text("sslCipher", o.ssl_cipher);
            text("sslCRL", o.ssl_crl);
            text("OPT_TLS_VERSION", o.tls_version);
            if (o.ssl == ssl_mode::verify_identity) props["sslVerify"] = true;
        }
        if (!o.charset.empty()) {
            props["OPT_CHARSET_NAME"] = sql::SQLString(o.charset);
            props["characterSetResults"] = sql::SQLString(o.charset);  // else it asks utf8mb4 results
        }
        if (o.compress) props["CLIENT_COMPRESS"] = true;
        if (o.max_allowed_packet) props["OPT_MAX_ALLOWED_PACKET"] = static_cast<int>(o.max_allowed_packet);
        if (!o.attributes.empty()) {
            std::map<sql::SQLString, sql::SQLString> attrs;
            for (const auto& [k, v] : o.attributes) attrs[sql::SQLString(k)] = sql::SQLString(v);
            props["OPT_CONNECT_ATTR_ADD"] = attrs;
        }
    }

    static void run_pre_connect(sql::ConnectOptionsMap& props, const connect_options& o) {
        if (!o.pre_connect) return;
        std::string why;
        bool ok = false;
        try {
            ok = o.pre_connect.run<sql::ConnectOptionsMap&>(props, why);
        } catch (const std::exception& e) {
            why = std::string("connect_options.pre_connect threw: ") + e.what();
        } catch (...) {
            why = "connect_options.pre_connect threw";
        }
        if (!ok) throw detail::connect_refused{why};
    }

    // After connect (or adoption): one round trip for the session id, its autocommit and the
    // server's view of our address (which confirms the socket; the subquery keeps a row even if
    // PROCESSLIST had none); from ssl_mode required up, one more to check that TLS is in use.
    static bool set_up(session_type& s, const connect_options& o, bool tcp, const std::vector<detail::socket_identity>& before,
                       diagnostics& out) {
        std::unique_ptr<sql::Statement> st(s.conn->createStatement());
        std::unique_ptr<sql::ResultSet> rs(st->executeQuery(
            "SELECT CONNECTION_ID(), @@autocommit, "
            "(SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID())"));
        std::string client;
        s.id = 0;
        s.autocommit = detail::tristate::unknown;
        if (rs->next()) {
            s.id = rs->getUInt64(1);
            s.autocommit = rs->getInt(2) != 0 ? detail::tristate::yes : detail::tristate::no;
            client = rs->getString(3);
            if (rs->wasNull()) client.clear();
        }
        s.transaction = detail::tristate::no;  // a new session has none
        if (o.ssl != ssl_mode::disabled && o.ssl != ssl_mode::preferred) {
            std::unique_ptr<sql::ResultSet> tls(st->executeQuery("SHOW SESSION STATUS LIKE 'Ssl_cipher'"));
            const std::string cipher = tls->next() ? std::string(tls->getString(2)) : std::string();
            if (cipher.empty()) {
                out = diagnostics{};
                out.code = 2026;  // CR_SSL_CONNECTION_ERROR: never retried
                out.sqlstate = "HY000";
                out.where = phase::connect;
                out.driver = jdbc::driver_name();
                out.client_message = "ssl_mode is " + std::string(to_string(o.ssl)) +
                                     " but the server did not use TLS (it offers none: configure ssl_cert and ssl_key "
                                     "on the server); lifeline closed the connection before any statement";
                close(s);
                return false;
            }
        }
        if (tcp) s.socket = detail::adopt_session_socket(before, o.host, o.port, client, s.socket_lookup);
        return true;
    }

    // Connector/C++ documents the first get_driver_instance() call as not thread-safe: make it
    // once (a function-local static is initialised exactly once, even with concurrent callers).
    static sql::Driver& driver_instance() {
        static sql::Driver* const driver = sql::mysql::get_driver_instance();
        return *driver;
    }

    // Asks the server: SELECT @@in_transaction, @@autocommit. On failure (or on a server without
    // @@in_transaction) the state is unknown. Never throws; bounded by the caller's watchdog.
    static void confirm_state(session_type& s) noexcept {
        s.transaction = s.autocommit = detail::tristate::unknown;
        if (!s.conn || !s.server_reports_transaction) return;
        try {
            std::unique_ptr<sql::Statement> st(s.conn->createStatement());
            std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT @@in_transaction, @@autocommit"));
            if (rs->next()) {
                s.transaction = rs->getInt(1) != 0 ? detail::tristate::yes : detail::tristate::no;
                s.autocommit = rs->getInt(2) != 0 ? detail::tristate::yes : detail::tristate::no;
            }
        } catch (const sql::SQLException& e) {
            if (e.getErrorCode() == 1193) s.server_reports_transaction = false;  // ER_UNKNOWN_SYSTEM_VARIABLE
        } catch (...) {
        }
    }

    // After a statement that succeeded: apply what its text says, ask the server where it cannot.
    static void note_statement(session_type& s, const detail::statement_info& i) noexcept {
        using detail::tristate;
        if (!i.affects_transaction()) return;
        const bool was_idle = s.transaction == tristate::no && s.autocommit == tristate::yes;
        if (i.implicit_commit && !i.begins_transaction && i.sets_autocommit == detail::autocommit_change::untouched)
            s.transaction = tristate::no;
        if (i.sets_autocommit == detail::autocommit_change::on) {
            // Commits only if autocommit was 0; if that is unknown, so is whether it committed.
            if (s.autocommit == tristate::no) s.transaction = tristate::no;
            else if (s.autocommit == tristate::unknown && s.transaction != tristate::no) s.transaction = tristate::unknown;
            s.autocommit = tristate::yes;
        } else if (i.sets_autocommit == detail::autocommit_change::off) {
            s.autocommit = tristate::no;
        }
        if (i.ends_transaction) s.transaction = tristate::no;
        if (i.begins_transaction) s.transaction = tristate::yes;
        // The server decides: statements the text cannot settle, and implicit commits that may
        // have ended a transaction (a few listed ones do not always, e.g. LOAD INDEX on InnoDB).
        const bool ask = i.opaque || (i.implicit_commit && !i.begins_transaction && !was_idle);
        if (!ask) return;
        if (s.server_reports_transaction) confirm_state(s);
        else if (i.opaque) s.transaction = s.autocommit = tristate::unknown;  // MySQL: keep the text's word otherwise
    }

    // After a statement that failed. A transaction statement or an opaque one may have acted
    // before failing (an implicit commit happens even if the statement then fails); a server
    // error inside a transaction may have rolled it back (deadlock). Ask the server while the
    // connection still answers (a server error); otherwise the state is unknown.
    static void note_failure(session_type& s, const detail::statement_info& i, unsigned code) noexcept {
        const bool server_error = code > 0 && code < 2000;
        const bool relevant = i.affects_transaction();
        if (!relevant && !(server_error && in_transaction(s))) return;
        if (server_error) confirm_state(s);
        else s.transaction = s.autocommit = detail::tristate::unknown;
    }
};

}  // namespace lifeline

#endif  // LIFELINE_DRIVER_JDBC_HPP
