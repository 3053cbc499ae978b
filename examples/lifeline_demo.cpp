// lifeline demo: what the article's fault looks like to a raw driver.
//
// Runs against the throwaway server that scripts/demo.sh starts (LIFELINE_TEST_* variables):
// a service runs a query, an operator's KILL CONNECTION hits it mid-flight, and the raw
// MySQL C API surfaces ERROR 2013 — then 2006 on the next statement, because the connection is dead.
#include <lifeline.hpp>

#include <mysql.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    if (!v) {
        std::fprintf(stderr, "demo: %s is not set; run it through scripts/demo.sh\n", name);
        std::exit(2);
    }
    return v;
}

MYSQL* connect(bool admin) {
    MYSQL* m = mysql_init(nullptr);
    unsigned port = static_cast<unsigned>(std::stoul(env("LIFELINE_TEST_PORT")));
    std::string user = env(admin ? "LIFELINE_TEST_ADMIN_USER" : "LIFELINE_TEST_USER");
    std::string pass = env(admin ? "LIFELINE_TEST_ADMIN_PASSWORD" : "LIFELINE_TEST_PASSWORD");
    if (!mysql_real_connect(m, env("LIFELINE_TEST_HOST").c_str(), user.c_str(), pass.c_str(),
                            env("LIFELINE_TEST_DATABASE").c_str(), port, nullptr, 0)) {
        std::fprintf(stderr, "demo: cannot connect: %s\n", mysql_error(m));
        std::exit(1);
    }
    return m;
}

}  // namespace

int main() {
    std::printf("lifeline demo — the raw MySQL C API meets the article's fault\n\n");
    MYSQL* app = connect(false);
    unsigned long id = mysql_thread_id(app);
    std::printf("service: connected (connection id %lu), running SELECT SLEEP(3)\n", id);

    std::thread op([id] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        MYSQL* admin = connect(true);
        std::string kill = "KILL CONNECTION " + std::to_string(id);
        std::printf("operator: %s\n", kill.c_str());
        mysql_query(admin, kill.c_str());
        mysql_close(admin);
    });
    int rc = mysql_query(app, "SELECT SLEEP(3)");
    op.join();
    if (rc != 0)
        std::printf("service: ERROR %u (%s): %s   <- phase %s: did it run? unknown\n", mysql_errno(app),
                    mysql_sqlstate(app), mysql_error(app),
                    std::string(lifeline::to_string(lifeline::phase::read_result)).c_str());
    rc = mysql_query(app, "SELECT 1");
    if (rc != 0)
        std::printf("service: next statement: ERROR %u (%s): %s   <- the connection is dead\n", mysql_errno(app),
                    mysql_sqlstate(app), mysql_error(app));
    mysql_close(app);
    std::printf("\nThe raw driver leaves the service to guess. lifeline classifies, reconnects and retries what is safe.\n");
    return 0;
}
