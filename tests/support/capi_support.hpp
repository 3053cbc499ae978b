// Test helpers for the MySQL C API against the harness server.
#ifndef LIFELINE_TESTS_SUPPORT_CAPI_SUPPORT_HPP
#define LIFELINE_TESTS_SUPPORT_CAPI_SUPPORT_HPP

#include "test_server.hpp"

#include <mysql.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace lifeline::test {

struct mysql_closer {
    void operator()(MYSQL* m) const noexcept { mysql_close(m); }
};
using mysql_handle = std::unique_ptr<MYSQL, mysql_closer>;

struct capi_options {
    bool admin = false;
    unsigned connect_timeout = 5;  // seconds; 0 = driver default
    unsigned read_timeout = 0;     // seconds; 0 = none (the driver then waits forever)
    unsigned write_timeout = 0;
};

// Connects or throws server_error with the driver's message: a test that cannot connect fails.
inline mysql_handle capi_connect(const endpoint& e, const capi_options& o = {}) {
    mysql_handle m(mysql_init(nullptr));
    if (o.connect_timeout) mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &o.connect_timeout);
    if (o.read_timeout) mysql_options(m.get(), MYSQL_OPT_READ_TIMEOUT, &o.read_timeout);
    if (o.write_timeout) mysql_options(m.get(), MYSQL_OPT_WRITE_TIMEOUT, &o.write_timeout);
    const std::string& user = o.admin ? e.admin_user : e.app_user;
    const std::string& pass = o.admin ? e.admin_password : e.app_password;
    if (!mysql_real_connect(m.get(), e.host.c_str(), user.c_str(), pass.c_str(), e.database.c_str(), e.port,
                            nullptr, 0))
        throw server_error("cannot connect to the test server at " + e.host + ":" + std::to_string(e.port) + ": " +
                           mysql_error(m.get()) + " (" + std::to_string(mysql_errno(m.get())) + ")");
    return m;
}

// Runs a statement that must succeed and discards any result.
inline void capi_exec(MYSQL* m, const std::string& sql) {
    if (mysql_real_query(m, sql.data(), sql.size()) != 0)
        throw server_error("'" + sql + "' failed: " + mysql_error(m) + " (" + std::to_string(mysql_errno(m)) + ")");
    if (MYSQL_RES* r = mysql_store_result(m)) mysql_free_result(r);
}

// First column of the first row as a string ("" for NULL or no row).
inline std::string capi_scalar(MYSQL* m, const std::string& sql) {
    if (mysql_real_query(m, sql.data(), sql.size()) != 0)
        throw server_error("'" + sql + "' failed: " + mysql_error(m) + " (" + std::to_string(mysql_errno(m)) + ")");
    MYSQL_RES* r = mysql_store_result(m);
    if (!r) return {};
    MYSQL_ROW row = mysql_fetch_row(r);
    std::string v = (row && row[0]) ? row[0] : "";
    mysql_free_result(r);
    return v;
}

// KILL [QUERY|CONNECTION] id from a fresh admin session.
inline void admin_kill(const endpoint& e, unsigned long id, bool query_only = false) {
    auto admin = capi_connect(e, capi_options{true});
    capi_exec(admin.get(), std::string(query_only ? "KILL QUERY " : "KILL CONNECTION ") + std::to_string(id));
}

// KILL once session `id` is really executing a statement (COMMAND 'Query' or 'Execute' in the processlist),
// so a test's fault lands mid-statement however loaded the machine is. Gives up after `timeout`.
inline void admin_kill_when_busy(const endpoint& e, unsigned long id, bool query_only = false,
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    auto admin = capi_connect(e, capi_options{true});
    const std::string probe = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + std::to_string(id) +
                              " AND COMMAND IN ('Query', 'Execute') AND TIME_MS > 50";
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until && capi_scalar(admin.get(), probe) != "1")
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    capi_exec(admin.get(), std::string(query_only ? "KILL QUERY " : "KILL CONNECTION ") + std::to_string(id));
}

// Runs f on another thread after a delay; joins in the destructor, so a failing test never leaks it.
class after {
public:
    template <class F>
    after(std::chrono::milliseconds delay, F f)
        : thread_([delay, f]() mutable {
              std::this_thread::sleep_for(delay);
              try {
                  f();
              } catch (...) {
              }
          }) {}
    after(const after&) = delete;
    after& operator=(const after&) = delete;
    ~after() { thread_.join(); }

private:
    std::thread thread_;
};

}  // namespace lifeline::test

#endif
