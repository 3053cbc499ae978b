// lifeline test harness — see topology.hpp. The recipe it follows, with the errors seen while
// working it out, is /work/shared/reference/cluster-recipes-verified.md (part A).
#include "topology.hpp"

#include "mariadb_node.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace lifeline::test {

using detail::clock_type;
using detail::time_point;
using namespace std::chrono_literals;

namespace {

const std::string repl_user = "lifeline_repl";
const std::string repl_password = "repl-secret";

// Role-dependent settings go on the command line, not into my.cnf: a node's role changes.
// Semi-sync master only on the primary: on a replica it stalls the SQL thread for the full timeout.
std::vector<std::string> role_args(bool primary) {
    if (primary) return {"--read-only=OFF", "--rpl-semi-sync-master-enabled=ON"};
    return {"--read-only=ON", "--rpl-semi-sync-master-enabled=OFF"};
}

// Per GTID domain the highest sequence number in a position list such as "0-1-46,1-3-7".
std::map<unsigned long, unsigned long long> parse_gtids(const std::string& list,
                                                        std::map<unsigned long, unsigned long long> into = {}) {
    std::stringstream ss(list);
    for (std::string gtid; std::getline(ss, gtid, ',');) {
        unsigned long domain = 0, server = 0;
        unsigned long long seq = 0;
        if (std::sscanf(gtid.c_str(), " %lu-%lu-%llu", &domain, &server, &seq) == 3)
            into[domain] = std::max(into[domain], seq);
    }
    return into;
}

}  // namespace

struct replicated_topology::state {
    topology_options options;
    detail::cluster_dir dir;  // declared first: removed after the nodes are gone
    std::vector<std::unique_ptr<detail::node>> nodes;
    std::vector<test::endpoint> endpoints;
    std::vector<std::size_t> source;  // whom each node replicates from
    std::size_t primary = 0;
    std::chrono::milliseconds startup{0};

    explicit state(const topology_options& o) : options(o), dir(o.base_dir, "topology") {}
    static std::unique_ptr<state> bring_up(const topology_options& o);

    ~state() {
        // All at once: a clean shutdown each, bounded; then whatever is left is killed.
        for (auto& n : nodes) n->signal_stop();
        auto until = clock_type::now() + 30s;
        for (auto& n : nodes) {
            try {
                n->stop(until);
            } catch (...) {
            }
        }
    }

    time_point op_deadline() const { return clock_type::now() + options.operation_timeout; }
    unsigned op_seconds() const { return static_cast<unsigned>(options.operation_timeout.count()); }

    detail::node& at(std::size_t i) const {
        if (i >= nodes.size())
            throw server_error("replicated_topology: no node " + std::to_string(i) + " (size " +
                               std::to_string(nodes.size()) + ")");
        return *nodes[i];
    }
    detail::node& running_node(std::size_t i, const char* op) const {
        auto& n = at(i);
        if (!n.running())
            throw server_error(std::string("replicated_topology::") + op + ": node " + std::to_string(i) +
                               " is not running");
        return n;
    }

    std::string change_master(std::size_t to, bool demote) const {
        std::ostringstream sql;
        double heartbeat = std::min(1.0, options.slave_net_timeout / 2.0);
        sql << "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=" << at(to).port() << ", MASTER_USER='"
            << repl_user << "', MASTER_PASSWORD='" << repl_password
            << "', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=" << heartbeat;
        if (demote) sql << ", MASTER_DEMOTE_TO_SLAVE=1";
        return sql.str();
    }

    detail::row replica_row(std::size_t i) const {
        auto rows = at(i).query("SHOW SLAVE STATUS");
        return rows.empty() ? detail::row{} : rows.front();
    }

