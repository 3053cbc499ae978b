// Async chaos: ONE io_context thread drives 32 lifeline async connections through the fault proxy
// while the blocking chaos test's schedule (chaos_test.cpp) injects its faults: RST cuts,
// blackholes, lost COMMITs (cut before and after the server committed), KILL CONNECTION, KILL
// QUERY, server SIGKILL + restart and SIGSTOP.
//   - 24 writers move money between accounts through async transactions (replayable, commit
//     resolution on);
//   - 4 writers send a non-idempotent INSERT verified by query (verify_by_query), the async
//     counterpart of the blocking test's verified run() writer;
//   - 8 borrowers share an async_pool of 4: half of what they do leaves session state behind
//     (autocommit=0, user variables, temporary tables, another schema, foreign_key_checks, a user
//     lock), the others check they got a clean session and write.
// At the end, on a direct connection: every write reported done is there exactly once; every one
// reported not done is absent; unknown outcomes only with their reason; the balances add up and
// match the ledger; no borrower saw another's state; no call answered past its deadline + 10 %.
// Seed: LIFELINE_CHAOS_SEED (printed); length: LIFELINE_CHAOS_SECONDS (default 40).
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/async_pool.hpp>
#include <lifeline/driver/capi_async.hpp>
#include <lifeline/testing/fault_proxy.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using clk = std::chrono::steady_clock;

namespace {

constexpr int accounts = 16;
constexpr int start_balance = 1000;
constexpr int tx_writers = 24;
constexpr int verify_writers = 4;
constexpr int borrowers = 8;
constexpr std::size_t pool_size = 4;  // 24 + 4 + 4 = 32 connections on one thread
constexpr auto call_deadline = 6s;

enum class told { committed, not_committed, unknown };

struct record {
    std::string ref;
    told what;
    std::string reason;
};

unsigned env_unsigned(const char* name, unsigned fallback) {
    const char* v = std::getenv(name);
    return v && *v ? static_cast<unsigned>(std::stoul(v)) : fallback;
}

using adb = async_connection<capi>;
using apool = async_pool<capi>;

default_policy chaos_policy() {
    default_policy p;
    p.retry.deadline = call_deadline;
    p.retry.max_attempts = 8;
    p.breaker.failure_threshold = 1000;  // the chaos schedule is not a real outage
    return p;
}

// Everything the io thread's callbacks share (touched on the io thread only, except the atomics).
struct books {
    std::atomic<bool> stop{false};
    std::atomic<int> running{0};
    std::atomic<int> over_deadline{0}, replays{0}, dirty_sessions{0}, pool_checks{0};
    std::atomic<std::uint64_t> session_ids[tx_writers + verify_writers] = {};
    std::mutex mu;  // the records are read by the test thread at the end
    std::vector<record> tx_records, verify_records, pool_records;
    void add(std::vector<record>& v, record r) {
        std::lock_guard<std::mutex> lock(mu);
        v.push_back(std::move(r));
    }
};

bool late(clk::time_point t0, std::chrono::milliseconds allowed) { return clk::now() - t0 > allowed * 11 / 10; }

struct tx_writer {
    int w;
    books& b;
    std::unique_ptr<adb> db;
    std::mt19937 rng;
    int seq = 0;

