// A scripted fake driver for unit tests of lifeline's policy logic (no server, no network).
//
// `fake_server` plays the database: it applies writes (counting how often each statement really
// ran, to catch duplicates), and follows a script of faults: "the next execute fails with 2013 in
// read_result after the server applied it", "the next connect is refused", ... Each session owns a
// real socketpair so lifeline's zero-round-trip liveness probe sees a real socket; `kill_idle()`
// closes the server's end like KILL CONNECTION / wait_timeout do.
#ifndef LIFELINE_TESTS_SUPPORT_FAKE_DRIVER_HPP
#define LIFELINE_TESTS_SUPPORT_FAKE_DRIVER_HPP

#include <lifeline/connection.hpp>
#include <lifeline/driver_traits.hpp>
#include <lifeline/error.hpp>
#include <lifeline/options.hpp>
#include <lifeline/result.hpp>
#include <lifeline/statement.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace lifeline::test {

struct fake;  // the driver tag

struct fault {
    unsigned code = 0;
    std::string sqlstate = "HY000";
    phase where = phase::read_result;
    bool applied = false;         // the server ran the statement before the failure
    bool breaks_connection = true;
    std::string message = "scripted fault";
};

struct fake_server {
    std::deque<fault> connect_faults;  // consumed by connect()
    std::deque<fault> execute_faults;  // consumed by execute()/invoke(); code 0 = succeed
    std::map<std::string, int> applied;  // statement -> times it really ran
    std::vector<std::string> log;        // "connect", "ping", "exec:<sql>"
    int connects = 0, pings = 0;
    bool reconnect_option = false;       // simulate a driver that turns OPT_RECONNECT on
    bool state_change_next = false;      // the next successful statement reports a state change
    std::uint64_t next_id = 1;
    int server_fd_of_last = -1;          // the "server" end of the newest session's socket

    static fake_server*& current() {
        static fake_server* s = nullptr;
        return s;
    }
};

struct fake_session {
    fake_server* srv = nullptr;
    bool open = false;
    bool in_txn = false;
    bool state_changed = false;
    std::uint64_t id = 0;
    int client_fd = -1, server_fd = -1;
    lifeline::diagnostics last_error;  // what run() user code left behind (like mysql_errno)
    bool atomic_txn = false;           // inside START TRANSACTION: writes wait for COMMIT
    std::vector<std::string> pending;  // writes of the open atomic transaction

    fake_session() = default;
    fake_session(fake_session&& o) noexcept { *this = std::move(o); }
    fake_session& operator=(fake_session&& o) noexcept {
        if (this != &o) {
            reset();
            srv = o.srv;
            open = o.open;
            in_txn = o.in_txn;
            id = o.id;
            client_fd = o.client_fd;
            server_fd = o.server_fd;
            o.open = false;
            o.client_fd = o.server_fd = -1;
        }
        return *this;
    }
    ~fake_session() { reset(); }
    void reset() {
        pending.clear();
        atomic_txn = false;
        if (client_fd >= 0) ::close(client_fd);
        if (server_fd >= 0) ::close(server_fd);
        client_fd = server_fd = -1;
        open = false;
        in_txn = false;
    }
    // The server closes its end while the client is idle (KILL CONNECTION, wait_timeout).
    void kill_idle() {
        pending.clear();  // the server rolls the open transaction back
        atomic_txn = false;
        if (server_fd >= 0) ::close(server_fd);
        server_fd = -1;
    }
};

}  // namespace lifeline::test

template <>
struct lifeline::driver_traits<lifeline::test::fake> {
    using session_type = lifeline::test::fake_session;
    using native_handle = lifeline::test::fake_session*;
    using statement_type = std::string;  // the prepared SQL
    static constexpr const char* name = "fake";

    static void fill(const test::fault& f, diagnostics& d) {
        d = diagnostics{};
        d.code = f.code;
        d.sqlstate = f.sqlstate;
        d.where = f.where;
        d.server_message = f.message;
        d.driver = "fake";
    }

    static bool connect(session_type& s, const connect_options&, std::chrono::milliseconds, diagnostics& out) {
        auto* srv = test::fake_server::current();
        s.reset();
        s.srv = srv;
        srv->log.push_back("connect");
        ++srv->connects;
        if (!srv->connect_faults.empty()) {
            auto f = srv->connect_faults.front();
            srv->connect_faults.pop_front();
            if (f.code != 0) {
                fill(f, out);
                out.where = phase::connect;
                return false;
            }
        }
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return false;
        s.client_fd = fds[0];
        s.server_fd = fds[1];
        srv->server_fd_of_last = fds[1];
        s.open = true;
        s.id = srv->next_id++;
        return true;
    }
    static void close(session_type& s) noexcept { s.reset(); }
    static bool is_open(const session_type& s) noexcept { return s.open; }
    static native_handle native(session_type& s) noexcept { return &s; }
    static int socket_fd(const session_type& s) noexcept { return s.client_fd; }
    static bool ping(session_type& s, diagnostics& out) {
        s.srv->log.push_back("ping");
        ++s.srv->pings;
        if (s.server_fd < 0) {
            test::fault f;
            f.code = 2006;
            f.where = phase::send;
            fill(f, out);
            return false;
        }
        return true;
    }

