// lifeline::bulk_insert against the real server (label options): chunks under max_allowed_packet,
// exact values, progress, a row too large refused before anything is sent, a load stopped halfway
// and resumed by a rerun (no row twice, none missing), a lost COMMIT resolved by its marker; and
// (integration.options.bulk_chaos) a load through the fault proxy while the chaos test's faults
// are injected — cuts, blackholes, lost COMMITs, KILL CONNECTION, KILL QUERY, server SIGKILL +
// restart, SIGSTOP — ending with every row present exactly once.
// LIFELINE_CHAOS_SEED replays the schedule; LIFELINE_BULK_ROWS sets the chaos load's size.
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/bulk_insert.hpp>
#include <lifeline/driver/capi.hpp>
#include <lifeline/driver/jdbc.hpp>
#include <lifeline/testing/fault_proxy.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

template <class Driver>
std::unique_ptr<lifeline::connection<Driver>> make_db(connect_options o, default_policy p = {}) {
    auto db = std::make_unique<lifeline::connection<Driver>>(std::move(o), p);
    db->set_retry_budget(std::make_shared<retry_budget>(p.budget));
    db->set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
    db->set_endpoint_monitor(std::make_shared<endpoint_monitor>(p.probe));
    return db;
}

unsigned env_unsigned(const char* name, unsigned fallback) {
    const char* v = std::getenv(name);
    return v && *v ? static_cast<unsigned>(std::stoul(v)) : fallback;
}

using row_t = std::tuple<long long, std::string, std::optional<double>>;

std::vector<row_t> make_rows(std::size_t n, std::size_t text = 80) {
    std::vector<row_t> rows;
    rows.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        rows.emplace_back(static_cast<long long>(i), "row " + std::to_string(i) + " " + std::string(text, 'a' + i % 26),
                          i % 7 == 0 ? std::nullopt : std::optional<double>(static_cast<double>(i) / 4));
    return rows;
}

void create_table(const endpoint& e, const std::string& name) {
    auto m = capi_connect(e);
    // No unique key on id: a row sent twice would show up twice.
    capi_exec(m.get(), "CREATE TABLE " + name + " (seq BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL, "
                       "note VARCHAR(300), amount DOUBLE, KEY (id)) ENGINE=InnoDB");
}

// Every id 0..n-1 exactly once: {rows, distinct ids, duplicates, missing}.
struct tally {
    long long rows = 0, distinct = 0, duplicates = 0, missing = 0;
};
tally count(const endpoint& e, const std::string& table, std::size_t n) {
    auto m = capi_connect(e);
    tally t;
    t.rows = std::stoll(capi_scalar(m.get(), "SELECT COUNT(*) FROM " + table));
    t.distinct = std::stoll(capi_scalar(m.get(), "SELECT COUNT(DISTINCT id) FROM " + table));
    t.duplicates = t.rows - t.distinct;
    t.missing = static_cast<long long>(n) -
                std::stoll(capi_scalar(m.get(), "SELECT COUNT(DISTINCT id) FROM " + table + " WHERE id BETWEEN 0 AND " +
                                                    std::to_string(static_cast<long long>(n) - 1)));
    return t;
}

}  // namespace

