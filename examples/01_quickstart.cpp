// 01 — quick start with the MySQL C API: wrap, declare what may run twice, go.
#include <lifeline/driver/capi.hpp>

#include "example_env.hpp"

#include <cstdio>

int main() {
    lifeline::connection<lifeline::capi> db{example_options()};

    db.execute("CREATE TABLE IF NOT EXISTS quickstart (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT)");
    db.execute("INSERT INTO quickstart (note) VALUES ('hello')");  // not idempotent: never sent twice
    auto r = db.query("SELECT COUNT(*) FROM quickstart", lifeline::idempotent);  // retried if lost
    std::printf("01 quickstart: %s row(s), %u attempt(s)\n", r.scalar().value_or("?").c_str(), r.attempts);

    // Hot paths: read into a result you keep; its rows and strings are reused call after call.
    lifeline::result kept;
    for (int i = 0; i < 3; ++i) db.query("SELECT note FROM quickstart ORDER BY id LIMIT 1", kept, lifeline::idempotent);
    std::printf("01 quickstart: kept result: %s\n", kept.scalar().value_or("?").c_str());

    // Non-throwing overload: an error_code plus diagnostics with the server's text.
    std::error_code ec;
    lifeline::diagnostics diag;
    db.query("SELEC 1", lifeline::idempotent, {}, ec, diag);
    std::printf("01 quickstart: a syntax error is not retried: %s | %s\n", ec.message().c_str(),
                diag.server_message.c_str());
    return 0;
}
