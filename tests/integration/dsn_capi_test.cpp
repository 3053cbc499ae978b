// parse_dsn() against the real server: what a DSN says is where the C API goes, as whom, into
// which schema — over TCP, through the unix socket, and with a password that needs every escape.
#include "capi_support.hpp"

#include <lifeline/driver/capi.hpp>
#include <lifeline/options.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace lifeline::test;

namespace {

// Connects with the options as the capi adapter does (host, user, password, schema, port, socket).
mysql_handle connect_with(const lifeline::connect_options& o) {
    mysql_handle m(mysql_init(nullptr));
    unsigned timeout = 10;
    mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    const char* db = o.database.empty() ? nullptr : o.database.c_str();
    const char* sock = o.unix_socket.empty() ? nullptr : o.unix_socket.c_str();
    if (!mysql_real_connect(m.get(), o.host.c_str(), o.user.c_str(), o.password.c_str(), db, o.port, sock, 0))
        throw server_error(std::string("connect with the parsed DSN failed: ") + mysql_error(m.get()) + " (" +
                           std::to_string(mysql_errno(m.get())) + ")");
    return m;
}

std::string encoded(const std::string& s) {
    std::string out;
    lifeline::detail::dsn_encode(s, out, "/");
    return out;
}

}  // namespace

TEST_CASE("a TCP DSN reaches the server, user and schema it names", "[dsn][capi]") {
    auto srv = server::attach();
    const endpoint& e = srv.where();
    const std::string dsn = "mysql://" + e.app_user + ":" + encoded(e.app_password) + "@" + e.host + ":" +
                            std::to_string(e.port) + "/" + e.database + "?connect_timeout=5s&io_timeout=30s";
    const lifeline::connect_options o = lifeline::parse_dsn(dsn);
    auto m = connect_with(o);
    CHECK(capi_scalar(m.get(), "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)") == e.app_user);
    CHECK(capi_scalar(m.get(), "SELECT DATABASE()") == e.database);
    CHECK(capi_scalar(m.get(), "SELECT @@port") == std::to_string(e.port));
    CHECK(std::string(mysql_get_host_info(m.get())).find("TCP/IP") != std::string::npos);
    // format_dsn() of what was parsed reaches the same place.
    auto again = connect_with(lifeline::parse_dsn(lifeline::format_dsn(o, true)));
    CHECK(capi_scalar(again.get(), "SELECT DATABASE()") == e.database);
}

TEST_CASE("a socket DSN goes through the unix socket", "[dsn][capi]") {
    auto srv = server::attach();
    const endpoint& e = srv.where();
    REQUIRE_FALSE(e.socket.empty());
    for (const std::string host : {"", "localhost"}) {
        INFO("host '" << host << "'");
        const lifeline::connect_options o = lifeline::parse_dsn("mysql://" + e.app_user + ":" + encoded(e.app_password) +
                                                                "@" + host + "/" + e.database +
                                                                "?socket=" + encoded(e.socket));
        CHECK(o.unix_socket == e.socket);
        auto m = connect_with(o);
        CHECK(std::string(mysql_get_host_info(m.get())).find("socket") != std::string::npos);
        CHECK(capi_scalar(m.get(), "SELECT @@socket") == e.socket);
        CHECK(capi_scalar(m.get(), "SELECT DATABASE()") == e.database);
    }
}

TEST_CASE("a password with '@', ':', '/', '?', '#', '%' and a space logs in once percent-encoded", "[dsn][capi]") {
    auto srv = server::attach();
    const endpoint& e = srv.where();
    const std::string user = "dsn user";
    const std::string password = "p@ss:w/o?r#d% x&y=z";
    {
        auto admin = capi_connect(e, capi_options{true});
        capi_exec(admin.get(), "DROP USER IF EXISTS 'dsn user'@'%'");
        capi_exec(admin.get(), "CREATE USER 'dsn user'@'%' IDENTIFIED BY 'p@ss:w/o?r#d% x&y=z'");
        capi_exec(admin.get(), "GRANT SELECT ON " + e.database + ".* TO 'dsn user'@'%'");
    }
    lifeline::connect_options o;
    o.user = user;
    o.password = password;
    o.host = e.host;
    o.port = static_cast<std::uint16_t>(e.port);
    o.database = e.database;
    const std::string dsn = lifeline::format_dsn(o, true);
    CHECK(dsn.find(password) == std::string::npos);  // encoded, not raw
    const lifeline::connect_options parsed = lifeline::parse_dsn(dsn);
    CHECK(parsed == o);
    auto m = connect_with(parsed);
    CHECK(capi_scalar(m.get(), "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)") == user);

    // The same password written raw is refused, not guessed at; the message does not hold it.
    std::error_code ec;
    lifeline::diagnostics diag;
    (void)lifeline::parse_dsn("mysql://u:" + password + "@" + e.host + "/" + e.database, ec, diag);
    CHECK(ec == lifeline::errc::invalid_dsn);
    CHECK(diag.client_message.find("p@ss") == std::string::npos);
    CHECK(diag.client_message.find("percent-encode") != std::string::npos);
}
