// connect_options validation, DSN parsing and formatting: bad input gets an error that says what
// to fix (never quoting the password), and no DSN silently means something else (safety hole 10).
#include <lifeline/options.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <system_error>

using namespace lifeline;
using namespace std::chrono_literals;

namespace {

struct parsed {
    connect_options options;
    std::error_code ec;
    diagnostics diag;
};

parsed parse(std::string_view dsn) {
    parsed p;
    p.options = parse_dsn(dsn, p.ec, p.diag);
    return p;
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// Both shapes refuse `dsn` with errc::invalid_dsn and the same message, which is returned.
std::string rejection(std::string_view dsn) {
    INFO("DSN: " << dsn);
    parsed p = parse(dsn);
    CHECK(p.ec == errc::invalid_dsn);
    CHECK(p.ec == std::errc::invalid_argument);
    CHECK_FALSE(p.diag.client_message.empty());
    CHECK(p.options == connect_options{});  // never a half-filled result
    bool threw = false;
    try {
        (void)parse_dsn(dsn);
    } catch (const lifeline::error& e) {
        threw = true;
        CHECK(e.code() == errc::invalid_dsn);
        CHECK(e.diag().client_message == p.diag.client_message);
        CHECK(contains(e.what(), p.diag.client_message));
    }
    CHECK(threw);
    return p.diag.client_message;
}

}  // namespace

TEST_CASE("a full DSN is parsed", "[unit][safety]") {
    connect_options o = parse_dsn("mysql://app:s%40cret@db.example:3307/shop?connect_timeout=2s&io_timeout=500ms");
    CHECK(o.user == "app");
    CHECK(o.password == "s@cret");
    CHECK(o.host == "db.example");
    CHECK(o.port == 3307);
    CHECK(o.database == "shop");
    CHECK(o.connect_timeout == 2s);
    CHECK(o.io_timeout == 500ms);
    CHECK(o.unix_socket.empty());

    parsed p = parse("mysql://app:s%40cret@db.example:3307/shop");
    CHECK_FALSE(p.ec);
    CHECK(p.diag.client_message.empty());
}

TEST_CASE("DSN defaults, and both schemes", "[unit][safety]") {
    connect_options o = parse_dsn("mariadb://root@db");
    CHECK(o.host == "db");
    CHECK(o.port == 3306);
    CHECK(o.database.empty());
    CHECK(o.password.empty());
    CHECK(o.connect_timeout == connect_options{}.connect_timeout);
    CHECK(o.io_timeout == connect_options{}.io_timeout);
    CHECK(parse_dsn("MySQL://root@db") == o);  // schemes are case-insensitive
    CHECK(parse_dsn("mysql://root@db/") == o);  // an empty schema is no schema
    CHECK(parse_dsn("mysql://root:@db") == o);  // an empty password is no password
}

TEST_CASE("an unbracketed IPv6 address is refused, with a pointer to brackets", "[unit][safety]") {
    // Before: host ":" and port 1, i.e. a different server.
    std::string why = rejection("mysql://u@::1/db");
    CHECK(contains(why, "bracket"));
    CHECK(contains(why, "[::1]"));
    CHECK(contains(rejection("mysql://u@fe80::1:3306/db"), "bracket"));
    CHECK(contains(rejection("mysql://u@2001:db8::5"), "bracket"));
}

TEST_CASE("a bracketed IPv6 address gives host and port", "[unit][safety]") {
    connect_options o = parse_dsn("mysql://u@[::1]:3307/db");
    CHECK(o.host == "::1");
    CHECK(o.port == 3307);
    CHECK(o.database == "db");
    CHECK(parse_dsn("mysql://u@[2001:db8::5]").host == "2001:db8::5");
    CHECK(parse_dsn("mysql://u@[::ffff:10.0.0.5]:1").host == "::ffff:10.0.0.5");
    CHECK(parse_dsn("mysql://u@[1:2:3:4:5:6:7:8]").host == "1:2:3:4:5:6:7:8");
    CHECK(contains(rejection("mysql://u@[::1/db"), "unclosed '['"));
    CHECK(contains(rejection("mysql://u@[10.0.0.5]/db"), "only for IPv6"));
    CHECK(contains(rejection("mysql://u@[db]/db"), "only for IPv6"));
    CHECK(contains(rejection("mysql://u@[1::2::3]/db"), "not an IPv6 address"));
    CHECK(contains(rejection("mysql://u@[1:2:3:4:5:6:7:8:9]/db"), "not an IPv6 address"));
    CHECK(contains(rejection("mysql://u@[fe80::1%25eth0]/db"), "zone ids"));
    CHECK(contains(rejection("mysql://u@[::1]3307/db"), "only :port may follow"));
}

TEST_CASE("an empty, non-numeric or out-of-range port is refused", "[unit][safety]") {
    // Before: "h:" silently became port 3306.
    CHECK(contains(rejection("mysql://u@h:/db"), "no port number"));
    CHECK(contains(rejection("mysql://u@[::1]:/db"), "no port number"));
    CHECK(contains(rejection("mysql://u@h:0"), "port 0"));
    CHECK(contains(rejection("mysql://u@h:00000"), "port 0"));
    CHECK(contains(rejection("mysql://u@h:65536"), "out of range 1..65535"));
    CHECK(contains(rejection("mysql://u@h:99999999999999999999"), "out of range 1..65535"));
    CHECK(contains(rejection("mysql://u@h:abc/db"), "not a number"));
    CHECK(contains(rejection("mysql://u@h:-1/db"), "not a number"));
    CHECK(contains(rejection("mysql://u@h:+1/db"), "not a number"));
    CHECK(parse_dsn("mysql://u@h:1").port == 1);
    CHECK(parse_dsn("mysql://u@h:65535").port == 65535);
}

TEST_CASE("hosts: names and strict IPv4 only", "[unit][safety]") {
    CHECK(parse_dsn("mysql://u@db-1.internal_zone.example.").host == "db-1.internal_zone.example.");
    CHECK(parse_dsn("mysql://u@10.0.0.5:3307").host == "10.0.0.5");
    CHECK(parse_dsn("mysql://u@255.255.255.255").host == "255.255.255.255");
    for (const char* bad : {"mysql://u@h%20x/db", "mysql://u@h\\x/db", "mysql://u@h!/db", "mysql://u@h]/db",
                            "mysql://u@h%2Fx/db", "mysql://u@h\xc3\xa9/db"}) {
        CHECK(contains(rejection(bad), "cannot be in a host name"));
    }
    // inet_aton() reads these as other addresses (octal, hex, short forms): refused.
    for (const char* bad : {"mysql://u@010.0.0.1", "mysql://u@0x7f.0.0.1", "mysql://u@127.1", "mysql://u@2130706433",
                            "mysql://u@256.0.0.1", "mysql://u@1.2.3.4.5", "mysql://u@0x7f", "mysql://u@db.0x7f",
                            "mysql://u@10.0.0.5."}) {
        CHECK(contains(rejection(bad), "dotted-quad"));
    }
    CHECK(contains(rejection("mysql://u@a..b"), "empty label"));
    CHECK(contains(rejection("mysql://u@-db"), "'-'"));
    CHECK(contains(rejection("mysql://u@" + std::string(64, 'a')), "63"));
    CHECK(contains(rejection("mysql://u@/db"), "host is empty"));
    CHECK(contains(rejection("mysql://u@:3306/db"), "host is empty"));
}

TEST_CASE("whitespace, control bytes, '#' and NUL are refused", "[unit][safety]") {
    CHECK(contains(rejection(" mysql://u@h/db"), "mysql://"));
    CHECK(contains(rejection("mysql://u@h/db "), "whitespace"));
    CHECK(contains(rejection("mysql://u@h/d b"), "%20"));
    CHECK(contains(rejection("mysql://u@h/db\n"), "\\x0A"));
    CHECK(contains(rejection(std::string_view("mysql://u@h/d\0b", 16)), "\\x00"));
    CHECK(contains(rejection("mysql://u@h/db\x7f"), "\\x7F"));
    CHECK(contains(rejection("mysql://u@h/db#frag"), "%23"));
    CHECK(contains(rejection("mysql://u%00x@h/db"), "user contains %00"));
    CHECK(contains(rejection("mysql://u:p%00@h/db"), "password contains %00"));
    CHECK(contains(rejection("mysql://u@h/d%00b"), "schema contains %00"));
    CHECK(contains(rejection("mysql://u@/db?socket=/s%00"), "socket"));
}

TEST_CASE("bad percent escapes are refused", "[unit][safety]") {
    CHECK(contains(rejection("mysql://u:%zz@h"), "bad percent-escape in the password"));
    CHECK(contains(rejection("mysql://u:%4@h"), "bad percent-escape in the password"));
    CHECK(contains(rejection("mysql://u%@h"), "bad percent-escape in the user"));
    CHECK(contains(rejection("mysql://u@h/d%g1"), "bad percent-escape in the schema"));
    CHECK(contains(rejection("mysql://u@/db?socket=%2"), "socket"));
}

TEST_CASE("percent-decoding of user, password, schema and socket", "[unit][safety]") {
    connect_options o = parse_dsn("mysql://a%20b%3Ac:p%40ss%25%3a%2F%3F%23x@localhost/s%2Fx%c3%A9?socket=%2Ftmp%2Fm%20s");
    CHECK(o.user == "a b:c");
    CHECK(o.password == "p@ss%:/?#x");
    CHECK(o.database == "s/x\xc3\xa9");
    CHECK(o.unix_socket == "/tmp/m s");
    CHECK(o.host == "localhost");
    // '+' is a plus, not a space (this is not form encoding); a raw ':' in the password is data.
    o = parse_dsn("mysql://u:a+b:c@h/x+y");
    CHECK(o.password == "a+b:c");
    CHECK(o.database == "x+y");
}

TEST_CASE("an '@', '/' or '?' in the password must be percent-encoded", "[unit][safety]") {
    // Two readings are possible, so neither is guessed.
    CHECK(contains(rejection("mysql://u:p@ss@h/db"), "%40"));
    CHECK(contains(rejection("mysql://u@h/db?socket=/a@b"), "%40"));
    CHECK(contains(rejection("mysql://u:p/ss@h/db"), "%2F"));
    CHECK(contains(rejection("mysql://u:p?ss@h/db"), "%3F"));
    CHECK(contains(rejection("mysql://h:3306/db"), "user@"));
    CHECK(contains(rejection("mysql://@h"), "user is empty"));
    CHECK(contains(rejection("mysql://:pw@h"), "user is empty"));
}

TEST_CASE("options: known keys once each, with valid values", "[unit][safety]") {
    connect_options o = parse_dsn("mysql://u@h?io_timeout=0&connect_timeout=1500ms");
    CHECK(o.io_timeout == 0ms);
    CHECK(o.connect_timeout == 1500ms);
    CHECK(parse_dsn("mysql://u@h?connect_timeout=7").connect_timeout == 7s);
    CHECK(parse_dsn("mysql://u@h?io_timeout=86400s").io_timeout == 24h);

    std::string why = rejection("mysql://u@h/db?connect_timeout=2s&connect_timeout=3s");
    CHECK(contains(why, "'connect_timeout' is given more than once"));
    why = rejection("mysql://u@h/db?timeout=5");
    CHECK(contains(why, "unknown option 'timeout'"));
    CHECK(contains(why, "known: connect_timeout, io_timeout, socket"));
    CHECK(contains(rejection("mysql://u@h/db?Socket=/x"), "unknown option 'Socket'"));
    CHECK(contains(rejection("mysql://u@h/db?=5"), "empty name"));
    CHECK(contains(rejection("mysql://u@h/db?io_timeout=1&&connect_timeout=2"), "empty option"));
    CHECK(contains(rejection("mysql://u@h/db?io_timeout=1&"), "empty option"));
    CHECK(contains(rejection("mysql://u@h/db?"), "nothing follows '?'"));
    CHECK(contains(rejection("mysql://u@h/db?io_timeout"), "no '=value'"));
    CHECK(contains(rejection("mysql://u@h/db?io_timeout=1?connect_timeout=2"), "second '?'"));
    CHECK(contains(rejection("mysql://u@h/db?connect_timeout=soon"), "'connect_timeout' has the bad value 'soon'"));
    CHECK(contains(rejection("mysql://u@h/db?connect_timeout=5m"), "5s or 500ms"));
    CHECK(contains(rejection("mysql://u@h/db?io_timeout=86401s"), "at most 86400s"));
    CHECK(contains(rejection("mysql://u@h/db?io_timeout=-1"), "bad value"));
    CHECK(contains(rejection("mysql://u@h/db?io_timeout="), "bad value"));
    CHECK(contains(rejection("mysql://u@h/db?connect_timeout=0s"), "connect_timeout must be > 0"));
    CHECK(contains(rejection("mysql://u@/db?socket="), "socket"));
}

TEST_CASE("socket= goes with an empty host or localhost", "[unit][safety]") {
    connect_options o = parse_dsn("mysql://u@/db?socket=/run/mysqld/mysqld.sock");
    CHECK(o.host.empty());
    CHECK(o.unix_socket == "/run/mysqld/mysqld.sock");
    CHECK(parse_dsn("mysql://u@localhost/db?socket=/s").host == "localhost");
    // The C API would go over TCP to db and ignore the socket; Connector/C++ would use the socket.
    CHECK(contains(rejection("mysql://u@db/x?socket=/s"), "unix socket is local"));
    CHECK(contains(rejection("mysql://u@127.0.0.1/x?socket=/s"), "unix socket is local"));
}

TEST_CASE("scheme", "[unit][safety]") {
    CHECK(contains(rejection("postgres://u@h/db"), "mysql:// or mariadb://"));
    CHECK(contains(rejection("mysql:/u@h/db"), "mysql:// or mariadb://"));
    CHECK(contains(rejection(""), "mysql:// or mariadb://"));
}

TEST_CASE("an error message never contains the password", "[unit][safety]") {
    // Each DSN carries the password S3cretPW (raw or encoded) and is wrong somewhere.
    for (const char* dsn : {
             "mysql://u:S3cretPW@::1/db",
             "mysql://u:S3cretPW@h:/db",
             "mysql://u:S3cretPW@h:0/db",
             "mysql://u:S3cretPW@h:99999999999999999999/db",
             "mysql://u:S3cretPW@h/db?connect_timeout=2s&connect_timeout=2s",
             "mysql://u:S3cretPW@h/db?password=S3cretPW",
             "mysql://u:S3cretPW@h/db?connect_timeout=x",
             "mysql://u:S3cretPW@h!x/db",
             "mysql://u:S3cretPW@[::1/db",
             "mysql://u:S3cretPW@/db",
             "mysql://u:S3cretPW%zz@h/db",
             "mysql://u:S3cretPW%00@h/db",
             "mysql://u:S3cretPW@@h/db",
             "mysql://u:S3cr@etPW@h/db",
             "mysql://u:S3cr/etPW@h/db",
             "mysql://u:S3cr?etPW@h/db",
             "mysql://u:S3cr#etPW@h/db",
             "mysql://u:S3cr etPW@h/db",
             "mysql://u:S3cretPW/db",
             "mysql://u:S3cretPW",
             "mysql://:S3cretPW@h/db",
             "mysql://u:%53%33cretPW@h/db?io_timeout=-1",
             "mysql://u:S3cretPW@h/db?socket=/s",
             "mysql://u:S3cretPW@h/db?connect_timeout=0",
             "mysql://u:S3cretPW@h/a/b",
             "mysql://u:S3cretPW@h/db?",
             "postgres://u:S3cretPW@h/db",
         }) {
        INFO(dsn);
        std::string why = rejection(dsn);
        CHECK_FALSE(contains(why, "S3cr"));
        CHECK_FALSE(contains(why, "etPW"));
        try {
            (void)parse_dsn(dsn);
        } catch (const lifeline::error& e) {
            CHECK_FALSE(contains(e.what(), "S3cr"));
        }
    }
}

TEST_CASE("format_dsn writes what parse_dsn reads back, the password only on request", "[unit][safety]") {
    connect_options o;
    o.user = "app user";
    o.password = "p@ss:/?#%&=x";
    o.host = "db.example";
    o.port = 3307;
    o.database = "shop/eu";
    o.connect_timeout = 1500ms;
    CHECK(format_dsn(o) == "mysql://app%20user@db.example:3307/shop%2Feu?connect_timeout=1500ms");
    CHECK_FALSE(contains(format_dsn(o), "p%40ss"));
    const std::string with = format_dsn(o, true);
    CHECK(with == "mysql://app%20user:p%40ss%3A%2F%3F%23%25%26%3Dx@db.example:3307/shop%2Feu?connect_timeout=1500ms");
    CHECK(parse_dsn(with) == o);
    connect_options no_password = o;
    no_password.password.clear();
    CHECK(parse_dsn(format_dsn(o)) == no_password);

    connect_options v6;
    v6.user = "u";
    v6.host = "2001:db8::5";
    v6.io_timeout = 5s;
    CHECK(format_dsn(v6) == "mysql://u@[2001:db8::5]:3306?io_timeout=5s");
    CHECK(parse_dsn(format_dsn(v6)) == v6);

    connect_options sock;
    sock.user = "u";
    sock.host.clear();
    sock.unix_socket = "/run/my sql/x.sock";
    CHECK(format_dsn(sock) == "mysql://u@?socket=/run/my%20sql/x.sock");
    CHECK(parse_dsn(format_dsn(sock)) == sock);
}

TEST_CASE("validate() names the field and the fix", "[unit][retry]") {
    connect_options o;
    o.user = "u";
    CHECK(validate(o).empty());
    o.port = 0;
    CHECK(validate(o).find("connect_options.port") != std::string::npos);
    o.port = 3306;
    o.connect_timeout = 0ms;
    CHECK(validate(o).find("connect_timeout") != std::string::npos);
}
