// lifeline — the doctor's rules: findings from what a server says about itself, what the client is
// configured to do, and what was measured. A pure function (no I/O, no clock), so every rule is
// unit-tested without a server; `lifeline-doctor` (tools/doctor/) only gathers the inputs, calls
// diagnose() and prints.
//
//   lifeline::doctor::server_snapshot s;        // SHOW VARIABLES / STATUS, the error log's tail
//   lifeline::doctor::client_profile c;         // defaults: lifeline's own documented defaults
//   lifeline::doctor::measurements m;           // connect time, round trips, idle probe
//   for (const auto& f : lifeline::doctor::diagnose(s, c, m)) ...
//
// Each finding names the article's causes (1-7, "How to Fix MySQL Error 2013") and troubleshooting
// step (1-7) it belongs to, the evidence (the values it was decided from) and the concrete fixes: a
// my.cnf line, an SQL statement, or a lifeline option. Findings come ordered by severity.
#ifndef LIFELINE_DOCTOR_HPP
#define LIFELINE_DOCTOR_HPP

#include <lifeline/health.hpp>
#include <lifeline/options.hpp>
#include <lifeline/policy.hpp>
#include <lifeline/pool.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lifeline::doctor {

using std::chrono::milliseconds;

enum class severity : std::uint8_t { info, warning, critical };

constexpr std::string_view to_string(severity s) noexcept {
    switch (s) {
    case severity::info: return "info";
    case severity::warning: return "warning";
    case severity::critical: return "critical";
    }
    return "info";
}

// "info" / "warning" / "critical" -> severity; false for anything else.
inline bool parse_severity(std::string_view text, severity& out) noexcept {
    for (severity s : {severity::info, severity::warning, severity::critical})
        if (text == to_string(s)) {
            out = s;
            return true;
        }
    return false;
}

enum class fix_kind : std::uint8_t {
    my_cnf,    // lines for the server's option file ([mysqld] section)
    sql,       // a statement to run (SET GLOBAL/SESSION ...)
    lifeline,  // a lifeline option or call
    action,    // something to do or look at (a command, a check)
};

constexpr std::string_view to_string(fix_kind k) noexcept {
    switch (k) {
    case fix_kind::my_cnf: return "my.cnf";
    case fix_kind::sql: return "sql";
    case fix_kind::lifeline: return "lifeline";
    case fix_kind::action: return "action";
    }
    return "action";
}

struct fix {
    fix_kind kind = fix_kind::action;
    std::string text;
};

struct evidence_item {
    std::string name;
    std::string value;
};

struct finding {
    std::string id;                      // stable identifier, e.g. "wait_timeout_short"
    severity level = severity::info;
    std::vector<int> causes;             // the article's causes (1-7); empty: related, not one of them
    int step = 0;                        // the article's troubleshooting step (1-7)
    std::string title;                   // one sentence: what is wrong and what it does
    std::vector<evidence_item> evidence;  // the values it was decided from
    std::vector<fix> fixes;
};

// Where the server's error log tail came from, or why it could not be read.
enum class log_source : std::uint8_t { none, sql, file };

constexpr std::string_view to_string(log_source s) noexcept {
    switch (s) {
    case log_source::none: return "none";
    case log_source::sql: return "sql";
    case log_source::file: return "file";
    }
    return "none";
}

struct error_log_tail {
    log_source source = log_source::none;
    std::string where;                // the file's path, or the table read
    std::string why_not;              // source == none: why the doctor could not look
    std::vector<std::string> lines;   // oldest first
};

// What the server said about itself. Variable and status names are lower case; values verbatim.
// A missing name means the server does not have it (e.g. max_statement_time on MySQL) or did not
// say (privileges): rules then stay silent rather than guess.
struct server_snapshot {
    std::map<std::string, std::string> global;   // SHOW GLOBAL VARIABLES
    std::map<std::string, std::string> session;  // SHOW SESSION VARIABLES: what an application session gets
    std::map<std::string, std::string> status;   // SHOW GLOBAL STATUS
    std::string handshake_version;               // the version the handshake announced
    std::uint64_t handshake_connection_id = 0;   // the connection id the handshake announced
    std::uint64_t sql_connection_id = 0;         // SELECT CONNECTION_ID()
    // How the doctor reached it.
    std::string dsn_host;
    unsigned dsn_port = 0;
    bool via_socket = false;
    error_log_tail error_log;
};

// The client side: what the application is configured to do. Defaults are lifeline's own.
struct client_profile {
    milliseconds deadline = retry_policy{}.deadline;                    // per call (retry_policy.deadline)
    milliseconds io_timeout = connect_options{}.io_timeout;             // driver read/write timeout
    std::chrono::seconds tcp_keepalive_idle = connect_options{}.tcp_keepalive_idle;  // 0: keepalive left to the OS
    milliseconds connect_timeout = connect_options{}.connect_timeout;
    milliseconds pool_idle_timeout = pool_options{}.idle_timeout;       // pool_options.idle_timeout
    milliseconds max_lifetime = std::chrono::duration_cast<milliseconds>(health_policy{}.max_lifetime);
    milliseconds ping_after_idle = std::chrono::duration_cast<milliseconds>(health_policy{}.ping_after_idle);
    double wait_timeout_margin = health_policy{}.wait_timeout_margin;   // recycle at this share of wait_timeout
    // The connector's own max_allowed_packet, when the application sets one (lifeline itself
    // follows the server's value, read at connect).
    std::optional<std::uint64_t> client_max_allowed_packet;
    std::optional<std::uint64_t> largest_statement;   // the biggest statement/row the workload sends
    std::optional<milliseconds> longest_statement;    // the longest statement the workload runs
};

// Round trips measured on one connection.
struct timing {
    double median_ms = 0;
    double max_ms = 0;
    unsigned samples = 0;
};

enum class probe_outcome : std::uint8_t {
    alive,   // answered
    closed,  // the peer closed or reset the idle connection (seen before or at the probe)
    silent,  // no answer within the probe timeout: dropped without FIN or RST
    failed,  // could not probe (e.g. the connection could not be opened)
};

constexpr std::string_view to_string(probe_outcome o) noexcept {
    switch (o) {
    case probe_outcome::alive: return "alive";
    case probe_outcome::closed: return "closed";
    case probe_outcome::silent: return "silent";
    case probe_outcome::failed: return "failed";
    }
    return "failed";
}

// One connection left idle, then probed once.
struct idle_probe {
    milliseconds planned{0};  // the idle time asked for
    milliseconds idle{0};     // the idle time it really had when probed (from its last round trip)
    probe_outcome outcome = probe_outcome::failed;
    milliseconds answered_after{0};  // how long the probe took
    unsigned code = 0;               // the driver's error number, if any
    std::string message;             // the driver's text, if any
};

struct measurements {
    std::optional<double> connect_ms;  // TCP + handshake + authentication
    std::optional<timing> ping;        // COM_PING
    std::optional<timing> select1;     // SELECT 1
    bool idle_probe_ran = false;
    milliseconds idle_probe_limit{0};  // --idle-probe
    milliseconds probe_timeout{0};     // how long a probe waited for an answer
    std::vector<idle_probe> probes;    // ascending planned idle time
};

struct rule_settings {
    // Uptime below this counts as a recent (re)start.
    milliseconds recent_restart = std::chrono::hours(1);
};

// ------------------------------------------------------------------------------------------------
// Parsing and formatting of the values the doctor reads and prints.

