// Failover chaos (labels chaos, failover): writers and readers through lifeline on a replicated
// topology (primary + 2 replicas, GTID, semi-sync AFTER_SYNC) while the harness, playing the
// orchestrator, takes the writer away again and again — SIGKILL of the primary, or a switchover
// that makes it read-only under load — promotes the most advanced replica, repoints the other and
// brings the old primary back as a replica (--init-rpl-role=SLAVE, MASTER_DEMOTE_TO_SLAVE).
//
//   - two statement writers: autocommit INSERTs declared verify_with (a row check);
//   - a transaction writer: two rows per transaction, replayable, commit resolution on;
//   - two cluster_connection readers: a write, then a read_your_writes read of it (it must see
//     it), and replica_ok reads.
//
// At the end, on the last primary and every node: each write reported done is there exactly once,
// each reported not done is absent, every unknown outcome carries lifeline's reason and is at
// most once; a transaction is all or nothing; no read_your_writes read missed its write; every node
// holds the same GTID state and no replica stopped (nothing was written to a read-only node); and
// semi-sync was on at each primary until it was taken away (the zero-loss precondition).
// Seed: LIFELINE_CHAOS_SEED (printed); length: LIFELINE_FAILOVER_CHAOS_SECONDS (default 40, <= 60).
#include "failover_support.hpp"
#include "topology.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <random>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;

