// lifeline — where and how to connect.
//
// `connect_options` is a plain aggregate with documented defaults; `validate()` says what is
// wrong and how to fix it. `parse_dsn()` reads `mysql://user:password@host:port/schema?opt=v`.
#ifndef LIFELINE_OPTIONS_HPP
#define LIFELINE_OPTIONS_HPP

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace lifeline {

struct connect_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 3306;
    std::string user;
    std::string password;  // never logged by lifeline
    std::string database;  // schema to use; restored on every reconnect
    std::string unix_socket;  // non-empty: connect through this socket instead of TCP

    // Bound on one connect (TCP + handshake + auth), further shrunk to the operation's deadline.
    std::chrono::milliseconds connect_timeout{5000};
    // Driver read/write timeout set at connect: the safety net against a silent network drop for
    // work that runs without a deadline. Per-operation deadlines are enforced separately (and
    // precisely) by lifeline. 0 disables it (then only deadlines bound a read).
    std::chrono::milliseconds io_timeout{30000};
};

// Returns an empty string if the options are usable, else what is wrong and how to fix it.
inline std::string validate(const connect_options& o) {
    if (o.unix_socket.empty() && o.host.empty()) return "connect_options.host is empty: set a host or a unix_socket";
    if (o.unix_socket.empty() && o.port == 0) return "connect_options.port is 0: set the server's TCP port (usually 3306)";
    if (o.user.empty()) return "connect_options.user is empty: set the account to log in as";
    if (o.connect_timeout.count() <= 0) return "connect_options.connect_timeout must be > 0 (e.g. 5s)";
    if (o.io_timeout.count() < 0) return "connect_options.io_timeout must be >= 0 (0 disables it)";
    return {};
}

namespace detail {

inline bool parse_ms(std::string_view v, std::chrono::milliseconds& out) {
    if (v.empty()) return false;
    long long n = 0;
    std::size_t i = 0;
    for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) {
        n = n * 10 + (v[i] - '0');
        if (n > 86'400'000LL) return false;
    }
    std::string_view unit = v.substr(i);
    if (i == 0) return false;
    if (unit == "ms") out = std::chrono::milliseconds(n);
    else if (unit == "s" || unit.empty()) out = std::chrono::milliseconds(n * 1000);
    else return false;
    return true;
}

inline std::string percent_decode(std::string_view s, bool& ok) {
    std::string out;
    ok = true;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        if (i + 2 >= s.size()) {  // '%' needs two hex digits
            ok = false;
            return {};
        }
        int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
        if (hi < 0 || lo < 0) {
            ok = false;
            return {};
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

}  // namespace detail

// Parses `mysql://user[:password]@host[:port][/schema][?connect_timeout=5s&io_timeout=30s&socket=/path]`
// (also `mariadb://`). Percent-escapes are decoded in user, password and schema. On error returns
// false and sets `error` to what is wrong — never a partially filled result that looks valid.
inline bool parse_dsn(std::string_view dsn, connect_options& out, std::string& error) {
    connect_options o;
    auto fail = [&](std::string why) {
        error = "invalid DSN: " + why +
                " (expected mysql://user:password@host:port/schema?connect_timeout=5s&io_timeout=30s)";
        return false;
    };
    std::string_view rest;
    if (dsn.rfind("mysql://", 0) == 0) rest = dsn.substr(8);
    else if (dsn.rfind("mariadb://", 0) == 0) rest = dsn.substr(10);
    else return fail("scheme must be mysql:// or mariadb://");

    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    auto at = rest.rfind('@');
    if (at == std::string_view::npos) return fail("missing 'user@' before the host");
    std::string_view userinfo = rest.substr(0, at);
    std::string_view hostpart = rest.substr(at + 1);
    bool ok = true;
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
        o.user = detail::percent_decode(userinfo.substr(0, colon), ok);
        if (ok) o.password = detail::percent_decode(userinfo.substr(colon + 1), ok);
    } else {
        o.user = detail::percent_decode(userinfo, ok);
    }
    if (!ok) return fail("bad percent-escape in user or password");
    if (o.user.empty()) return fail("empty user");

    std::string_view schema;
    if (auto slash = hostpart.find('/'); slash != std::string_view::npos) {
        schema = hostpart.substr(slash + 1);
        hostpart = hostpart.substr(0, slash);
    }
    o.database = detail::percent_decode(schema, ok);
    if (!ok) return fail("bad percent-escape in schema");
    std::string_view host = hostpart, port;
    if (!hostpart.empty() && hostpart.front() == '[') {  // [::1]:3306
        auto close = hostpart.find(']');
        if (close == std::string_view::npos) return fail("unclosed '[' in IPv6 host");
        host = hostpart.substr(1, close - 1);
        std::string_view after = hostpart.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return fail("unexpected text after ']'");
            port = after.substr(1);
        }
    } else if (auto colon = hostpart.rfind(':'); colon != std::string_view::npos) {
        host = hostpart.substr(0, colon);
        port = hostpart.substr(colon + 1);
    }
    o.host = std::string(host);
    if (!port.empty()) {
        unsigned long p = 0;
        for (char c : port) {
            if (c < '0' || c > '9') return fail("port '" + std::string(port) + "' is not a number");
            p = p * 10 + static_cast<unsigned long>(c - '0');
            if (p > 65535) return fail("port '" + std::string(port) + "' is out of range 1..65535");
        }
        if (p == 0) return fail("port 0 is not a server port");
        o.port = static_cast<std::uint16_t>(p);
    }
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        auto eq = kv.find('=');
        if (eq == std::string_view::npos) return fail("option '" + std::string(kv) + "' has no '='");
        std::string_view k = kv.substr(0, eq), v = kv.substr(eq + 1);
        if (k == "connect_timeout") {
            if (!detail::parse_ms(v, o.connect_timeout)) return fail("connect_timeout '" + std::string(v) + "' (use e.g. 5s or 500ms)");
        } else if (k == "io_timeout") {
            if (!detail::parse_ms(v, o.io_timeout)) return fail("io_timeout '" + std::string(v) + "' (use e.g. 30s or 0)");
        } else if (k == "socket") {
            o.unix_socket = detail::percent_decode(v, ok);
            if (!ok) return fail("bad percent-escape in socket");
        } else {
            return fail("unknown option '" + std::string(k) + "' (known: connect_timeout, io_timeout, socket)");
        }
    }
    if (o.unix_socket.empty() && o.host.empty()) return fail("empty host");
    if (auto why = validate(o); !why.empty()) return fail(why);
    out = std::move(o);
    error.clear();
    return true;
}

}  // namespace lifeline

#endif  // LIFELINE_OPTIONS_HPP
