// lifeline — where and how to connect.
//
// `connect_options` is a plain aggregate with documented defaults; `validate()` says what is
// wrong and how to fix it. `parse_dsn()` reads `mysql://user:password@host:port/schema?opt=v`
// strictly: any DSN it cannot read in exactly one way is refused (errc::invalid_dsn) with what to
// fix, never guessed at. `format_dsn()` writes options back as a DSN that parse_dsn() reads to
// the same options (the password only on request, so the result can go into a log).
#ifndef LIFELINE_OPTIONS_HPP
#define LIFELINE_OPTIONS_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <lifeline/error.hpp>

namespace lifeline {

// --- failover (cluster.hpp) -------------------------------------------------------------------
// One server of a replicated cluster (primary + replicas, or Galera).
struct host_port {
    std::string host;
    std::uint16_t port = 3306;

    friend bool operator==(const host_port& a, const host_port& b) noexcept { return a.host == b.host && a.port == b.port; }
    friend bool operator!=(const host_port& a, const host_port& b) noexcept { return !(a == b); }
};
// Which server a connection with a host list talks to. The role is asked from the servers at
// every connect (read_only, wsrep state), never taken from the list's order.
enum class target_role : std::uint8_t {
    writer,          // the writable server (Galera: a synced node, the same one while it stays synced)
    prefer_replica,  // a read-only replica (Galera: a synced node other than the writer); the writer if none
};
// --- end failover ------------------------------------------------------------------------------

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
    // Failover (cluster.hpp): the servers of one replicated cluster, in any order. Non-empty: every
    // connect asks the servers for their role and picks one for `target` (host/port are then only
    // the first entry, for logs). Empty: host/port alone, no role checks (one server).
    // parse_dsn() reads mysql://user@h1:3306,h2:3307,[::1]:3308/db into it.
    std::vector<host_port> hosts;
    target_role target = target_role::writer;
    // A new field: compare it in operator== below and, if a DSN can set it, add it to
    // detail::dsn_option_table (one line).
};

inline bool operator==(const connect_options& a, const connect_options& b) noexcept {
    return a.host == b.host && a.port == b.port && a.user == b.user && a.password == b.password &&
           a.database == b.database && a.unix_socket == b.unix_socket && a.connect_timeout == b.connect_timeout &&
           a.io_timeout == b.io_timeout && a.hosts == b.hosts && a.target == b.target;
}
inline bool operator!=(const connect_options& a, const connect_options& b) noexcept { return !(a == b); }

// Returns an empty string if the options are usable, else what is wrong and how to fix it.
inline std::string validate(const connect_options& o) {
    const bool single = o.hosts.empty();  // failover: with a host list, host/port are not used
    if (single && o.unix_socket.empty() && o.host.empty()) return "connect_options.host is empty: set a host or a unix_socket";
    if (single && o.unix_socket.empty() && o.port == 0) return "connect_options.port is 0: set the server's TCP port (usually 3306)";
    if (o.user.empty()) return "connect_options.user is empty: set the account to log in as";
    if (o.connect_timeout.count() <= 0) return "connect_options.connect_timeout must be > 0 (e.g. 5s)";
    if (o.io_timeout.count() < 0) return "connect_options.io_timeout must be >= 0 (0 disables it)";
    // Failover (cluster.hpp).
    for (const auto& h : o.hosts) {
        if (h.host.empty()) return "connect_options.hosts has an entry with an empty host";
        if (h.port == 0) return "connect_options.hosts: the port of " + h.host + " is 0";
    }
    if (!o.hosts.empty() && !o.unix_socket.empty())
        return "connect_options.hosts and unix_socket exclude each other: a unix socket reaches one local server";
    if (o.hosts.empty() && o.target != target_role::writer)
        return "connect_options.target = prefer_replica needs a host list (connect_options.hosts, or "
               "mysql://user@h1:3306,h2:3306/db)";
    return {};
}

