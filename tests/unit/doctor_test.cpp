// lifeline::doctor::diagnose() and its helpers, without a server: snapshots built by hand (values
// as MariaDB 10.11 reports them), error-log lines as the real server writes them (copied from
// the harness's logs: first start, SIGKILL + restart, clean restart), the option-file reader and
// the report's JSON/text rendering.
#include <lifeline/doctor.hpp>

#include "option_file.hpp"
#include "report.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace lifeline::doctor;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> first_start_log = {
    "2026-12-01 13:20:29 0 [Note] Starting MariaDB 10.11.19-MariaDB-0+deb12u1 source revision 5843d8 as process 8958",
    "2026-12-01 13:20:29 0 [Note] InnoDB: Completed initialization of buffer pool",
    "2026-12-01 13:20:29 0 [Note] InnoDB: End of log at LSN=44404",
    "2026-12-01 13:20:29 0 [Warning] 'user' entry 'root@vm' ignored in --skip-name-resolve mode.",
    "2026-12-01 13:20:29 0 [Note] /usr/sbin/mariadbd: ready for connections.",
    "Version: '10.11.19-MariaDB-0+deb12u1'  socket: '/tmp/x/mysqld.sock'  port: 58537  Debian 12",
};
const std::vector<std::string> restart_after_kill = {
    "2026-12-01 13:20:31 0 [Note] Starting MariaDB 10.11.19-MariaDB-0+deb12u1 source revision 5843d8 as process 8975",
    "2026-12-01 13:20:31 0 [Note] mariadbd: Aria engine: starting recovery",
    "recovered pages: 0% 17% 33% 49% 60% 70% 83% 100% (0.0 seconds); tables to flush: 2 1 0",
    "2026-12-01 13:20:31 0 [Note] mariadbd: Aria engine: recovery done",
    "2026-12-01 13:20:31 0 [Note] InnoDB: Starting crash recovery from checkpoint LSN=44388",
    "2026-12-01 13:20:31 0 [Note] InnoDB: To recover: 9 pages",
    "2026-12-01 13:20:31 0 [Note] /usr/sbin/mariadbd: ready for connections.",
};
const std::vector<std::string> clean_stop = {
    "2026-12-01 13:20:31 0 [Note] /usr/sbin/mariadbd (initiated by: root[root] @ localhost []): Normal shutdown",
    "2026-12-01 13:20:31 0 [Note] InnoDB: Starting shutdown...",
    "2026-12-01 13:20:31 0 [Note] /usr/sbin/mariadbd: Shutdown complete",
};
const std::vector<std::string> clean_start = {
    "2026-12-01 13:20:34 0 [Note] Starting MariaDB 10.11.19-MariaDB-0+deb12u1 source revision 5843d8 as process 9085",
    "2026-12-01 13:20:34 0 [Note] InnoDB: End of log at LSN=47134",
    "2026-12-01 13:20:34 0 [Note] /usr/sbin/mariadbd: ready for connections.",
};

std::vector<std::string> concat(std::initializer_list<std::vector<std::string>> parts) {
    std::vector<std::string> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// A well-configured MariaDB 10.11 that has been up for ten days, reached directly.
server_snapshot healthy() {
    server_snapshot s;
    s.global = {{"version", "10.11.19-MariaDB-0+deb12u1"},
                {"version_comment", "Debian 12"},
                {"hostname", "db1"},
                {"port", "3306"},
                {"log_error", "/var/log/mysql/error.log"},
                {"net_read_timeout", "30"},
                {"net_write_timeout", "60"},
                {"wait_timeout", "28800"},
                {"interactive_timeout", "28800"},
                {"connect_timeout", "10"},
                {"max_allowed_packet", "16777216"},
                {"max_connections", "151"},
                {"max_statement_time", "0.000000"},
                {"innodb_lock_wait_timeout", "20"},
                {"slow_query_log", "ON"},
                {"long_query_time", "5.000000"},
                {"read_only", "OFF"},
                {"wsrep_on", "OFF"},
                {"tcp_keepalive_time", "60"}};
    for (const char* k : {"net_read_timeout", "net_write_timeout", "wait_timeout", "interactive_timeout",
                          "max_allowed_packet", "max_statement_time", "innodb_lock_wait_timeout", "long_query_time"})
        s.session[k] = s.global[k];
    s.status = {{"uptime", "864000"},     {"aborted_clients", "0"},     {"aborted_connects", "0"},
                {"connections", "12000"}, {"max_used_connections", "40"}, {"max_statement_time_exceeded", "0"}};
    s.handshake_version = "10.11.19-MariaDB-0+deb12u1";
    s.handshake_connection_id = s.sql_connection_id = 77;
    s.dsn_host = "127.0.0.1";
    s.dsn_port = 3306;
    s.error_log.source = log_source::file;
    s.error_log.where = "/var/log/mysql/error.log";
    s.error_log.lines = concat({first_start_log, clean_stop, clean_start});
    return s;
}

std::set<std::string> ids(const std::vector<finding>& fs) {
    std::set<std::string> out;
    for (const auto& f : fs) out.insert(f.id);
    return out;
}

const finding& get(const std::vector<finding>& fs, const std::string& id) {
    auto it = std::find_if(fs.begin(), fs.end(), [&](const finding& f) { return f.id == id; });
    REQUIRE(it != fs.end());
    return *it;
}

std::string evidence_text(const finding& f) {
    std::string s;
    for (const auto& e : f.evidence) s += e.name + "=" + e.value + "\n";
    return s;
}

std::string fix_text(const finding& f, fix_kind k) {
    std::string s;
    for (const auto& x : f.fixes)
        if (x.kind == k) s += x.text + "\n";
    return s;
}

void set_both(server_snapshot& s, const std::string& k, const std::string& v) {
    s.global[k] = v;
    s.session[k] = v;
}

}  // namespace

