// lifeline test harness — a Galera cluster (galera-4, rsync SST) on loopback.
//
// `galera_cluster::start()` bootstraps node 0 from an empty datadir (--wsrep-new-cluster), creates
// the test database, the application user (no SUPER) and the admin user (SUPER) of test_server.hpp's
// `endpoint`, and joins the other nodes (default 3 in all) by rsync SST into empty datadirs. Every
// node has its own free ports on 127.0.0.1 for SQL, the group (gcomm), IST and SST. As root, the
// servers run as the `mysql` account in mysql-owned node directories: started as root, the joiner's
// rsync daemon drops to `nobody` and the SST fails (recipe B.2 in cluster-recipes-verified.md).
//
// Bring-up takes about 16-20 s (each SST join 7-9 s, mostly fixed cost in wsrep_sst_rsync), so keep
// the number of clusters per test run small. Operations are bounded by options.operation_timeout
// and return once their effect is observable. Clean-up as in topology.hpp: the destructor stops
// and removes everything; a process that dies without destructors takes its servers with it and
// a guardian removes the directory. Drive it from the main thread.
#ifndef LIFELINE_TESTS_SUPPORT_GALERA_HPP
#define LIFELINE_TESTS_SUPPORT_GALERA_HPP

#include "test_server.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lifeline::test {

struct galera_options {
    std::size_t nodes = 3;                          // at least 1
    std::string base_dir;                           // parent of the temp dir; empty: $TMPDIR or /tmp
    std::chrono::seconds start_timeout{300};        // bound on the whole bring-up
    std::chrono::seconds operation_timeout{120};    // bound on each operation (a rejoin may need a full SST)
    std::string provider;                           // empty: Debian's /usr/lib/galera/libgalera_smm.so
    std::string provider_options;                   // appended to wsrep_provider_options, e.g. "evs.suspect_timeout=PT3S"
    std::vector<std::string> extra_settings;        // more my.cnf lines for every node
};

class galera_cluster {
public:
    static galera_cluster start(const galera_options& options = {});

    galera_cluster(galera_cluster&&) noexcept;
    galera_cluster& operator=(galera_cluster&&) = delete;
    galera_cluster(const galera_cluster&) = delete;
    galera_cluster& operator=(const galera_cluster&) = delete;
    ~galera_cluster();

    std::size_t size() const;
    const test::endpoint& endpoint(std::size_t node) const;
    const std::string& dir() const;
    pid_t pid(std::size_t node) const;  // 0 when not running
    bool running(std::size_t node) const;
    std::chrono::milliseconds startup_time() const;

    // SIGKILL, returns once the process is gone. The others notice only after the group's suspect
    // timeout (evs.suspect_timeout, 5 s by default): use wait_cluster_size to see the new view.
    void kill(std::size_t node);
    void stop(std::size_t node);  // clean shutdown (leaves the group), returns once gone
    // Rejoins a stopped or killed node: --wsrep-recover for its last position, then a start at that
    // position so that a donor can send IST (a full rsync SST when it has none). Returns once the
    // node is Synced and sees every running node. Needs another running node.
    void start(std::size_t node);
    // SET GLOBAL wsrep_reject_queries = mode ("NONE", "ALL", "ALL_KILL"); returns once it shows.
    void set_reject_queries(std::size_t node, const std::string& mode);

    // --- wsrep status (root over the node's Unix socket) ---------------------------------------
    std::map<std::string, std::string> wsrep_status(std::size_t node) const;        // every wsrep_% status
    std::string wsrep_status(std::size_t node, const std::string& name) const;      // "" when absent
    void wait_synced(std::size_t node, std::chrono::milliseconds timeout) const;    // local state Synced, Primary
    void wait_cluster_size(std::size_t node, std::size_t size, std::chrono::milliseconds timeout) const;

    void admin_sql(std::size_t node, const std::string& sql) const;
    std::string admin_scalar(std::size_t node, const std::string& sql) const;
    std::string log_tail(std::size_t node, std::size_t lines = 20) const;

private:
    struct state;
    explicit galera_cluster(std::unique_ptr<state> s);
    std::unique_ptr<state> s_;
};

}  // namespace lifeline::test

#endif
