// lifeline-doctor — the report, as text for people and as JSON for machines (schema
// "lifeline-doctor/1", documented in README.md). Only formatting here: the findings come from
// lifeline::doctor::diagnose(). Nothing here ever sees a password.
#ifndef LIFELINE_TOOLS_DOCTOR_REPORT_HPP
#define LIFELINE_TOOLS_DOCTOR_REPORT_HPP

#include <lifeline/doctor.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace lifeline::doctor {

inline constexpr const char* json_schema_id = "lifeline-doctor/1";

struct target {
    std::string host;
    unsigned port = 0;
    std::string user;
    std::string database;
    std::string socket;
};

// The DSN without its password: mysql://user@host:port/schema.
inline std::string redacted_dsn(const target& t) {
    std::string s = "mysql://" + t.user + "@";
    if (!t.socket.empty()) s += "?socket=" + t.socket;
    else s += (t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host) + ":" + std::to_string(t.port);
    if (!t.database.empty()) s += "/" + t.database;
    return s;
}

struct report {
    std::string tool = "lifeline-doctor";
    target where;
    server_snapshot snapshot;
    client_profile client;
    measurements measured;
    std::vector<finding> findings;
    severity fail_on = severity::warning;
    int exit_code = 0;
};

namespace detail {

inline nlohmann::ordered_json ms_or_null(const std::optional<milliseconds>& d) {
    return d ? nlohmann::ordered_json(d->count()) : nlohmann::ordered_json(nullptr);
}
inline nlohmann::ordered_json size_or_null(const std::optional<std::uint64_t>& v) {
    return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}
inline double round3(double v) { return std::round(v * 1000) / 1000; }
inline nlohmann::ordered_json timing_json(const std::optional<timing>& t) {
    if (!t) return nullptr;
    return {{"median", round3(t->median_ms)}, {"max", round3(t->max_ms)}, {"samples", t->samples}};
}
inline std::optional<double> uptime_of(const server_snapshot& s) {
    if (auto it = s.status.find("uptime"); it != s.status.end()) return std::strtod(it->second.c_str(), nullptr);
    return std::nullopt;
}

}  // namespace detail

inline nlohmann::ordered_json finding_json(const finding& f) {
    nlohmann::ordered_json j;
    j["id"] = f.id;
    j["severity"] = std::string(to_string(f.level));
    j["causes"] = f.causes;
    j["step"] = f.step;
    j["title"] = f.title;
    j["evidence"] = nlohmann::ordered_json::array();
    for (const auto& e : f.evidence) j["evidence"].push_back({{"name", e.name}, {"value", e.value}});
    j["fix"] = nlohmann::ordered_json::array();
    for (const auto& x : f.fixes) j["fix"].push_back({{"kind", std::string(to_string(x.kind))}, {"text", x.text}});
    return j;
}