    // Until the replica's IO and SQL threads run and, when its source has semi-sync master on, the
    // replica's semi-sync is on. A stopped thread with an error (SQL error, IO error 1236 "diverged")
    // ends the wait at once: it will not heal itself. Connection errors are retried by the server.
    void wait_replica_running(std::size_t i, time_point until) const {
        const std::size_t src = source[i];
        bool semi_sync = src != none && at(src).running() &&
                         at(src).scalar("SELECT @@global.rpl_semi_sync_master_enabled") == "1";
        detail::row last;
        const std::string prefix = "replicated_topology: node " + std::to_string(i) +
                                   " does not replicate from node " + std::to_string(src) + ": ";
        detail::wait_until(
            until, "node " + std::to_string(i) + " to replicate from node " + std::to_string(src),
            [&] {
                last = replica_row(i);
                if (last.empty()) return false;
                if (last["Last_SQL_Errno"] != "0")
                    throw detail::give_up(prefix + "SQL thread error " + last["Last_SQL_Errno"] + ": " +
                                          last["Last_SQL_Error"]);
                if (last["Slave_IO_Running"] == "No" && last["Last_IO_Errno"] != "0")
                    throw detail::give_up(prefix + "IO thread stopped with error " + last["Last_IO_Errno"] + ": " +
                                          last["Last_IO_Error"]);
                if (last["Slave_IO_Running"] != "Yes" || last["Slave_SQL_Running"] != "Yes") return false;
                return !semi_sync || at(i).global_status("Rpl_semi_sync_slave_status") == "ON";
            },
            [&] {
                return "Slave_IO_Running=" + last["Slave_IO_Running"] + " Slave_SQL_Running=" +
                       last["Slave_SQL_Running"] + " Last_IO_Error=" + last["Last_IO_Errno"] + " " +
                       last["Last_IO_Error"] + "; its log:\n" + at(i).log_tail(10);
            });
    }

    bool gtid_wait(std::size_t i, const std::string& gtid, std::chrono::milliseconds timeout) const {
        if (gtid.empty()) return true;
        std::ostringstream sql;
        sql.precision(3);
        sql << std::fixed << "SELECT MASTER_GTID_WAIT('" << gtid << "', " << timeout.count() / 1000.0 << ")";
        auto read_timeout = static_cast<unsigned>(std::ceil(timeout.count() / 1000.0)) + 10;
        return at(i).scalar(sql.str(), read_timeout) == "0";
    }
};