namespace detail {

constexpr bool dsn_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool dsn_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr int dsn_hex(char c) noexcept {
    if (dsn_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
// RFC 3986 "unreserved": the only bytes format_dsn() writes unescaped in user, password, schema.
constexpr bool dsn_unreserved(char c) noexcept {
    return dsn_alpha(c) || dsn_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
// Bytes a DSN may never contain raw: whitespace and control bytes (config files add them by
// accident, and a line break in a DSN is never meant). They are fine percent-encoded.
constexpr bool dsn_forbidden_raw(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
}

// Text quoted for an error message: printable ASCII as is, anything else as \xNN, cut at 64 bytes.
// Only ever applied to parts of the DSN after its single '@', which cannot hold the password.
inline std::string dsn_quote(std::string_view s) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out = "'";
    for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
        auto u = static_cast<unsigned char>(s[i]);
        if (u >= 0x20 && u < 0x7f) {
            out += s[i];
        } else {
            out += "\\x";
            out += digits[u >> 4];
            out += digits[u & 0xf];
        }
    }
    if (s.size() > 64) out += "...";
    out += "'";
    return out;
}

// Percent-decodes one field. On a malformed escape or an encoded NUL (%00, which would cut the
// C string the driver gets) sets `why` naming the field but never quoting it: it may be the
// password.
inline bool dsn_decode(std::string_view s, std::string& out, std::string_view field, std::string& why) {
    out.clear();
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        int hi = i + 1 < s.size() ? dsn_hex(s[i + 1]) : -1;
        int lo = i + 2 < s.size() ? dsn_hex(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            why = "bad percent-escape in the ";
            why += field;
            why += ": '%' must be followed by two hex digits (write a literal '%' as %25)";
            return false;
        }
        if (hi == 0 && lo == 0) {
            why = "the ";
            why += field;
            why += " contains %00 (a NUL byte), which cannot be passed to the server";
            return false;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return true;
}

// Percent-encodes every byte that is not unreserved and not in `keep`.
inline void dsn_encode(std::string_view s, std::string& out, std::string_view keep = {}) {
    static constexpr char digits[] = "0123456789ABCDEF";
    for (char c : s) {
        if (dsn_unreserved(c) || keep.find(c) != std::string_view::npos) {
            out += c;
        } else {
            auto u = static_cast<unsigned char>(c);
            out += '%';
            out += digits[u >> 4];
            out += digits[u & 0xf];
        }
    }
}

// a.b.c.d, each 0..255 in decimal without leading zeros: inet_aton() would read 010 as octal,
// 0x7f as hex and 127.1 as 127.0.0.1, so anything looser than this means something else.
constexpr bool dsn_strict_ipv4(std::string_view s) noexcept {
    int parts = 0;
    std::size_t i = 0;
    while (true) {
        std::size_t start = i;
        int v = 0;
        while (i < s.size() && dsn_digit(s[i]) && i - start < 3) v = v * 10 + (s[i++] - '0');
        std::size_t len = i - start;
        if (len == 0 || v > 255 || (len > 1 && s[start] == '0')) return false;
        ++parts;
        if (i == s.size()) return parts == 4;
        if (s[i] != '.' || parts == 4) return false;
        ++i;
    }
}

// An IPv6 address in text form (RFC 4291 2.2): eight groups of 1-4 hex digits, one "::" for a
// run of zero groups, optionally ending in a dotted IPv4 address. Zone ids (%25eth0) are refused.
constexpr bool dsn_ipv6(std::string_view s) noexcept {
    if (s.size() < 2) return false;
    int groups = 0;
    bool compressed = false;
    std::size_t i = 0;
    if (s[0] == ':') {
        if (s[1] != ':') return false;
        compressed = true;
        i = 2;
    }
    while (i < s.size()) {
        std::size_t end = s.find(':', i);
        std::string_view piece = s.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
        if (piece.find('.') != std::string_view::npos) {  // the IPv4 tail: last, and counts as two groups
            if (end != std::string_view::npos || !dsn_strict_ipv4(piece)) return false;
            groups += 2;
            break;
        }
        if (piece.empty() || piece.size() > 4) return false;
        for (char c : piece)
            if (dsn_hex(c) < 0) return false;
        ++groups;
        if (end == std::string_view::npos) break;
        if (end + 1 < s.size() && s[end + 1] == ':') {
            if (compressed) return false;  // a second "::"
            compressed = true;
            i = end + 2;
        } else {
            i = end + 1;
            if (i == s.size()) return false;  // a trailing single ':'
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

// A host name (letters, digits, '-', '_' in dot-separated labels of 1..63, a trailing '.' allowed)
// or a strict dotted-quad IPv4 address. Empty if fine, else what is wrong with it.
inline std::string dsn_check_host_name(std::string_view h) {
    for (char c : h) {
        if (!(dsn_alpha(c) || dsn_digit(c) || c == '-' || c == '_' || c == '.'))
            return "the host " + dsn_quote(h) + " contains " + dsn_quote(std::string_view(&c, 1)) +
                   ", which cannot be in a host name or address (a host name has letters, digits, '-', '_' "
                   "and '.'; an IPv6 address goes in brackets: [::1])";
    }
    std::string_view name = h;
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // fully qualified "db.example."
    if (name.size() > 253) return "the host name is longer than 253 characters";
    std::string_view last;
    for (std::size_t i = 0; i <= name.size();) {
        std::size_t dot = name.find('.', i);
        if (dot == std::string_view::npos) dot = name.size();
        std::string_view label = name.substr(i, dot - i);
        if (label.empty())
            return "the host " + dsn_quote(h) + " has an empty label (two dots in a row, or a leading dot)";
        if (label.size() > 63) return "the host " + dsn_quote(h) + " has a label longer than 63 characters";
        if (label.front() == '-' || label.back() == '-')
            return "the host " + dsn_quote(h) + " has a label that starts or ends with '-'";
        last = label;
        i = dot + 1;
    }
    // inet_aton() (and so getaddrinfo()) reads a name whose every label is a number (decimal,
    // 010 octal, 0x7f hex) as an IPv4 address; such a name can only be one if its last label is.
    bool numeric = true;
    std::string_view digits = last;
    if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
        digits.remove_prefix(2);
        for (char c : digits) numeric = numeric && dsn_hex(c) >= 0;
    } else {
        for (char c : digits) numeric = numeric && dsn_digit(c);
    }
    if (numeric && !dsn_strict_ipv4(h))  // h, not name: "10.0.0.5." is not an address either
        return "the host " + dsn_quote(h) +
               " is neither a host name nor a dotted-quad IPv4 address (write IPv4 as four numbers 0-255 without "
               "leading zeros and no trailing dot, e.g. 10.0.0.5: the resolver reads 010.0.0.5 as octal, 0x7f.1 as "
               "hex and 127.1 as 127.0.0.1)";
    return {};
}

// ---- values of query options -------------------------------------------------------------------
// dsn_codec<T> reads (parse) and writes (format) an option value of type T. A new option of a
// new type (say an enum for TLS modes) needs one specialisation; `expected` is quoted on error.
template <typename T>
struct dsn_codec;  // intentionally undefined

template <>
struct dsn_codec<std::chrono::milliseconds> {
    static constexpr std::string_view expected = "a whole number with unit ms or s (no unit: s), e.g. 5s or 500ms, at most 86400s";
    static bool parse(std::string_view v, std::chrono::milliseconds& out) {
        std::size_t i = 0;
        long long n = 0;
        for (; i < v.size() && dsn_digit(v[i]); ++i) {
            n = n * 10 + (v[i] - '0');
            if (n > 86'400'000LL) return false;
        }
        if (i == 0) return false;
        std::string_view unit = v.substr(i);
        if (unit == "s" || unit.empty()) n *= 1000;
        else if (unit != "ms") return false;
        if (n > 86'400'000LL) return false;
        out = std::chrono::milliseconds(n);
        return true;
    }
    static void format(std::chrono::milliseconds v, std::string& out) {
        if (v.count() % 1000 == 0) out += std::to_string(v.count() / 1000) + "s";
        else out += std::to_string(v.count()) + "ms";
    }
};

template <>
struct dsn_codec<std::string> {
    static constexpr std::string_view expected = "a non-empty, percent-encoded text without %00";
    static bool parse(std::string_view v, std::string& out) {
        std::string why;
        return !v.empty() && dsn_decode(v, out, "value", why);
    }
    // '/' stays readable: a socket path is the typical value.
    static void format(const std::string& v, std::string& out) { dsn_encode(v, out, "/"); }
};

// Failover (cluster.hpp): ?target=writer|prefer_replica.
template <>
struct dsn_codec<target_role> {
    static constexpr std::string_view expected = "writer or prefer_replica";
    static bool parse(std::string_view v, target_role& out) {
        if (v == "writer") out = target_role::writer;
        else if (v == "prefer_replica") out = target_role::prefer_replica;
        else return false;
        return true;
    }
    static void format(target_role v, std::string& out) { out += v == target_role::writer ? "writer" : "prefer_replica"; }
};

// One query option: its key and how it reads and writes its connect_options field.
struct dsn_option {
    std::string_view key;
    std::string_view expected;  // what a valid value looks like, for the error message
    bool (*parse)(std::string_view value, connect_options& o);
    bool (*is_default)(const connect_options& o);
    void (*format)(const connect_options& o, std::string& out);
};

template <typename M>
struct dsn_member_type;
template <typename T>
struct dsn_member_type<T connect_options::*> {
    using type = T;
};

template <auto Member>
constexpr dsn_option dsn_field(std::string_view key) noexcept {
    using T = typename dsn_member_type<decltype(Member)>::type;
    return dsn_option{
        key,
        dsn_codec<T>::expected,
        [](std::string_view v, connect_options& o) { return dsn_codec<T>::parse(v, o.*Member); },
        [](const connect_options& o) { return o.*Member == connect_options{}.*Member; },
        [](const connect_options& o, std::string& out) { dsn_codec<T>::format(o.*Member, out); },
    };
}

// The options parse_dsn() accepts and format_dsn() writes (in this order). One line per option.
inline constexpr dsn_option dsn_option_table[] = {
    dsn_field<&connect_options::connect_timeout>("connect_timeout"),
    dsn_field<&connect_options::io_timeout>("io_timeout"),
    dsn_field<&connect_options::unix_socket>("socket"),
    dsn_field<&connect_options::target>("target"),  // failover (cluster.hpp)
};
inline constexpr std::size_t dsn_option_count = sizeof(dsn_option_table) / sizeof(dsn_option_table[0]);

inline std::string dsn_known_options() {
    std::string out;
    for (const auto& opt : dsn_option_table) {
        if (!out.empty()) out += ", ";
        out += opt.key;
    }
    return out;
}

// Case-insensitive "starts with" for the scheme (URL schemes are case-insensitive).
constexpr bool dsn_starts_with_nocase(std::string_view s, std::string_view prefix) noexcept {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != prefix[i]) return false;
    }
    return true;
}

// One `host[:port]` or `[ipv6][:port]` (or empty, with socket=) of the DSN into out_host/out_port
// (out_port is left alone when no port is given). false with `why` on any error.
inline bool dsn_parse_host_port(std::string_view hostport, std::string& out_host, std::uint16_t& out_port,
                                std::string& why) {
    std::string_view host, port;
    bool has_port = false;
    if (!hostport.empty() && hostport.front() == '[') {
        const std::size_t close = hostport.find(']');
        if (close == std::string_view::npos) {
            why = "unclosed '[' in the host: write an IPv6 address as [::1] or [::1]:3306";
            return false;
        }
        host = hostport.substr(1, close - 1);
        if (!dsn_ipv6(host)) {
            why = "the host in brackets " + dsn_quote(host) +
                  " is not an IPv6 address (brackets are only for IPv6 addresses, e.g. [::1] or [2001:db8::5]; "
                  "zone ids such as %25eth0 are not supported)";
            return false;
        }
        std::string_view after = hostport.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                why = "unexpected " + dsn_quote(after) + " after ']': only :port may follow an IPv6 address";
                return false;
            }
            has_port = true;
            port = after.substr(1);
        }
    } else {
        const std::size_t colon = hostport.find(':');
        host = hostport.substr(0, colon);
        if (colon != std::string_view::npos) {
            if (hostport.find(':', colon + 1) != std::string_view::npos) {
                why = "the host " + dsn_quote(hostport) +
                      " has more than one ':'; put an IPv6 address in brackets: mysql://user@[::1]:3306/schema";
                return false;
            }
            has_port = true;
            port = hostport.substr(colon + 1);
        }
        if (!host.empty()) {
            if (std::string bad = dsn_check_host_name(host); !bad.empty()) {
                why = std::move(bad);
                return false;
            }
        }
    }
    out_host = std::string(host);
    if (has_port) {
        if (port.empty()) {
            why = "the ':' after the host has no port number; write the port (host:3306) or drop the ':'";
            return false;
        }
        unsigned long p = 0;
        for (char c : port) {
            if (!dsn_digit(c)) {
                why = "the port " + dsn_quote(port) + " is not a number";
                return false;
            }
            p = p * 10 + static_cast<unsigned long>(c - '0');
            if (p > 65535) {
                why = "the port " + dsn_quote(port) + " is out of range 1..65535";
                return false;
            }
        }
        if (p == 0) {
            why = "port 0 is not a server port (use 1..65535, usually 3306)";
            return false;
        }
        out_port = static_cast<std::uint16_t>(p);
    }
    return true;
}

// The parser. Returns false with `why` (what is wrong and how to fix it) on any error. It never
// quotes anything before the DSN's single '@': that part may hold the password.
inline bool parse_dsn_into(std::string_view dsn, connect_options& o, std::string& why) {
    std::string_view rest;
    if (dsn_starts_with_nocase(dsn, "mysql://")) rest = dsn.substr(8);
    else if (dsn_starts_with_nocase(dsn, "mariadb://")) rest = dsn.substr(10);
    else {
        why = "a DSN must start with mysql:// or mariadb://";
        return false;
    }
    for (char c : rest) {
        if (dsn_forbidden_raw(c)) {
            why = "the DSN contains whitespace or a control byte (" + dsn_quote(std::string_view(&c, 1)) +
                  "); remove it, or percent-encode it in the password or schema (a space is %20)";
            return false;
        }
    }
    if (rest.find('#') != std::string_view::npos) {
        why = "the DSN contains '#'; percent-encode it as %23 (a '#' would start a URL fragment)";
        return false;
    }
    // Exactly one raw '@', the one that ends user:password. Reading "u:p@ss@host" as password
    // "p@ss" would be a guess, so a literal '@' must be written %40.
    const std::size_t at = rest.find('@');
    if (at == std::string_view::npos) {
        why = "missing 'user@' before the host (mysql://user:password@host/schema)";
        return false;
    }
    if (rest.find('@', at + 1) != std::string_view::npos) {
        why = "the DSN contains more than one '@'; percent-encode an '@' in the user, password, schema or an "
              "option as %40";
        return false;
    }
    const std::size_t authority_end = rest.find_first_of("/?");
    if (authority_end < at) {
        why = "a '/' or '?' comes before the '@'; percent-encode '/' as %2F and '?' as %3F in the user or password";
        return false;
    }

    // user[:password]
    std::string_view userinfo = rest.substr(0, at);
    std::string_view user_raw = userinfo, password_raw;
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
        user_raw = userinfo.substr(0, colon);
        password_raw = userinfo.substr(colon + 1);
    }
    if (!dsn_decode(user_raw, o.user, "user", why)) return false;
    if (o.user.empty()) {
        why = "the user is empty (mysql://user:password@host/schema)";
        return false;
    }
    if (!dsn_decode(password_raw, o.password, "password", why)) return false;

