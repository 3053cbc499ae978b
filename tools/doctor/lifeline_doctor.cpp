// lifeline-doctor — the article's troubleshooting steps for error 2013, run against a live server
// in one command:
//
//   lifeline-doctor mysql://app@db.example:3306/shop --password-env DB_PASSWORD [--json]
//                   [--deadline 30s --pool-idle-timeout 10m --longest-statement 45s ...]
//                   [--idle-probe 120s]
//
// It gathers (settings, status counters, the error log's tail, round trips, an optional idle
// probe), hands everything to lifeline::doctor::diagnose() (include/lifeline/doctor.hpp: the rules,
// pure and unit-tested) and prints the findings. Exit code: 0 nothing at or above --fail-on
// (default: warning), 1 findings, 2 could not run (bad arguments, unreachable server, access
// denied). The password (DSN, --password-env, --defaults-file, MYSQL_PWD) is never printed.
#include "option_file.hpp"
#include "report.hpp"

#include <lifeline/detail/socket_probe.hpp>
#include <lifeline/doctor.hpp>
#include <lifeline/driver/capi.hpp>
#include <lifeline/options.hpp>

#include <CLI/CLI.hpp>
#include <mysql.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace doc = lifeline::doctor;
using traits = lifeline::driver_traits<lifeline::capi>;
using session = traits::session_type;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* tool_name = "lifeline-doctor 0.1.0";

// The one call site of lifeline::parse_dsn (its message never contains the password).
bool read_dsn(const std::string& dsn, lifeline::connect_options& out, std::string& why) {
    std::error_code ec;
    lifeline::diagnostics d;
    out = lifeline::parse_dsn(dsn, ec, d);
    if (ec) why = "invalid DSN: " + d.client_message;
    return !ec;
}

// Exit code 2, with a message on stderr (and the same as JSON on stdout with --json).
struct cannot_run {
    cannot_run(std::string k, std::string m, unsigned c = 0, std::string dm = {})
        : kind(std::move(k)), message(std::move(m)), code(c), driver_message(std::move(dm)) {}
    std::string kind;
    std::string message;
    unsigned code = 0;
    std::string driver_message;
};

double ms_since(clock_type::time_point t) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

doc::timing summarize(std::vector<double> samples) {
    doc::timing t;
    if (samples.empty()) return t;
    std::sort(samples.begin(), samples.end());
    t.samples = static_cast<unsigned>(samples.size());
    t.max_ms = samples.back();
    const std::size_t n = samples.size();
    t.median_ms = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
    return t;
}

bool lost_connection(unsigned code) { return code == 2006 || code == 2013 || code == 2055 || code == 2002; }

// --- gathering --------------------------------------------------------------------------------

// Names the rules read (lower case). Unknown names are simply absent from the answer.
const char* const variable_names[] = {
    "version", "version_comment", "hostname", "port", "datadir", "log_error", "log_warnings",
    "log_error_verbosity", "net_read_timeout", "net_write_timeout", "wait_timeout", "interactive_timeout",
    "connect_timeout", "max_allowed_packet", "max_connections", "max_statement_time", "max_execution_time",
    "innodb_lock_wait_timeout", "slow_query_log", "slow_query_log_file", "long_query_time", "log_output",
    "read_only", "wsrep_on", "tcp_keepalive_time", "tcp_keepalive_interval", "tcp_keepalive_probes"};
const char* const status_names[] = {"Uptime", "Aborted_clients", "Aborted_connects", "Connections",
                                    "Max_used_connections", "Threads_connected", "Max_statement_time_exceeded",
                                    "Max_execution_time_exceeded"};

std::string in_list(const char* const* names, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += std::string(i ? ", " : "") + "'" + names[i] + "'";
    return s;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return s;
}