// "500ms", "30s", "10m", "1h", "2d", or a plain number of seconds ("30", "0.5"). false if not.
inline bool parse_duration(std::string_view text, milliseconds& out) noexcept {
    if (text.empty()) return false;
    std::size_t i = 0;
    double value = 0;
    bool digits = false, dot = false;
    double scale = 1;
    for (; i < text.size(); ++i) {
        const char c = text[i];
        if (c >= '0' && c <= '9') {
            digits = true;
            if (dot) {
                scale /= 10;
                value += (c - '0') * scale;
            } else {
                value = value * 10 + (c - '0');
            }
            if (value > 1e12) return false;
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    if (!digits) return false;
    const std::string_view unit = text.substr(i);
    double ms = 0;
    if (unit == "ms") ms = value;
    else if (unit.empty() || unit == "s") ms = value * 1000;
    else if (unit == "m" || unit == "min") ms = value * 60'000;
    else if (unit == "h") ms = value * 3'600'000;
    else if (unit == "d") ms = value * 86'400'000;
    else return false;
    out = milliseconds(static_cast<milliseconds::rep>(std::llround(ms)));
    return true;
}

// "4096", "64K", "16M", "1G" (also "16MB", "16MiB", lower case). false if not a size.
inline bool parse_size(std::string_view text, std::uint64_t& out) noexcept {
    if (text.empty()) return false;
    std::uint64_t n = 0;
    std::size_t i = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
        n = n * 10 + static_cast<std::uint64_t>(text[i] - '0');
        if (n > (std::uint64_t{1} << 50)) return false;
    }
    if (i == 0) return false;
    std::string unit;
    for (char c : text.substr(i)) unit += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    std::uint64_t mult = 1;
    if (unit.empty() || unit == "B") mult = 1;
    else if (unit == "K" || unit == "KB" || unit == "KIB") mult = 1024;
    else if (unit == "M" || unit == "MB" || unit == "MIB") mult = 1024 * 1024;
    else if (unit == "G" || unit == "GB" || unit == "GIB") mult = 1024 * 1024 * 1024;
    else return false;
    out = n * mult;
    return true;
}

// 1500 -> "1.5 s", 600000 -> "10 min", 7200000 -> "2 h", 250 -> "250 ms".
inline std::string format_duration(milliseconds d) {
    const auto ms = d.count();
    auto trim = [](double v) {
        std::string s = std::to_string(std::round(v * 10) / 10);
        s.erase(s.find_last_not_of('0') + 1);
        if (!s.empty() && s.back() == '.') s.pop_back();
        return s;
    };
    if (ms == 0) return "0 s";
    if (ms < 1000) return std::to_string(ms) + " ms";
    if (ms < 120'000) return trim(static_cast<double>(ms) / 1000) + " s";
    if (ms < 7'200'000) return trim(static_cast<double>(ms) / 60'000) + " min";
    return trim(static_cast<double>(ms) / 3'600'000) + " h";
}

// 16777216 -> "16 MiB", 1000 -> "1000 bytes".
inline std::string format_size(std::uint64_t bytes) {
    constexpr std::uint64_t k = 1024, m = k * k, g = m * k;
    if (bytes >= g && bytes % (g / 16) == 0) return std::to_string(bytes / g) + (bytes % g ? "." + std::to_string((bytes % g) * 10 / g) : "") + " GiB";
    if (bytes >= m && bytes % (m / 16) == 0) return std::to_string(bytes / m) + (bytes % m ? "." + std::to_string((bytes % m) * 10 / m) : "") + " MiB";
    if (bytes >= k && bytes % k == 0) return std::to_string(bytes / k) + " KiB";
    return std::to_string(bytes) + " bytes";
}

// The my.cnf spelling: 67108864 -> "64M" (rounded up to a whole MiB).
inline std::string cnf_size(std::uint64_t bytes) {
    constexpr std::uint64_t m = 1024 * 1024;
    if (bytes % (m * 1024) == 0 && bytes > 0) return std::to_string(bytes / (m * 1024)) + "G";
    return std::to_string((bytes + m - 1) / m) + "M";
}

// ------------------------------------------------------------------------------------------------
// The server's flavour and version.

struct server_version {
    std::string flavour;  // "MariaDB", "MySQL", "Percona Server"
    int major = 0, minor = 0, patch = 0;
    bool at_least(int a, int b, int c) const noexcept {
        if (major != a) return major > a;
        if (minor != b) return minor > b;
        return patch >= c;
    }
};

inline server_version version_of(const server_snapshot& s) {
    server_version v;
    std::string text, comment;
    if (auto it = s.global.find("version"); it != s.global.end()) text = it->second;
    if (text.empty()) text = s.handshake_version;
    if (auto it = s.global.find("version_comment"); it != s.global.end()) comment = it->second;
    auto contains = [](const std::string& hay, std::string_view needle) {
        std::string h = hay;
        for (auto& c : h) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        return h.find(needle) != std::string::npos;
    };
    if (contains(text, "mariadb")) v.flavour = "MariaDB";
    else if (contains(comment, "percona")) v.flavour = "Percona Server";
    else v.flavour = "MySQL";
    // MariaDB before 11 behind old proxies: "5.5.5-10.11.6-MariaDB"; skip the fake prefix.
    std::string_view t = text;
    if (t.rfind("5.5.5-", 0) == 0 && v.flavour == "MariaDB") t.remove_prefix(6);
    int* parts[] = {&v.major, &v.minor, &v.patch};
    std::size_t i = 0;
    for (int* p : parts) {
        int n = 0;
        bool any = false;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
            n = n * 10 + (t[i] - '0');
            any = true;
            ++i;
        }
        if (!any) break;
        *p = n;
        if (i < t.size() && t[i] == '.') ++i;
        else break;
    }
    return v;
}

// The flavour's default max_allowed_packet: MariaDB 10.2.4+ 16 MiB, MySQL 8.0.3+ 64 MiB, else 4 MiB.
inline std::uint64_t default_max_allowed_packet(const server_version& v) noexcept {
    if (v.flavour == "MariaDB") return v.at_least(10, 2, 4) ? 16u * 1024 * 1024 : 4u * 1024 * 1024;
    return v.at_least(8, 0, 3) ? 64u * 1024 * 1024 : 4u * 1024 * 1024;
}

// ------------------------------------------------------------------------------------------------
// What the error log's tail says (the article's step 5: "Aborted|killed|crash|OOM", and more).

struct log_facts {
    std::size_t lines = 0;
    std::size_t starts = 0;                 // server starts seen in the tail
    std::optional<std::string> last_start;  // the line of the latest start
    // Whether the run before the latest start ended cleanly ("Shutdown complete"); unset when the
    // tail holds no earlier run to judge.
    std::optional<bool> clean_stop_before_last_start;
    std::vector<std::string> last_start_recovery;  // crash-recovery lines after the latest start
    std::vector<std::string> unclean_stops;        // starts that followed a run with no clean shutdown
    std::vector<std::string> crash_lines;          // signals, assertions, OOM, "killed", "crash"
    std::size_t aborted_connections = 0;           // "Aborted connection ..." lines
    std::map<std::string, std::size_t> aborted_reasons;  // the text in parentheses -> count
    std::optional<std::string> aborted_sample;
};

namespace detail {

inline std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return out;
}

inline bool has(const std::string& lowered, std::string_view needle) { return lowered.find(needle) != std::string::npos; }

// Long lines are cut for evidence; the file keeps them whole.
inline std::string clip(const std::string& line, std::size_t max = 240) {
    if (line.size() <= max) return line;
    return line.substr(0, max) + "...";
}

}  // namespace detail

inline log_facts analyze_error_log(const std::vector<std::string>& lines) {
    using detail::has;
    log_facts f;
    f.lines = lines.size();
    // A run starts with "Starting MariaDB 10..." (MariaDB 10.4+; not mysqld_safe's "Starting
    // mariadbd daemon") or "... starting as process N" (MySQL, older MariaDB); "ready for
    // connections" marks one when neither is in the tail.
    auto is_start = [](const std::string& l) {
        const auto at = l.find("starting mariadb ");
        if (at != std::string::npos && at + 17 < l.size() && l[at + 17] >= '0' && l[at + 17] <= '9') return true;
        return has(l, "starting as process");
    };
    std::vector<std::size_t> starts, ready;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string l = detail::lower(lines[i]);
        if (is_start(l)) starts.push_back(i);
        if (has(l, "ready for connections")) ready.push_back(i);
    }
    if (starts.empty()) starts = ready;
    f.starts = starts.size();
    auto any_between = [&](std::size_t from, std::size_t to, std::string_view needle) {
        for (std::size_t i = from; i < to; ++i)
            if (has(detail::lower(lines[i]), needle)) return true;
        return false;
    };
    for (std::size_t k = 0; k < starts.size(); ++k) {
        // Judge only when the tail shows the run before this start (it may begin mid-run).
        const std::size_t prev = k == 0 ? 0 : starts[k - 1];
        const bool earlier_run = k > 0 || any_between(0, starts[k], "ready for connections");
        if (!earlier_run) continue;
        const bool clean = any_between(prev, starts[k], "shutdown complete");
        if (!clean) f.unclean_stops.push_back(detail::clip(lines[starts[k]]));
        if (k + 1 == starts.size()) f.clean_stop_before_last_start = clean;
    }
    if (!starts.empty()) {
        f.last_start = detail::clip(lines[starts.back()]);
        for (std::size_t i = starts.back(); i < lines.size(); ++i) {
            const std::string l = detail::lower(lines[i]);
            if (has(l, "crash recovery") || has(l, "starting recovery") || has(l, "recovered pages"))
                f.last_start_recovery.push_back(detail::clip(lines[i]));
        }
    }
    for (const auto& line : lines) {
        const std::string l = detail::lower(line);
        if (has(l, "aborted connection")) {
            ++f.aborted_connections;
            std::string reason = "unknown";
            auto open = line.rfind('('), close = line.rfind(')');
            if (open != std::string::npos && close != std::string::npos && close > open)
                reason = line.substr(open + 1, close - open - 1);
            ++f.aborted_reasons[reason];
            if (!f.aborted_sample) f.aborted_sample = detail::clip(line);
            continue;
        }
        if (has(l, "got signal") || has(l, "assertion") || has(l, "out of memory") || has(l, " oom") ||
            has(l, "oom-kill") || has(l, "killed process") || has(l, "segmentation fault") || has(l, "killed") ||
            (has(l, "crash") && !has(l, "crash recovery") && !has(l, "crash_safe") && !has(l, "crash-safe")))
            f.crash_lines.push_back(detail::clip(line));
    }
    return f;
}