    // host[:port] | [ipv6][:port] | empty (with socket=)
    std::string_view after_at = rest.substr(at + 1);
    const std::size_t host_end = after_at.find_first_of("/?");
    std::string_view hostport = after_at.substr(0, host_end);
    std::string_view tail = host_end == std::string_view::npos ? std::string_view{} : after_at.substr(host_end);
    // Failover (cluster.hpp): h1:3306,h2:3307,[::1]:3308 is a host list (commas cannot be in a
    // host name or an IPv6 address); every entry is read like a single host.
    if (hostport.find(',') != std::string_view::npos) {
        for (std::string_view rest_hosts = hostport;;) {
            const std::size_t comma = rest_hosts.find(',');
            std::string_view one = rest_hosts.substr(0, comma);
            if (one.empty()) {
                why = "the host list " + dsn_quote(hostport) +
                      " has an empty entry (two commas in a row, or one at the start or end); write h1:3306,h2:3306";
                return false;
            }
            host_port h;
            if (!dsn_parse_host_port(one, h.host, h.port, why)) return false;
            if (h.host.empty()) {
                why = "the host list " + dsn_quote(hostport) + " has an entry without a host (" + dsn_quote(one) + ")";
                return false;
            }
            for (const auto& seen : o.hosts) {
                if (seen == h) {
                    why = "the host list names " + dsn_quote(one) + " twice; give each server once";
                    return false;
                }
            }
            o.hosts.push_back(std::move(h));
            if (comma == std::string_view::npos) break;
            rest_hosts = rest_hosts.substr(comma + 1);
        }
        o.host = o.hosts.front().host;
        o.port = o.hosts.front().port;
    } else if (!dsn_parse_host_port(hostport, o.host, o.port, why)) {
        return false;
    }