TEST_CASE("doctor: the client profile's defaults are lifeline's own", "[unit][doctor]") {
    const client_profile c;
    CHECK(c.deadline == lifeline::retry_policy{}.deadline);
    CHECK(c.io_timeout == lifeline::connect_options{}.io_timeout);
    CHECK(c.connect_timeout == lifeline::connect_options{}.connect_timeout);
    CHECK(c.pool_idle_timeout == lifeline::pool_options{}.idle_timeout);
    CHECK(c.max_lifetime == std::chrono::duration_cast<milliseconds>(lifeline::health_policy{}.max_lifetime));
    CHECK(c.ping_after_idle == std::chrono::duration_cast<milliseconds>(lifeline::health_policy{}.ping_after_idle));
    CHECK(c.wait_timeout_margin == lifeline::health_policy{}.wait_timeout_margin);
    CHECK_FALSE(c.client_max_allowed_packet);
    CHECK_FALSE(c.largest_statement);
    CHECK_FALSE(c.longest_statement);
}

TEST_CASE("doctor: durations and sizes parse and print", "[unit][doctor]") {
    milliseconds d{};
    CHECK((parse_duration("30s", d) && d == 30s));
    CHECK((parse_duration("500ms", d) && d == 500ms));
    CHECK((parse_duration("10m", d) && d == 10min));
    CHECK((parse_duration("1h", d) && d == 1h));
    CHECK((parse_duration("2d", d) && d == 48h));
    CHECK((parse_duration("45", d) && d == 45s));
    CHECK((parse_duration("1.5s", d) && d == 1500ms));
    for (const char* bad : {"", "s", "10x", "-1s", "1.2.3s", "ten"}) CHECK_FALSE(parse_duration(bad, d));

    std::uint64_t n = 0;
    CHECK((parse_size("16M", n) && n == 16u * 1024 * 1024));
    CHECK((parse_size("1G", n) && n == 1024u * 1024 * 1024));
    CHECK((parse_size("64k", n) && n == 64u * 1024));
    CHECK((parse_size("16MiB", n) && n == 16u * 1024 * 1024));
    CHECK((parse_size("4096", n) && n == 4096));
    for (const char* bad : {"", "M", "16X", "1.5M", "-1"}) CHECK_FALSE(parse_size(bad, n));

    CHECK(format_duration(0ms) == "0 s");
    CHECK(format_duration(250ms) == "250 ms");
    CHECK(format_duration(1500ms) == "1.5 s");
    CHECK(format_duration(10min) == "10 min");
    CHECK(format_duration(8h) == "8 h");
    CHECK(format_size(16u * 1024 * 1024) == "16 MiB");
    CHECK(format_size(1000) == "1000 bytes");
    CHECK(cnf_size(64u * 1024 * 1024) == "64M");
    CHECK(cnf_size(1024u * 1024 * 1024) == "1G");

    severity s{};
    CHECK((parse_severity("critical", s) && s == severity::critical));
    CHECK_FALSE(parse_severity("fatal", s));
}

TEST_CASE("doctor: flavour, version and the default max_allowed_packet", "[unit][doctor]") {
    server_snapshot s;
    s.global["version"] = "10.11.19-MariaDB-0+deb12u1";
    auto v = version_of(s);
    CHECK(v.flavour == "MariaDB");
    CHECK((v.major == 10 && v.minor == 11 && v.patch == 19));
    CHECK(default_max_allowed_packet(v) == 16u * 1024 * 1024);
    s.global["version"] = "5.5.5-10.1.48-MariaDB";
    v = version_of(s);
    CHECK((v.major == 10 && v.minor == 1));
    CHECK(default_max_allowed_packet(v) == 4u * 1024 * 1024);
    s.global["version"] = "8.0.36";
    v = version_of(s);
    CHECK(v.flavour == "MySQL");
    CHECK(default_max_allowed_packet(v) == 64u * 1024 * 1024);
    s.global["version_comment"] = "Percona Server (GPL), Release 27";
    CHECK(version_of(s).flavour == "Percona Server");
    s.global["version"] = "5.7.44";
    s.global.erase("version_comment");
    CHECK(default_max_allowed_packet(version_of(s)) == 4u * 1024 * 1024);
}