inline nlohmann::ordered_json to_json(const report& r) {
    using json = nlohmann::ordered_json;
    const server_version v = version_of(r.snapshot);
    json j;
    j["schema"] = json_schema_id;
    j["tool"] = r.tool;
    j["exit_code"] = r.exit_code;
    j["target"] = {{"host", r.where.host},
                   {"port", r.where.port},
                   {"user", r.where.user},
                   {"database", r.where.database},
                   {"socket", r.where.socket}};
    auto global = [&](const char* k) -> json {
        auto it = r.snapshot.global.find(k);
        return it == r.snapshot.global.end() ? json(nullptr) : json(it->second);
    };
    const auto up = detail::uptime_of(r.snapshot);
    j["server"] = {{"flavour", v.flavour},
                   {"version", global("version")},
                   {"version_comment", global("version_comment")},
                   {"handshake_version", r.snapshot.handshake_version},
                   {"uptime_s", up ? json(*up) : json(nullptr)},
                   {"variables", r.snapshot.global},
                   {"session_variables", r.snapshot.session},
                   {"status", r.snapshot.status}};
    const auto& c = r.client;
    j["client"] = {{"deadline_ms", c.deadline.count()},
                   {"io_timeout_ms", c.io_timeout.count()},
                   {"connect_timeout_ms", c.connect_timeout.count()},
                   {"pool_idle_timeout_ms", c.pool_idle_timeout.count()},
                   {"max_lifetime_ms", c.max_lifetime.count()},
                   {"ping_after_idle_ms", c.ping_after_idle.count()},
                   {"client_max_allowed_packet", detail::size_or_null(c.client_max_allowed_packet)},
                   {"largest_statement", detail::size_or_null(c.largest_statement)},
                   {"longest_statement_ms", detail::ms_or_null(c.longest_statement)}};
    const auto& m = r.measured;
    json probe = nullptr;
    if (m.idle_probe_ran) {
        probe = {{"limit_ms", m.idle_probe_limit.count()}, {"timeout_ms", m.probe_timeout.count()}, {"probes", json::array()}};
        for (const auto& p : m.probes)
            probe["probes"].push_back({{"planned_ms", p.planned.count()},
                                       {"idle_ms", p.idle.count()},
                                       {"outcome", std::string(to_string(p.outcome))},
                                       {"answered_after_ms", p.answered_after.count()},
                                       {"code", p.code},
                                       {"message", p.message}});
    }
    j["measurements"] = {{"connect_ms", m.connect_ms ? json(detail::round3(*m.connect_ms)) : json(nullptr)},
                         {"ping_ms", detail::timing_json(m.ping)},
                         {"select1_ms", detail::timing_json(m.select1)},
                         {"idle_probe", probe}};
    const auto& el = r.snapshot.error_log;
    j["error_log"] = {{"source", std::string(to_string(el.source))},
                      {"where", el.where},
                      {"lines_read", el.lines.size()},
                      {"why_not", el.why_not}};
    j["findings"] = json::array();
    std::size_t counts[3] = {0, 0, 0};
    for (const auto& f : r.findings) {
        j["findings"].push_back(finding_json(f));
        ++counts[static_cast<int>(f.level)];
    }
    j["summary"] = {{"critical", counts[2]},
                    {"warning", counts[1]},
                    {"info", counts[0]},
                    {"fail_on", std::string(to_string(r.fail_on))}};
    return j;
}

// exit code 2: what went wrong, without a password.
inline nlohmann::ordered_json error_json(const std::string& tool, const std::string& kind, const std::string& message,
                                         unsigned code = 0, const std::string& driver_message = {}) {
    nlohmann::ordered_json j;
    j["schema"] = json_schema_id;
    j["tool"] = tool;
    j["exit_code"] = 2;
    j["error"] = {{"kind", kind},
                  {"message", message},
                  {"code", code ? nlohmann::ordered_json(code) : nlohmann::ordered_json(nullptr)},
                  {"driver_message", driver_message}};
    return j;
}

inline std::string indent(const std::string& text, const std::string& pad) {
    std::string out;
    for (char ch : text) {
        out += ch;
        if (ch == '\n') out += pad;
    }
    return out;
}