    void next() {
        if (b.stop) {
            --b.running;
            return;
        }
        const int from = static_cast<int>(rng() % accounts) + 1;
        int to = static_cast<int>(rng() % accounts) + 1;
        if (to == from) to = to % accounts + 1;
        const int amount = static_cast<int>(rng() % 50) + 1;
        const std::string ref = "w" + std::to_string(w) + "-" + std::to_string(seq++);
        const std::string s1 = "UPDATE chaos_accounts SET balance = balance - " + std::to_string(amount) + " WHERE id = " + std::to_string(from);
        const std::string s2 = "UPDATE chaos_accounts SET balance = balance + " + std::to_string(amount) + " WHERE id = " + std::to_string(to);
        const std::string s3 = "INSERT INTO chaos_ledger VALUES ('" + ref + "', " + std::to_string(from) + ", " +
                               std::to_string(to) + ", " + std::to_string(amount) + ")";
        const auto t0 = clk::now();
        db->async_transaction(
            [this, s1, s2, s3](adb::transaction_context& tx, adb::body_done done) {
                b.session_ids[w] = db->connection_id();
                tx.async_execute(s1, [&tx, done, s2, s3](std::error_code ec, result) {
                    if (ec) return done();
                    tx.async_execute(s2, [&tx, done, s3](std::error_code ec2, result) {
                        if (ec2) return done();
                        tx.async_execute(s3, [done](std::error_code, result) { done(); });
                    });
                });
            },
            lifeline::replayable_resolved, [this, ref, t0](std::error_code ec, async_transaction_result r) {
                if (late(t0, call_deadline)) ++b.over_deadline;
                if (r.attempts > 1) b.replays += static_cast<int>(r.attempts - 1);
                told what = told::committed;
                std::string reason;
                if (ec == errc::commit_unknown) {
                    what = told::unknown;
                    reason = ec.message() + " | " + db->last_diagnostics().client_message;
                } else if (ec) {
                    // Every other error means "certainly not committed".
                    what = told::not_committed;
                    reason = ec.message();
                }
                b.add(b.tx_records, {ref, what, reason});
                next();
            });
    }
};

// A non-idempotent write verified by a query after an unknown outcome.
struct verify_writer {
    int w;
    books& b;
    std::unique_ptr<adb> db;
    int seq = 0;

    void next() {
        if (b.stop) {
            --b.running;
            return;
        }
        const std::string ref = "v" + std::to_string(w) + "-" + std::to_string(seq++);
        const auto t0 = clk::now();
        b.session_ids[tx_writers + w] = db->connection_id();
        db->async_execute(
            "INSERT INTO chaos_runs (ref) VALUES ('" + ref + "')",
            verify_by_query("SELECT COUNT(*) FROM chaos_runs WHERE ref = '" + ref + "'",
                            [](const result& r) {
                                const auto n = r.scalar();
                                return n == std::optional<std::string>("0")   ? write_check::not_applied
                                       : n == std::optional<std::string>("1") ? write_check::applied
                                                                              : write_check::unknown;
                            }),
            [this, ref, t0](std::error_code ec, result) {
                if (late(t0, call_deadline)) ++b.over_deadline;
                told what = told::committed;
                std::string reason;
                if (ec == errc::outcome_unknown || ec == errc::verification_failed) {
                    what = told::unknown;
                    reason = ec.message() + " | " + db->last_diagnostics().client_message;
                } else if (ec) {
                    what = told::not_committed;
                    reason = ec.message();
                }
                b.add(b.verify_records, {ref, what, reason});
                next();
            });
    }
};

struct borrower {
    int id;
    books& b;
    apool& pool;
    std::string database;
    std::mt19937 rng;
    int seq = 0;

