// lifeline test harness — see galera.hpp. The recipe it follows, with the errors seen while
// working it out, is /work/shared/reference/cluster-recipes-verified.md (part B).
#include "galera.hpp"

#include "mariadb_node.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

namespace fs = std::filesystem;

namespace lifeline::test {

using detail::clock_type;
using detail::time_point;
using namespace std::chrono_literals;

struct galera_cluster::state {
    galera_options options;
    detail::cluster_dir dir;  // declared first: removed after the nodes are gone
    std::vector<std::unique_ptr<detail::node>> nodes;
    std::vector<test::endpoint> endpoints;
    std::chrono::milliseconds startup{0};

    explicit state(const galera_options& o) : options(o), dir(o.base_dir, "galera") {}

    ~state() {
        // One at a time, last first: each leaves the group cleanly in well under a second. Stopped
        // all at once they wait on each other's leave messages until the suspect timeout (5 s).
        for (auto n = nodes.rbegin(); n != nodes.rend(); ++n) {
            try {
                (*n)->stop(clock_type::now() + 20s);
            } catch (...) {
            }
        }
    }

    time_point op_deadline() const { return clock_type::now() + options.operation_timeout; }

    detail::node& at(std::size_t i) const {
        if (i >= nodes.size())
            throw server_error("galera_cluster: no node " + std::to_string(i) + " (size " +
                               std::to_string(nodes.size()) + ")");
        return *nodes[i];
    }

    std::size_t running_count() const {
        std::size_t c = 0;
        for (auto& n : nodes) c += n->running() ? 1 : 0;
        return c;
    }

    std::string status(std::size_t i, const std::string& name) const { return at(i).global_status(name); }

    void wait_synced(std::size_t i, time_point until) const {
        auto& n = at(i);
        detail::wait_until(
            until, "node " + std::to_string(i) + " to be Synced in a Primary component",
            [&] {
                if (!n.running())
                    throw detail::give_up("galera_cluster: node " + std::to_string(i) + " exited; its log:\n" +
                                       n.log_tail(25));
                return status(i, "wsrep_local_state_comment") == "Synced" &&
                       status(i, "wsrep_cluster_status") == "Primary" && status(i, "wsrep_ready") == "ON";
            },
            [&] {
                return "wsrep_local_state_comment=" + status(i, "wsrep_local_state_comment") +
                       " wsrep_cluster_status=" + status(i, "wsrep_cluster_status") + "; its log:\n" + n.log_tail(15);
            });
    }

    void wait_size(std::size_t i, std::size_t size, time_point until) const {
        detail::wait_until(
            until, "node " + std::to_string(i) + " to see a cluster of " + std::to_string(size),
            [&] { return status(i, "wsrep_cluster_size") == std::to_string(size); },
            [&] { return "wsrep_cluster_size=" + status(i, "wsrep_cluster_size"); });
    }

    // Starts node i; a joiner's socket opens only after its SST, so wait_ready covers the transfer.
    // A node that died of its own during start-up aborts the wait at once (with its log).
    void start_node(std::size_t i, const std::vector<std::string>& args, time_point until) {
        at(i).start(args, until);
        wait_synced(i, until);
    }

    static std::unique_ptr<state> bring_up(const galera_options& o);
};

namespace {

std::string provider_path(const galera_options& o) {
    std::string p = o.provider.empty() ? "/usr/lib/galera/libgalera_smm.so" : o.provider;
    if (::access(p.c_str(), R_OK) != 0)
        throw server_error("galera_cluster: the Galera provider " + p +
                           " is missing: install the Debian package galera-4 (scripts/setup.sh does)");
    return p;
}

std::string random_suffix() {
    std::mt19937 r(std::random_device{}());
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(r()));
    return buf;
}

}  // namespace

