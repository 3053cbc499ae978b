// Chaos: writer threads move money between accounts through lifeline transactions (replayable,
// commit resolution on) via the fault-injecting proxy, while a schedule injects cuts, blackholes,
// lost COMMITs, KILL CONNECTION, KILL QUERY, server SIGKILL + restart and SIGSTOP.
//
// At the end, checked on a direct connection: every transaction reported committed is in the
// ledger exactly once; every one reported not committed is absent; unknown outcomes appear only
// with their reason; the sum of balances is unchanged and every balance matches the ledger; no
// call waited past its deadline (+10 %). Seed: LIFELINE_CHAOS_SEED (printed); length:
// LIFELINE_CHAOS_SECONDS (default 60).
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/driver/capi.hpp>
#include <lifeline/testing/fault_proxy.hpp>

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
using clk = std::chrono::steady_clock;

namespace {

constexpr int accounts = 16;
constexpr int start_balance = 1000;
constexpr int writers = 4;
constexpr auto call_deadline = 6s;

enum class told { committed, not_committed, unknown };

struct outcome_record {
    std::string ref;
    int from, to, amount;
    told what;
    std::string reason;
};

unsigned env_unsigned(const char* name, unsigned fallback) {
    const char* v = std::getenv(name);
    return v && *v ? static_cast<unsigned>(std::stoul(v)) : fallback;
}

}  // namespace