    void next() {
        if (b.stop) {
            --b.running;
            return;
        }
        const auto t0 = clk::now();
        pool.async_borrow(call_deadline, [this, t0](std::error_code ec, apool::handle h) {
            if (ec) {
                if (late(t0, call_deadline)) ++b.over_deadline;
                return next();
            }
            auto* c = h.get();
            // A clean session whatever the previous borrower did.
            c->async_query(
                "SELECT @@autocommit, @leak, DATABASE(), @@foreign_key_checks, "
                "IS_USED_LOCK('chaos_leak') IS NOT NULL AND IS_USED_LOCK('chaos_leak') = CONNECTION_ID()",
                lifeline::idempotent, [this, t0, h = std::move(h)](std::error_code qec, result state) mutable {
                    if (!qec && state.rows.size() == 1) {
                        ++b.pool_checks;
                        const auto& row = state.rows[0];
                        if (row[0] != std::optional<std::string>("1") || row[1].has_value() ||
                            row[2] != std::optional<std::string>(database) || row[3] != std::optional<std::string>("1") ||
                            row[4] == std::optional<std::string>("1"))
                            ++b.dirty_sessions;
                    }
                    auto* c = h.get();
                    if (rng() % 2 == 0) {
                        // Leave state behind (may fail under faults: fine, nothing is asserted).
                        static const char* leaks[] = {"SET autocommit = 0", "SET @leak = 'x'",
                                                      "CREATE TEMPORARY TABLE chaos_tmp (x INT)", "USE information_schema",
                                                      "SET foreign_key_checks = 0", "SELECT GET_LOCK('chaos_leak', 0)"};
                        c->async_execute(leaks[rng() % 6], [this, h = std::move(h)](std::error_code, result) mutable {
                            h.reset();
                            next();
                        });
                        return;
                    }
                    const std::string ref = "p" + std::to_string(id) + "-" + std::to_string(seq++);
                    c->async_execute("INSERT INTO " + database + ".chaos_pool (ref) VALUES ('" + ref + "')",
                                     [this, ref, t0, h = std::move(h)](std::error_code ec2, result) mutable {
                                         if (late(t0, 2 * call_deadline)) ++b.over_deadline;  // borrow + statements
                                         told what = told::committed;
                                         std::string reason;
                                         if (ec2 == errc::outcome_unknown) {
                                             what = told::unknown;
                                             reason = ec2.message() + " | " + h->last_diagnostics().client_message;
                                         } else if (ec2) {
                                             what = told::not_committed;
                                             reason = ec2.message();
                                         }
                                         b.add(b.pool_records, {ref, what, reason});
                                         h.reset();
                                         next();
                                     });
                });
        });
    }
};

}  // namespace