// Runs a query; a lost connection is fatal (exit 2), any other error leaves `out` empty.
bool query(session& s, const std::string& sql, lifeline::result& out) {
    out = {};
    lifeline::diagnostics d;
    if (traits::execute(s, sql, &out, d)) return true;
    if (lost_connection(d.code))
        throw cannot_run{"lost", "lost the connection to the server while reading its settings (" +
                                     std::to_string(d.code) + " " + d.server_message + ")",
                         d.code, d.server_message};
    return false;
}

void read_pairs(session& s, const std::string& sql, std::map<std::string, std::string>& into) {
    lifeline::result r;
    if (!query(s, sql, r)) return;
    for (const auto& row : r.rows)
        if (row.size() >= 2 && row[0]) into[lower(*row[0])] = row[1].value_or("");
}

void gather_settings(session& s, doc::server_snapshot& snap) {
    MYSQL* m = traits::native(s);
    snap.handshake_version = mysql_get_server_info(m) ? mysql_get_server_info(m) : "";
    snap.handshake_connection_id = mysql_thread_id(m);
    lifeline::result r;
    if (query(s, "SELECT CONNECTION_ID()", r))
        if (auto v = r.scalar()) snap.sql_connection_id = std::strtoull(v->c_str(), nullptr, 10);
    const std::string vars = in_list(variable_names, std::size(variable_names));
    read_pairs(s, "SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + vars + ")", snap.global);
    read_pairs(s, "SHOW SESSION VARIABLES WHERE Variable_name IN (" + vars + ")", snap.session);
    read_pairs(s, "SHOW GLOBAL STATUS WHERE Variable_name IN (" + in_list(status_names, std::size(status_names)) + ")",
               snap.status);
    // Session copies of global-only settings add nothing: keep the session map to what can differ.
    for (const char* global_only : {"version", "version_comment", "hostname", "port", "datadir", "log_error",
                                    "slow_query_log", "slow_query_log_file", "log_output", "read_only", "wsrep_on",
                                    "max_connections", "log_warnings", "tcp_keepalive_time", "tcp_keepalive_interval",
                                    "tcp_keepalive_probes", "connect_timeout", "log_error_verbosity"})
        snap.session.erase(global_only);
}

void measure_round_trips(session& s, unsigned samples, doc::measurements& m) {
    std::vector<double> ping, select1;
    for (unsigned i = 0; i < samples; ++i) {
        auto t = clock_type::now();
        if (mysql_ping(traits::native(s)) == 0) ping.push_back(ms_since(t));
        lifeline::result r;
        t = clock_type::now();
        if (query(s, "SELECT 1", r)) select1.push_back(ms_since(t));
    }
    if (!ping.empty()) m.ping = summarize(ping);
    if (!select1.empty()) m.select1 = summarize(select1);
}

// --- the error log (step 5) ------------------------------------------------------------------

bool read_tail(const std::string& path, std::size_t max_lines, std::vector<std::string>& lines, std::string& why) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        why = "cannot read " + path + ": " + std::strerror(errno);
        return false;
    }
    constexpr std::streamoff window = 4 * 1024 * 1024;  // enough for thousands of lines
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    const bool cut = size > window;
    in.seekg(cut ? size - window : 0);
    std::string line;
    if (cut) std::getline(in, line);  // a partial first line
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
        if (lines.size() > max_lines * 2) lines.erase(lines.begin(), lines.end() - static_cast<long>(max_lines));
    }
    if (lines.size() > max_lines) lines.erase(lines.begin(), lines.end() - static_cast<long>(max_lines));
    return true;
}

std::string local_hostname() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return {};
    return buf;
}