TEST_CASE("doctor: a well-configured server gets no finding", "[unit][doctor]") {
    const auto fs = diagnose(healthy(), client_profile{}, measurements{});
    INFO([&] {
        std::string s;
        for (const auto& f : fs) s += f.id + " ";
        return s;
    }());
    CHECK(fs.empty());
    CHECK(exit_code_for(fs) == 0);
}

TEST_CASE("doctor: wait_timeout (cause 2)", "[unit][doctor]") {
    auto s = healthy();
    SECTION("tiny: critical") {
        set_both(s, "wait_timeout", "2");
        const auto fs = diagnose(s, client_profile{}, measurements{});
        CHECK(ids(fs) == std::set<std::string>{"wait_timeout_short"});
        const auto& f = get(fs, "wait_timeout_short");
        CHECK(f.level == severity::critical);
        CHECK(f.causes == std::vector<int>{2});
        CHECK(f.step == 1);
        CHECK(evidence_text(f).find("wait_timeout=2 s") != std::string::npos);
        CHECK(fix_text(f, fix_kind::my_cnf).find("wait_timeout = 28800") != std::string::npos);
        CHECK(fix_text(f, fix_kind::sql).find("SET GLOBAL wait_timeout") != std::string::npos);
        CHECK(exit_code_for(fs) == 1);
    }
    SECTION("shorter than the pool's idle timeout: warning, with the pool option as fix") {
        set_both(s, "wait_timeout", "300");
        client_profile c;
        c.pool_idle_timeout = 10min;
        const auto fs = diagnose(s, c, measurements{});
        CHECK(ids(fs) == std::set<std::string>{"wait_timeout_below_pool_idle"});
        const auto& f = get(fs, "wait_timeout_below_pool_idle");
        CHECK(f.level == severity::warning);
        CHECK(f.causes == std::vector<int>{2});
        CHECK(fix_text(f, fix_kind::lifeline).find("pool_options.idle_timeout = std::chrono::seconds(240)") !=
              std::string::npos);  // 80 % of 300 s: lifeline's own recycling point
        CHECK(fix_text(f, fix_kind::my_cnf).find("wait_timeout = 780") != std::string::npos);  // 600/0.8 -> minutes
        c.pool_idle_timeout = 4min;
        CHECK(diagnose(s, c, measurements{}).empty());
    }
    SECTION("the session value counts, and both are shown when they differ") {
        s.session["wait_timeout"] = "5";
        const auto fs = diagnose(s, client_profile{}, measurements{});
        CHECK(evidence_text(get(fs, "wait_timeout_short")).find("5 s (global 28800 s)") != std::string::npos);
    }
}

TEST_CASE("doctor: net_read_timeout and net_write_timeout (cause 1)", "[unit][doctor]") {
    auto s = healthy();
    SECTION("below the defaults") {
        set_both(s, "net_read_timeout", "5");
        set_both(s, "net_write_timeout", "10");
        const auto fs = diagnose(s, client_profile{}, measurements{});
        CHECK(ids(fs) == std::set<std::string>{"net_read_timeout_short", "net_write_timeout_short"});
        for (const auto& f : fs) {
            CHECK(f.causes == std::vector<int>{1});
            CHECK(f.level == severity::warning);
        }
        CHECK(fix_text(get(fs, "net_write_timeout_short"), fix_kind::my_cnf).find("net_write_timeout = 60") !=
              std::string::npos);
    }
    SECTION("a deadline longer than net_write_timeout") {
        client_profile c;
        c.deadline = 120s;
        const auto fs = diagnose(s, c, measurements{});
        const auto& f = get(fs, "net_write_timeout_short");
        CHECK(f.step == 2);
        CHECK(f.title.find("shorter than the client's deadline") != std::string::npos);
        CHECK(fix_text(f, fix_kind::lifeline).find("SET SESSION net_write_timeout = 120") != std::string::npos);
        c.deadline = 60s;
        CHECK(ids(diagnose(s, c, measurements{})).count("net_write_timeout_short") == 0);
    }
}

