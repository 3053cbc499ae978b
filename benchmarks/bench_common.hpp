// lifeline benchmarks — shared helpers: the harness server, raw Connector/C calls, figure lines.
//
// Every benchmark runs under `lifeline_with_server -- <binary>` (its own throwaway MariaDB) and
// prints its results as single lines:
//
//   figure <name> <value> <unit> target <op> <value> <ok|miss>
//
// A figure that could not be measured is printed as `not_measured <name> <why>`, never as ok. A
// figure reported without a target is `reported <name> <value> <unit> (no target)`.
#ifndef LIFELINE_BENCHMARKS_BENCH_COMMON_HPP
#define LIFELINE_BENCHMARKS_BENCH_COMMON_HPP

#include "capi_support.hpp"
#include "test_server.hpp"

#include <lifeline/driver/capi.hpp>

#include <mysql.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace lifeline::bench {

using steady = std::chrono::steady_clock;

inline double ms_since(steady::time_point t0, steady::time_point t1 = steady::now()) {
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The q-quantile (0..1) of v, by nearest rank: the spread of per-cycle ratios in the logs.
inline double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

// "p10 .. p25 .. median .. p75 .. p90" of v, for an info line.
inline std::string spread(const std::vector<double>& v) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%.3f .. %.3f .. %.3f .. %.3f .. %.3f", quantile(v, 0.1), quantile(v, 0.25),
                  median(v), quantile(v, 0.75), quantile(v, 0.9));
    return buf;
}

// Prints one figure line; returns whether the target is met.
inline bool figure(const std::string& name, double value, const std::string& unit, const std::string& op,
                   double target) {
    bool ok = false;
    if (op == "<=") ok = value <= target;
    else if (op == ">=") ok = value >= target;
    else if (op == "==") ok = value == target;
    else if (op == "<") ok = value < target;
    else if (op == ">") ok = value > target;
    char v[64], t[64];
    std::snprintf(v, sizeof v, "%.4g", value);
    std::snprintf(t, sizeof t, "%.4g", target);
    std::cout << "figure " << name << ' ' << v << ' ' << unit << " target " << op << ' ' << t << ' '
              << (ok ? "ok" : "miss") << std::endl;
    return ok;
}

// A measured figure the issue asks to report without setting a target: never ok or miss.
inline void reported(const std::string& name, double value, const std::string& unit) {
    char v[64];
    std::snprintf(v, sizeof v, "%.4g", value);
    std::cout << "reported " << name << ' ' << v << ' ' << unit << " (no target)" << std::endl;
}

inline void not_measured(const std::string& name, const std::string& why) {
    std::cout << "not_measured " << name << ' ' << why << std::endl;
}

// Context lines (not figures): what was measured, raw numbers behind a ratio.
inline void info(const std::string& text) { std::cout << "# " << text << std::endl; }

inline connect_options lifeline_options(const test::endpoint& e) {
    connect_options o;
    o.host = e.host;
    o.port = static_cast<std::uint16_t>(e.port);
    o.user = e.app_user;
    o.password = e.app_password;
    o.database = e.database;
    return o;
}

// The raw driver's equivalent of lifeline's query(): send, store, read every row into strings.
inline bool raw_select(MYSQL* m, const char* sql, std::size_t len, std::string& out) {
    if (mysql_real_query(m, sql, static_cast<unsigned long>(len)) != 0) return false;
    MYSQL_RES* r = mysql_store_result(m);
    if (!r) return mysql_field_count(m) == 0;
    while (MYSQL_ROW row = mysql_fetch_row(r)) {
        unsigned long* lengths = mysql_fetch_lengths(r);
        out.assign(row[0] ? row[0] : "", row[0] ? lengths[0] : 0);
    }
    mysql_free_result(r);
    return true;
}

inline long long status_counter(MYSQL* m, const std::string& scope, const std::string& name) {
    std::string v = test::capi_scalar(m, "SELECT VARIABLE_VALUE FROM information_schema." + scope +
                                             "_STATUS WHERE VARIABLE_NAME = '" + name + "'");
    return v.empty() ? -1 : std::stoll(v);
}

// Runs main_body, turning exceptions into a failing exit with the reason.
template <class F>
int guarded(const char* name, F&& main_body) {
    try {
        return main_body();
    } catch (const std::exception& e) {
        std::cerr << name << ": FAILED: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace lifeline::bench

#endif
