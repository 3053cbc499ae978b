// Built by tests/consumer/pkgconfig.sh with `g++ jdbc_main.cpp $(pkg-config --cflags --libs lifeline-jdbc)`
// only: the Connector/C++ adapter compiles (Boost headers included) and links libmysqlcppconn.
#include <lifeline/driver/jdbc.hpp>

#include <mysql_driver.h>

#include <cstdio>
#include <string>

int main() {
    sql::mysql::MySQL_Driver* driver = sql::mysql::get_mysql_driver_instance();  // links; connects nowhere
    if (!driver) return 1;
    const sql::SQLException lost("Lost connection to server during query", "HY000", 2013);
    const lifeline::jdbc::failure_report r = lifeline::jdbc::report(lost, lifeline::phase::read_result, false);
    if (r.diag.code != 2013 || r.what.statement != lifeline::outcome::unknown) return 1;
    std::printf("driver: %s (runtime %d.%d.%d)\n2013 while reading: outcome %s\n",
                lifeline::jdbc::driver_name().c_str(), driver->getMajorVersion(), driver->getMinorVersion(),
                driver->getPatchVersion(), std::string(lifeline::to_string(r.what.statement)).c_str());
    return 0;
}