std::unique_ptr<galera_cluster::state> galera_cluster::state::bring_up(const galera_options& o) {
    const auto t0 = clock_type::now();
    const auto until = t0 + o.start_timeout;
    const std::string provider = provider_path(o);
    find_program("rsync", "rsync");  // the SST method; fail here, not in a joiner's log
    auto st = std::make_unique<state>(o);
    const auto user = detail::run_as::servers();
    const std::size_t n = o.nodes;
    // Per node: SQL, group communication, IST receiver, SST (rsync daemon) ports.
    auto ports = detail::pick_ports(4 * n);
    auto sql_port = [&](std::size_t i) { return ports[4 * i]; };
    auto gcomm_port = [&](std::size_t i) { return ports[4 * i + 1]; };
    auto ist_port = [&](std::size_t i) { return ports[4 * i + 2]; };
    auto sst_port = [&](std::size_t i) { return ports[4 * i + 3]; };
    std::string address = "gcomm://";
    for (std::size_t i = 0; i < n; ++i)
        address += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(gcomm_port(i));
    // A name of its own: a cluster of another test run can never merge with this one.
    const std::string cluster_name = "lifeline-" + random_suffix();

    for (std::size_t i = 0; i < n; ++i) {
        auto node = std::make_unique<detail::node>(st->dir.path() + "/node" + std::to_string(i), sql_port(i), user);
        std::string provider_options = "base_port=" + std::to_string(gcomm_port(i)) +
                                       ";gmcast.listen_addr=tcp://127.0.0.1:" + std::to_string(gcomm_port(i)) +
                                       ";ist.recv_addr=127.0.0.1:" + std::to_string(ist_port(i)) + ";gcache.size=16M";
        if (!o.provider_options.empty()) provider_options += ";" + o.provider_options;
        std::vector<std::string> settings = {
            // 128M, as the other test servers: the redo a SIGKILL leaves behind is recovered in one
            // batch (with 32M, 10.11's multi-batch recovery once refused to start: "Data structure
            // corruption").
            "innodb-buffer-pool-size=128M",
            "innodb-flush-log-at-trx-commit=2",
            "max-connections=300",
            "binlog_format=ROW",
            "default_storage_engine=InnoDB",
            "innodb_autoinc_lock_mode=2",
            "wsrep_on=ON",
            "wsrep_provider=" + provider,
            "wsrep_cluster_name=" + cluster_name,
            "wsrep_cluster_address=" + address,
            "wsrep_node_name=node" + std::to_string(i),
            "wsrep_node_address=127.0.0.1",
            "wsrep_node_incoming_address=127.0.0.1:" + std::to_string(sql_port(i)),
            "wsrep_provider_options=\"" + provider_options + "\"",
            "wsrep_sst_method=rsync",
            "wsrep_sst_receive_address=127.0.0.1:" + std::to_string(sst_port(i)),
        };
        settings.insert(settings.end(), o.extra_settings.begin(), o.extra_settings.end());
        node->prepare(settings);
        test::endpoint e;
        e.port = sql_port(i);
        e.socket = node->socket();
        st->endpoints.push_back(e);
        st->nodes.push_back(std::move(node));
    }

    // Only the first node needs a system database; the joiners get everything by SST.
    detail::install_all({st->nodes[0].get()}, until);
    st->start_node(0, {"--wsrep-new-cluster"}, until);
    st->nodes[0]->exec_all(detail::user_statements(st->endpoints[0]));
    // One joiner at a time: the single donor serves SSTs one after the other anyway.
    for (std::size_t i = 1; i < n; ++i) st->start_node(i, {}, until);
    for (std::size_t i = 0; i < n; ++i) st->wait_size(i, n, until);

    st->startup = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
    std::cerr << "galera_cluster: " << n << " nodes on 127.0.0.1:";
    for (std::size_t i = 0; i < n; ++i) std::cerr << (i ? "," : "") << sql_port(i);
    std::cerr << " in " << st->dir.path() << " (up in " << st->startup.count() << " ms)\n";
    return st;
}

galera_cluster galera_cluster::start(const galera_options& options) {
    if (options.nodes < 1) throw server_error("galera_cluster: at least one node");
    for (int attempt = 1;; ++attempt) {
        try {
            return galera_cluster(state::bring_up(options));
        } catch (const detail::port_taken&) {
            if (attempt == 3) throw;  // another process took a picked port: pick new ones
        }
    }
}

