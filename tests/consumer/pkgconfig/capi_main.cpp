// Built by tests/consumer/pkgconfig.sh with `g++ capi_main.cpp $(pkg-config --cflags --libs lifeline-capi)`
// only: the C API adapter compiles, links libmariadb and works without a server.
#include <lifeline/driver/capi.hpp>
#include <lifeline/options.hpp>

#include <mysql.h>

#include <cstdio>
#include <string>

int main() {
    const std::string& name = lifeline::capi::driver_name();
#ifdef LIFELINE_CAPI_MARIADB
    // The define that lifeline::capi carries in CMake must come through pkg-config too.
    if (name.rfind("MariaDB Connector/C ", 0) != 0) {
        std::fprintf(stderr, "LIFELINE_CAPI_MARIADB is set, but the driver is '%s'\n", name.c_str());
        return 1;
    }
#endif
    // A connect through a socket that does not exist fails at once: no server, no network.
    lifeline::connect_options o = lifeline::parse_dsn("mysql://app@localhost/shop?socket=/nonexistent-lifeline/m.sock");
    MYSQL* m = mysql_init(nullptr);
    if (!m) return 1;
    const bool connected = mysql_real_connect(m, o.host.c_str(), o.user.c_str(), nullptr, o.database.c_str(), 0,
                                              o.unix_socket.c_str(), 0) != nullptr;
    const lifeline::capi::failure_report r = lifeline::capi::report(m, lifeline::phase::connect, false);
    mysql_close(m);
    if (connected || r.diag.code != 2002 || r.code != lifeline::make_driver_error_code(2002)) {
        std::fprintf(stderr, "expected error 2002 from the missing socket, got %u: %s\n", r.diag.code,
                     r.diag.server_message.c_str());
        return 1;
    }
    // Error 2013 while reading a result: the statement may or may not have run.
    const lifeline::classification c =
        lifeline::classify(lifeline::failure{2013, "HY000", lifeline::phase::read_result, false});
    if (c.statement != lifeline::outcome::unknown) return 1;
    std::printf("driver: %s\nmissing socket: %s -> %s\n2013 while reading: outcome %s, %s\n", name.c_str(),
                r.code.message().c_str(), std::string(lifeline::to_string(r.what.action)).c_str(),
                std::string(lifeline::to_string(c.statement)).c_str(), std::string(lifeline::to_string(c.action)).c_str());
    return 0;
}
