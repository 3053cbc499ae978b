// lifeline demo: the article's faults, met by the raw MySQL C API and by lifeline, side by side.
//
// Runs against the throwaway server that scripts/demo.sh starts. For each fault the same work is
// done twice — once on a raw MYSQL*, once through lifeline::connection — and the demo prints what
// the application saw, then counts rows in the table to show what really happened.
#include <lifeline/driver/capi.hpp>
#include <lifeline/testing/fault_proxy.hpp>

#include "example_env.hpp"

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;

struct tally {
    int errors = 0, duplicates = 0, lost = 0;
};

MYSQL* raw_connect(bool admin = false) {
    auto o = example_options(admin);
    MYSQL* m = mysql_init(nullptr);
    if (!mysql_real_connect(m, o.host.c_str(), o.user.c_str(), o.password.c_str(), o.database.c_str(), o.port,
                            nullptr, 0)) {
        std::fprintf(stderr, "demo: cannot connect: %s\n", mysql_error(m));
        std::exit(1);
    }
    return m;
}

void admin(const std::string& sql) {
    MYSQL* m = raw_connect(true);
    mysql_query(m, sql.c_str());
    mysql_close(m);
}

long long count(const std::string& table) {
    MYSQL* m = raw_connect();
    long long n = -1;
    if (mysql_query(m, ("SELECT COUNT(*) FROM " + table).c_str()) == 0) {
        MYSQL_RES* r = mysql_store_result(m);
        if (MYSQL_ROW row = mysql_fetch_row(r)) n = std::stoll(row[0]);
        mysql_free_result(r);
    }
    mysql_close(m);
    return n;
}

void kill_after(unsigned long id, std::chrono::milliseconds delay) {
    std::this_thread::sleep_for(delay);
    admin("KILL CONNECTION " + std::to_string(id));
}

void raw_line(const char* what, MYSQL* m, int rc) {
    if (rc == 0) std::printf("    raw C API : ok\n");
    else std::printf("    raw C API : ERROR %u (%s) %s  <- %s\n", mysql_errno(m), mysql_sqlstate(m), mysql_error(m), what);
}

void lifeline_line(const std::error_code& ec, const lifeline::diagnostics& d, unsigned attempts) {
    if (!ec) std::printf("    lifeline  : ok after %u attempt(s)\n", attempts);
    else std::printf("    lifeline  : %s [driver %u: %s]\n", ec.message().c_str(), d.code, d.server_message.c_str());
}

}  // namespace

