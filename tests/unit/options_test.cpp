// connect_options validation and DSN parsing: bad input gets an error that says what to fix.
#include <lifeline/options.hpp>

#include <catch2/catch.hpp>

using namespace lifeline;
using namespace std::chrono_literals;

TEST_CASE("a full DSN is parsed", "[unit][retry]") {
    connect_options o;
    std::string err;
    REQUIRE(parse_dsn("mysql://app:s%40cret@db.example:3307/shop?connect_timeout=2s&io_timeout=500ms", o, err));
    CHECK(err.empty());
    CHECK(o.user == "app");
    CHECK(o.password == "s@cret");
    CHECK(o.host == "db.example");
    CHECK(o.port == 3307);
    CHECK(o.database == "shop");
    CHECK(o.connect_timeout == 2s);
    CHECK(o.io_timeout == 500ms);
}

TEST_CASE("DSN defaults and IPv6", "[unit][retry]") {
    connect_options o;
    std::string err;
    REQUIRE(parse_dsn("mariadb://root@[::1]", o, err));
    CHECK(o.host == "::1");
    CHECK(o.port == 3306);
    CHECK(o.database.empty());
    CHECK(o.password.empty());
}

TEST_CASE("bad DSNs are rejected with the reason and leave the output untouched", "[unit][retry]") {
    struct bad {
        const char* dsn;
        const char* says;
    };
    for (auto b : {bad{"postgres://u@h/db", "scheme"}, bad{"mysql://h:3306/db", "user@"},
                   bad{"mysql://u@h:99999/db", "out of range"}, bad{"mysql://u@h:abc/db", "not a number"},
                   bad{"mysql://u@h:0", "port 0"}, bad{"mysql://u@h/db?timeout=5", "unknown option 'timeout'"},
                   bad{"mysql://u@h/db?connect_timeout=soon", "connect_timeout"},
                   bad{"mysql://u:%zz@h", "percent-escape"}, bad{"mysql://u@[::1/db", "unclosed"},
                   bad{"mysql://u@h/db?connect_timeout=0s", "connect_timeout must be > 0"},
                   bad{"mysql://@h", "empty user"}}) {
        connect_options o;
        o.host = "untouched";
        std::string err;
        INFO(b.dsn);
        CHECK_FALSE(parse_dsn(b.dsn, o, err));
        CHECK(err.find(b.says) != std::string::npos);
        CHECK(err.find("invalid DSN") == 0);
        CHECK(o.host == "untouched");
    }
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