std::unique_ptr<replicated_topology::state> replicated_topology::state::bring_up(const topology_options& o) {
    const auto t0 = clock_type::now();
    const auto until = t0 + o.start_timeout;
    auto st = std::make_unique<replicated_topology::state>(o);
    const auto user = detail::run_as::servers();
    const std::size_t n = o.replicas + 1;
    auto ports = detail::pick_ports(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto node = std::make_unique<detail::node>(st->dir.path() + "/node" + std::to_string(i), ports[i], user);
        std::vector<std::string> settings = {
            "server-id=" + std::to_string(i + 1),
            "log-bin=bin",
            "relay-log=relay-bin",  // else named after the pid file, with a warning
            "log-slave-updates",
            "binlog-format=ROW",
            "gtid-strict-mode=ON",
            "report-host=127.0.0.1",
            "report-port=" + std::to_string(ports[i]),
            "slave-net-timeout=" + std::to_string(o.slave_net_timeout),
            "rpl-semi-sync-slave-enabled=ON",
            "rpl-semi-sync-master-wait-point=AFTER_SYNC",
            "rpl-semi-sync-master-timeout=" + std::to_string(o.semi_sync_timeout_ms),
            // 128M: the redo a SIGKILL leaves behind (fast writers) is recovered in one batch. With 32M,
            // 10.11's multi-batch recovery once refused to start ("Data structure corruption").
            "innodb-buffer-pool-size=128M",
            // 2: a mariadbd SIGKILL loses nothing (the OS keeps the page cache); only an OS crash could.
            "innodb-flush-log-at-trx-commit=2",
            "max-connections=300",
        };
        settings.insert(settings.end(), o.extra_settings.begin(), o.extra_settings.end());
        node->prepare(settings);
        test::endpoint e;
        e.port = ports[i];
        e.socket = node->socket();
        st->endpoints.push_back(e);
        st->nodes.push_back(std::move(node));
        st->source.push_back(i == 0 ? replicated_topology::none : 0);
    }
    std::vector<detail::node*> all;
    for (auto& p : st->nodes) all.push_back(p.get());
    detail::install_all(all, until);
    for (std::size_t i = 0; i < n; ++i) st->nodes[i]->spawn(role_args(i == 0));
    for (auto& p : st->nodes) p->wait_ready(until);

    // The replication user exists on every node but in no binlog: it generates no GTID, and any
    // node can serve replicas once promoted.
    for (auto& p : st->nodes)
        p->exec_all({"SET sql_log_bin=0", "CREATE USER '" + repl_user + "'@'127.0.0.1' IDENTIFIED BY '" + repl_password + "'",
                 "GRANT REPLICATION SLAVE ON *.* TO '" + repl_user + "'@'127.0.0.1'"});
    for (std::size_t i = 1; i < n; ++i) st->nodes[i]->exec_all({st->change_master(0, false), "START SLAVE"});
    // Replicas first, then the first write: a write with no semi-sync replica waits the whole timeout.
    auto& primary = *st->nodes[0];
    detail::wait_until(
        until, std::to_string(o.replicas) + " semi-sync replicas on the primary",
        [&] { return primary.global_status("Rpl_semi_sync_master_clients") == std::to_string(o.replicas); },
        [&] { return "Rpl_semi_sync_master_clients=" + primary.global_status("Rpl_semi_sync_master_clients"); });
    primary.exec_all(detail::user_statements(st->endpoints[0]));
    const std::string gtid = primary.scalar("SELECT @@global.gtid_binlog_pos");
    for (std::size_t i = 1; i < n; ++i) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now());
        if (!st->gtid_wait(i, gtid, std::max(left, std::chrono::milliseconds(1000))))
            throw server_error("replicated_topology: node " + std::to_string(i) + " did not apply " + gtid +
                               " in time; its log:\n" + st->nodes[i]->log_tail(10));
        st->wait_replica_running(i, until);
    }
    st->startup = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
    std::cerr << "replicated_topology: primary 127.0.0.1:" << ports[0] << ", replicas";
    for (std::size_t i = 1; i < n; ++i) std::cerr << " 127.0.0.1:" << ports[i];
    std::cerr << " in " << st->dir.path() << " (up in " << st->startup.count() << " ms)\n";
    return st;
}

replicated_topology replicated_topology::start(const topology_options& options) {
    if (options.replicas < 1) throw server_error("replicated_topology: at least one replica");
    for (int attempt = 1;; ++attempt) {
        try {
            return replicated_topology(state::bring_up(options));
        } catch (const detail::port_taken&) {
            if (attempt == 3) throw;  // another process took a picked port: pick new ones
        }
    }
}

replicated_topology::replicated_topology(std::unique_ptr<state> s) : s_(std::move(s)) {}
replicated_topology::replicated_topology(replicated_topology&&) noexcept = default;
replicated_topology::~replicated_topology() = default;

std::size_t replicated_topology::size() const { return s_->nodes.size(); }
std::size_t replicated_topology::primary() const { return s_->primary; }
std::size_t replicated_topology::source_of(std::size_t node) const {
    s_->at(node);
    return s_->source[node];
}
const test::endpoint& replicated_topology::endpoint(std::size_t node) const {
    s_->at(node);
    return s_->endpoints[node];
}
const std::string& replicated_topology::dir() const { return s_->dir.path(); }
pid_t replicated_topology::pid(std::size_t node) const { return s_->at(node).pid(); }
bool replicated_topology::running(std::size_t node) const { return s_->at(node).running(); }
std::chrono::milliseconds replicated_topology::startup_time() const { return s_->startup; }