    // [/schema]
    std::string_view query;
    bool has_query = false;
    if (!tail.empty() && tail.front() == '/') {
        tail.remove_prefix(1);
        const std::size_t q = tail.find('?');
        std::string_view schema = tail.substr(0, q);
        if (schema.find('/') != std::string_view::npos) {
            why = "the schema contains '/'; a DSN names one schema (percent-encode a '/' in its name as %2F)";
            return false;
        }
        if (!dsn_decode(schema, o.database, "schema", why)) return false;
        if (q != std::string_view::npos) {
            has_query = true;
            query = tail.substr(q + 1);
        }
    } else if (!tail.empty()) {  // '?'
        has_query = true;
        query = tail.substr(1);
    }

    // [?key=value&...]
    if (has_query && query.empty()) {
        why = "nothing follows '?'; write options as ?key=value&key=value (known: " + dsn_known_options() + ")";
        return false;
    }
    if (query.find('?') != std::string_view::npos) {
        why = "the options contain a second '?'; separate options with '&' and percent-encode a '?' in a value as %3F";
        return false;
    }
    bool seen[dsn_option_count] = {};
    while (has_query) {
        const std::size_t amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        has_query = amp != std::string_view::npos;
        if (has_query) query = query.substr(amp + 1);
        const std::size_t eq = kv.find('=');
        std::string_view key = kv.substr(0, eq);
        if (kv.empty()) {
            why = "an empty option (\"&&\", or '&' at the start or end of the options); remove it";
            return false;
        }
        if (key.empty()) {
            why = "an option has an empty name (\"=value\"); write key=value (known: " + dsn_known_options() + ")";
            return false;
        }
        std::size_t idx = 0;
        while (idx < dsn_option_count && dsn_option_table[idx].key != key) ++idx;
        if (idx == dsn_option_count) {
            why = "unknown option " + dsn_quote(key) + " (known: " + dsn_known_options() + ")";
            return false;
        }
        const dsn_option& opt = dsn_option_table[idx];
        if (eq == std::string_view::npos) {
            why = "option " + dsn_quote(key) + " has no '=value' (expected " + std::string(opt.expected) + ")";
            return false;
        }
        if (seen[idx]) {
            why = "option " + dsn_quote(key) + " is given more than once; give it once";
            return false;
        }
        seen[idx] = true;
        std::string_view value = kv.substr(eq + 1);
        if (!opt.parse(value, o)) {
            why = "option " + dsn_quote(key) + " has the bad value " + dsn_quote(value) + " (expected " +
                  std::string(opt.expected) + ")";
            return false;
        }
    }

