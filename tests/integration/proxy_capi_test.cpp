// The raw C API through lifeline::testing::fault_proxy to the harness server: the proxy's faults
// reach a real client as the errors they stand for (2013), and the two COMMIT cut points leave the
// server uncommitted / committed, checked on a direct connection.
#include "capi_support.hpp"

#include <lifeline/testing/fault_proxy.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

using namespace lifeline::test;
using namespace std::chrono_literals;
using lifeline::testing::commit_cut;
using lifeline::testing::cut_kind;
using lifeline::testing::direction;
using lifeline::testing::fault_proxy;

namespace {

endpoint via(const endpoint& e, const fault_proxy& proxy) {
    endpoint p = e;
    p.host = proxy.host();
    p.port = proxy.port();
    return p;
}

void create_table(const endpoint& e) {
    auto direct = capi_connect(e);
    capi_exec(direct.get(), "CREATE TABLE IF NOT EXISTS proxy_commit (id INT PRIMARY KEY) ENGINE=InnoDB");
}

std::string rows_with_id(const endpoint& e, int id) {
    auto direct = capi_connect(e);
    return capi_scalar(direct.get(), "SELECT COUNT(*) FROM proxy_commit WHERE id = " + std::to_string(id));
}

}  // namespace

TEST_CASE("proxy: SELECT 1 through the proxy in pass mode", "[proxy][capi]") {
    auto srv = server::attach();
    fault_proxy proxy(srv.where().host, static_cast<std::uint16_t>(srv.where().port));
    auto m = capi_connect(via(srv.where(), proxy));
    CHECK(capi_scalar(m.get(), "SELECT 1") == "1");
    auto s = proxy.stats();
    CHECK(s.accepted == 1);
    CHECK(s.bytes_client_to_server > 0);
    CHECK(s.bytes_server_to_client > 0);
}

TEST_CASE("proxy: a RST while the result is on its way is 2013", "[proxy][capi]") {
    auto srv = server::attach();
    fault_proxy proxy(srv.where().host, static_cast<std::uint16_t>(srv.where().port));
    auto m = capi_connect(via(srv.where(), proxy));
    proxy.cut_after(5, direction::server_to_client, cut_kind::rst);
    const auto started = std::chrono::steady_clock::now();
    CHECK(mysql_query(m.get(), "SELECT SLEEP(1)") != 0);
    CHECK(mysql_errno(m.get()) == 2013);
    CHECK(std::chrono::steady_clock::now() - started >= 900ms);  // the cut came with the result
    CHECK(proxy.stats().cuts == 1);
}

TEST_CASE("proxy: blackhole + MYSQL_OPT_READ_TIMEOUT 1 is 2013 after about a second", "[proxy][capi]") {
    auto srv = server::attach();
    fault_proxy proxy(srv.where().host, static_cast<std::uint16_t>(srv.where().port));
    capi_options o;
    o.read_timeout = 1;
    auto m = capi_connect(via(srv.where(), proxy), o);
    proxy.blackhole();
    const auto started = std::chrono::steady_clock::now();
    CHECK(mysql_query(m.get(), "SELECT 1") != 0);
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(mysql_errno(m.get()) == 2013);
    CHECK(took >= 900ms);
    CHECK(took < 5s);
    CHECK(proxy.stats().cuts == 0);  // silence, not a cut
}

TEST_CASE("proxy: COMMIT cut before it reaches the server is 2013 and nothing is committed", "[proxy][capi]") {
    auto srv = server::attach();
    create_table(srv.where());
    fault_proxy proxy(srv.where().host, static_cast<std::uint16_t>(srv.where().port));
    auto m = capi_connect(via(srv.where(), proxy));
    capi_exec(m.get(), "BEGIN");
    capi_exec(m.get(), "INSERT INTO proxy_commit (id) VALUES (1)");
    proxy.cut_on_commit(commit_cut::before_forward);
    CHECK(mysql_query(m.get(), "COMMIT") != 0);
    CHECK(mysql_errno(m.get()) == 2013);
    CHECK(rows_with_id(srv.where(), 1) == "0");
    auto s = proxy.stats();
    CHECK(s.commits_seen == 1);
    CHECK(s.commits_cut == 1);
}

TEST_CASE("proxy: COMMIT cut after the server committed is 2013 and the row is there", "[proxy][capi]") {
    auto srv = server::attach();
    create_table(srv.where());
    fault_proxy proxy(srv.where().host, static_cast<std::uint16_t>(srv.where().port));
    auto m = capi_connect(via(srv.where(), proxy));
    capi_exec(m.get(), "BEGIN");
    capi_exec(m.get(), "INSERT INTO proxy_commit (id) VALUES (2)");
    proxy.cut_on_commit(commit_cut::after_forward);
    CHECK(mysql_query(m.get(), "COMMIT") != 0);
    CHECK(mysql_errno(m.get()) == 2013);
    CHECK(rows_with_id(srv.where(), 2) == "1");
    auto s = proxy.stats();
    CHECK(s.commits_seen == 1);
    CHECK(s.commits_cut == 1);
}