doc::error_log_tail find_error_log(session& s, const doc::server_snapshot& snap, const std::string& override_path,
                                   std::size_t max_lines) {
    doc::error_log_tail t;
    if (!override_path.empty()) {
        if (read_tail(override_path, max_lines, t.lines, t.why_not)) {
            t.source = doc::log_source::file;
            t.where = override_path;
        }
        return t;
    }
    const doc::server_version v = doc::version_of(snap);
    if (v.flavour != "MariaDB" && v.at_least(8, 0, 22)) {  // MySQL 8.0.22+: performance_schema.error_log
        lifeline::result r;
        if (query(s, "SELECT LOGGED, PRIO, ERROR_CODE, SUBSYSTEM, DATA FROM performance_schema.error_log ORDER BY LOGGED DESC LIMIT " +
                         std::to_string(max_lines),
                  r)) {
            for (auto it = r.rows.rbegin(); it != r.rows.rend(); ++it) {
                std::string line;
                for (std::size_t i = 0; i < it->size(); ++i) {
                    const std::string v2 = (*it)[i].value_or("");
                    line += i == 0 ? v2 : (i == 4 ? " " + v2 : " [" + v2 + "]");
                }
                t.lines.push_back(line);
            }
            t.source = doc::log_source::sql;
            t.where = "performance_schema.error_log";
            return t;
        }
        t.why_not = "performance_schema.error_log could not be read (GRANT SELECT ON performance_schema.error_log); ";
    }
    auto get = [&](const char* k) {
        auto it = snap.global.find(k);
        return it == snap.global.end() ? std::string() : it->second;
    };
    const std::string log_error = get("log_error"), datadir = get("datadir"), hostname = get("hostname");
    const bool local = snap.via_socket || doc::detail::is_loopback(snap.dsn_host) ||
                       (!hostname.empty() && hostname == local_hostname());
    if (!local) {
        t.why_not += "the server runs on another machine (" + (hostname.empty() ? snap.dsn_host : hostname) + ") and " +
                     v.flavour + " offers no SQL access to its error log; pass --error-log <copy>";
        return t;
    }
    if (log_error.empty() || log_error == "stderr") {
        t.why_not += "the server writes its error log to stderr (usually the systemd journal: journalctl -u mariadb)";
        return t;
    }
    std::string path = log_error;
    if (path.front() != '/') {
        if (path.rfind("./", 0) == 0) path = path.substr(2);
        path = datadir + (datadir.empty() || datadir.back() == '/' ? "" : "/") + path;
    }
    std::string why;
    if (read_tail(path, max_lines, t.lines, why)) {
        t.source = doc::log_source::file;
        t.where = path;
        t.why_not.clear();
    } else {
        t.why_not += why;
    }
    return t;
}

// --- the idle probe (cause 5) -----------------------------------------------------------------

// One connection per idle time, all opened together; each waits its time and is probed once in
// its own thread, so the probe takes the longest idle time plus one probe timeout, not the sum.
void run_idle_probe(const lifeline::connect_options& base, milliseconds limit, milliseconds probe_timeout,
                    milliseconds connect_budget, doc::measurements& m) {
    // The driver's read timeout counts whole seconds (rounded up): that is the real probe timeout.
    const milliseconds timeout(std::max<long long>(1, (probe_timeout.count() + 999) / 1000) * 1000);
    m.idle_probe_ran = true;
    m.idle_probe_limit = limit;
    m.probe_timeout = timeout;
    const auto plan = doc::idle_probe_schedule(limit);
    lifeline::connect_options o = base;
    o.io_timeout = timeout;
    std::vector<session> conns(plan.size());
    std::vector<clock_type::time_point> since(plan.size());
    m.probes.assign(plan.size(), doc::idle_probe{});
    for (std::size_t i = 0; i < plan.size(); ++i) {
        m.probes[i].planned = plan[i];
        lifeline::diagnostics d;
        if (!traits::connect(conns[i], o, connect_budget, d)) {
            m.probes[i].outcome = doc::probe_outcome::failed;
            m.probes[i].code = d.code;
            m.probes[i].message = d.server_message;
            continue;
        }
        since[i] = clock_type::now();  // the handshake was the last traffic
    }
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < plan.size(); ++i) {
        if (!traits::is_open(conns[i])) continue;
        threads.emplace_back([&, i] {
            mysql_thread_init();
            auto& p = m.probes[i];
            std::this_thread::sleep_until(since[i] + plan[i]);
            const auto start = clock_type::now();
            p.idle = std::chrono::duration_cast<milliseconds>(start - since[i]);
            const int fd = traits::socket_fd(conns[i]);
            const auto seen = lifeline::detail::probe_socket(fd);
            if (seen == lifeline::socket_status::dead || seen == lifeline::socket_status::unexpected_data) {
                p.outcome = doc::probe_outcome::closed;
                p.message = seen == lifeline::socket_status::dead ? "closed by the peer while idle"
                                                                  : "the peer sent data while idle (an error packet)";
            } else if (mysql_ping(traits::native(conns[i])) == 0) {
                p.outcome = doc::probe_outcome::alive;
            } else {
                MYSQL* h = traits::native(conns[i]);
                p.code = mysql_errno(h);
                p.message = mysql_error(h);
                const auto took = clock_type::now() - start;
                // No answer at all for the whole read timeout: nobody closed it, it was dropped.
                p.outcome = lost_connection(p.code) && took >= timeout * 9 / 10 ? doc::probe_outcome::silent
                                                                                : doc::probe_outcome::closed;
            }
            p.answered_after = std::chrono::duration_cast<milliseconds>(clock_type::now() - start);
            mysql_thread_end();
        });
    }
    for (auto& t : threads) t.join();
}