    if (o.unix_socket.empty() && o.host.empty()) {
        why = "the host is empty; write mysql://user@host/schema, or give a unix socket: "
              "mysql://user@/schema?socket=/run/mysqld/mysqld.sock";
        return false;
    }
    // The C API uses the socket only when the host is empty or "localhost" and silently goes over
    // TCP otherwise, while Connector/C++ would use the socket: refuse what the drivers read apart.
    if (!o.unix_socket.empty() && !o.host.empty() && o.host != "localhost") {
        why = "socket= is given together with the host " + dsn_quote(o.host) +
              "; a unix socket is local: leave the host empty (mysql://user@/schema?socket=/path) or use localhost";
        return false;
    }
    if (std::string bad = validate(o); !bad.empty()) {
        why = std::move(bad);
        return false;
    }
    return true;
}

}  // namespace detail

// Parses `mysql://user[:password]@host[:port][/schema][?connect_timeout=5s&io_timeout=30s&socket=/path]`
// or, for failover (cluster.hpp), `mysql://user@h1:3306,h2:3307,[::1]:3308/schema[?target=prefer_replica]`
// (also `mariadb://`; the scheme is case-insensitive). Strict, so that a DSN never silently means
// something else:
// - user, password, schema and socket are percent-decoded; a literal '@', '/', '?', '#', '%' or
//   space in them must be written %40, %2F, %3F, %23, %25, %20. %00 is refused everywhere.
// - an IPv6 address needs brackets: mysql://u@[::1]:3307/db; a host name has letters, digits,
//   '-', '_' and '.'; IPv4 is a strict dotted quad.
// - the port, if given, is 1..65535 (no port: 3306; "host:" with nothing after is an error).
// - options are key=value joined by '&', each at most once; timeouts take 500ms, 5s or 5 (s).
// - an empty host needs socket=; socket= goes with an empty host or localhost only.
// On error: ec = errc::invalid_dsn, diag.client_message says what is wrong and how to fix it
// (never quoting the password), and the returned options are default ones (no user: unusable).
inline connect_options parse_dsn(std::string_view dsn, std::error_code& ec, diagnostics& diag) noexcept {
    ec.clear();
    diag = diagnostics{};
    try {
        connect_options o;
        std::string why;
        if (detail::parse_dsn_into(dsn, o, why)) return o;
        ec = make_error_code(errc::invalid_dsn);
        diag.where = phase::connect;
        diag.client_message = std::move(why);
    } catch (...) {  // only std::bad_alloc can get here
        ec = make_error_code(errc::internal_error);
        diag = diagnostics{};
    }
    return connect_options{};
}

