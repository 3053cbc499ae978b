// A scripted fake driver for unit tests of lifeline's logic (no server, no network) — the one
// shared fake: connection, transaction, pool and observer tests all use it (fake_fixture.hpp).
//
// `fake_server` plays the database: it applies writes (counting how often each statement really
// ran, to catch duplicates), keeps a processlist (so fencing can look sessions up and KILL them),
// has an identity (server id, host, port, start instant; restart() changes it and restarts the
// session ids from 1), and follows a script of faults: "the next execute fails with 2013 in
// read_result after the server applied it", "... and the server keeps running it (linger) until
// the session is killed", "the next connect is refused", ... Each session owns a real socketpair,
// so lifeline's zero-round-trip probe and its watchdog see a real socket; kill_idle() closes the
// server's end like KILL CONNECTION / wait_timeout do. Thread-safe (one mutex): the pool's tests
// drive it from many threads.
#ifndef LIFELINE_TESTS_SUPPORT_FAKE_DRIVER_HPP
#define LIFELINE_TESTS_SUPPORT_FAKE_DRIVER_HPP

#include <lifeline/driver_traits.hpp>
#include <lifeline/error.hpp>
#include <lifeline/options.hpp>
#include <lifeline/result.hpp>
#include <lifeline/statement.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace lifeline::test {

struct fake;  // the driver tag

struct fault {
    unsigned code = 0;
    std::string sqlstate = "HY000";
    phase where = phase::read_result;
    bool applied = false;          // the server ran the statement before the failure
    bool breaks_connection = true;
    bool linger = false;           // the server keeps running it: it lands later unless KILLed
    std::string message = "scripted fault";
};

inline fault make_fault(unsigned code, phase where, bool breaks, bool applied = false, const char* state = "HY000") {
    fault f;
    f.code = code;
    f.where = where;
    f.breaks_connection = breaks;
    f.applied = applied;
    f.sqlstate = state;
    return f;
}

struct fake_session;

struct fake_server {
    std::recursive_mutex m;
    std::deque<fault> connect_faults;    // consumed by connect()
    std::deque<fault> execute_faults;    // consumed by statements; code 0 = succeed
    std::map<std::string, int> applied;  // statement -> times it really ran
    std::vector<std::string> log;        // "connect", "ping", "exec:<sql>", "reset"
    int connects = 0, pings = 0, resets = 0;
    bool reconnect_option = false;       // simulate a driver that turns OPT_RECONNECT on
    bool state_change_next = false;      // the next successful statement reports a state change
    bool wire_counter = true;            // false: the driver cannot count bytes (reach unknown)
    bool identity_known = true;          // false: the identity query fails (an exotic server)
    std::string version = "10.11.19-MariaDB-fake";  // @@version (flavour: MariaDB)
    std::string wsrep_on = "0";                       // @@global.wsrep_on ("1": a Galera node)
    // Identity; restart() moves started_at and restarts ids from 1.
    std::uint64_t server_id = 1;
    std::string hostname = "fakehost";
    std::int64_t started_at = 1'700'000'000;
    std::uint64_t next_id = 1;
    struct process {
        std::string user;
        bool alive = true;
        std::vector<std::string> lingering;  // writes still running after the client left
        fake_session* session = nullptr;     // the client side, while it exists
    };
    std::map<std::uint64_t, process> processes;
    std::map<std::string, std::uint64_t> user_locks;  // GET_LOCK name -> holder id
    bool locks_supported = true;      // false: GET_LOCK / IS_USED_LOCK fail (like Galera)
    void release_locks(std::uint64_t id) {
        for (auto it = user_locks.begin(); it != user_locks.end();)
            it = it->second == id ? user_locks.erase(it) : std::next(it);
    }
    // Outages (pool tests).
    std::atomic<bool> down{false};
    std::atomic<int> connect_delay_ms{0};
    std::atomic<int> in_flight{0}, max_in_flight{0}, connect_attempts{0};