// --- the command line --------------------------------------------------------------------------

CLI::Validator duration_check() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
            milliseconds d{};
            return doc::parse_duration(s, d) ? std::string() : "'" + s + "' is not a duration (e.g. 30s, 500ms, 10m, 1h)";
        },
        "DURATION");
}
CLI::Validator size_check() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
            std::uint64_t v = 0;
            return doc::parse_size(s, v) ? std::string() : "'" + s + "' is not a size (e.g. 16M, 1G, 65536)";
        },
        "SIZE");
}
milliseconds dur(const std::string& s) {
    milliseconds d{};
    doc::parse_duration(s, d);
    return d;
}
std::uint64_t size_of(const std::string& s) {
    std::uint64_t v = 0;
    doc::parse_size(s, v);
    return v;
}

struct cli_options {
    std::string dsn, password_env, defaults_file, error_log, fail_on = "warning";
    std::string deadline, io_timeout, connect_timeout, pool_idle_timeout, max_lifetime, ping_after_idle;
    std::string client_max_allowed_packet, largest_statement, longest_statement;
    std::string idle_probe, probe_timeout = "5s", recent_restart = "1h", timeout = "10s";
    unsigned samples = 5;
    std::size_t log_lines = 5000;
    bool json = false, no_error_log = false;
};

// The password: DSN, then --password-env, then --defaults-file, then MYSQL_PWD. Never printed.
std::string resolve_password(const cli_options& o, const std::string& from_dsn) {
    if (!from_dsn.empty()) {
        std::cerr << "lifeline-doctor: note: the DSN carries a password, which other users can see in the process "
                     "list; prefer --password-env or --defaults-file\n";
        return from_dsn;
    }
    if (!o.password_env.empty()) {
        const char* v = std::getenv(o.password_env.c_str());
        if (!v) throw cannot_run{"password", "--password-env " + o.password_env + ": that environment variable is not set"};
        return v;
    }
    if (!o.defaults_file.empty()) {
        std::ifstream in(o.defaults_file);
        if (!in)
            throw cannot_run{"password", "--defaults-file " + o.defaults_file + ": cannot read it (" +
                                             std::strerror(errno) + ")"};
        if (auto p = doc::option_file_password(in)) return *p;
        throw cannot_run{"password", "--defaults-file " + o.defaults_file +
                                         ": no password= in its [client] or [lifeline-doctor] group"};
    }
    if (const char* v = std::getenv("MYSQL_PWD")) return v;
    return {};
}