TEST_CASE("bulk: many rows in chunks under max_allowed_packet, with progress", "[options][bulk]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    create_table(e, "bulk_a");
    auto db = make_db<capi>(options_for(e));
    const auto rows = make_rows(20000);
    bulk_options o;
    o.chunk_bytes = 256 * 1024;
    std::vector<bulk_progress> seen;
    o.on_progress = [&](const bulk_progress& p) { seen.push_back(p); };
    const bulk_result r = bulk_insert(*db, "bulk_a", {"id", "note", "amount"}, rows, o);
    CHECK(r.rows_total == 20000);
    CHECK(r.rows_done == 20000);
    CHECK(r.rows_skipped == 0);
    CHECK(r.resume_from == 20000);
    CHECK(r.chunks_done > 5);  // ~2.2 MB in 256 KB chunks
    CHECK(r.chunk_retries == 0);
    REQUIRE(seen.size() == r.chunks_done + 1);  // once at the start, then after each chunk
    for (std::size_t i = 1; i < seen.size(); ++i) {
        CHECK(seen[i].rows_done > seen[i - 1].rows_done);
        CHECK(seen[i].bytes_done > seen[i - 1].bytes_done);
        CHECK(seen[i].bytes_done - seen[i - 1].bytes_done <= 256u * 1024);  // each chunk within its target
    }
    const tally t = count(e, "bulk_a", 20000);
    CHECK(t.rows == 20000);
    CHECK(t.duplicates == 0);
    CHECK(t.missing == 0);
    auto m = capi_connect(e);
    CHECK(capi_scalar(m.get(), "SELECT COUNT(*) FROM bulk_a WHERE amount IS NULL") == std::to_string(20000 / 7 + 1));
    CHECK(capi_scalar(m.get(), "SELECT (SELECT SUM(amount) FROM bulk_a) = (SELECT SUM(id / 4) FROM bulk_a WHERE id % 7 <> 0)") ==
          "1");
}

TEST_CASE("bulk: values arrive exactly (quotes, backslashes, NUL, UTF-8, NULL, numbers), both drivers",
          "[options][bulk]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    auto m = capi_connect(e);
    capi_exec(m.get(), "CREATE TABLE bulk_v (id INT, t VARBINARY(64), u VARCHAR(64) CHARACTER SET utf8mb4, n BIGINT, d DOUBLE)");
    const std::string nul("a\0b", 3);
    std::vector<std::vector<std::optional<std::string>>> rows = {
        {std::string("1"), std::string("it's"), std::string("ünïcödé ✓"), std::string("-42"), std::string("1.5")},
        {std::string("2"), std::string("back\\slash"), std::string("o'\\'x"), std::nullopt, std::nullopt},
        {std::string("3"), nul, std::string(""), std::string("9223372036854775807"), std::string("-0.25")},
    };
    for (int driver = 0; driver < 2; ++driver) {
        capi_exec(m.get(), "DELETE FROM bulk_v");
        bulk_result r;
        if (driver) r = bulk_insert(*make_db<jdbc>(options_for(e)), "bulk_v", {"id", "t", "u", "n", "d"}, rows);
        else r = bulk_insert(*make_db<capi>(options_for(e)), "bulk_v", {"id", "t", "u", "n", "d"}, rows);
        CHECK(r.rows_done == 3);
        CHECK(capi_scalar(m.get(), "SELECT HEX(t) FROM bulk_v WHERE id = 1") == "69742773");
        CHECK(capi_scalar(m.get(), "SELECT t FROM bulk_v WHERE id = 2") == "back\\slash");
        CHECK(capi_scalar(m.get(), "SELECT HEX(t) FROM bulk_v WHERE id = 3") == "610062");
        CHECK(capi_scalar(m.get(), "SELECT HEX(u) FROM bulk_v WHERE id = 1") == "C3BC6EC3AF63C3B664C3A920E29C93");
        CHECK(capi_scalar(m.get(), "SELECT u FROM bulk_v WHERE id = 2") == "o'\\'x");
        CHECK(capi_scalar(m.get(), "SELECT CONCAT(n IS NULL, d IS NULL) FROM bulk_v WHERE id = 2") == "11");
        CHECK(capi_scalar(m.get(), "SELECT CONCAT(n, ' ', d) FROM bulk_v WHERE id = 3") == "9223372036854775807 -0.25");
    }
}