// ------------------------------------------------------------------------------------------------
// Why a connection attempt failed, in words a person can act on (the doctor's exit code 2).
// Never includes a password: the inputs are the driver's number and text, the host and the user.
inline std::string explain_connect_failure(unsigned code, const std::string& driver_text, const std::string& host,
                                           unsigned port, const std::string& socket, const std::string& user) {
    const std::string where = socket.empty() ? host + ":" + std::to_string(port) : "socket " + socket;
    switch (code) {
    case 1045:
        return "access denied for user '" + user + "' at " + where +
               ": wrong password, or no such account for this client host. Check the password source "
               "(--password-env, --defaults-file, MYSQL_PWD) and the account's host part (SELECT user, host "
               "FROM mysql.user). The password is never shown.";
    case 1044:
    case 1142:
        return "access denied: user '" + user + "' may log in but not use the requested schema; drop the /schema "
               "part of the DSN or GRANT access to it";
    case 1049: return "the schema in the DSN does not exist on " + where + "; fix the DSN's /schema part";
    case 1040:
        return "the server at " + where + " refused the connection: too many connections (max_connections reached)";
    case 1129:
        return "the server at " + where + " blocks this host after too many failed connects (max_connect_errors); "
               "run FLUSH HOSTS on the server";
    case 1130: return "the server at " + where + " does not allow user '" + user + "' to connect from this host";
    case 2002:
    case 2003:
        if (!socket.empty())
            return "no server answers on socket " + socket + ": is it running, and is this its socket path?";
        return "cannot reach " + where + " (connection refused or unreachable): is the server running and listening "
               "on that address (bind_address) and port, and does no firewall reject it?";
    case 2005: return "unknown host '" + host + "': the name does not resolve; fix the DSN's host";
    case 2012:
    case 2013:
        return "reached " + where + " but no handshake arrived in time: a frozen or overloaded server, a firewall "
               "dropping the traffic, or a port that belongs to another service";
    case 2026: return "the TLS handshake with " + where + " failed: check the server's certificates and TLS versions";
    default: break;
    }
    return "cannot connect to " + where + ": " + (driver_text.empty() ? "error " + std::to_string(code) : driver_text);
}

// ------------------------------------------------------------------------------------------------
// The rules.

