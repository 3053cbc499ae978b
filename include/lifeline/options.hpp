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
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <lifeline/error.hpp>

namespace lifeline {

// TLS for the connection, with both drivers. What each mode promises:
enum class ssl_mode : std::uint8_t {
    disabled,         // never TLS (ssl_* options must be empty)
    preferred,        // TLS when the server offers it, else plaintext; no certificate checks (the default)
    required,         // TLS or no connection; no certificate checks: encrypts, does not authenticate
    verify_ca,        // required + the server's certificate chain must lead to ssl_ca / ssl_capath
    verify_identity,  // verify_ca + the certificate must name the host connected to (SAN DNS or IP);
                      // without ssl_ca / ssl_capath the system's CA store is used
};

constexpr std::string_view to_string(ssl_mode m) noexcept {
    switch (m) {
    case ssl_mode::disabled: return "disabled";
    case ssl_mode::preferred: return "preferred";
    case ssl_mode::required: return "required";
    case ssl_mode::verify_ca: return "verify_ca";
    case ssl_mode::verify_identity: return "verify_identity";
    }
    return "invalid";
}

// A hook that runs right before every connect lifeline makes (the first, every reconnect, and the
// side connection that stops a statement lifeline cut), with what the driver exposes there:
//   C API (lifeline/driver/capi.hpp):          [](MYSQL* m) { mysql_optionsv(m, ...); return true; }
//   Connector/C++ (lifeline/driver/jdbc.hpp):  [](sql::ConnectOptionsMap& p) { p["pluginDir"] = ...; }
// It sees lifeline's own settings already applied and may change or add any driver option.
// Returning false fails the connect with errc::invalid_option (not retried). It may run on any
// thread that connects, and on lifeline's stopper thread: it must be thread-safe.
// A hook made for the other driver's handle is refused when the connection is built.
class pre_connect_hook {
public:
    pre_connect_hook() = default;
    // From a function, function pointer or non-generic lambda taking the driver's handle and
    // returning bool or void.
    template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, pre_connect_hook>>>
    pre_connect_hook(F f) {  // NOLINT: implicit on purpose (o.pre_connect = [](MYSQL* m) {...};)
        init(std::function{std::move(f)});
    }

    explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
    // Was it made for a handle of type Arg (exactly: MYSQL*, sql::ConnectOptionsMap&)?
    template <class Arg>
    bool accepts() const noexcept {
        return !fn_ || *type_ == typeid(std::function<bool(Arg)>);
    }
    // Runs it (true without a hook). False: it refused, or it was made for another handle type.
    template <class Arg>
    bool run(Arg a, std::string& why) const {
        if (!fn_) return true;
        if (!accepts<Arg>()) {
            why = "connect_options.pre_connect was made for another driver's handle (the C API hook takes MYSQL*, "
                  "the Connector/C++ hook takes sql::ConnectOptionsMap&)";
            return false;
        }
        if ((*static_cast<const std::function<bool(Arg)>*>(fn_.get()))(static_cast<Arg>(a))) return true;
        why = "connect_options.pre_connect returned false";
        return false;
    }
    friend bool operator==(const pre_connect_hook& a, const pre_connect_hook& b) noexcept { return a.fn_ == b.fn_; }
    friend bool operator!=(const pre_connect_hook& a, const pre_connect_hook& b) noexcept { return !(a == b); }

private:
    template <class R, class Arg>
    void init(std::function<R(Arg)> f) {
        static_assert(std::is_same_v<R, bool> || std::is_void_v<R>, "lifeline: a pre_connect hook returns bool or void");
        std::function<bool(Arg)> g;
        if constexpr (std::is_void_v<R>)
            g = [f = std::move(f)](Arg a) {
                f(static_cast<Arg>(a));
                return true;
            };
        else
            g = std::move(f);
        fn_ = std::make_shared<const std::function<bool(Arg)>>(std::move(g));
        type_ = &typeid(std::function<bool(Arg)>);
    }

    std::shared_ptr<const void> fn_;
    const std::type_info* type_ = nullptr;
};

using connect_attributes = std::vector<std::pair<std::string, std::string>>;

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
    // The driver's own read/write timeout, set at connect, in whole seconds. It applies to every
    // read of the session and cannot change per call, so it also cuts statements that run longer
    // than it: that is why it is off (0) by default. lifeline bounds its calls itself (the call's
    // deadline and call_options::io_timeout, enforced by its watchdog), and TCP keepalive and
    // TCP_USER_TIMEOUT (below) end connections the network has silently dropped. Set it only as
    // a backstop for what lifeline cannot watch: the raw native() handle, and Connector/C++
    // sessions whose socket lifeline could not find (a Unix socket, a proxy in between).
    std::chrono::milliseconds io_timeout{0};

