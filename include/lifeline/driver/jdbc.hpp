// lifeline — driver traits for MySQL Connector/C++ 1.1, the JDBC-style API (sql::Connection).
//
//   #include <lifeline/driver/jdbc.hpp>
//   lifeline::connection<lifeline::jdbc> db{options};
//   db.run([](sql::Connection& c) { legacy_report(c); }, lifeline::idempotent);
//
// Sets OPT_RECONNECT to false explicitly: Connector/C++'s reconnect() leans on it and loses the
// session silently; lifeline reconnects itself. Connector/C++ hides its socket; lifeline finds it
// at connect (detail/socket_discovery.hpp) so the zero-round-trip liveness check and the deadline
// watchdog work here too. Its connect deadline is whole seconds (OPT_CONNECT_TIMEOUT), and
// session-state tracking is not visible (guard_untracked_state has no effect).
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

struct jdbc_session {
    std::unique_ptr<sql::Connection> conn;
    std::uint64_t id = 0;
    int fd = -1;                // the driver's socket, found by socket_discovery (-1: unknown)
    bool explicit_txn = false;  // BEGIN/START TRANSACTION seen through lifeline, not yet ended
};

}  // namespace detail

template <>
struct driver_traits<jdbc> {
    using session_type = detail::jdbc_session;
    using statement_type = std::unique_ptr<sql::PreparedStatement>;
    using native_handle = sql::Connection&;
    static constexpr const char* name = "jdbc";

    static bool connect(session_type& s, const connect_options& o, std::chrono::milliseconds budget, diagnostics& out) {
        close(s);
        sql::ConnectOptionsMap props;
        if (o.unix_socket.empty()) {
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
            auto* driver = sql::mysql::get_driver_instance();
            auto sockets_before = detail::open_sockets();
            s.conn.reset(driver->connect(props));
            s.fd = o.unix_socket.empty() ? detail::find_new_socket(sockets_before, detail::open_sockets(), o.host, o.port)
                                         : -1;
            std::unique_ptr<sql::Statement> st(s.conn->createStatement());
            std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT CONNECTION_ID()"));
            s.id = rs->next() ? rs->getUInt64(1) : 0;
            return true;
        } catch (const sql::SQLException& e) {
            out = jdbc::make_diagnostics(e, phase::connect);
            s.conn.reset();
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
        s.fd = -1;
        s.explicit_txn = false;
    }
    static bool is_open(const session_type& s) noexcept { return s.conn != nullptr; }
    static native_handle native(session_type& s) noexcept { return *s.conn; }
    // Found at connect (see socket_discovery.hpp): enables the zero-round-trip liveness check and
    // the deadline watchdog for Connector/C++ too; -1 falls back to the ping window.
    static int socket_fd(const session_type& s) noexcept { return s.conn ? s.fd : -1; }

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
        out.server_message = "Connector/C++ isValid() returned false";
        out.driver = "MySQL Connector/C++ 1.1";
        return false;
    }

    static bool execute(session_type& s, std::string_view sql_text, result* res, diagnostics& out) {
        phase where = phase::read_result;
        try {
            std::unique_ptr<sql::Statement> st(s.conn->createStatement());
            bool has_rows = st->execute(sql::SQLString(sql_text.data(), sql_text.size()));
            track_transaction(s, sql_text);
            where = phase::fetch;
            read_results(*st, has_rows, res);
            return true;
        } catch (const sql::SQLException& e) {
            out = jdbc::make_diagnostics(e, where);
            return false;
        }
    }

    // --- prepared statements (parameters as text) -------------------------------------------------
    static bool prepare(session_type& s, std::string_view sql_text, std::optional<statement_type>& out, diagnostics& d) {
        try {
            out.emplace(s.conn->prepareStatement(sql::SQLString(sql_text.data(), sql_text.size())));
            return true;
        } catch (const sql::SQLException& e) {
            d = jdbc::make_diagnostics(e, phase::read_result);
            out.reset();
            return false;
        }
    }
    static std::size_t param_count(statement_type& st) noexcept {
        try {
            return static_cast<std::size_t>(st->getParameterMetaData()->getParameterCount());
        } catch (...) {
            return 0;
        }
    }
    static void close_statement(statement_type& st) noexcept {
        try {
            if (st) st->close();
        } catch (...) {
        }
        st.reset();
    }
    static bool execute_prepared(session_type&, statement_type& st, const params& args, result* res, diagnostics& d) {
        phase where = phase::read_result;
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
                return true;
            }
            std::unique_ptr<sql::ResultSet> rs(st->executeQuery());
            where = phase::fetch;
            if (res) read_rows(*rs, *res);
            return true;
        } catch (const sql::SQLException& e) {
            d = jdbc::make_diagnostics(e, where);
            return false;
        }
    }

    // User code inside run(): a thrown sql::SQLException is the failure; other exceptions propagate.
    template <class F, class Out>
    static bool invoke(session_type& s, F& f, Out& out, diagnostics& d) {
        try {
            detail::call_into(f, *s.conn, out);
            return true;
        } catch (const sql::SQLException& e) {
            d = jdbc::make_diagnostics(e, phase::read_result);
            out.reset();
            return false;
        }
    }

    static bool in_transaction(const session_type& s) noexcept {
        if (!s.conn) return false;
        if (s.explicit_txn) return true;
        try {
            return !s.conn->getAutoCommit();
        } catch (...) {
            return false;
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

    static void track_transaction(session_type& s, std::string_view sql_text) {
        if (detail::starts_with_keyword(sql_text, "BEGIN") || detail::starts_with_keyword(sql_text, "START TRANSACTION"))
            s.explicit_txn = true;
        else if (detail::starts_with_keyword(sql_text, "COMMIT") || detail::starts_with_keyword(sql_text, "ROLLBACK"))
            s.explicit_txn = false;
    }
};

}  // namespace lifeline

#endif  // LIFELINE_DRIVER_JDBC_HPP