TEST_CASE("bulk: a row larger than the packet limit is refused before anything is sent", "[options][bulk]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    create_table(e, "bulk_big");
    auto m = capi_connect(e, capi_options{true});
    capi_exec(m.get(), "SET GLOBAL max_allowed_packet = 1048576");
    auto db = make_db<capi>(options_for(e));  // a new session: 1M
    std::vector<row_t> rows = make_rows(100);
    std::get<1>(rows[57]) = std::string(2u << 20, 'z');
    std::error_code ec;
    diagnostics d;
    const bulk_result r = bulk_insert(*db, "bulk_big", {"id", "note", "amount"}, rows, {}, ec, d);
    capi_exec(m.get(), "SET GLOBAL max_allowed_packet = 16777216");
    CHECK(ec == errc::statement_too_large);
    CHECK(d.client_message.find("row 57") != std::string::npos);
    CHECK(d.client_message.find("nothing was sent") != std::string::npos);
    CHECK(r.rows_done == 0);
    CHECK(count(e, "bulk_big", 100).rows == 0);
}

TEST_CASE("bulk: a load stopped halfway resumes from its markers: no row twice, none missing", "[options][bulk]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    create_table(e, "bulk_r");
    const auto rows = make_rows(5000);
    bulk_options o;
    o.load_id = "resume-test";
    o.chunk_rows = 400;
    struct stop_now {};
    int chunks = 0;
    o.on_progress = [&](const bulk_progress& p) {
        if (p.chunks_done > 0 && ++chunks == 4) throw stop_now{};  // the process "dies" after 4 chunks
    };
    {
        auto db = make_db<capi>(options_for(e));
        CHECK_THROWS_AS(bulk_insert(*db, "bulk_r", {"id", "note", "amount"}, rows, o), stop_now);
    }
    CHECK(count(e, "bulk_r", 5000).rows == 1600);
    o.on_progress = nullptr;
    o.chunk_rows = 700;  // other chunk boundaries this time: the markers are row ranges
    auto db = make_db<jdbc>(options_for(e));
    const bulk_result r = bulk_insert(*db, "bulk_r", {"id", "note", "amount"}, rows, o);
    CHECK(r.rows_skipped == 1600);
    CHECK(r.rows_done == 3400);
    const tally t = count(e, "bulk_r", 5000);
    CHECK(t.rows == 5000);
    CHECK(t.duplicates == 0);
    CHECK(t.missing == 0);
    // A third run of the finished load inserts nothing.
    const bulk_result again = bulk_insert(*db, "bulk_r", {"id", "note", "amount"}, rows, o);
    CHECK(again.rows_done == 0);
    CHECK(again.rows_skipped == 5000);
    CHECK(count(e, "bulk_r", 5000).rows == 5000);
}

TEST_CASE("bulk: a COMMIT whose answer is lost is resolved, never sent twice", "[options][bulk]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    create_table(e, "bulk_c");
    lifeline::testing::fault_proxy proxy(e.host, static_cast<std::uint16_t>(e.port));
    connect_options co = options_for(e);
    co.port = proxy.port();
    auto db = make_db<capi>(co);
    const auto rows = make_rows(3000);
    bulk_options o;
    o.chunk_rows = 500;
    int progress = 0;
    o.on_progress = [&](const bulk_progress& p) {
        if (p.chunks_done == 2 && ++progress == 1) proxy.cut_on_commit(lifeline::testing::commit_cut::after_forward);
        if (p.chunks_done == 4) proxy.pass();
    };
    const bulk_result r = bulk_insert(*db, "bulk_c", {"id", "note", "amount"}, rows, o);
    CHECK(proxy.stats().commits_cut >= 1);
    CHECK(r.rows_done == 3000);
    const tally t = count(e, "bulk_c", 3000);
    CHECK(t.rows == 3000);
    CHECK(t.duplicates == 0);
    CHECK(t.missing == 0);
}