namespace {

unsigned env_unsigned(const char* name, unsigned fallback) {
    const char* v = std::getenv(name);
    return v && *v ? static_cast<unsigned>(std::stoul(v)) : fallback;
}

enum class told { done, not_done, unknown };

struct tx_record {
    long long key;
    told what;
    std::string reason;
};

// Transactions of two rows (k, k + 500000), replayable with commit resolution.
class transaction_writer {
public:
    transaction_writer(connect_options o, long long base)
        : db_(std::move(o)), base_(base), thread_([this] { run(); }) {}
    ~transaction_writer() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    std::vector<tx_record> records() {
        std::lock_guard<std::mutex> lock(mutex_);
        return records_;
    }
    int committed() const { return committed_; }

private:
    void run() {
        for (long long i = 1; !stop_; ++i) {
            const long long k = base_ + i;
            transaction_options o = lifeline::replayable_resolved;
            o.deadline = 20s;
            std::error_code ec;
            diagnostics d;
            db_.transaction(
                [&](auto& tx) {
                    tx.execute("INSERT INTO ledger (k, note) VALUES (" + std::to_string(k) + ", 'tx')");
                    tx.execute("INSERT INTO ledger (k, note) VALUES (" + std::to_string(k + 500000) + ", 'tx')");
                },
                o, ec, d);
            tx_record r{k, !ec ? told::done : ec == errc::commit_unknown ? told::unknown : told::not_done,
                        ec ? ec.message() + ": " + d.client_message : std::string()};
            std::lock_guard<std::mutex> lock(mutex_);
            records_.push_back(r);
            if (!ec) ++committed_;
        }
    }
    lifeline::connection<lifeline::capi> db_;
    long long base_;
    std::mutex mutex_;
    std::vector<tx_record> records_;
    std::atomic<int> committed_{0};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// A write through a cluster_connection, then a read_your_writes read of it; replica_ok reads between.
class ryw_reader {
public:
    ryw_reader(connect_options o, long long base) : db_(std::move(o)), base_(base), thread_([this] { run(); }) {}
    ~ryw_reader() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    std::vector<write_outcome> writes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return writes_;
    }
    int violations() const { return violations_; }
    int read_failures() const { return read_failures_; }
    int reads() const { return reads_; }
    std::string last_failure() {
        std::lock_guard<std::mutex> lock(mutex_);
        return last_failure_;
    }
    const cluster_connection_stats& stats() const { return db_.stats(); }

private:
    void run() {
        for (long long i = 1; !stop_; ++i) {
            const long long k = base_ + i;
            std::error_code ec;
            diagnostics d;
            db_.execute("INSERT INTO ledger (k, note) VALUES (" + std::to_string(k) + ", 'ryw')",
                        verify_with(row_check("ledger", k)), call_options{20s}, ec, d);
            {
                write_outcome w;
                w.key = k;
                w.ec = ec;
                w.why = d.client_message;
                std::lock_guard<std::mutex> lock(mutex_);
                writes_.push_back(w);
            }
            if (!ec) read(k, true);
            read(k, false);
        }
    }
    void read(long long k, bool mine) {
        std::error_code ec;
        diagnostics d;
        const std::string q = "SELECT COUNT(*) FROM ledger WHERE k = " + std::to_string(k);
        result r = mine ? db_.query(q, lifeline::read_your_writes, call_options{10s}, ec, d)
                        : db_.query(q, lifeline::replica_ok, call_options{10s}, ec, d);
        ++reads_;
        if (ec) {
            ++read_failures_;
            std::lock_guard<std::mutex> lock(mutex_);
            last_failure_ = ec.message() + ": " + d.client_message;
            return;
        }
        if (mine && r.scalar() != std::optional<std::string>("1")) ++violations_;
    }
    cluster_connection<capi> db_;
    long long base_;
    std::mutex mutex_;
    std::vector<write_outcome> writes_;
    std::string last_failure_;
    std::atomic<int> violations_{0}, read_failures_{0}, reads_{0};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace

TEST_CASE("failover chaos: writers and readers while the writer is killed or demoted and a replica promoted, again and again",
          "[chaos][failover_chaos]") {
    const unsigned seed = env_unsigned("LIFELINE_CHAOS_SEED", static_cast<unsigned>(std::random_device{}()));
    const unsigned seconds = std::min(60u, env_unsigned("LIFELINE_FAILOVER_CHAOS_SECONDS", 40));
    std::printf("failover chaos: seed %u (LIFELINE_CHAOS_SEED), %u s (LIFELINE_FAILOVER_CHAOS_SECONDS)\n", seed, seconds);
    std::mt19937 rng(seed);

    auto topo = replicated_topology::start();
    {
        auto m = capi_connect(topo.endpoint(0));
        capi_exec(m.get(), "CREATE TABLE ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, k BIGINT NOT NULL, "
                           "note VARCHAR(16), KEY (k)) ENGINE=InnoDB");
    }
    REQUIRE(topo.wait_replicated(1, 20s));
    REQUIRE(topo.wait_replicated(2, 20s));
    const connect_options o = cluster_options(topo);

    const auto t0 = steady::now();
    auto w1 = std::make_unique<cluster_writer>(o, "ledger", 1000000, 20s);
    auto w2 = std::make_unique<cluster_writer>(o, "ledger", 2000000, 20s);
    auto tw = std::make_unique<transaction_writer>(o, 3000000);
    auto r1 = std::make_unique<ryw_reader>(o, 5000000);
    auto r2 = std::make_unique<ryw_reader>(o, 6000000);
    auto acked = [&] { return w1->acked() + w2->acked() + tw->committed(); };

    int crashes = 0, switchovers = 0, semi_sync_violations = 0;
    std::vector<long long> to_first_write;  // promotion finished -> first statement write, ms
    // At least three failovers however slow the machine, then as many as fit in the time.
    while (crashes + switchovers < 3 || ms_between(t0, steady::now()) < static_cast<long long>(seconds) * 1000 - 4000) {
        const int before = acked();
        wait_until(30s, "30 more acknowledged writes", [&] { return acked() >= before + 30; });
        const std::size_t old = topo.primary();
        // Zero loss needs semi-sync really on until the primary goes (no transaction went async).
        if (topo.global_status(old, "Rpl_semi_sync_master_status") != "ON" ||
            topo.global_status(old, "Rpl_semi_sync_master_no_tx") != "0")
            ++semi_sync_violations;
        const bool crash = rng() % 3 != 0;
        if (crash) {
            topo.kill_primary();
            ++crashes;
        } else {
            topo.set_read_only(old, true);  // a switchover under load: writes get 1290 from here on
            ++switchovers;
        }
        const std::size_t next = topo.most_advanced_replica();
        topo.promote(next, /*writable*/ false);
        for (std::size_t i = 0; i < topo.size(); ++i)
            if (i != next && i != old) topo.repoint(i, next);
        topo.wait_semi_sync_clients(next, 1, 20s);
        topo.set_read_only(next, false);
        const auto promoted = steady::now();
        wait_until(20s, "a lifeline write after the promotion", [&] {
            return w1->first_success_after(promoted) != steady::time_point{} ||
                   w2->first_success_after(promoted) != steady::time_point{};
        });
        auto first = w1->first_success_after(promoted);
        const auto first2 = w2->first_success_after(promoted);
        if (first == steady::time_point{} || (first2 != steady::time_point{} && first2 < first)) first = first2;
        to_first_write.push_back(ms_between(promoted, first));
        topo.rejoin_old_primary(old, next);
        topo.wait_semi_sync_clients(next, 2, 20s);
    }
    w1->stop();
    w2->stop();
    tw->stop();
    r1->stop();
    r2->stop();
    const long long ran_ms = ms_between(t0, steady::now());

    // --- the books --------------------------------------------------------------------------------
    const std::size_t p = topo.primary();
    for (std::size_t i = 0; i < topo.size(); ++i)
        if (i != p) REQUIRE(topo.wait_replicated(i, 30s));
    const auto keys = keys_on(topo.endpoint(p), "ledger");
    std::size_t done = 0, not_done = 0, unknown = 0, wrong = 0, duplicates = 0;
    std::vector<std::string> unknown_reasons;
    auto judge = [&](long long k, told what, const std::string& reason) {
        const std::size_t n = keys.count(k);
        if (n > 1) ++duplicates;
        switch (what) {
        case told::done:
            ++done;
            if (n != 1) {
                ++wrong;
                UNSCOPED_INFO("key " << k << " reported done, found " << n << " times");
            }
            break;
        case told::not_done:
            ++not_done;
            if (n != 0) {
                ++wrong;
                UNSCOPED_INFO("key " << k << " reported not done, found " << n << " times: " << reason);
            }
            break;
        case told::unknown:
            ++unknown;
            unknown_reasons.push_back(std::to_string(k) + ": " + reason);
            CHECK_FALSE(reason.empty());  // explained: lifeline says why it could not tell
            break;
        }
    };
    auto statement_told = [](const write_outcome& w) {
        if (!w.ec) return told::done;
        if (w.ec == errc::outcome_unknown || w.ec == errc::verification_failed) return told::unknown;
        return told::not_done;
    };
    std::size_t verified = 0, resent = 0;
    for (auto* w : {w1.get(), w2.get()})
        for (const auto& x : w->outcomes()) {
            verified += x.verified;
            resent += x.attempts > 1;
            judge(x.key, statement_told(x), x.ec ? x.ec.message() + ": " + x.why : std::string());
        }
    for (auto* r : {r1.get(), r2.get()})
        for (const auto& x : r->writes()) judge(x.key, statement_told(x), x.ec ? x.ec.message() + ": " + x.why : std::string());
    std::size_t torn = 0;
    for (const auto& t : tw->records()) {
        judge(t.key, t.what, t.reason);
        if (keys.count(t.key) != keys.count(t.key + 500000)) ++torn;  // all or nothing
        if (t.what != told::unknown && keys.count(t.key + 500000) != (t.what == told::done ? 1u : 0u)) ++wrong;
    }
    for (const auto& r : unknown_reasons) std::printf("unknown outcome: %s\n", r.c_str());

    // Nothing was written to a read-only node: every node ends with the same GTID state and no
    // replica stopped on an errant transaction (gtid_strict_mode would stop it).
    const auto primary_state = gtid_state::parse(topo.admin_scalar(p, "SELECT @@global.gtid_binlog_state"));
    REQUIRE(primary_state);
    for (std::size_t i = 0; i < topo.size(); ++i) {
        if (i == p) continue;
        INFO("node " << i);
        const auto st = gtid_state::parse(topo.admin_scalar(i, "SELECT @@global.gtid_binlog_state"));
        REQUIRE(st);
        CHECK(st->covers(*primary_state));
        CHECK(primary_state->covers(*st));
        auto rs = topo.replica_status(i);
        CHECK(rs["Last_SQL_Errno"] == "0");
        CHECK(rs["Slave_SQL_Running"] == "Yes");
    }

    std::sort(to_first_write.begin(), to_first_write.end());
    const long long worst = to_first_write.empty() ? -1 : to_first_write.back();
    const long long median = to_first_write.empty() ? -1 : to_first_write[to_first_write.size() / 2];
    std::printf("failover chaos: seed %u, %lld ms, %d crash failovers + %d switchovers; writes done %zu (%zu verified "
                "applied, %zu re-sent), not done %zu, unknown %zu, wrong %zu, duplicates %zu, torn transactions %zu\n",
                seed, ran_ms, crashes, switchovers, done, verified, resent, not_done, unknown, wrong, duplicates, torn);
    std::printf("failover chaos: promotion finished -> first lifeline write: median %lld ms, worst %lld ms over %zu\n",
                median, worst, to_first_write.size());
    std::printf("failover chaos: reads %d, read_your_writes violations %d, read failures %d; replica reads %llu, "
                "writer reads %llu, ryw waits %llu, ryw fallbacks %llu\n",
                r1->reads() + r2->reads(), r1->violations() + r2->violations(), r1->read_failures() + r2->read_failures(),
                static_cast<unsigned long long>(r1->stats().reads_on_replica + r2->stats().reads_on_replica),
                static_cast<unsigned long long>(r1->stats().reads_on_writer + r2->stats().reads_on_writer),
                static_cast<unsigned long long>(r1->stats().ryw_waits + r2->stats().ryw_waits),
                static_cast<unsigned long long>(r1->stats().ryw_fallbacks + r2->stats().ryw_fallbacks));
    INFO("last read failure: " << r1->last_failure() << " | " << r2->last_failure());
    CHECK(crashes + switchovers >= 3);
    CHECK(semi_sync_violations == 0);
    CHECK(wrong == 0);
    CHECK(duplicates == 0);
    CHECK(torn == 0);
    CHECK(r1->violations() + r2->violations() == 0);
    CHECK(r1->read_failures() + r2->read_failures() == 0);
}