int run(const cli_options& o) {
    lifeline::connect_options target_opts;
    std::string why;
    if (!read_dsn(o.dsn, target_opts, why)) throw cannot_run{"invalid_dsn", why};
    doc::target where{target_opts.host, target_opts.port, target_opts.user, target_opts.database,
                      target_opts.unix_socket};
    target_opts.password = resolve_password(o, target_opts.password);

    // The client side: lifeline's defaults, then the DSN's own options, then the flags.
    doc::client_profile client;
    client.connect_timeout = target_opts.connect_timeout;
    client.io_timeout = target_opts.io_timeout;
    if (!o.deadline.empty()) client.deadline = dur(o.deadline);
    if (!o.io_timeout.empty()) client.io_timeout = dur(o.io_timeout);
    if (!o.connect_timeout.empty()) client.connect_timeout = dur(o.connect_timeout);
    if (!o.pool_idle_timeout.empty()) client.pool_idle_timeout = dur(o.pool_idle_timeout);
    if (!o.max_lifetime.empty()) client.max_lifetime = dur(o.max_lifetime);
    if (!o.ping_after_idle.empty()) client.ping_after_idle = dur(o.ping_after_idle);
    if (!o.client_max_allowed_packet.empty()) client.client_max_allowed_packet = size_of(o.client_max_allowed_packet);
    if (!o.largest_statement.empty()) client.largest_statement = size_of(o.largest_statement);
    if (!o.longest_statement.empty()) client.longest_statement = dur(o.longest_statement);

    // The doctor's own bounds: every connect and read of its own is limited by --timeout.
    const milliseconds own_timeout = dur(o.timeout);
    lifeline::connect_options mine = target_opts;
    mine.connect_timeout = own_timeout;
    mine.io_timeout = own_timeout;

    doc::report rep;
    rep.tool = tool_name;
    rep.where = where;
    rep.client = client;
    doc::parse_severity(o.fail_on, rep.fail_on);
    auto& snap = rep.snapshot;
    snap.dsn_host = where.host;
    snap.dsn_port = where.port;
    snap.via_socket = !where.socket.empty();

    {
        session main;
        lifeline::diagnostics d;
        const auto t0 = clock_type::now();
        if (!traits::connect(main, mine, own_timeout, d))
            throw cannot_run{d.code == 1045 ? "access_denied" : "connect",
                             doc::explain_connect_failure(d.code, d.server_message, where.host, where.port,
                                                          where.socket, where.user),
                             d.code, d.server_message};
        rep.measured.connect_ms = ms_since(t0);
        gather_settings(main, snap);
        measure_round_trips(main, o.samples, rep.measured);
        if (o.no_error_log) snap.error_log.why_not = "--no-error-log";
        else snap.error_log = find_error_log(main, snap, o.error_log, o.log_lines);
    }  // closed before the idle probe: nothing of ours stays idle behind a firewall

    if (!o.idle_probe.empty() && dur(o.idle_probe).count() > 0)
        run_idle_probe(mine, dur(o.idle_probe), dur(o.probe_timeout), own_timeout, rep.measured);

    doc::rule_settings rules;
    rules.recent_restart = dur(o.recent_restart);
    rep.findings = doc::diagnose(snap, client, rep.measured, rules);
    rep.exit_code = doc::exit_code_for(rep.findings, rep.fail_on);
    if (o.json) std::cout << doc::to_json(rep).dump(2) << "\n";
    else std::cout << doc::to_text(rep);
    return rep.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    cli_options o;
    CLI::App app{"lifeline-doctor: the troubleshooting steps for MySQL/MariaDB error 2013 (lost connection during "
                 "query), run against a live server. Exit code 0: nothing found at or above --fail-on; 1: findings; "
                 "2: could not run.",
                 "lifeline-doctor"};
    app.set_version_flag("--version", tool_name);
    app.add_option("dsn", o.dsn,
                   "mysql://user@host:port/schema[?connect_timeout=5s&io_timeout=30s&socket=/path] — the DSN "
                   "your service uses; its options describe the client side")
        ->required();
    auto* auth = app.add_option_group("password", "where the password comes from (never printed)");
    auth->add_option("--password-env", o.password_env, "read the password from this environment variable");
    auth->add_option("--defaults-file", o.defaults_file, "read password= from the [client] group of this option file");
    app.add_flag("--json", o.json, "print the report as JSON (schema lifeline-doctor/1)");
    app.add_option("--fail-on", o.fail_on, "lowest severity that makes the exit code 1")
        ->check(CLI::IsMember({"info", "warning", "critical"}))
        ->capture_default_str();

    auto* client = app.add_option_group("client side", "the application's settings (defaults: lifeline's own)");
    client->add_option("--deadline", o.deadline, "per-call deadline (lifeline retry_policy.deadline; default 30s)")
        ->check(duration_check());
    client->add_option("--io-timeout", o.io_timeout, "driver read/write timeout (connect_options.io_timeout; 30s)")
        ->check(duration_check());
    client->add_option("--connect-timeout", o.connect_timeout, "connect timeout (connect_options.connect_timeout; 5s)")
        ->check(duration_check());
    client->add_option("--pool-idle-timeout", o.pool_idle_timeout, "pool idle timeout (pool_options.idle_timeout; 10m)")
        ->check(duration_check());
    client->add_option("--max-lifetime", o.max_lifetime, "connection max lifetime (health_policy.max_lifetime; 30m)")
        ->check(duration_check());
    client->add_option("--ping-after-idle", o.ping_after_idle, "ping after this idle time (health_policy; 1s)")
        ->check(duration_check());
    client->add_option("--client-max-allowed-packet", o.client_max_allowed_packet,
                       "the connector's own max_allowed_packet, if the application sets one")
        ->check(size_check());
    client->add_option("--largest-statement", o.largest_statement, "the largest statement or row the workload sends")
        ->check(size_check());
    client->add_option("--longest-statement", o.longest_statement, "the longest statement the workload runs")
        ->check(duration_check());

    auto* probe = app.add_option_group("measurements", "what the doctor measures and how long it may take");
    probe->add_option("--idle-probe", o.idle_probe,
                      "keep connections idle up to this long and probe them, to find a silent idle cut-off by a "
                      "firewall, NAT or proxy (e.g. 120s; off by default)")
        ->check(duration_check());
    probe->add_option("--probe-timeout", o.probe_timeout, "how long a probe waits for an answer (whole seconds)")
        ->check(duration_check())
        ->capture_default_str();
    probe->add_option("--samples", o.samples, "COM_PING and SELECT 1 round trips to time")->capture_default_str();
    probe->add_option("--timeout", o.timeout, "bound on each of the doctor's own connects and reads")
        ->check(duration_check())
        ->capture_default_str();
    probe->add_option("--recent-restart", o.recent_restart, "an uptime below this counts as a recent restart")
        ->check(duration_check())
        ->capture_default_str();
    probe->add_option("--error-log", o.error_log, "read this error log file instead of looking for @@log_error");
    probe->add_flag("--no-error-log", o.no_error_log, "do not look at the error log");
    probe->add_option("--log-lines", o.log_lines, "how many lines of the error log's tail to read")->capture_default_str();

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    }
    if (o.samples == 0) o.samples = 1;

    mysql_library_init(0, nullptr, nullptr);
    int code = 2;
    try {
        code = run(o);
    } catch (const cannot_run& e) {
        std::cerr << "lifeline-doctor: " << e.message << "\n";
        if (o.json) std::cout << doc::error_json(tool_name, e.kind, e.message, e.code, e.driver_message).dump(2) << "\n";
        code = 2;
    } catch (const std::exception& e) {
        std::cerr << "lifeline-doctor: " << e.what() << "\n";
        if (o.json) std::cout << doc::error_json(tool_name, "internal", e.what()).dump(2) << "\n";
        code = 2;
    }
    mysql_library_end();
    return code;
}
