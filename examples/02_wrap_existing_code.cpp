// 02 — wrap the C API code you already have: run() hands it the MYSQL* inside the retry loop.
#include <lifeline/driver/capi.hpp>

#include "example_env.hpp"

#include <cstdio>
#include <string>

// Existing code, unchanged: it reports failure the C API way (mysql_errno).
static long long count_orders(MYSQL* m) {
    if (mysql_query(m, "SELECT COUNT(*) FROM information_schema.TABLES") != 0) return -1;
    MYSQL_RES* res = mysql_store_result(m);
    if (!res) return -1;
    MYSQL_ROW row = mysql_fetch_row(res);
    long long n = row && row[0] ? std::stoll(row[0]) : 0;
    mysql_free_result(res);
    return n;
}

int main() {
    lifeline::connection<lifeline::capi> db{example_options()};
    long long n = db.run(count_orders, lifeline::idempotent);
    std::printf("02 wrap existing code: count_orders() = %lld through lifeline\n", n);

    // A write with a check: if the connection dies and the outcome is unknown, lifeline asks the
    // check on a fresh connection before re-sending (the article's "verify with a SELECT").
    db.execute("CREATE TABLE IF NOT EXISTS payments (ref VARCHAR(32) PRIMARY KEY, amount INT)");
    db.execute("DELETE FROM payments WHERE ref = 'inv-42'", lifeline::idempotent);
    auto r = db.execute("INSERT INTO payments VALUES ('inv-42', 100)", lifeline::verify_with([](MYSQL* m) {
        mysql_query(m, "SELECT 1 FROM payments WHERE ref = 'inv-42'");
        MYSQL_RES* res = mysql_store_result(m);
        bool found = res && mysql_num_rows(res) == 1;
        if (res) mysql_free_result(res);
        return found ? lifeline::write_check::applied : lifeline::write_check::not_applied;
    }));
    std::printf("02 wrap existing code: payment written (attempts %u, verified %s)\n", r.attempts,
                r.verified ? "yes" : "no");
    return 0;
}
