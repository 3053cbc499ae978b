// lifeline-doctor against real servers misconfigured on purpose (each ctest entry starts its own,
// see CMakeLists.txt): the real binary runs as a subprocess with the harness server's DSN, its
// --json output is parsed, and the expected findings (id, article cause, severity) and exit codes
// are asserted. Also: a well-configured server exits 0; wrong DSN, closed port, wrong password
// exit 2 with a clear message and never show the password.
#include "capi_support.hpp"

#include <lifeline/testing/fault_proxy.hpp>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace lifeline::test;
using namespace std::chrono_literals;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

struct run_result {
    int exit_code = -1;
    std::string out, err;
    std::chrono::milliseconds elapsed{0};
};

// Runs lifeline-doctor with `args` (plus `env` in its environment); kills it and fails the test if
// it has not finished within `limit` (the tool must never hang).
run_result run_doctor(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                      std::chrono::seconds limit = 60s) {
    int out_pipe[2], err_pipe[2];
    REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
    std::vector<std::string> argv_s = {LIFELINE_DOCTOR_BIN};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    const auto start = clock_type::now();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    run_result r;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    int open = 2;
    bool killed = false;
    while (open > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(start + limit - clock_type::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            killed = true;
            break;
        }
        if (::poll(fds, 2, static_cast<int>(left.count())) < 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            } else {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) ::close(f.fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    REQUIRE_FALSE(killed);  // it hung
    REQUIRE(WIFEXITED(status));
    r.exit_code = WEXITSTATUS(status);
    return r;
}

std::string dsn(const endpoint& e, const std::string& host, unsigned port) {
    return "mysql://" + e.app_user + "@" + host + ":" + std::to_string(port) + "/" + e.database;
}
std::string dsn(const endpoint& e) { return dsn(e, e.host, e.port); }

// Runs the doctor with --json against the harness server (password from the environment).
json doctor_json(const std::vector<std::string>& extra, int expected_exit, const std::string& target = {}) {
    const auto srv = server::attach();
    std::vector<std::string> args = {target.empty() ? dsn(srv.where()) : target, "--password-env",
                                     "LIFELINE_TEST_PASSWORD", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_doctor(args);
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == expected_exit);
    CHECK(r.out.find(srv.where().app_password) == std::string::npos);  // never the password
    CHECK(r.err.find(srv.where().app_password) == std::string::npos);
    json j = json::parse(r.out);  // throws (fails the test) if it is not JSON
    CHECK(j["schema"] == "lifeline-doctor/1");
    CHECK(j["exit_code"] == expected_exit);
    return j;
}

const json* find(const json& report, const std::string& id) {
    for (const auto& f : report["findings"])
        if (f["id"] == id) return &f;
    return nullptr;
}

std::set<std::string> severities_of(const json& report) {
    std::set<std::string> s;
    for (const auto& f : report["findings"]) s.insert(f["severity"].get<std::string>());
    return s;
}

std::string dump_ids(const json& report) {
    std::string s;
    for (const auto& f : report["findings"]) s += f["id"].get<std::string>() + "(" + f["severity"].get<std::string>() + ") ";
    return s;
}

std::vector<int> causes(const json& f) { return f["causes"].get<std::vector<int>>(); }

unsigned closed_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    ::close(fd);  // bound, never listened: nothing accepts on it
    return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("doctor: a well-configured server gets exit code 0", "[doctor][healthy]") {
    // Started with the slow query log on, a 20 s lock wait and TCP keepalive at 60 s (CMakeLists.txt).
    // A generous probe timeout: it costs time only when an answer does not come.
    const auto j = doctor_json({"--idle-probe", "3s", "--probe-timeout", "5s"}, 0);
    INFO(dump_ids(j));
    CHECK(severities_of(j).count("critical") == 0);
    CHECK(severities_of(j).count("warning") == 0);
    CHECK(j["server"]["flavour"] == "MariaDB");
    CHECK(j["server"]["variables"]["slow_query_log"] == "ON");
    CHECK(j["measurements"]["connect_ms"].get<double>() > 0);
    CHECK(j["measurements"]["ping_ms"]["samples"] == 5);
    // The error log was found through @@log_error: the harness's <dir>/error.log.
    CHECK(j["error_log"]["source"] == "file");
    CHECK(j["error_log"]["where"] == std::string(std::getenv("LIFELINE_TEST_SERVER_DIR")) + "/error.log");
    // It just started, cleanly: reported, but only as information.
    const json* restart = find(j, "recent_restart");
    REQUIRE(restart);
    CHECK((*restart)["severity"] == "info");
    CHECK(causes(*restart) == std::vector<int>{4});
    // Directly connected, every idle probe answers.
    REQUIRE(j["measurements"]["idle_probe"]["probes"].size() == 2);
    for (const auto& p : j["measurements"]["idle_probe"]["probes"]) CHECK(p["outcome"] == "alive");
    CHECK_FALSE(find(j, "proxy_in_path"));
    // --fail-on info turns the information into exit code 1.
    doctor_json({"--fail-on", "info"}, 1);
}

TEST_CASE("doctor: text output, and the password from an option file or MYSQL_PWD", "[doctor][healthy]") {
    const auto srv = server::attach();
    auto r = run_doctor({dsn(srv.where()), "--password-env", "LIFELINE_TEST_PASSWORD"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("lifeline-doctor") == 0);
    CHECK(r.out.find("server     MariaDB") != std::string::npos);
    CHECK(r.out.find("Exit code 0") != std::string::npos);
    CHECK(r.out.find(srv.where().app_password) == std::string::npos);

    const std::string cnf = srv.dir() + "/doctor-client.cnf";
    std::ofstream(cnf) << "[client]\n# the doctor reads password= from here\npassword = \"" << srv.where().app_password
                       << "\"\n";
    r = run_doctor({dsn(srv.where()), "--defaults-file", cnf, "--json"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find(srv.where().app_password) == std::string::npos);

    r = run_doctor({dsn(srv.where()), "--json"}, {{"MYSQL_PWD", srv.where().app_password}});
    CHECK(r.exit_code == 0);
}

TEST_CASE("doctor: a tiny wait_timeout is cause 2, critical", "[doctor][wait_timeout]") {
    const auto j = doctor_json({}, 1);  // server started with --wait-timeout=2
    INFO(dump_ids(j));
    const json* f = find(j, "wait_timeout_short");
    REQUIRE(f);
    CHECK((*f)["severity"] == "critical");
    CHECK(causes(*f) == std::vector<int>{2});
    CHECK(j["server"]["session_variables"]["wait_timeout"] == "2");
    bool evidence = false;
    for (const auto& e : (*f)["evidence"]) evidence |= e["name"] == "wait_timeout" && e["value"] == "2 s";
    CHECK(evidence);
    CHECK(j["findings"][0]["severity"] == "critical");  // ordered by severity
}

TEST_CASE("doctor: a small max_allowed_packet is cause 3", "[doctor][max_allowed_packet]") {
    // Server started with --max-allowed-packet=1M.
    auto j = doctor_json({}, 1);
    INFO(dump_ids(j));
    const json* f = find(j, "max_allowed_packet_small");
    REQUIRE(f);
    CHECK((*f)["severity"] == "warning");
    CHECK(causes(*f) == std::vector<int>{3});
    CHECK((*f)["step"] == 4);

    j = doctor_json({"--largest-statement", "8M", "--client-max-allowed-packet", "16M"}, 1);
    INFO(dump_ids(j));
    f = find(j, "max_allowed_packet_below_workload");
    REQUIRE(f);
    CHECK((*f)["severity"] == "critical");
    CHECK(causes(*f) == std::vector<int>{3});
    f = find(j, "client_max_allowed_packet_mismatch");
    REQUIRE(f);
    CHECK(causes(*f) == std::vector<int>{3});
}

TEST_CASE("doctor: max_statement_time set is cause 6", "[doctor][max_statement_time]") {
    // Server started with --max-statement-time=2.
    auto j = doctor_json({}, 1);
    INFO(dump_ids(j));
    const json* f = find(j, "max_statement_time_set");
    REQUIRE(f);
    CHECK((*f)["severity"] == "warning");
    CHECK(causes(*f) == std::vector<int>{6});
    CHECK((*f)["step"] == 7);
    // A workload with 5 s statements: they will be killed.
    j = doctor_json({"--longest-statement", "5s"}, 1);
    f = find(j, "max_statement_time_set");
    REQUIRE(f);
    CHECK((*f)["severity"] == "critical");
}

TEST_CASE("doctor: the slow query log off, and a deadline beyond net_write_timeout", "[doctor][defaults]") {
    // A server with MariaDB's defaults: slow_query_log OFF, net_write_timeout 60.
    auto j = doctor_json({}, 1);
    INFO(dump_ids(j));
    const json* f = find(j, "slow_query_log_off");
    REQUIRE(f);
    CHECK((*f)["severity"] == "warning");
    CHECK((*f)["step"] == 3);
    CHECK(causes(*f) == std::vector<int>{1, 6});
    CHECK_FALSE(find(j, "net_write_timeout_short"));
    j = doctor_json({"--deadline", "120s"}, 1);
    f = find(j, "net_write_timeout_short");
    REQUIRE(f);
    CHECK(causes(*f) == std::vector<int>{1});
    CHECK((*f)["step"] == 2);
}

TEST_CASE("doctor: a proxy that silently drops idle connections is cause 5", "[doctor][idle_drop]") {
    const auto srv = server::attach();
    lifeline::testing::fault_proxy proxy(srv.where().host, static_cast<std::uint16_t>(srv.where().port));
    proxy.drop_when_idle(2s);  // a firewall that forgets connections idle for 2 s
    const auto j = doctor_json({"--idle-probe", "6s", "--probe-timeout", "2s"}, 1,
                               dsn(srv.where(), proxy.host(), proxy.port()));
    INFO(dump_ids(j));
    const json* f = find(j, "idle_cutoff_silent");
    REQUIRE(f);
    CHECK((*f)["severity"] == "critical");
    CHECK(causes(*f) == std::vector<int>{5});
    CHECK((*f)["step"] == 6);
    CHECK(proxy.stats().idle_drops >= 2);  // the fault really happened
    // The probes bracket the proxy's 2 s: every probe idle for less answered, every one idle for
    // 2 s or more got no answer at all (no FIN, no RST), within the probe timeout.
    const auto& probes = j["measurements"]["idle_probe"]["probes"];
    REQUIRE(probes.size() == 3);
    for (const auto& p : probes) {
        INFO(p.dump());
        const auto idle = p["idle_ms"].get<long>();
        if (p["outcome"] == "alive") CHECK(idle < 2000);
        else {
            CHECK(p["outcome"] == "silent");
            CHECK(idle >= 1900);  // the proxy's idle clock starts a moment before the doctor's
            CHECK(p["answered_after_ms"].get<long>() >= 1800);
        }
    }
    CHECK(probes[2]["outcome"] == "silent");
    // The DSN reaches the proxy's port, not the server's: reported as a proxy in the path.
    const json* proxy_finding = find(j, "proxy_in_path");
    REQUIRE(proxy_finding);
    CHECK(causes(*proxy_finding) == std::vector<int>{5});
}

TEST_CASE("doctor: a server restarted moments ago after a crash is cause 4", "[doctor][restart]") {
    auto srv = server::attach();
    srv.crash();  // SIGKILL, as the OOM killer does
    srv.start_again();
    auto j = doctor_json({}, 1);
    INFO(dump_ids(j));
    const json* f = find(j, "recent_restart");
    REQUIRE(f);
    CHECK((*f)["severity"] == "critical");
    CHECK(causes(*f) == std::vector<int>{4});
    CHECK((*f)["step"] == 5);
    // The run before ended without "Shutdown complete". (InnoDB logs "crash recovery" only when
    // it had changes after its last checkpoint, so that line is not always there.)
    const std::string evidence = (*f)["evidence"].dump();
    CHECK(evidence.find("without 'Shutdown complete'") != std::string::npos);
    CHECK(j["server"]["uptime_s"].get<double>() < 3600);

    // A clean restart afterwards: the restart itself is information, the earlier crash a warning.
    srv.restart();
    j = doctor_json({}, 1);
    INFO(dump_ids(j));
    f = find(j, "recent_restart");
    REQUIRE(f);
    CHECK((*f)["severity"] == "info");
    f = find(j, "error_log_crash");
    REQUIRE(f);
    CHECK((*f)["severity"] == "warning");
    CHECK(causes(*f) == std::vector<int>{4});
}

TEST_CASE("doctor: what it cannot run says why, with exit code 2", "[doctor][errors]") {
    const auto srv = server::attach();
    const auto& e = srv.where();

    SECTION("a wrong DSN") {
        auto r = run_doctor({"postgres://app@127.0.0.1/db"});
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("invalid DSN") != std::string::npos);
        CHECK(r.err.find("mysql://") != std::string::npos);  // says what it expected
        r = run_doctor({"mysql://app:hunter2@127.0.0.1:notaport/db", "--json"});
        CHECK(r.exit_code == 2);
        CHECK(json::parse(r.out)["error"]["kind"] == "invalid_dsn");
        CHECK(r.out.find("hunter2") == std::string::npos);
        CHECK(r.err.find("hunter2") == std::string::npos);
    }
    SECTION("a closed port") {
        const auto r = run_doctor({dsn(e, "127.0.0.1", closed_port()), "--password-env", "LIFELINE_TEST_PASSWORD"});
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("cannot reach 127.0.0.1:") != std::string::npos);
        CHECK(r.out.empty());
    }
    SECTION("a wrong password") {
        const std::string wrong = "not-the-password-4711";
        auto r = run_doctor({dsn(e), "--password-env", "WRONG_PW", "--json"}, {{"WRONG_PW", wrong}});
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("access denied for user '" + e.app_user + "'") != std::string::npos);
        const auto j = json::parse(r.out);
        CHECK(j["error"]["kind"] == "access_denied");
        CHECK(j["error"]["code"] == 1045);
        CHECK(r.out.find(wrong) == std::string::npos);
        CHECK(r.err.find(wrong) == std::string::npos);
        // The same password in the DSN itself: still never echoed.
        r = run_doctor({"mysql://" + e.app_user + ":" + wrong + "@" + e.host + ":" + std::to_string(e.port) + "/" +
                        e.database});
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("access denied") != std::string::npos);
        CHECK(r.out.find(wrong) == std::string::npos);
        CHECK(r.err.find(wrong) == std::string::npos);
    }
    SECTION("a password variable that is not set, a bad flag value") {
        auto r = run_doctor({dsn(e), "--password-env", "LIFELINE_NO_SUCH_VARIABLE"});
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("LIFELINE_NO_SUCH_VARIABLE") != std::string::npos);
        r = run_doctor({dsn(e), "--deadline", "10x"});
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("not a duration") != std::string::npos);
        r = run_doctor({});
        CHECK(r.exit_code == 2);
    }
}