TEST_CASE("doctor: max_allowed_packet (cause 3)", "[unit][doctor]") {
    auto s = healthy();
    SECTION("smaller than the flavour's default") {
        set_both(s, "max_allowed_packet", "1048576");
        const auto fs = diagnose(s, client_profile{}, measurements{});
        CHECK(ids(fs) == std::set<std::string>{"max_allowed_packet_small"});
        const auto& f = get(fs, "max_allowed_packet_small");
        CHECK(f.causes == std::vector<int>{3});
        CHECK(f.step == 4);
        CHECK(evidence_text(f).find("1 MiB") != std::string::npos);
        CHECK(fix_text(f, fix_kind::my_cnf).find("max_allowed_packet = 16M") != std::string::npos);
    }
    SECTION("smaller than the workload's largest statement: critical") {
        client_profile c;
        c.largest_statement = 40u * 1024 * 1024;
        const auto fs = diagnose(s, c, measurements{});
        CHECK(ids(fs) == std::set<std::string>{"max_allowed_packet_below_workload"});
        CHECK(get(fs, "max_allowed_packet_below_workload").level == severity::critical);
        CHECK(fix_text(get(fs, "max_allowed_packet_below_workload"), fix_kind::my_cnf).find("= 50M") !=
              std::string::npos);
        c.largest_statement = 8u * 1024 * 1024;
        CHECK(diagnose(s, c, measurements{}).empty());
    }
    SECTION("client and server disagree") {
        client_profile c;
        c.client_max_allowed_packet = 64u * 1024 * 1024;
        auto fs = diagnose(s, c, measurements{});
        CHECK(ids(fs) == std::set<std::string>{"client_max_allowed_packet_mismatch"});
        CHECK(get(fs, "client_max_allowed_packet_mismatch").title.find("server drops the connection") !=
              std::string::npos);
        c.client_max_allowed_packet = 1u * 1024 * 1024;
        fs = diagnose(s, c, measurements{});
        CHECK(get(fs, "client_max_allowed_packet_mismatch").title.find("2020") != std::string::npos);
        c.client_max_allowed_packet = 16u * 1024 * 1024;
        CHECK(diagnose(s, c, measurements{}).empty());
    }
}

TEST_CASE("doctor: error log analysis", "[unit][doctor]") {
    SECTION("a first start: nothing to judge") {
        const auto f = analyze_error_log(first_start_log);
        CHECK(f.starts == 1);
        CHECK_FALSE(f.clean_stop_before_last_start);
        CHECK(f.crash_lines.empty());
        CHECK(f.last_start_recovery.empty());
    }
    SECTION("a restart after SIGKILL: no clean shutdown, crash recovery") {
        const auto f = analyze_error_log(concat({first_start_log, restart_after_kill}));
        CHECK(f.starts == 2);
        REQUIRE(f.clean_stop_before_last_start);
        CHECK_FALSE(*f.clean_stop_before_last_start);
        CHECK(f.unclean_stops.size() == 1);
        CHECK(f.last_start_recovery.size() >= 2);
        CHECK(f.last_start->find("process 8975") != std::string::npos);
    }
    SECTION("a clean restart") {
        const auto f = analyze_error_log(concat({first_start_log, clean_stop, clean_start}));
        REQUIRE(f.clean_stop_before_last_start);
        CHECK(*f.clean_stop_before_last_start);
        CHECK(f.unclean_stops.empty());
        CHECK(f.last_start_recovery.empty());
        CHECK(f.crash_lines.empty());
    }
    SECTION("mysqld_safe's 'Starting mariadbd daemon' is not a second start") {
        const auto f = analyze_error_log(concat(
            {{"240101 10:00:00 mysqld_safe Starting mariadbd daemon with databases from /var/lib/mysql"}, first_start_log}));
        CHECK(f.starts == 1);
        CHECK(f.unclean_stops.empty());
    }
    SECTION("signals, OOM and aborted connections (the article's Aborted|killed|crash|OOM)") {
        const auto f = analyze_error_log(
            {"2026-12-01 13:29:14 16 [Warning] Aborted connection 16 to db: 'shop' user: 'app' host: '10.0.0.5' (Got "
             "timeout reading communication packets)",
             "2026-12-01 13:29:15 17 [Warning] Aborted connection 17 to db: 'shop' user: 'app' host: '10.0.0.5' (Got "
             "an error reading communication packets)",
             "2026-12-01 13:29:16 18 [Warning] Aborted connection 18 to db: 'shop' user: 'app' host: '10.0.0.5' (Got "
             "timeout reading communication packets)",
             "231101 10:00:00 [ERROR] mysqld got signal 11 ;",
             "2023-11-01T10:00:00.000000Z 0 [ERROR] [MY-013183] [InnoDB] Assertion failure: btr0cur.cc:336",
             "Nov  1 10:00:00 db1 kernel: Out of memory: Killed process 812 (mariadbd)",
             "2026-12-01 13:20:31 0 [Note] InnoDB: Starting crash recovery from checkpoint LSN=44388"});
        CHECK(f.aborted_connections == 3);
        CHECK(f.aborted_reasons.at("Got timeout reading communication packets") == 2);
        CHECK(f.aborted_reasons.at("Got an error reading communication packets") == 1);
        CHECK(f.crash_lines.size() == 3);  // not the recovery line, not the aborted connections
    }
    SECTION("MySQL 8's format") {
        const auto f = analyze_error_log(
            {"2024-01-01T10:00:00.1Z 0 [System] [MY-010116] [Server] /usr/sbin/mysqld (mysqld 8.0.36) starting as "
             "process 100",
             "2024-01-01T10:00:01.1Z 0 [System] [MY-010931] [Server] /usr/sbin/mysqld: ready for connections.",
             "2024-01-01T11:00:00.1Z 0 [System] [MY-010116] [Server] /usr/sbin/mysqld (mysqld 8.0.36) starting as "
             "process 200"});
        CHECK(f.starts == 2);
        REQUIRE(f.clean_stop_before_last_start);
        CHECK_FALSE(*f.clean_stop_before_last_start);
    }
}