    static fake_server*& current() {
        static fake_server* s = nullptr;
        return s;
    }
    // The server process restarts: every session dies, ids start again from 1.
    void restart();
    // KILL / wait_timeout on every session (the sockets poll hung up).
    void kill_all();
    // An innocent session of another account with a given id (for fencing tests).
    void add_foreign_session(std::uint64_t id, std::string user) {
        std::lock_guard<std::recursive_mutex> lock(m);
        processes[id] = process{std::move(user), true, {}, nullptr};
        next_id = std::max(next_id, id + 1);
    }
    bool alive(std::uint64_t id) {
        std::lock_guard<std::recursive_mutex> lock(m);
        auto it = processes.find(id);
        return it != processes.end() && it->second.alive;
    }
    int times(const std::string& sql) {
        std::lock_guard<std::recursive_mutex> lock(m);
        auto it = applied.find(sql);
        return it == applied.end() ? 0 : it->second;
    }
    int count_log(std::string_view prefix) {
        std::lock_guard<std::recursive_mutex> lock(m);
        return static_cast<int>(std::count_if(log.begin(), log.end(), [&](const std::string& l) { return l.rfind(prefix, 0) == 0; }));
    }
};

struct fake_session {
    fake_server* srv = nullptr;
    bool open = false;
    bool in_txn = false;
    bool autocommit_off = false;
    bool state_changed = false;   // the last OK packet reported a state change
    bool changed_since_reset = false;
    std::uint64_t id = 0;
    std::uint64_t bytes_out = 0;  // what the client wrote to the wire
    int client_fd = -1, server_fd = -1;
    lifeline::diagnostics last_error;  // what run() user code left behind (like mysql_errno)
    bool atomic_txn = false;           // inside START TRANSACTION: writes wait for COMMIT
    std::vector<std::string> pending;  // writes of the open atomic transaction

    fake_session() = default;
    fake_session(const fake_session&) = delete;
    fake_session& operator=(const fake_session&) = delete;
    ~fake_session() { reset(); }
    void reset() {
        pending.clear();
        atomic_txn = in_txn = autocommit_off = false;
        if (srv && id) {
            auto it = srv->processes.find(id);
            if (it != srv->processes.end() && it->second.session == this) {
                it->second.session = nullptr;
                // A session that still runs a statement stays on the server until killed.
                if (it->second.lingering.empty()) {
                    srv->release_locks(id);
                    srv->processes.erase(it);
                }
            }
        }
        if (client_fd >= 0) ::close(client_fd);
        if (server_fd >= 0) ::close(server_fd);
        client_fd = server_fd = -1;
        open = false;
        id = 0;
    }
    // The server closes its end while the client is idle (KILL CONNECTION, wait_timeout).
    void kill_idle() {
        pending.clear();  // the server rolls the open transaction back
        atomic_txn = false;
        if (server_fd >= 0) ::close(server_fd);
        server_fd = -1;
    }
};

inline void fake_server::kill_all() {
    std::lock_guard<std::recursive_mutex> lock(m);
    for (auto& p : processes)
        if (p.second.session) p.second.session->kill_idle();
}

inline void fake_server::restart() {
    std::lock_guard<std::recursive_mutex> lock(m);
    for (auto& p : processes)
        if (p.second.session) p.second.session->kill_idle();
    processes.clear();
    user_locks.clear();
    started_at += 100;
    next_id = 1;
}

}  // namespace lifeline::test

template <>
struct lifeline::driver_traits<lifeline::test::fake> {
    using session_type = lifeline::test::fake_session;
    using native_handle = lifeline::test::fake_session*;
    using statement_type = std::string;  // the prepared SQL
    static constexpr const char* name = "fake";
    using lock = std::lock_guard<std::recursive_mutex>;

