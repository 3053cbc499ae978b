// What real services need, without a server (label options): the new connect_options and their
// DSN keys (parsed, validated with what to fix, written back), the pre-connect hook's typing, the
// flavour rows of the classification (a case per row, including the ones no test server can
// produce: MySQL's), the server's flavour read from @@version, the engines' use of the flavour and
// of a refused configuration, the reaper's verdicts, keepalive options on a loopback socket, and
// bulk_insert's SQL encoding.
#include <lifeline/bulk_insert.hpp>
#include <lifeline/classification.hpp>
#include <lifeline/detail/operation_engine.hpp>
#include <lifeline/detail/reaper.hpp>
#include <lifeline/detail/session_sql.hpp>
#include <lifeline/detail/tcp_keepalive.hpp>
#include <lifeline/options.hpp>
#include <lifeline/server_info.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

using namespace lifeline;
using namespace std::chrono_literals;

namespace {

std::string refusal(std::string_view dsn) {
    std::error_code ec;
    diagnostics d;
    const connect_options o = parse_dsn(dsn, ec, d);
    INFO(dsn);
    CHECK(ec == errc::invalid_dsn);
    CHECK(o == connect_options{});
    return d.client_message;
}
bool has(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

connect_options valid() {
    connect_options o;
    o.user = "u";
    return o;
}

}  // namespace

// --- options ------------------------------------------------------------------------------------

TEST_CASE("options: defaults for services", "[unit][options]") {
    const connect_options o;
    CHECK(o.ssl == ssl_mode::preferred);
    CHECK(o.io_timeout == 0ms);  // the driver's timeout would cut long statements
    CHECK(o.tcp_keepalive_idle == 30s);
    CHECK(o.tcp_keepalive_interval == 10s);
    CHECK(o.tcp_keepalive_count == 3u);
    CHECK(o.tcp_user_timeout == 60s);
    // A dead peer is given up on within about a minute, under common firewall idle limits (60-350 s).
    CHECK(o.tcp_keepalive_idle + o.tcp_keepalive_interval * o.tcp_keepalive_count <= 60s);
    CHECK(retry_policy{}.deadline == 60s);  // above a plain 45 s statement
    CHECK(call_options{}.io_timeout == 0ms);
    CHECK(no_deadline == std::chrono::milliseconds::max());
}

TEST_CASE("options: every new DSN key, with '-' or '_'", "[unit][options]") {
    const connect_options o = parse_dsn(
        "mysql://u@db/s?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ca.pem&ssl_capath=/etc/cas&ssl-cert=/c.pem&ssl-key=/k.pem"
        "&ssl-cipher=ECDHE-RSA-AES128-GCM-SHA256&ssl-crl=/crl.pem&tls-version=TLSv1.2,TLSv1.3&charset=utf8mb4"
        "&collation=utf8mb4_unicode_ci&compress=on&max-allowed-packet=64M&connect-attrs=program_name:billing,env:a%2Cb%3Ac"
        "&tcp-keepalive-idle=20s&tcp_keepalive_interval=5&tcp-keepalive-count=4&tcp-user-timeout=45s");
    CHECK(o.ssl == ssl_mode::verify_identity);
    CHECK(o.ssl_ca == "/etc/ca.pem");
    CHECK(o.ssl_capath == "/etc/cas");
    CHECK(o.ssl_cert == "/c.pem");
    CHECK(o.ssl_key == "/k.pem");
    CHECK(o.ssl_cipher == "ECDHE-RSA-AES128-GCM-SHA256");
    CHECK(o.ssl_crl == "/crl.pem");
    CHECK(o.tls_version == "TLSv1.2,TLSv1.3");
    CHECK(o.charset == "utf8mb4");
    CHECK(o.collation == "utf8mb4_unicode_ci");
    CHECK(o.compress);
    CHECK(o.max_allowed_packet == 64u << 20);
    CHECK(o.attributes == connect_attributes{{"program_name", "billing"}, {"env", "a,b:c"}});
    CHECK(o.tcp_keepalive_idle == 20s);
    CHECK(o.tcp_keepalive_interval == 5s);
    CHECK(o.tcp_keepalive_count == 4u);
    CHECK(o.tcp_user_timeout == 45s);
    // Written back with '_' and read back the same.
    const std::string dsn = format_dsn(o);
    CHECK(has(dsn, "ssl_mode=verify_identity"));
    CHECK(has(dsn, "max_allowed_packet=64M"));
    CHECK(has(dsn, "connect_attrs=program_name:billing,env:a%2Cb%3Ac"));
    CHECK(parse_dsn(dsn) == o);
    CHECK(parse_dsn("mysql://u@db?max_allowed_packet=1048576").max_allowed_packet == 1u << 20);
    CHECK(parse_dsn("mysql://u@db?max_allowed_packet=512k").max_allowed_packet == 512u << 10);
    CHECK(parse_dsn("mysql://u@db?compress=false").compress == false);
    CHECK(parse_dsn("mysql://u@db?ssl_mode=disabled").ssl == ssl_mode::disabled);
    CHECK(parse_dsn("mysql://u@db?tcp_keepalive_idle=0").tcp_keepalive_idle == 0s);
}

TEST_CASE("options: bad values say what a valid one looks like", "[unit][options]") {
    CHECK(has(refusal("mysql://u@db?ssl-mode=verify"), "disabled, preferred, required, verify_ca or verify_identity"));
    CHECK(has(refusal("mysql://u@db?compress=maybe"), "true or false"));
    CHECK(has(refusal("mysql://u@db?max_allowed_packet=2G"), "at most 1G"));
    CHECK(has(refusal("mysql://u@db?max_allowed_packet=12T"), "K, M or G"));
    CHECK(has(refusal("mysql://u@db?tcp_keepalive_count=0"), "1 to 127"));
    CHECK(has(refusal("mysql://u@db?tcp_keepalive_idle=40000"), "at most 32767s"));
    CHECK(has(refusal("mysql://u@db?connect_attrs=novalue"), "key:value pairs"));
    CHECK(has(refusal("mysql://u@db?ssl_mode=verify_ca&ssl-mode=required"), "given more than once"));
    CHECK(has(refusal("mysql://u@db?ssl_mode=verify_ca"), "neither ssl_ca nor ssl_capath"));
    CHECK(has(refusal("mysql://u@db?ssl_mode=disabled&ssl_ca=/x"), "ssl_ca is set but ssl_mode is disabled"));
    CHECK(has(refusal("mysql://u@db?collation=latin1_swedish_ci"), "collation is set without charset"));
    CHECK(has(refusal("mysql://u@db?charset=utf8mb4&collation=latin1_swedish_ci"), "does not belong"));
    CHECK(has(refusal("mysql://u@db?tls_version=SSLv3"), "not a TLS version"));
    CHECK(has(refusal("mysql://u@db?connect_attrs=_client_name:x"), "reserved for the client library"));
    CHECK(has(refusal("mysql://u@db?ssl_cert=/c.pem"), "without ssl_key"));
}

TEST_CASE("options: validate() names the field and the fix", "[unit][options]") {
    connect_options o = valid();
    CHECK(validate(o).empty());
    o.charset = "utf8";
    o.collation = "utf8mb3_general_ci";  // utf8 is utf8mb3
    CHECK(validate(o).empty());
    o.charset = "latin1; DROP";
    CHECK(has(validate(o), "connect_options.charset must be a character set name"));
    o = valid();
    o.max_allowed_packet = 100;
    CHECK(has(validate(o), "max_allowed_packet must be 0"));
    o = valid();
    o.attributes = {{"k", "1"}, {"k", "2"}};
    CHECK(has(validate(o), "'k' is given more than once"));
    o = valid();
    o.attributes = {{std::string(33, 'k'), "1"}};
    CHECK(has(validate(o), "1 to 32 characters"));
    o = valid();
    o.tcp_keepalive_interval = 0s;
    CHECK(has(validate(o), "tcp_keepalive_interval"));
    o.tcp_keepalive_idle = 0s;  // keepalive left to the OS: interval and count are not used
    CHECK(validate(o).empty());
    o = valid();
    o.ssl = ssl_mode::verify_identity;  // without a CA: the system's store
    CHECK(validate(o).empty());
}

TEST_CASE("options: the pre-connect hook is typed by its handle", "[unit][options]") {
    struct fake_handle {};
    int calls = 0;
    pre_connect_hook none;
    CHECK_FALSE(none);
    CHECK(none.accepts<fake_handle*>());
    std::string why;
    CHECK(none.run<fake_handle*>(nullptr, why));

    pre_connect_hook h = [&calls](fake_handle*) {
        ++calls;
        return true;
    };
    CHECK(h);
    CHECK(h.accepts<fake_handle*>());
    CHECK_FALSE(h.accepts<int&>());
    CHECK(h.run<fake_handle*>(nullptr, why));
    CHECK(calls == 1);
    int x = 0;
    CHECK_FALSE(h.run<int&>(x, why));  // made for another handle: refused, not called
    CHECK(has(why, "another driver's handle"));
    CHECK(calls == 1);

    pre_connect_hook v = [&calls](int& n) { n = ++calls; };  // void: counts as true
    CHECK(v.run<int&>(x, why));
    CHECK(x == 2);
    pre_connect_hook no = [](int&) { return false; };
    CHECK_FALSE(no.run<int&>(x, why));
    CHECK(has(why, "returned false"));
    // Options compare their hooks by identity.
    connect_options a = valid(), b = valid();
    a.pre_connect = h;
    CHECK(a != b);
    b.pre_connect = h;
    CHECK(a == b);
}

TEST_CASE("options: the session's SET carries the collation first", "[unit][options]") {
    CHECK(detail::session_set_statement("", "", "", true, "utf8mb4_unicode_ci") ==
          "SET collation_connection = 'utf8mb4_unicode_ci', session_track_state_change = ON");
    CHECK(detail::session_set_statement("", "", "", false, "") == "");
}

// --- flavour --------------------------------------------------------------------------------------

TEST_CASE("flavour: the server's flavour and version from @@version", "[unit][options][classification]") {
    const server_info m = detail::make_server_info("10.11.19-MariaDB-0+deb12u1", "Debian 12", "0");
    CHECK(m.flavor == server_flavor::mariadb);
    CHECK((m.major == 10 && m.minor == 11 && m.patch == 19));
    CHECK_FALSE(m.galera);
    CHECK(m.at_least(10, 11));
    CHECK_FALSE(m.at_least(11, 0));
    const server_info old = detail::make_server_info("5.5.5-10.6.12-MariaDB-log", "", "ON");
    CHECK(old.flavor == server_flavor::mariadb);
    CHECK((old.major == 10 && old.minor == 6 && old.patch == 12));
    CHECK(old.galera);
    const server_info my = detail::make_server_info("8.0.36-0ubuntu0.22.04.1", "(Ubuntu)", "");
    CHECK(my.flavor == server_flavor::mysql);
    CHECK((my.major == 8 && my.minor == 0 && my.patch == 36));
    CHECK(detail::make_server_info("8.0.35-27", "Percona Server (GPL), Release 27", "").flavor == server_flavor::mysql);
    CHECK_FALSE(detail::make_server_info("", "", "").known());
}

namespace {
classification at(unsigned code, server_flavor f, bool galera = false, const char* state = "HY000", bool tx = false,
                  phase where = phase::read_result) {
    return classify(failure{code, state, where, tx, f, galera});
}
}  // namespace

// One case per flavour row (detail::flavor_rows), against the flavour-neutral row.
TEST_CASE("flavour: 4031 is MySQL's idle disconnect but MariaDB's missing trigger", "[unit][options][classification]") {
    const classification neutral = at(4031, server_flavor::unknown);
    CHECK(neutral.connection == connection_state::broken);  // today's rule: as MySQL
    const classification mysql = at(4031, server_flavor::mysql);
    CHECK(mysql == neutral);
    CHECK(mysql.action == remedy::reconnect_and_retry);
    const classification maria = at(4031, server_flavor::mariadb);
    CHECK(maria.connection == connection_state::usable);
    CHECK(maria.statement == outcome::failed);
    CHECK(maria.action == remedy::do_not_retry);
    CHECK(at(4031, server_flavor::mariadb, true).action == remedy::do_not_retry);  // a MariaDB Galera node too
    static_assert(classify(failure{4031, "HY000", phase::read_result, false, server_flavor::mariadb}).connection ==
                  connection_state::usable);
}

TEST_CASE("flavour: Galera's 1047 keeps the connection and waits", "[unit][options][classification]") {
    for (server_flavor f : {server_flavor::unknown, server_flavor::mariadb, server_flavor::mysql}) {
        const classification g = at(1047, f, true, "08S01");
        CHECK(g.connection == connection_state::usable);  // reconnecting to the same node does not help
        CHECK(g.statement == outcome::not_executed);
        CHECK(g.action == remedy::retry_after_backoff);
        const classification plain = at(1047, f, false, "08S01");
        CHECK(plain.connection == connection_state::broken);  // not a Galera node: the table's row
    }
    // In a transaction the node's refusal still rolled nothing back; the whole transaction is re-run.
    CHECK(at(1047, server_flavor::mariadb, true, "08S01", true).connection == connection_state::usable);
}

TEST_CASE("flavour: numbers a flavour never sends are handled as unlisted", "[unit][options][classification]") {
    // 3024: MySQL's MAX_EXECUTION_TIME; MariaDB never sends it.
    CHECK(at(3024, server_flavor::mysql).statement == outcome::interrupted);
    CHECK(at(3024, server_flavor::mariadb, false, "HY000") == detail::apply_rule(detail::unknown_server_row,
                                                                                 phase::read_result, false));
    // 1969 and 1927: MariaDB's; MySQL never sends them (by SQLSTATE 70100: interrupted, usable).
    CHECK(at(1969, server_flavor::mariadb, false, "70100").action == remedy::do_not_retry);
    CHECK(at(1969, server_flavor::mysql, false, "70100") ==
          detail::apply_rule(detail::sqlstate_70100_row, phase::read_result, false));
    CHECK(at(1927, server_flavor::mariadb, false, "70100").connection == connection_state::broken);
    CHECK(at(1927, server_flavor::mysql, false, "70100").connection == connection_state::usable);
    CHECK(at(1927, server_flavor::unknown, false, "70100").connection == connection_state::broken);
}

TEST_CASE("flavour: 1290 (read_only) and 1053 (shutdown) mean the same on both", "[unit][options][classification]") {
    for (server_flavor f : {server_flavor::unknown, server_flavor::mariadb, server_flavor::mysql}) {
        CHECK(at(1290, f).action == remedy::reroute_to_primary);
        CHECK(at(1053, f, false, "08S01") == at(1053, server_flavor::unknown, false, "08S01"));
    }
}

TEST_CASE("flavour: every flavour row names a code of the table", "[unit][options][classification]") {
    for (const auto& r : detail::flavor_rows) {
        INFO(r.code);
        CHECK(detail::find_error_row(r.code) != nullptr);
        CHECK((r.galera || r.flavor != server_flavor::unknown));
        CHECK_FALSE(r.row.reason.empty());
    }
}

// --- the engines and the flavour ----------------------------------------------------------------

namespace {
struct engine_harness {
    default_policy policy;
    detail::link_state state{policy.health};
    circuit_breaker breaker{policy.breaker};
    endpoint_monitor monitor{policy.probe};
    retry_budget budget{relaxed(policy.budget)};
    backoff bo{policy.backoff, 42};
    steady_time now = steady_time{} + 1h;
    static retry_budget_policy relaxed(retry_budget_policy b) {
        b.min_retries_per_second = 1e9;
        return b;
    }
    detail::operation_engine<default_policy> op(detail::operation_spec s) {
        return detail::operation_engine<default_policy>(
            policy, state, breaker, monitor,
            detail::retry_gate(policy.retry.max_attempts, deadline::after(10s, now), &budget, bo), &budget, s);
    }
};
detail::connected galera_node() {
    detail::connected c;
    c.ok = true;
    c.session.id = 5;
    c.session.server.known = true;
    c.wait_timeout = 28800s;
    c.server = detail::make_server_info("10.11.19-MariaDB", "", "1");
    return c;
}
}  // namespace

TEST_CASE("engine: on a Galera node a 1047 is retried on the same connection, not by reconnecting", "[unit][options]") {
    engine_harness h;
    detail::operation_spec spec;
    auto e = h.op(spec);
    auto a = e.start(h.now);
    REQUIRE(a.type == detail::action_type::connect);
    a = e.resume(galera_node(), h.now);
    REQUIRE(a.type == detail::action_type::attempt);
    CHECK(h.state.server.galera);
    detail::attempted refused;
    refused.diag.code = 1047;
    refused.diag.sqlstate = "08S01";
    refused.open_after = true;
    a = e.resume(refused, h.now);
    REQUIRE(a.type == detail::action_type::wait);
    CHECK(h.state.open);  // the session is kept
    h.now += a.delay;
    a = e.resume(detail::waited{}, h.now);
    CHECK(a.type == detail::action_type::probe);  // not connect
}

TEST_CASE("engine: a refused configuration ends the call at once, and does not mark the server down", "[unit][options]") {
    engine_harness h;
    auto e = h.op(detail::operation_spec{});
    auto a = e.start(h.now);
    REQUIRE(a.type == detail::action_type::connect);
    detail::connected c;
    c.config_error = true;
    c.diag.client_message = "connect_options.pre_connect returned false";
    a = e.resume(c, h.now);
    CHECK(a.type == detail::action_type::done);
    CHECK(a.ec == errc::invalid_option);
    CHECK(has(e.diag().client_message, "pre_connect returned false"));
    CHECK_FALSE(h.monitor.down());
    // A failed TLS verification (2026) is not retried and does not mark the server down either.
    auto e2 = h.op(detail::operation_spec{});
    a = e2.start(h.now);
    detail::connected tls;
    tls.diag.code = 2026;
    tls.diag.sqlstate = "HY000";
    a = e2.resume(tls, h.now);
    CHECK(a.type == detail::action_type::done);
    CHECK(a.ec == make_driver_error_code(2026));
    CHECK_FALSE(h.monitor.down());
}

// --- the reaper's verdicts --------------------------------------------------------------------------

namespace {
detail::session_ref ref(std::uint64_t id, bool lock = true, bool certain = true, std::int64_t started = 1000,
                std::uint64_t server_id = 1) {
    detail::session_ref r;
    r.id = id;
    if (lock) {
        r.lock_hi = 7;
        r.lock_lo = id;
    }
    r.lock_certain = certain;
    r.server.server_id = server_id;
    r.server.host_hash = detail::fnv1a("db");
    r.server.port = 3306;
    r.server.started_at = started;
    r.server.known = true;
    return r;
}
detail::fenced seen(std::uint64_t holder, bool present, bool ours = true) {
    detail::fenced f;
    f.ok = true;
    f.lock_holder = holder;
    f.present = present;
    f.present_is_ours = ours;
    return f;
}
}  // namespace

TEST_CASE("reaper: KILL only a session proven to be the cut one", "[unit][options]") {
    using detail::judge_stop;
    using detail::stop_verdict;
    const detail::session_ref cut = ref(10), side = ref(20);
    CHECK(judge_stop(cut, side, seen(10, true)) == stop_verdict::kill);      // it holds its own lock
    CHECK(judge_stop(cut, side, seen(0, false)) == stop_verdict::gone);      // ended already
    CHECK(judge_stop(cut, side, seen(0, true)) == stop_verdict::gone);       // its id is another session's now
    CHECK(judge_stop(cut, side, seen(15, true)) == stop_verdict::not_provable);  // someone else holds the lock
    // The lock may have been released by a run() callable: the id alone does not prove it.
    CHECK(judge_stop(ref(10, true, false), side, seen(0, true)) == stop_verdict::not_provable);
    CHECK(judge_stop(ref(10, true, false), side, seen(10, true)) == stop_verdict::kill);  // the lock still proves it
    // No lock at all (an exotic server): the id and the account, in the same process.
    CHECK(judge_stop(ref(10, false), ref(20, false), seen(0, true, true)) == stop_verdict::kill);
    CHECK(judge_stop(ref(10, false), ref(20, false), seen(0, true, false)) == stop_verdict::not_provable);
    // Another server, or a restart: never a KILL.
    CHECK(judge_stop(cut, ref(20, true, true, 1000, 2), seen(10, true)) == stop_verdict::other_server);
    CHECK(judge_stop(cut, ref(20, true, true, 2000), seen(10, true)) == stop_verdict::gone);
    CHECK(judge_stop(cut, ref(5), seen(10, true)) == stop_verdict::gone);  // ids went backwards: restarted
}

TEST_CASE("reaper: jobs run one at a time, the queue is bounded", "[unit][options][concurrency]") {
    auto& r = detail::reaper::instance();
    const auto before = r.counters();
    std::atomic<int> ran{0};
    for (int i = 0; i < 5; ++i)
        CHECK(r.submit([&] {
            ++ran;
            detail::reaper::instance().record(detail::reaper::result_kind::gone);
        }));
    CHECK(r.wait_idle(10s));
    CHECK(ran == 5);
    CHECK(r.counters().gone == before.gone + 5);
    CHECK(r.counters().queued == before.queued + 5);
}

// --- keepalive on a real (loopback) TCP socket --------------------------------------------------------

TEST_CASE("keepalive: the options land on a TCP socket and read back; a Unix socket is left alone", "[unit][options]") {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    const int client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    connect_options o = valid();
    o.tcp_keepalive_idle = 11s;
    o.tcp_keepalive_interval = 2s;
    o.tcp_keepalive_count = 5;
    o.tcp_user_timeout = 12345ms;
    CHECK(detail::apply_tcp_options(client, o).empty());
    const auto s = detail::read_tcp_options(client);
    CHECK(s.ok);
    CHECK(s.keepalive);
    CHECK(s.idle_s == 11);
    CHECK(s.interval_s == 2);
    CHECK(s.count == 5);
    CHECK(s.user_timeout_ms == 12345u);
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    CHECK(detail::apply_tcp_options(pair[0], o).empty());
    CHECK_FALSE(detail::read_tcp_options(pair[0]).ok);
    for (int fd : {listener, client, pair[0], pair[1]}) ::close(fd);
}

// --- bulk_insert's SQL ---------------------------------------------------------------------------------

TEST_CASE("bulk: values become literals that mean exactly the value", "[unit][options]") {
    auto lit = [](const auto& v) {
        std::string out;
        std::size_t size = 0;
        REQUIRE(detail::sql_value(v, &out, size));
        CHECK(size == out.size());  // the size pass and the encoding agree
        return out;
    };
    CHECK(lit(42) == "42");
    CHECK(lit(-9223372036854775807LL - 1) == "-9223372036854775808");
    CHECK(lit(18446744073709551615ULL) == "18446744073709551615");
    CHECK(lit(true) == "1");
    CHECK(lit(0.25) == "0.25");
    CHECK(lit(std::string("it's")) == "'it''s'");
    CHECK(lit(std::string_view("''")) == "''''''");
    CHECK(lit("plain") == "'plain'");
    CHECK(lit(std::string("a\\b")) == "X'615C62'");  // a backslash: exact bytes in any sql_mode
    CHECK(lit(std::string("a\0b", 3)) == "X'610062'");
    CHECK(lit(std::nullopt) == "NULL");
    CHECK(lit(std::optional<int>()) == "NULL");
    CHECK(lit(std::optional<std::string>("x")) == "'x'");
    std::string out;
    std::size_t size = 0;
    CHECK_FALSE(detail::sql_value(std::numeric_limits<double>::quiet_NaN(), &out, size));

    std::size_t columns = 0, bad = 0;
    std::string row;
    REQUIRE(detail::sql_row(std::make_tuple(1, std::string("o'k"), std::optional<double>()), &row, size, columns, bad));
    CHECK(row == "(1,'o''k',NULL)");
    CHECK(size == row.size());
    CHECK(columns == 3u);
    row.clear();
    REQUIRE(detail::sql_row(std::vector<std::optional<std::string>>{std::string("1"), std::nullopt}, &row, size, columns,
                            bad));
    CHECK(row == "('1',NULL)");
}

TEST_CASE("bulk: the marker row needs the load's lock, taken once per session", "[unit][options]") {
    const std::string sql = detail::bulk_marker_insert_sql("load-1", 500, 250);
    CHECK(sql ==
          "INSERT INTO lifeline_bulk_marker (load_id, first_row, row_count) SELECT 'load-1', 500, 250 FROM DUAL WHERE "
          "(CASE WHEN IS_USED_LOCK('lifeline-bulk-load-1') = CONNECTION_ID() THEN 1 ELSE "
          "GET_LOCK('lifeline-bulk-load-1', 0) END) = 1");
    CHECK(detail::valid_load_id("orders-2024-06-01.v2"));
    CHECK_FALSE(detail::valid_load_id("a'b"));
    CHECK_FALSE(detail::valid_load_id(std::string(49, 'x')));
    CHECK_FALSE(detail::valid_load_id(""));
}

TEST_CASE("bulk: what stops a load and what is resolved and retried", "[unit][options]") {
    diagnostics d;
    CHECK(detail::bulk_permanent(make_error_code(errc::statement_too_large), d));
    CHECK(detail::bulk_permanent(make_error_code(errc::implicit_commit), d));
    CHECK_FALSE(detail::bulk_permanent(make_error_code(errc::commit_unknown), d));
    CHECK_FALSE(detail::bulk_permanent(make_error_code(errc::transaction_lost), d));
    CHECK_FALSE(detail::bulk_permanent(make_error_code(errc::deadline_exceeded), d));
    d.code = 1062;  // duplicate key: the same rows fail again
    d.sqlstate = "23000";
    CHECK(detail::bulk_permanent(make_driver_error_code(1062), d));
    d.code = 1213;  // deadlock: run the chunk again
    d.sqlstate = "40001";
    CHECK_FALSE(detail::bulk_permanent(make_driver_error_code(1213), d));
    d.code = 2013;
    d.sqlstate = "HY000";
    CHECK_FALSE(detail::bulk_permanent(make_driver_error_code(2013), d));
}
