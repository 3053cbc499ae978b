// Fuzz test for parse_dsn()/format_dsn() (safety hole 10: a DSN that silently means something
// else). Deterministic: a fixed seed (LIFELINE_DSN_FUZZ_SEED overrides it) drives grammar-made
// DSNs, mutations of valid ones (byte flips, insertions, deletions, splices) and random options
// put through format_dsn(). Bounded by count (kMaxInputs) or time (kMaxSeconds), whichever comes
// first; no assertion depends on how many inputs ran. Every input must be
//   - refused with errc::invalid_dsn and a non-empty message that never holds the password, or
//   - accepted with the invariants below, and parse_dsn(format_dsn(o, true)) == o.
// Independent oracles: glibc's inet_pton()/inet_aton() for what a host means to the resolver.
#include <lifeline/options.hpp>

#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace lifeline;

namespace {

constexpr std::size_t kMaxInputs = 500'000;
constexpr double kMaxSeconds = 20.0;
// Every generated password holds this marker, and nothing else generated holds "WX" (the other
// fields use lower case only), so a refusal message containing it has leaked a password.
constexpr std::string_view kMarker = "PWX";

class gen {
public:
    explicit gen(std::uint64_t seed) : rng_(seed) {}
    std::size_t below(std::size_t n) { return n ? static_cast<std::size_t>(rng_() % n) : 0; }
    bool percent(unsigned p) { return below(100) < p; }
    template <typename T, std::size_t N>
    const T& pick(const T (&a)[N]) { return a[below(N)]; }
    char byte() { return static_cast<char>(below(256)); }
    std::string text(std::string_view alphabet, std::size_t min_len, std::size_t max_len) {
        std::string s;
        const std::size_t n = min_len + below(max_len - min_len + 1);
        for (std::size_t i = 0; i < n; ++i) s += alphabet[below(alphabet.size())];
        return s;
    }
    std::string hex_escape(unsigned char c) {
        static constexpr char d[] = "0123456789abcdefABCDEF";
        std::string s = "%";
        s += d[(c >> 4) + (percent(50) && (c >> 4) >= 10 ? 6 : 0)];
        s += d[(c & 0xf) + (percent(50) && (c & 0xf) >= 10 ? 6 : 0)];
        return s;
    }
    // Lower-case text with occasional percent-escapes (any byte, rarely %00), bad escapes and
    // raw delimiters; `extra` adds field-specific raw characters.
    std::string field(std::size_t max_len, std::string_view extra = {}) {
        std::string s;
        const std::size_t n = below(max_len + 1);
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t r = below(100);
            if (r < 70) s += "abcdefghijklmnopqrstuvwxyz0123456789-._~"[below(40)];
            else if (r < 85) s += hex_escape(static_cast<unsigned char>(percent(2) ? 0 : 1 + below(255)));
            else if (r < 88) s += pick({"%", "%g", "%4", "%zz", "%%"});
            else if (r < 95 && !extra.empty()) s += extra[below(extra.size())];
            else s += "!$&'()*+,;=:[]"[below(14)];
        }
        return s;
    }

private:
    std::mt19937_64 rng_;
};

// Hosts: valid names and addresses, and near misses.
constexpr const char* kHosts[] = {
    "db", "db.example", "db-1.internal.example.", "h_1", "localhost", "10.0.0.5", "255.255.255.255", "0.0.0.0",
    "1.2.3.4", "a.b.c.d.e", "x", "256.0.0.1", "010.0.0.1", "127.1", "2130706433", "1.2.3.4.5", "1.2.3.4.",
    "0x7f.0.0.1", "0x7f", "1.0x7f", "0x", "a..b", ".a", "-a", "a-", "a b", "h!", "h%41", "h/x", "",
    "::1", "fe80::1", "1:2", "[::1]", "[2001:db8::5]", "[::ffff:1.2.3.4]", "[1:2:3:4:5:6:7:8]", "[::]",
    "[1:2:3:4:5:6:7::]", "[::1", "::1]", "[1.2.3.4]", "[:::]", "[1::2::3]", "[g::1]", "[fe80::1%25eth0]", "[]",
    "[::1]x", "[::01.2.3.4]", "[12345::1]", "[db]",
};
constexpr const char* kPorts[] = {"",  "0",     "1",     "3306",  "65535", "65536", "99999999999999999999",
                                  "-1", "+1",   "33a",   "0003306", "00000", " 1",  "4294967297"};
