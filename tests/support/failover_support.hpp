// Test helpers for failover through lifeline on the real topologies (topology.hpp, galera.hpp):
// connect_options with the host list, and a writer thread that records, per key, what lifeline
// reported — so a test can check every acknowledged write against the surviving primary.
#ifndef LIFELINE_TESTS_SUPPORT_FAILOVER_SUPPORT_HPP
#define LIFELINE_TESTS_SUPPORT_FAILOVER_SUPPORT_HPP

#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/cluster_connection.hpp>
#include <lifeline/driver/capi.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace lifeline::test {

using steady = std::chrono::steady_clock;

inline long long ms_between(steady::time_point a, steady::time_point b) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// The application user on every node, as one host list.
template <class Topology>
connect_options cluster_options(const Topology& t, target_role target = target_role::writer) {
    connect_options o = options_for(t.endpoint(0));
    for (std::size_t i = 0; i < t.size(); ++i)
        o.hosts.push_back(host_port{t.endpoint(i).host, static_cast<std::uint16_t>(t.endpoint(i).port)});
    o.target = target;
    o.connect_timeout = std::chrono::milliseconds(2000);
    return o;
}

// A verification check for "INSERT ... k = key" (verify_with): the row is there or not.
inline auto row_check(const std::string& table, long long key) {
    return [table, key](MYSQL* m) {
        const std::string q = "SELECT COUNT(*) FROM " + table + " WHERE k = " + std::to_string(key);
        if (mysql_real_query(m, q.data(), q.size()) != 0) return write_check::unknown;
        MYSQL_RES* r = mysql_store_result(m);
        if (!r) return write_check::unknown;
        MYSQL_ROW row = mysql_fetch_row(r);
        const write_check c = (row && row[0]) ? (std::string(row[0]) == "0" ? write_check::not_applied : write_check::applied)
                                              : write_check::unknown;
        mysql_free_result(r);
        return c;
    };
}

struct write_outcome {
    long long key = 0;
    std::error_code ec;
    std::string why;  // lifeline's account when it failed
    steady::time_point done{};
    bool verified = false;        // the outcome was unknown and the check (on a fenced session) said applied
    unsigned attempts = 0;        // statements sent
};

// Writes k = base + 1, base + 2, ... through one lifeline connection (the host list) until
// stop(); each INSERT declared verify_with(row_check), under `deadline`.
class cluster_writer {
public:
    cluster_writer(connect_options o, std::string table, long long base, std::chrono::milliseconds deadline)
        : db_(std::move(o)), table_(std::move(table)), base_(base), deadline_(deadline), thread_([this] { run(); }) {}
    cluster_writer(const cluster_writer&) = delete;
    cluster_writer& operator=(const cluster_writer&) = delete;
    ~cluster_writer() { stop(); }

    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    int acked() const { return acked_; }
    std::vector<write_outcome> outcomes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return outcomes_;
    }
    // The first success that completed at or after t (steady::time_point{} if none yet).
    steady::time_point first_success_after(steady::time_point t) {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& w : outcomes_)
            if (!w.ec && w.done >= t) return w.done;
        return {};
    }

private:
    void run() {
        for (long long i = 1; !stop_; ++i) {
            const long long key = base_ + i;
            std::error_code ec;
            diagnostics d;
            const result r = db_.execute("INSERT INTO " + table_ + " (k, note) VALUES (" + std::to_string(key) + ", 'w')",
                                         verify_with(row_check(table_, key)), call_options{deadline_}, ec, d);
            write_outcome w;
            w.verified = r.verified;
            w.attempts = r.attempts;
            w.key = key;
            w.ec = ec;
            w.why = d.client_message;
            w.done = steady::now();
            std::lock_guard<std::mutex> lock(mutex_);
            outcomes_.push_back(w);
            if (!ec) ++acked_;
        }
    }

    lifeline::connection<lifeline::capi> db_;
    std::string table_;
    long long base_;
    std::chrono::milliseconds deadline_;
    std::mutex mutex_;
    std::vector<write_outcome> outcomes_;
    std::atomic<int> acked_{0};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// `causal`: Galera only. A node applies the write sets other nodes committed a moment after their
// COMMIT returned (certification is synchronous, applying is not): a plain read there can miss
// the last acknowledged writes. wsrep_sync_wait = 1 waits until the node has applied everything
// committed in the cluster before the read.
inline std::multiset<long long> keys_on(const endpoint& e, const std::string& table, bool causal = false) {
    auto m = capi_connect(e);
    if (causal) capi_exec(m.get(), "SET SESSION wsrep_sync_wait = 1");
    std::multiset<long long> keys;
    const std::string q = "SELECT k FROM " + table;
    if (mysql_query(m.get(), q.c_str()) != 0) throw server_error(q + ": " + mysql_error(m.get()));
    MYSQL_RES* r = mysql_store_result(m.get());
    while (MYSQL_ROW row = mysql_fetch_row(r)) keys.insert(std::atoll(row[0]));
    mysql_free_result(r);
    return keys;
}

// Polls `done` every 10 ms until it holds or `timeout` passes (then throws, naming `what`).
inline void wait_until(std::chrono::milliseconds timeout, const std::string& what, const std::function<bool()>& done) {
    const auto until = steady::now() + timeout;
    while (!done()) {
        if (steady::now() > until)
            throw server_error("timed out after " + std::to_string(timeout.count()) + " ms waiting for " + what);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

}  // namespace lifeline::test

#endif
