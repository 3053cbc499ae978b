// The harness itself: it controls its server, and when it cannot start one, it fails loudly.
#include "capi_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>

using namespace lifeline::test;
using namespace std::chrono_literals;

namespace {

// Holds a listening socket on 127.0.0.1 so that port is busy.
struct busy_port {
    int fd = -1;
    unsigned port = 0;
    busy_port() {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd, 1) == 0);
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port = ntohs(a.sin_port);
    }
    ~busy_port() { ::close(fd); }
};

std::pair<int, std::string> run_capture(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    std::array<char, 512> buf{};
    while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
    int st = ::pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

}  // namespace

TEST_CASE("the harness server is reachable from the environment", "[harness]") {
    auto srv = server::attach();
    CHECK(srv.where().host == "127.0.0.1");
    CHECK(srv.where().port != 3306);
    CHECK(srv.running());
    auto m = capi_connect(srv.where());
    CHECK(capi_scalar(m.get(), "SELECT @@port") == std::to_string(srv.where().port));
    // The application user is not SUPER; the admin user is.
    CHECK(capi_scalar(m.get(), "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE "
                               "PRIVILEGE_TYPE='SUPER'") == "0");
    auto admin = capi_connect(srv.where(), capi_options{true});
    CHECK(capi_scalar(admin.get(), "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE "
                                   "PRIVILEGE_TYPE='SUPER' AND GRANTEE LIKE '%lifeline_admin%'") != "0");
}

TEST_CASE("freeze makes a query time out with 2013; thaw brings the server back", "[harness]") {
    auto srv = server::attach();
    capi_options o;
    o.read_timeout = 1;
    auto m = capi_connect(srv.where(), o);
    srv.freeze();
    auto t0 = std::chrono::steady_clock::now();
    int rc = mysql_query(m.get(), "SELECT 1");
    auto waited = std::chrono::steady_clock::now() - t0;
    unsigned err = mysql_errno(m.get());
    srv.thaw();
    CHECK(rc != 0);
    CHECK(err == 2013);
    CHECK(waited >= 900ms);
    CHECK(waited < 10s);  // the driver retries reads; generous bound, but never a hang
    auto fresh = capi_connect(srv.where());
    CHECK(capi_scalar(fresh.get(), "SELECT 1") == "1");
}

TEST_CASE("crash and start_again: a new process, the data kept", "[harness]") {
    auto srv = server::attach();
    {
        auto m = capi_connect(srv.where());
        capi_exec(m.get(), "CREATE TABLE IF NOT EXISTS harness_kept (v INT) ENGINE=InnoDB");
        capi_exec(m.get(), "INSERT INTO harness_kept VALUES (42)");
    }
    pid_t old_pid = srv.pid();
    srv.crash();
    CHECK_FALSE(srv.running());
    CHECK_THROWS(capi_connect(srv.where()));
    srv.start_again();
    CHECK(srv.running());
    CHECK(srv.pid() != old_pid);
    auto m = capi_connect(srv.where());
    CHECK(capi_scalar(m.get(), "SELECT COUNT(*) FROM harness_kept WHERE v = 42") == "1");
}

TEST_CASE("a busy port makes start() fail and say why", "[harness]") {
    busy_port busy;
    server_options o;
    o.port = busy.port;
    o.start_timeout = 20s;
    try {
        auto s = server::start(o);
        FAIL("start() succeeded on a busy port");
    } catch (const server_error& e) {
        std::string what = e.what();
        INFO(what);
        CHECK(what.find("exited during start-up") != std::string::npos);
        CHECK(what.find("Address already in use") != std::string::npos);
    }
}

TEST_CASE("a bad datadir location makes start() fail and say why", "[harness]") {
    server_options o;
    o.base_dir = "/nonexistent/lifeline";
    try {
        auto s = server::start(o);
        FAIL("start() succeeded without a writable directory");
    } catch (const server_error& e) {
        std::string what = e.what();
        INFO(what);
        CHECK(what.find("cannot create a server directory under '/nonexistent/lifeline'") != std::string::npos);
    }
}

TEST_CASE("the wrapper fails (exit 1, with the reason) when it cannot start its server", "[harness]") {
    busy_port busy;
    auto [code, out] = run_capture(std::string(LIFELINE_WITH_SERVER) + " --port " + std::to_string(busy.port) +
                                   " -- true");
    INFO(out);
    CHECK(code == 1);
    CHECK(out.find("FAILED to provide a MariaDB server") != std::string::npos);
    CHECK(out.find("Address already in use") != std::string::npos);
}

TEST_CASE("the wrapper passes the command's exit status through and cleans up", "[harness]") {
    auto [code, out] = run_capture(std::string(LIFELINE_WITH_SERVER) + " -- sh -c 'test -d \"$LIFELINE_TEST_SERVER_DIR\" && echo dir=$LIFELINE_TEST_SERVER_DIR && exit 7'");
    INFO(out);
    CHECK(code == 7);
    auto pos = out.find("dir=");
    REQUIRE(pos != std::string::npos);
    std::string dir = out.substr(pos + 4, out.find('\n', pos) - pos - 4);
    CHECK(::access(dir.c_str(), F_OK) != 0);  // removed
}

TEST_CASE("without the harness environment, attach() fails with instructions", "[harness]") {
    std::string saved = std::getenv("LIFELINE_TEST_PORT") ? std::getenv("LIFELINE_TEST_PORT") : "";
    ::unsetenv("LIFELINE_TEST_PORT");
    std::string what;
    try {
        auto s = server::attach();
    } catch (const server_error& e) {
        what = e.what();
    }
    ::setenv("LIFELINE_TEST_PORT", saved.c_str(), 1);
    CHECK(what.find("LIFELINE_TEST_PORT is not set") != std::string::npos);
    CHECK(what.find("lifeline_with_server") != std::string::npos);
}
