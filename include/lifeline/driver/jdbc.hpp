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
        try {
            sql::Driver& driver = driver_instance();
            std::vector<detail::socket_identity> before;
            if (tcp) before = detail::socket_identities();
            s.conn.reset(driver.connect(props));
            // One round trip: the session id, its autocommit, and the server's view of our address
            // (which confirms the socket). The subquery keeps a row even if PROCESSLIST had none.
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
            if (tcp) s.socket = detail::adopt_session_socket(before, o.host, o.port, client, s.socket_lookup);
            return true;
        } catch (const sql::SQLException& e) {
            out = jdbc::make_diagnostics(e, phase::connect);
            close(s);
            return false;
        }
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

    static bool execute(session_type& s, std::string_view sql_text, result* res, diagnostics& out) {
        const detail::statement_info info = detail::describe_statement(sql_text);
        phase where = phase::read_result;
        try {
            std::unique_ptr<sql::Statement> st(s.conn->createStatement());
            bool has_rows = st->execute(sql::SQLString(sql_text.data(), sql_text.size()));
            where = phase::fetch;
            read_results(*st, has_rows, res);
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
                if (res) res->affected_rows = static_cast<std::uint64_t>(n);
            } else {
                std::unique_ptr<sql::ResultSet> rs(st->executeQuery());
                where = phase::fetch;
                if (res) read_rows(*rs, *res);
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
    static void read_rows(sql::ResultSet& rs, result& res) {
        sql::ResultSetMetaData* md = rs.getMetaData();
        unsigned n = md->getColumnCount();
        res.columns.clear();
        for (unsigned i = 1; i <= n; ++i) res.columns.emplace_back(md->getColumnLabel(i));
        while (rs.next()) {
            auto& row = res.rows.emplace_back();
            for (unsigned i = 1; i <= n; ++i) {
                std::string v = rs.getString(i);
                if (rs.wasNull()) row.emplace_back(std::nullopt);
                else row.emplace_back(std::move(v));
            }
        }
    }

    // Reads every result of a statement that has run (rows as text, or the update count).
    static void read_results(sql::Statement& st, bool has_rows, result* res) {
        for (;;) {
            if (has_rows) {
                std::unique_ptr<sql::ResultSet> rs(st.getResultSet());
                if (res && rs) read_rows(*rs, *res);
            } else if (res) {
                // getUpdateCount() is unsigned in 1.1; "no more results" is its all-ones value.
                auto count = st.getUpdateCount();
                if (count != static_cast<decltype(count)>(-1)) res->affected_rows = count;
            }
            if (!st.getMoreResults()) {
                if (st.getUpdateCount() == static_cast<decltype(st.getUpdateCount())>(-1)) break;
                has_rows = false;
            } else {
                has_rows = true;
            }
        }
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