TEST_CASE("doctor: a recent restart (cause 4), told apart by the error log", "[unit][doctor]") {
    auto s = healthy();
    s.status["uptime"] = "3";
    SECTION("after a crash: critical, with the log's evidence") {
        s.error_log.lines = concat({first_start_log, restart_after_kill});
        const auto fs = diagnose(s, client_profile{}, measurements{});
        CHECK(ids(fs) == std::set<std::string>{"recent_restart"});
        const auto& f = get(fs, "recent_restart");
        CHECK(f.level == severity::critical);
        CHECK(f.causes == std::vector<int>{4});
        CHECK(f.step == 5);
        CHECK(evidence_text(f).find("without 'Shutdown complete'") != std::string::npos);
        CHECK(evidence_text(f).find("crash recovery") != std::string::npos);
        CHECK(fix_text(f, fix_kind::action).find("out of memory") != std::string::npos);
    }
    SECTION("after a clean restart: info") {
        const auto fs = diagnose(s, client_profile{}, measurements{});
        CHECK(ids(fs) == std::set<std::string>{"recent_restart"});
        CHECK(get(fs, "recent_restart").level == severity::info);
        CHECK(exit_code_for(fs) == 0);
        CHECK(exit_code_for(fs, severity::info) == 1);
    }
    SECTION("log not readable: warning, and the log finding says why") {
        s.error_log = {};
        s.error_log.why_not = "cannot read /var/log/mysql/error.log: Permission denied";
        const auto fs = diagnose(s, client_profile{}, measurements{});
        CHECK(ids(fs) == std::set<std::string>{"recent_restart", "error_log_not_read"});
        CHECK(get(fs, "recent_restart").level == severity::warning);
        CHECK(get(fs, "error_log_not_read").title.find("Permission denied") != std::string::npos);
    }
    SECTION("an uptime above the window is no restart") {
        s.status["uptime"] = "7200";
        CHECK(diagnose(s, client_profile{}, measurements{}).empty());
        rule_settings r;
        r.recent_restart = 3h;
        CHECK(ids(diagnose(s, client_profile{}, measurements{}, r)) == std::set<std::string>{"recent_restart"});
    }
}

TEST_CASE("doctor: crashes and aborted connections in an older log", "[unit][doctor]") {
    auto s = healthy();
    s.error_log.lines = concat({first_start_log, restart_after_kill, clean_stop, clean_start});
    s.error_log.lines.push_back(
        "2026-12-01 13:29:14 16 [Warning] Aborted connection 16 to db: 'shop' user: 'app' host: '10.0.0.5' (Got timeout "
        "reading communication packets)");
    const auto fs = diagnose(s, client_profile{}, measurements{});
    CHECK(ids(fs) == std::set<std::string>{"error_log_crash", "error_log_aborted_connections"});
    CHECK(get(fs, "error_log_crash").level == severity::warning);  // up for ten days since
    CHECK(get(fs, "error_log_crash").causes == std::vector<int>{4});
    CHECK(get(fs, "error_log_aborted_connections").causes == std::vector<int>{1, 2});
}

TEST_CASE("doctor: statement time limits (cause 6)", "[unit][doctor]") {
    auto s = healthy();
    set_both(s, "max_statement_time", "5.000000");
    auto fs = diagnose(s, client_profile{}, measurements{});
    CHECK(ids(fs) == std::set<std::string>{"max_statement_time_set"});
    CHECK(get(fs, "max_statement_time_set").level == severity::warning);
    CHECK(get(fs, "max_statement_time_set").causes == std::vector<int>{6});
    CHECK(get(fs, "max_statement_time_set").step == 7);
    client_profile c;
    c.longest_statement = 10s;
    fs = diagnose(s, c, measurements{});
    CHECK(get(fs, "max_statement_time_set").level == severity::critical);
    CHECK(fix_text(get(fs, "max_statement_time_set"), fix_kind::lifeline).find("max_statement_time = 20") !=
          std::string::npos);

    auto my = healthy();
    my.global["version"] = my.handshake_version = "8.0.36";
    my.global.erase("max_statement_time");
    my.session.erase("max_statement_time");
    set_both(my, "max_allowed_packet", "67108864");
    set_both(my, "max_execution_time", "2000");
    fs = diagnose(my, client_profile{}, measurements{});
    CHECK(ids(fs) == std::set<std::string>{"max_execution_time_set"});
    CHECK(get(fs, "max_execution_time_set").causes == std::vector<int>{6});
}