TEST_CASE("async chaos: 32 connections on one io thread, no duplicate and no lost write under every fault",
          "[chaos][async][capi]") {
    auto srv = server::attach();
    const unsigned seed = env_unsigned("LIFELINE_CHAOS_SEED", static_cast<unsigned>(std::random_device{}()));
    const auto length = std::chrono::seconds(env_unsigned("LIFELINE_CHAOS_SECONDS", 40));
    std::printf("async chaos: seed %u (set LIFELINE_CHAOS_SEED to replay), %lld s, %d connections on one io thread\n",
                seed, static_cast<long long>(length.count()), tx_writers + verify_writers + static_cast<int>(pool_size));
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE chaos_accounts (id INT PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB");
        capi_exec(m.get(), "INSERT INTO chaos_accounts SELECT seq, " + std::to_string(start_balance) +
                               " FROM seq_1_to_" + std::to_string(accounts));
        capi_exec(m.get(), "CREATE TABLE chaos_ledger (ref VARCHAR(32) PRIMARY KEY, src INT, dst INT, amount INT) "
                           "ENGINE=InnoDB");
        // No unique key on ref: a write sent twice would show as two rows.
        capi_exec(m.get(), "CREATE TABLE chaos_runs (id INT AUTO_INCREMENT PRIMARY KEY, ref VARCHAR(32)) ENGINE=InnoDB");
        capi_exec(m.get(), "CREATE TABLE chaos_pool (id INT AUTO_INCREMENT PRIMARY KEY, ref VARCHAR(32)) ENGINE=InnoDB");
    }
    lifeline::testing::fault_proxy proxy(srv.where().host, static_cast<std::uint16_t>(srv.where().port));
    connect_options o = options_for(srv.where());
    o.port = proxy.port();

    books b;
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::vector<std::unique_ptr<tx_writer>> txs;
    std::vector<std::unique_ptr<verify_writer>> vws;
    std::vector<std::unique_ptr<borrower>> bws;
    const default_policy p = chaos_policy();
    async_pool_options po;
    po.max_size = pool_size;
    auto pool = std::make_unique<apool>(io.get_executor(), o, po, p);
    for (int w = 0; w < tx_writers; ++w)
        txs.push_back(std::make_unique<tx_writer>(tx_writer{w, b, std::make_unique<adb>(io.get_executor(), o, p),
                                                            std::mt19937(seed * 31 + static_cast<unsigned>(w))}));
    for (int w = 0; w < verify_writers; ++w)
        vws.push_back(std::make_unique<verify_writer>(verify_writer{w, b, std::make_unique<adb>(io.get_executor(), o, p)}));
    for (int i = 0; i < borrowers; ++i)
        bws.push_back(std::make_unique<borrower>(
            borrower{i, b, *pool, srv.where().database, std::mt19937(seed * 17 + static_cast<unsigned>(i))}));
    b.running = tx_writers + verify_writers + borrowers;
    asio::post(io, [&] {
        for (auto& x : txs) x->next();
        for (auto& x : vws) x->next();
        for (auto& x : bws) x->next();
    });
    std::thread io_thread([&] { io.run(); });  // the one thread every connection runs on

    // The fault schedule (chaos_test.cpp's).
    std::map<std::string, int> faults;
    std::mt19937 rng(seed);
    const auto until = clk::now() + length;
    while (clk::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
        const int kind = static_cast<int>(rng() % 8);
        std::string name;
        try {
            switch (kind) {
            case 0:
                name = "cut_rst";
                proxy.cut_all(lifeline::testing::cut_kind::rst);
                break;
            case 1:
                name = "blackhole";
                proxy.blackhole();
                std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1500));
                proxy.pass();
                break;
            case 2:
                name = "commit_cut_before";
                proxy.cut_on_commit(lifeline::testing::commit_cut::before_forward);
                std::this_thread::sleep_for(300ms);
                proxy.pass();
                break;
            case 3:
                name = "commit_cut_after";
                proxy.cut_on_commit(lifeline::testing::commit_cut::after_forward);
                std::this_thread::sleep_for(300ms);
                proxy.pass();
                break;
            case 4: {
                name = "kill_connection";
                const auto id = b.session_ids[rng() % (tx_writers + verify_writers)].load();
                if (id) admin_kill(srv.where(), id);
                break;
            }
            case 5: {
                name = "kill_query";
                const auto id = b.session_ids[rng() % (tx_writers + verify_writers)].load();
                if (id) admin_kill(srv.where(), id, true);
                break;
            }
            case 6:
                name = "server_sigkill_restart";
                srv.crash();
                std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 800));
                srv.start_again();
                break;
            default:
                name = "server_sigstop";
                srv.freeze();
                std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 2000));
                srv.thaw();
                break;
            }
        } catch (const std::exception& e) {
            name += "(harness: " + std::string(e.what()) + ")";
        }
        ++faults[name];
    }
    b.stop = true;
    proxy.pass();
    if (!srv.running()) srv.start_again();
    srv.thaw();
    // Every loop ends after its current call (bounded by its deadline); then the io thread stops.
    const auto drain_until = clk::now() + 4 * call_deadline;
    while (b.running > 0 && clk::now() < drain_until) std::this_thread::sleep_for(20ms);
    CHECK(b.running == 0);
    asio::post(io, [&] {
        txs.clear();
        vws.clear();
        bws.clear();
        pool.reset();
    });
    work.reset();
    io_thread.join();

    // The books.
    auto m = capi_connect(srv.where());
    auto count_refs = [&](const std::string& table) {
        std::map<std::string, int> out;
        const std::string q = "SELECT ref FROM " + table;
        REQUIRE(mysql_query(m.get(), q.c_str()) == 0);
        MYSQL_RES* res = mysql_store_result(m.get());
        while (MYSQL_ROW row = mysql_fetch_row(res)) ++out[row[0]];
        mysql_free_result(res);
        return out;
    };
    struct tally_t {
        int done = 0, not_done = 0, unknown = 0, unexplained = 0, duplicates = 0, lost = 0, phantom = 0, orphans = 0;
    };
    auto tally = [](const std::vector<record>& recs, std::map<std::string, int> db) {
        tally_t t;
        std::map<std::string, bool> known;
        for (auto& r : recs) {
            known[r.ref] = true;
            const int n = db.count(r.ref) ? db[r.ref] : 0;
            if (n > 1) ++t.duplicates;
            switch (r.what) {
            case told::committed:
                ++t.done;
                if (n != 1) ++t.lost;
                break;
            case told::not_committed:
                ++t.not_done;
                if (n != 0) ++t.phantom;
                break;
            case told::unknown:
                ++t.unknown;
                if (r.reason.empty()) ++t.unexplained;
                break;
            }
        }
        for (auto& kv : db)
            if (!known.count(kv.first)) ++t.orphans;  // a row nobody was told about
        return t;
    };
    const tally_t tx = tally(b.tx_records, count_refs("chaos_ledger"));
    const tally_t vw = tally(b.verify_records, count_refs("chaos_runs"));
    const tally_t pw = tally(b.pool_records, count_refs("chaos_pool"));
    const std::string sum = capi_scalar(m.get(), "SELECT SUM(balance) FROM chaos_accounts");
    const std::string mismatched = capi_scalar(
        m.get(), "SELECT COUNT(*) FROM chaos_accounts a WHERE a.balance <> " + std::to_string(start_balance) +
                     " - (SELECT COALESCE(SUM(amount), 0) FROM chaos_ledger WHERE src = a.id)"
                     " + (SELECT COALESCE(SUM(amount), 0) FROM chaos_ledger WHERE dst = a.id)");

    auto line = [](const char* what, std::size_t n, const tally_t& t) {
        std::printf("async chaos %s: %zu calls, done %d, not done %d, unknown %d (unexplained %d), duplicates %d, lost %d, "
                    "phantom %d, orphans %d\n",
                    what, n, t.done, t.not_done, t.unknown, t.unexplained, t.duplicates, t.lost, t.phantom, t.orphans);
    };
    line("transactions", b.tx_records.size(), tx);
    line("verified writes", b.verify_records.size(), vw);
    line("pool writes", b.pool_records.size(), pw);
    std::printf("async chaos: replays %d, over deadline %d, pool session checks %d, dirty sessions %d\n", b.replays.load(),
                b.over_deadline.load(), b.pool_checks.load(), b.dirty_sessions.load());
    std::printf("async chaos faults:");
    for (auto& kv : faults) std::printf(" %s=%d", kv.first.c_str(), kv.second);
    const auto ps = proxy.stats();
    std::printf("\nasync chaos proxy: connections %llu, commits seen %llu, commits cut %llu, cuts %llu\n",
                static_cast<unsigned long long>(ps.accepted), static_cast<unsigned long long>(ps.commits_seen),
                static_cast<unsigned long long>(ps.commits_cut), static_cast<unsigned long long>(ps.cuts));
    for (auto* recs : {&b.tx_records, &b.verify_records, &b.pool_records})
        for (auto& r : *recs)
            if (r.what == told::unknown) std::printf("async chaos unknown: %s: %s\n", r.ref.c_str(), r.reason.c_str());

    CHECK(b.tx_records.size() > 100);
    CHECK(tx.done > 0);
    CHECK(faults.size() >= 4);
    for (const tally_t* t : {&tx, &vw, &pw}) {
        CHECK(t->duplicates == 0);
        CHECK(t->lost == 0);
        CHECK(t->phantom == 0);
        CHECK(t->unexplained == 0);
    }
    CHECK(tx.orphans == 0);
    CHECK(vw.orphans == 0);
    CHECK(pw.orphans == 0);
    CHECK(sum == std::to_string(accounts * start_balance));
    CHECK(mismatched == "0");
    CHECK(b.over_deadline == 0);
    CHECK(b.verify_records.size() > 10);
    CHECK(b.pool_records.size() > 10);
    CHECK(b.pool_checks > 10);
    CHECK(b.dirty_sessions == 0);
}
