// lifeline test harness — a throwaway MariaDB server for integration tests, demos and benchmarks.
//
// `server::start()` installs a fresh datadir into a new temporary directory, starts `mariadbd` on a
// free port on 127.0.0.1 with its own socket/pid/log files, waits (bounded) until it accepts
// connections and creates the test database, a non-SUPER application user and a SUPER admin user.
// The owning object stops the server and removes the directory in its destructor.
//
// `lifeline_with_server -- cmd...` owns one such server for the lifetime of `cmd` and passes how to
// reach it through LIFELINE_TEST_* environment variables; tests then call `server::attach()` to
// crash, freeze, restart it. It never touches the machine's system server or port 3306.
#ifndef LIFELINE_TESTS_SUPPORT_TEST_SERVER_HPP
#define LIFELINE_TESTS_SUPPORT_TEST_SERVER_HPP

#include <sys/types.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace lifeline::test {

// Thrown when the harness cannot do what was asked; what() says why and what to check.
class server_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct server_options {
    unsigned port = 0;                        // 0: pick a free port on 127.0.0.1
    std::string base_dir;                     // parent of the temp dir; empty: $TMPDIR or /tmp
    std::vector<std::string> extra_args;      // more mariadbd options, e.g. "--wait-timeout=5"; "{dir}" in
                                              // them becomes the server's directory, "{semicolon}" a ';'
    // Run before the server first starts, as `prepare <server directory>` (e.g. a script that
    // generates TLS certificates into it); must exit 0.
    std::string prepare;
    std::chrono::seconds start_timeout{30};   // bound on install + start + ready
};

struct endpoint {
    std::string host = "127.0.0.1";
    unsigned port = 0;
    std::string socket;
    std::string database = "lifeline_test";
    std::string app_user = "lifeline_app";    // ALL on lifeline_test.*, no SUPER
    std::string app_password = "app-secret";
    std::string admin_user = "lifeline_admin";  // ALL PRIVILEGES incl. SUPER
    std::string admin_password = "admin-secret";
};

class server {
public:
    // Installs and starts a new server that this object owns.
    static server start(const server_options& options = {});
    // Attaches to the server that lifeline_with_server started (LIFELINE_TEST_* variables).
    // Throws server_error saying how to run the test when they are missing: a test never skips.
    static server attach();

    server(server&& other) noexcept;
    server& operator=(server&&) = delete;
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    // Owner: stops the server and removes its directory. Attached: leaves it running and thawed.
    ~server();

    const endpoint& where() const noexcept { return endpoint_; }
    const std::string& dir() const noexcept { return dir_; }
    pid_t pid() const;              // current mariadbd pid, 0 when not running
    bool running() const;

    void stop();                    // clean shutdown (SIGTERM), waits until gone
    void crash();                   // SIGKILL, waits until gone
    void start_again();             // after stop()/crash(): same datadir, port and options
    void restart() { stop(); start_again(); }
    void freeze();                  // SIGSTOP: stands in for a silent network drop
    void thaw();                    // SIGCONT

    // Sets LIFELINE_TEST_* in this process's environment (children inherit it).
    void export_environment() const;
    // Last lines of the server's error log, for failure messages.
    std::string log_tail(std::size_t lines = 15) const;
    // Runs SQL as root through the Unix socket; throws server_error on failure.
    void admin_sql(const std::string& sql) const;

private:
    server() = default;
    void spawn();
    void wait_ready(std::chrono::steady_clock::time_point until);
    void write_state() const;

    std::string dir_;
    endpoint endpoint_;
    std::vector<std::string> args_;  // full mariadbd command line
    bool owner_ = false;
    bool frozen_ = false;
};

// Resolves a program in PATH, /usr/sbin, /usr/local/sbin; throws server_error naming the package.
std::string find_program(const std::string& name, const std::string& package);

}  // namespace lifeline::test

#endif