TEST_CASE("doctor: the slow query log (step 3)", "[unit][doctor]") {
    auto s = healthy();
    s.global["slow_query_log"] = "OFF";
    auto fs = diagnose(s, client_profile{}, measurements{});
    CHECK(ids(fs) == std::set<std::string>{"slow_query_log_off"});
    const auto& f = get(fs, "slow_query_log_off");
    CHECK(f.step == 3);
    CHECK(f.level == severity::warning);
    CHECK(fix_text(f, fix_kind::my_cnf).find("slow_query_log = 1") != std::string::npos);
    s.global["slow_query_log"] = "ON";
    set_both(s, "long_query_time", "60.000000");
    CHECK(ids(diagnose(s, client_profile{}, measurements{})) == std::set<std::string>{"long_query_time_above_deadline"});
}

TEST_CASE("doctor: the idle probe (cause 5)", "[unit][doctor]") {
    const auto s = healthy();
    measurements m;
    m.idle_probe_ran = true;
    m.idle_probe_limit = 6s;
    m.probe_timeout = 2s;
    auto probe = [](milliseconds idle, probe_outcome o, unsigned code = 0) {
        idle_probe p;
        p.planned = p.idle = idle;
        p.outcome = o;
        p.code = code;
        return p;
    };
    SECTION("silently dropped: critical, with the cut-off bracketed") {
        m.probes = {probe(1500ms, probe_outcome::alive), probe(3s, probe_outcome::silent, 2013),
                    probe(6s, probe_outcome::silent, 2013)};
        const auto fs = diagnose(s, client_profile{}, m);
        CHECK(ids(fs) == std::set<std::string>{"idle_cutoff_silent"});
        const auto& f = get(fs, "idle_cutoff_silent");
        CHECK(f.level == severity::critical);
        CHECK(f.causes == std::vector<int>{5});
        CHECK(f.step == 6);
        CHECK(f.title.find("between 1.5 s and 3 s") != std::string::npos);
        CHECK(fix_text(f, fix_kind::lifeline).find("pool_options.idle_timeout below 1.5 s") != std::string::npos);
    }
    SECTION("closed sooner than wait_timeout: a proxy closes idle connections") {
        m.probes = {probe(1500ms, probe_outcome::alive), probe(3s, probe_outcome::closed, 2013)};
        CHECK(ids(diagnose(s, client_profile{}, m)) == std::set<std::string>{"idle_cutoff_closed"});
    }
    SECTION("closed at wait_timeout: explained by wait_timeout, not a proxy") {
        auto w = healthy();
        set_both(w, "wait_timeout", "2");
        m.probes = {probe(1s, probe_outcome::alive), probe(4s, probe_outcome::closed)};
        CHECK(ids(diagnose(w, client_profile{}, m)) == std::set<std::string>{"wait_timeout_short"});
    }
    SECTION("all alive: nothing") {
        m.probes = {probe(1500ms, probe_outcome::alive), probe(3s, probe_outcome::alive), probe(6s, probe_outcome::alive)};
        CHECK(diagnose(s, client_profile{}, m).empty());
    }
    SECTION("the schedule: halving down to about a second, ascending") {
        CHECK(idle_probe_schedule(6s) == std::vector<milliseconds>{1500ms, 3s, 6s});
        CHECK(idle_probe_schedule(120s) ==
              std::vector<milliseconds>{1875ms, 3750ms, 7500ms, 15s, 30s, 60s, 120s});
        CHECK(idle_probe_schedule(1s) == std::vector<milliseconds>{1s});
        CHECK(idle_probe_schedule(0s).empty());
    }
}

TEST_CASE("doctor: a proxy between client and server, best effort", "[unit][doctor]") {
    auto s = healthy();
    SECTION("another port than the server's") {
        s.dsn_port = 6033;
        const auto fs = diagnose(s, client_profile{}, measurements{});
        CHECK(ids(fs) == std::set<std::string>{"proxy_in_path"});
        CHECK(get(fs, "proxy_in_path").level == severity::info);
        CHECK(evidence_text(get(fs, "proxy_in_path")).find("reaches port 6033, the server listens on 3306") !=
              std::string::npos);
    }
    SECTION("a unix socket has no port to compare") {
        s.dsn_port = 6033;
        s.via_socket = true;
        CHECK(diagnose(s, client_profile{}, measurements{}).empty());
    }
    SECTION("ProxySQL: its own connection ids and version comment") {
        s.handshake_connection_id = 5;
        s.sql_connection_id = 91234;
        s.global["version_comment"] = "(ProxySQL)";
        const auto fs = diagnose(s, client_profile{}, measurements{});
        const auto& f = get(fs, "proxy_in_path");
        CHECK(f.title.find("ProxySQL") != std::string::npos);
        CHECK(evidence_text(f).find("handshake 5, CONNECTION_ID() 91234") != std::string::npos);
    }
    SECTION("MaxScale's version string") {
        s.handshake_version = "10.11.19-MariaDB-maxscale";
        CHECK(get(diagnose(s, client_profile{}, measurements{}), "proxy_in_path").title.find("MaxScale") !=
              std::string::npos);
    }
}

