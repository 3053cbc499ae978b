// lifeline test harness — a replicated MariaDB topology on loopback for failover tests.
//
// `replicated_topology::start()` installs a primary and N replicas (default 2) from empty datadirs
// in one new temporary directory, on free ports of 127.0.0.1 (never 3306): GTID replication
// (MASTER_USE_GTID=slave_pos, gtid_strict_mode, log_slave_updates, binlog ROW), semi-synchronous
// with rpl_semi_sync_master_wait_point=AFTER_SYNC, replicas read_only=ON, a small
// slave_net_timeout. Every node has the same unlogged replication user, the test database, the
// application user (no SUPER, no READ ONLY ADMIN: read_only stops its writes with 1290) and the
// admin user (SUPER) of test_server.hpp's `endpoint`.
//
// The operations are those of an orchestrator. Each is bounded by options.operation_timeout and
// returns only when its effect is observable (the process gone, the replica's threads running, the
// variable set), or throws server_error saying what it saw. Nodes are numbered 0..size()-1; node 0
// starts as the primary. Not thread-safe: drive one topology from one thread (the main thread, so
// that the servers' parent-death signal fires with the process, not with a thread).
//
// Clean-up: the destructor stops every node and removes the directory, also when a test fails (the
// exception unwinds). If the process dies without destructors (SIGKILL, SIGINT/TERM/HUP, a ctest
// timeout), the servers die with it (PR_SET_PDEATHSIG) and a guardian process removes the directory
// (mariadb_node.hpp); the node directories carry `owner` files so integration.no_servers_left sees them.
#ifndef LIFELINE_TESTS_SUPPORT_TOPOLOGY_HPP
#define LIFELINE_TESTS_SUPPORT_TOPOLOGY_HPP

#include "test_server.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lifeline::test {

struct topology_options {
    std::size_t replicas = 2;                       // at least 1
    std::string base_dir;                           // parent of the temp dir; empty: $TMPDIR or /tmp
    std::chrono::seconds start_timeout{180};        // bound on install + start + wiring of all nodes
    std::chrono::seconds operation_timeout{60};     // bound on each operation below
    unsigned slave_net_timeout = 5;                 // seconds; heartbeat is 1 s
    // Semi-sync falls back to asynchronous after this long without an ack. Large, so that a slow
    // machine never silently drops to async; tests assert Rpl_semi_sync_master_status anyway.
    unsigned semi_sync_timeout_ms = 10000;
    std::vector<std::string> extra_settings;        // more my.cnf lines for every node, e.g. "wait-timeout=5"
};

class replicated_topology {
public:
    static constexpr std::size_t none = static_cast<std::size_t>(-1);

    static replicated_topology start(const topology_options& options = {});

    replicated_topology(replicated_topology&&) noexcept;
    replicated_topology& operator=(replicated_topology&&) = delete;
    replicated_topology(const replicated_topology&) = delete;
    replicated_topology& operator=(const replicated_topology&) = delete;
    ~replicated_topology();  // stops every node, removes the directory

    std::size_t size() const;                              // 1 + replicas
    std::size_t primary() const;                           // the node last made primary (0 at start)
    std::size_t source_of(std::size_t node) const;         // whom `node` replicates from; `none` for a primary
    const test::endpoint& endpoint(std::size_t node) const;  // host/port/socket/users of a node
    const std::string& dir() const;
    pid_t pid(std::size_t node) const;                     // 0 when not running
    bool running(std::size_t node) const;
    std::chrono::milliseconds startup_time() const;        // what start() took

    // --- what an orchestrator does ----------------------------------------------------------
    std::size_t kill_primary();                 // SIGKILL of primary(); returns its index once it is gone
    void kill(std::size_t node);                // SIGKILL of any node, returns once it is gone
    void stop(std::size_t node);                // clean shutdown, returns once it is gone
    // Starts a stopped node in its current role: primary() writable with semi-sync master on, the
    // others read_only. Returns once a replica's IO and SQL threads run (and semi-sync is on), and
    // once the running replicas of a restarted primary have reconnected the same way.
    void start(std::size_t node);
    // Makes `node` the primary: stops its IO thread, waits until its relay log is applied, then
    // STOP SLAVE; RESET SLAVE ALL; semi-sync master on; read_only=0 when `writable`. Meant for a
    // dead or read-only old primary. primary() is `node` afterwards.
    void promote(std::size_t node, bool writable = true);
    // CHANGE MASTER to `new_primary` (MASTER_USE_GTID=slave_pos), semi-sync replica (its own semi-sync
    // master off), START SLAVE; returns once the threads run and semi-sync is on. read_only untouched.
    void repoint(std::size_t node, std::size_t new_primary);
    void set_read_only(std::size_t node, bool read_only);  // returns once @@global.read_only shows it
    // The old primary back as a replica of `new_primary`: (stopped if running, then) restarted with
    // --read-only=ON --rpl-semi-sync-master-enabled=OFF --init-rpl-role=SLAVE (which truncates an
    // un-acked transaction from its binlog), CHANGE MASTER ... MASTER_DEMOTE_TO_SLAVE=1; START SLAVE.
    void rejoin_old_primary(std::size_t node, std::size_t new_primary);
    // The running non-primary node that received the most: per GTID domain the highest of
    // Gtid_IO_Pos (received) and @@gtid_current_pos (applied), summed; ties go to the lower index.
    std::size_t most_advanced_replica() const;
    // MASTER_GTID_WAIT(gtid, timeout) on `node`: true when applied, false on timeout.
    bool wait_replicated(std::size_t node, const std::string& gtid, std::chrono::milliseconds timeout) const;
    // The same for everything the current primary has binlogged so far.
    bool wait_replicated(std::size_t node, std::chrono::milliseconds timeout) const;
    // Until Rpl_semi_sync_master_clients >= at_least on `node`; throws at the timeout.
    void wait_semi_sync_clients(std::size_t node, unsigned at_least, std::chrono::milliseconds timeout) const;

    // --- readers (root over the node's Unix socket) -------------------------------------------
    std::string gtid_binlog_pos(std::size_t node) const;
    std::string gtid_current_pos(std::size_t node) const;
    std::string gtid_slave_pos(std::size_t node) const;
    std::map<std::string, std::string> replica_status(std::size_t node) const;  // SHOW SLAVE STATUS; {} if none
    std::string global_status(std::size_t node, const std::string& name) const;  // SHOW GLOBAL STATUS
    void admin_sql(std::size_t node, const std::string& sql) const;
    std::string admin_scalar(std::size_t node, const std::string& sql) const;  // first column of first row
    std::string log_tail(std::size_t node, std::size_t lines = 20) const;

private:
    struct state;
    explicit replicated_topology(std::unique_ptr<state> s);
    std::unique_ptr<state> s_;
};

}  // namespace lifeline::test

#endif