TEST_CASE("chaos: no duplicate and no lost write under every fault of the article", "[chaos][capi]") {
    auto srv = server::attach();
    const unsigned seed = env_unsigned("LIFELINE_CHAOS_SEED", static_cast<unsigned>(std::random_device{}()));
    const auto length = std::chrono::seconds(env_unsigned("LIFELINE_CHAOS_SECONDS", 60));
    std::printf("chaos: seed %u (set LIFELINE_CHAOS_SEED to replay), %lld s\n", seed,
                static_cast<long long>(length.count()));
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE chaos_accounts (id INT PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB");
        capi_exec(m.get(), "INSERT INTO chaos_accounts SELECT seq, " + std::to_string(start_balance) +
                               " FROM seq_1_to_" + std::to_string(accounts));
        capi_exec(m.get(), "CREATE TABLE chaos_ledger (ref VARCHAR(32) PRIMARY KEY, src INT, dst INT, amount INT) "
                           "ENGINE=InnoDB");
    }
    lifeline::testing::fault_proxy proxy(srv.where().host, static_cast<std::uint16_t>(srv.where().port));

    std::mutex mu;
    std::vector<outcome_record> records;
    std::map<std::string, int> faults;
    std::atomic<bool> stop{false};
    std::atomic<int> over_deadline{0}, replays{0};
    std::atomic<std::uint64_t> session_ids[writers] = {};

    auto writer = [&](int w) {
        connect_options o = options_for(srv.where());
        o.port = proxy.port();
        default_policy p;
        p.retry.deadline = call_deadline;
        p.retry.max_attempts = 8;
        p.breaker.failure_threshold = 1000;  // the chaos schedule is not a real outage
        lifeline::connection<lifeline::capi> db(o, p);
        std::mt19937 rng(seed * 31 + static_cast<unsigned>(w));
        for (int seq = 0; !stop; ++seq) {
            int from = static_cast<int>(rng() % accounts) + 1, to = static_cast<int>(rng() % accounts) + 1;
            if (to == from) to = to % accounts + 1;
            int amount = static_cast<int>(rng() % 50) + 1;
            std::string ref = "w" + std::to_string(w) + "-" + std::to_string(seq);
            std::error_code ec;
            diagnostics d;
            auto t0 = clk::now();
            auto r = db.transaction(
                [&](auto& tx) {
                    session_ids[w] = db.connection_id();
                    tx.execute("UPDATE chaos_accounts SET balance = balance - " + std::to_string(amount) +
                               " WHERE id = " + std::to_string(from));
                    tx.execute("UPDATE chaos_accounts SET balance = balance + " + std::to_string(amount) +
                               " WHERE id = " + std::to_string(to));
                    tx.execute("INSERT INTO chaos_ledger VALUES ('" + ref + "', " + std::to_string(from) + ", " +
                               std::to_string(to) + ", " + std::to_string(amount) + ")");
                },
                lifeline::replayable_resolved, ec, d);
            auto took = clk::now() - t0;
            if (took > call_deadline * 11 / 10) ++over_deadline;
            if (r.attempts > 1) replays += static_cast<int>(r.attempts - 1);
            told what = told::committed;
            std::string reason;
            if (ec == errc::commit_unknown) {
                what = told::unknown;
                reason = ec.message() + " | " + d.server_message;
            } else if (ec) {
                // Every other error means "certainly not committed": lost before COMMIT, rolled
                // back, or resolved as absent — or never connected at all.
                what = told::not_committed;
                reason = ec.message();
            }
            std::lock_guard<std::mutex> lock(mu);
            records.push_back({ref, from, to, amount, what, reason});
        }
    };

    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) threads.emplace_back(writer, w);

    // The fault schedule.
    std::mt19937 rng(seed);
    const auto until = clk::now() + length;
    while (clk::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
        int kind = static_cast<int>(rng() % 8);
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
                auto id = session_ids[rng() % writers].load();
                if (id) admin_kill(srv.where(), id);
                break;
            }
            case 5: {
                name = "kill_query";
                auto id = session_ids[rng() % writers].load();
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
    stop = true;
    proxy.pass();
    for (auto& t : threads) t.join();
    if (!srv.running()) srv.start_again();
    srv.thaw();

    // The books.
    auto m = capi_connect(srv.where());
    std::map<std::string, int> in_ledger;
    {
        REQUIRE(mysql_query(m.get(), "SELECT ref FROM chaos_ledger") == 0);
        MYSQL_RES* res = mysql_store_result(m.get());
        while (MYSQL_ROW row = mysql_fetch_row(res)) ++in_ledger[row[0]];
        mysql_free_result(res);
    }
    int committed = 0, not_committed = 0, unknown = 0, unknown_present = 0;
    int duplicates = 0, lost = 0, phantom = 0;
    for (auto& r : records) {
        int n = in_ledger.count(r.ref) ? in_ledger[r.ref] : 0;
        if (n > 1) ++duplicates;
        switch (r.what) {
        case told::committed:
            ++committed;
            if (n != 1) ++lost;
            break;
        case told::not_committed:
            ++not_committed;
            if (n != 0) ++phantom;
            break;
        case told::unknown:
            ++unknown;
            unknown_present += n;
            CHECK_FALSE(r.reason.empty());
            break;
        }
    }
    // Every ledger row belongs to a transaction someone was told about.
    std::map<std::string, bool> known;
    for (auto& r : records) known[r.ref] = true;
    int orphans = 0;
    for (auto& kv : in_ledger)
        if (!known.count(kv.first)) ++orphans;

    std::string sum = capi_scalar(m.get(), "SELECT SUM(balance) FROM chaos_accounts");
    // Each balance must equal the start plus what the ledger says moved.
    std::string mismatched = capi_scalar(
        m.get(),
        "SELECT COUNT(*) FROM chaos_accounts a WHERE a.balance <> " + std::to_string(start_balance) +
            " - (SELECT COALESCE(SUM(amount), 0) FROM chaos_ledger WHERE src = a.id)"
            " + (SELECT COALESCE(SUM(amount), 0) FROM chaos_ledger WHERE dst = a.id)");

    std::printf("chaos tally: transactions %zu, committed %d, not committed %d, unknown %d (present %d), "
                "replays %d, over deadline %d\n",
                records.size(), committed, not_committed, unknown, unknown_present, replays.load(),
                over_deadline.load());
    std::printf("chaos faults:");
    for (auto& kv : faults) std::printf(" %s=%d", kv.first.c_str(), kv.second);
    auto ps = proxy.stats();
    std::printf("\nchaos proxy: connections %llu, commits seen %llu, commits cut %llu, cuts %llu\n",
                static_cast<unsigned long long>(ps.accepted), static_cast<unsigned long long>(ps.commits_seen),
                static_cast<unsigned long long>(ps.commits_cut), static_cast<unsigned long long>(ps.cuts));
    for (auto& r : records)
        if (r.what == told::unknown) std::printf("chaos unknown: %s: %s\n", r.ref.c_str(), r.reason.c_str());

    CHECK(records.size() > 50);
    CHECK(committed > 0);
    CHECK(duplicates == 0);
    CHECK(lost == 0);
    CHECK(phantom == 0);
    CHECK(orphans == 0);
    CHECK(sum == std::to_string(accounts * start_balance));
    CHECK(mismatched == "0");
    CHECK(over_deadline == 0);
}