TEST_CASE("doctor: counters, failover, keepalive and client-side rules", "[unit][doctor]") {
    auto s = healthy();
    s.status["aborted_clients"] = "500";
    s.status["max_used_connections"] = "150";
    s.global["read_only"] = "ON";
    s.global["wsrep_on"] = "ON";
    s.global["tcp_keepalive_time"] = "0";
    client_profile c;
    c.io_timeout = 0ms;
    c.tcp_keepalive_idle = 0s;  // no read timeout and no keepalive: nothing ends a silently dropped read
    c.deadline = 30s;           // below the 45 s statement
    c.longest_statement = 45s;
    measurements m;
    m.connect_ms = 4000;
    const auto fs = diagnose(s, c, m);
    // lifeline's defaults: keepalive on, and a 60 s deadline above a 45 s statement.
    client_profile defaults;
    defaults.longest_statement = 45s;
    const auto fd = diagnose(s, defaults, m);
    CHECK(fd.end() == std::find_if(fd.begin(), fd.end(), [](const finding& f) { return f.id == "client_no_read_timeout"; }));
    CHECK(fd.end() ==
          std::find_if(fd.begin(), fd.end(), [](const finding& f) { return f.id == "deadline_below_longest_statement"; }));
    CHECK(ids(fs) == std::set<std::string>{"aborted_clients", "connections_near_limit", "read_only_server",
                                           "galera_node", "tcp_keepalive_os_default", "client_no_read_timeout",
                                           "connect_slow", "deadline_below_longest_statement"});
    CHECK(get(fs, "aborted_clients").level == severity::warning);  // 500 of 12000: 4 %
    CHECK(get(fs, "read_only_server").causes == std::vector<int>{7});
    CHECK(get(fs, "galera_node").causes == std::vector<int>{7});

    SECTION("most severe first") {
        for (std::size_t i = 1; i < fs.size(); ++i) CHECK(fs[i - 1].level >= fs[i].level);
    }
}

TEST_CASE("doctor: every finding carries a cause or step, evidence and a fix", "[unit][doctor]") {
    auto s = healthy();
    set_both(s, "wait_timeout", "2");
    set_both(s, "interactive_timeout", "2");
    set_both(s, "net_read_timeout", "2");
    set_both(s, "net_write_timeout", "2");
    set_both(s, "max_allowed_packet", "1048576");
    set_both(s, "max_statement_time", "1.0");
    set_both(s, "max_execution_time", "100");
    set_both(s, "innodb_lock_wait_timeout", "100");
    s.global["slow_query_log"] = "OFF";
    s.global["tcp_keepalive_time"] = "0";
    s.global["read_only"] = "ON";
    s.global["wsrep_on"] = "ON";
    s.status = {{"uptime", "2"},           {"aborted_clients", "50"},     {"aborted_connects", "7"},
                {"connections", "100"},    {"max_used_connections", "151"}};
    s.dsn_port = 4000;
    s.sql_connection_id = 1;
    s.error_log.lines = concat({first_start_log, restart_after_kill});
    s.error_log.lines.push_back("2026-12-01 13:29:14 16 [Warning] Aborted connection 16 to db: 'x' user: 'y' host: "
                                "'z' (Got an error reading communication packets)");
    client_profile c;
    c.largest_statement = 2u * 1024 * 1024;
    c.client_max_allowed_packet = 4u * 1024 * 1024;
    c.longest_statement = 40s;
    c.io_timeout = 0ms;
    measurements m;
    m.connect_ms = 3000;
    m.idle_probe_ran = true;
    m.probe_timeout = 1s;
    idle_probe p;
    p.idle = 2s;
    p.outcome = probe_outcome::silent;
    m.probes = {p};
    const auto fs = diagnose(s, c, m);
    CHECK(fs.size() >= 20);
    std::set<std::string> seen;
    for (const auto& f : fs) {
        INFO(f.id);
        CHECK(seen.insert(f.id).second);  // one finding per id
        CHECK_FALSE(f.title.empty());
        CHECK(f.step >= 1);
        CHECK(f.step <= 7);
        for (int cause : f.causes) CHECK((cause >= 1 && cause <= 7));
        CHECK_FALSE(f.evidence.empty());
        CHECK_FALSE(f.fixes.empty());
    }
    for (std::size_t i = 1; i < fs.size(); ++i) CHECK(fs[i - 1].level >= fs[i].level);
}