std::size_t replicated_topology::kill_primary() {
    const std::size_t p = s_->primary;
    s_->running_node(p, "kill_primary").kill();
    return p;
}

void replicated_topology::kill(std::size_t node) { s_->at(node).kill(); }

void replicated_topology::stop(std::size_t node) { s_->at(node).stop(s_->op_deadline()); }

void replicated_topology::start(std::size_t node) {
    auto& n = s_->at(node);
    const auto until = s_->op_deadline();
    n.start(role_args(node == s_->primary), until);
    const std::size_t src = s_->source[node];
    if (node != s_->primary && src != none && s_->at(src).running()) s_->wait_replica_running(node, until);
    // Its running replicas reconnect by themselves (MASTER_CONNECT_RETRY=1): wait for them too, so
    // that the first write after start() finds its semi-sync replicas.
    for (std::size_t j = 0; j < s_->nodes.size(); ++j)
        if (j != node && s_->source[j] == node && s_->nodes[j]->running()) s_->wait_replica_running(j, until);
}

void replicated_topology::promote(std::size_t node, bool writable) {
    auto& n = s_->running_node(node, "promote");
    const auto until = s_->op_deadline();
    if (!s_->replica_row(node).empty()) {
        // Freeze what was received, then let the SQL thread apply all of it.
        n.exec("STOP SLAVE IO_THREAD", s_->op_seconds());
        const std::string received = s_->replica_row(node)["Gtid_IO_Pos"];
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now());
        if (!s_->gtid_wait(node, received, std::max(left, std::chrono::milliseconds(1000)))) {
            auto r = s_->replica_row(node);
            throw server_error("replicated_topology::promote: node " + std::to_string(node) +
                               " did not apply its relay log up to " + received + " in time (gtid_slave_pos " +
                               gtid_slave_pos(node) + ", Last_SQL_Error " + r["Last_SQL_Error"] + ")");
        }
        n.exec_all({"STOP SLAVE", "RESET SLAVE ALL"}, s_->op_seconds());
    }
    n.exec("SET GLOBAL rpl_semi_sync_master_enabled=ON", s_->op_seconds());
    if (writable) n.exec("SET GLOBAL read_only=0", s_->op_seconds());
    s_->primary = node;
    s_->source[node] = none;
    if (!s_->replica_row(node).empty() || n.scalar("SELECT @@global.rpl_semi_sync_master_enabled") != "1" ||
        (writable && n.scalar("SELECT @@global.read_only") != "0"))
        throw server_error("replicated_topology::promote: node " + std::to_string(node) +
                           " still shows a replica configuration, semi-sync master off or read_only on");
}

void replicated_topology::repoint(std::size_t node, std::size_t new_primary) {
    if (node == new_primary) throw server_error("replicated_topology::repoint: a node cannot replicate from itself");
    auto& n = s_->running_node(node, "repoint");
    s_->running_node(new_primary, "repoint (its new primary)");
    const auto until = s_->op_deadline();
    n.exec_all({"STOP SLAVE", "SET GLOBAL rpl_semi_sync_master_enabled=OFF", "SET GLOBAL rpl_semi_sync_slave_enabled=ON",
            s_->change_master(new_primary, false), "START SLAVE"},
           s_->op_seconds());
    s_->source[node] = new_primary;
    s_->wait_replica_running(node, until);
}

void replicated_topology::set_read_only(std::size_t node, bool read_only) {
    auto& n = s_->running_node(node, "set_read_only");
    n.exec(std::string("SET GLOBAL read_only=") + (read_only ? "ON" : "OFF"), s_->op_seconds());
    if (n.scalar("SELECT @@global.read_only") != (read_only ? "1" : "0"))
        throw server_error("replicated_topology::set_read_only: node " + std::to_string(node) + " does not show it");
}