constexpr const char* kKeys[] = {"connect_timeout", "io_timeout", "socket", "timeout", "Socket", "", "ssl", "password"};
constexpr const char* kDurations[] = {"5s", "500ms", "0", "0s", "1", "86400s", "86401s", "86400000ms", "1h",  "",
                                      "-1", "5S",    "5 s", "99999999999999999999", "1.5s", "0ms", "7"};

std::string gen_password(gen& g) {
    std::string p(kMarker);
    p += g.field(10, "abcdefghijklmnopqrstuvwxyz");
    if (g.percent(10)) p += g.pick({"@", "/", "?", "#", " ", ":", "\n", "@@"});
    p += g.field(4);
    return p;
}

std::string gen_duration(gen& g) {
    if (g.percent(30)) return std::to_string(g.below(100000)) + g.pick({"", "s", "ms"});
    return g.pick(kDurations);
}

std::string gen_socket(gen& g) {
    if (g.percent(20)) return g.pick({"", "%2", "/a%00b", "/x%zz", "/tmp/a?b", "/a@b", "%2Frun%2Fmysqld.sock"});
    return "/" + g.field(12, "/");
}

// A DSN from the grammar, mostly well-formed, with a known password (if any).
std::string gen_dsn(gen& g) {
    std::string s = g.percent(95) ? g.pick({"mysql://", "mysql://", "mariadb://", "MySQL://", "MARIADB://"})
                                  : g.pick({"postgres://", "mysql:/", "mysql:", "", "mysql//", " mysql://"});
    if (!g.percent(5)) {
        s += g.percent(97) ? g.field(8, "abc") : std::string();
        if (g.percent(70)) s += ":" + gen_password(g);
        if (!g.percent(3)) s += "@";
    }
    std::string host = g.percent(90) ? g.pick(kHosts) : g.field(12, ".-_:[]");
    const bool socket_host = host.empty() || host == "localhost";
    s += host;
    if (g.percent(40)) s += std::string(":") + (g.percent(80) ? std::to_string(1 + g.below(65535)) : g.pick(kPorts));
    if (g.percent(60)) s += "/" + g.field(10, "/?");
    if (g.percent(60)) {
        s += "?";
        const std::size_t n = 1 + g.below(4);
        for (std::size_t i = 0; i < n; ++i) {
            if (i) s += g.percent(95) ? "&" : g.pick({"&&", "?", ";"});
            // Favour the known keys, and socket only where it is allowed, so many DSNs pass.
            std::string key = g.percent(85) ? (socket_host ? g.pick({"connect_timeout", "io_timeout", "socket"})
                                                           : g.pick({"connect_timeout", "io_timeout"}))
                                            : g.pick(kKeys);
            s += key;
            if (g.percent(97)) s += "=";
            s += key == "socket" ? gen_socket(g) : key.find("timeout") != std::string::npos ? gen_duration(g)
                                                                                              : g.field(6);
        }
        if (g.percent(3)) s += "&";
    }
    if (g.percent(2)) s += g.pick({"#frag", " ", "\t", "\r\n", "\x7f"});
    return s;
}

