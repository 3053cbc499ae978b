// lifeline test harness — internals shared by replicated_topology (topology.hpp) and
// galera_cluster (galera.hpp): one mariadbd node (its directory, my.cnf, process, root SQL over its
// Unix socket), ports for many nodes, and the directory that dies with the test process. Tests use
// topology.hpp / galera.hpp, not this header.
#ifndef LIFELINE_TESTS_SUPPORT_MARIADB_NODE_HPP
#define LIFELINE_TESTS_SUPPORT_MARIADB_NODE_HPP

#include "test_server.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace lifeline::test::detail {

using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;
using row = std::map<std::string, std::string>;

// Who the servers run as. As root: the `mysql` account, because Galera's rsync SST cannot join as
// root (the joiner's rsync daemon drops to `nobody`); otherwise the current user. No credential
// change happens inside mariadbd, so its parent-death signal survives.
struct run_as {
    bool switch_user = false;
    uid_t uid = 0;
    gid_t gid = 0;
    static run_as servers();
};

// A server could not bind a port picked for it (another process took it meanwhile).
class port_taken : public server_error {
public:
    using server_error::server_error;
};

// `count` distinct free ports on 127.0.0.1, below the kernel's ephemeral range so that no outgoing
// connection (replication, other tests' clients) holds them; never one handed out before by this process.
std::vector<unsigned> pick_ports(std::size_t count);

// <base>/lifeline-mariadb-<kind>-XXXXXX. A guardian process (/bin/sh, waiting on a pipe that only
// this process holds) kills every node's process group and removes the directory when this process
// dies without running destructors (SIGKILL, an unhandled signal, a ctest timeout). Node directories
// carry `owner` and `harness.pid` files, the root a `harness.pid` naming this process, so that
// integration.no_servers_left (tests/support/no_servers_left.sh) sees and judges them.
class cluster_dir {
public:
    cluster_dir(const std::string& base, const std::string& kind);
    cluster_dir(const cluster_dir&) = delete;
    cluster_dir& operator=(const cluster_dir&) = delete;
    ~cluster_dir();  // removes the directory, then lets the guardian go
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
    int guardian_pipe_ = -1;
    pid_t guardian_ = 0;
};

class node {
public:
    node(std::string dir, unsigned port, run_as user);
    node(const node&) = delete;
    node& operator=(const node&) = delete;
    ~node();  // kills a node that is still running (the owners stop nodes cleanly before)

    const std::string& dir() const noexcept { return dir_; }
    const std::string& socket() const noexcept { return socket_; }
    const std::string& datadir() const noexcept { return datadir_; }
    unsigned port() const noexcept { return port_; }
    const run_as& user() const noexcept { return user_; }

    // Creates the directories and my.cnf ([mariadbd] + `settings`, after the paths and port that
    // this class fills in), hands them to the server's account.
    void prepare(const std::vector<std::string>& settings);
    // mariadb-install-db as the server's account (several nodes: install_all runs them in parallel).
    std::vector<std::string> install_command() const;

    // Starts mariadbd (--defaults-file=my.cnf --datadir=... then `extra_args`), does not wait.
    void spawn(const std::vector<std::string>& extra_args);
    // Until root can connect over the socket; throws (with the log tail) if mariadbd exited, or kills
    // it and throws at `until`. Throws port_taken when the log says a port was in use.
    void wait_ready(time_point until);
    void start(const std::vector<std::string>& extra_args, time_point until) {
        spawn(extra_args);
        wait_ready(until);
    }
    // Runs mariadbd once with `args` (e.g. --wsrep-recover) as the server's account; its log goes to
    // <dir>/<log_name>. Returns the exit code, -1 on timeout (killed).
    int run_once(const std::vector<std::string>& args, const std::string& log_name, time_point until) const;

    pid_t pid() const;     // 0 when not running
    bool running() const { return pid() != 0; }
    void signal_stop();    // SIGTERM, does not wait
    // SIGTERM, wait until gone; SIGKILL at `until`. Then SIGKILLs the process group (SST helpers).
    void stop(time_point until);
    void kill();           // SIGKILL to the process group, waits until gone

    // SQL as root through the Unix socket, bounded by read_timeout (seconds); server_error on failure.
    void exec(const std::string& sql, unsigned read_timeout = 30) const;
    void exec_all(const std::vector<std::string>& statements, unsigned read_timeout = 30) const;  // one session
    std::vector<row> query(const std::string& sql, unsigned read_timeout = 30) const;
    std::string scalar(const std::string& sql, unsigned read_timeout = 30) const;  // "" for NULL / no row
    std::string global_status(const std::string& name) const;                      // "" when absent
    std::string log_tail(std::size_t lines = 20) const;

private:
    void forget_pid() const;

    std::string dir_, datadir_, socket_;
    unsigned port_ = 0;
    run_as user_;
    mutable pid_t pid_ = 0;
};

// Runs every node's install_command() at once; throws with the failing node's output.
void install_all(const std::vector<node*>& nodes, time_point until);

// Thrown by a wait_until condition that sees the awaited state can no longer come (a process
// exited, a replication thread stopped with an error): ends the wait at once.
class give_up : public server_error {
public:
    using server_error::server_error;
};

// Polls `done` (20 ms apart) until it returns true; throws server_error("<what> ...") at `until`,
// adding `why()` (e.g. the last observed state) when given. Other exceptions from `done` (a server
// not answering yet) count as "not yet"; give_up propagates.
void wait_until(time_point until, const std::string& what, const std::function<bool()>& done,
                const std::function<std::string()>& why = {});

// The application and admin users (test_server.hpp's endpoint) as CREATE/GRANT statements.
std::vector<std::string> user_statements(const endpoint& e);

}  // namespace lifeline::test::detail

#endif
