// 03 — the same with MySQL Connector/C++ 1.1 (JDBC API): sql::Connection& inside run().
#include <lifeline/driver/jdbc.hpp>

#include "example_env.hpp"

#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <cstdio>
#include <memory>

int main() {
    lifeline::connection<lifeline::jdbc> db{example_options()};
    db.session().statements = {"SET @service = 'billing'"};  // restored on every reconnect

    auto r = db.query("SELECT @service", lifeline::idempotent);
    std::printf("03 connector/c++: @service = %s\n", r.scalar().value_or("NULL").c_str());

    int v = db.run(
        [](sql::Connection& c) {
            std::unique_ptr<sql::Statement> st(c.createStatement());
            std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT 40 + 2"));
            return rs->next() ? rs->getInt(1) : 0;
        },
        lifeline::idempotent);
    std::printf("03 connector/c++: run() returned %d\n", v);
    return 0;
}