TEST_CASE("bulk: an earlier run's session that still holds the load is ended before anything is looked up",
          "[options][bulk]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    create_table(e, "bulk_k");
    // A session of an earlier run (alive: its client vanished without the server noticing) holds the load.
    auto orphan = capi_connect(e);
    REQUIRE(capi_scalar(orphan.get(), "SELECT GET_LOCK('lifeline-bulk-orphan-test', 0)") == "1");
    const auto orphan_id = mysql_thread_id(orphan.get());
    auto db = make_db<capi>(options_for(e));
    bulk_options o;
    o.load_id = "orphan-test";
    const auto rows = make_rows(2000);
    const bulk_result r = bulk_insert(*db, "bulk_k", {"id", "note", "amount"}, rows, o);
    CHECK(r.rows_done == 2000);
    auto admin = capi_connect(e, capi_options{true});
    CHECK(capi_scalar(admin.get(), "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                                       std::to_string(orphan_id)) == "0");  // lifeline ended it
    CHECK(mysql_query(orphan.get(), "SELECT 1") != 0);
    CHECK(count(e, "bulk_k", 2000).rows == 2000);
    // The load's lock is free again once the load is done.
    CHECK(capi_scalar(admin.get(), "SELECT IS_USED_LOCK('lifeline-bulk-orphan-test') IS NULL") == "1");
}

TEST_CASE("bulk: a chunk whose COMMIT cannot be resolved in time stops the load; a rerun resolves it by its marker",
          "[options][bulk]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    create_table(e, "bulk_u");
    lifeline::testing::fault_proxy proxy(e.host, static_cast<std::uint16_t>(e.port));
    connect_options co = options_for(e);
    co.port = proxy.port();
    co.connect_timeout = 500ms;
    default_policy p;
    p.retry.deadline = 2s;
    auto db = make_db<capi>(co, p);
    const auto rows = make_rows(3000);
    bulk_options o;
    o.load_id = "unknown-commit";
    o.chunk_rows = 500;
    o.chunk_deadline = 2s;
    o.deadline = 6s;
    bool armed = false;
    o.on_progress = [&](const bulk_progress& pr) {
        if (pr.chunks_done == 2 && !armed) {
            armed = true;
            proxy.cut_on_commit(lifeline::testing::commit_cut::after_forward);  // the 3rd chunk commits, unseen
        }
    };
    std::thread dark([&] {
        // As soon as that COMMIT is cut, the server becomes unreachable: no resolution in time.
        const auto until = clk::now() + 30s;
        while (proxy.stats().commits_cut == 0 && clk::now() < until) std::this_thread::sleep_for(1ms);
        proxy.refuse_new(true);
        proxy.blackhole();
    });
    std::error_code ec;
    diagnostics d;
    const bulk_result r = bulk_insert(*db, "bulk_u", {"id", "note", "amount"}, rows, o, ec, d);
    dark.join();
    INFO(ec.message() << " | " << d.client_message);
    CHECK(ec);
    CHECK(r.resume_from == 1000);  // rows 1000-1499 may or may not be in
    CHECK(d.client_message.find("rerun with load_id unknown-commit") != std::string::npos);
    CHECK(count(e, "bulk_u", 3000).rows == 1500);  // they are: the cut came after the server committed
    // The rerun, with the network back: the marker says the chunk is in; it is not sent again.
    proxy.refuse_new(false);
    proxy.pass();
    o.on_progress = nullptr;
    o.deadline = no_deadline;
    const bulk_result again = bulk_insert(*db, "bulk_u", {"id", "note", "amount"}, rows, o);
    CHECK(again.rows_skipped == 1500);
    CHECK(again.rows_done == 1500);
    const tally t = count(e, "bulk_u", 3000);
    CHECK(t.rows == 3000);
    CHECK(t.duplicates == 0);
    CHECK(t.missing == 0);
}

TEST_CASE("bulk chaos: loads under the chaos fault mix end with every row exactly once", "[options][bulk_chaos]") {
    auto srv = server::attach();
    const auto& e = srv.where();
    const unsigned seed = env_unsigned("LIFELINE_CHAOS_SEED", static_cast<unsigned>(std::random_device{}()));
    const auto length = std::chrono::seconds(env_unsigned("LIFELINE_CHAOS_SECONDS", 30));
    const std::size_t n = env_unsigned("LIFELINE_BULK_ROWS", 20000);
    std::printf("bulk chaos: seed %u (LIFELINE_CHAOS_SEED replays it), %lld s of faults, loads of %zu rows\n", seed,
                static_cast<long long>(length.count()), n);
    create_table(e, "bulk_chaos");
    lifeline::testing::fault_proxy proxy(e.host, static_cast<std::uint16_t>(e.port));
    connect_options co = options_for(e);
    co.port = proxy.port();
    default_policy p;
    p.retry.deadline = 6s;
    p.retry.max_attempts = 8;
    p.breaker.failure_threshold = 1000;  // the schedule is not a real outage
    std::atomic<std::uint64_t> session{0};
    std::atomic<bool> stop{false};

    // Loads one after the other (ids k*n .. k*n+n-1, load id chaos-<seed>-<k>); a load that stops
    // with an error is run again with its load id, as a service would, until it is complete.
    std::map<std::string, int> outcomes;
    std::uint64_t loads = 0, runs = 0, retries = 0, resolved = 0;
    std::thread loader([&] {
        auto db = make_db<capi>(co, p);
        for (std::uint64_t k = 0; !stop; ++k) {
            std::vector<row_t> rows = make_rows(n, 40);
            for (auto& r : rows) std::get<0>(r) += static_cast<long long>(k * n);
            bulk_options o;
            o.load_id = "chaos-" + std::to_string(seed) + "-" + std::to_string(k);
            o.chunk_rows = 250;  // many chunks: many chances for a fault to land in each phase
            o.chunk_deadline = 6s;
            o.on_progress = [&](const bulk_progress&) { session = db->connection_id(); };
            const auto until = clk::now() + 120s;  // bounded even if the faults never let go
            for (;;) {
                ++runs;
                std::error_code ec;
                diagnostics d;
                const bulk_result r = bulk_insert(*db, "bulk_chaos", {"id", "note", "amount"}, rows, o, ec, d);
                retries += r.chunk_retries;
                resolved += r.chunks_resolved;
                if (!ec) break;
                ++outcomes[ec.message().substr(0, 70)];
                if (clk::now() > until) return;
            }
            ++loads;
        }
    });

    // The fault schedule (the chaos test's mix) for `length`.
    std::mt19937 rng(seed);
    std::map<std::string, int> faults;
    const auto until = clk::now() + length;
    while (clk::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
        std::string name;
        try {
            switch (rng() % 8) {
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
            case 4:
                name = "kill_connection";
                if (auto id = session.load()) admin_kill(e, id);
                break;
            case 5:
                name = "kill_query";
                if (auto id = session.load()) admin_kill(e, id, true);
                break;
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
        } catch (const std::exception& x) {
            name += "(harness: " + std::string(x.what()) + ")";
        }
        ++faults[name];
    }
    proxy.pass();
    if (!srv.running()) srv.start_again();
    srv.thaw();
    stop = true;  // the load in progress finishes, without faults
    loader.join();

    const tally t = count(e, "bulk_chaos", static_cast<std::size_t>(loads) * n);
    std::printf("bulk chaos tally: loads %llu of %zu rows, rows %lld, duplicates %lld, missing %lld; runs %llu, chunk "
                "retries %llu, chunks resolved by marker %llu\nbulk chaos faults:",
                static_cast<unsigned long long>(loads), n, t.rows, t.duplicates, t.missing,
                static_cast<unsigned long long>(runs), static_cast<unsigned long long>(retries),
                static_cast<unsigned long long>(resolved));
    for (auto& kv : faults) std::printf(" %s=%d", kv.first.c_str(), kv.second);
    std::printf("\nbulk chaos proxy: commits seen %llu, commits cut %llu, cuts %llu\n",
                static_cast<unsigned long long>(proxy.stats().commits_seen),
                static_cast<unsigned long long>(proxy.stats().commits_cut),
                static_cast<unsigned long long>(proxy.stats().cuts));
    for (auto& kv : outcomes) std::printf("bulk chaos: a run stopped with '%s' x%d (rerun)\n", kv.first.c_str(), kv.second);
    CHECK(loads >= 1);
    CHECK(t.duplicates == 0);
    CHECK(t.missing == 0);
    CHECK(t.rows == static_cast<long long>(loads * n));
}