// Throwing shape: lifeline::error with errc::invalid_dsn (diag().client_message says why).
inline connect_options parse_dsn(std::string_view dsn) {
    std::error_code ec;
    diagnostics diag;
    connect_options o = parse_dsn(dsn, ec, diag);
    throw_if(ec, diag);
    return o;
}

// The DSN for `o`, which parse_dsn() reads back to the same options when validate(o) is happy and
// the host is a name or address parse_dsn() accepts. Options at their defaults are left out. The
// password is written only with include_password = true, so the default is safe to log (and then
// reads back with an empty password).
inline std::string format_dsn(const connect_options& o, bool include_password = false) {
    std::string out = "mysql://";
    detail::dsn_encode(o.user, out);
    if (include_password && !o.password.empty()) {
        out += ':';
        detail::dsn_encode(o.password, out);
    }
    out += '@';
    if (o.hosts.size() >= 2) {  // failover: the host list (a one-entry list reads back as host/port)
        for (std::size_t i = 0; i < o.hosts.size(); ++i) {
            if (i) out += ',';
            const auto& h = o.hosts[i];
            out += h.host.find(':') != std::string::npos ? '[' + h.host + ']' : h.host;
            out += ':' + std::to_string(h.port);
        }
    } else {
        const std::string& host = o.hosts.empty() ? o.host : o.hosts.front().host;
        const std::uint16_t port = o.hosts.empty() ? o.port : o.hosts.front().port;
        if (host.find(':') != std::string::npos) out += '[' + host + ']';
        else out += host;
        if (!host.empty() || port != connect_options{}.port) out += ':' + std::to_string(port);
    }
    if (!o.database.empty()) {
        out += '/';
        detail::dsn_encode(o.database, out);
    }
    char sep = '?';
    for (const auto& opt : detail::dsn_option_table) {
        if (opt.is_default(o)) continue;
        out += sep;
        out += opt.key;
        out += '=';
        opt.format(o, out);
        sep = '&';
    }
    return out;
}

}  // namespace lifeline

#endif  // LIFELINE_OPTIONS_HPP