// Random options that parse_dsn() must accept once formatted (arbitrary bytes in user, password,
// schema, socket; valid hosts; any port and timeouts in range).
connect_options gen_options(gen& g) {
    auto bytes = [&](std::size_t min_len, std::size_t max_len) {
        std::string s;
        const std::size_t n = min_len + g.below(max_len - min_len + 1);
        for (std::size_t i = 0; i < n; ++i) s += static_cast<char>(1 + g.below(255));
        return s;
    };
    connect_options o;
    o.user = bytes(1, 10);
    o.password = g.percent(80) ? bytes(0, 16) : std::string();
    o.database = g.percent(70) ? bytes(0, 10) : std::string();
    o.host = g.pick({"db", "db.example.", "h_1", "10.0.0.5", "::1", "2001:db8::5", "::ffff:1.2.3.4", "localhost", ""});
    o.port = static_cast<std::uint16_t>(1 + g.below(65535));
    if (o.host.empty() || (o.host == "localhost" && g.percent(50))) o.unix_socket = bytes(1, 20);
    o.connect_timeout = std::chrono::milliseconds(g.percent(50) ? 1 + g.below(86'400'000) : 1000 * (1 + g.below(86'400)));
    o.io_timeout = std::chrono::milliseconds(g.percent(50) ? g.below(86'400'001) : 1000 * g.below(86'401));
    return o;
}

std::string mutate(gen& g, std::string s, const std::vector<std::string>& corpus) {
    static constexpr char interesting[] = ":/@?#[]%&=.-_ \t\n\r\x7f\x80\xff" "0129azAZ";
    const std::size_t rounds = 1 + g.below(3);
    for (std::size_t r = 0; r < rounds; ++r) {
        const std::size_t pos = g.below(s.size() + 1);
        switch (g.below(6)) {
        case 0:  // flip one byte (or bits of it)
            if (!s.empty()) s[g.below(s.size())] = g.percent(50) ? g.byte() : static_cast<char>(s[pos % s.size()] ^ (1 << g.below(8)));
            break;
        case 1:  // insert a byte
            s.insert(pos, 1, g.percent(60) ? interesting[g.below(sizeof(interesting) - 1)] : g.byte());
            break;
        case 2:  // delete a run
            if (!s.empty()) s.erase(pos % s.size(), 1 + g.below(3));
            break;
        case 3: {  // splice: a prefix of this one and a suffix of another valid DSN
            const std::string& other = corpus[g.below(corpus.size())];
            s = s.substr(0, pos) + other.substr(g.below(other.size() + 1));
            break;
        }
        case 4: {  // duplicate a segment
            if (s.empty()) break;
            const std::size_t from = g.below(s.size()), len = 1 + g.below(8);
            s.insert(pos, s.substr(from, len));
            break;
        }
        default:  // insert a percent-escape
            s.insert(pos, g.hex_escape(static_cast<unsigned char>(g.byte())));
        }
    }
    return s;
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

struct tally {
    std::size_t inputs = 0, accepted = 0, rejected = 0, failures = 0;
    void fail(std::string_view input, const std::string& what) {
        if (++failures <= 20) {
            std::string shown;
            for (char c : input) {
                auto u = static_cast<unsigned char>(c);
                char buf[8];
                if (u >= 0x20 && u < 0x7f) shown += c;
                else std::snprintf(buf, sizeof buf, "\\x%02X", u), shown += buf;
            }
            UNSCOPED_INFO("input \"" << shown << "\": " << what);
        }
    }
};

// What the resolver makes of an accepted host must be what the DSN says: an IPv6 literal only
// from brackets, and inet_aton() (which getaddrinfo() uses) reads a number only where it is a
// plain dotted quad; the host's bytes are those of a name or an address.
std::string host_problem(const connect_options& o, std::string_view input) {
    const std::string& h = o.host;
    if (h.empty()) return o.unix_socket.empty() ? "empty host without socket" : "";
    if (h.find(':') != std::string::npos) {
        unsigned char buf[16];
        if (inet_pton(AF_INET6, h.c_str(), buf) != 1) return "host with ':' that inet_pton(AF_INET6) refuses";
        if (!contains(input, "[" + h + "]")) return "IPv6 host that was not in brackets";
        return "";
    }
    for (char c : h) {
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return "host byte that is not in a host name or address";
    }
    in_addr a{};
    if (inet_aton(h.c_str(), &a) != 0) {  // the resolver will take it as an IPv4 address...
        char back[INET_ADDRSTRLEN];
        if (!inet_ntop(AF_INET, &a, back, sizeof back) || h != back)  // ...the one it spells out, exactly
            return "host that inet_aton() reads as the different address " + std::string(back);
    }
    return "";
}

// Checks one input against every property; true if it was accepted (then *accepted_out = options).
bool check(std::string_view input, tally& t, bool known_password, connect_options* accepted_out = nullptr) {
    ++t.inputs;
    std::error_code ec;
    diagnostics diag;
    const connect_options o = parse_dsn(input, ec, diag);
    if (ec) {
        ++t.rejected;
        if (ec != errc::invalid_dsn) t.fail(input, "refused with " + ec.message());
        if (diag.client_message.empty()) t.fail(input, "refused with an empty message");
        if (o != connect_options{}) t.fail(input, "refused, but returned non-default options");
        if (known_password && contains(diag.client_message, kMarker.substr(1)))
            t.fail(input, "message leaks the password: " + diag.client_message);
        if (t.inputs % 64 == 0) {  // the throwing shape agrees (sampled: exceptions are slow under ASan)
            try {
                (void)parse_dsn(input);
                t.fail(input, "the throwing shape accepted what the other refused");
            } catch (const lifeline::error& e) {
                if (e.code() != errc::invalid_dsn || e.diag().client_message != diag.client_message)
                    t.fail(input, "the throwing shape disagrees");
            }
        }
        return false;
    }
    ++t.accepted;
    if (!diag.client_message.empty()) t.fail(input, "accepted with a message");
    if (o.port == 0) t.fail(input, "accepted port 0");
    if (o.user.empty()) t.fail(input, "accepted an empty user");
    if (!validate(o).empty()) t.fail(input, "accepted options validate() refuses: " + validate(o));
    if (o.connect_timeout.count() <= 0 || o.connect_timeout > std::chrono::hours(24)) t.fail(input, "connect_timeout out of range");
    if (o.io_timeout.count() < 0 || o.io_timeout > std::chrono::hours(24)) t.fail(input, "io_timeout out of range");
    for (const std::string* f : {&o.user, &o.password, &o.database, &o.unix_socket, &o.host})
        if (f->find('\0') != std::string::npos) t.fail(input, "accepted a NUL byte");
    if (!o.unix_socket.empty() && !o.host.empty() && o.host != "localhost") t.fail(input, "socket with a remote host");
    if (std::string p = host_problem(o, input); !p.empty()) t.fail(input, p);
    // Round trip, with and without the password.
    const std::string again = format_dsn(o, true);
    std::error_code ec2;
    diagnostics d2;
    const connect_options o2 = parse_dsn(again, ec2, d2);
    if (ec2) t.fail(input, "format_dsn() gave \"" + again + "\", which is refused: " + d2.client_message);
    else if (o2 != o) t.fail(input, "format_dsn() gave \"" + again + "\", which reads back differently");
    else if (format_dsn(o2, true) != again) t.fail(input, "format_dsn() is not stable");
    // Without include_password the DSN reads back to the same options less the password.
    const std::string logged = format_dsn(o);
    connect_options no_pw = o;
    no_pw.password.clear();
    if (parse_dsn(logged, ec2, d2) != no_pw || ec2) t.fail(input, "format_dsn(o) does not read back without password");
    if (accepted_out) *accepted_out = o;
    return true;
}

std::uint64_t seed_from_env() {
    const char* s = std::getenv("LIFELINE_DSN_FUZZ_SEED");
    return s ? std::strtoull(s, nullptr, 10) : 20240611ull;
}

}  // namespace

TEST_CASE("fuzz: parse_dsn refuses or round-trips every input", "[unit][safety]") {
    const std::uint64_t seed = seed_from_env();
    gen g(seed);
    tally t;

    // Phase 1, unbounded by time: a corpus of valid DSNs, each of which must be accepted.
    std::vector<std::string> corpus = {
        "mysql://u@db", "mysql://app:s%40cret@db.example:3307/shop?connect_timeout=2s&io_timeout=500ms",
        "mariadb://root@[::1]:3307/db", "mysql://u:p@localhost/db?socket=/run/mysqld/mysqld.sock",
        "mysql://u@/db?socket=%2Ftmp%2Fm%20s&io_timeout=0", "mysql://a%20b:c%3Ad@10.0.0.5:1/s%2Fx?connect_timeout=1",
        "mysql://u:PWXabc@[2001:db8::5]/db?io_timeout=86400s",
    };
    for (int i = 0; i < 200; ++i) corpus.push_back(format_dsn(gen_options(g), true));
    for (const std::string& dsn : corpus) {
        INFO(dsn);
        connect_options o;
        CHECK(check(dsn, t, false, &o));
    }
    CHECK(t.failures == 0);
    REQUIRE(t.accepted == corpus.size());

    // Phase 2, bounded by kMaxInputs and kMaxSeconds: grammar DSNs, mutations, formatted options.
    const auto start = std::chrono::steady_clock::now();
    std::size_t by_kind[3] = {};
    while (t.inputs < kMaxInputs) {
        if ((t.inputs & 255) == 0 &&
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > kMaxSeconds)
            break;
        const std::size_t kind = g.below(10) < 5 ? 0 : g.below(10) < 8 ? 1 : 2;
        ++by_kind[kind];
        if (kind == 0) {
            check(gen_dsn(g), t, true);
        } else if (kind == 1) {
            const std::string dsn = mutate(g, corpus[g.below(corpus.size())], corpus);
            connect_options o;
            // Keep accepted mutants as seeds: mutations then reach further from the start corpus.
            if (check(dsn, t, false, &o) && corpus.size() < 5000) corpus.push_back(dsn);
        } else {
            const connect_options o = gen_options(g);
            const std::string dsn = format_dsn(o, true);
            connect_options back;
            if (!check(dsn, t, false, &back)) t.fail(dsn, "formatted valid options are refused");
            else if (back != o) t.fail(dsn, "formatted options read back differently");
        }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("dsn fuzz: seed %llu, %zu inputs (%zu grammar, %zu mutated, %zu formatted) in %.1f s: %zu accepted, "
                "%zu refused, %zu failures\n",
                static_cast<unsigned long long>(seed), t.inputs, by_kind[0], by_kind[1], by_kind[2], secs, t.accepted,
                t.rejected, t.failures);
    CHECK(t.failures == 0);
    CHECK(t.rejected > 0);
}

TEST_CASE("differential: bracketed hosts are accepted exactly when inet_pton(AF_INET6) accepts them",
          "[unit][safety]") {
    gen g(seed_from_env() ^ 0x6a09e667f3bcc908ull);
    std::size_t agree_yes = 0, agree_no = 0, disagree = 0;
    for (int i = 0; i < 50000; ++i) {
        std::string h = g.percent(50) ? g.text("0123456789abcdefABCDEF:.", 1, 40) : g.text("01f:.", 1, 24);
        if (g.percent(20)) h = g.pick({"::", "::1", "1::", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4"}) + h.substr(0, g.below(3));
        unsigned char buf[16];
        const bool libc = inet_pton(AF_INET6, h.c_str(), buf) == 1;
        std::error_code ec;
        diagnostics d;
        const connect_options o = parse_dsn("mysql://u@[" + h + "]:3307/db", ec, d);
        const bool ours = !ec;
        if (ours == libc) {
            (ours ? agree_yes : agree_no)++;
            if (ours) CHECK(o.host == h);
        } else if (++disagree <= 10) {
            FAIL_CHECK("[" << h << "]: inet_pton says " << libc << ", parse_dsn says " << ours << " " << d.client_message);
        }
    }
    std::printf("ipv6 differential: %zu accepted by both, %zu refused by both, %zu disagreements\n", agree_yes, agree_no,
                disagree);
    CHECK(disagree == 0);
    CHECK(agree_yes > 100);
    CHECK(agree_no > 100);
}

TEST_CASE("differential: a numeric host is accepted exactly when it is a strict dotted quad", "[unit][safety]") {
    gen g(seed_from_env() ^ 0xbb67ae8584caa73bull);
    std::size_t agree_yes = 0, agree_no = 0, disagree = 0;
    for (int i = 0; i < 50000; ++i) {
        std::string h = g.percent(70) ? g.text("0123456789.", 1, 18) : g.text("0123456789.xabf", 1, 18);
        if (g.percent(30))
            h = std::to_string(g.below(300)) + "." + std::to_string(g.below(300)) + "." + std::to_string(g.below(300)) +
                "." + std::to_string(g.below(300)) + (g.percent(20) ? "." : "");
        unsigned char buf[4];
        // inet_pton(AF_INET) is the strict reading: four decimals 0-255, no leading zeros.
        const bool strict = inet_pton(AF_INET, h.c_str(), buf) == 1;
        in_addr a{};
        const bool resolver_number = inet_aton(h.c_str(), &a) != 0;
        std::error_code ec;
        diagnostics d;
        parse_dsn("mysql://u@" + h + "/db", ec, d);
        const bool ours = !ec;
        // Whatever the resolver would read as a number must be accepted only if strict.
        const bool ok = resolver_number ? ours == strict : (!ours || h.find_first_not_of("0123456789.") != std::string::npos ||
                                                            strict);
        if (ok) {
            (ours ? agree_yes : agree_no)++;
        } else if (++disagree <= 10) {
            FAIL_CHECK(h << ": strict " << strict << ", inet_aton " << resolver_number << ", parse_dsn " << ours << " "
                         << d.client_message);
        }
    }
    std::printf("ipv4 differential: %zu accepted, %zu refused, %zu disagreements\n", agree_yes, agree_no, disagree);
    CHECK(disagree == 0);
    CHECK(agree_yes > 100);
    CHECK(agree_no > 100);
}