    // --- TLS (both drivers; README "Options") ----------------------------------------------------
    ssl_mode ssl = ssl_mode::preferred;
    std::string ssl_ca;       // CA certificate file (PEM) that must sign the server's certificate
    std::string ssl_capath;   // directory of CA certificates (c_rehash layout)
    std::string ssl_cert;     // client certificate (PEM), with ssl_key: for X509 / REQUIRE SUBJECT accounts
    std::string ssl_key;      // client private key (PEM)
    std::string ssl_cipher;   // allowed ciphers (OpenSSL list, TLS 1.2 and below); empty: the library's
    std::string ssl_crl;      // certificate revocation list file
    std::string tls_version;  // allowed versions, e.g. "TLSv1.2,TLSv1.3"; empty: the library's

    // --- the handshake ---------------------------------------------------------------------------
    // Character set announced in the handshake, so the server and the driver (its escaping
    // functions) agree from the first byte; empty: the driver's default (utf8mb4 for both).
    std::string charset;
    // Collation of the connection (must belong to `charset`); set in the same connect, before any
    // statement (the handshake itself can only carry the character set's default collation).
    std::string collation;
    bool compress = false;  // protocol compression (zlib), if the server supports it
    // The client's max_allowed_packet: the largest packet the driver sends or accepts. 0: the
    // driver's default (MariaDB Connector/C: 1 GiB). lifeline refuses statements larger than the
    // smaller of this and the server's @@max_allowed_packet before sending them.
    std::uint64_t max_allowed_packet = 0;
    // Connection attributes the server shows in performance_schema.session_connect_attrs
    // (program_name, service, version, ...). Keys: 1-32 characters, not starting with '_'.
    connect_attributes attributes;
    pre_connect_hook pre_connect;  // see above

    // --- TCP: find connections the network dropped without a word (README "Long statements") ---
    // Set on the session's socket after every connect (TCP only). Defaults stay below common
    // firewall / NAT / load balancer idle limits (60-350 s): an idle connection sends a probe every
    // 30 s, and a peer that stops answering is given up on after 30 + 3 x 10 = 60 s.
    std::chrono::seconds tcp_keepalive_idle{30};      // 0: leave keepalive as the driver / OS set it
    std::chrono::seconds tcp_keepalive_interval{10};  // between unanswered probes
    unsigned tcp_keepalive_count = 3;                 // unanswered probes before giving up
    // Sent data left unacknowledged this long (or a zero window not reopening) ends the
    // connection: a write into a black hole fails instead of waiting forever. 0: the OS default
    // (none). Keep it above the longest pause in which the server may stop reading your data (a
    // LOAD DATA waiting for a lock: innodb_lock_wait_timeout, 50 s by default).
    std::chrono::milliseconds tcp_user_timeout{60000};

    // --- failover (cluster.hpp) -------------------------------------------------------------------
    // The servers of one replicated cluster, in any order. Non-empty: every
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
           a.io_timeout == b.io_timeout && a.ssl == b.ssl && a.ssl_ca == b.ssl_ca && a.ssl_capath == b.ssl_capath &&
           a.ssl_cert == b.ssl_cert && a.ssl_key == b.ssl_key && a.ssl_cipher == b.ssl_cipher && a.ssl_crl == b.ssl_crl &&
           a.tls_version == b.tls_version && a.charset == b.charset && a.collation == b.collation &&
           a.compress == b.compress && a.max_allowed_packet == b.max_allowed_packet && a.attributes == b.attributes &&
           a.pre_connect == b.pre_connect && a.tcp_keepalive_idle == b.tcp_keepalive_idle &&
           a.tcp_keepalive_interval == b.tcp_keepalive_interval && a.tcp_keepalive_count == b.tcp_keepalive_count &&
           a.tcp_user_timeout == b.tcp_user_timeout && a.hosts == b.hosts && a.target == b.target;
}
inline bool operator!=(const connect_options& a, const connect_options& b) noexcept { return !(a == b); }

