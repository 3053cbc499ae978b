// connect_options against the real server, both drivers (label options): connection attributes,
// character set and collation at the handshake, compression, the client's max_allowed_packet, the
// pre-connect hook, ssl_mode without TLS on the server, TCP keepalive and TCP_USER_TIMEOUT (read
// back with getsockopt, and through the fault proxy's blackhole), adopting open connections, and
// the server's flavour in classification (MariaDB; a Galera node in its own entry).
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/detail/reaper.hpp>
#include <lifeline/detail/socket_discovery.hpp>
#include <lifeline/detail/tcp_keepalive.hpp>
#include <lifeline/driver/capi.hpp>
#include <lifeline/driver/jdbc.hpp>
#include <lifeline/testing/fault_proxy.hpp>

#include <catch2/catch.hpp>

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

template <class Driver>
std::unique_ptr<lifeline::connection<Driver>> make_db(connect_options o, default_policy p = {},
                                                       typename lifeline::connection<Driver>::session_spec spec = {}) {
    if (p.retry.deadline == default_policy{}.retry.deadline) p.retry.deadline = 10s;
    auto db = std::make_unique<lifeline::connection<Driver>>(std::move(o), p, std::move(spec));
    db->set_retry_budget(std::make_shared<retry_budget>(p.budget));
    db->set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
    db->set_endpoint_monitor(std::make_shared<endpoint_monitor>(p.probe));
    return db;
}

template <class Db>
std::string scalar(Db& db, const std::string& sql) {
    return db.query(sql, idempotent).scalar().value_or("NULL");
}