    static void fill(const test::fault& f, diagnostics& d) {
        d = diagnostics{};
        d.code = f.code;
        d.sqlstate = f.sqlstate;
        d.where = f.where;
        d.server_message = f.message;
        d.driver = "fake";
    }
    static void fail(unsigned code, phase where, diagnostics& d, const char* msg = "fake") {
        test::fault f;
        f.code = code;
        f.where = where;
        f.message = msg;
        fill(f, d);
    }

    static bool connect(session_type& s, const connect_options& o, std::chrono::milliseconds, diagnostics& out) {
        auto* srv = test::fake_server::current();
        const int now = ++srv->in_flight;
        int seen = srv->max_in_flight.load();
        while (now > seen && !srv->max_in_flight.compare_exchange_weak(seen, now)) {
        }
        ++srv->connect_attempts;
        if (int ms = srv->connect_delay_ms.load()) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        struct leave {
            test::fake_server* srv;
            ~leave() { --srv->in_flight; }
        } leaving{srv};
        lock l(srv->m);
        s.reset();
        s.srv = srv;
        srv->log.push_back("connect");
        ++srv->connects;
        if (srv->down) {
            fail(2003, phase::connect, out, "Can't connect to MySQL server on 'fake' (111)");
            return false;
        }
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
        s.open = true;
        s.id = srv->next_id++;
        s.bytes_out = 0;
        s.changed_since_reset = false;
        srv->processes[s.id] = test::fake_server::process{o.user, true, {}, &s};
        return true;
    }
    static void close(session_type& s) noexcept {
        if (!s.srv) return s.reset();
        lock l(s.srv->m);
        s.reset();
    }
    static bool is_open(const session_type& s) noexcept { return s.open; }
    static native_handle native(session_type& s) noexcept { return &s; }
    static int socket_fd(const session_type& s) noexcept { return s.client_fd; }
    static bool ping(session_type& s, diagnostics& out) {
        lock l(s.srv->m);
        s.srv->log.push_back("ping");
        ++s.srv->pings;
        if (s.server_fd < 0) {
            fail(2006, phase::send, out, "MySQL server has gone away");
            return false;
        }
        return true;
    }

    static bool starts(const std::string& text, std::string_view p) { return text.rfind(p, 0) == 0; }