namespace detail {

// [A-Za-z0-9_]+: character set and collation names (they go into SQL text and driver options).
inline bool plain_name(std::string_view s) noexcept {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

inline std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// Does `collation` belong to `charset`? (utf8 is utf8mb3 on current servers.)
inline bool collation_of(std::string_view charset, std::string_view collation) {
    const std::string cs = lower_ascii(charset), co = lower_ascii(collation);
    auto starts = [&](const std::string& prefix) { return co.size() > prefix.size() && co.compare(0, prefix.size(), prefix) == 0; };
    if (starts(cs + "_")) return true;
    if (cs == "utf8") return starts("utf8mb3_");
    if (cs == "utf8mb3") return starts("utf8_");
    return false;
}

inline std::string check_tls_options(const connect_options& o) {
    const std::pair<const std::string*, const char*> files[] = {
        {&o.ssl_ca, "ssl_ca"}, {&o.ssl_capath, "ssl_capath"}, {&o.ssl_cert, "ssl_cert"}, {&o.ssl_key, "ssl_key"},
        {&o.ssl_cipher, "ssl_cipher"}, {&o.ssl_crl, "ssl_crl"}, {&o.tls_version, "tls_version"}};
    if (o.ssl == ssl_mode::disabled) {
        for (const auto& f : files)
            if (!f.first->empty())
                return std::string("connect_options.") + f.second +
                       " is set but ssl_mode is disabled: set ssl_mode (e.g. verify_identity) or clear " + f.second;
    }
    if (static_cast<unsigned>(o.ssl) > static_cast<unsigned>(ssl_mode::verify_identity))
        return "connect_options.ssl is not one of disabled, preferred, required, verify_ca, verify_identity";
    if (o.ssl == ssl_mode::verify_ca && o.ssl_ca.empty() && o.ssl_capath.empty())
        return "connect_options.ssl is verify_ca but neither ssl_ca nor ssl_capath is set: give the CA that signs the "
               "server's certificate (or use verify_identity, which falls back to the system's CA store)";
    if (o.ssl_cert.empty() != o.ssl_key.empty())
        return o.ssl_cert.empty() ? "connect_options.ssl_key is set without ssl_cert: a client certificate needs both"
                                  : "connect_options.ssl_cert is set without ssl_key: a client certificate needs both";
    if (!o.tls_version.empty()) {
        std::size_t i = 0;
        while (i <= o.tls_version.size()) {
            std::size_t comma = o.tls_version.find(',', i);
            if (comma == std::string::npos) comma = o.tls_version.size();
            const std::string_view v = std::string_view(o.tls_version).substr(i, comma - i);
            if (v != "TLSv1.2" && v != "TLSv1.3" && v != "TLSv1.1" && v != "TLSv1.0")
                return "connect_options.tls_version '" + std::string(v.substr(0, 32)) +
                       "' is not a TLS version: write a comma-separated list of TLSv1.2, TLSv1.3 (TLSv1.0 and TLSv1.1 "
                       "are obsolete but accepted)";
            i = comma + 1;
        }
    }
    return {};
}

}  // namespace detail

// Returns an empty string if the options are usable, else what is wrong and how to fix it.
inline std::string validate(const connect_options& o) {
    const bool single = o.hosts.empty();  // failover: with a host list, host/port are not used
    if (single && o.unix_socket.empty() && o.host.empty()) return "connect_options.host is empty: set a host or a unix_socket";
    if (single && o.unix_socket.empty() && o.port == 0) return "connect_options.port is 0: set the server's TCP port (usually 3306)";
    if (o.user.empty()) return "connect_options.user is empty: set the account to log in as";
    if (o.connect_timeout.count() <= 0) return "connect_options.connect_timeout must be > 0 (e.g. 5s)";
    if (o.io_timeout.count() < 0) return "connect_options.io_timeout must be >= 0 (0 disables it)";
    if (std::string tls = detail::check_tls_options(o); !tls.empty()) return tls;
    if (!o.charset.empty() && !detail::plain_name(o.charset))
        return "connect_options.charset must be a character set name such as utf8mb4 or latin1 (letters, digits, '_')";
    if (!o.collation.empty()) {
        if (!detail::plain_name(o.collation))
            return "connect_options.collation must be a collation name such as utf8mb4_unicode_ci (letters, digits, '_')";
        if (o.charset.empty())
            return "connect_options.collation is set without charset: set the charset it belongs to (e.g. charset "
                   "utf8mb4 for utf8mb4_unicode_ci), so the handshake and the driver use the same one";
        if (!detail::collation_of(o.charset, o.collation))
            return "connect_options.collation '" + o.collation + "' does not belong to the character set '" + o.charset +
                   "': a collation name starts with its character set's (e.g. utf8mb4_unicode_ci for utf8mb4)";
    }
    if (o.max_allowed_packet != 0 && (o.max_allowed_packet < 1024 || o.max_allowed_packet > (1ull << 30)))
        return "connect_options.max_allowed_packet must be 0 (the driver's default) or between 1K and 1G (the "
               "protocol's limit)";
    std::size_t attr_bytes = 0;
    for (const auto& [k, v] : o.attributes) {
        if (k.empty() || k.size() > 32)
            return "connect_options.attributes: a key must have 1 to 32 characters (the server's limit)";
        if (k[0] == '_')
            return "connect_options.attributes: the key '" + k + "' starts with '_', which is reserved for the client library";
        if (v.size() > 1024)
            return "connect_options.attributes: the value of '" + k + "' is longer than 1024 bytes (the server's limit)";
        for (std::size_t j = 0; j < o.attributes.size(); ++j)
            if (&o.attributes[j].first != &k && o.attributes[j].first == k)
                return "connect_options.attributes: the key '" + k + "' is given more than once";
        attr_bytes += k.size() + v.size();
    }
    if (attr_bytes > 60000) return "connect_options.attributes are larger than 60000 bytes in all (the server keeps 64 KiB)";
    if (o.tcp_keepalive_idle.count() < 0 || o.tcp_keepalive_idle.count() > 32767)
        return "connect_options.tcp_keepalive_idle must be between 0 (leave it to the OS) and 32767 s";
    if (o.tcp_keepalive_idle.count() > 0) {
        if (o.tcp_keepalive_interval.count() < 1 || o.tcp_keepalive_interval.count() > 32767)
            return "connect_options.tcp_keepalive_interval must be between 1 and 32767 s";
        if (o.tcp_keepalive_count < 1 || o.tcp_keepalive_count > 127)
            return "connect_options.tcp_keepalive_count must be between 1 and 127";
    }
    if (o.tcp_user_timeout.count() < 0 || o.tcp_user_timeout.count() > 2'147'483'647LL)
        return "connect_options.tcp_user_timeout must be >= 0 (0: the OS default)";
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

template <>
struct dsn_codec<std::chrono::seconds> {
    static constexpr std::string_view expected = "a whole number of seconds, e.g. 30 or 30s, at most 32767s";
    static bool parse(std::string_view v, std::chrono::seconds& out) {
        if (!v.empty() && v.back() == 's') v.remove_suffix(1);
        if (v.empty() || v.size() > 5) return false;
        long n = 0;
        for (char c : v) {
            if (!dsn_digit(c)) return false;
            n = n * 10 + (c - '0');
        }
        if (n > 32767) return false;
        out = std::chrono::seconds(n);
        return true;
    }
    static void format(std::chrono::seconds v, std::string& out) { out += std::to_string(v.count()) + "s"; }
};

template <>
struct dsn_codec<unsigned> {
    static constexpr std::string_view expected = "a whole number from 1 to 127";
    static bool parse(std::string_view v, unsigned& out) {
        if (v.empty() || v.size() > 3) return false;
        unsigned n = 0;
        for (char c : v) {
            if (!dsn_digit(c)) return false;
            n = n * 10 + static_cast<unsigned>(c - '0');
        }
        if (n < 1 || n > 127) return false;
        out = n;
        return true;
    }
    static void format(unsigned v, std::string& out) { out += std::to_string(v); }
};

// Sizes: bytes, or K / M / G (1024-based, either case).
template <>
struct dsn_codec<std::uint64_t> {
    static constexpr std::string_view expected = "a size in bytes with an optional K, M or G suffix (1024-based), e.g. 64M, at most 1G";
    static bool parse(std::string_view v, std::uint64_t& out) {
        std::uint64_t unit = 1;
        if (!v.empty()) {
            switch (v.back()) {
            case 'k': case 'K': unit = 1ull << 10; break;
            case 'm': case 'M': unit = 1ull << 20; break;
            case 'g': case 'G': unit = 1ull << 30; break;
            default: break;
            }
            if (unit != 1) v.remove_suffix(1);
        }
        if (v.empty() || v.size() > 10) return false;
        std::uint64_t n = 0;
        for (char c : v) {
            if (!dsn_digit(c)) return false;
            n = n * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (n * unit > (1ull << 30)) return false;
        out = n * unit;
        return true;
    }
    static void format(std::uint64_t v, std::string& out) {
        if (v != 0 && v % (1ull << 30) == 0) out += std::to_string(v >> 30) + "G";
        else if (v != 0 && v % (1ull << 20) == 0) out += std::to_string(v >> 20) + "M";
        else if (v != 0 && v % (1ull << 10) == 0) out += std::to_string(v >> 10) + "K";
        else out += std::to_string(v);
    }
};

template <>
struct dsn_codec<bool> {
    static constexpr std::string_view expected = "true or false (also 1/0, on/off, yes/no)";
    static bool parse(std::string_view v, bool& out) {
        const std::string l = lower_ascii(v);
        if (l == "true" || l == "1" || l == "on" || l == "yes") out = true;
        else if (l == "false" || l == "0" || l == "off" || l == "no") out = false;
        else return false;
        return true;
    }
    static void format(bool v, std::string& out) { out += v ? "true" : "false"; }
};

template <>
struct dsn_codec<ssl_mode> {
    static constexpr std::string_view expected = "disabled, preferred, required, verify_ca or verify_identity";
    static bool parse(std::string_view v, ssl_mode& out) {
        std::string l = lower_ascii(v);
        for (char& c : l)
            if (c == '-') c = '_';
        for (ssl_mode m : {ssl_mode::disabled, ssl_mode::preferred, ssl_mode::required, ssl_mode::verify_ca,
                           ssl_mode::verify_identity}) {
            if (l == to_string(m)) {
                out = m;
                return true;
            }
        }
        return false;
    }
    static void format(ssl_mode v, std::string& out) { out += to_string(v); }
};

// key:value pairs joined by ','; each key and value percent-decoded on its own, so a literal ',' or
// ':' is written %2C / %3A.
template <>
struct dsn_codec<connect_attributes> {
    static constexpr std::string_view expected =
        "key:value pairs separated by ',', e.g. program_name:billing,env:prod (a literal ',' or ':' as %2C, %3A)";
    static bool parse(std::string_view v, connect_attributes& out) {
        out.clear();
        if (v.empty()) return false;
        std::string why;
        for (std::size_t i = 0; i <= v.size();) {
            std::size_t comma = v.find(',', i);
            if (comma == std::string_view::npos) comma = v.size();
            const std::string_view pair = v.substr(i, comma - i);
            const std::size_t colon = pair.find(':');
            if (colon == std::string_view::npos || colon == 0) return false;
            std::string key, value;
            if (!dsn_decode(pair.substr(0, colon), key, "key", why) || !dsn_decode(pair.substr(colon + 1), value, "value", why))
                return false;
            out.emplace_back(std::move(key), std::move(value));
            i = comma + 1;
        }
        return true;
    }
    static void format(const connect_attributes& v, std::string& out) {
        bool first = true;
        for (const auto& [k, val] : v) {
            if (!first) out += ',';
            first = false;
            dsn_encode(k, out);
            out += ':';
            dsn_encode(val, out, "/");
        }
    }
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
// Keys are written with '_'; parse_dsn() also reads them with '-' (ssl-mode=verify_ca), as MySQL's
// own option files do.
inline constexpr dsn_option dsn_option_table[] = {
    dsn_field<&connect_options::connect_timeout>("connect_timeout"),
    dsn_field<&connect_options::io_timeout>("io_timeout"),
    dsn_field<&connect_options::unix_socket>("socket"),
    dsn_field<&connect_options::ssl>("ssl_mode"),
    dsn_field<&connect_options::ssl_ca>("ssl_ca"),
    dsn_field<&connect_options::ssl_capath>("ssl_capath"),
    dsn_field<&connect_options::ssl_cert>("ssl_cert"),
    dsn_field<&connect_options::ssl_key>("ssl_key"),
    dsn_field<&connect_options::ssl_cipher>("ssl_cipher"),
    dsn_field<&connect_options::ssl_crl>("ssl_crl"),
    dsn_field<&connect_options::tls_version>("tls_version"),
    dsn_field<&connect_options::charset>("charset"),
    dsn_field<&connect_options::collation>("collation"),
    dsn_field<&connect_options::compress>("compress"),
    dsn_field<&connect_options::max_allowed_packet>("max_allowed_packet"),
    dsn_field<&connect_options::attributes>("connect_attrs"),
    dsn_field<&connect_options::tcp_keepalive_idle>("tcp_keepalive_idle"),
    dsn_field<&connect_options::tcp_keepalive_interval>("tcp_keepalive_interval"),
    dsn_field<&connect_options::tcp_keepalive_count>("tcp_keepalive_count"),
    dsn_field<&connect_options::tcp_user_timeout>("tcp_user_timeout"),
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
        std::string canonical(key);
        for (char& c : canonical)
            if (c == '-') c = '_';
        std::size_t idx = 0;
        while (idx < dsn_option_count && dsn_option_table[idx].key != canonical) ++idx;
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