galera_cluster::galera_cluster(std::unique_ptr<state> s) : s_(std::move(s)) {}
galera_cluster::galera_cluster(galera_cluster&&) noexcept = default;
galera_cluster::~galera_cluster() = default;

std::size_t galera_cluster::size() const { return s_->nodes.size(); }
const test::endpoint& galera_cluster::endpoint(std::size_t node) const {
    s_->at(node);
    return s_->endpoints[node];
}
const std::string& galera_cluster::dir() const { return s_->dir.path(); }
pid_t galera_cluster::pid(std::size_t node) const { return s_->at(node).pid(); }
bool galera_cluster::running(std::size_t node) const { return s_->at(node).running(); }
std::chrono::milliseconds galera_cluster::startup_time() const { return s_->startup; }

void galera_cluster::kill(std::size_t node) { s_->at(node).kill(); }

void galera_cluster::stop(std::size_t node) { s_->at(node).stop(s_->op_deadline()); }

void galera_cluster::start(std::size_t node) {
    auto& n = s_->at(node);
    if (n.running()) throw server_error("galera_cluster::start: node " + std::to_string(node) + " is running");
    if (s_->running_count() == 0)
        throw server_error("galera_cluster::start: no node is running, so there is no cluster to join");
    const auto until = s_->op_deadline();
    // A manual start skips what the systemd unit does (galera_recovery): without the recovered
    // position the node asks for a full SST instead of IST.
    const std::string recover_log = n.dir() + "/recover.log";
    std::error_code ec;
    fs::remove(recover_log, ec);
    int rc = n.run_once({"--wsrep-recover", "--log-error=" + recover_log}, "recover", until);
    std::string position;
    {
        std::ifstream in(recover_log);
        const std::string marker = "Recovered position: ";
        for (std::string line; std::getline(in, line);) {
            auto at = line.find(marker);
            if (at != std::string::npos) position = line.substr(at + marker.size());
        }
        while (!position.empty() && (position.back() == ' ' || position.back() == '\r')) position.pop_back();
    }
    std::vector<std::string> args;
    if (rc == 0 && !position.empty() && position.size() > 3 && position.compare(position.size() - 3, 3, ":-1") != 0)
        args.push_back("--wsrep-start-position=" + position);
    const std::size_t expected = s_->running_count() + 1;
    s_->start_node(node, args, until);
    s_->wait_size(node, expected, until);
}

void galera_cluster::set_reject_queries(std::size_t node, const std::string& mode) {
    auto& n = s_->at(node);
    n.exec("SET GLOBAL wsrep_reject_queries=" + mode);
    if (n.scalar("SELECT @@global.wsrep_reject_queries") != mode)
        throw server_error("galera_cluster::set_reject_queries: node " + std::to_string(node) + " does not show " + mode);
}

std::map<std::string, std::string> galera_cluster::wsrep_status(std::size_t node) const {
    std::map<std::string, std::string> out;
    for (auto& r : s_->at(node).query("SHOW GLOBAL STATUS LIKE 'wsrep%'")) out[r["Variable_name"]] = r["Value"];
    return out;
}

std::string galera_cluster::wsrep_status(std::size_t node, const std::string& name) const {
    return s_->status(node, name);
}

void galera_cluster::wait_synced(std::size_t node, std::chrono::milliseconds timeout) const {
    s_->wait_synced(node, clock_type::now() + timeout);
}

void galera_cluster::wait_cluster_size(std::size_t node, std::size_t size, std::chrono::milliseconds timeout) const {
    s_->wait_size(node, size, clock_type::now() + timeout);
}

void galera_cluster::admin_sql(std::size_t node, const std::string& sql) const {
    s_->at(node).exec(sql, static_cast<unsigned>(s_->options.operation_timeout.count()));
}
std::string galera_cluster::admin_scalar(std::size_t node, const std::string& sql) const {
    return s_->at(node).scalar(sql, static_cast<unsigned>(s_->options.operation_timeout.count()));
}
std::string galera_cluster::log_tail(std::size_t node, std::size_t lines) const { return s_->at(node).log_tail(lines); }

}  // namespace lifeline::test