int main() {
    std::printf("lifeline demo — the article's faults, raw MySQL C API vs lifeline\n\n");
    admin("CREATE TABLE IF NOT EXISTS lifeline_test.demo_orders (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT)");
    admin("CREATE TABLE IF NOT EXISTS lifeline_test.demo_verify (ref VARCHAR(16) PRIMARY KEY)");
    tally raw, ll;
    lifeline::connection<lifeline::capi> db{example_options()};
    db.connect();

    // 1. KILL CONNECTION during a read (cause 4/5: the connection dies mid-query).
    std::printf("1. KILL CONNECTION during SELECT SLEEP(1) (an idempotent read)\n");
    {
        MYSQL* m = raw_connect();
        std::thread k(kill_after, mysql_thread_id(m), 300ms);
        int rc = mysql_query(m, "SELECT SLEEP(1)");
        k.join();
        if (rc) ++raw.errors;
        raw_line("the application must guess", m, rc);
        mysql_close(m);
        std::thread k2(kill_after, static_cast<unsigned long>(db.connection_id()), 300ms);
        std::error_code ec;
        lifeline::diagnostics d;
        auto r = db.query("SELECT SLEEP(1)", lifeline::idempotent, {}, ec, d);
        k2.join();
        if (ec) ++ll.errors;
        lifeline_line(ec, d, r.attempts);
    }

    // 2. KILL CONNECTION while idle, then a write (the 2013 that means "nothing ran").
    std::printf("2. connection killed while idle, then INSERT (not idempotent)\n");
    {
        long long before = count("demo_orders");
        MYSQL* m = raw_connect();
        admin("KILL CONNECTION " + std::to_string(mysql_thread_id(m)));
        std::this_thread::sleep_for(100ms);
        int rc = mysql_query(m, "INSERT INTO demo_orders (note) VALUES ('raw')");
        if (rc) ++raw.errors;
        raw_line("2013 'during query', yet nothing ran", m, rc);
        mysql_close(m);
        long long mid = count("demo_orders");
        if (rc && mid == before) ++raw.lost;  // the order was never written and the app was told "lost"
        admin("KILL CONNECTION " + std::to_string(db.connection_id()));
        std::this_thread::sleep_for(100ms);
        std::error_code ec;
        lifeline::diagnostics d;
        auto r = db.execute("INSERT INTO demo_orders (note) VALUES ('lifeline')", {}, {}, ec, d);
        if (ec) ++ll.errors;
        lifeline_line(ec, d, r.attempts);
        std::printf("    rows: raw wrote %lld, lifeline wrote %lld (caught by the socket check, sent once)\n",
                    mid - before, count("demo_orders") - mid);
    }

    // 3. wait_timeout expired while idle (cause 2).
    std::printf("3. wait_timeout = 1 s, idle 2.5 s, then SELECT\n");
    {
        MYSQL* m = raw_connect();
        mysql_query(m, "SET SESSION wait_timeout = 1");
        db.session().statements = {"SET SESSION wait_timeout = 1"};
        db.close();
        db.connect();
        std::this_thread::sleep_for(2500ms);
        int rc = mysql_query(m, "SELECT 1");
        if (rc) ++raw.errors;
        raw_line("server has gone away", m, rc);
        if (rc == 0) mysql_free_result(mysql_store_result(m));
        mysql_close(m);
        std::error_code ec;
        lifeline::diagnostics d;
        auto r = db.query("SELECT 1", lifeline::idempotent, {}, ec, d);
        if (ec) ++ll.errors;
        lifeline_line(ec, d, r.attempts);
        db.session().statements.clear();
        db.close();
    }

    // 4. A write whose outcome is unknown: lifeline verifies instead of guessing.
    std::printf("4. KILL CONNECTION during a slow INSERT (outcome unknown), with a verification check\n");
    {
        db.connect();
        std::thread k(kill_after, static_cast<unsigned long>(db.connection_id()), 300ms);
        std::error_code ec;
        lifeline::diagnostics d;
        auto r = db.execute("INSERT INTO demo_verify SELECT 'order-7' FROM (SELECT SLEEP(1)) s",
                            lifeline::verify_with([](MYSQL* m) {
                                mysql_query(m, "SELECT 1 FROM demo_verify WHERE ref = 'order-7'");
                                MYSQL_RES* res = mysql_store_result(m);
                                bool found = res && mysql_num_rows(res) == 1;
                                if (res) mysql_free_result(res);
                                return found ? lifeline::write_check::applied : lifeline::write_check::not_applied;
                            }),
                            {}, ec, d);
        k.join();
        if (ec) ++ll.errors;
        lifeline_line(ec, d, r.attempts);
        long long n = count("demo_verify");
        if (n > 1) ++ll.duplicates;
        if (n == 0 && !ec) ++ll.lost;
        std::printf("    rows for order-7: %lld (verified first, then sent again only if absent)\n", n);
    }

    // 5. A service loop through a faulty network: order transactions while the demo cuts COMMITs
    //    (before and after the server committed), resets connections and kills sessions.
    std::printf("5. a service loop: 30 order transactions each way through a fault-injecting proxy\n");
    {
        admin("CREATE TABLE IF NOT EXISTS lifeline_test.demo_ledger (ref VARCHAR(20), who VARCHAR(10))");
        auto o = example_options();
        lifeline::testing::fault_proxy proxy(o.host, o.port);
        using lifeline::testing::commit_cut;
        auto fault_for = [&](int i) -> const char* {
            switch (i % 6) {
            case 1: proxy.cut_on_commit(commit_cut::after_forward); return "COMMIT cut after the server committed";
            case 3: proxy.cut_on_commit(commit_cut::before_forward); return "COMMIT cut before it reached the server";
            case 5: proxy.pass(); return "connection reset mid-transaction";  // cut_all() inside the transaction
            default: proxy.pass(); return nullptr;
            }
        };
        // The raw service: what many services do: on an error, run the transaction again (3 tries).
        for (int i = 0; i < 30; ++i) {
            std::string ref = "raw-" + std::to_string(i);
            const char* fault = nullptr;
            bool done = false;
            for (int attempt = 0; attempt < 3 && !done; ++attempt) {
                MYSQL* m = mysql_init(nullptr);
                if (!mysql_real_connect(m, o.host.c_str(), o.user.c_str(), o.password.c_str(), o.database.c_str(),
                                        proxy.port(), nullptr, 0)) {
                    mysql_close(m);
                    continue;
                }
                if (attempt == 0) fault = fault_for(i);
                else proxy.pass();
                done = mysql_query(m, "BEGIN") == 0 &&
                       mysql_query(m, ("INSERT INTO demo_ledger VALUES ('" + ref + "', 'raw')").c_str()) == 0 &&
                       (fault && std::string(fault).find("reset") != std::string::npos
                            ? (proxy.cut_all(lifeline::testing::cut_kind::rst), mysql_query(m, "SELECT 1") == 0)
                            : true) &&
                       mysql_query(m, "COMMIT") == 0;
                if (!done) ++raw.errors;
                mysql_close(m);
            }
            proxy.pass();
        }
        // The same service on lifeline: one call per order; replayable, COMMIT resolution on.
        lifeline::connect_options lo = o;
        lo.port = proxy.port();
        lifeline::connection<lifeline::capi> svc{lo};
        int resolved = 0, replayed = 0;
        for (int i = 0; i < 30; ++i) {
            std::string ref = "ll-" + std::to_string(i);
            const char* fault = nullptr;
            int runs = 0;
            std::error_code ec;
            lifeline::diagnostics d;
            auto tr = svc.transaction([&](auto& tx) {
                ++runs;
                tx.execute("INSERT INTO demo_ledger VALUES ('" + ref + "', 'lifeline')");
                if (runs == 1) {
                    fault = fault_for(i);
                    if (fault && std::string(fault).find("reset") != std::string::npos) {
                        proxy.cut_all(lifeline::testing::cut_kind::rst);
                        tx.execute("SELECT 1");
                    }
                } else {
                    proxy.pass();
                }
            }, lifeline::replayable_resolved, ec, d);
            proxy.pass();
            if (ec) ++ll.errors;
            if (tr.commit_resolved) ++resolved;
            if (tr.attempts > 1) ++replayed;
            if (fault) std::printf("    order %-2d %-42s -> lifeline: %s (ran %d time(s))\n", i, fault,
                                   ec ? ec.message().c_str() : (tr.commit_resolved ? "resolved, committed once" : "committed once"),
                                   runs);
        }
        MYSQL* m = raw_connect();
        auto scalar = [&](const std::string& q) {
            mysql_query(m, q.c_str());
            MYSQL_RES* r = mysql_store_result(m);
            MYSQL_ROW row = r ? mysql_fetch_row(r) : nullptr;
            long long v = row && row[0] ? std::stoll(row[0]) : 0;
            if (r) mysql_free_result(r);
            return v;
        };
        raw.duplicates += static_cast<int>(scalar("SELECT COUNT(*) - COUNT(DISTINCT ref) FROM demo_ledger WHERE who = 'raw'"));
        raw.lost += 30 - static_cast<int>(scalar("SELECT COUNT(DISTINCT ref) FROM demo_ledger WHERE who = 'raw'"));
        ll.duplicates += static_cast<int>(scalar("SELECT COUNT(*) - COUNT(DISTINCT ref) FROM demo_ledger WHERE who = 'lifeline'"));
        ll.lost += 30 - static_cast<int>(scalar("SELECT COUNT(DISTINCT ref) FROM demo_ledger WHERE who = 'lifeline'"));
        mysql_close(m);
        auto ps = proxy.stats();
        std::printf("    proxy: %llu COMMITs cut, %llu connections cut; lifeline resolved %d lost COMMIT(s), "
                    "replayed %d transaction(s)\n",
                    static_cast<unsigned long long>(ps.commits_cut), static_cast<unsigned long long>(ps.cuts), resolved,
                    replayed);
    }

    std::printf("\n%-28s %10s %10s\n", "", "raw C API", "lifeline");
    std::printf("%-28s %10d %10d\n", "errors seen by the app", raw.errors, ll.errors);
    std::printf("%-28s %10d %10d\n", "duplicate writes", raw.duplicates, ll.duplicates);
    std::printf("%-28s %10d %10d\n", "writes lost", raw.lost, ll.lost);
    return ll.duplicates == 0 && ll.lost == 0 ? 0 : 1;
}