void replicated_topology::rejoin_old_primary(std::size_t node, std::size_t new_primary) {
    if (node == new_primary || node == s_->primary)
        throw server_error("replicated_topology::rejoin_old_primary: node " + std::to_string(node) +
                           " is the primary; promote another node first");
    s_->running_node(new_primary, "rejoin_old_primary (its new primary)");
    auto& n = s_->at(node);
    const auto until = s_->op_deadline();
    if (n.running()) n.stop(until);
    // --init-rpl-role=SLAVE: crash recovery truncates a transaction that was binlogged but never
    // acknowledged, instead of committing it (which would leave this node diverged).
    n.start({"--read-only=ON", "--rpl-semi-sync-master-enabled=OFF", "--init-rpl-role=SLAVE"}, until);
    n.exec_all({"STOP SLAVE", "SET GLOBAL rpl_semi_sync_slave_enabled=ON", s_->change_master(new_primary, true),
            "START SLAVE"},
           s_->op_seconds());
    s_->source[node] = new_primary;
    s_->wait_replica_running(node, until);
}

std::size_t replicated_topology::most_advanced_replica() const {
    std::size_t best = none;
    unsigned long long best_score = 0;
    for (std::size_t i = 0; i < s_->nodes.size(); ++i) {
        if (i == s_->primary || !s_->nodes[i]->running()) continue;
        auto pos = parse_gtids(s_->replica_row(i)["Gtid_IO_Pos"], parse_gtids(gtid_current_pos(i)));
        unsigned long long score = 0;
        for (auto& [domain, seq] : pos) score += seq;
        if (best == none || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    if (best == none) throw server_error("replicated_topology::most_advanced_replica: no replica is running");
    return best;
}

bool replicated_topology::wait_replicated(std::size_t node, const std::string& gtid,
                                          std::chrono::milliseconds timeout) const {
    s_->running_node(node, "wait_replicated");
    return s_->gtid_wait(node, gtid, timeout);
}

bool replicated_topology::wait_replicated(std::size_t node, std::chrono::milliseconds timeout) const {
    return wait_replicated(node, gtid_binlog_pos(s_->primary), timeout);
}

void replicated_topology::wait_semi_sync_clients(std::size_t node, unsigned at_least,
                                                 std::chrono::milliseconds timeout) const {
    auto& n = s_->running_node(node, "wait_semi_sync_clients");
    detail::wait_until(
        clock_type::now() + timeout,
        std::to_string(at_least) + " semi-sync replica(s) on node " + std::to_string(node),
        [&] { return std::stoul("0" + n.global_status("Rpl_semi_sync_master_clients")) >= at_least; },
        [&] { return "Rpl_semi_sync_master_clients=" + n.global_status("Rpl_semi_sync_master_clients"); });
}

std::string replicated_topology::gtid_binlog_pos(std::size_t node) const {
    return s_->running_node(node, "gtid_binlog_pos").scalar("SELECT @@global.gtid_binlog_pos");
}
std::string replicated_topology::gtid_current_pos(std::size_t node) const {
    return s_->running_node(node, "gtid_current_pos").scalar("SELECT @@global.gtid_current_pos");
}
std::string replicated_topology::gtid_slave_pos(std::size_t node) const {
    return s_->running_node(node, "gtid_slave_pos").scalar("SELECT @@global.gtid_slave_pos");
}
std::map<std::string, std::string> replicated_topology::replica_status(std::size_t node) const {
    return s_->replica_row(node);
}
std::string replicated_topology::global_status(std::size_t node, const std::string& name) const {
    return s_->at(node).global_status(name);
}
void replicated_topology::admin_sql(std::size_t node, const std::string& sql) const {
    s_->at(node).exec(sql, s_->op_seconds());
}
std::string replicated_topology::admin_scalar(std::size_t node, const std::string& sql) const {
    return s_->at(node).scalar(sql, s_->op_seconds());
}
std::string replicated_topology::log_tail(std::size_t node, std::size_t lines) const {
    return s_->at(node).log_tail(lines);
}

}  // namespace lifeline::test