TEST_CASE("doctor: connect failures explained, never with a password", "[unit][doctor]") {
    const std::string denied =
        explain_connect_failure(1045, "Access denied for user 'app'@'10.0.0.5' (using password: YES)", "db1", 3306, "", "app");
    CHECK(denied.find("access denied") != std::string::npos);
    CHECK(denied.find("'app'") != std::string::npos);
    CHECK(explain_connect_failure(2002, "Can't connect to server on '127.0.0.1' (115)", "127.0.0.1", 1, "", "app")
              .find("cannot reach 127.0.0.1:1") != std::string::npos);
    CHECK(explain_connect_failure(2005, "Unknown server host", "nowhere.invalid", 3306, "", "app")
              .find("does not resolve") != std::string::npos);
    CHECK(explain_connect_failure(2002, "", "", 0, "/run/mysqld/mysqld.sock", "app").find("socket") != std::string::npos);
    CHECK(explain_connect_failure(9999, "odd", "h", 1, "", "u").find("odd") != std::string::npos);
}

TEST_CASE("doctor: the option file's password", "[unit][doctor]") {
    auto read = [](const std::string& text) {
        std::istringstream in(text);
        return option_file_password(in);
    };
    CHECK(read("[client]\nuser=app\npassword=s3cret\n") == std::optional<std::string>("s3cret"));
    CHECK(read("[client]\npassword = \"with # hash and space\"  # comment\n") ==
          std::optional<std::string>("with # hash and space"));
    CHECK(read("[client]\npassword='a\\'b\\\\c'\n") == std::optional<std::string>("a'b\\c"));
    CHECK(read("[client]\npassword=bare # comment\n") == std::optional<std::string>("bare"));
    CHECK(read("[mysqld]\npassword=not-this\n[client]\n# password=commented\n") == std::nullopt);
    CHECK(read("[client]\npassword=one\n[lifeline-doctor]\npassword=two\n") == std::optional<std::string>("two"));
    CHECK(read("!includedir /etc/mysql/conf.d/\n[client]\npassword=\n") == std::optional<std::string>(""));
}

TEST_CASE("doctor: the JSON report follows schema lifeline-doctor/1", "[unit][doctor]") {
    report r;
    r.where = {"127.0.0.1", 3306, "app", "shop", ""};
    r.snapshot = healthy();
    set_both(r.snapshot, "wait_timeout", "2");
    r.measured.connect_ms = 1.25;
    r.measured.ping = timing{0.05, 0.08, 5};
    r.findings = diagnose(r.snapshot, r.client, r.measured);
    r.exit_code = exit_code_for(r.findings);
    const auto j = to_json(r);
    CHECK(j["schema"] == "lifeline-doctor/1");
    CHECK(j["exit_code"] == 1);
    for (const char* k : {"schema", "tool", "exit_code", "target", "server", "client", "measurements", "error_log",
                          "findings", "summary"})
        CHECK(j.contains(k));
    CHECK(j["target"]["port"] == 3306);
    CHECK_FALSE(j["target"].contains("password"));
    CHECK(j["server"]["flavour"] == "MariaDB");
    CHECK(j["server"]["variables"]["wait_timeout"] == "2");
    CHECK(j["client"]["deadline_ms"] == 60000);
    CHECK(j["client"]["largest_statement"].is_null());
    CHECK(j["measurements"]["ping_ms"]["samples"] == 5);
    CHECK(j["measurements"]["idle_probe"].is_null());
    CHECK(j["error_log"]["source"] == "file");
    REQUIRE(j["findings"].size() == 1);
    const auto& f = j["findings"][0];
    CHECK(f["id"] == "wait_timeout_short");
    CHECK(f["severity"] == "critical");
    CHECK(f["causes"] == nlohmann::ordered_json::array({2}));
    CHECK(f["step"] == 1);
    CHECK(f["evidence"][0].contains("name"));
    CHECK(f["fix"][0]["kind"] == "my.cnf");
    CHECK(j["summary"]["critical"] == 1);
    CHECK(j["summary"]["fail_on"] == "warning");

    const auto e = error_json("lifeline-doctor", "access_denied", "access denied for user 'app'", 1045, "Access denied");
    CHECK(e["exit_code"] == 2);
    CHECK(e["error"]["kind"] == "access_denied");
    CHECK(e["error"]["code"] == 1045);

    const std::string text = to_text(r);
    CHECK(text.find("CRITICAL  wait_timeout_short  [cause 2; step 1]") != std::string::npos);
    CHECK(text.find("mysql://app@127.0.0.1:3306/shop") != std::string::npos);
    CHECK(text.find("Exit code 1") != std::string::npos);
}