inline std::string to_text(const report& r) {
    std::ostringstream o;
    const server_version v = version_of(r.snapshot);
    auto g = [&](const char* k) -> std::string {
        auto it = r.snapshot.global.find(k);
        return it == r.snapshot.global.end() ? "?" : it->second;
    };
    auto sv = [&](const char* k) -> std::string {
        auto it = r.snapshot.session.find(k);
        return it == r.snapshot.session.end() ? g(k) : it->second;
    };
    o << r.tool << " — " << redacted_dsn(r.where) << "\n";
    o << "server     " << v.flavour << " " << g("version");
    if (auto c = g("version_comment"); c != "?") o << " (" << c << ")";
    if (auto up = detail::uptime_of(r.snapshot)) o << ", up " << format_duration(detail::from_s(*up));
    o << "\n";
    o << "settings   wait_timeout=" << sv("wait_timeout") << " interactive_timeout=" << sv("interactive_timeout")
      << " net_read_timeout=" << sv("net_read_timeout") << " net_write_timeout=" << sv("net_write_timeout") << "\n"
      << "           max_allowed_packet=" << sv("max_allowed_packet") << " connect_timeout=" << sv("connect_timeout")
      << " max_connections=" << g("max_connections") << " innodb_lock_wait_timeout=" << sv("innodb_lock_wait_timeout")
      << "\n";
    o << "           ";
    if (r.snapshot.session.count("max_statement_time") || r.snapshot.global.count("max_statement_time"))
        o << "max_statement_time=" << sv("max_statement_time") << " ";
    if (r.snapshot.session.count("max_execution_time") || r.snapshot.global.count("max_execution_time"))
        o << "max_execution_time=" << sv("max_execution_time") << " ";
    o << "slow_query_log=" << g("slow_query_log") << " long_query_time=" << sv("long_query_time") << "\n";
    auto st = [&](const char* k) -> std::string {
        auto it = r.snapshot.status.find(k);
        return it == r.snapshot.status.end() ? "?" : it->second;
    };
    o << "status     Uptime=" << st("uptime") << " Aborted_clients=" << st("aborted_clients")
      << " Aborted_connects=" << st("aborted_connects") << " Max_used_connections=" << st("max_used_connections")
      << "\n";
    const auto& c = r.client;
    o << "client     deadline " << format_duration(c.deadline) << ", io_timeout " << format_duration(c.io_timeout)
      << ", pool idle " << format_duration(c.pool_idle_timeout) << ", max lifetime " << format_duration(c.max_lifetime);
    if (c.client_max_allowed_packet) o << ", max_allowed_packet " << format_size(*c.client_max_allowed_packet);
    if (c.largest_statement) o << ", largest statement " << format_size(*c.largest_statement);
    if (c.longest_statement) o << ", longest statement " << format_duration(*c.longest_statement);
    o << "\n";
    const auto& m = r.measured;
    auto ms = [](double v) {
        std::ostringstream s;
        s.precision(v < 10 ? 3 : 4);
        s << v << " ms";
        return s.str();
    };
    o << "measured  ";
    if (m.connect_ms) o << " connect " << ms(*m.connect_ms) << ",";
    if (m.ping) o << " COM_PING " << ms(m.ping->median_ms) << " (median of " << m.ping->samples << ", max " << ms(m.ping->max_ms) << "),";
    if (m.select1) o << " SELECT 1 " << ms(m.select1->median_ms);
    o << "\n";
    if (m.idle_probe_ran) {
        o << "idle probe";
        for (const auto& p : m.probes) o << " " << format_duration(p.idle) << ":" << to_string(p.outcome);
        o << " (probe timeout " << format_duration(m.probe_timeout) << ")\n";
    }
    const auto& el = r.snapshot.error_log;
    if (el.source != log_source::none) o << "error log  " << el.where << " (" << el.lines.size() << " lines read)\n";
    else o << "error log  not read: " << el.why_not << "\n";
    o << "\n";
    if (r.findings.empty()) o << "No findings.\n";
    for (const auto& f : r.findings) {
        std::string level(to_string(f.level));
        for (auto& ch : level) ch = static_cast<char>(ch - 'a' + 'A');
        o << level << "  " << f.id << "  [";
        if (f.causes.empty()) o << "related to 2013, not one of the article's causes";
        else {
            o << (f.causes.size() > 1 ? "causes " : "cause ");
            for (std::size_t i = 0; i < f.causes.size(); ++i) o << (i ? ", " : "") << f.causes[i];
        }
        if (f.step) o << "; step " << f.step;
        o << "]\n  " << f.title << "\n";
        for (const auto& e : f.evidence) o << "  evidence  " << e.name << ": " << e.value << "\n";
        for (const auto& x : f.fixes) {
            std::string kind(to_string(x.kind));
            kind.resize(9, ' ');
            o << "  fix " << kind << indent(x.text, std::string(16, ' ')) << "\n";
        }
        o << "\n";
    }
    std::size_t counts[3] = {0, 0, 0};
    for (const auto& f : r.findings) ++counts[static_cast<int>(f.level)];
    o << r.findings.size() << " finding(s): " << counts[2] << " critical, " << counts[1] << " warning, " << counts[0]
      << " info. Exit code " << r.exit_code << " (fails on " << to_string(r.fail_on) << " and above).\n";
    return o.str();
}

}  // namespace lifeline::doctor

#endif  // LIFELINE_TOOLS_DOCTOR_REPORT_HPP