    // One statement against the fake server; `sql` is what gets counted in `applied`.
    // "BEGIN" transactions apply writes at once (enough for single-statement tests); "START
    // TRANSACTION" (what lifeline's transaction() sends) keeps them pending until COMMIT, so a
    // lost or cut COMMIT really decides whether they exist.
    static bool run_statement(session_type& s, std::string_view sql, result* res, diagnostics& out) {
        auto* srv = s.srv;
        lock l(srv->m);
        const std::string text(sql);
        srv->log.push_back("exec:" + text);
        if (s.server_fd < 0) {  // killed while idle: what the real driver reports (fault matrix)
            s.bytes_out += text.size();
            fail(2013, phase::read_result, out, "Lost connection to server during query");
            return false;
        }
        s.state_changed = false;
        auto apply = [&](const std::string& w) {
            ++srv->applied[w];
            // The next write releases what lingering sessions were waiting for: they land now.
            for (auto& p : srv->processes)
                if (p.second.alive && !p.second.lingering.empty() && p.first != s.id) {
                    for (auto& x : p.second.lingering) ++srv->applied[x];
                    p.second.lingering.clear();
                }
        };
        const bool own = starts(text, "SET ") || starts(text, "SELECT @@wait_timeout") ||
                         starts(text, "SELECT IS_USED_LOCK(") || starts(text, "SELECT NULL, (SELECT USER") ||
                         starts(text, "SELECT GET_LOCK(") || starts(text, "KILL ");
        if (!own && !srv->execute_faults.empty()) {
            auto f = srv->execute_faults.front();
            srv->execute_faults.pop_front();
            if (f.code != 0) {
                if (f.where != phase::send) s.bytes_out += text.size();
                if (text == "COMMIT" && f.applied) {
                    for (auto& w : s.pending) apply(w);
                } else if (f.applied && f.linger) {
                    srv->processes[s.id].lingering.push_back(text);
                } else if (f.applied) {
                    if (s.atomic_txn) s.pending.push_back(text);
                    else apply(text);
                }
                fill(f, out);
                if (f.breaks_connection) s.kill_idle();
                return false;
            }
        }
        s.bytes_out += text.size();
        if (res) {
            res->columns = {"v"};
            res->rows = {{std::string("1")}};
            res->affected_rows = 1;
        }
        // lifeline's own statements
        auto quoted = [&](std::size_t from) {  // the first '...' at or after `from`
            const auto a = text.find('\'', from);
            const auto b = text.find('\'', a + 1);
            return a == std::string::npos || b == std::string::npos ? std::string() : text.substr(a + 1, b - a - 1);
        };
        auto get_lock = [&](const std::string& name) -> std::string {
            if (!srv->locks_supported) return "NULL";
            auto it = srv->user_locks.find(name);
            if (it != srv->user_locks.end() && it->second != s.id) return "0";
            srv->user_locks[name] = s.id;
            return "1";
        };
        if (starts(text, "SELECT @@wait_timeout")) {
            if (!srv->identity_known) {
                fail(1054, phase::read_result, out, "Unknown column");
                return false;
            }
            const auto g = text.find("GET_LOCK(");
            const std::string locked = g == std::string::npos ? "0" : get_lock(quoted(g));
            if (res) {
                res->columns = {"wt", "map", "id", "sid", "host", "port", "start", "lock", "version", "comment", "wsrep"};
                res->rows = {{std::string("28800"), std::string("1048576"), std::to_string(s.id),
                              std::to_string(srv->server_id), srv->hostname, std::string("3306"),
                              std::to_string(g == std::string::npos ? 0 : srv->started_at), locked, srv->version,
                              std::string("fake"), srv->wsrep_on}};
            }
            return true;
        }
        if (starts(text, "SELECT GET_LOCK(")) {
            if (res) res->rows = {{get_lock(quoted(0))}};
            return true;
        }
        if (starts(text, "SELECT IS_USED_LOCK(") || starts(text, "SELECT NULL, (SELECT USER")) {
            if (starts(text, "SELECT IS_USED_LOCK(") && !srv->locks_supported) {
                fail(1305, phase::read_result, out, "FUNCTION IS_USED_LOCK does not exist");
                return false;
            }
            std::optional<std::string> holder;
            if (starts(text, "SELECT IS_USED_LOCK(")) {
                auto it = srv->user_locks.find(quoted(0));
                if (it != srv->user_locks.end()) holder = std::to_string(it->second);
            }
            const auto id = std::stoull(text.substr(text.rfind(' ') + 1));
            auto it = srv->processes.find(id);
            std::optional<std::string> user;
            if (it != srv->processes.end() && it->second.alive) user = it->second.user;
            if (res) res->rows = {{holder, user}};
            return true;
        }
        if (starts(text, "KILL CONNECTION ")) {
            const auto id = std::stoull(text.substr(16));
            auto it = srv->processes.find(id);
            if (it == srv->processes.end() || !it->second.alive) {
                fail(1094, phase::read_result, out, "Unknown thread id");
                return false;
            }
            if (it->second.user != srv->processes[s.id].user) {
                fail(1095, phase::read_result, out, "You are not owner of thread");
                return false;
            }
            it->second.lingering.clear();  // killed: its statement rolls back
            if (it->second.session) it->second.session->kill_idle();
            srv->release_locks(id);
            srv->processes.erase(it);
            srv->log.push_back("killed:" + std::to_string(id));
            return true;
        }
        const std::string marker_lookup = "SELECT COUNT(*) FROM lifeline_commit_marker WHERE token = '";
        if (starts(text, marker_lookup)) {
            std::string token = text.substr(marker_lookup.size(), 32);
            bool found = srv->applied.count("INSERT INTO lifeline_commit_marker (token) VALUES ('" + token + "')") > 0;
            if (res) res->rows = {{std::string(found ? "1" : "0")}};
            return true;
        }
        // session state
        if (starts(text, "SET autocommit=0") || starts(text, "SET autocommit = 0")) {
            s.autocommit_off = true;
            s.state_changed = s.changed_since_reset = true;
            return true;
        }
        if (starts(text, "SET ")) {
            s.state_changed = srv->state_change_next;
            srv->state_change_next = false;
            s.changed_since_reset = s.changed_since_reset || s.state_changed;
            return true;
        }
        // transactions
        if (text == "BEGIN") {
            s.in_txn = true;
            return true;
        }
        if (text == "START TRANSACTION") {
            s.in_txn = s.atomic_txn = true;
            s.pending.clear();
            return true;
        }
        if (text == "COMMIT") {
            for (auto& w : s.pending) apply(w);
            s.pending.clear();
            s.in_txn = s.atomic_txn = false;
            return true;
        }
        if (text == "ROLLBACK") {
            s.pending.clear();
            s.in_txn = s.atomic_txn = false;
            return true;
        }
        const bool ddl = starts(text, "CREATE TABLE") || starts(text, "TRUNCATE") || starts(text, "ALTER");
        if (ddl && !starts(text, "CREATE TABLE IF NOT EXISTS lifeline_commit_marker")) {
            // Implicit commit: what was pending lands, the transaction ends.
            for (auto& w : s.pending) apply(w);
            s.pending.clear();
            s.in_txn = s.atomic_txn = false;
        }
        if (s.atomic_txn) s.pending.push_back(text);
        else if (s.autocommit_off) {
            s.in_txn = true;
            s.pending.push_back(text);
        } else apply(text);
        s.state_changed = srv->state_change_next;
        srv->state_change_next = false;
        s.changed_since_reset = s.changed_since_reset || s.state_changed;
        return true;
    }
    static bool execute(session_type& s, std::string_view sql, result* res, diagnostics& out) {
        return run_statement(s, sql, res, out);
    }
    // Prepared statements: logged as "prepare:<sql>"; execution counts "<sql> | p1, p2" as applied.
    static bool prepare(session_type& s, std::string_view sql, std::optional<statement_type>& out, diagnostics& d) {
        lock l(s.srv->m);
        s.srv->log.push_back("prepare:" + std::string(sql));
        if (s.server_fd < 0) {
            fail(2013, phase::read_result, d);
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
    static bool in_transaction(const session_type& s) noexcept { return s.open && (s.in_txn || s.autocommit_off); }
    static bool reconnect_option_enabled(session_type& s) noexcept { return s.srv && s.srv->reconnect_option; }
    static bool untracked_state_changed(session_type& s) noexcept { return s.state_changed; }
    static std::uint64_t connection_id(session_type& s) noexcept { return s.id; }
    // Optional members lifeline uses when a driver has them (driver_traits.hpp).
    static std::optional<std::uint64_t> wire_bytes(session_type& s) noexcept {
        if (!s.srv || !s.srv->wire_counter) return std::nullopt;
        return s.bytes_out;
    }
    static bool session_changed(session_type& s) noexcept { return s.changed_since_reset; }
    static bool reset_session(session_type& s, diagnostics& d) {
        lock l(s.srv->m);
        s.srv->log.push_back("reset");
        ++s.srv->resets;
        if (s.server_fd < 0) {
            fail(2013, phase::read_result, d);
            return false;
        }
        s.pending.clear();
        s.in_txn = s.atomic_txn = s.autocommit_off = false;
        s.state_changed = s.changed_since_reset = false;
        s.srv->release_locks(s.id);  // COM_RESET_CONNECTION releases user locks
        return true;
    }
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