    // One statement against the fake server; `sql` is what gets counted in `applied`.
    // "BEGIN" transactions apply writes at once (enough for single-statement tests); "START
    // TRANSACTION" (what lifeline's transaction() sends) keeps them pending until COMMIT, so a
    // lost or cut COMMIT really decides whether they exist.
    static bool run_statement(session_type& s, std::string_view sql, result* res, diagnostics& out) {
        auto* srv = s.srv;
        const std::string text(sql);
        srv->log.push_back("exec:" + text);
        if (s.server_fd < 0) {  // killed while idle: what the real driver reports (fault matrix)
            test::fault f;
            f.code = 2013;
            f.where = phase::read_result;
            fill(f, out);
            return false;
        }
        auto apply = [&](const std::string& w) { ++srv->applied[w]; };
        bool is_set = text.rfind("SET ", 0) == 0 || text.rfind("SELECT @@", 0) == 0;
        if (!is_set && !srv->execute_faults.empty()) {
            auto f = srv->execute_faults.front();
            srv->execute_faults.pop_front();
            if (f.code != 0) {
                if (text == "COMMIT" && f.applied)
                    for (auto& w : s.pending) apply(w);
                else if (f.applied)
                    (s.atomic_txn ? s.pending.push_back(text) : apply(text));
                fill(f, out);
                if (f.breaks_connection) s.kill_idle();
                return false;
            }
        }
        if (res) {
            res->columns = {"v"};
            res->rows = {{std::string("1")}};
            res->affected_rows = 1;
        }
        if (text == "BEGIN") s.in_txn = true;
        if (text == "START TRANSACTION") {
            s.in_txn = s.atomic_txn = true;
            s.pending.clear();
        }
        if (text == "COMMIT") {
            for (auto& w : s.pending) apply(w);
            s.pending.clear();
            s.in_txn = s.atomic_txn = false;
        }
        if (text == "ROLLBACK") {
            s.pending.clear();
            s.in_txn = s.atomic_txn = false;
        }
        const std::string marker_lookup = "SELECT COUNT(*) FROM lifeline_commit_marker WHERE token = '";
        if (text.rfind(marker_lookup, 0) == 0) {
            std::string token = text.substr(marker_lookup.size(), 32);
            bool found = srv->applied.count("INSERT INTO lifeline_commit_marker (token) VALUES ('" + token + "')") > 0;
            if (res) res->rows = {{std::string(found ? "1" : "0")}};
            return true;
        }
        if (text.rfind("SELECT COUNT(*) FROM information_schema.PROCESSLIST", 0) == 0) {
            if (res) res->rows = {{std::string("0")}};  // the fake's killed sessions are gone at once
            return true;
        }
        if (s.atomic_txn && text != "START TRANSACTION") s.pending.push_back(text);
        else if (text != "COMMIT" && text != "ROLLBACK") apply(text);
        s.state_changed = srv->state_change_next;
        srv->state_change_next = false;
        if (res && text.rfind("SELECT @@wait_timeout", 0) == 0) {
            res->columns = {"@@wait_timeout", "@@max_allowed_packet"};
            res->rows = {{std::string("28800"), std::string("1048576")}};
        }
        return true;
    }
    static bool execute(session_type& s, std::string_view sql, result* res, diagnostics& out) {
        return run_statement(s, sql, res, out);
    }
    // Prepared statements: logged as "prepare:<sql>"; execution counts "<sql> | p1, p2" as applied.
    static bool prepare(session_type& s, std::string_view sql, std::optional<statement_type>& out, diagnostics& d) {
        s.srv->log.push_back("prepare:" + std::string(sql));
        if (s.server_fd < 0) {
            test::fault f;
            f.code = 2013;
            fill(f, d);
            return false;
        }
        out.emplace(sql);
        return true;
    }
    static std::size_t param_count(statement_type& st) noexcept {
        return static_cast<std::size_t>(std::count(st.begin(), st.end(), '?'));
    }
    static void close_statement(statement_type&) noexcept {}
    static bool execute_prepared(session_type& s, statement_type& st, const params& args, result* res, diagnostics& d) {
        std::string text = st + " |";
        for (auto& a : args) text += " " + a.value_or("NULL");
        return run_statement(s, text, res, d);
    }

    // run(): user code gets the session and calls test::fake_exec on it.
    template <class F, class Out>
    static bool invoke(session_type& s, F& f, Out& out, diagnostics& d) {
        s.last_error = diagnostics{};
        detail::call_into(f, &s, out);
        if (s.last_error.code == 0) return true;
        d = s.last_error;
        out.reset();
        return false;
    }
    static bool in_transaction(const session_type& s) noexcept { return s.open && s.in_txn; }
    static bool reconnect_option_enabled(session_type& s) noexcept { return s.srv && s.srv->reconnect_option; }
    static bool untracked_state_changed(session_type& s) noexcept { return s.state_changed; }
    static std::uint64_t connection_id(session_type& s) noexcept { return s.id; }
};

namespace lifeline::test {
// What user code inside run() calls on the fake, like mysql_query on a MYSQL*.
inline bool fake_exec(fake_session* s, std::string_view sql) {
    diagnostics d;
    bool ok = driver_traits<fake>::run_statement(*s, sql, nullptr, d);
    s->last_error = ok ? diagnostics{} : d;
    return ok;
}
}  // namespace lifeline::test

#endif