namespace detail {

inline const std::string* find_value(const std::map<std::string, std::string>& m, const std::string& name) {
    auto it = m.find(name);
    return it == m.end() ? nullptr : &it->second;
}

inline std::optional<double> as_number(const std::string* v) {
    if (!v || v->empty()) return std::nullopt;
    char* end = nullptr;
    const double d = std::strtod(v->c_str(), &end);
    if (end == v->c_str()) return std::nullopt;
    return d;
}

inline std::optional<bool> as_flag(const std::string* v) {
    if (!v) return std::nullopt;
    const std::string l = lower(*v);
    if (l == "on" || l == "1" || l == "yes" || l == "true") return true;
    if (l == "off" || l == "0" || l == "no" || l == "false") return false;
    return std::nullopt;
}

// The value an application session sees: the session value, else the global one.
inline std::optional<double> effective(const server_snapshot& s, const std::string& name) {
    if (auto v = as_number(find_value(s.session, name))) return v;
    return as_number(find_value(s.global, name));
}
inline std::optional<double> global_number(const server_snapshot& s, const std::string& name) {
    return as_number(find_value(s.global, name));
}
inline std::optional<double> status_number(const server_snapshot& s, const std::string& name) {
    return as_number(find_value(s.status, name));
}

inline std::string num(double v) {
    if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}
inline std::string secs(double s) { return num(s) + " s"; }
inline long long ceil_s(milliseconds d) { return static_cast<long long>((d.count() + 999) / 1000); }
inline milliseconds from_s(double s) { return milliseconds(static_cast<long long>(std::llround(s * 1000))); }

// Session and global value as evidence ("2 s" or "2 s (global 28800 s)").
inline std::string session_and_global(const server_snapshot& s, const std::string& name, bool seconds = true) {
    auto sv = as_number(find_value(s.session, name));
    auto gv = as_number(find_value(s.global, name));
    auto fmt = [&](double v) { return seconds ? secs(v) : num(v); };
    if (sv && gv && *sv != *gv) return fmt(*sv) + " (global " + fmt(*gv) + ")";
    if (sv) return fmt(*sv);
    if (gv) return fmt(*gv);
    return "unknown";
}

inline std::string lifeline_session_fix(const std::string& set) {
    return "db.session().statements.push_back(\"" + set + "\");  // replayed on every reconnect";
}

inline bool is_loopback(const std::string& host) {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

class rulebook {
public:
    rulebook(const server_snapshot& s, const client_profile& c, const measurements& m, const rule_settings& r)
        : s_(s), c_(c), m_(m), r_(r), version_(version_of(s)), log_(analyze_error_log(s.error_log.lines)) {}

    std::vector<finding> run() {
        net_timeouts();
        wait_timeout();
        interactive_timeout();
        packet_size();
        restart_and_log();
        counters();
        idle_probe_results();
        keepalive();
        client_side();
        statement_time();
        slow_log();
        failover();
        proxy();
        lock_wait();
        std::stable_sort(out_.begin(), out_.end(), [](const finding& a, const finding& b) {
            if (a.level != b.level) return a.level > b.level;
            const int ca = a.causes.empty() ? 99 : a.causes.front();
            const int cb = b.causes.empty() ? 99 : b.causes.front();
            return ca < cb;
        });
        return std::move(out_);
    }

private:
    finding& add(std::string id, severity level, std::vector<int> causes, int step, std::string title) {
        finding f;
        f.id = std::move(id);
        f.level = level;
        f.causes = std::move(causes);
        f.step = step;
        f.title = std::move(title);
        out_.push_back(std::move(f));
        return out_.back();
    }
    static void ev(finding& f, std::string name, std::string value) { f.evidence.push_back({std::move(name), std::move(value)}); }
    static void fx(finding& f, fix_kind k, std::string text) { f.fixes.push_back({k, std::move(text)}); }

    double deadline_s() const { return static_cast<double>(c_.deadline.count()) / 1000.0; }

    // Cause 1: the server gives up on a client that is slow to send (net_read_timeout) or to read
    // (net_write_timeout) a packet.
    void net_timeouts() {
        if (auto r = effective(s_, "net_read_timeout"); r && *r < 30) {
            const long long want = std::max<long long>(30, ceil_s(c_.deadline));
            auto& f = add("net_read_timeout_short", severity::warning, {1}, 1,
                          "net_read_timeout is " + secs(*r) +
                              ", below the default 30 s: a client that pauses while sending a large statement or "
                              "LOAD DATA is cut off with 2013");
            ev(f, "net_read_timeout", session_and_global(s_, "net_read_timeout"));
            fx(f, fix_kind::my_cnf, "[mysqld]\nnet_read_timeout = " + std::to_string(want));
            fx(f, fix_kind::sql, "SET GLOBAL net_read_timeout = " + std::to_string(want) + ";");
            fx(f, fix_kind::lifeline, lifeline_session_fix("SET SESSION net_read_timeout = " + std::to_string(want)));
        }
        if (auto w = effective(s_, "net_write_timeout"); w && (*w < 60 || *w < deadline_s())) {
            const long long want = std::max<long long>(60, ceil_s(c_.deadline));
            std::string why = *w < deadline_s()
                                  ? "net_write_timeout (" + secs(*w) + ") is shorter than the client's deadline (" +
                                        format_duration(c_.deadline) +
                                        "): a result the client reads slowly is cut off by the server with 2013 "
                                        "before the client would give up"
                                  : "net_write_timeout is " + secs(*w) +
                                        ", below the default 60 s: a client that reads a large result slowly is "
                                        "cut off with 2013";
            auto& f = add("net_write_timeout_short", severity::warning, {1}, *w < deadline_s() ? 2 : 1, why);
            ev(f, "net_write_timeout", session_and_global(s_, "net_write_timeout"));
            ev(f, "client deadline", format_duration(c_.deadline));
            fx(f, fix_kind::my_cnf, "[mysqld]\nnet_write_timeout = " + std::to_string(want));
            fx(f, fix_kind::sql, "SET GLOBAL net_write_timeout = " + std::to_string(want) + ";");
            fx(f, fix_kind::lifeline, lifeline_session_fix("SET SESSION net_write_timeout = " + std::to_string(want)));
        }
    }

    // Cause 2: the server closes connections idle for wait_timeout.
    void wait_timeout() {
        auto w = effective(s_, "wait_timeout");
        if (!w) return;
        const milliseconds wait = from_s(*w);
        const milliseconds recycle_at(static_cast<long long>(static_cast<double>(wait.count()) * c_.wait_timeout_margin));
        if (*w < 60) {
            auto& f = add("wait_timeout_short", severity::critical, {2}, 1,
                          "wait_timeout is " + secs(*w) + ": the server closes every connection idle for " + secs(*w) +
                              "; the next statement on it fails with 2006 or 2013 (a pool, or a request that does "
                              "other work between statements, hits this)");
            ev(f, "wait_timeout", session_and_global(s_, "wait_timeout"));
            ev(f, "pool idle timeout", format_duration(c_.pool_idle_timeout));
            ev(f, "lifeline recycles idle connections after", format_duration(recycle_at));
            const long long want = std::max<long long>(28800, ceil_s(c_.pool_idle_timeout) * 2);
            fx(f, fix_kind::my_cnf, "[mysqld]\nwait_timeout = " + std::to_string(want));
            fx(f, fix_kind::sql, "SET GLOBAL wait_timeout = " + std::to_string(want) + ";");
            fx(f, fix_kind::lifeline, lifeline_session_fix("SET SESSION wait_timeout = " + std::to_string(want)));
            return;
        }
        if (c_.pool_idle_timeout.count() > 0 && wait < c_.pool_idle_timeout) {
            auto& f = add("wait_timeout_below_pool_idle", severity::warning, {2}, 2,
                          "wait_timeout (" + secs(*w) + ") is shorter than the pool's idle timeout (" +
                              format_duration(c_.pool_idle_timeout) +
                              "): the server closes idle pooled connections before the pool retires them; a pool "
                              "that hands one out gets 2006/2013 (lifeline recycles them at " +
                              format_duration(recycle_at) + " instead, at the cost of a reconnect)");
            ev(f, "wait_timeout", session_and_global(s_, "wait_timeout"));
            ev(f, "pool idle timeout", format_duration(c_.pool_idle_timeout));
            ev(f, "lifeline recycles idle connections after", format_duration(recycle_at));
            const double need = static_cast<double>(c_.pool_idle_timeout.count()) / 1000.0 / c_.wait_timeout_margin;
            const long long want = static_cast<long long>(std::ceil(need / 60.0)) * 60;
            fx(f, fix_kind::my_cnf, "[mysqld]\nwait_timeout = " + std::to_string(want));
            fx(f, fix_kind::lifeline,
               "pool_options.idle_timeout = std::chrono::seconds(" +
                   std::to_string(static_cast<long long>(static_cast<double>(recycle_at.count()) / 1000.0)) +
                   ");  // below the server's wait_timeout");
        }
    }

    void interactive_timeout() {
        auto it = effective(s_, "interactive_timeout");
        if (!it || *it >= 60) return;
        auto& f = add("interactive_timeout_short", severity::info, {2}, 1,
                      "interactive_timeout is " + secs(*it) +
                          ": interactive clients (the mariadb/mysql command line) are disconnected after that much "
                          "idle time; applications are not affected (they get wait_timeout)");
        ev(f, "interactive_timeout", session_and_global(s_, "interactive_timeout"));
        fx(f, fix_kind::my_cnf, "[mysqld]\ninteractive_timeout = 28800");
    }

    // Cause 3: packets larger than max_allowed_packet make the server drop the connection.
    void packet_size() {
        auto p = effective(s_, "max_allowed_packet");
        if (!p) return;
        const auto server = static_cast<std::uint64_t>(*p);
        const std::uint64_t flavour_default = default_max_allowed_packet(version_);
        bool reported = false;
        if (c_.largest_statement && *c_.largest_statement > server) {
            std::uint64_t want = std::max(flavour_default, *c_.largest_statement + *c_.largest_statement / 4);
            auto& f = add("max_allowed_packet_below_workload", severity::critical, {3}, 4,
                          "the workload's largest statement (" + format_size(*c_.largest_statement) +
                              ") exceeds the server's max_allowed_packet (" + format_size(server) +
                              "): the server answers 1153 and drops the connection; the client sees 2006/2013");
            ev(f, "max_allowed_packet", format_size(server) + " (" + num(*p) + ")");
            ev(f, "largest statement", format_size(*c_.largest_statement));
            fx(f, fix_kind::my_cnf, "[mysqld]\nmax_allowed_packet = " + cnf_size(want));
            fx(f, fix_kind::sql, "SET GLOBAL max_allowed_packet = " + std::to_string((want + 1023) / 1024 * 1024) +
                                     ";  -- new connections only");
            fx(f, fix_kind::action, "split the batch: several smaller INSERTs or LOAD DATA chunks");
            fx(f, fix_kind::lifeline,
               "lifeline refuses such a statement before sending it (errc::statement_too_large) instead of losing "
               "the connection");
            reported = true;
        }
        if (!reported && server < flavour_default) {
            auto& f = add("max_allowed_packet_small", severity::warning, {3}, 4,
                          "max_allowed_packet is " + format_size(server) + ", below " + version_.flavour +
                              "'s default " + format_size(flavour_default) +
                              ": a larger statement, row or result makes the server drop the connection (1153, "
                              "then 2006/2013)");
            ev(f, "max_allowed_packet", format_size(server) + " (" + num(*p) + ")");
            ev(f, "default for this server", format_size(flavour_default));
            fx(f, fix_kind::my_cnf, "[mysqld]\nmax_allowed_packet = " + cnf_size(flavour_default));
            fx(f, fix_kind::sql, "SET GLOBAL max_allowed_packet = " + std::to_string(flavour_default) +
                                     ";  -- new connections only");
        }
        if (c_.client_max_allowed_packet && *c_.client_max_allowed_packet != server) {
            const bool client_bigger = *c_.client_max_allowed_packet > server;
            auto& f = add("client_max_allowed_packet_mismatch", severity::warning, {3}, 4,
                          "the client's max_allowed_packet (" + format_size(*c_.client_max_allowed_packet) +
                              ") differs from the server's (" + format_size(server) + "): " +
                              (client_bigger ? "statements between the two sizes are sent, and the server drops the "
                                               "connection (1153, then 2006/2013)"
                                             : "rows or results larger than the client's limit fail on the client "
                                               "(2020) and the connection is lost"));
            ev(f, "client max_allowed_packet", format_size(*c_.client_max_allowed_packet));
            ev(f, "server max_allowed_packet", format_size(server));
            fx(f, fix_kind::action, "set the connector's max_allowed_packet to " + cnf_size(server) +
                                        " (the server's), or raise both to the same value");
            fx(f, fix_kind::my_cnf, "[mysqld]\nmax_allowed_packet = " +
                                        cnf_size(std::max(server, *c_.client_max_allowed_packet)) +
                                        "\n[client]\nmax_allowed_packet = " +
                                        cnf_size(std::max(server, *c_.client_max_allowed_packet)));
            fx(f, fix_kind::lifeline,
               "lifeline reads the server's max_allowed_packet at connect and refuses larger statements before "
               "sending them (errc::statement_too_large)");
        }
    }

    // Cause 4: a crash or an OOM kill restarts the server; every open connection gets 2013.
    void restart_and_log() {
        const auto& el = s_.error_log;
        const bool log_read = el.source != log_source::none;
        const bool unclean_last = log_facts_unclean_last();
        bool restart_critical = false;
        if (auto up = status_number(s_, "uptime")) {
            const milliseconds uptime = from_s(*up);
            if (uptime < r_.recent_restart) {
                severity level = severity::info;
                std::string title;
                if (log_read && unclean_last) {
                    level = severity::critical;
                    restart_critical = true;
                    title = "the server restarted " + format_duration(uptime) +
                            " ago after an unclean stop (a crash, the OOM killer or SIGKILL): every connection open "
                            "then lost its statement with 2013";
                } else if (!log_read) {
                    level = severity::warning;
                    title = "the server started " + format_duration(uptime) +
                            " ago, and its error log could not be read to tell a crash or OOM kill from a planned "
                            "restart";
                } else if (!log_.last_start) {
                    title = "the server started " + format_duration(uptime) +
                            " ago; the error log's tail read does not reach back to that start";
                } else {
                    title = "the server started " + format_duration(uptime) +
                            " ago; its error log shows no crash (a planned start or restart): connections open "
                            "before then were closed";
                }
                auto& f = add("recent_restart", level, {4}, 5, title);
                ev(f, "uptime", format_duration(uptime) + " (Uptime = " + num(*up) + ")");
                ev(f, "error log", log_read ? el.where : "not read: " + el.why_not);
                if (log_.last_start) ev(f, "latest start", *log_.last_start);
                if (log_.clean_stop_before_last_start)
                    ev(f, "previous run ended", *log_.clean_stop_before_last_start ? "cleanly (Shutdown complete)"
                                                                                    : "without 'Shutdown complete'");
                for (std::size_t i = 0; i < log_.last_start_recovery.size() && i < 3; ++i)
                    ev(f, "recovery", log_.last_start_recovery[i]);
                if (restart_critical) {
                    for (std::size_t i = 0; i < log_.crash_lines.size() && i < 3; ++i)
                        ev(f, "log", log_.crash_lines[log_.crash_lines.size() - 1 - i]);
                    fx(f, fix_kind::action,
                       "look for the OOM killer: journalctl -k | grep -i -E 'out of memory|killed process' (or "
                       "dmesg -T)");
                    fx(f, fix_kind::my_cnf,
                       "[mysqld]\n# if it was the OOM killer: make the server fit in memory\ninnodb_buffer_pool_size "
                       "= <about 60-70 % of RAM>\nmax_connections = <what the pools really need>");
                    fx(f, fix_kind::lifeline,
                       "statements in flight surfaced as errc::outcome_unknown or errc::transaction_lost; declare "
                       "reads lifeline::idempotent and run transactions through db.transaction(fn, "
                       "lifeline::replayable) so they are re-run");
                } else if (!log_read) {
                    fx(f, fix_kind::action, "on the server: grep -E \"(Aborted|killed|crash|OOM)\" <log_error> | tail -50; "
                                            "journalctl -u mariadb -u mysql --since \"1 hour ago\"");
                } else {
                    fx(f, fix_kind::action, "nothing to fix if the restart was planned; otherwise find who restarted "
                                            "it: journalctl -u mariadb -u mysql");
                }
            }
        }
        if (!restart_critical && (!log_.crash_lines.empty() || !log_.unclean_stops.empty())) {
            auto& f = add("error_log_crash", severity::warning, {4}, 5,
                          "the error log shows " + std::to_string(log_.crash_lines.size() + log_.unclean_stops.size()) +
                              " sign(s) of crashes or kills (the article's \"Aborted|killed|crash|OOM\"): each one "
                              "cut every open connection with 2013");
            ev(f, "error log", el.where);
            for (std::size_t i = 0; i < log_.unclean_stops.size() && i < 3; ++i)
                ev(f, "start after an unclean stop", log_.unclean_stops[log_.unclean_stops.size() - 1 - i]);
            for (std::size_t i = 0; i < log_.crash_lines.size() && i < 5; ++i)
                ev(f, "log", log_.crash_lines[log_.crash_lines.size() - 1 - i]);
            fx(f, fix_kind::action,
               "read the lines around them in " + el.where +
                   "; for OOM kills: journalctl -k | grep -i -E 'out of memory|killed process'");
        }
        if (log_.aborted_connections > 0) {
            std::vector<int> causes;
            std::string reasons;
            for (const auto& [reason, n] : log_.aborted_reasons) {
                const std::string l = lower(reason);
                if (has(l, "timeout reading")) causes.insert(causes.end(), {1, 2});
                else if (has(l, "timeout writing")) causes.push_back(1);
                else causes.push_back(5);
                if (!reasons.empty()) reasons += "; ";
                reasons += reason + ": " + std::to_string(n);
            }
            std::sort(causes.begin(), causes.end());
            causes.erase(std::unique(causes.begin(), causes.end()), causes.end());
            auto& f = add("error_log_aborted_connections", severity::warning, causes, 5,
                          std::to_string(log_.aborted_connections) +
                              " aborted connection(s) in the error log: the server cut connections on a timeout "
                              "or saw them vanish (what clients see as 2013)");
            ev(f, "by reason", reasons);
            if (log_.aborted_sample) ev(f, "example", *log_.aborted_sample);
            fx(f, fix_kind::action,
               "'Got timeout reading communication packets': wait_timeout/net_read_timeout expired (causes 1, 2); "
               "'Got an error reading communication packets': the client or the network went away (cause 5)");
        }
        if (!log_read) {
            auto& f = add("error_log_not_read", severity::info, {4}, 5,
                          "the error log was not read, so crashes and OOM kills could not be looked for: " +
                              el.why_not);
            if (auto* le = find_value(s_.global, "log_error")) ev(f, "log_error", le->empty() ? "(stderr)" : *le);
            fx(f, fix_kind::action,
               "on the server: grep -E \"(Aborted|killed|crash|OOM)\" <log_error> | tail -50; journalctl -u mariadb "
               "-u mysql --since \"1 hour ago\"; or run lifeline-doctor there (it reads @@log_error when local), "
               "or pass --error-log <copy>");
        }
    }
    bool log_facts_unclean_last() const {
        if (log_.clean_stop_before_last_start && !*log_.clean_stop_before_last_start) return true;
        return !log_.last_start_recovery.empty();
    }

    void counters() {
        auto aborted = status_number(s_, "aborted_clients");
        auto conns = status_number(s_, "connections");
        if (aborted && *aborted > 0) {
            const double share = conns && *conns > 0 ? *aborted / *conns : 0;
            const bool many = *aborted >= 10 && share >= 0.01;
            auto& f = add("aborted_clients", many ? severity::warning : severity::info, {1, 2, 5}, 5,
                          num(*aborted) + " connection(s) were aborted since the server started (Aborted_clients): "
                                          "closed by wait_timeout or net timeouts, or the client vanished without "
                                          "closing");
            ev(f, "Aborted_clients", num(*aborted));
            if (conns) ev(f, "Connections", num(*conns) + " (" + num(std::round(share * 1000) / 10) + " % aborted)");
            if (auto up = status_number(s_, "uptime")) ev(f, "uptime", format_duration(from_s(*up)));
            fx(f, fix_kind::action, "match them with the error log's 'Aborted connection' lines (log_warnings >= 2)");
        }
        auto max_used = status_number(s_, "max_used_connections");
        auto max_conn = global_number(s_, "max_connections");
        if (max_used && max_conn && *max_conn > 0 && *max_used >= 0.9 * *max_conn) {
            auto& f = add("connections_near_limit", severity::warning, {}, 1,
                          "the server has had " + num(*max_used) + " of max_connections " + num(*max_conn) +
                              " connections at once: new connections fail with 1040 at peaks (pools filling up at "
                              "start-up hit this)");
            ev(f, "Max_used_connections", num(*max_used));
            ev(f, "max_connections", num(*max_conn));
            fx(f, fix_kind::my_cnf, "[mysqld]\nmax_connections = " + num(std::ceil(*max_conn * 1.5)));
            fx(f, fix_kind::lifeline, "pool_options.max_size: keep the sum over all processes below max_connections");
        }
        if (auto ac = status_number(s_, "aborted_connects"); ac && *ac > 0) {
            auto& f = add("aborted_connects", severity::info, {}, 1,
                          num(*ac) + " connection attempt(s) failed since the server started (Aborted_connects): "
                                     "wrong passwords, handshake timeouts (connect_timeout) or clients that gave up");
            ev(f, "Aborted_connects", num(*ac));
            if (auto ct = effective(s_, "connect_timeout")) ev(f, "connect_timeout", secs(*ct));
            fx(f, fix_kind::action, "the error log names each one when log_warnings >= 2; check the clients' "
                                    "passwords and connect timeouts");
        }
    }

    // Cause 5: something between client and server forgets idle connections.
    void idle_probe_results() {
        if (!m_.idle_probe_ran) return;
        std::optional<milliseconds> alive_max;
        const idle_probe* first_dead = nullptr;
        std::size_t failed = 0;
        for (const auto& p : m_.probes) {
            if (p.outcome == probe_outcome::alive) {
                if (!alive_max || p.idle > *alive_max) alive_max = p.idle;
            } else if (p.outcome == probe_outcome::failed) {
                ++failed;
            } else if (!first_dead || p.idle < first_dead->idle) {
                first_dead = &p;
            }
        }
        auto wait = effective(s_, "wait_timeout");
        auto bracket = [&](const idle_probe& d) {
            return alive_max ? "between " + format_duration(*alive_max) + " and " + format_duration(d.idle)
                             : "after at most " + format_duration(d.idle);
        };
        if (first_dead && first_dead->outcome == probe_outcome::silent) {
            const milliseconds below = alive_max ? *alive_max : first_dead->idle / 2;
            auto& f = add("idle_cutoff_silent", severity::critical, {5}, 6,
                          "an idle connection is dropped silently " + bracket(*first_dead) +
                              " of idleness (no FIN, no RST: a firewall, NAT or proxy forgot it); the next "
                              "statement waits for a read timeout and fails with 2013");
            add_probe_evidence(f);
            ev(f, "cut-off", bracket(*first_dead));
            if (wait) ev(f, "wait_timeout", secs(*wait));
            const long long ka = std::max<long long>(1, static_cast<long long>(below.count() / 2000));
            fx(f, fix_kind::lifeline,
               "pool_options.idle_timeout below " + format_duration(below) +
                   ", and health_policy.max_lifetime, so no idle connection outlives the cut-off");
            fx(f, fix_kind::lifeline,
               "keep connect_options.tcp_keepalive_idle below the cut-off (" + std::to_string(ka) +
                   " s; it keeps the firewall's state alive and ends a connection it dropped) and call with a deadline");
            fx(f, fix_kind::my_cnf, "[mysqld]\n# TCP keepalive below the cut-off (MariaDB 10.3.3+)\ntcp_keepalive_time = " +
                                        std::to_string(ka));
            fx(f, fix_kind::action, "raise the idle timeout of the firewall / NAT / load balancer in between");
        } else if (first_dead && first_dead->outcome == probe_outcome::closed) {
            const bool explained = wait && first_dead->idle.count() >= static_cast<long long>(*wait * 1000) - 1000;
            if (!explained) {
                auto& f = add("idle_cutoff_closed", severity::warning, {5}, 6,
                              "an idle connection is closed " + bracket(*first_dead) +
                                  " of idleness, sooner than the server's wait_timeout: a proxy or load balancer "
                                  "closes idle connections");
                add_probe_evidence(f);
                if (wait) ev(f, "wait_timeout", secs(*wait));
                const milliseconds below = alive_max ? *alive_max : first_dead->idle / 2;
                fx(f, fix_kind::lifeline, "pool_options.idle_timeout below " + format_duration(below));
                fx(f, fix_kind::action, "raise the proxy's idle/client timeout above the pool's idle timeout");
            }
        }
        if (failed > 0 && failed == m_.probes.size()) {
            auto& f = add("idle_probe_failed", severity::info, {5}, 6,
                          "the idle probe could not run: none of its connections could be opened");
            add_probe_evidence(f);
            fx(f, fix_kind::action, "check max_connections and the account's connection limits, then run it again");
        }
    }
    void add_probe_evidence(finding& f) const {
        for (const auto& p : m_.probes) {
            std::string v = std::string(to_string(p.outcome));
            if (p.outcome == probe_outcome::silent) v += " (no answer within " + format_duration(m_.probe_timeout) + ")";
            else if (p.outcome != probe_outcome::alive && !p.message.empty())
                v += " (" + std::to_string(p.code) + " " + p.message + ")";
            ev(f, "idle " + format_duration(p.idle), v);
        }
    }

    void keepalive() {
        auto ka = global_number(s_, "tcp_keepalive_time");
        if (!ka || *ka != 0) return;
        auto& f = add("tcp_keepalive_os_default", severity::info, {5}, 6,
                      "the server leaves TCP keepalive to the operating system (tcp_keepalive_time = 0; Linux "
                      "waits 7200 s), far above typical firewall idle timeouts (60-300 s)");
        ev(f, "tcp_keepalive_time", "0 (OS default)");
        fx(f, fix_kind::my_cnf, "[mysqld]\ntcp_keepalive_time = 60");
        fx(f, fix_kind::action, "or lower net.ipv4.tcp_keepalive_time on the server host (sysctl)");
    }

    void client_side() {
        if (c_.io_timeout.count() == 0 && c_.tcp_keepalive_idle.count() == 0) {
            auto& f = add("client_no_read_timeout", severity::info, {5}, 6,
                          "the client sets neither a driver read timeout (io_timeout 0) nor TCP keepalive "
                          "(tcp_keepalive_idle 0): driver calls made outside a deadline wait forever on a silently "
                          "dropped connection");
            ev(f, "io_timeout", "0");
            ev(f, "tcp_keepalive_idle", "0");
            fx(f, fix_kind::lifeline, "connect_options.tcp_keepalive_idle = std::chrono::seconds(30);  // the default");
        }
        if (m_.connect_ms && c_.connect_timeout.count() > 0 &&
            *m_.connect_ms > 0.5 * static_cast<double>(c_.connect_timeout.count())) {
            auto& f = add("connect_slow", severity::warning, {5}, 6,
                          "connecting took " + num(std::round(*m_.connect_ms)) + " ms, more than half of the client's "
                          "connect_timeout (" + format_duration(c_.connect_timeout) + "): connects will time out "
                          "under load");
            ev(f, "connect", num(std::round(*m_.connect_ms)) + " ms");
            ev(f, "connect_timeout", format_duration(c_.connect_timeout));
            fx(f, fix_kind::lifeline, "connect_options.connect_timeout above the connect time measured under load");
        }
        if (c_.longest_statement && c_.deadline < *c_.longest_statement) {
            auto& f = add("deadline_below_longest_statement", severity::warning, {}, 2,
                          "the client's deadline (" + format_duration(c_.deadline) +
                              ") is shorter than the longest statement (" + format_duration(*c_.longest_statement) +
                              "): lifeline cuts that statement at its deadline (errc::deadline_exceeded)");
            ev(f, "deadline", format_duration(c_.deadline));
            ev(f, "longest statement", format_duration(*c_.longest_statement));
            fx(f, fix_kind::lifeline,
               "db.query(sql, lifeline::call_options{std::chrono::seconds(" +
                   std::to_string(ceil_s(*c_.longest_statement) * 3 / 2) + ")}) for that statement");
        }
    }

    // Cause 6: the server stops statements that run longer than max_statement_time (MariaDB) or
    // max_execution_time (MySQL, SELECT only).
    void statement_time() {
        if (auto mst = effective(s_, "max_statement_time"); mst && *mst > 0) {
            const milliseconds limit = from_s(*mst);
            const bool kills = c_.longest_statement && *c_.longest_statement >= limit;
            auto& f = add("max_statement_time_set", kills ? severity::critical : severity::warning, {6}, 7,
                          "max_statement_time is " + format_duration(limit) + ": " +
                              (kills ? "the workload's longest statement (" + format_duration(*c_.longest_statement) +
                                           ") will be stopped with 1969 (ER_STATEMENT_TIMEOUT)"
                                     : "any statement that runs longer is stopped with 1969 (ER_STATEMENT_TIMEOUT), "
                                       "which older client libraries report as a lost connection"));
            ev(f, "max_statement_time", session_and_global(s_, "max_statement_time"));
            if (auto ex = status_number(s_, "max_statement_time_exceeded"))
                ev(f, "Max_statement_time_exceeded", num(*ex));
            if (c_.longest_statement) ev(f, "longest statement", format_duration(*c_.longest_statement));
            const std::string want =
                c_.longest_statement ? num(static_cast<double>(ceil_s(*c_.longest_statement) * 2)) : std::string("0");
            fx(f, fix_kind::my_cnf, "[mysqld]\nmax_statement_time = " + want + "   # seconds; 0 = no limit");
            fx(f, fix_kind::sql, "SET SESSION max_statement_time = " + want + ";");
            fx(f, fix_kind::lifeline, lifeline_session_fix("SET SESSION max_statement_time = " + want));
            fx(f, fix_kind::action,
               "for one statement only: SET STATEMENT max_statement_time = <s> FOR SELECT ...");
        }
        if (auto met = effective(s_, "max_execution_time"); met && *met > 0) {
            const milliseconds limit(static_cast<long long>(*met));
            const bool kills = c_.longest_statement && *c_.longest_statement >= limit;
            auto& f = add("max_execution_time_set", kills ? severity::critical : severity::warning, {6}, 7,
                          "max_execution_time is " + format_duration(limit) +
                              ": read-only SELECTs that run longer are stopped with 3024 (MAX_EXECUTION_TIME "
                              "exceeded)");
            ev(f, "max_execution_time", session_and_global(s_, "max_execution_time", false) + " ms");
            if (c_.longest_statement) ev(f, "longest statement", format_duration(*c_.longest_statement));
            fx(f, fix_kind::sql, "SET SESSION max_execution_time = 0;");
            fx(f, fix_kind::lifeline, lifeline_session_fix("SET SESSION max_execution_time = 0"));
            fx(f, fix_kind::action, "also look for /*+ MAX_EXECUTION_TIME(n) */ hints in ORM-generated SQL");
        }
    }

    // Step 3: the slow query log finds the statements that run into the timeouts above.
    void slow_log() {
        auto on = as_flag(find_value(s_.global, "slow_query_log"));
        if (!on) return;
        const long long want = std::max<long long>(1, std::min<long long>(5, ceil_s(c_.deadline) / 2));
        if (!*on) {
            auto& f = add("slow_query_log_off", severity::warning, {1, 6}, 3,
                          "the slow query log is off: the slow and oversized statements behind timeouts leave no "
                          "trace");
            ev(f, "slow_query_log", "OFF");
            if (auto lq = effective(s_, "long_query_time")) ev(f, "long_query_time", secs(*lq));
            fx(f, fix_kind::my_cnf, "[mysqld]\nslow_query_log = 1\nslow_query_log_file = /var/log/mysql/slow.log\n"
                                    "long_query_time = " + std::to_string(want));
            fx(f, fix_kind::sql, "SET GLOBAL slow_query_log = 1; SET GLOBAL long_query_time = " + std::to_string(want) + ";");
            return;
        }
        if (auto lq = effective(s_, "long_query_time"); lq && *lq >= deadline_s()) {
            auto& f = add("long_query_time_above_deadline", severity::info, {1, 6}, 3,
                          "long_query_time (" + secs(*lq) + ") is not below the client's deadline (" +
                              format_duration(c_.deadline) + "): statements the client gives up on are not logged as "
                              "slow");
            ev(f, "long_query_time", secs(*lq));
            ev(f, "client deadline", format_duration(c_.deadline));
            fx(f, fix_kind::sql, "SET GLOBAL long_query_time = " + std::to_string(want) + ";");
        }
    }

    // Cause 7: failover.
    void failover() {
        if (auto ro = as_flag(find_value(s_.global, "read_only")); ro && *ro) {
            auto& f = add("read_only_server", severity::info, {7}, 1,
                          "this server is read-only (a replica, or a primary demoted by a failover): writes fail "
                          "with 1290");
            ev(f, "read_only", "ON");
            fx(f, fix_kind::lifeline, "point writes at the primary; after a failover reconnect to the new one");
        }
        if (auto w = as_flag(find_value(s_.global, "wsrep_on")); w && *w) {
            auto& f = add("galera_node", severity::info, {7}, 1,
                          "this is a Galera cluster node: a node leaving the cluster or a failover drops its "
                          "connections (2013) and certification conflicts roll back transactions (1213)");
            ev(f, "wsrep_on", "ON");
            fx(f, fix_kind::lifeline, "run transactions through db.transaction(fn, lifeline::replayable)");
        }
    }

    void proxy() {
        std::vector<std::pair<std::string, std::string>> signs;
        std::string kind;
        const std::string* version = find_value(s_.global, "version");
        const std::string* comment = find_value(s_.global, "version_comment");
        if (comment && has(lower(*comment), "proxysql")) {
            kind = "ProxySQL";
            signs.emplace_back("version_comment", *comment);
        }
        if ((version && has(lower(*version), "maxscale")) || has(lower(s_.handshake_version), "maxscale")) {
            kind = "MaxScale";
            signs.emplace_back("version", version ? *version : s_.handshake_version);
        }
        if (s_.handshake_connection_id && s_.sql_connection_id && s_.handshake_connection_id != s_.sql_connection_id) {
            if (kind.empty()) kind = "a multiplexing proxy (ProxySQL does this)";
            signs.emplace_back("connection id", "handshake " + std::to_string(s_.handshake_connection_id) +
                                                    ", CONNECTION_ID() " + std::to_string(s_.sql_connection_id));
        }
        if (version && !s_.handshake_version.empty() && s_.handshake_version != *version &&
            s_.handshake_version != "5.5.5-" + *version) {
            signs.emplace_back("version", "handshake '" + s_.handshake_version + "', @@version '" + *version + "'");
        }
        if (!s_.via_socket && s_.dsn_port != 0) {
            if (auto port = global_number(s_, "port"); port && static_cast<unsigned>(*port) != s_.dsn_port) {
                signs.emplace_back("port", "the DSN reaches port " + std::to_string(s_.dsn_port) +
                                               ", the server listens on " + num(*port));
            }
        }
        if (signs.empty()) return;
        if (kind.empty()) kind = "a proxy, load balancer or port forward";
        auto& f = add("proxy_in_path", severity::info, {5}, 6,
                      "the DSN does not reach the server directly but through " + kind +
                          " (best effort): its own idle and query timeouts also cut connections");
        for (auto& [k, v] : signs) ev(f, k, v);
        fx(f, fix_kind::action,
           "check the proxy's timeouts (ProxySQL mysql-wait_timeout, MaxScale connection_timeout, HAProxy timeout "
           "client/server) and run lifeline-doctor --idle-probe through it");
    }

    void lock_wait() {
        auto lw = effective(s_, "innodb_lock_wait_timeout");
        if (!lw || *lw <= deadline_s()) return;
        auto& f = add("lock_wait_above_deadline", severity::info, {}, 2,
                      "innodb_lock_wait_timeout (" + secs(*lw) + ") is longer than the client's deadline (" +
                          format_duration(c_.deadline) + "): a statement waiting for a lock ends at the deadline "
                          "(errc::deadline_exceeded, connection reset) instead of with a retryable 1205");
        ev(f, "innodb_lock_wait_timeout", session_and_global(s_, "innodb_lock_wait_timeout"));
        ev(f, "client deadline", format_duration(c_.deadline));
        const long long want = std::max<long long>(1, ceil_s(c_.deadline) / 2);
        fx(f, fix_kind::lifeline, lifeline_session_fix("SET SESSION innodb_lock_wait_timeout = " + std::to_string(want)));
        fx(f, fix_kind::my_cnf, "[mysqld]\ninnodb_lock_wait_timeout = " + std::to_string(want));
    }

    const server_snapshot& s_;
    const client_profile& c_;
    const measurements& m_;
    const rule_settings& r_;
    server_version version_;
    log_facts log_;
    std::vector<finding> out_;
};

}  // namespace detail

// The findings, most severe first. Pure: the same inputs give the same findings.
inline std::vector<finding> diagnose(const server_snapshot& s, const client_profile& c, const measurements& m,
                                     const rule_settings& r = {}) {
    return detail::rulebook(s, c, m, r).run();
}

// 0: no finding at or above `fail_on`; 1: at least one.
inline int exit_code_for(const std::vector<finding>& findings, severity fail_on = severity::warning) noexcept {
    for (const auto& f : findings)
        if (f.level >= fail_on) return 1;
    return 0;
}

// The idle times to probe, ascending: limit, limit/2, limit/4, ... down to about 1 s (at most 7).
inline std::vector<milliseconds> idle_probe_schedule(milliseconds limit) {
    std::vector<milliseconds> out;
    if (limit.count() <= 0) return out;
    milliseconds t = limit;
    while (out.size() < 7) {
        out.push_back(t);
        if (t < std::chrono::seconds(2)) break;
        t /= 2;
    }
    std::reverse(out.begin(), out.end());
    return out;
}

}  // namespace lifeline::doctor

#endif  // LIFELINE_DOCTOR_HPP