void admin(const endpoint& e, const std::string& sql) {
    auto m = capi_connect(e, capi_options{true});
    capi_exec(m.get(), sql);
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 20s) {
    const auto until = clk::now() + limit;
    while (clk::now() < until) {
        if (pred()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return pred();
}

// Every descriptor of this process that is a TCP socket to 127.0.0.1:port (a session's driver
// descriptor and lifeline's duplicate of it are two views of one socket).
std::vector<int> sockets_to(unsigned port) {
    std::vector<int> out;
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return out;
    while (dirent* ent = ::readdir(d)) {
        const int fd = std::atoi(ent->d_name);
        if (ent->d_name[0] < '0' || ent->d_name[0] > '9' || fd == ::dirfd(d)) continue;
        detail::inet_endpoint peer;
        if (detail::is_tcp_socket(fd) && detail::peer_endpoint(fd, peer) && peer.port == port) out.push_back(fd);
    }
    ::closedir(d);
    return out;
}

void check_settings(const detail::tcp_settings& s, int idle, int interval, int count, unsigned user_ms) {
    REQUIRE(s.ok);
    CHECK(s.keepalive);
    CHECK(s.idle_s == idle);
    CHECK(s.interval_s == interval);
    CHECK(s.count == count);
    CHECK(s.user_timeout_ms == user_ms);
}

}  // namespace

// --- integration.options.misc (server: --performance-schema=ON) -----------------------------------

TEST_CASE("options: connection attributes reach performance_schema.session_connect_attrs", "[options][misc]") {
    const auto srv = server::attach();
    connect_options o = options_for(srv.where());
    o.attributes = {{"program_name", "billing-svc"}, {"env", "test, with a comma"}};
    // What the server recorded for a session, as an admin sees it (performance_schema needs the grant).
    auto attrs_of = [&](std::uint64_t id) {
        auto a = capi_connect(srv.where(), capi_options{true});
        return capi_scalar(a.get(), "SELECT GROUP_CONCAT(CONCAT(ATTR_NAME, '=', ATTR_VALUE) ORDER BY ATTR_NAME SEPARATOR "
                                    "'|') FROM performance_schema.session_connect_attrs WHERE PROCESSLIST_ID = " +
                                        std::to_string(id) + " AND ATTR_NAME IN ('program_name', 'env')");
    };
    auto c = make_db<capi>(o);
    c->connect();
    CHECK(attrs_of(c->connection_id()) == "env=test, with a comma|program_name=billing-svc");
    auto j = make_db<jdbc>(o);
    j->connect();
    CHECK(attrs_of(j->connection_id()) == "env=test, with a comma|program_name=billing-svc");
    // From a DSN (',' and ':' percent-encoded inside a value).
    const auto& e = srv.where();
    auto d = make_db<capi>(parse_dsn("mysql://" + e.app_user + ":" + e.app_password + "@127.0.0.1:" +
                                     std::to_string(e.port) + "/" + e.database +
                                     "?connect_attrs=program_name:dsn%3Aside,env:test%2C%20with%20a%20comma"));
    d->connect();
    CHECK(attrs_of(d->connection_id()) == "env=test, with a comma|program_name=dsn:side");
}

TEST_CASE("options: character set and collation are the session's from the handshake on, and after a reconnect",
          "[options][misc]") {
    const auto srv = server::attach();
    connect_options o = options_for(srv.where());
    o.charset = "latin1";
    o.collation = "latin1_german1_ci";
    const std::string q = "SELECT CONCAT(@@character_set_client, ' ', @@character_set_results, ' ', @@collation_connection)";
    auto c = make_db<capi>(o);
    CHECK(scalar(*c, q) == "latin1 latin1 latin1_german1_ci");
    CHECK(std::string(mysql_character_set_name(c->native())) == "latin1");  // what the driver escapes with
    const auto first = c->connection_id();
    admin(srv.where(), "KILL CONNECTION " + std::to_string(first));
    CHECK(eventually([&] { return scalar(*c, q) == "latin1 latin1 latin1_german1_ci"; }, 10s));
    CHECK(c->connection_id() != first);
    auto j = make_db<jdbc>(o);
    CHECK(scalar(*j, q) == "latin1 latin1 latin1_german1_ci");
    // An unknown character set is refused when the connection is built, with the fix.
    connect_options bad = options_for(srv.where());
    bad.charset = "klingon";
    CHECK_THROWS_WITH(lifeline::connection<capi>(bad), Catch::Contains("not a character set"));
    bad.charset = "utf8mb4";
    bad.collation = "latin1_swedish_ci";
    CHECK_THROWS_WITH(lifeline::connection<capi>(bad), Catch::Contains("does not belong"));
}

TEST_CASE("options: compression", "[options][misc]") {
    const auto srv = server::attach();
    connect_options o = options_for(srv.where());
    o.compress = true;
    const std::string q = "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'COMPRESSION'";
    auto c = make_db<capi>(o);
    CHECK(scalar(*c, q) == "ON");
    auto j = make_db<jdbc>(o);
    CHECK(scalar(*j, q) == "ON");
    auto plain = make_db<capi>(options_for(srv.where()));
    CHECK(scalar(*plain, q) == "OFF");
}

TEST_CASE("options: the client's max_allowed_packet bounds what is sent and read", "[options][misc]") {
    const auto srv = server::attach();
    connect_options o = options_for(srv.where());
    o.max_allowed_packet = 64 * 1024;
    auto c = make_db<capi>(o);
    CHECK(scalar(*c, "SELECT 1") == "1");
    // Larger than the client's limit (the server's is 16M): refused before it is sent.
    std::error_code ec;
    diagnostics d;
    c->query("SELECT '" + std::string(100 * 1024, 'x') + "'", {}, {}, ec, d);
    CHECK(ec == errc::statement_too_large);
    CHECK(d.client_message.find("65536") != std::string::npos);
    // The driver itself reads no larger packet: a 100 KB row fails (Connector/C reports it as 2013),
    // while the same row reads fine with the driver's default limit.
    c->query("SELECT REPEAT('x', 100000)", idempotent, {}, ec, d);
    CHECK(ec.category() == client_category());
    auto unlimited = make_db<capi>(options_for(srv.where()));
    CHECK(scalar(*unlimited, "SELECT LENGTH(REPEAT('x', 100000))") == "100000");
    auto j = make_db<jdbc>(o);
    j->query("SELECT '" + std::string(100 * 1024, 'x') + "'", {}, {}, ec, d);
    CHECK(ec == errc::statement_too_large);
}

TEST_CASE("options: the pre-connect hook gets the driver's handle before every connect", "[options][misc]") {
    const auto srv = server::attach();
    auto calls = std::make_shared<std::atomic<int>>(0);
    connect_options o = options_for(srv.where());
    o.pre_connect = [calls](MYSQL* m) {
        ++*calls;
        mysql_options(m, MYSQL_INIT_COMMAND, "SET @hook = 42");  // runs inside the driver's connect
        return true;
    };
    auto c = make_db<capi>(o);
    CHECK(scalar(*c, "SELECT @hook") == "42");
    CHECK(*calls == 1);
    admin(srv.where(), "KILL CONNECTION " + std::to_string(c->connection_id()));
    CHECK(eventually([&] { return scalar(*c, "SELECT @hook") == "42" && *calls == 2; }, 10s));

    // Connector/C++: the properties map.
    connect_options oj = options_for(srv.where());
    oj.pre_connect = [](sql::ConnectOptionsMap& p) { p["postInit"] = sql::SQLString("SET @hook = 7"); };
    auto j = make_db<jdbc>(oj);
    CHECK(scalar(*j, "SELECT @hook") == "7");

    // A hook that refuses: invalid_option, one call, no retry.
    auto refusals = std::make_shared<std::atomic<int>>(0);
    connect_options no = options_for(srv.where());
    no.pre_connect = [refusals](MYSQL*) {
        ++*refusals;
        return false;
    };
    auto r = make_db<capi>(no);
    std::error_code ec;
    diagnostics d;
    r->connect({}, ec, d);
    CHECK(ec == errc::invalid_option);
    CHECK(d.client_message.find("pre_connect returned false") != std::string::npos);
    CHECK(*refusals == 1);
    // A hook for the other driver is refused when the connection is built.
    CHECK_THROWS_WITH(lifeline::connection<jdbc>(o), Catch::Contains("pre_connect takes MYSQL*"));
    CHECK_THROWS_WITH(lifeline::connection<capi>(oj), Catch::Contains("sql::ConnectOptionsMap&"));
}

TEST_CASE("options: ssl_mode required on a server without TLS is a clear error, preferred is plaintext",
          "[options][misc]") {
    const auto srv = server::attach();
    connect_options o = options_for(srv.where());
    o.ssl = ssl_mode::required;
    for (int driver = 0; driver < 2; ++driver) {
        INFO((driver ? "jdbc" : "capi"));
        std::error_code ec;
        diagnostics d;
        const auto t0 = clk::now();
        std::uint64_t connects = 0;
        if (driver) {
            auto db = make_db<jdbc>(o);
            db->connect({}, ec, d);
            connects = db->stats().reconnects;
        } else {
            auto db = make_db<capi>(o);
            db->connect({}, ec, d);
            connects = db->stats().reconnects;
        }
        CHECK(ec == make_driver_error_code(2026));
        CHECK(d.client_message.find("did not use TLS") != std::string::npos);
        CHECK(connects == 1);
        CHECK(clk::now() - t0 < 5s);
    }
    o.ssl = ssl_mode::preferred;
    auto db = make_db<capi>(o);
    CHECK(scalar(*db, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'") ==
          "");
}

// --- integration.options.keepalive ----------------------------------------------------------------

TEST_CASE("keepalive: the defaults are on the session's socket after every connect", "[options][keepalive]") {
    const auto srv = server::attach();
    auto c = make_db<capi>(options_for(srv.where()));
    c->connect();
    check_settings(detail::read_tcp_options(static_cast<int>(mysql_get_socket(c->native()))), 30, 10, 3, 60000);
    admin(srv.where(), "KILL CONNECTION " + std::to_string(c->connection_id()));
    const auto first = c->connection_id();
    CHECK(eventually([&] { return scalar(*c, "SELECT 1") == "1" && c->connection_id() != first; }, 10s));
    check_settings(detail::read_tcp_options(static_cast<int>(mysql_get_socket(c->native()))), 30, 10, 3, 60000);

    // Connector/C++ hides its socket: every socket of this process to the server is checked.
    const auto before = sockets_to(srv.where().port);
    auto j = make_db<jdbc>(options_for(srv.where()));
    j->connect();
    int seen = 0;
    for (int fd : sockets_to(srv.where().port)) {
        if (std::find(before.begin(), before.end(), fd) != before.end()) continue;
        check_settings(detail::read_tcp_options(fd), 30, 10, 3, 60000);
        ++seen;
    }
    CHECK(seen == 2);  // the driver's descriptor and lifeline's duplicate
}

TEST_CASE("keepalive: custom values, and 0 leaves the driver's own", "[options][keepalive]") {
    const auto srv = server::attach();
    connect_options o = options_for(srv.where());
    o.tcp_keepalive_idle = 7s;
    o.tcp_keepalive_interval = 3s;
    o.tcp_keepalive_count = 4;
    o.tcp_user_timeout = 9000ms;
    auto c = make_db<capi>(o);
    c->connect();
    check_settings(detail::read_tcp_options(static_cast<int>(mysql_get_socket(c->native()))), 7, 3, 4, 9000);

    connect_options untouched = options_for(srv.where());
    untouched.tcp_keepalive_idle = 0s;
    untouched.tcp_user_timeout = 0ms;
    auto u = make_db<capi>(untouched);
    u->connect();
    const auto s = detail::read_tcp_options(static_cast<int>(mysql_get_socket(u->native())));
    REQUIRE(s.ok);
    CHECK(s.keepalive);  // Connector/C's own SO_KEEPALIVE, with the kernel's timing
    int kernel_idle = 0;
    std::ifstream("/proc/sys/net/ipv4/tcp_keepalive_time") >> kernel_idle;
    CHECK(s.idle_s == kernel_idle);
    CHECK(s.user_timeout_ms == 0u);
}

// --- integration.options.blackhole (server: --max-allowed-packet=64M) -------------------------------

namespace {

// A statement too large for the kernel's buffers between the client and the blackholed proxy, run
// without any lifeline deadline and without the driver's timeouts: how long until it ends?
struct stalled_write {
    std::error_code ec;
    diagnostics diag;
    clk::duration took{};
};
stalled_write write_into_blackhole(const endpoint& e, std::chrono::milliseconds user_timeout, call_options co) {
    lifeline::testing::fault_proxy proxy(e.host, static_cast<std::uint16_t>(e.port));
    connect_options o = options_for(e);
    o.port = proxy.port();
    o.tcp_user_timeout = user_timeout;
    o.io_timeout = 0ms;
    default_policy p;
    p.retry.max_attempts = 1;  // the first failure is the answer: no retry through the blackhole
    auto db = make_db<capi>(o, p);
    db->connect();
    const std::string big = "SELECT LENGTH('" + std::string(48u << 20, 'x') + "')";
    proxy.blackhole();
    stalled_write w;
    const auto t0 = clk::now();
    db->query(big, {}, co, w.ec, w.diag);
    w.took = clk::now() - t0;
    return w;
}

}  // namespace

TEST_CASE("blackhole: a write into a black hole ends by itself after TCP_USER_TIMEOUT, without a deadline",
          "[options][blackhole]") {
    const auto srv = server::attach();
    const stalled_write w = write_into_blackhole(srv.where(), 2000ms, call_options{no_deadline});
    INFO(w.ec.message() << " | " << w.diag.server_message << " | " << w.diag.client_message);
    CHECK(w.ec);
    CHECK(w.diag.code >= 2000);  // the driver's own error (connection lost), not lifeline's deadline
    CHECK(w.ec != errc::deadline_exceeded);
    CHECK(w.took >= 2s);
    CHECK(w.took < 10s);  // 2 s plus the zero-window probes' backoff
    std::printf("blackhole: write ended after %.2f s (TCP_USER_TIMEOUT 2 s): %d %s\n",
                std::chrono::duration<double>(w.took).count(), static_cast<int>(w.diag.code), w.diag.server_message.c_str());
}

TEST_CASE("blackhole: without TCP_USER_TIMEOUT the same write only ends at a deadline", "[options][blackhole]") {
    const auto srv = server::attach();
    const stalled_write w = write_into_blackhole(srv.where(), 0ms, call_options{8s});
    INFO(w.ec.message() << " | " << w.diag.client_message);
    CHECK(w.took >= 8s);                              // nothing ended it before
    CHECK(w.diag.client_message.find("deadline cut") != std::string::npos);  // lifeline's watchdog did
}

TEST_CASE("blackhole: a read through the proxy's blackhole is NOT ended by keepalive (the proxy's kernel answers the "
          "probes); the call's io_timeout ends it",
          "[options][blackhole]") {
    const auto srv = server::attach();
    lifeline::testing::fault_proxy proxy(srv.where().host, static_cast<std::uint16_t>(srv.where().port));
    connect_options o = options_for(srv.where());
    o.port = proxy.port();
    o.tcp_keepalive_idle = 1s;  // probes after 1 s idle, every 1 s, give up after 2 unanswered
    o.tcp_keepalive_interval = 1s;
    o.tcp_keepalive_count = 2;
    default_policy p;
    p.retry.max_attempts = 1;
    auto db = make_db<capi>(o, p);
    db->connect();
    proxy.blackhole();
    std::error_code ec;
    diagnostics d;
    const auto t0 = clk::now();
    call_options co{no_deadline};
    co.io_timeout = 6s;  // 3x keepalive's give-up time
    db->query("SELECT 1", idempotent, co, ec, d);
    const auto took = clk::now() - t0;
    INFO(d.client_message);
    CHECK(took >= 6s);  // keepalive (which would have ended it after ~3 s) did not
    CHECK(d.client_message.find("io_timeout (call_options::io_timeout) cut") != std::string::npos);
}

// --- integration.options.adopt ----------------------------------------------------------------------

TEST_CASE("adopt: an open MYSQL* with MYSQL_OPT_RECONNECT on, taken over", "[options][adopt][capi]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    MYSQL* m = mysql_init(nullptr);
    const my_bool on = 1;
    mysql_options(m, MYSQL_OPT_RECONNECT, &on);
    REQUIRE(mysql_real_connect(m, e.host.c_str(), e.app_user.c_str(), e.app_password.c_str(), e.database.c_str(), e.port,
                               nullptr, 0));
    const auto id = mysql_thread_id(m);
    const connect_options learnt = options_of(m);
    CHECK(learnt.host == e.host);
    CHECK(learnt.port == e.port);
    CHECK(learnt.user == e.app_user);
    CHECK(learnt.password == e.app_password);
    CHECK(learnt.database == e.database);
    CHECK(learnt.ssl == ssl_mode::disabled);  // opened without TLS options

    lifeline::connection<capi>::session_spec spec;
    spec.time_zone = "+03:00";
    auto db = make_db<capi>(learnt, {}, spec);
    db->adopt(m, ownership::take);
    CHECK(db->connection_id() == id);  // the same session, not a new one
    my_bool reconnect = 1;
    mysql_get_option(m, MYSQL_OPT_RECONNECT, &reconnect);
    CHECK(reconnect == 0);  // switched off
    CHECK(scalar(*db, "SELECT CONCAT(CONNECTION_ID(), ' ', @@time_zone, ' ', @@session_track_state_change)") ==
          std::to_string(id) + " +03:00 ON");
    check_settings(detail::read_tcp_options(static_cast<int>(mysql_get_socket(m))), 30, 10, 3, 60000);
    CHECK(db->server().flavor == server_flavor::mariadb);
    // Its session lock is held (fencing works for it): exactly one lifeline- lock belongs to it.
    auto a = capi_connect(e, capi_options{true});
    CHECK(capi_scalar(a.get(), "SELECT COUNT(*) FROM information_schema.METADATA_LOCK_INFO WHERE THREAD_ID = " +
                                   std::to_string(id) + " AND LOCK_TYPE = 'User lock' AND (TABLE_SCHEMA LIKE "
                                   "'lifeline-%' OR TABLE_NAME LIKE 'lifeline-%')") ==
          "1");
    // Reconnects use the learnt options and restore the session.
    capi_exec(a.get(), "KILL CONNECTION " + std::to_string(id));
    CHECK(eventually([&] { return scalar(*db, "SELECT @@time_zone") == "+03:00" && db->connection_id() != id; }, 10s));
}

TEST_CASE("adopt: a borrowed MYSQL* is never closed by lifeline", "[options][adopt][capi]") {
    const auto srv = server::attach();
    auto m = capi_connect(srv.where());
    auto db = make_db<capi>(options_of(m.get()));
    db->adopt(m.get(), ownership::borrow);
    CHECK(scalar(*db, "SELECT 1") == "1");
    db->close();  // lifeline lets go of it...
    CHECK(capi_scalar(m.get(), "SELECT 2") == "2");  // ...and it is still the caller's, open (closed by mysql_handle)
    // A borrowed handle replaced by a reconnect is left to the caller too.
    db->adopt(m.get(), ownership::borrow);
    admin(srv.where(), "KILL CONNECTION " + std::to_string(mysql_thread_id(m.get())));
    CHECK(eventually([&] { return scalar(*db, "SELECT 3") == "3"; }, 10s));
    CHECK(db->native() != m.get());
}

TEST_CASE("adopt: a handle that cannot be used is refused (and, taken, closed)", "[options][adopt][capi]") {
    const auto srv = server::attach();
    auto db = make_db<capi>(options_for(srv.where()));
    MYSQL* m = mysql_init(nullptr);  // never connected
    std::error_code ec;
    diagnostics d;
    db->adopt(m, ownership::take, {}, ec, d);
    CHECK(ec == errc::invalid_option);
    CHECK(d.client_message.find("not connected") != std::string::npos);
    // A result left unread would answer lifeline's first statement: refused.
    MYSQL* busy = mysql_init(nullptr);
    const auto& e = srv.where();
    REQUIRE(mysql_real_connect(busy, e.host.c_str(), e.app_user.c_str(), e.app_password.c_str(), e.database.c_str(),
                               e.port, nullptr, 0));
    REQUIRE(mysql_real_query(busy, "SELECT 1", 8) == 0);  // its rows never read
    db->adopt(busy, ownership::take, {}, ec, d);
    CHECK(ec == errc::invalid_option);
    CHECK(d.client_message.find("result left unread") != std::string::npos);
    CHECK_FALSE(db->is_open());
    // The connection itself works on: the next call connects with its options.
    CHECK(scalar(*db, "SELECT 1") == "1");
}

TEST_CASE("adopt: a Connector/C++ connection", "[options][adopt][jdbc]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    auto open = [&](bool reconnect) {  // as an application opened it
        sql::ConnectOptionsMap p;
        p["hostName"] = sql::SQLString("tcp://127.0.0.1:" + std::to_string(e.port));
        p["userName"] = sql::SQLString(e.app_user);
        p["password"] = sql::SQLString(e.app_password);
        p["schema"] = sql::SQLString(e.database);
        p["OPT_RECONNECT"] = reconnect;
        return std::unique_ptr<sql::Connection>(sql::mysql::get_driver_instance()->connect(p));
    };
    auto c = open(false);
    std::uint64_t id = 0;
    {
        std::unique_ptr<sql::Statement> st(c->createStatement());
        std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT CONNECTION_ID()"));
        rs->next();
        id = rs->getUInt64(1);
    }
    const auto before = sockets_to(e.port);
    auto db = make_db<jdbc>(options_for(e));
    db->adopt(std::move(c));
    CHECK(db->connection_id() == id);
    CHECK(scalar(*db, "SELECT @@session_track_state_change") == "1");
    // Its socket was found after the fact: the driver's descriptor and lifeline's duplicate.
    int with_keepalive = 0;
    for (int fd : sockets_to(e.port)) {
        const auto s = detail::read_tcp_options(fd);
        if (s.ok && s.idle_s == 30 && s.user_timeout_ms == 60000u) ++with_keepalive;
    }
    CHECK(with_keepalive == static_cast<int>(before.size()) + 1);
    // Reconnects use the connection's options and restore the session.
    admin(e, "KILL CONNECTION " + std::to_string(id));
    CHECK(eventually([&] { return scalar(*db, "SELECT 1") == "1" && db->connection_id() != id; }, 10s));
    // Connector/C++ cannot take a borrowed connection (it is a unique_ptr, which lifeline owns).
    std::error_code ec;
    diagnostics d;
    db->adopt(open(false), ownership::borrow, {}, ec, d);
    CHECK(ec == errc::invalid_option);
    CHECK(d.client_message.find("ownership::borrow is for the C API") != std::string::npos);
}

// --- integration.options.flavour -------------------------------------------------------------------

TEST_CASE("flavour: MariaDB is detected at connect", "[options][flavour]") {
    const auto srv = server::attach();
    auto c = make_db<capi>(options_for(srv.where()));
    c->connect();
    CHECK(c->server().flavor == server_flavor::mariadb);
    CHECK(c->server().major == 10);
    CHECK(c->server().minor == 11);
    CHECK_FALSE(c->server().galera);
    CHECK(c->server().version.find("MariaDB") != std::string::npos);
    auto j = make_db<jdbc>(options_for(srv.where()));
    j->connect();
    CHECK(j->server().flavor == server_flavor::mariadb);
}

TEST_CASE("flavour: MariaDB's 4031 is a missing trigger, not an idle timeout: no reconnect, no retry",
          "[options][flavour]") {
    const auto srv = server::attach();
    auto c = make_db<capi>(options_for(srv.where()));
    c->execute("CREATE TABLE flavour_t (a INT)");
    const auto id = c->connection_id();
    const auto reconnects = c->stats().reconnects;
    std::error_code ec;
    diagnostics d;
    auto r = c->execute("CREATE TRIGGER flavour_trg BEFORE INSERT ON flavour_t FOR EACH ROW FOLLOWS missing_trg SET NEW.a = 1",
                        {}, {}, ec, d);
    INFO(d.server_message);
    CHECK(ec == make_driver_error_code(4031));
    CHECK(r.attempts == 1);            // sent once
    CHECK(c->stats().attempts == 2);  // CREATE TABLE + CREATE TRIGGER, once each
    CHECK(c->stats().reconnects == reconnects);
    CHECK(c->connection_id() == id);
    CHECK(c->is_open());
    // With the flavour unknown, the same number is MySQL 8's idle disconnect: broken, reconnect.
    CHECK(classify(failure{4031, "HY000", phase::read_result, false}).connection == connection_state::broken);
    CHECK(classify(failure{4031, "HY000", phase::read_result, false, server_flavor::mariadb}).connection ==
          connection_state::usable);
}

TEST_CASE("flavour: MariaDB's 1969 (max_statement_time) keeps the connection; 1290 is read_only_server",
          "[options][flavour]") {
    const auto srv = server::attach();
    auto c = make_db<capi>(options_for(srv.where()));
    const auto id = [&] {
        c->connect();
        return c->connection_id();
    }();
    std::error_code ec;
    diagnostics d;
    c->query("SET STATEMENT max_statement_time = 0.1 FOR SELECT SLEEP(2)", idempotent, {}, ec, d);
    CHECK(ec == make_driver_error_code(1969));
    CHECK(c->connection_id() == id);
    c->execute("CREATE TABLE flavour_ro (a INT)");
    admin(srv.where(), "SET GLOBAL read_only = 1");
    c->execute("INSERT INTO flavour_ro VALUES (1)", {}, {}, ec, d);
    admin(srv.where(), "SET GLOBAL read_only = 0");
    CHECK(ec == errc::read_only_server);
    CHECK(c->connection_id() == id);
}

// --- integration.options.galera (a single-node Galera cluster) ------------------------------------

namespace {
struct retry_counter : observer {
    std::atomic<int> retries{0};
    std::atomic<unsigned> last_code{0};
    void on_retry(const retry_event& e) override {
        last_code = e.diag.code;
        ++retries;
    }
};
}  // namespace

TEST_CASE("galera: a node that is not ready answers 1047; lifeline waits on the same connection",
          "[options][galera]") {
    const auto srv = server::attach();
    auto c = make_db<capi>(options_for(srv.where()));
    c->execute("CREATE TABLE galera_t (id INT PRIMARY KEY)");
    CHECK(c->server().galera);
    CHECK(c->server().flavor == server_flavor::mariadb);
    const auto id = c->connection_id();
    const auto reconnects = c->stats().reconnects;
    auto seen = std::make_shared<retry_counter>();
    c->set_observer(seen);
    admin(srv.where(), "SET GLOBAL wsrep_reject_queries = ALL");
    std::thread lift([&] {
        // Once lifeline has met the 1047 at least twice (waiting on its connection), the node serves again.
        eventually([&] { return seen->retries >= 2; }, 20s);
        admin(srv.where(), "SET GLOBAL wsrep_reject_queries = NONE");
    });
    std::error_code ec;
    diagnostics d;
    c->execute("INSERT INTO galera_t VALUES (1)", {}, call_options{20s}, ec, d);
    lift.join();
    INFO(ec.message() << " | " << d.server_message);
    CHECK_FALSE(ec);
    CHECK(seen->last_code == 1047u);
    CHECK(seen->retries >= 2);
    CHECK(c->stats().reconnects == reconnects);  // a reconnect to this node would not have helped
    CHECK(c->connection_id() == id);
    CHECK(scalar(*c, "SELECT COUNT(*) FROM galera_t") == "1");
}
